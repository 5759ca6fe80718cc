// @ts-check
/**
 * @file The browser client of spotauth: an ES2020 module, no framework, no build step.
 *
 * Served by the service at `/client/spotauth.js` (types at `/client/spotauth.d.ts`).
 *
 * ```js
 * import { createClient } from '/client/spotauth.js';
 * const client = createClient();
 * const failed = client.loginResult();          // after Spotify sent the browser back
 * if (failed) show(failed.kind, failed.retryAfter);
 * const player = new Spotify.Player({ name: 'Room', getOAuthToken: client.getOAuthToken });
 * client.onError((e) => show(e.kind, e.retryAfter));
 * // Listening together: report the player, follow the room, start music for everyone.
 * player.addListener('ready', ({ device_id }) => client.reportPlayer({ deviceId: device_id, name: 'Room', nowPlaying: null }));
 * const unsubscribe = client.subscribe(() => refreshList()); // live, polling only while the stream is down
 * const outcomes = await client.groupPlay({ uris: ['spotify:track:4uLU6hMCjMI75M1A2tKUQC'] });
 * ```
 *
 * The session is an HttpOnly cookie: every request goes with `credentials: 'include'`, so the
 * client works from the service's own origin and, through CORS, from a frontend on another one.
 * Spotify access tokens live in memory only (never in localStorage, sessionStorage or cookies);
 * tabs of one browser share them over a BroadcastChannel and serialize their requests with the
 * Web Locks API when it exists, so that many tabs make one request, not one each. Without
 * either (Node, older browsers) everything still works per page.
 *
 * No token is ever logged, and no error message ever contains one.
 */

const DEFAULT_MARGIN_MS = 60000;
const DEFAULT_CHANNEL = 'spotauth';
const TOKEN_LOCK = 'spotauth:token';
const ROTATE_LOCK = 'spotauth:rotate';

const LOGIN_PATH = '/api/auth/spotify/login';
const LOGOUT_PATH = '/api/auth/spotify/logout';
const REFRESH_PATH = '/api/auth/spotify/refresh';
const TOKEN_PATH = '/api/auth/spotify/token';
const SUBSCRIPTION_PATH = '/api/auth/spotify/subscription';
const CONFIG_PATH = '/api/config';
const ME_PATH = '/api/users/me';
const ACTIVE_PATH = '/api/users/active';
const ME_ACTIVE_PATH = '/api/users/me/active';
const SESSIONS_PATH = '/api/users/me/sessions';
const ROOM_PLAYER_PATH = '/api/room/player';
const ROOM_PLAY_PATH = '/api/room/play';
const ROOM_PAUSE_PATH = '/api/room/pause';
const ROOM_EVENTS_PATH = '/api/room/events';

const DEFAULT_POLL_MS = 5000;
/** The longest wait before a closed event stream is opened again. */
const MAX_REOPEN_MS = 60000;
/** EventSource.readyState values. */
const ES_OPEN = 1;
const ES_CLOSED = 2;
/** What one person's group command did (anything else the service says is read as `failed`). */
const GROUP_OUTCOMES = new Set(['started', 'paused', 'premium_required', 'no_player', 'reconnect_spotify', 'rate_limited', 'failed']);

/**
 * What went wrong, as a page acts on it.
 * @typedef {'not_logged_in' | 'reconnect_spotify' | 'premium_required' | 'not_allow_listed'
 *   | 'spotify_busy' | 'too_many_requests' | 'login_declined' | 'login_failed' | 'not_host'
 *   | 'no_player' | 'network' | 'server'} OutcomeKind
 */

/**
 * A Spotify access token for the Web Playback SDK and the Web API.
 * @typedef {object} AccessToken
 * @property {string} accessToken The token itself (send as `Authorization: Bearer ...` to Spotify).
 * @property {string} expiresAt When it expires, RFC 3339 (`new Date(expiresAt)` works).
 * @property {number} expiresIn Seconds it has left, as of when it was handed out.
 */

/**
 * A token held in memory, with its expiry on this browser's clock.
 * @typedef {object} Entry
 * @property {string} accessToken
 * @property {string} expiresAt
 * @property {number} receivedAt ms (the client's clock) when the service's answer arrived
 * @property {number} lifetimeMs what the service said it had left then
 * @property {number} expiryMs receivedAt + lifetimeMs
 * @property {number} freshUntil expiryMs minus the margin: served from memory until then
 */

/** @type {ReadonlyMap<string, OutcomeKind>} The kind of each known problem or callback code. */
const KIND_BY_CODE = new Map(
  /** @type {Array<[string, OutcomeKind]>} */ ([
    ['unauthenticated', 'not_logged_in'],
    ['spotify_reauth_required', 'reconnect_spotify'],
    ['spotify_not_connected', 'reconnect_spotify'],
    ['premium_required', 'premium_required'],
    ['spotify_not_allow_listed', 'not_allow_listed'],
    ['not_allow_listed', 'not_allow_listed'],
    ['spotify_rate_limited', 'spotify_busy'],
    ['spotify_unavailable', 'spotify_busy'],
    ['rate_limited', 'too_many_requests'],
    ['too_many_logins', 'too_many_requests'],
    ['access_denied', 'login_declined'],
    ['not_host', 'not_host'],
    ['device_not_found', 'no_player'],
  ]),
);

