// Behaviours 3 and 5 across tabs: two clients of one browser (a BroadcastChannel hub and one
// lock manager), against one fake service.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import { createClient } from '../../client/spotauth.js';
import { FakeLocks, T0, broadcastHub, clock, fakeService, settle } from '../support/fakes.mjs';

const GET = 'GET /api/auth/spotify/token';
const POST = 'POST /api/auth/spotify/token';
const REFRESH = 'POST /api/auth/spotify/refresh';
const ME = 'GET /api/users/me';

const realBroadcastChannel = globalThis.BroadcastChannel;
let hub;
beforeEach(() => {
  hub = broadcastHub();
  globalThis.BroadcastChannel = hub.BroadcastChannel;
});
afterEach(() => {
  globalThis.BroadcastChannel = realBroadcastChannel;
});

/** Two tabs of one browser: one clock, one service (one cookie jar), one lock manager. */
function browser({ locks = new FakeLocks() } = {}) {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const tab = () => createClient({ fetch: svc.fetch, now: c.now, locks });
  return { a: tab(), b: tab(), svc, locks, clock: c };
}

function sdkAsk(getOAuthToken) {
  return new Promise((resolve) => getOAuthToken(resolve));
}

test('two tabs asking at once make one request: the second finds the first one’s token inside the lock', async () => {
  const { a, b, svc, locks } = browser();
  const [ta, tb] = await Promise.all([a.accessToken(), b.accessToken()]);
  assert.equal(ta.accessToken, 'AT1');
  assert.equal(tb.accessToken, 'AT1');
  assert.equal(svc.count(GET), 1);
  assert.deepEqual(locks.granted, ['spotauth:token', 'spotauth:token']);
});

test('a token one tab got is used by the other with no request', async () => {
  const { a, b, svc } = browser();
  await a.accessToken();
  await settle();
  assert.equal((await b.accessToken()).accessToken, 'AT1');
  assert.equal(svc.count(GET), 1);
  const shared = hub.sent.filter((m) => m.data.type === 'token');
  assert.equal(shared.length, 1);
  assert.equal(shared[0].name, 'spotauth');
  assert.equal(shared[0].data.token.accessToken, 'AT1');
});

test('both SDKs refusing the same token cause one replacement', async () => {
  const { a, b, svc } = browser();
  assert.equal(await sdkAsk(a.getOAuthToken), 'AT1');
  await settle();
  assert.equal(await sdkAsk(b.getOAuthToken), 'AT1');
  assert.equal(svc.count(GET), 1);
  // Both players find AT1 expired at the same moment.
  const [na, nb] = await Promise.all([sdkAsk(a.getOAuthToken), sdkAsk(b.getOAuthToken)]);
  assert.equal(na, 'AT2');
  assert.equal(nb, 'AT2');
  assert.equal(svc.count(POST), 1);
  assert.equal(svc.minted, 2);
});

test('a token shared by another tab is handed to this tab’s SDK with no request', async () => {
  const { a, b, svc } = browser();
  await sdkAsk(a.getOAuthToken);
  await settle();
  await sdkAsk(b.getOAuthToken);
  await a.accessToken({ refused: 'AT1' }); // tab A got AT2 and shares it
  await settle();
  const before = svc.calls.length;
  assert.equal(await sdkAsk(b.getOAuthToken), 'AT2');
  assert.equal(svc.calls.length, before);
});

test('when a shared token arrives late, the other tab asks itself and the service does not refresh twice', async () => {
  const { a, b, svc } = browser();
  await sdkAsk(a.getOAuthToken);
  await settle();
  await sdkAsk(b.getOAuthToken);
  hub.hold();
  const [na, nb] = await Promise.all([sdkAsk(a.getOAuthToken), sdkAsk(b.getOAuthToken)]);
  hub.release();
  assert.deepEqual([na, nb], ['AT2', 'AT2']);
  assert.equal(svc.count(POST), 2, 'B asked too');
  assert.equal(svc.minted, 2, 'but the service replaced AT1 once: B refused a token no longer current');
});

test('an older token shared late does not replace a newer one', async () => {
  const { a, b, svc } = browser();
  await a.accessToken();
  await settle();
  hub.hold();
  await b.accessToken({ refused: 'AT1' }); // B: AT2, its message held
  hub.release();
  await settle();
  // A now holds AT2; a late copy of AT1 (e.g. from a third tab) must not win.
  const third = new hub.BroadcastChannel('spotauth');
  third.postMessage({ type: 'token', token: { accessToken: 'AT1', expiresAt: 'x', expiresIn: 3000 }, receivedAt: T0 });
  await settle();
  assert.equal((await a.accessToken()).accessToken, 'AT2');
  third.close();
});

