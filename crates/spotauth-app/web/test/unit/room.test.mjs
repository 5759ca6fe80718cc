// Listening together: reporting the page's player, leaving, group play and pause, and live
// updates of the room (an EventSource, with polling while it is not open).
import { test, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, SpotauthError } from '../../client/spotauth.js';
import { clock, eventSources, fakeFetch, json, problem, tokenBody, fail, ok, scriptedPage } from '../support/fakes.mjs';

const PLAYER = 'PUT /api/room/player';
const LEAVE = 'DELETE /api/room/player';
const PLAY = 'POST /api/room/play';
const PAUSE = 'POST /api/room/pause';
const REFRESH = 'POST /api/auth/spotify/refresh';

const NOW_PLAYING = { uri: 'spotify:track:4uLU6hMCjMI75M1A2tKUQC', name: 'Never Gonna Give You Up', isPlaying: true };
const REPORT = { deviceId: 'd0c5e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192', name: 'Listening room – Alice', nowPlaying: NOW_PLAYING };

const noContent = () => new Response(null, { status: 204 });


afterEach(() => {
  mock.timers.reset();
});

// ---------------------------------------------------------------- reportPlayer

test('reportPlayer: PUT /api/room/player with exactly deviceId, name and nowPlaying; a 204 resolves', async () => {
  const { client, calls } = scriptedPage({ [PLAYER]: [noContent] });
  assert.equal(await client.reportPlayer({ ...REPORT, nowPlaying: { ...NOW_PLAYING, extra: 'dropped' }, also: 1 }), undefined);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].route, PLAYER);
  assert.equal(calls[0].url, '/api/room/player');
  assert.deepEqual(calls[0].body, REPORT);
  assert.equal(calls[0].init.credentials, 'include');
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json');
  assert.equal(calls[0].init.keepalive, undefined);
});

test('reportPlayer: nowPlaying null (or left out) is sent as null; a 200 with a body resolves too', async () => {
  const { client, calls } = scriptedPage({ [PLAYER]: [ok({ whatever: true }), () => new Response('', { status: 200 })] });
  await client.reportPlayer({ deviceId: 'd1', name: 'Room', nowPlaying: null });
  await client.reportPlayer({ deviceId: 'd1', name: 'Room' });
  assert.deepEqual(calls.map((c) => c.body), [
    { deviceId: 'd1', name: 'Room', nowPlaying: null },
    { deviceId: 'd1', name: 'Room', nowPlaying: null },
  ]);
});

test('reportPlayer: a malformed report is a TypeError and nothing is sent', async () => {
  const { client, calls } = scriptedPage({ [PLAYER]: [noContent] });
  const bad = [
    undefined,
    null,
    'd1',
    { name: 'Room' },
    { deviceId: '', name: 'Room' },
    { deviceId: 42, name: 'Room' },
    { deviceId: 'd1' },
    { deviceId: 'd1', name: '' },
    { deviceId: 'd1', name: 'Room', nowPlaying: 'spotify:track:x' },
    { deviceId: 'd1', name: 'Room', nowPlaying: { uri: 'spotify:track:x', name: 'X' } },
    { deviceId: 'd1', name: 'Room', nowPlaying: { uri: 'spotify:track:x', name: 'X', isPlaying: 'yes' } },
  ];
  for (const report of bad) {
    await assert.rejects(client.reportPlayer(report), TypeError, JSON.stringify(report));
  }
  assert.equal(calls.length, 0);
});

test('reportPlayer: the service’s problems map to kinds (device_not_found → no_player)', async () => {
  // [code, status, Retry-After, kind]
  const table = [
    ['device_not_found', 404, undefined, 'no_player'],
    ['premium_required', 403, undefined, 'premium_required'],
    ['spotify_rate_limited', 503, 30, 'spotify_busy'],
    ['spotify_unavailable', 503, 5, 'spotify_busy'],
    ['invalid_device', 400, undefined, 'server'],
    ['invalid_json', 400, undefined, 'server'],
    ['spotify_reauth_required', 401, undefined, 'reconnect_spotify'],
  ];
  for (const [code, status, retryAfter, kind] of table) {
    const { client, calls } = scriptedPage({ [PLAYER]: [fail(status, code, { retryAfter })] });
    const e = await client.reportPlayer(REPORT).then(
      () => assert.fail(`${code}: resolved`),
      (err) => err,
    );
    assert.ok(e instanceof SpotauthError, code);
    assert.deepEqual([e.kind, e.code, e.status, e.retryAfter], [kind, code, status, retryAfter ?? null], code);
    assert.equal(calls.length, 1, `${code}: no retry by the client`);
  }
});

