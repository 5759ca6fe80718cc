// Behaviour 4: automatic session rotation on 401 unauthenticated (retry once, never loop).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { clock, fakeFetch, json, problem, tokenBody, fail, ok, scriptedPage } from '../support/fakes.mjs';

const ME = 'GET /api/users/me';
const REFRESH = 'POST /api/auth/spotify/refresh';
const TOKEN = 'GET /api/auth/spotify/token';
const USER = { id: 'u1', spotifyId: 'alice', displayName: 'Alice', isActive: true, isPremium: true };


test('a 401 unauthenticated rotates the session and retries the request once', async () => {
  const { client, routes } = scriptedPage({
    [ME]: [fail(401, 'unauthenticated'), ok(USER)],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  assert.deepEqual(await client.me(), USER);
  assert.deepEqual(routes(), [ME, REFRESH, ME]);
});

test("the refresh's token seeds the cache", async () => {
  const { client, routes } = scriptedPage({
    [ME]: [fail(401, 'unauthenticated'), ok(USER)],
    [REFRESH]: [ok(tokenBody('AT-R'))],
    [TOKEN]: [ok(tokenBody('AT-G'))],
  });
  await client.me();
  assert.equal((await client.accessToken()).accessToken, 'AT-R');
  assert.deepEqual(routes(), [ME, REFRESH, ME]);
});

test('a token request that needed a rotation takes the token the refresh returned', async () => {
  const { client, routes } = scriptedPage({
    [TOKEN]: [fail(401, 'unauthenticated'), ok(tokenBody('AT-G'))],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  assert.equal((await client.accessToken()).accessToken, 'AT-R');
  assert.deepEqual(routes(), [TOKEN, REFRESH]);
});

test('a refresh that answers 401 ends in not_logged_in, with no retry', async () => {
  for (const refresh of [fail(401, 'unauthenticated'), () => new Response('Unauthorized', { status: 401 })]) {
    const { client, routes } = scriptedPage({ [ME]: [fail(401, 'unauthenticated'), ok(USER)], [REFRESH]: [refresh] });
    await assert.rejects(client.me(), (e) => e instanceof SpotauthError && e.kind === 'not_logged_in' && e.status === 401);
    assert.deepEqual(routes(), [ME, REFRESH]);
  }
});

test('never loops: a retry that answers 401 again is not_logged_in, with no second refresh', async () => {
  const { client, routes } = scriptedPage({
    [ME]: [fail(401, 'unauthenticated')],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  await assert.rejects(client.me(), (e) => e.kind === 'not_logged_in' && e.code === 'unauthenticated');
  assert.deepEqual(routes(), [ME, REFRESH, ME]);
  // The next call starts over, once again at most one refresh.
  await assert.rejects(client.me(), (e) => e.kind === 'not_logged_in');
  assert.deepEqual(routes(), [ME, REFRESH, ME, ME, REFRESH, ME]);
});

test('concurrent 401s share one refresh; each request is retried once', async () => {
  let me = 0;
  const { client, routes } = scriptedPage({
    [ME]: [() => (++me <= 3 ? problem(401, 'unauthenticated') : json(200, USER))],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  const users = await Promise.all([client.me(), client.me(), client.me()]);
  assert.deepEqual(users, [USER, USER, USER]);
  assert.equal(routes().filter((r) => r === REFRESH).length, 1);
  assert.equal(routes().filter((r) => r === ME).length, 6);
});

test('a refresh that rotated the session but found no Spotify token still retries the request', async () => {
  for (const refresh of [
    fail(401, 'spotify_reauth_required'),
    fail(409, 'spotify_not_connected'),
    fail(503, 'spotify_unavailable', { retryAfter: 5 }),
  ]) {
    const reauth = { ...USER, reauthRequired: true };
    const { client, routes } = scriptedPage({ [ME]: [fail(401, 'unauthenticated'), ok(reauth)], [REFRESH]: [refresh] });
    assert.deepEqual(await client.me(), reauth);
    assert.deepEqual(routes(), [ME, REFRESH, ME]);
  }
});

test('a refresh refused for another reason surfaces that error, with no retry', async () => {
  const { client, routes } = scriptedPage({
    [ME]: [fail(401, 'unauthenticated'), ok(USER)],
    [REFRESH]: [fail(429, 'rate_limited', { retryAfter: 30 })],
  });
  await assert.rejects(client.me(), (e) => e.kind === 'too_many_requests' && e.retryAfter === 30);
  assert.deepEqual(routes(), [ME, REFRESH]);
});

test('other 401s (spotify_reauth_required) are not rotated', async () => {
  const { client, routes } = scriptedPage({ [TOKEN]: [fail(401, 'spotify_reauth_required')] });
  await assert.rejects(client.accessToken(), (e) => e.kind === 'reconnect_spotify');
  assert.deepEqual(routes(), [TOKEN]);
});

test('every call but login, logout and refresh rotates', async () => {
  const unauth = [fail(401, 'unauthenticated'), ok({})];
  const { client, routes } = scriptedPage({
    'GET /api/users/active': [fail(401, 'unauthenticated'), ok({ items: [], total: 0, offset: 0, limit: 20 })],
    'PUT /api/users/me/active': [fail(401, 'unauthenticated'), ok(USER)],
    'GET /api/auth/spotify/subscription': unauth,
    'POST /api/auth/spotify/logout': [fail(401, 'unauthenticated')],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  await client.activeUsers();
  await client.setActive(true);
  await client.subscription();
  assert.equal(routes().filter((r) => r === REFRESH).length, 3);
  await client.logout();
  assert.equal(routes().filter((r) => r === REFRESH).length, 3, 'logout does not rotate');
});