test('logout in one tab drops the other tab’s token, and tokens shared after it are ignored', async () => {
  const { a, b, svc } = browser();
  await a.accessToken();
  await settle();
  assert.equal((await b.accessToken()).accessToken, 'AT1');
  assert.deepEqual(await a.logout(), { scope: 'device', sessionsEnded: 1, spotifyDisconnected: false });
  await settle();
  assert.ok(hub.sent.some((m) => m.data.type === 'logout'));
  // A stale token message (sent before the logout was heard somewhere) is not taken.
  const third = new hub.BroadcastChannel('spotauth');
  third.postMessage({ type: 'token', token: { accessToken: 'AT-stale', expiresAt: 'x', expiresIn: 3600 }, receivedAt: T0 });
  await settle();
  const gets = svc.count(GET);
  await assert.rejects(b.accessToken(), (e) => e.kind === 'not_logged_in');
  assert.equal(svc.count(GET), gets + 1, 'B asked the service: nothing was left in memory');
  third.close();
});

test('two tabs seeing 401 at once rotate the session once', async () => {
  const { a, b, svc, locks } = browser();
  svc.session = 'expired';
  const [ua, ub] = await Promise.all([a.me(), b.me()]);
  assert.equal(ua.id, 'u1');
  assert.equal(ub.id, 'u1');
  assert.equal(svc.count(REFRESH), 1);
  assert.equal(svc.count(ME), 4, 'each request retried once');
  assert.equal(locks.granted.filter((n) => n === 'spotauth:rotate').length, 2);
  // The refresh's token was shared too.
  await settle();
  assert.equal((await b.accessToken()).accessToken, 'AT1');
  assert.equal(svc.count(GET), 0);
});

test('token requests and rotations in two tabs at once: one refresh, whose token serves both tabs', async () => {
  const { a, b, svc } = browser();
  svc.session = 'expired';
  const [ta, ub, tb, ua] = await Promise.all([a.accessToken(), b.me(), b.accessToken(), a.me()]);
  assert.deepEqual([ta.accessToken, ub.id, tb.accessToken, ua.id], ['AT1', 'u1', 'AT1', 'u1']);
  assert.equal(svc.count(REFRESH), 1);
  assert.equal(svc.count(GET), 1, 'the 401 one; the refresh answered the token');
});

test('without locks and BroadcastChannel each page still works on its own', async () => {
  globalThis.BroadcastChannel = undefined;
  const c = clock();
  const svc = fakeService({ now: c.now });
  const a = createClient({ fetch: svc.fetch, now: c.now, locks: null });
  const b = createClient({ fetch: svc.fetch, now: c.now, locks: null });
  const [ta, tb] = await Promise.all([a.accessToken(), a.accessToken(), b.accessToken()]);
  assert.equal(ta.accessToken, 'AT1');
  assert.equal(tb.accessToken, 'AT1');
  assert.equal(svc.count(GET), 2, 'one per page');
  assert.equal(await sdkAsk(a.getOAuthToken), 'AT1');
  assert.equal(await sdkAsk(a.getOAuthToken), 'AT2');
});

test('a lock manager that refuses (e.g. an opaque origin) is done without', async () => {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const locks = {
    request: async () => {
      throw new Error('SecurityError');
    },
  };
  const client = createClient({ fetch: svc.fetch, now: c.now, locks, channelName: null });
  assert.equal((await client.accessToken()).accessToken, 'AT1');
});

test('channelName names the channel; null disables it', async () => {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const mine = createClient({ fetch: svc.fetch, now: c.now, locks: null, channelName: 'room-42' });
  const silent = createClient({ fetch: svc.fetch, now: c.now, locks: null, channelName: null });
  await mine.accessToken();
  await silent.accessToken();
  assert.deepEqual(hub.sent.map((m) => [m.name, m.data.type]), [['room-42', 'token']]);
  mine.close();
});

test('tokens never go to storage or cookies; only token, logout and rotated messages are sent', async () => {
  const text = await readFile(new URL('../../client/spotauth.js', import.meta.url), 'utf8');
  const source = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, ''); // the code, not its comments
  assert.doesNotMatch(source, /localStorage|sessionStorage|document\.cookie|indexedDB/);
  assert.doesNotMatch(source, /console\./, 'the client logs nothing (so never a token)');
  const { a, svc } = browser();
  svc.session = 'expired';
  await a.me();
  await a.accessToken({ refused: 'AT1' });
  await a.logout();
  assert.deepEqual([...new Set(hub.sent.map((m) => m.data.type))].sort(), ['logout', 'rotated', 'token']);
});