/**
 * Kinds of a refresh's failure that still rotated the session (the token part failed, the
 * session part did not): the original request is retried with the new session.
 * @type {ReadonlySet<OutcomeKind>}
 */
const ROTATED_KINDS = new Set(
  /** @type {OutcomeKind[]} */ (['reconnect_spotify', 'premium_required', 'not_allow_listed', 'spotify_busy']),
);

/** @type {Readonly<Record<OutcomeKind, string>>} A sentence for each kind. */
const KIND_TEXT = {
  not_logged_in: 'Not logged in.',
  reconnect_spotify: 'Spotify needs to be connected again: log in with Spotify.',
  premium_required: 'Spotify Premium is required.',
  not_allow_listed: "This Spotify account is not on the app's allow-list.",
  spotify_busy: 'Spotify is busy or unavailable; try again later.',
  too_many_requests: 'Too many requests; try again later.',
  login_declined: 'The Spotify login was declined.',
  login_failed: 'The Spotify login failed.',
  not_host: 'Only the room\'s hosts may start or pause playback for everyone.',
  no_player: 'Spotify does not list this player (yet).',
  network: 'Could not reach the service.',
  server: 'The service answered with an error.',
};

/**
 * The kind of a problem's code (`fromCallback`: a login callback's `?error=` code).
 * @param {string} code
 * @param {boolean} fromCallback
 * @returns {OutcomeKind}
 */
function kindOf(code, fromCallback) {
  return KIND_BY_CODE.get(code) ?? (fromCallback ? 'login_failed' : 'server');
}

/**
 * An error of the client: what happened (`kind`, for the page to act on), the service's stable
 * `code`, the HTTP `status` (0 when there was none: network, login callback), the seconds to
 * wait before trying again when known, and the problem document the service sent (or null).
 * Its message never contains a token.
 */
export class SpotauthError extends Error {
  /**
   * @param {object} init
   * @param {OutcomeKind} init.kind
   * @param {string} init.code
   * @param {number} [init.status]
   * @param {number | null} [init.retryAfter]
   * @param {unknown} [init.problem]
   * @param {string | null} [init.requestId]
   * @param {string} [init.message]
   * @param {unknown} [init.cause]
   */
  constructor(init) {
    const { kind, code, status = 0, retryAfter = null, problem = null, requestId = null, message, cause } = init;
    super(message || `${KIND_TEXT[kind] || KIND_TEXT.server} (${code})`);
    this.name = 'SpotauthError';
    /** @type {OutcomeKind} */
    this.kind = kind;
    /** @type {string} */
    this.code = code;
    /** @type {number} */
    this.status = status;
    /** @type {number | null} */
    this.retryAfter = retryAfter;
    /** @type {unknown} */
    this.problem = problem;
    /** @type {string | null} the service's id of the request, for a support report and its logs */
    this.requestId = requestId;
    if (cause !== undefined) {
      Object.defineProperty(this, 'cause', { value: cause, writable: true, configurable: true });
    }
  }
}

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A `Retry-After` value in whole seconds (delta-seconds or an HTTP date), or null.
 * @param {string | null | undefined} header
 * @param {number} nowMs
 * @returns {number | null}
 */
