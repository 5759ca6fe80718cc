// Login, logout (behaviour 5), config and the user endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { clock, fakeFetch, fakeService, json, problem, tokenBody } from '../support/fakes.mjs';

const USER = {
  id: 'u1',
  spotifyId: 'alice',
  displayName: 'Alice',
  isActive: true,
  isPremium: true,
  premiumSource: 'profile',
  lastActive: '2026-01-01T12:00:00.000Z',
  createdAt: '2026-01-01T11:00:00.000Z',
  spotifyConnected: true,
  reauthRequired: false,
};

function page(handler, options = {}) {
  const c = clock();
  const f = fakeFetch(handler);
  const client = createClient({ fetch: f.fetch, now: c.now, channelName: null, locks: null, ...options });
  return { client, calls: f.calls };
}

test('login posts returnTo and navigates to the authorize URL', async () => {
  const visited = [];
  const authorizeUrl = 'https://accounts.example/authorize?client_id=x&state=s';
  const { client, calls } = page(() => json(200, { authorizeUrl }), { navigate: (url) => visited.push(url) });
  await client.login({ returnTo: '/rooms/7' });
  assert.deepEqual(visited, [authorizeUrl]);
  assert.equal(calls[0].route, 'POST /api/auth/spotify/login');
  assert.deepEqual(calls[0].body, { returnTo: '/rooms/7' });
  assert.equal(calls[0].init.credentials, 'include');
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json');
});

test('login without returnTo sends no body', async () => {
  const visited = [];
  const { client, calls } = page(() => json(200, { authorizeUrl: 'https://accounts.example/authorize' }), {
    navigate: (url) => visited.push(url),
  });
  await client.login();
  assert.equal(calls[0].init.body, undefined);
  assert.equal(calls[0].init.headers['Content-Type'], undefined);
  assert.equal(visited.length, 1);
});

test('login navigates with window.location.assign by default', async () => {
  const assigned = [];
  globalThis.location = { assign: (url) => assigned.push(url) };
  try {
    const { client } = page(() => json(200, { authorizeUrl: 'https://accounts.example/authorize' }));
    await client.login();
    assert.deepEqual(assigned, ['https://accounts.example/authorize']);
  } finally {
    delete globalThis.location;
  }
});

test('login does not navigate on an error or to a URL that is not http(s)', async () => {
  const visited = [];
  const navigate = (url) => visited.push(url);
  const limited = page(() => problem(429, 'too_many_logins', { retryAfter: 60 }), { navigate });
  await assert.rejects(limited.client.login(), (e) => e.kind === 'too_many_requests' && e.retryAfter === 60);
  const odd = page(() => json(200, { authorizeUrl: 'javascript:alert(1)' }), { navigate });
  await assert.rejects(odd.client.login(), (e) => e.code === 'invalid_response');
  const unauth = page(() => problem(401, 'unauthenticated'), { navigate });
  await assert.rejects(unauth.client.login(), (e) => e.kind === 'not_logged_in');
  assert.equal(unauth.calls.length, 1, 'login never rotates');
  assert.deepEqual(visited, []);
});

test('logout: scope device by default, everywhere on request; the token cache is cleared', async () => {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const client = createClient({ fetch: svc.fetch, now: c.now, channelName: null, locks: null });
  await client.accessToken();
  assert.deepEqual(await client.logout(), { scope: 'device', sessionsEnded: 1, spotifyDisconnected: false });
  assert.equal(svc.calls.at(-1).url, '/api/auth/spotify/logout?scope=device');
  // Nothing left in memory: the next ask goes to the service (which says the session is over).
  await assert.rejects(client.accessToken(), (e) => e.kind === 'not_logged_in');
  assert.equal(svc.count('GET /api/auth/spotify/token'), 2);

  svc.session = 'live';
  assert.deepEqual(await client.logout({ scope: 'everywhere' }), { scope: 'everywhere', sessionsEnded: 1, spotifyDisconnected: true });
  assert.equal(svc.calls.at(-1).url, '/api/auth/spotify/logout?scope=everywhere');
});

test('logout: a 401 (nothing to log out) counts as success', async () => {
  for (const answer of [() => problem(401, 'unauthenticated'), () => new Response('', { status: 401 })]) {
    const { client, calls } = page(answer);
    assert.deepEqual(await client.logout({ scope: 'everywhere' }), { scope: 'everywhere', sessionsEnded: 0, spotifyDisconnected: false });
    assert.equal(calls.length, 1, 'no rotation');
  }
});

test('logout: other failures are errors, and the token cache is cleared anyway', async () => {
  let step = 0;
  const { client, calls } = page(() => {
    step += 1;
    if (step === 1) return json(200, tokenBody('AT1'));
    if (step === 2) return problem(503, 'store_unavailable', { retryAfter: 5 });
    return json(200, tokenBody('AT2'));
  });
  await client.accessToken();
  await assert.rejects(client.logout(), (e) => e instanceof SpotauthError && e.kind === 'server' && e.retryAfter === 5);
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.equal(calls.length, 3);
});

