/*
 * spotify-player.js: the spotauth Spotify emulator's stand-in for Spotify's Web Playback SDK.
 *
 * The real SDK is loaded from https://sdk.scdn.co/spotify-player.js and streams audio through EME.
 * This fake is served by the emulator at GET <emulator>/sdk/spotify-player.js and plays nothing:
 * each `Spotify.Player` registers itself as a Spotify Connect device at the emulator and mirrors
 * that device's playback by polling. It exposes exactly the documented browser API
 * (shared/spotify/FACTS.md, "Web Playback SDK: the browser API"):
 *
 *   window.Spotify = { Player }, then window.onSpotifyWebPlaybackSDKReady() (asynchronously).
 *   new Spotify.Player({ name, getOAuthToken, volume = 1, enableMediaSession = false })
 *   connect, disconnect, addListener/on, removeListener, getCurrentState, setName, getVolume,
 *   setVolume, pause, resume, togglePlay, seek, previousTrack, nextTrack, activateElement
 *   events: ready, not_ready, player_state_changed, autoplay_failed, initialization_error,
 *   authentication_error, account_error, playback_error
 *
 * The emulator base URL is the origin of this script's own URL (document.currentScript.src).
 * Wire protocol (all requests: Authorization: Bearer <token>, cache 'no-store', credentials 'omit'):
 *   POST   /sdk/v1/devices               {name, volume} -> 200 {device_id, token_expires_in}
 *                                          401 token refused, 403 (reason PREMIUM_REQUIRED = free user)
 *   GET    /sdk/v1/devices/<id>/state    -> 200 {state: WebPlaybackState|null, version, token_expires_in}
 *                                          401 token expired, 404 device gone
 *   POST   /sdk/v1/devices/<id>/commands {command: pause|resume|toggle|seek|next|previous|volume|name,
 *                                          position_ms?, volume?, name?} -> 204 (404: nothing playing)
 *   DELETE /sdk/v1/devices/<id>
 * Polling runs every 300 ms while connected, one request at a time. A held token that the emulator
 * refuses (401) is replaced through getOAuthToken (one ask at a time) on the SAME device; three
 * consecutive refused tokens end in authentication_error. Browsers block autoplay: when the device
 * starts playing and activateElement() never ran inside a user gesture, autoplay_failed fires and
 * the player pauses itself.
 *
 * TEST CONTROLS (for tests only; the real SDK has nothing like it):
 *   window.__spotifyEmulatorSdk = {
 *     players: [...],   // every Spotify.Player constructed on this page
 *     expireTokens(),   // every player treats its held token as expired: it asks getOAuthToken
 *   }                   // again at its next poll and keeps its device
 *
 * Tokens are never logged.
 */
