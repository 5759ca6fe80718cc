// Behaviour 1: the token cache (fresh until expiresAt - margin, single flight, failures not kept).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { T0, clock, deferred, fakeFetch, json, problem, settle, tokenBody } from '../support/fakes.mjs';

const TOKEN = 'GET /api/auth/spotify/token';

/** A page alone (no channel, no locks) whose service mints AT1, AT2, ... on every token GET. */
function page({ expiresIn = 3600, options = {}, handler } = {}) {
  const c = clock();
  let minted = 0;
  const f = fakeFetch(handler ?? (() => json(200, tokenBody(`AT${++minted}`, expiresIn, c.now()))));
  const client = createClient({ fetch: f.fetch, now: c.now, channelName: null, locks: null, ...options });
  return { client, clock: c, calls: f.calls };
}

test('a token is served from memory until expiresAt minus the margin (60 s by default)', async () => {
  const { client, clock, calls } = page();
  const first = await client.accessToken();
  assert.deepEqual(first, tokenBody('AT1'));
  clock.advance(3540_000 - 1);
  const cached = await client.accessToken();
  assert.equal(cached.accessToken, 'AT1');
  assert.equal(cached.expiresAt, first.expiresAt);
  assert.equal(cached.expiresIn, 60, 'expiresIn counts down with the clock');
  assert.equal(calls.length, 1);
  clock.advance(1);
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.deepEqual(calls.map((c) => c.route), [TOKEN, TOKEN]);
});

test('the margin is never more than half the lifetime', async () => {
  const { client, clock, calls } = page({ expiresIn: 60 });
  await client.accessToken();
  clock.advance(29_999);
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  clock.advance(1);
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.equal(calls.length, 2);
});

test('refreshMarginMs sets the margin', async () => {
  const { client, clock, calls } = page({ options: { refreshMarginMs: 5000 } });
  await client.accessToken();
  clock.advance(3595_000 - 1);
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  clock.advance(1);
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.equal(calls.length, 2);
});

test('a token with no lifetime left is handed out but never served from memory', async () => {
  const { client, calls } = page({ expiresIn: 0 });
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  assert.equal((await client.accessToken()).accessToken, 'AT2');
  assert.equal(calls.length, 2);
});

test('the lifetime comes from expiresIn, not from this browser clock against expiresAt', async () => {
  // The browser's clock is two hours ahead of the service's: expiresAt is "in the past" here.
  const c = clock(T0 + 2 * 3600_000);
  const f = fakeFetch(() => json(200, tokenBody('AT1', 3600, T0)));
  const client = createClient({ fetch: f.fetch, now: c.now, channelName: null, locks: null });
  await client.accessToken();
  c.advance(3000_000);
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  assert.equal(f.calls.length, 1);
});

test('concurrent callers share one request', async () => {
  const gate = deferred();
  const { client, calls } = page({
    handler: async () => {
      await gate.promise;
      return json(200, tokenBody('AT1'));
    },
  });
  const asks = [client.accessToken(), client.accessToken(), client.accessToken()];
  await settle();
  assert.equal(calls.length, 1);
  gate.resolve();
  const tokens = await Promise.all(asks);
  assert.deepEqual(tokens.map((t) => t.accessToken), ['AT1', 'AT1', 'AT1']);
  assert.equal(calls.length, 1);
});

test('a failed request is not kept: everyone waiting gets the error, the next ask tries again', async () => {
  let n = 0;
  const gate = deferred();
  const { client, calls } = page({
    handler: async () => {
      n += 1;
      if (n === 1) {
        await gate.promise;
        return problem(503, 'spotify_unavailable', { retryAfter: 7 });
      }
      return json(200, tokenBody('AT1'));
    },
  });
  const asks = [client.accessToken(), client.accessToken()];
  gate.resolve();
  for (const outcome of await Promise.allSettled(asks)) {
    assert.equal(outcome.status, 'rejected');
    assert.ok(outcome.reason instanceof SpotauthError);
    assert.equal(outcome.reason.kind, 'spotify_busy');
    assert.equal(outcome.reason.retryAfter, 7);
  }
  assert.equal(calls.length, 1);
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  assert.equal(calls.length, 2);
});

test('an answer that is not a token is an invalid_response and is not kept', async () => {
  let n = 0;
  const { client, calls } = page({ handler: () => (++n === 1 ? json(200, { hello: 'world' }) : json(200, tokenBody('AT1'))) });
  await assert.rejects(client.accessToken(), (e) => e instanceof SpotauthError && e.kind === 'server' && e.code === 'invalid_response');
  assert.equal((await client.accessToken()).accessToken, 'AT1');
  assert.equal(calls.length, 2);
});

test('every request includes credentials and goes to baseUrl (prefix kept, trailing slash dropped)', async () => {
  const { client, calls } = page({ options: { baseUrl: 'https://auth.example/spotauth/' } });
  await client.accessToken();
  assert.equal(calls[0].url, 'https://auth.example/spotauth/api/auth/spotify/token');
  assert.equal(calls[0].init.credentials, 'include');
  assert.equal(calls[0].init.headers.Accept, 'application/json');
  assert.equal(calls[0].init.body, undefined);
});

test('what accessToken returns is a copy: changing it does not change memory', async () => {
  const { client } = page();
  const t = await client.accessToken();
  t.accessToken = 'tampered';
  assert.equal((await client.accessToken()).accessToken, 'AT1');
});