test('reportPlayer: a 401 unauthenticated rotates the session and reports again once', async () => {
  const { client, routes } = scriptedPage({
    [PLAYER]: [fail(401, 'unauthenticated'), noContent],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  await client.reportPlayer(REPORT);
  assert.deepEqual(routes(), [PLAYER, REFRESH, PLAYER]);
});

// ---------------------------------------------------------------- leavePlayer

test('leavePlayer: DELETE /api/room/player?deviceId=<id, encoded>, no body; a 204 resolves', async () => {
  const { client, calls } = scriptedPage({ [LEAVE]: [noContent] });
  assert.equal(await client.leavePlayer('a b/c&d=e'), undefined);
  assert.equal(calls[0].url, '/api/room/player?deviceId=a%20b%2Fc%26d%3De');
  assert.equal(new URLSearchParams(calls[0].search).get('deviceId'), 'a b/c&d=e');
  assert.equal(calls[0].init.body, undefined);
  assert.equal(calls[0].init.credentials, 'include');
  assert.equal(calls[0].init.keepalive, undefined);
});

test('leavePlayer: rotates on 401 unauthenticated like every call', async () => {
  const { client, routes } = scriptedPage({
    [LEAVE]: [fail(401, 'unauthenticated'), noContent],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  await client.leavePlayer('d1');
  assert.deepEqual(routes(), [LEAVE, REFRESH, LEAVE]);
});

test('leavePlayer with keepalive: one request that outlives the page, never a rotation', async () => {
  const { client, calls, routes } = scriptedPage({ [LEAVE]: [noContent] });
  await client.leavePlayer('d1', { keepalive: true });
  assert.equal(calls[0].init.keepalive, true);
  assert.equal(calls[0].init.credentials, 'include');

  const unauth = scriptedPage({ [LEAVE]: [fail(401, 'unauthenticated')], [REFRESH]: [ok(tokenBody('AT-R'))] });
  await assert.rejects(unauth.client.leavePlayer('d1', { keepalive: true }), (e) => e.kind === 'not_logged_in');
  assert.deepEqual(unauth.routes(), [LEAVE]);
  assert.deepEqual(routes(), [LEAVE]);
});

test('leavePlayer: a missing device id is a TypeError', async () => {
  const { client, calls } = scriptedPage({ [LEAVE]: [noContent] });
  for (const id of [undefined, '', 7, null]) await assert.rejects(client.leavePlayer(id), TypeError);
  assert.equal(calls.length, 0);
});

// ---------------------------------------------------------------- groupPlay / groupPause

const OUTCOMES = [
  { id: 'u-alice', displayName: 'Alice', outcome: 'started' },
  { id: 'u-bob', displayName: 'Bob', outcome: 'started' },
  { id: 'u-carol', displayName: 'Carol', outcome: 'premium_required' },
  { id: 'u-erin', displayName: null, outcome: 'no_player' },
  { id: 'u-frank', displayName: 'Frank', outcome: 'reconnect_spotify' },
  { id: 'u-gina', displayName: 'Gina', outcome: 'rate_limited', retryAfter: 12 },
  { id: 'u-hal', displayName: 'Hal', outcome: 'failed' },
];

test('groupPlay: track URIs go as uris, with positionMs when given; the outcomes come back', async () => {
  const { client, calls } = scriptedPage({ [PLAY]: [ok({ outcomes: OUTCOMES })] });
  const uris = ['spotify:track:4uLU6hMCjMI75M1A2tKUQC', 'spotify:episode:512ojhOuo1ktJprKbVcKyQ'];
  assert.deepEqual(await client.groupPlay({ uris }, { positionMs: 1500.7 }), OUTCOMES);
  assert.equal(calls[0].route, PLAY);
  assert.deepEqual(calls[0].body, { uris, positionMs: 1500 });
  assert.equal(calls[0].init.credentials, 'include');
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json');
});

test('groupPlay: a context goes as contextUri, and no positionMs unless given', async () => {
  const { client, calls } = scriptedPage({ [PLAY]: [ok({ outcomes: [] })] });
  assert.deepEqual(await client.groupPlay({ contextUri: 'spotify:album:1DFixLWuPkv3KT3TnV35m3' }), []);
  assert.deepEqual(calls[0].body, { contextUri: 'spotify:album:1DFixLWuPkv3KT3TnV35m3' });
  await client.groupPlay({ contextUri: 'spotify:playlist:37i9dQZF1DXcBWIGoYBM5M' }, { positionMs: 0 });
  assert.deepEqual(calls[1].body, { contextUri: 'spotify:playlist:37i9dQZF1DXcBWIGoYBM5M', positionMs: 0 });
});

test('groupPlay: outcomes are read strictly (unknown outcome → failed, no displayName → null)', async () => {
  const { client } = scriptedPage({
    [PLAY]: [
      ok({
        outcomes: [
          { id: 'u1', outcome: 'exploded', retryAfter: 'soon' },
          { id: 'u2', displayName: 7, outcome: 'rate_limited', retryAfter: 2.2, token: 'BQ-secret' },
          { id: 'u3', displayName: 'C', outcome: 'constructor' },
        ],
      }),
    ],
  });
  assert.deepEqual(await client.groupPlay({ uris: ['spotify:track:a'] }), [
    { id: 'u1', displayName: null, outcome: 'failed' },
    { id: 'u2', displayName: null, outcome: 'rate_limited', retryAfter: 3 },
    { id: 'u3', displayName: 'C', outcome: 'failed' },
  ]);
});

test('groupPlay: an answer without outcomes is an invalid_response', async () => {
  for (const body of [{}, { outcomes: 'all started' }, { outcomes: [{ outcome: 'started' }] }, { outcomes: [null] }]) {
    const { client } = scriptedPage({ [PLAY]: [ok(body)] });
    await assert.rejects(client.groupPlay({ uris: ['spotify:track:a'] }), (e) => e.code === 'invalid_response', JSON.stringify(body));
  }
});

test('groupPlay: not_host, rate_limited and invalid_target map to kinds', async () => {
  const table = [
    ['not_host', 403, undefined, 'not_host'],
    ['rate_limited', 429, 9, 'too_many_requests'],
    ['invalid_target', 400, undefined, 'server'],
    ['premium_required', 403, undefined, 'premium_required'],
  ];
  for (const [code, status, retryAfter, kind] of table) {
    const { client, calls } = scriptedPage({ [PLAY]: [fail(status, code, { retryAfter })] });
    const e = await client.groupPlay({ uris: ['spotify:track:a'] }).then(
      () => assert.fail(`${code}: resolved`),
      (err) => err,
    );
    assert.ok(e instanceof SpotauthError);
    assert.deepEqual([e.kind, e.code, e.status, e.retryAfter], [kind, code, status, retryAfter ?? null], code);
    assert.equal(calls.length, 1);
  }
  const e = new SpotauthError({ kind: 'not_host', code: 'not_host', status: 403 });
  assert.match(e.message, /hosts/);
});

test('groupPlay: a malformed target or position is a TypeError and nothing is sent', async () => {
  const { client, calls } = scriptedPage({ [PLAY]: [ok({ outcomes: [] })] });
  const bad = [
    [undefined],
    ['spotify:track:a'],
    [{}],
    [{ uris: [] }],
    [{ uris: 'spotify:track:a' }],
    [{ uris: ['spotify:track:a', ''] }],
    [{ uris: ['spotify:track:a'], contextUri: 'spotify:album:b' }],
    [{ contextUri: '' }],
    [{ contextUri: 5 }],
    [{ uris: ['spotify:track:a'] }, { positionMs: -1 }],
    [{ uris: ['spotify:track:a'] }, { positionMs: '10' }],
    [{ uris: ['spotify:track:a'] }, { positionMs: Infinity }],
  ];
  for (const args of bad) await assert.rejects(client.groupPlay(...args), TypeError, JSON.stringify(args));
  assert.equal(calls.length, 0);
});

test('groupPlay and groupPause rotate on 401 unauthenticated, once', async () => {
  const { client, routes } = scriptedPage({
    [PLAY]: [fail(401, 'unauthenticated'), ok({ outcomes: [] })],
    [PAUSE]: [fail(401, 'unauthenticated'), ok({ outcomes: [] })],
    [REFRESH]: [ok(tokenBody('AT-R'))],
  });
  await client.groupPlay({ uris: ['spotify:track:a'] });
  await client.groupPause();
  assert.deepEqual(routes(), [PLAY, REFRESH, PLAY, PAUSE, REFRESH, PAUSE]);
});

test('groupPause: POST /api/room/pause with no body; the outcomes come back', async () => {
  const paused = [
    { id: 'u-alice', displayName: 'Alice', outcome: 'paused' },
    { id: 'u-carol', displayName: 'Carol', outcome: 'premium_required' },
  ];
  const { client, calls } = scriptedPage({ [PAUSE]: [ok({ outcomes: paused })] });
  assert.deepEqual(await client.groupPause(), paused);
  assert.equal(calls[0].init.body, undefined);
  assert.equal(calls[0].init.headers['Content-Type'], undefined);
  const limited = scriptedPage({ [PAUSE]: [fail(403, 'not_host')] });
  await assert.rejects(limited.client.groupPause(), (e) => e.kind === 'not_host');
});

// ---------------------------------------------------------------- subscribe

/** A client with a fake EventSource and mock timers; `changes` records every onChange. */
function subscriber(options = {}) {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const sources = eventSources();
  const { client, calls } = scriptedPage({}, { EventSource: sources.EventSource, ...options });
  const changes = [];
  return { client, calls, sources, changes, onChange: (change) => changes.push(change) };
}

test('subscribe: one EventSource with credentials; each room event calls onChange', () => {
  const { client, sources, changes, onChange, calls } = subscriber({ baseUrl: 'https://auth.example/' });
  const unsubscribe = client.subscribe(onChange);
  assert.equal(sources.made.length, 1);
  const es = sources.last;
  assert.equal(es.url, 'https://auth.example/api/room/events');
  assert.deepEqual(es.init, { withCredentials: true });
  es.open();
  es.send('room', { version: 7 });
  es.send('room', { version: 8 });
  es.send('room', 'not json');
  es.send('message', { version: 9 }); // not a room event
  assert.deepEqual(changes, [
    { source: 'event', version: 7 },
    { source: 'event', version: 8 },
    { source: 'event', version: null },
  ]);
  assert.equal(calls.length, 0, 'subscribe itself fetches nothing');
  unsubscribe();
  assert.equal(es.closed, true);
  assert.equal(es.listenerCount(), 0);
  es.send('room', { version: 10 });
  assert.equal(changes.length, 3);
});

test('subscribe: polls every pollMs until the stream opens, and while it reconnects', () => {
  const { client, sources, changes, onChange } = subscriber();
  const unsubscribe = client.subscribe(onChange, { pollMs: 1000 });
  const es = sources.last;
  mock.timers.tick(2500); // still connecting: the fallback runs
  assert.deepEqual(changes, [
    { source: 'poll', version: null },
    { source: 'poll', version: null },
  ]);
  es.open();
  mock.timers.tick(10_000);
  assert.equal(changes.length, 2, 'no polling while the stream is open');

  es.fail(); // the browser reconnects by itself (CONNECTING)
  mock.timers.tick(3000);
  assert.equal(changes.length, 5);
  assert.equal(sources.made.length, 1, 'the same EventSource reconnects');
  es.open();
  es.send('room', { version: 2 });
  mock.timers.tick(5000);
  assert.deepEqual(changes.at(-1), { source: 'event', version: 2 });
  assert.equal(changes.length, 6);
  unsubscribe();
  mock.timers.tick(10_000);
  assert.equal(changes.length, 6);
});

test('subscribe: pollMs defaults to 5 s', () => {
  const { client, changes, onChange } = subscriber();
  const unsubscribe = client.subscribe(onChange);
  mock.timers.tick(4999);
  assert.equal(changes.length, 0);
  mock.timers.tick(1);
  assert.equal(changes.length, 1);
  unsubscribe();
});

test('subscribe: a stream the browser gave up on is opened again later, backing off, polling meanwhile', () => {
  const { client, sources, changes, onChange } = subscriber();
  const unsubscribe = client.subscribe(onChange, { pollMs: 1000 });
  sources.last.fail({ closed: true }); // e.g. a 401 or 503 answer
  assert.equal(sources.made[0].closed, true);
  assert.equal(sources.made[0].listenerCount(), 0);
  mock.timers.tick(1000);
  assert.equal(sources.made.length, 2, 'opened again after pollMs');
  assert.equal(changes.length, 1);
  sources.last.fail({ closed: true });
  mock.timers.tick(1999);
  assert.equal(sources.made.length, 2);
  mock.timers.tick(1);
  assert.equal(sources.made.length, 3, 'then after twice as long');
  assert.equal(changes.length, 3, 'polling went on all along');
  sources.last.open();
  mock.timers.tick(10_000);
  assert.equal(changes.length, 3);
  // Open once: the backoff starts over.
  sources.last.fail({ closed: true });
  mock.timers.tick(1000);
  assert.equal(sources.made.length, 4);
  unsubscribe();
  assert.equal(sources.last.closed, true);
  mock.timers.tick(120_000);
  assert.equal(sources.made.length, 4, 'nothing opens after unsubscribe');
});

test('subscribe: the backoff stops growing at a minute', () => {
  const { client, sources, onChange } = subscriber();
  const unsubscribe = client.subscribe(onChange, { pollMs: 5000 });
  for (let i = 0; i < 6; i += 1) {
    sources.last.fail({ closed: true });
    mock.timers.tick(60_000);
  }
  assert.equal(sources.made.length, 7);
  unsubscribe();
});

test('subscribe: unsubscribing while waiting to reopen cancels it', () => {
  const { client, sources, changes, onChange } = subscriber();
  const unsubscribe = client.subscribe(onChange, { pollMs: 1000 });
  sources.last.fail({ closed: true });
  unsubscribe();
  unsubscribe(); // twice is fine
  mock.timers.tick(60_000);
  assert.equal(sources.made.length, 1);
  assert.equal(changes.length, 0);
});

test('subscribe: without EventSource (or when it throws) it polls', () => {
  for (const EventSource of [
    null,
    class {
      constructor() {
        throw new SyntaxError('bad URL');
      }
    },
  ]) {
    const { client, changes, onChange } = subscriber({ EventSource });
    const unsubscribe = client.subscribe(onChange, { pollMs: 2000 });
    mock.timers.tick(6000);
    assert.deepEqual(changes, Array(3).fill({ source: 'poll', version: null }));
    unsubscribe();
    mock.timers.tick(6000);
    assert.equal(changes.length, 3);
    mock.timers.reset();
  }
});

test('subscribe: uses globalThis.EventSource by default', () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  const sources = eventSources();
  const real = globalThis.EventSource;
  globalThis.EventSource = sources.EventSource;
  try {
    const client = createClient({ fetch: () => assert.fail('no request'), channelName: null, locks: null });
    const unsubscribe = client.subscribe(() => {});
    assert.equal(sources.made.length, 1);
    assert.equal(sources.last.url, '/api/room/events');
    assert.equal(sources.last.withCredentials, true);
    unsubscribe();
  } finally {
    if (real === undefined) delete globalThis.EventSource;
    else globalThis.EventSource = real;
  }
});

test('subscribe: an onChange that throws or rejects does not stop the updates', async () => {
  const { client, sources } = subscriber();
  let n = 0;
  const unsubscribe = client.subscribe(() => {
    n += 1;
    if (n === 1) throw new Error('boom');
    return Promise.reject(new Error('later boom'));
  });
  sources.last.open();
  sources.last.send('room', { version: 1 });
  sources.last.send('room', { version: 2 });
  sources.last.send('room', { version: 3 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(n, 3);
  unsubscribe();
});

test('subscribe takes a function', () => {
  const { client } = subscriber();
  assert.throws(() => client.subscribe(), TypeError);
  assert.throws(() => client.subscribe('refresh'), TypeError);
});

test('two subscriptions are independent', () => {
  const { client, sources } = subscriber();
  const a = [];
  const b = [];
  const stopA = client.subscribe((c) => a.push(c));
  const stopB = client.subscribe((c) => b.push(c));
  assert.equal(sources.made.length, 2);
  for (const es of sources.made) es.open();
  stopA();
  sources.made[0].send('room', { version: 1 });
  sources.made[1].send('room', { version: 1 });
  assert.deepEqual([a.length, b.length], [0, 1]);
  stopB();
});
