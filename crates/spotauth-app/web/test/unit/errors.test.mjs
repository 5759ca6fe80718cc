// The kinds of errors: problems, login callbacks, non-JSON bodies, network failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { T0, clock, fakeFetch, json, problem, settle, tokenBody } from '../support/fakes.mjs';

function page(handler, options = {}) {
  const c = clock();
  const f = fakeFetch(handler);
  const client = createClient({ fetch: f.fetch, now: c.now, channelName: null, locks: null, ...options });
  return { client, calls: f.calls };
}

test('problem codes map to kinds (with Retry-After where the service sends it)', async () => {
  // [code, status, Retry-After, kind]
  const table = [
    ['unauthenticated', 401, undefined, 'not_logged_in'],
    ['spotify_reauth_required', 401, undefined, 'reconnect_spotify'],
    ['spotify_not_connected', 409, undefined, 'reconnect_spotify'],
    ['premium_required', 403, undefined, 'premium_required'],
    ['spotify_not_allow_listed', 403, undefined, 'not_allow_listed'],
    ['spotify_rate_limited', 503, 120, 'spotify_busy'],
    ['spotify_unavailable', 503, 5, 'spotify_busy'],
    ['rate_limited', 429, 9, 'too_many_requests'],
    ['too_many_logins', 429, 60, 'too_many_requests'],
    ['access_denied', 403, undefined, 'login_declined'],
    ['not_host', 403, undefined, 'not_host'],
    ['device_not_found', 404, undefined, 'no_player'],
    ['store_unavailable', 503, 5, 'server'],
    ['internal', 500, undefined, 'server'],
    ['cross_origin_refused', 403, undefined, 'server'],
    ['user_not_found', 404, undefined, 'server'],
    ['constructor', 400, undefined, 'server'],
    ['__proto__', 400, undefined, 'server'],
  ];
  for (const [code, status, retryAfter, kind] of table) {
    // The refresh that a 401 unauthenticated triggers fails too, so the error is the original kind.
    const { client } = page(() => problem(status, code, { retryAfter, detail: `Detail of ${code}.` }));
    const e = await client.me().then(
      () => assert.fail(`${code}: resolved`),
      (err) => err,
    );
    assert.ok(e instanceof SpotauthError, code);
    assert.ok(e instanceof Error, code);
    assert.equal(e.name, 'SpotauthError');
    assert.equal(e.kind, kind, code);
    assert.equal(e.code, code);
    assert.equal(e.status, status, code);
    assert.equal(e.retryAfter, retryAfter ?? null, code);
    assert.equal(e.problem.code, code);
    assert.match(e.message, new RegExp(`Detail of ${code.replace(/_/g, '_')}`));
  }
});

test('Retry-After: seconds, an HTTP date, or the problem body when the header cannot be read', async () => {
  const cases = [
    [{ 'retry-after': '42' }, {}, 42],
    [{ 'retry-after': new Date(T0 + 90_500).toUTCString() }, {}, 90],
    [{ 'retry-after': 'soon' }, {}, null],
    [{}, { retryAfter: 17 }, 17], // cross-origin without Access-Control-Expose-Headers
    [{}, {}, null],
  ];
  for (const [headers, extra, expected] of cases) {
    const body = { type: 'urn:spotauth:problem:rate_limited', title: 'Slow down', status: 429, code: 'rate_limited', ...extra };
    const { client } = page(() => new Response(JSON.stringify(body), { status: 429, headers }));
    await assert.rejects(client.subscription(), (e) => e.kind === 'too_many_requests' && e.retryAfter === expected);
  }
});

test('error bodies that are not problem documents give a server error, never a different exception', async () => {
  const cases = [
    [502, '<html><body>Bad Gateway</body></html>', { 'content-type': 'text/html' }],
    [500, '', {}],
    [503, 'upstream busy', { 'content-type': 'text/plain', 'retry-after': '12' }],
    [400, '"just a string"', { 'content-type': 'application/json' }],
    [400, '[1,2,3]', { 'content-type': 'application/json' }],
    [422, '{"truncated": ', { 'content-type': 'application/problem+json' }],
    [404, 'null', { 'content-type': 'application/json' }],
    [403, '{"code": 42}', { 'content-type': 'application/json' }],
  ];
  for (const [status, body, headers] of cases) {
    const { client, calls } = page(() => new Response(body, { status, headers }));
    const e = await client.me().then(
      () => assert.fail('resolved'),
      (err) => err,
    );
    assert.ok(e instanceof SpotauthError, `${status} ${body}`);
    assert.equal(e.kind, 'server');
    assert.equal(e.code, `http_${status}`);
    assert.equal(e.status, status);
    assert.equal(e.retryAfter, status === 503 ? 12 : null);
    if (typeof e.problem === 'object' && e.problem !== null) assert.equal(e.problem.code, 42);
    else assert.equal(e.problem, null);
    assert.equal(calls.length, 1, 'no rotation without the unauthenticated code');
  }
});

test('a 401 without a problem document does not rotate', async () => {
  const { client, calls } = page(() => new Response('Unauthorized', { status: 401 }));
  await assert.rejects(client.me(), (e) => e.kind === 'server' && e.code === 'http_401');
  assert.equal(calls.length, 1);
});

test('a success that is not JSON is an invalid_response', async () => {
  const { client } = page(() => new Response('<html>a proxy page</html>', { status: 200, headers: { 'content-type': 'text/html' } }));
  await assert.rejects(client.me(), (e) => e instanceof SpotauthError && e.kind === 'server' && e.code === 'invalid_response');
});

