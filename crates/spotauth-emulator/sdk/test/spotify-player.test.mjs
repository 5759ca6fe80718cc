// Unit tests of the emulator's fake Web Playback SDK (../spotify-player.js).
// Run: node --test crates/spotauth-emulator/sdk/test/
//
// The script runs in a node:vm context with a stubbed window/document/navigator and a fake
// emulator behind `fetch`. Its timers are real but time-scaled (a 300 ms poll takes 30 ms), and
// every test waits for conditions with generous bounds instead of asserting on timings.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SCRIPT_PATH = new URL('../spotify-player.js', import.meta.url);
const SCRIPT = readFileSync(SCRIPT_PATH, 'utf8');
const ORIGIN = 'http://127.0.0.1:8888';
const WAIT_MS = 8000;

/** Every page made, so that a failing test cannot leave a player polling. */
const pages = [];
after(() => {
  for (const page of pages) page.close();
});

/** Copies a value out of the vm realm (deepStrictEqual compares prototypes). */
const plain = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
const isTypeError = (e) => e && e.name === 'TypeError';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, what, timeout = WAIT_MS) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(5);
  }
}

/** A small in-memory emulator of the `/sdk/v1` endpoints. */
class FakeEmulator {
  constructor() {
    this.tokens = new Map([['tok-alice', 'alice'], ['tok-carol', 'carol']]);
    this.free = new Set(['carol']);
    this.devices = new Map(); // id -> {user, name, volume, version, state}
    this.requests = [];
    this.hook = null; // (req) => Response | undefined, to inject answers
    this.nextId = 1;
  }

  json(status, body, headers = {}) {
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
  }

  error(status, message, reason) {
    return this.json(status, { error: reason ? { status, message, reason } : { status, message } });
  }

  requestsTo(method, suffix) {
    return this.requests.filter((r) => r.method === method && r.path.endsWith(suffix));
  }

  polls(id) {
    return this.requestsTo('GET', `/sdk/v1/devices/${id}/state`);
  }

  commands(id) {
    return this.requestsTo('POST', `/sdk/v1/devices/${id}/commands`).map((r) => r.body);
  }

  /** Puts a playing or paused track on a device, bumping its version. */
  setState(id, patch) {
    const d = this.devices.get(id);
    d.state = patch === null ? null : { ...sampleState(), ...(d.state || {}), ...patch };
    d.version++;
  }

  fetch = async (url, init = {}) => {
    const u = new URL(url);
    const auth = (init.headers && init.headers.Authorization) || null;
    const req = {
      url, origin: u.origin, path: u.pathname, method: init.method || 'GET', auth,
      body: init.body ? JSON.parse(init.body) : undefined, init,
    };
    this.requests.push(req);
    if (this.hook) {
      const r = await this.hook(req);
      if (r !== undefined) return r;
    }
    const user = auth && auth.startsWith('Bearer ') ? this.tokens.get(auth.slice(7)) : undefined;
    if (!user) return this.error(401, 'The access token expired');
    if (this.free.has(user)) return this.error(403, 'Player command failed: Premium required', 'PREMIUM_REQUIRED');
    const m = u.pathname.match(/^\/sdk\/v1\/devices(?:\/([^/]+)(\/state|\/commands)?)?$/);
    if (!m) return this.error(404, 'Service not found');
    const [, id, sub] = m;
    if (!id && req.method === 'POST') {
      const deviceId = 'dev' + this.nextId++;
      this.devices.set(deviceId, { user, name: req.body.name, volume: req.body.volume, version: 0, state: null });
      return this.json(200, { device_id: deviceId, token_expires_in: 3600 });
    }
    const d = this.devices.get(id);
    if (!d || d.user !== user) return this.error(404, 'Device not found');
    if (sub === '/state') return this.json(200, { state: d.state, version: d.version, token_expires_in: 3600 });
    if (sub === '/commands') {
      if (!d.state) return this.error(404, 'Player command failed: No active device found', 'NO_ACTIVE_DEVICE');
      const c = req.body.command;
      if (c === 'pause') this.setState(id, { paused: true });
      if (c === 'resume') this.setState(id, { paused: false });
      return new Response(null, { status: 204 });
    }
    if (req.method === 'DELETE') {
      this.devices.delete(id);
      return new Response(null, { status: 204 });
    }
    return this.error(405, 'Method not allowed');
  };
}