function parseRetryAfter(header, nowMs) {
  if (typeof header !== 'string') return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * @param {SpotauthError} e
 * @returns {boolean} whether the service said the session is missing or over
 */
function isUnauthenticated(e) {
  return e.code === 'unauthenticated';
}

/** @returns {void} */
function ignore() {}

/**
 * Creates a client of the spotauth API. One per page is enough (its caches are per client).
 *
 * @param {object} [options]
 * @param {string} [options.baseUrl] the API's origin plus an optional path prefix, e.g.
 *   `https://auth.example.com`; default `''` (same origin)
 * @param {typeof fetch} [options.fetch] default `globalThis.fetch`
 * @param {() => number} [options.now] the clock in ms, default `Date.now`
 * @param {number} [options.refreshMarginMs] a token held in memory is handed out until
 *   `expiresAt - margin`; default 60 000, never more than half the token's lifetime
 * @param {string | null} [options.channelName] the BroadcastChannel that tabs share tokens on,
 *   default `'spotauth'`; `null` disables sharing
 * @param {import('./spotauth').LockManagerLike | null} [options.locks] default
 *   `navigator.locks` when there is one; `null` disables cross-tab locking
 * @param {(url: string) => void} [options.navigate] how to send the browser to Spotify, default
 *   `url => window.location.assign(url)`
 * @param {any} [options.EventSource] the EventSource constructor `subscribe` uses, default
 *   `globalThis.EventSource`; `null`: none (polling only)
 * @returns {import('./spotauth').SpotauthClient}
 */
export function createClient(options = {}) {
  const base = String(options.baseUrl ?? '').replace(/\/+$/, '');
  const userFetch = options.fetch;
  /** @type {(url: string, init: RequestInit) => Promise<Response>} */
  const doFetch = userFetch ? (url, init) => userFetch(url, init) : (url, init) => globalThis.fetch(url, init);
  const now = options.now ?? (() => Date.now());
  const marginMs =
    typeof options.refreshMarginMs === 'number' && options.refreshMarginMs >= 0 && Number.isFinite(options.refreshMarginMs)
      ? options.refreshMarginMs
      : DEFAULT_MARGIN_MS;
  const locks =
    options.locks === undefined
      ? /** @type {any} */ (globalThis).navigator?.locks ?? null
      : options.locks;
  const navigate =
    options.navigate ??
    ((/** @type {string} */ url) => {
      /** @type {any} */ (globalThis).location.assign(url);
    });

  // --- State (all of it in memory) ---

  /** @type {Entry | null} the newest token this page knows */
  let cache = null;
  /** @type {{ refused: string | undefined, promise: Promise<Entry> } | null} the token request in flight */
  let inflight = null;
  /** @type {Promise<void> | null} the session rotation in flight */
  let rotating = null;
  /** Bumped by every logout (here or in another tab): answers to older requests are not kept. */
  let sessionEpoch = 0;
  /** Bumped by every session rotation (here or in another tab). */
  let rotationGen = 0;
  /** After a logout, tokens from other tabs are ignored until this page gets one itself. */
  let loggedOut = false;
  /** @type {string | null} the token last handed to the SDK through getOAuthToken */
  let handed = null;
  /** @type {Set<(e: SpotauthError) => void>} */
  const listeners = new Set();
  /** @type {{ sdkUrl: string, spotifyApiUrl: string } | null} */
  let configCache = null;
  /** @type {Promise<{ sdkUrl: string, spotifyApiUrl: string }> | null} */
  let configInflight = null;

  // --- Cross-tab sharing ---

  /** @type {BroadcastChannel | null} */
  let channel = null;
  const channelName = options.channelName === undefined ? DEFAULT_CHANNEL : options.channelName;
  const BC = /** @type {any} */ (globalThis).BroadcastChannel;
  if (channelName !== null && typeof BC === 'function') {
    try {
      channel = /** @type {BroadcastChannel} */ (new BC(String(channelName)));
      channel.addEventListener('message', onMessage);
      // Node's BroadcastChannel would keep the process alive; browsers have no unref.
      /** @type {any} */ (channel).unref?.();
    } catch {
      channel = null;
    }
  }

  /** @param {unknown} message */
  function broadcast(message) {
    if (!channel) return;
    try {
      channel.postMessage(message);
    } catch {
      // A closed channel: this page goes on alone.
    }
  }

  /** @param {MessageEvent} event */
  function onMessage(event) {
    const m = event?.data;
    if (!isObject(m)) return;
    if (m.type === 'token') {
      if (loggedOut) return;
      const receivedAt = typeof m.receivedAt === 'number' && Number.isFinite(m.receivedAt) ? Math.min(m.receivedAt, now()) : NaN;
      if (Number.isNaN(receivedAt)) return;
      const entry = toEntry(m.token, receivedAt);
      if (entry) keep(entry);
    } else if (m.type === 'logout') {
      dropSession();
    } else if (m.type === 'rotated') {
      rotationGen += 1;
    }
  }

  /**
   * Runs `fn` holding the named Web Lock when there is a lock manager; without one (or when it
   * refuses, e.g. in an opaque origin), just runs it.
   * @template T
   * @param {string} name
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async function withLock(name, fn) {
    if (!locks || typeof locks.request !== 'function') return fn();
    let entered = false;
    try {
      return await locks.request(name, () => {
        entered = true;
        return fn();
      });
    } catch (e) {
      if (entered) throw e;
      return fn();
    }
  }

  // --- Tokens in memory ---

  /**
   * A token answer (the service's or another tab's) as an entry, or null if it is not one.
   * @param {unknown} data
   * @param {number} receivedAt
   * @returns {Entry | null}
   */
  function toEntry(data, receivedAt) {
    if (!isObject(data) || typeof data.accessToken !== 'string' || data.accessToken === '') return null;
    const expiresAt = typeof data.expiresAt === 'string' ? data.expiresAt : null;
    let lifetimeMs;
    if (typeof data.expiresIn === 'number' && Number.isFinite(data.expiresIn) && data.expiresIn >= 0) {
      // Relative to the answer, so a wrong clock in this browser does not matter.
      lifetimeMs = data.expiresIn * 1000;
    } else if (expiresAt !== null && !Number.isNaN(Date.parse(expiresAt))) {
      lifetimeMs = Math.max(0, Date.parse(expiresAt) - receivedAt);
    } else {
      return null;
    }
    const expiryMs = receivedAt + lifetimeMs;
    return {
      accessToken: data.accessToken,
      expiresAt: expiresAt ?? new Date(expiryMs).toISOString(),
      receivedAt,
      lifetimeMs,
      expiryMs,
      freshUntil: expiryMs - Math.min(marginMs, lifetimeMs / 2),
    };
  }

  /**
   * @param {Entry | null} entry
   * @returns {entry is Entry}
   */
  function isFresh(entry) {
    return entry !== null && now() < entry.freshUntil;
  }

  /**
   * The token in memory if it may be handed out (fresh, and not the one refused).
   * @param {string | undefined} refused
   * @returns {Entry | null}
   */
  function usable(refused) {
    return isFresh(cache) && cache.accessToken !== refused ? cache : null;
  }

  /**
   * Keeps `entry` unless memory holds a token that lives longer (an answer that was overtaken).
   * @param {Entry} entry
   * @returns {boolean} whether it was kept
   */
  function keep(entry) {
    if (cache === null || entry.expiryMs >= cache.expiryMs || !isFresh(cache)) {
      cache = entry;
      return true;
    }
    return false;
  }

  /**
   * Keeps a token this page received from the service and tells the other tabs, unless a
   * logout happened since the request started.
   * @param {Entry} entry
   * @param {number} epoch
   */
  function store(entry, epoch) {
    if (epoch !== sessionEpoch) return;
    loggedOut = false;
    if (keep(entry)) {
      const { accessToken, expiresAt, lifetimeMs, receivedAt } = entry;
      broadcast({ type: 'token', token: { accessToken, expiresAt, expiresIn: lifetimeMs / 1000 }, receivedAt });
    }
  }

  /** Forgets everything of the session (a logout here or in another tab). */
  function dropSession() {
    sessionEpoch += 1;
    cache = null;
    inflight = null;
    handed = null;
    loggedOut = true;
  }

  /**
   * @param {Entry} entry
   * @returns {AccessToken}
   */
  function publicToken(entry) {
    return {
      accessToken: entry.accessToken,
      expiresAt: entry.expiresAt,
      expiresIn: Math.max(0, Math.floor((entry.expiryMs - now()) / 1000)),
    };
  }

  // --- HTTP ---

  /**
   * The error a non-2xx answer stands for. A body that is not a problem document is ignored.
   * @param {Response} res
   * @returns {Promise<SpotauthError>}
   */
  async function errorOf(res) {
    /** @type {Record<string, unknown> | null} */
    let problem = null;
    try {
      const text = await res.text();
      if (text) {
        const parsed = JSON.parse(text);
        if (isObject(parsed)) problem = parsed;
      }
    } catch {
      problem = null;
    }
    const code = typeof problem?.code === 'string' && problem.code !== '' ? problem.code : `http_${res.status}`;
    let retryAfter = null;
    try {
      retryAfter = parseRetryAfter(res.headers?.get('retry-after'), now());
    } catch {
      retryAfter = null;
    }
    // Cross-origin, Retry-After is only readable when exposed: the problem repeats it.
    if (retryAfter === null && typeof problem?.retryAfter === 'number' && problem.retryAfter >= 0) {
      retryAfter = Math.ceil(problem.retryAfter);
    }
    const kind = kindOf(code, false);
    const title = typeof problem?.title === 'string' ? problem.title : '';
    const detail = typeof problem?.detail === 'string' ? problem.detail : '';
    const said = [title, detail].filter(Boolean).join(': ');
    const message = `${said || KIND_TEXT[kind]} (${res.status} ${code})`;
    const header = res.headers?.get('x-request-id');
    const requestId =
      typeof problem?.requestId === 'string' ? problem.requestId : typeof header === 'string' ? header : null;
    return new SpotauthError({ kind, code, status: res.status, retryAfter, problem, requestId, message });
  }

  /**
   * @param {number} status
   * @returns {SpotauthError}
   */
  function invalidAnswer(status) {
    return new SpotauthError({
      kind: 'server',
      code: 'invalid_response',
      status,
      message: `The service answered with something this client does not understand (${status}).`,
    });
  }

  /**
   * One request, no retry: the answer's JSON, or a SpotauthError. With `noContent`, an empty
   * success (204) is the expected answer and resolves to null, its body unread; `keepalive`
   * lets the request outlive the page (`pagehide`).
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {{ noContent?: boolean, keepalive?: boolean }} [opts]
   * @returns {Promise<unknown>}
   */
  async function once(method, path, body, opts = {}) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    /** @type {RequestInit} */
    const init = { method, credentials: 'include', headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (opts.keepalive) init.keepalive = true;
    /** @type {Response} */
    let res;
    try {
      res = await doFetch(base + path, init);
    } catch (cause) {
      throw new SpotauthError({ kind: 'network', code: 'network', message: KIND_TEXT.network, cause });
    }
    if (!res.ok) throw await errorOf(res);
    if (opts.noContent) {
      // Whatever a 2xx carries here is not needed; the body is not waited for.
      res.body?.cancel().catch(ignore);
      return null;
    }
    let text;
    try {
      text = await res.text();
    } catch (cause) {
      throw new SpotauthError({ kind: 'network', code: 'network', status: res.status, message: KIND_TEXT.network, cause });
    }
    try {
      return JSON.parse(text);
    } catch {
      throw invalidAnswer(res.status);
    }
  }

  /**
   * Rotates the session once for everyone who saw the same 401: single flight in this page,
   * under the rotate lock across tabs, and skipped when a rotation happened since `gen` (in
   * this page or another tab). Resolves when the request may be retried; rejects with
   * not_logged_in when the session is over, or with the refresh's own error.
   * @param {number} gen the rotation generation when the failed request was sent
   * @returns {Promise<void>}
   */
  function rotate(gen) {
    if (gen !== rotationGen) return Promise.resolve();
    if (rotating) return rotating;
    const mine = withLock(ROTATE_LOCK, async () => {
      if (gen !== rotationGen) return; // another tab rotated while this one waited
      const epoch = sessionEpoch;
      let data;
      try {
        data = await once('POST', REFRESH_PATH);
      } catch (e) {
        if (!(e instanceof SpotauthError)) throw e;
        if (ROTATED_KINDS.has(e.kind)) {
          // The session was rotated; only the Spotify token could not be had.
          rotated();
          return;
        }
        if (e.status === 401) {
          cache = null;
          throw e.kind === 'not_logged_in' ? e : new SpotauthError({ ...e, kind: 'not_logged_in', message: e.message });
        }
        throw e;
      }
      rotated();
      const entry = toEntry(data, now());
      if (entry) store(entry, epoch);
    }).finally(() => {
      if (rotating === mine) rotating = null;
    });
    rotating = mine;
    return mine;
  }

  function rotated() {
    rotationGen += 1;
    broadcast({ type: 'rotated' });
  }

  /**
   * Runs `attempt`; on 401 `unauthenticated`, rotates the session and retries once (or takes
   * what `shortcut` offers after the rotation instead). Never loops.
   * @template T
   * @param {() => Promise<T>} attempt
   * @param {() => T | null} [shortcut]
   * @returns {Promise<T>}
   */
  async function withRotation(attempt, shortcut) {
    const gen = rotationGen;
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof SpotauthError) || !isUnauthenticated(e)) throw e;
      await rotate(gen);
      const ready = shortcut ? shortcut() : null;
      return ready ?? attempt();
    }
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>} the answer, a JSON object
   */
  async function call(method, path, body) {
    const data = await withRotation(() => once(method, path, body));
    if (!isObject(data)) throw invalidAnswer(200);
    return data;
  }

  // --- Access tokens ---

  /**
   * Asks the service for a token (GET, or POST `{refused}`), under the token lock across tabs,
   * checking memory again once inside it (another tab may have just shared a fresh one).
   * @param {string | undefined} refused
   * @returns {Promise<Entry>}
   */
  function request(refused) {
    const epoch = sessionEpoch;
    /** @type {{ refused: string | undefined, promise: Promise<Entry> }} */
    const slot = { refused, promise: Promise.resolve(/** @type {any} */ (null)) };
    slot.promise = (async () => {
      try {
        return await withLock(TOKEN_LOCK, async () => {
          const ready = usable(refused);
          if (ready) return ready;
          return withRotation(async () => {
            const data = refused === undefined ? await once('GET', TOKEN_PATH) : await once('POST', TOKEN_PATH, { refused });
            const entry = toEntry(data, now());
            if (!entry) throw invalidAnswer(200);
            store(entry, epoch);
            // Memory may hold a newer one (shared by another tab meanwhile).
            return usable(refused) ?? entry;
          }, () => usable(refused));
        });
      } finally {
        if (inflight === slot) inflight = null;
      }
    })();
    inflight = slot;
    return slot.promise;
  }

  /**
   * @param {{ refused?: string }} [opts]
   * @returns {Promise<AccessToken>}
   */
  async function accessToken(opts = {}) {
    const refused = typeof opts.refused === 'string' && opts.refused !== '' ? opts.refused : undefined;
    if (refused !== undefined && cache !== null && cache.accessToken === refused) cache = null;
    for (let waited = 0; ; waited += 1) {
      const ready = usable(refused);
      if (ready) return publicToken(ready);
      const current = inflight;
      if (current === null) return publicToken(await request(refused));
      // Any answer will do for a plain ask; a refusal shares only a request about the same token.
      if (refused === undefined || current.refused === refused) return publicToken(await current.promise);
      if (waited >= 2) return publicToken(await request(refused));
      await current.promise.catch(ignore);
    }
  }

  /**
   * For `new Spotify.Player({ getOAuthToken })`: works unbound.
   * @param {(token: string) => void} cb
   */
  function getOAuthToken(cb) {
    if (typeof cb !== 'function') return;
    const ask = handed === null ? accessToken() : accessToken({ refused: handed });
    ask.then(
      (t) => {
        handed = t.accessToken;
        cb(t.accessToken);
      },
      (e) => emit(e),
    );
  }

  /** @param {unknown} e */
  function emit(e) {
    const error =
      e instanceof SpotauthError ? e : new SpotauthError({ kind: 'server', code: 'client_error', message: 'Unexpected error in the spotauth client.', cause: e });
    for (const listener of [...listeners]) {
      try {
        listener(error);
      } catch {
        // One listener's failure must not keep the others from hearing.
      }
    }
  }

  // --- The API ---

  /** @returns {Promise<{ sdkUrl: string, spotifyApiUrl: string }>} */
  function config() {
    if (configCache) return Promise.resolve({ ...configCache });
    if (!configInflight) {
      /** @type {Promise<{ sdkUrl: string, spotifyApiUrl: string }> | null} */
      let mine = null;
      mine = (async () => {
        try {
          const data = await call('GET', CONFIG_PATH);
          if (typeof data.sdkUrl !== 'string' || typeof data.spotifyApiUrl !== 'string') throw invalidAnswer(200);
          configCache = { sdkUrl: data.sdkUrl, spotifyApiUrl: data.spotifyApiUrl };
          return configCache;
        } finally {
          if (configInflight === mine) configInflight = null;
        }
      })();
      configInflight = mine;
    }
    return configInflight.then((c) => ({ ...c }));
  }

  /**
   * @param {{ returnTo?: string }} [opts]
   * @returns {Promise<void>}
   */
  async function login(opts = {}) {
    const body = opts.returnTo === undefined ? undefined : { returnTo: String(opts.returnTo) };
    const data = await once('POST', LOGIN_PATH, body);
    const url = isObject(data) ? data.authorizeUrl : undefined;
    if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) throw invalidAnswer(200);
    navigate(url);
  }

  /**
   * @param {string | URL} [url]
   * @returns {SpotauthError | null}
   */
  function loginResult(url) {
    const href = url === undefined ? /** @type {any} */ (globalThis).location?.href : url;
    if (href === undefined || href === null || href === '') return null;
    let parsed;
    try {
      parsed = new URL(String(href), 'http://localhost/');
    } catch {
      return null;
    }
    const raw = parsed.searchParams.get('error');
    if (raw === null) return null;
    // The page's URL is anyone's to write: only a plain code is taken as is.
    const code = /^[a-z0-9_]{1,64}$/.test(raw) ? raw : 'login_failed';
    const after = parsed.searchParams.get('retryAfter');
    const retryAfter = after !== null && /^\d{1,9}$/.test(after) ? Number(after) : null;
    const kind = kindOf(code, true);
    return new SpotauthError({ kind, code, status: 0, retryAfter, message: `${KIND_TEXT[kind]} (${code})` });
  }

  /**
   * @param {{ scope?: 'device' | 'everywhere' }} [opts]
   * @returns {Promise<import('./spotauth').LogoutResult>}
   */
  async function logout(opts = {}) {
    const scope = opts.scope ?? 'device';
    dropSession();
    if (rotating) await rotating.catch(ignore); // its new cookie must not outlive the logout
    try {
      const data = await once('POST', `${LOGOUT_PATH}?scope=${encodeURIComponent(scope)}`);
      if (!isObject(data)) throw invalidAnswer(200);
      return {
        scope: data.scope === 'device' || data.scope === 'everywhere' ? data.scope : scope,
        sessionsEnded: typeof data.sessionsEnded === 'number' ? data.sessionsEnded : 0,
        spotifyDisconnected: data.spotifyDisconnected === true,
      };
    } catch (e) {
      // 401: nothing to log out, which is what was wanted.
      if (e instanceof SpotauthError && e.status === 401) return { scope, sessionsEnded: 0, spotifyDisconnected: false };
      throw e;
    } finally {
      dropSession();
      broadcast({ type: 'logout' });
    }
  }

  /**
   * @param {{ offset?: number, limit?: number }} [opts]
   */
  function activeUsers(opts = {}) {
    const q = new URLSearchParams();
    if (opts.offset !== undefined) q.set('offset', String(opts.offset));
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    const query = q.toString();
    return call('GET', query ? `${ACTIVE_PATH}?${query}` : ACTIVE_PATH);
  }

  /** @param {boolean} active */
  async function setActive(active) {
    if (typeof active !== 'boolean') throw new TypeError('setActive takes a boolean');
    return call('PUT', ME_ACTIVE_PATH, { isActive: active });
  }

  // --- Sessions and account ---

  /** @returns {Promise<import('./spotauth').SessionInfo[]>} */
  async function sessions() {
    const data = await call('GET', SESSIONS_PATH);
    if (!isObject(data) || !Array.isArray(data.items)) throw invalidAnswer(200);
    return data.items;
  }

  /**
   * @param {string | { id: string, current?: boolean }} session
   * @returns {Promise<void>}
   */
  async function endSession(session) {
    const id = typeof session === 'string' ? session : isObject(session) ? session.id : undefined;
    if (typeof id !== 'string' || id === '') throw new TypeError('endSession takes a session id or a session');
    await withRotation(() => once('DELETE', `${SESSIONS_PATH}/${encodeURIComponent(id)}`, undefined, { noContent: true }));
    // Ending this browser's own session is a logout of this device.
    if (isObject(session) && session.current === true) {
      dropSession();
      broadcast({ type: 'logout' });
    }
  }

  /** @returns {Promise<{ sessionsEnded: number }>} */
  async function endOtherSessions() {
    const data = await call('DELETE', SESSIONS_PATH);
    if (!isObject(data) || typeof data.sessionsEnded !== 'number') throw invalidAnswer(200);
    return { sessionsEnded: data.sessionsEnded };
  }

  /** @returns {Promise<void>} */
  async function deleteAccount() {
    try {
      await withRotation(() => once('DELETE', ME_PATH, undefined, { noContent: true }));
    } finally {
      dropSession();
      broadcast({ type: 'logout' });
    }
  }

  // --- Listening together ---

  /**
   * @param {import('./spotauth').PlayerReport} report
   * @returns {Promise<void>}
   */
  async function reportPlayer(report) {
    if (!isObject(report)) throw new TypeError('reportPlayer takes { deviceId, name, nowPlaying }');
    const { deviceId, name } = report;
    if (typeof deviceId !== 'string' || deviceId === '') throw new TypeError('reportPlayer: deviceId must be a non-empty string');
    if (typeof name !== 'string' || name === '') throw new TypeError('reportPlayer: name must be a non-empty string');
    const np = report.nowPlaying ?? null;
    if (np !== null && !(isObject(np) && typeof np.uri === 'string' && typeof np.name === 'string' && typeof np.isPlaying === 'boolean')) {
      throw new TypeError('reportPlayer: nowPlaying must be null or { uri, name, isPlaying }');
    }
    const nowPlaying = np === null ? null : { uri: np.uri, name: np.name, isPlaying: np.isPlaying };
    await withRotation(() => once('PUT', ROOM_PLAYER_PATH, { deviceId, name, nowPlaying }, { noContent: true }));
  }

  /**
   * @param {string} deviceId
   * @param {{ keepalive?: boolean }} [opts]
   * @returns {Promise<void>}
   */
  async function leavePlayer(deviceId, opts = {}) {
    if (typeof deviceId !== 'string' || deviceId === '') throw new TypeError('leavePlayer: deviceId must be a non-empty string');
    const path = `${ROOM_PLAYER_PATH}?deviceId=${encodeURIComponent(deviceId)}`;
    if (opts.keepalive) {
      // The page is going away: one request that outlives it, no rotation (nobody waits for it).
      await once('DELETE', path, undefined, { noContent: true, keepalive: true });
      return;
    }
    await withRotation(() => once('DELETE', path, undefined, { noContent: true }));
  }

  /**
   * The `outcomes` of a group command's answer.
   * @param {Record<string, unknown>} data
   * @returns {import('./spotauth').GroupOutcome[]}
   */
  function outcomesOf(data) {
    if (!Array.isArray(data.outcomes)) throw invalidAnswer(200);
    return data.outcomes.map((o) => {
      if (!isObject(o) || typeof o.id !== 'string') throw invalidAnswer(200);
      /** @type {import('./spotauth').GroupOutcome} */
      const outcome = {
        id: o.id,
        displayName: typeof o.displayName === 'string' ? o.displayName : null,
        outcome: typeof o.outcome === 'string' && GROUP_OUTCOMES.has(o.outcome) ? /** @type {any} */ (o.outcome) : 'failed',
      };
      if (typeof o.retryAfter === 'number' && Number.isFinite(o.retryAfter) && o.retryAfter >= 0) {
        outcome.retryAfter = Math.ceil(o.retryAfter);
      }
      return outcome;
    });
  }

  /**
   * @param {import('./spotauth').GroupTarget} target
   * @param {{ positionMs?: number }} [opts]
   * @returns {Promise<import('./spotauth').GroupOutcome[]>}
   */
  async function groupPlay(target, opts = {}) {
    const t = /** @type {unknown} */ (target);
    if (!isObject(t) || (t.uris === undefined) === (t.contextUri === undefined)) {
      throw new TypeError('groupPlay takes { uris: [...] } or { contextUri }');
    }
    /** @type {Record<string, unknown>} */
    let body;
    if (t.uris !== undefined) {
      const uris = t.uris;
      if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u) => typeof u === 'string' && u !== '')) {
        throw new TypeError('groupPlay: uris must be a non-empty array of URIs');
      }
      body = { uris: [...uris] };
    } else {
      if (typeof t.contextUri !== 'string' || t.contextUri === '') throw new TypeError('groupPlay: contextUri must be a URI');
      body = { contextUri: t.contextUri };
    }
    const at = opts.positionMs;
    if (at !== undefined) {
      if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw new TypeError('groupPlay: positionMs must be a number >= 0');
      body.positionMs = Math.floor(at);
    }
    return outcomesOf(await call('POST', ROOM_PLAY_PATH, body));
  }

  /** @returns {Promise<import('./spotauth').GroupOutcome[]>} */
  async function groupPause() {
    return outcomesOf(await call('POST', ROOM_PAUSE_PATH));
  }

  /**
   * Calls `onChange` on each `room` event of the service's event stream, and every `pollMs`
   * while that stream is not open (connecting, broken, or no EventSource at all).
   * @param {(change: import('./spotauth').RoomChange) => unknown} onChange
   * @param {{ pollMs?: number }} [opts]
   * @returns {() => void} unsubscribe
   */
  function subscribe(onChange, opts = {}) {
    if (typeof onChange !== 'function') throw new TypeError('subscribe takes a function');
    const pollMs =
      typeof opts.pollMs === 'number' && Number.isFinite(opts.pollMs) && opts.pollMs > 0 ? opts.pollMs : DEFAULT_POLL_MS;
    /** @type {any} */
    const ES = options.EventSource === undefined ? /** @type {any} */ (globalThis).EventSource : options.EventSource;
    let closed = false;
    /** @type {any} the EventSource, while there is one */
    let source = null;
    /** @type {any} */
    let pollTimer = null;
    /** @type {any} */
    let reopenTimer = null;
    let failures = 0;

    /** @param {import('./spotauth').RoomChange} change */
    function notify(change) {
      if (closed) return;
      try {
        const result = /** @type {any} */ (onChange(change));
        if (result && typeof result.then === 'function') result.then(ignore, ignore);
      } catch {
        // The page's handler failing must not stop the updates.
      }
    }

    function startPolling() {
      if (closed || pollTimer !== null) return;
      pollTimer = setInterval(() => notify({ source: 'poll', version: null }), pollMs);
    }

    function stopPolling() {
      if (pollTimer === null) return;
      clearInterval(pollTimer);
      pollTimer = null;
    }

    /** @param {MessageEvent} event */
    function onRoom(event) {
      /** @type {number | null} */
      let version = null;
      try {
        const data = JSON.parse(event.data);
        if (isObject(data) && typeof data.version === 'number') version = data.version;
      } catch {
        version = null;
      }
      notify({ source: 'event', version });
    }

    function onOpen() {
      if (closed) return;
      failures = 0;
      stopPolling();
    }

    function onStreamError() {
      if (closed) return;
      startPolling();
      // CONNECTING: the browser reconnects by itself. CLOSED: it gave up (an error status, a
      // wrong content type); a new one is opened later, backing off while that keeps happening.
      if (source !== null && source.readyState === ES_CLOSED) {
        drop();
        const delay = Math.min(MAX_REOPEN_MS, pollMs * 2 ** failures);
        failures += 1;
        reopenTimer = setTimeout(() => {
          reopenTimer = null;
          open();
        }, delay);
      }
    }

    function drop() {
      if (source === null) return;
      source.removeEventListener('room', onRoom);
      source.removeEventListener('open', onOpen);
      source.removeEventListener('error', onStreamError);
      try {
        source.close();
      } catch {
        // Already closed.
      }
      source = null;
    }

    function open() {
      if (closed) return;
      if (typeof ES !== 'function') {
        startPolling();
        return;
      }
      try {
        source = new ES(base + ROOM_EVENTS_PATH, { withCredentials: true });
      } catch {
        source = null; // e.g. a URL it refuses: it would refuse again, so polling it is
        startPolling();
        return;
      }
      source.addEventListener('room', onRoom);
      source.addEventListener('open', onOpen);
      source.addEventListener('error', onStreamError);
      if (source.readyState === ES_OPEN) onOpen();
      else startPolling();
    }

    open();
    return () => {
      if (closed) return;
      closed = true;
      stopPolling();
      if (reopenTimer !== null) clearTimeout(reopenTimer);
      reopenTimer = null;
      drop();
    };
  }

  /** @param {(e: SpotauthError) => void} listener */
  function onError(listener) {
    if (typeof listener !== 'function') throw new TypeError('onError takes a function');
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }

  function close() {
    if (channel) {
      channel.removeEventListener('message', onMessage);
      channel.close();
      channel = null;
    }
  }

  return Object.freeze({
    config,
    login,
    loginResult,
    logout,
    me: () => call('GET', ME_PATH),
    activeUsers,
    setActive,
    sessions,
    endSession,
    endOtherSessions,
    deleteAccount,
    reportPlayer,
    leavePlayer,
    groupPlay,
    groupPause,
    subscribe,
    subscription: () => call('GET', SUBSCRIPTION_PATH),
    accessToken,
    getOAuthToken,
    onError,
    close,
  });
}