test('a fetch rejection is kind network', async () => {
  const { client } = page(() => new TypeError('Failed to fetch'));
  await assert.rejects(client.me(), (e) => e instanceof SpotauthError && e.kind === 'network' && e.code === 'network' && e.status === 0);
  await assert.rejects(client.logout(), (e) => e.kind === 'network');
  await assert.rejects(client.login(), (e) => e.kind === 'network');
});

test('no error message contains a token', async () => {
  const secret = 'BQ-very-secret-token';
  const failures = [
    () => problem(503, 'spotify_unavailable', { retryAfter: 3 }),
    () => new Response(`oops ${secret}`, { status: 500 }),
    () => json(200, { accessToken: secret }), // no expiry: invalid_response
    () => new TypeError(`network down while sending ${secret}`),
  ];
  for (const failure of failures) {
    let n = 0;
    const { client } = page(() => (++n === 1 ? json(200, tokenBody(secret)) : failure()));
    assert.equal(await new Promise((resolve) => client.getOAuthToken(resolve)), secret);
    const errors = [];
    client.onError((e) => errors.push(e));
    client.getOAuthToken(() => assert.fail('no token'));
    await settle();
    assert.equal(errors.length, 1);
    const direct = await client.accessToken({ refused: secret }).catch((e) => e);
    for (const e of [...errors, direct]) {
      assert.ok(e instanceof SpotauthError);
      assert.ok(!e.message.includes(secret), e.message);
      assert.ok(!String(e).includes(secret));
      assert.ok(!JSON.stringify(e).includes(secret));
    }
  }
});

test('loginResult reads ?error= and ?retryAfter=', () => {
  const { client } = page(() => assert.fail('no request'));
  // [query, kind, code, retryAfter]
  const table = [
    ['?error=access_denied', 'login_declined', 'access_denied', null],
    ['?error=premium_required', 'premium_required', 'premium_required', null],
    ['?error=not_allow_listed', 'not_allow_listed', 'not_allow_listed', null],
    ['?error=spotify_rate_limited&retryAfter=48925', 'spotify_busy', 'spotify_rate_limited', 48925],
    ['?error=spotify_unavailable&retryAfter=5', 'spotify_busy', 'spotify_unavailable', 5],
    ['?error=rate_limited&retryAfter=30', 'too_many_requests', 'rate_limited', 30],
    ['?error=too_many_logins&retryAfter=600', 'too_many_requests', 'too_many_logins', 600],
    ...[
      'login_failed',
      'state_missing',
      'state_mismatch',
      'state_unknown',
      'login_expired',
      'state_reused',
      'code_refused',
      'authorization_error',
      'invalid_request',
      'something_new',
    ].map((code) => [`?error=${code}`, 'login_failed', code, null]),
    ['?error=rate_limited&retryAfter=soon', 'too_many_requests', 'rate_limited', null],
    ['?error=rate_limited&retryAfter=-3', 'too_many_requests', 'rate_limited', null],
    ['?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E', 'login_failed', 'login_failed', null],
    ['?error=', 'login_failed', 'login_failed', null],
    ['?room=7&error=access_denied#player', 'login_declined', 'access_denied', null],
  ];
  for (const [query, kind, code, retryAfter] of table) {
    const e = client.loginResult(`https://app.example/rooms${query}`);
    assert.ok(e instanceof SpotauthError, query);
    assert.deepEqual([e.kind, e.code, e.retryAfter, e.status, e.problem], [kind, code, retryAfter, 0, null], query);
    assert.ok(!e.message.includes('<script>'));
  }
  for (const clean of ['https://app.example/', 'https://app.example/?room=7', '/rooms?x=1', '']) {
    assert.equal(client.loginResult(clean), null, clean);
  }
  assert.equal(client.loginResult(new URL('https://app.example/?error=access_denied')).kind, 'login_declined');
  assert.equal(client.loginResult('/?error=premium_required').kind, 'premium_required', 'a relative URL');
});

test('loginResult reads window.location.href by default, and is null without one', () => {
  const { client } = page(() => assert.fail('no request'));
  assert.equal(client.loginResult(), null, 'no location (Node)');
  globalThis.location = { href: 'https://app.example/?error=spotify_unavailable&retryAfter=7' };
  try {
    const e = client.loginResult();
    assert.equal(e.kind, 'spotify_busy');
    assert.equal(e.retryAfter, 7);
  } finally {
    delete globalThis.location;
  }
});

test('SpotauthError can be made and inspected by pages', () => {
  const e = new SpotauthError({ kind: 'spotify_busy', code: 'spotify_unavailable', status: 503, retryAfter: 5 });
  assert.equal(e.name, 'SpotauthError');
  assert.equal(e.problem, null);
  assert.match(e.message, /spotify_unavailable/);
  const bare = new SpotauthError({ kind: 'network', code: 'network' });
  assert.deepEqual([bare.status, bare.retryAfter, bare.problem], [0, null, null]);
});

test('an error names the request the service logged it under', async () => {
  const answers = [
    problem(500, 'internal', { requestId: 'req-1' }),
    new Response('', { status: 502, headers: { 'x-request-id': 'req-2' } }),
    new Response('', { status: 502 }),
  ];
  const client = createClient({ fetch: async () => answers.shift(), channelName: null, locks: null });
  for (const want of ['req-1', 'req-2', null]) {
    await assert.rejects(client.me(), (e) => e.requestId === want);
  }
});