function sampleState() {
  return {
    context: { uri: 'spotify:album:al1', metadata: {} },
    disallows: { pausing: false, resuming: true },
    paused: true,
    position: 1000,
    duration: 200000,
    repeat_mode: 0,
    shuffle: false,
    timestamp: 1,
    track_window: {
      current_track: {
        uri: 'spotify:track:abc', id: 'abc', type: 'track', media_type: 'audio', name: 'Emulated track abc',
        is_playable: true, album: { uri: 'spotify:album:al1', name: 'Emulated album', images: [] },
        artists: [{ uri: 'spotify:artist:emulated', name: 'The Emulators' }],
      },
      previous_tracks: [],
      next_tracks: [],
    },
  };
}

/**
 * Loads the SDK into a fresh vm context ("a page").
 * @param {{emu?: FakeEmulator, scale?: number, navigator?: object, onReady?: Function,
 *          scriptSrc?: string, now?: () => number}} opts
 */
function loadPage(opts = {}) {
  const emu = opts.emu || new FakeEmulator();
  const scale = opts.scale ?? 0.1;
  const timers = new Set();
  const logs = [];
  const log = (...args) => logs.push(args.map(String).join(' '));
  const sandbox = {
    console: { log, info: log, warn: log, error: log, debug: log },
    setTimeout: (fn, ms, ...args) => {
      const t = setTimeout((...a) => {
        timers.delete(t);
        fn(...a);
      }, Math.max(0, (Number(ms) || 0) * scale), ...args);
      timers.add(t);
      return t;
    },
    clearTimeout: (t) => {
      timers.delete(t);
      clearTimeout(t);
    },
    queueMicrotask,
    fetch: (url, init) => emu.fetch(url, init),
    AbortController,
    URL,
    navigator: opts.navigator ?? {},
    document: { currentScript: { src: opts.scriptSrc ?? `${ORIGIN}/sdk/spotify-player.js?v=1` } },
    location: { origin: 'http://127.0.0.1:8080' },
  };
  if (opts.onReady) sandbox.onSpotifyWebPlaybackSDKReady = opts.onReady;
  if (opts.now) {
    const RealDate = Date;
    sandbox.Date = class extends RealDate {
      static now() {
        return opts.now();
      }
    };
  }
  sandbox.window = sandbox;
  vm.createContext(sandbox);
  vm.runInContext(SCRIPT, sandbox, { filename: 'spotify-player.js' });
  const page = {
    emu,
    window: sandbox,
    logs,
    close() {
      for (const player of sandbox.__spotifyEmulatorSdk?.players ?? []) player.disconnect();
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
  pages.push(page);
  return page;
}

/** A player whose getOAuthToken hands out the given tokens in turn (the last one repeats). */
function makePlayer(page, tokens = ['tok-alice'], options = {}) {
  const asked = { count: 0 };
  const events = [];
  const player = new page.window.Spotify.Player({
    name: 'Test player',
    getOAuthToken: (cb) => {
      const t = tokens[Math.min(asked.count, tokens.length - 1)];
      asked.count++;
      cb(t);
    },
    ...options,
  });
  for (const e of ['ready', 'not_ready', 'player_state_changed', 'autoplay_failed', 'initialization_error',
    'authentication_error', 'account_error', 'playback_error']) {
    player.addListener(e, (payload) => events.push({ e, payload }));
  }
  const of = (e) => events.filter((x) => x.e === e);
  return { player, asked, events, of };
}

async function connected(page, tokens, options) {
  const h = makePlayer(page, tokens, options);
  assert.equal(await h.player.connect(), true);
  h.id = h.of('ready')[0].payload.device_id;
  return h;
}

test('defines Spotify.Player, then calls onSpotifyWebPlaybackSDKReady asynchronously', async () => {
  let calledWith = null;
  let synchronous = true;
  const page = loadPage({
    onReady() {
      calledWith = typeof page.window.Spotify?.Player;
    },
  });
  synchronous = calledWith !== null;
  await waitFor(() => calledWith !== null, 'onSpotifyWebPlaybackSDKReady');
  assert.equal(synchronous, false);
  assert.equal(calledWith, 'function');
  assert.deepEqual(Object.keys(page.window.Spotify), ['Player']);
  assert.ok(Array.isArray(page.window.__spotifyEmulatorSdk.players));
  // Loading without the callback defined is fine.
  loadPage();
  await sleep(20);
});

test('the constructor requires name and getOAuthToken', () => {
  const { window } = loadPage();
  assert.throws(() => new window.Spotify.Player(), isTypeError);
  assert.throws(() => new window.Spotify.Player({ getOAuthToken: () => {} }), isTypeError);
  assert.throws(() => new window.Spotify.Player({ name: 'x' }), isTypeError);
  const p = new window.Spotify.Player({ name: 'x', getOAuthToken: () => {} });
  assert.equal(window.__spotifyEmulatorSdk.players[0], p);
});

test('connect registers a device at the script origin and fires ready with its id', async () => {
  const page = loadPage({ scriptSrc: `${ORIGIN}/sdk/spotify-player.js` });
  const h = makePlayer(page, ['tok-alice'], { volume: 0.5 });
  assert.equal(await h.player.connect(), true);
  assert.deepEqual(plain(h.of('ready').map((x) => x.payload)), [{ device_id: 'dev1' }]);
  const [reg] = page.emu.requestsTo('POST', '/sdk/v1/devices');
  assert.equal(reg.url, `${ORIGIN}/sdk/v1/devices`);
  assert.equal(reg.auth, 'Bearer tok-alice');
  assert.deepEqual(reg.body, { name: 'Test player', volume: 0.5 });
  assert.equal(reg.init.cache, 'no-store');
  assert.equal(reg.init.credentials, 'omit');
  assert.equal(await h.player.getVolume(), 0.5);
  // Polling starts, with the token.
  await waitFor(() => page.emu.polls('dev1').length >= 2, 'polls');
  assert.ok(page.emu.polls('dev1').every((r) => r.auth === 'Bearer tok-alice' && r.init.cache === 'no-store'));
  // A second connect reuses the device.
  assert.equal(await h.player.connect(), true);
  assert.equal(page.emu.requestsTo('POST', '/sdk/v1/devices').length, 1);
  assert.equal(h.of('ready').length, 1);
  assert.equal(h.asked.count, 1);
});

test('a free user gets account_error and no ready', async () => {
  const page = loadPage();
  const h = makePlayer(page, ['tok-carol']);
  assert.equal(await h.player.connect(), false);
  assert.equal(h.of('ready').length, 0);
  assert.equal(h.of('account_error').length, 1);
  assert.equal(typeof h.of('account_error')[0].payload.message, 'string');
  assert.equal(h.of('authentication_error').length, 0);
  await sleep(50);
  assert.equal(page.emu.requests.filter((r) => r.method === 'GET').length, 0, 'no polling');
});

test('a 403 without PREMIUM_REQUIRED is an authentication_error', async () => {
  const page = loadPage();
  page.emu.hook = () => page.emu.error(403, 'Invalid token scopes.');
  const h = makePlayer(page);
  assert.equal(await h.player.connect(), false);
  assert.equal(h.of('authentication_error').length, 1);
  assert.equal(h.of('account_error').length, 0);
});

test('three refused tokens on connect end in authentication_error', async () => {
  const page = loadPage();
  const h = makePlayer(page, ['bad1', 'bad2', 'bad3', 'tok-alice']);
  assert.equal(await h.player.connect(), false);
  assert.equal(h.asked.count, 3);
  assert.deepEqual(page.emu.requestsTo('POST', '/sdk/v1/devices').map((r) => r.auth),
    ['Bearer bad1', 'Bearer bad2', 'Bearer bad3']);
  assert.equal(h.of('authentication_error').length, 1);
  assert.equal(h.of('ready').length, 0);
});

test('a refused token on connect is replaced and the connect succeeds', async () => {
  const page = loadPage();
  const h = makePlayer(page, ['bad1', 'tok-alice']);
  assert.equal(await h.player.connect(), true);
  assert.equal(h.asked.count, 2);
  assert.equal(h.of('ready').length, 1);
  assert.equal(h.of('authentication_error').length, 0);
});

test('connect retries 5xx and 429 (Retry-After), then succeeds', async () => {
  const page = loadPage();
  const answers = [
    () => page.emu.error(503, 'Service unavailable'),
    () => page.emu.json(429, { error: { status: 429, message: 'Too many requests' } }, { 'Retry-After': '1' }),
    () => { throw new TypeError('fetch failed'); },
  ];
  page.emu.hook = (req) => (req.method === 'POST' && answers.length ? answers.shift()() : undefined);
  const h = makePlayer(page);
  assert.equal(await h.player.connect(), true);
  assert.equal(page.emu.requestsTo('POST', '/sdk/v1/devices').length, 4);
  assert.equal(h.asked.count, 1, 'transient failures reuse the token');
  assert.equal(h.of('initialization_error').length, 0);
});

test('connect gives up with initialization_error when the emulator keeps failing', async () => {
  const page = loadPage({ scale: 0.02 });
  page.emu.hook = () => page.emu.error(500, 'Server error');
  const h = makePlayer(page);
  assert.equal(await h.player.connect(), false);
  assert.equal(h.of('initialization_error').length, 1);
  assert.equal(h.of('ready').length, 0);
  assert.ok(page.emu.requests.length >= 2 && page.emu.requests.length <= 6);
});

test('getOAuthToken that never calls back ends in authentication_error', async () => {
  const page = loadPage({ scale: 0.01 }); // 20 s -> 200 ms
  const events = [];
  const player = new page.window.Spotify.Player({ name: 'x', getOAuthToken: () => {} });
  player.addListener('authentication_error', (e) => events.push(e));
  assert.equal(await player.connect(), false);
  assert.equal(events.length, 1);
  assert.equal(page.emu.requests.length, 0);
});

test('a 401 while polling asks for a new token and keeps the same device', async () => {
  const page = loadPage();
  const h = await connected(page, ['tok-alice', 'tok-alice-2']);
  await waitFor(() => page.emu.polls(h.id).length >= 2, 'first polls');
  // The emulator expires the token server-side.
  page.emu.tokens.delete('tok-alice');
  page.emu.tokens.set('tok-alice-2', 'alice');
  await waitFor(() => page.emu.polls(h.id).filter((r) => r.auth === 'Bearer tok-alice-2').length >= 3,
    'polls with the new token');
  assert.equal(h.asked.count, 2);
  assert.equal(h.of('ready').length, 1);
  assert.equal(h.of('not_ready').length, 0);
  assert.equal(h.of('authentication_error').length, 0);
  assert.equal(page.emu.requestsTo('POST', '/sdk/v1/devices').length, 1);
  // Once the new token is in use, the old one is not sent again.
  const polls = page.emu.polls(h.id);
  const firstNew = polls.findIndex((r) => r.auth === 'Bearer tok-alice-2');
  assert.ok(polls.slice(firstNew).every((r) => r.auth === 'Bearer tok-alice-2'));
});

test('three refused tokens while polling end in authentication_error and stop polling', async () => {
  const page = loadPage();
  const h = await connected(page, ['tok-alice', 'bad1', 'bad2', 'bad3', 'bad4']);
  await waitFor(() => page.emu.polls(h.id).length >= 1, 'a poll');
  page.emu.tokens.delete('tok-alice');
  await waitFor(() => h.of('authentication_error').length === 1, 'authentication_error');
  assert.equal(h.asked.count, 4, 'the first token plus three refused ones');
  const n = page.emu.requests.length;
  await sleep(100);
  assert.equal(page.emu.requests.length, n, 'polling stopped');
  assert.equal(await h.player.getCurrentState(), null);
});

test('only one getOAuthToken ask is outstanding at a time', async () => {
  const page = loadPage();
  const pending = [];
  let asked = 0;
  const player = new page.window.Spotify.Player({
    name: 'x',
    getOAuthToken: (cb) => {
      asked++;
      if (asked === 1) cb('tok-alice');
      else pending.push(cb);
    },
  });
  assert.equal(await player.connect(), true);
  page.emu.tokens.delete('tok-alice');
  page.emu.tokens.set('tok-new', 'alice');
  await waitFor(() => pending.length === 1, 'a token ask');
  // Commands while the ask is outstanding do not ask again.
  const cmd = player.pause();
  await sleep(50);
  assert.equal(asked, 2);
  pending[0]('tok-new');
  await cmd;
  await waitFor(() => page.emu.polls('dev1').some((r) => r.auth === 'Bearer tok-new'), 'polls with the new token');
  assert.equal(asked, 2);
});

test('player_state_changed fires once per version', async () => {
  const page = loadPage();
  const h = await connected(page, ['tok-alice'], {});
  await h.player.activateElement(); // navigator.userActivation undefined: activated
  await waitFor(() => h.of('player_state_changed').length === 1, 'the first state');
  assert.equal(h.of('player_state_changed')[0].payload, null);
  page.emu.setState(h.id, { paused: false, position: 5000 });
  await waitFor(() => h.of('player_state_changed').length === 2, 'the playing state');
  const before = page.emu.polls(h.id).length;
  await waitFor(() => page.emu.polls(h.id).length >= before + 4, 'more polls');
  assert.equal(h.of('player_state_changed').length, 2, 'same version, no event');
  const s = h.of('player_state_changed')[1].payload;
  assert.deepEqual(JSON.parse(JSON.stringify(s)), { ...sampleState(), paused: false, position: 5000 });
  page.emu.setState(h.id, { paused: true });
  await waitFor(() => h.of('player_state_changed').length === 3, 'the paused state');
  assert.equal(h.of('player_state_changed')[2].payload.paused, true);
  assert.equal(h.of('autoplay_failed').length, 0);
  assert.deepEqual(page.emu.commands(h.id), []);
});

test('getCurrentState extrapolates the position while playing', async () => {
  let now = 1_000_000;
  const page = loadPage({ now: () => now });
  const h = await connected(page);
  assert.equal(await h.player.getCurrentState(), null, 'nothing on the device');
  await h.player.activateElement();
  page.emu.setState(h.id, { paused: false, position: 5000, duration: 10000 });
  await waitFor(() => h.of('player_state_changed').some((x) => x.payload && !x.payload.paused), 'playing');
  page.emu.hook = (req) => (req.method === 'GET' ? page.emu.error(503, 'pause polls') : undefined);
  await sleep(50); // let a poll in flight finish
  now += 2000;
  assert.equal((await h.player.getCurrentState()).position, 7000);
  now += 60_000;
  assert.equal((await h.player.getCurrentState()).position, 10000, 'capped at the duration');
  page.emu.hook = null;
  page.emu.setState(h.id, { paused: true, position: 8000 });
  await waitFor(() => h.of('player_state_changed').some((x) => x.payload && x.payload.paused), 'paused');
  now += 5000;
  assert.equal((await h.player.getCurrentState()).position, 8000);
  h.player.disconnect();
  assert.equal(await h.player.getCurrentState(), null, 'not connected');
});

test('a 404 on poll fires not_ready and stops polling', async () => {
  const page = loadPage();
  const h = await connected(page);
  await waitFor(() => page.emu.polls(h.id).length >= 1, 'a poll');
  page.emu.devices.delete(h.id);
  await waitFor(() => h.of('not_ready').length === 1, 'not_ready');
  assert.deepEqual(plain(h.of('not_ready')[0].payload), { device_id: h.id });
  const n = page.emu.requests.length;
  await sleep(100);
  assert.equal(page.emu.requests.length, n, 'polling stopped');
  // A new connect makes a new device.
  assert.equal(await h.player.connect(), true);
  assert.equal(h.of('ready').length, 2);
  assert.notEqual(h.of('ready')[1].payload.device_id, h.id);
});

test('transient poll errors keep polling and never throw', async () => {
  const page = loadPage();
  const h = await connected(page);
  let failures = 0;
  page.emu.hook = (req) => {
    if (req.method !== 'GET' || failures >= 4) return undefined;
    failures++;
    if (failures === 1) throw new TypeError('fetch failed');
    if (failures === 2) return new Response('not json', { status: 200 });
    return page.emu.error(502, 'Bad gateway');
  };
  await waitFor(() => failures >= 4 && h.of('player_state_changed').length >= 1, 'recovered polling');
  assert.equal(h.of('not_ready').length, 0);
  assert.equal(h.of('authentication_error').length, 0);
});

test('disconnect deletes the device and fires not_ready', async () => {
  const page = loadPage();
  const h = await connected(page);
  await waitFor(() => page.emu.polls(h.id).length >= 1, 'a poll');
  h.player.disconnect();
  assert.deepEqual(plain(h.of('not_ready').map((x) => x.payload)), [{ device_id: h.id }]);
  await waitFor(() => page.emu.requestsTo('DELETE', `/sdk/v1/devices/${h.id}`).length === 1, 'DELETE');
  const [del] = page.emu.requestsTo('DELETE', `/sdk/v1/devices/${h.id}`);
  assert.equal(del.auth, 'Bearer tok-alice');
  assert.equal(del.init.credentials, 'omit');
  await sleep(50);
  const n = page.emu.requests.length;
  await sleep(100);
  assert.equal(page.emu.requests.length, n, 'polling stopped');
  h.player.disconnect(); // idempotent
  assert.equal(h.of('not_ready').length, 1);
});

test('playing without activateElement fires autoplay_failed and pauses', async () => {
  const page = loadPage();
  const h = await connected(page);
  page.emu.setState(h.id, { paused: false });
  await waitFor(() => h.of('autoplay_failed').length === 1, 'autoplay_failed');
  await waitFor(() => page.emu.commands(h.id).length === 1, 'the pause command');
  assert.deepEqual(page.emu.commands(h.id), [{ command: 'pause' }]);
  await waitFor(() => h.of('player_state_changed').some((x) => x.payload && x.payload.paused), 'paused state');
  const before = page.emu.polls(h.id).length;
  await waitFor(() => page.emu.polls(h.id).length >= before + 3, 'more polls');
  assert.equal(h.of('autoplay_failed').length, 1, 'once');
  assert.equal(page.emu.commands(h.id).length, 1);
});

test('activateElement outside a user gesture does not unlock playback; inside one it does', async () => {
  const userActivation = { isActive: false };
  const page = loadPage({ navigator: { userActivation } });
  const h = await connected(page);
  await h.player.activateElement();
  page.emu.setState(h.id, { paused: false });
  await waitFor(() => h.of('autoplay_failed').length === 1, 'autoplay_failed');
  await waitFor(() => h.of('player_state_changed').some((x) => x.payload && x.payload.paused), 'paused');
  userActivation.isActive = true;
  await h.player.activateElement();
  await h.player.resume();
  await waitFor(() => h.of('player_state_changed').filter((x) => x.payload && !x.payload.paused).length === 2,
    'playing again');
  await sleep(100);
  assert.equal(h.of('autoplay_failed').length, 1);
  assert.deepEqual(page.emu.commands(h.id), [{ command: 'pause' }, { command: 'resume' }]);
});

test('commands post the documented bodies, resolve on 404 and poll right away', async () => {
  const page = loadPage();
  const h = await connected(page);
  await h.player.activateElement();
  assert.equal(await h.player.pause(), undefined, 'nothing playing: 404, still resolves');
  page.emu.setState(h.id, { paused: true });
  await waitFor(() => h.of('player_state_changed').some((x) => x.payload), 'the paused state');
  await h.player.resume();
  await h.player.togglePlay();
  await h.player.seek(12345.4);
  await h.player.nextTrack();
  await h.player.previousTrack();
  await h.player.setVolume(0.25);
  await h.player.setName('Renamed');
  assert.equal(await h.player.getVolume(), 0.25);
  await assert.rejects(h.player.seek('soon'), isTypeError);
  const cmds = page.emu.commands(h.id);
  assert.deepEqual(cmds, [
    { command: 'pause' }, { command: 'resume' }, { command: 'toggle' }, { command: 'seek', position_ms: 12345 },
    { command: 'next' }, { command: 'previous' }, { command: 'volume', volume: 0.25 },
    { command: 'name', name: 'Renamed' },
  ]);
  const cmdReqs = page.emu.requestsTo('POST', '/commands');
  assert.ok(cmdReqs.every((r) => r.auth === 'Bearer tok-alice' && r.init.cache === 'no-store'
    && r.init.credentials === 'omit' && r.init.headers['Content-Type'] === 'application/json'));
});

test('a command is followed by an immediate poll', async () => {
  const page = loadPage({ scale: 100 }); // the 300 ms poll interval becomes 30 s
  const h = await connected(page);
  await waitFor(() => page.emu.polls(h.id).length === 1, 'the first poll');
  await h.player.resume();
  await waitFor(() => page.emu.polls(h.id).length === 2, 'a poll right after the command');
});

test('commands on an unconnected player resolve without a request', async () => {
  const page = loadPage();
  const h = makePlayer(page);
  await h.player.pause();
  await h.player.setVolume(0.3);
  assert.equal(await h.player.getVolume(), 0.3);
  assert.equal(page.emu.requests.length, 0);
});

test('expireTokens() makes every player ask for a new token at its next poll, keeping its device', async () => {
  const page = loadPage();
  const a = await connected(page, ['tok-alice', 'tok-alice-2']);
  page.emu.tokens.set('tok-bob', 'bob');
  page.emu.tokens.set('tok-bob-2', 'bob');
  const b = await connected(page, ['tok-bob', 'tok-bob-2']);
  page.emu.tokens.set('tok-alice-2', 'alice');
  assert.equal(page.window.__spotifyEmulatorSdk.players.length, 2);
  page.window.__spotifyEmulatorSdk.expireTokens();
  await waitFor(() => page.emu.polls(a.id).some((r) => r.auth === 'Bearer tok-alice-2')
    && page.emu.polls(b.id).some((r) => r.auth === 'Bearer tok-bob-2'), 'polls with the new tokens');
  assert.equal(a.asked.count, 2);
  assert.equal(b.asked.count, 2);
  assert.equal(a.of('ready').length + b.of('ready').length, 2);
  assert.equal(page.emu.requestsTo('POST', '/sdk/v1/devices').length, 2);
});

test('listeners: unknown events, removal, and a throwing listener', async () => {
  const page = loadPage();
  const player = new page.window.Spotify.Player({ name: 'x', getOAuthToken: (cb) => cb('tok-alice') });
  const seen = [];
  const cb = (e) => seen.push(e);
  assert.equal(player.addListener('nope', cb), false);
  assert.equal(player.on('ready', () => { throw new Error('listener bug'); }), true);
  assert.equal(player.on('ready', cb), true);
  assert.equal(await player.connect(), true);
  assert.deepEqual(plain(seen), [{ device_id: 'dev1' }], 'a throwing listener does not stop the others');
  assert.ok(page.logs.some((l) => l.includes('listener bug')));
  assert.equal(player.removeListener('ready', cb), true);
  assert.equal(player.removeListener('ready', cb), false);
  assert.equal(player.removeListener('nope'), false);
  assert.equal(player.removeListener('ready'), true);
  player.disconnect();
  assert.equal(await player.connect(), true);
  assert.equal(seen.length, 1, 'removed listeners are not called');
  await waitFor(() => page.emu.polls('dev2').length >= 1, 'a poll');
});

test('tokens never reach the console', async () => {
  const page = loadPage();
  const h = await connected(page, ['tok-alice', 'bad-secret-1', 'bad-secret-2', 'bad-secret-3']);
  h.player.on('player_state_changed', () => { throw new Error('boom'); });
  await waitFor(() => page.logs.length >= 1, 'a logged listener error');
  page.emu.tokens.delete('tok-alice');
  await waitFor(() => h.of('authentication_error').length === 1, 'authentication_error');
  assert.ok(page.logs.every((l) => !l.includes('tok-alice') && !l.includes('bad-secret')));
});