test('a token request in flight when logout happens is not kept', async () => {
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  let gets = 0;
  const { client } = page(async (call) => {
    if (call.route === 'POST /api/auth/spotify/logout') return json(200, { scope: 'device', sessionsEnded: 1, spotifyDisconnected: false });
    gets += 1;
    if (gets === 1) await held;
    return json(200, tokenBody(`AT${gets}`));
  });
  const early = client.accessToken();
  await client.logout();
  release();
  assert.equal((await early).accessToken, 'AT1', 'the caller that asked before the logout gets its answer');
  assert.equal((await client.accessToken()).accessToken, 'AT2', 'but it was not kept');
});

test('config is fetched once after a success, and again after a failure', async () => {
  let n = 0;
  const { client, calls } = page(() =>
    ++n === 1 ? problem(503, 'store_unavailable') : json(200, { sdkUrl: 'https://sdk.example/p.js', spotifyApiUrl: 'https://api.example/v1' }),
  );
  await assert.rejects(client.config(), (e) => e.kind === 'server');
  const [a, b] = await Promise.all([client.config(), client.config()]);
  assert.deepEqual(a, { sdkUrl: 'https://sdk.example/p.js', spotifyApiUrl: 'https://api.example/v1' });
  assert.deepEqual(b, a);
  a.sdkUrl = 'changed';
  assert.equal((await client.config()).sdkUrl, 'https://sdk.example/p.js');
  assert.equal(calls.length, 2);
  assert.equal(calls[1].route, 'GET /api/config');
});

test('config that lacks its fields is an invalid_response', async () => {
  const { client } = page(() => json(200, { sdkUrl: 'https://sdk.example/p.js' }));
  await assert.rejects(client.config(), (e) => e.code === 'invalid_response');
});

test('me, activeUsers, setActive and subscription', async () => {
  const page1 = { items: [{ id: 'p1', displayName: 'Bob', canPlay: null, lastSeen: '2026-01-01T12:00:00Z' }], total: 1, offset: 5, limit: 10 };
  const sub = { isPremium: null, product: null, checkedAt: null, source: 'none' };
  const { client, calls } = page((call) => {
    switch (call.route) {
      case 'GET /api/users/me':
        return json(200, USER);
      case 'GET /api/users/active':
        return json(200, page1);
      case 'PUT /api/users/me/active':
        return json(200, { ...USER, isActive: call.body.isActive });
      case 'GET /api/auth/spotify/subscription':
        return json(200, sub);
      default:
        return problem(404, 'not_found');
    }
  });
  assert.deepEqual(await client.me(), USER);
  assert.deepEqual(await client.activeUsers({ offset: 5, limit: 10 }), page1);
  assert.equal(calls.at(-1).search, '?offset=5&limit=10');
  await client.activeUsers();
  assert.equal(calls.at(-1).url, '/api/users/active');
  assert.equal((await client.setActive(false)).isActive, false);
  assert.deepEqual(calls.at(-1).body, { isActive: false });
  assert.deepEqual(await client.subscription(), sub);
  await assert.rejects(client.setActive('no'), TypeError);
  assert.ok(calls.every((c) => c.init.credentials === 'include'));
});

test('the client and its methods work unbound', async () => {
  const { client } = page(() => json(200, USER));
  const { me, onError } = client;
  assert.deepEqual(await me(), USER);
  const off = onError(() => {});
  off();
  off();
});

test('sessions: listed, one ended, the others ended; ending this one forgets the tokens', async () => {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const mine = { id: 's1', current: true, device: 'Firefox on Linux' };
  const other = { id: 's/2', current: false, device: 'Safari on iPhone' };
  svc.override = (call) => {
    if (call.route === 'GET /api/users/me/sessions') return json(200, { items: [mine, other] });
    if (call.route === 'DELETE /api/users/me/sessions') return json(200, { sessionsEnded: 1 });
    if (call.route.startsWith('DELETE /api/users/me/sessions/')) return new Response(null, { status: 204 });
    return null;
  };
  const client = createClient({ fetch: svc.fetch, now: c.now, channelName: null, locks: null });
  assert.deepEqual(await client.sessions(), [mine, other]);
  await client.endSession(other);
  assert.equal(svc.calls.at(-1).url, '/api/users/me/sessions/s%2F2', 'the id is escaped');
  assert.deepEqual(await client.endOtherSessions(), { sessionsEnded: 1 });
  await client.accessToken();
  await client.endSession(mine);
  svc.session = 'over';
  await assert.rejects(client.accessToken(), (e) => e.kind === 'not_logged_in', 'asked again, not from memory');
  await assert.rejects(client.endSession(''), TypeError);
});

test('deleteAccount: DELETE /api/users/me, then nothing is kept in memory', async () => {
  const c = clock();
  const svc = fakeService({ now: c.now });
  svc.override = (call) => {
    if (call.route !== 'DELETE /api/users/me') return null;
    svc.session = 'over';
    return new Response(null, { status: 204 });
  };
  const client = createClient({ fetch: svc.fetch, now: c.now, channelName: null, locks: null });
  await client.accessToken();
  await client.deleteAccount();
  assert.equal(svc.count('DELETE /api/users/me'), 1);
  await assert.rejects(client.accessToken(), (e) => e.kind === 'not_logged_in');
});
