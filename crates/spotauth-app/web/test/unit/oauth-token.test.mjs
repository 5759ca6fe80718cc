// Behaviour 2: getOAuthToken for the Web Playback SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { clock, deferred, fakeService, problem, settle } from '../support/fakes.mjs';

const GET = 'GET /api/auth/spotify/token';
const POST = 'POST /api/auth/spotify/token';

function page() {
  const c = clock();
  const svc = fakeService({ now: c.now });
  const client = createClient({ fetch: svc.fetch, now: c.now, channelName: null, locks: null });
  return { client, clock: c, svc };
}

/** What the SDK does: calls getOAuthToken (unbound) and waits for its callback. */
function sdkAsk(getOAuthToken) {
  return new Promise((resolve) => getOAuthToken(resolve));
}

test('the first call hands out a token, and getOAuthToken works unbound', async () => {
  const { client, svc } = page();
  const { getOAuthToken } = client;
  assert.equal(await sdkAsk(getOAuthToken), 'AT1');
  assert.deepEqual(svc.calls.map((c) => c.route), [GET]);
});

test('a later call replaces the token handed out: POST {refused}, even while memory thinks it fresh', async () => {
  const { client, svc } = page();
  const { getOAuthToken } = client;
  await sdkAsk(getOAuthToken);
  // The SDK asks again: its token expired early or was refused.
  assert.equal(await sdkAsk(getOAuthToken), 'AT2');
  assert.deepEqual(svc.calls.map((c) => c.route), [GET, POST]);
  assert.deepEqual(svc.calls[1].body, { refused: 'AT1' });
  assert.equal(svc.calls[1].init.headers['Content-Type'], 'application/json');
  // What was refused is not handed out by accessToken() either.
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.equal(svc.calls.length, 2);
});

test('a later call hands out a different fresh token from memory with no request', async () => {
  const { client, svc } = page();
  const { getOAuthToken } = client;
  await sdkAsk(getOAuthToken);
  await client.accessToken({ refused: 'AT1' }); // the page itself got AT2
  assert.equal(svc.calls.length, 2);
  assert.equal(await sdkAsk(getOAuthToken), 'AT2');
  assert.equal(svc.calls.length, 2, 'no request: AT2 was in memory');
});

test('one request per expiry: concurrent asks share it', async () => {
  const { client, svc, clock } = page();
  const { getOAuthToken } = client;
  await sdkAsk(getOAuthToken);
  for (const expected of ['AT2', 'AT3']) {
    const gate = deferred();
    svc.gate = gate.promise;
    const asks = Array.from({ length: 5 }, () => sdkAsk(getOAuthToken));
    await settle();
    assert.equal(svc.count(POST), expected === 'AT2' ? 1 : 2, 'one request in flight');
    gate.resolve();
    svc.gate = null;
    assert.deepEqual(await Promise.all(asks), Array(5).fill(expected));
    clock.advance(3600_000); // the next expiry
  }
  assert.equal(svc.count(POST), 2);
  assert.deepEqual(
    svc.calls.filter((c) => c.route === POST).map((c) => c.body.refused),
    ['AT1', 'AT2'],
  );
});

test('when memory has expired, the first call asks the service with a GET', async () => {
  const { client, svc, clock } = page();
  await client.accessToken();
  clock.advance(3600_000);
  assert.equal(await sdkAsk(client.getOAuthToken), 'AT1');
  assert.deepEqual(svc.calls.map((c) => c.route), [GET, GET]);
});

test('a failure goes to the onError listeners and the callback is not called', async () => {
  const { client, svc } = page();
  const { getOAuthToken } = client;
  await sdkAsk(getOAuthToken);
  svc.override = (call) => (call.route === POST ? problem(403, 'premium_required') : null);
  const heard = [];
  const second = [];
  const off = client.onError((e) => heard.push(e));
  client.onError(() => {
    throw new Error('a listener that throws does not stop the others');
  });
  client.onError((e) => second.push(e));
  let called = 0;
  getOAuthToken(() => {
    called += 1;
  });
  await settle();
  assert.equal(called, 0);
  assert.equal(heard.length, 1);
  assert.ok(heard[0] instanceof SpotauthError);
  assert.equal(heard[0].kind, 'premium_required');
  assert.equal(heard[0].status, 403);
  assert.equal(second.length, 1);

  off();
  getOAuthToken(() => {
    called += 1;
  });
  await settle();
  assert.equal(heard.length, 1, 'unsubscribed');
  assert.equal(second.length, 2);
  assert.equal(svc.count(POST), 2, 'a failure is not kept: each ask tries again');

  // Once the service recovers, the SDK gets a token.
  svc.override = null;
  assert.equal(await sdkAsk(getOAuthToken), 'AT2');
  assert.equal(called, 0);
});

test('a network failure reaches onError as kind network', async () => {
  const c = clock();
  const client = createClient({
    fetch: async () => {
      throw new TypeError('Failed to fetch');
    },
    now: c.now,
    channelName: null,
    locks: null,
  });
  const heard = deferred();
  client.onError(heard.resolve);
  client.getOAuthToken(() => assert.fail('no token'));
  const e = await heard.promise;
  assert.equal(e.kind, 'network');
  assert.equal(e.status, 0);
  assert.ok(e.cause instanceof TypeError);
});