(function () {
  'use strict';

  const root = typeof window !== 'undefined' ? window : globalThis;

  const POLL_INTERVAL_MS = 300;
  const TOKEN_TIMEOUT_MS = 20000;
  const MAX_REFUSED_TOKENS = 3;
  const CONNECT_RETRIES = 3;
  const CONNECT_BACKOFF_MS = 500;
  const CONNECT_RETRY_AFTER_CAP_MS = 10000;
  const POLL_RETRY_AFTER_CAP_MS = 5000;
  const REQUEST_TIMEOUT_MS = 10000;
  const EVENTS = [
    'ready', 'not_ready', 'player_state_changed', 'autoplay_failed',
    'initialization_error', 'authentication_error', 'account_error', 'playback_error',
  ];
  const NO_VERSION = Object.freeze({});

  /** The emulator's origin, from this script's own URL. */
  function emulatorBase() {
    const doc = typeof document !== 'undefined' ? document : null;
    let src = doc && doc.currentScript && doc.currentScript.src;
    if (!src && doc && typeof doc.querySelector === 'function') {
      const el = doc.querySelector('script[src*="spotify-player.js"]');
      src = el && el.src;
    }
    try {
      if (src) return new URL(src).origin;
    } catch (_) { /* fall through */ }
    return root.location && root.location.origin ? root.location.origin : '';
  }

  const BASE = emulatorBase();
  /** @type {WeakMap<Player, object>} private state of each player */
  const internals = new WeakMap();

  function report(label, err) {
    try {
      if (typeof console !== 'undefined') console.error('[spotify-player.js emulator] ' + label, err);
    } catch (_) { /* nothing left to do */ }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const validToken = (t) => typeof t === 'string' && t.length > 0;
  const devicePath = (id) => '/sdk/v1/devices/' + encodeURIComponent(id);
  const clone = (v) => (v === null || v === undefined ? null : JSON.parse(JSON.stringify(v)));

  /**
   * One HTTP exchange with the emulator. Never throws: a network error or timeout is status 0.
   * @returns {Promise<{status: number, json: any, retryAfter: string|null}>}
   */
  async function request(method, path, token, body) {
    const headers = { Authorization: 'Bearer ' + token };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let timer = null;
    if (typeof AbortController === 'function') {
      const ac = new AbortController();
      init.signal = ac.signal;
      timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT_MS);
    }
    try {
      const res = await fetch(BASE + path, init);
      let json = null;
      try {
        const text = await res.text();
        json = text ? JSON.parse(text) : null;
      } catch (_) { json = null; }
      const retryAfter = res.headers && typeof res.headers.get === 'function' ? res.headers.get('Retry-After') : null;
      return { status: res.status, json, retryAfter };
    } catch (_) {
      return { status: 0, json: null, retryAfter: null };
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }

  function retryAfterMs(res, fallback, cap) {
    const secs = Number(res.retryAfter);
    const ms = res.retryAfter !== null && Number.isFinite(secs) && secs >= 0 ? secs * 1000 : fallback;
    return Math.min(ms, cap);
  }

  function errorMessage(res, fallback) {
    const e = res.json && res.json.error;
    if (e && typeof e.message === 'string' && e.message) return e.message;
    if (typeof e === 'string' && e) return e;
    return fallback;
  }

  function emit(player, p, event, payload) {
    for (const cb of (p.listeners.get(event) || []).slice()) {
      try {
        cb(payload);
      } catch (err) {
        report('a "' + event + '" listener threw', err);
      }
    }
  }

  /**
   * Asks the page for a token; only one ask is outstanding at a time (callers share it).
   * @returns {Promise<{token?: any, timeout?: boolean}>}
   */
  function askToken(p) {
    if (p.tokenAsk) return p.tokenAsk;
    const ask = new Promise((resolve) => {
      let done = false;
      const finish = (r) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => finish({ timeout: true }), TOKEN_TIMEOUT_MS);
      try {
        p.getOAuthToken((token) => finish({ token }));
      } catch (err) {
        report('getOAuthToken threw', err);
        finish({ token: null });
      }
    }).then((r) => {
      if (p.tokenAsk === ask) p.tokenAsk = null;
      return r;
    });
    p.tokenAsk = ask;
    return ask;
  }

  function setExpiry(p, secs) {
    p.tokenExpiresAt = typeof secs === 'number' && Number.isFinite(secs) && secs > 0 ? Date.now() + secs * 1000 : 0;
  }

  /** Ends a connected session (no request, no event). */
  function stop(p) {
    p.session++;
    p.connected = false;
    p.connecting = null;
    p.state = null;
    if (p.pollTimer !== null) clearTimeout(p.pollTimer);
    p.pollTimer = null;
  }

  function failAuth(player, p, message) {
    stop(p);
    emit(player, p, 'authentication_error', { message });
  }

  async function doConnect(player, p, session) {
    const alive = () => p.session === session;
    let refused = 0;
    let failures = 0;
    let token = null;
    for (;;) {
      if (token === null) {
        const r = await askToken(p);
        if (!alive()) return false;
        if (r.timeout) {
          emit(player, p, 'authentication_error', { message: 'getOAuthToken did not provide a token' });
          return false;
        }
        if (!validToken(r.token)) {
          if (++refused >= MAX_REFUSED_TOKENS) {
            emit(player, p, 'authentication_error', { message: 'Authentication failed: no valid access token' });
            return false;
          }
          continue;
        }
        token = r.token;
      }
      const res = await request('POST', '/sdk/v1/devices', token, { name: p.name, volume: p.volume });
      const id = res.status === 200 && res.json ? res.json.device_id : null;
      if (!alive()) {
        if (typeof id === 'string' && id) request('DELETE', devicePath(id), token);
        return false;
      }
      if (res.status === 200) {
        if (typeof id !== 'string' || !id) {
          emit(player, p, 'initialization_error', { message: 'The emulator answered without a device id' });
          return false;
        }
        Object.assign(p, {
          connected: true, deviceId: id, token, tokenStale: false, tokenFresh: false, refused: 0,
          state: null, version: NO_VERSION, polledAt: 0, wasPlaying: false, pollInFlight: false, pollAgain: false,
        });
        setExpiry(p, res.json.token_expires_in);
        schedulePoll(player, p, session, 0);
        emit(player, p, 'ready', { device_id: id });
        return true;
      }
      if (res.status === 401) {
        token = null;
        if (++refused >= MAX_REFUSED_TOKENS) {
          emit(player, p, 'authentication_error', { message: errorMessage(res, 'Authentication failed') });
          return false;
        }
        continue;
      }
      if (res.status === 403) {
        const reason = res.json && res.json.error && res.json.error.reason;
        if (reason === 'PREMIUM_REQUIRED') {
          emit(player, p, 'account_error', { message: errorMessage(res, 'This functionality is restricted to premium users only') });
        } else {
          emit(player, p, 'authentication_error', { message: errorMessage(res, 'Forbidden') });
        }
        return false;
      }
      if (res.status === 0 || res.status === 429 || res.status >= 500) {
        if (++failures > CONNECT_RETRIES) {
          emit(player, p, 'initialization_error', { message: 'Failed to initialize player: the emulator is unavailable' });
          return false;
        }
        const backoff = CONNECT_BACKOFF_MS * 2 ** (failures - 1);
        await sleep(res.status === 429 ? retryAfterMs(res, backoff, CONNECT_RETRY_AFTER_CAP_MS) : backoff);
        if (!alive()) return false;
        continue;
      }
      emit(player, p, 'initialization_error', { message: errorMessage(res, 'Failed to initialize player (HTTP ' + res.status + ')') });
      return false;
    }
  }

  function schedulePoll(player, p, session, delay) {
    if (p.session !== session || !p.connected) return;
    if (p.pollTimer !== null) clearTimeout(p.pollTimer);
    p.pollTimer = setTimeout(() => {
      p.pollTimer = null;
      runPoll(player, p, session);
    }, delay);
  }

  /** Polls as soon as possible (right away, or just after the poll in flight). */
  function pollNow(player, p) {
    if (!p.connected) return;
    if (p.pollInFlight) p.pollAgain = true;
    else schedulePoll(player, p, p.session, 0);
  }

  async function runPoll(player, p, session) {
    if (p.session !== session || !p.connected) return;
    if (p.pollInFlight) {
      p.pollAgain = true;
      return;
    }
    p.pollInFlight = true;
    p.pollAgain = false;
    let next = POLL_INTERVAL_MS;
    try {
      next = await pollOnce(player, p, session);
    } catch (err) {
      report('poll failed', err);
    }
    if (p.session !== session || !p.connected || next === null) return;
    p.pollInFlight = false;
    schedulePoll(player, p, session, p.pollAgain ? 0 : next);
  }

  /** Gets a new token for the held device (shared by polls and commands). @returns {Promise<boolean>} */
  function renewToken(player, p, session) {
    if (p.renewing) return p.renewing;
    const renewing = askToken(p).then((r) => {
      if (p.renewing === renewing) p.renewing = null;
      if (p.session !== session || !p.connected) return false;
      if (r.timeout) {
        failAuth(player, p, 'getOAuthToken did not provide a token');
        return false;
      }
      if (!validToken(r.token)) {
        if (++p.refused >= MAX_REFUSED_TOKENS) failAuth(player, p, 'Authentication failed: no valid access token');
        return false;
      }
      Object.assign(p, { token: r.token, tokenStale: false, tokenFresh: true, tokenExpiresAt: 0 });
      return true;
    });
    p.renewing = renewing;
    return renewing;
  }

  /** One poll; resolves with the delay before the next one, or null when polling stopped. */
  async function pollOnce(player, p, session) {
    const alive = () => p.session === session && p.connected;
    if (p.tokenStale || (p.tokenExpiresAt > 0 && Date.now() >= p.tokenExpiresAt)) {
      const ok = await renewToken(player, p, session);
      if (!alive()) return null;
      if (!ok) return POLL_INTERVAL_MS;
    }
    const token = p.token;
    const res = await request('GET', devicePath(p.deviceId) + '/state', token);
    if (!alive()) return null;
    if (res.status === 200 && res.json && typeof res.json === 'object') {
      p.refused = 0;
      p.tokenFresh = false;
      setExpiry(p, res.json.token_expires_in);
      onState(player, p, res.json);
      return POLL_INTERVAL_MS;
    }
    if (res.status === 401) {
      if (token !== p.token) return 0; // renewed meanwhile: try the new one
      // A held token that worked before has expired; a fresh one refused counts towards the limit.
      if (p.tokenFresh && ++p.refused >= MAX_REFUSED_TOKENS) {
        failAuth(player, p, errorMessage(res, 'Authentication failed'));
        return null;
      }
      p.tokenStale = true;
      return 0;
    }
    if (res.status === 404) {
      const id = p.deviceId;
      stop(p);
      emit(player, p, 'not_ready', { device_id: id });
      return null;
    }
    if (res.status === 429) return Math.max(POLL_INTERVAL_MS, retryAfterMs(res, POLL_INTERVAL_MS, POLL_RETRY_AFTER_CAP_MS));
    return POLL_INTERVAL_MS; // transient: keep polling
  }

  function onState(player, p, body) {
    const state = body.state === undefined || body.state === null ? null : body.state;
    p.state = clone(state);
    p.polledAt = Date.now();
    if (body.version === p.version) return;
    p.version = body.version;
    const playing = state !== null && state.paused === false;
    const blocked = playing && !p.wasPlaying && !p.activated;
    p.wasPlaying = playing;
    emit(player, p, 'player_state_changed', state);
    if (blocked && p.connected) {
      // As in a browser that blocks autoplay: the stream cannot start, the player pauses.
      emit(player, p, 'autoplay_failed', undefined);
      command(player, { command: 'pause' }).catch((err) => report('pause after autoplay_failed failed', err));
    }
  }

  /** Sends a command to the held device; always resolves. */
  async function command(player, body) {
    const p = internals.get(player);
    if (!p.connected) return;
    const session = p.session;
    const alive = () => p.session === session && p.connected;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (p.tokenStale) {
        await renewToken(player, p, session);
        if (!alive() || p.tokenStale) return;
      }
      const token = p.token;
      const res = await request('POST', devicePath(p.deviceId) + '/commands', token, body);
      if (!alive()) return;
      if (res.status === 401 && attempt === 0) {
        if (p.token === token) p.tokenStale = true;
        continue;
      }
      break; // 204, or 404 (nothing playing on this device): resolve like the real SDK
    }
    pollNow(player, p);
  }

  function finiteNumber(v, what) {
    const n = Number(v);
    if (typeof v === 'boolean' || v === null || v === '' || !Number.isFinite(n)) throw new TypeError(what + ' must be a number');
    return n;
  }

  /** A Spotify Connect device in this page, as Spotify's `Spotify.Player`. */
  class Player {
    /**
     * @param {{name: string, getOAuthToken: (cb: (token: string) => void) => void,
     *          volume?: number, enableMediaSession?: boolean}} options
     */
    constructor(options) {
      const o = options || {};
      if (typeof o.name !== 'string' || !o.name) throw new TypeError('Spotify.Player: "name" is required');
      if (typeof o.getOAuthToken !== 'function') throw new TypeError('Spotify.Player: "getOAuthToken" must be a function');
      let volume = o.volume === undefined ? 1 : finiteNumber(o.volume, 'Spotify.Player: "volume"');
      volume = Math.min(1, Math.max(0, volume));
      internals.set(this, {
        name: o.name, getOAuthToken: o.getOAuthToken, volume, enableMediaSession: !!o.enableMediaSession,
        listeners: new Map(EVENTS.map((e) => [e, []])),
        session: 0, connecting: null, connected: false, deviceId: null,
        token: null, tokenStale: false, tokenFresh: false, tokenExpiresAt: 0, tokenAsk: null, renewing: null, refused: 0,
        pollTimer: null, pollInFlight: false, pollAgain: false,
        state: null, version: NO_VERSION, polledAt: 0, wasPlaying: false, activated: false,
      });
      controls.players.push(this);
    }

    /** Registers this player as a Connect device. @returns {Promise<boolean>} */
    connect() {
      const p = internals.get(this);
      if (p.connected) return Promise.resolve(true);
      if (p.connecting) return p.connecting;
      const session = ++p.session;
      const connecting = doConnect(this, p, session).catch((err) => {
        report('connect failed', err);
        if (p.session === session) emit(this, p, 'initialization_error', { message: 'Failed to initialize player' });
        return false;
      }).then((ok) => {
        if (p.connecting === connecting) p.connecting = null;
        return ok;
      });
      p.connecting = connecting;
      return connecting;
    }

    /** Removes the device and stops polling; fires not_ready when it was connected. */
    disconnect() {
      const p = internals.get(this);
      const wasConnected = p.connected;
      const id = p.deviceId;
      const token = p.token;
      stop(p);
      if (wasConnected && id) {
        request('DELETE', devicePath(id), token);
        emit(this, p, 'not_ready', { device_id: id });
      }
    }

    /** @returns {boolean} false for an unknown event or a non-function callback */
    addListener(event, cb) {
      const list = internals.get(this).listeners.get(event);
      if (!list || typeof cb !== 'function') return false;
      list.push(cb);
      return true;
    }

    on(event, cb) {
      return this.addListener(event, cb);
    }

    /** Removes one callback, or every callback of the event when none is given. @returns {boolean} */
    removeListener(event, cb) {
      const list = internals.get(this).listeners.get(event);
      if (!list) return false;
      if (cb === undefined) {
        list.length = 0;
        return true;
      }
      const i = list.indexOf(cb);
      if (i < 0) return false;
      list.splice(i, 1);
      return true;
    }

    /** The last polled state, its position moved on by the time elapsed while playing. */
    getCurrentState() {
      const p = internals.get(this);
      if (!p.connected || !p.state) return Promise.resolve(null);
      const s = clone(p.state);
      if (s.paused === false && typeof s.position === 'number') {
        let pos = s.position + Math.max(0, Date.now() - p.polledAt);
        if (typeof s.duration === 'number' && s.duration > 0) pos = Math.min(pos, s.duration);
        s.position = pos;
      }
      return Promise.resolve(s);
    }

    setName(name) {
      if (typeof name !== 'string' || !name) return Promise.reject(new TypeError('name must be a non-empty string'));
      internals.get(this).name = name;
      return command(this, { command: 'name', name });
    }

    getVolume() {
      return Promise.resolve(internals.get(this).volume);
    }

    setVolume(volume) {
      let v;
      try {
        v = Math.min(1, Math.max(0, finiteNumber(volume, 'volume')));
      } catch (err) {
        return Promise.reject(err);
      }
      internals.get(this).volume = v;
      return command(this, { command: 'volume', volume: v });
    }

    pause() { return command(this, { command: 'pause' }); }

    resume() { return command(this, { command: 'resume' }); }

    togglePlay() { return command(this, { command: 'toggle' }); }

    seek(positionMs) {
      let ms;
      try {
        ms = Math.max(0, Math.round(finiteNumber(positionMs, 'position')));
      } catch (err) {
        return Promise.reject(err);
      }
      return command(this, { command: 'seek', position_ms: ms });
    }

    previousTrack() { return command(this, { command: 'previous' }); }

    nextTrack() { return command(this, { command: 'next' }); }

    /** Unlocks playback when called inside a user gesture (or where userActivation is unknown). */
    activateElement() {
      const nav = typeof navigator !== 'undefined' ? navigator : root.navigator;
      const ua = nav ? nav.userActivation : undefined;
      if (ua === undefined || ua === null || ua.isActive === true) internals.get(this).activated = true;
      return Promise.resolve();
    }
  }

  const controls = {
    players: [],
    expireTokens() {
      for (const player of controls.players) {
        const p = internals.get(player);
        if (p) p.tokenStale = true;
      }
    },
  };

  root.__spotifyEmulatorSdk = controls;
  root.Spotify = { Player };
  setTimeout(() => {
    if (typeof root.onSpotifyWebPlaybackSDKReady === 'function') {
      try {
        root.onSpotifyWebPlaybackSDKReady();
      } catch (err) {
        report('onSpotifyWebPlaybackSDKReady threw', err);
      }
    }
  }, 0);
})();
