/**
 * Types of the spotauth browser client (`/client/spotauth.js`).
 *
 * ```ts
 * import { createClient, SpotauthError } from '/client/spotauth.js';
 * const client = createClient();
 * const player = new Spotify.Player({ name: 'Room', getOAuthToken: client.getOAuthToken });
 * client.onError((e) => console.warn(e.kind, e.code, e.retryAfter));
 * player.addListener('ready', ({ device_id }) => client.reportPlayer({ deviceId: device_id, name: 'Room', nowPlaying: null }));
 * const unsubscribe = client.subscribe(() => refreshList());
 * const outcomes = await client.groupPlay({ uris: ['spotify:track:4uLU6hMCjMI75M1A2tKUQC'] });
 * ```
 */

/**
 * What went wrong, as a page acts on it.
 *
 * - `not_logged_in`: no session, or it is over (problem `unauthenticated`, after one rotation was tried).
 * - `reconnect_spotify`: Spotify must be connected again by logging in (`spotify_reauth_required`, `spotify_not_connected`).
 * - `premium_required`: the Spotify account is not Premium.
 * - `not_allow_listed`: the Spotify app is in Development Mode and this account is not on its allow-list
 *   (`spotify_not_allow_listed`, callback `not_allow_listed`).
 * - `spotify_busy`: Spotify rate-limits the app or is down (`spotify_rate_limited`, `spotify_unavailable`); see `retryAfter`.
 * - `too_many_requests`: the service's own limits (`rate_limited`, `too_many_logins`); see `retryAfter`.
 * - `login_declined`: the user declined at Spotify (callback `access_denied`).
 * - `login_failed`: any other login callback error.
 * - `not_host`: group playback is limited to the room's hosts, or to people shown in the room, and
 *   this user is not one (`not_host`, from {@link SpotauthClient.groupPlay} and {@link SpotauthClient.groupPause}).
 * - `no_player`: Spotify does not list the reported player among the user's devices (yet)
 *   (`device_not_found`, from {@link SpotauthClient.reportPlayer}: a player that has only just
 *   become ready; wait about a second and report once more).
 * - `network`: the service could not be reached (`fetch` rejected).
 * - `server`: anything else (including answers this client does not understand: code `invalid_response`).
 */
export type OutcomeKind =
  | 'not_logged_in'
  | 'reconnect_spotify'
  | 'premium_required'
  | 'not_allow_listed'
  | 'spotify_busy'
  | 'too_many_requests'
  | 'login_declined'
  | 'login_failed'
  | 'not_host'
  | 'no_player'
  | 'network'
  | 'server';

/** How a {@link SpotauthError} is made (mostly by the client itself). */
export interface SpotauthErrorInit {
  kind: OutcomeKind;
  code: string;
  /** Default 0. */
  status?: number;
  /** Default null. */
  retryAfter?: number | null;
  /** Default null. */
  problem?: unknown;
  /** Default null. */
  requestId?: string | null;
  /** Default: a sentence for the kind, with the code. */
  message?: string;
  cause?: unknown;
}

/**
 * An error of the client. Its message never contains a token.
 */
export class SpotauthError extends Error {
  constructor(init: SpotauthErrorInit);
  /** `'SpotauthError'`. */
  name: string;
  /** What happened, for the page to act on. */
  kind: OutcomeKind;
  /**
   * The service's stable problem code (e.g. `spotify_reauth_required`), the login callback's
   * `?error=` code, `network`, `invalid_response`, or `http_<status>` when the answer carried no
   * problem document.
   */
  code: string;
  /** The HTTP status; 0 when there was none (network failure, login callback). */
  status: number;
  /** Seconds to wait before trying again, when the service said (`Retry-After`, `?retryAfter=`). */
  retryAfter: number | null;
  /** The RFC 9457 problem document the service sent (`{type,title,status,code,detail?}`), or null. */
  problem: unknown | null;
  /**
   * The service's id of the failed request (`requestId` of the problem, or `X-Request-Id`): quote
   * it in a support report; the service's log lines of that request carry it. null when none.
   */
  requestId: string | null;
}

/** `GET /api/config`. */
export interface SpotauthConfig {
  /** The URL of the Web Playback SDK script. */
  sdkUrl: string;
  /** The base of Spotify's Web API, e.g. `https://api.spotify.com/v1`. */
  spotifyApiUrl: string;
}

/** A Spotify access token of the logged-in user. */
export interface AccessToken {
  /** Send as `Authorization: Bearer <accessToken>` to Spotify; hand to the Web Playback SDK. */
  accessToken: string;
  /** When it expires, RFC 3339 (`new Date(expiresAt)` works). */
  expiresAt: string;
  /** Seconds it has left, as of when it was handed out. */
  expiresIn: number;
}

/** What `logout` did. */
export interface LogoutResult {
  scope: 'device' | 'everywhere';
  /** Sessions ended (0 when there was nothing to log out). */
  sessionsEnded: number;
  /** Whether the user's Spotify tokens were deleted (`everywhere`). */
  spotifyDisconnected: boolean;
}

/** One of the user's live sessions (`GET /api/users/me/sessions`). Never a token. */
export interface SessionInfo {
  id: string;
  /** RFC 3339: the login. */
  createdAt: string;
  /** RFC 3339: last use (coalesced: up to a few seconds behind). */
  lastSeenAt: string;
  /** RFC 3339: when it ends unless used and rotated before. */
  expiresAt: string;
  /** Readable, from the User-Agent at login: "Firefox on Linux", "Safari on iPhone". */
  device: string;
  userAgent: string | null;
  ipAddress: string | null;
  /** The session of this browser. */
  current: boolean;
}

/** `GET /api/users/me`: the logged-in user. */
export interface User {
  id: string;
  spotifyId: string;
  displayName: string | null;
  /** Listed in the active users (false: opted out). */
  isActive: boolean;
  /** null while unknown. */
  isPremium: boolean | null;
  premiumSource: PremiumSource;
  /** RFC 3339. */
  lastActive: string;
  /** RFC 3339. */
  createdAt: string;
  spotifyConnected: boolean;
  reauthRequired: boolean;
}

/** Where a Premium status came from. */
export type PremiumSource = 'profile' | 'player_probe' | 'playback_sdk' | 'none';

/** What a person's player plays, as their page last reported it. */
export interface NowPlaying {
  /** The track's or episode's Spotify URI, e.g. `spotify:track:4uLU6hMCjMI75M1A2tKUQC`. */
  uri: string;
  /** Its name. */
  name: string;
  /** Playing (false: paused). */
  isPlaying: boolean;
}

/** A person in the active list, as other signed-in people see them. */
export interface Presence {
  /** Opaque id (not the Spotify id); the same id as {@link User.id} and {@link GroupOutcome.id}. */
  id: string;
  displayName: string | null;
  /** Premium and connected; null while unknown. */
  canPlay: boolean | null;
  /**
   * Ready to play along: Premium (or not known to be free), connected, and a player that their
   * page reported recently. Group playback reaches exactly the people who are ready.
   */
  ready: boolean;
  /** What their player plays, when their page said; null when unknown. */
  nowPlaying: NowPlaying | null;
  /** RFC 3339, rounded down to five minutes. */
  lastSeen: string;
}

/** A page's report of its Web Playback SDK player (`PUT /api/room/player`). */
export interface PlayerReport {
  /** The SDK's `device_id` (from its `ready` event). */
  deviceId: string;
  /** The name the player shows in Spotify Connect (1 to 200 characters). */
  name: string;
  /** What it plays (`player_state_changed`), or null when nothing or not known. */
  nowPlaying: NowPlaying | null;
}

/** What a group play starts: tracks or episodes (`uris`), or a context (album, playlist, artist, show). */
export type GroupTarget = { uris: string[]; contextUri?: undefined } | { contextUri: string; uris?: undefined };

/**
 * How a group command went for one person present.
 *
 * - `started` / `paused`: their player did it.
 * - `premium_required`: a free account; nothing was asked of Spotify for them.
 * - `no_player`: no player of theirs is open (or it vanished).
 * - `reconnect_spotify`: their Spotify connection needs a new login.
 * - `rate_limited`: Spotify limits the app; see `retryAfter`. Nothing was asked for them.
 * - `failed`: anything else (also any outcome this client does not know).
 */
export type GroupOutcomeKind =
  | 'started'
  | 'paused'
  | 'premium_required'
  | 'no_player'
  | 'reconnect_spotify'
  | 'rate_limited'
  | 'failed';

/** One person's outcome of {@link SpotauthClient.groupPlay} or {@link SpotauthClient.groupPause}. */
export interface GroupOutcome {
  /** The person's opaque id (as {@link Presence.id}). */
  id: string;
  displayName: string | null;
  outcome: GroupOutcomeKind;
  /** Seconds to wait (with `rate_limited`), when the service said. */
  retryAfter?: number;
}

/** Why {@link SpotauthClient.subscribe} calls its `onChange`. */
export interface RoomChange {
  /** `event`: the service's event stream said the room changed; `poll`: the fallback's tick. */
  source: 'event' | 'poll';
  /** The room's version the event carried (null for a poll, or when it carried none). */
  version: number | null;
}

/** One page of a list. */
export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

/** `GET /api/auth/spotify/subscription`. */
export interface Subscription {
  /** null while unknown. */
  isPremium: boolean | null;
  product: string | null;
  /** RFC 3339, or null when never checked. */
  checkedAt: string | null;
  source: PremiumSource;
}

/** The part of the Web Locks API's `LockManager` the client uses (`navigator.locks` fits). */
export interface LockManagerLike {
  request<T>(name: string, callback: (lock: any) => T | PromiseLike<T>): Promise<T>;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The API's origin plus an optional path prefix (e.g. `https://auth.example.com`); default `''` (same origin). */
  baseUrl?: string;
  /** Default `globalThis.fetch`. Every request goes with `credentials: 'include'`. */
  fetch?: typeof fetch;
  /** The clock in ms; default `Date.now`. */
  now?: () => number;
  /**
   * A token held in memory is handed out until `expiresAt - margin`, where margin is this
   * (default 60 000) but never more than half the token's lifetime.
   */
  refreshMarginMs?: number;
  /** The BroadcastChannel tabs share tokens on; default `'spotauth'`; null disables sharing. */
  channelName?: string | null;
  /** Cross-tab locks; default `navigator.locks` when there is one; null disables them. */
  locks?: LockManagerLike | null;
  /** Sends the browser to Spotify's authorize page; default `url => window.location.assign(url)`. */
  navigate?: (url: string) => void;
  /**
   * The EventSource constructor {@link SpotauthClient.subscribe} uses; default
   * `globalThis.EventSource`; null: none (it polls instead).
   */
  EventSource?: EventSourceConstructorLike | null;
}

/** The part of the `EventSource` API the client uses (the browser's `EventSource` fits). */
export interface EventSourceLike {
  /** 0 connecting, 1 open, 2 closed. */
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  removeEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

/** `new EventSource(url, { withCredentials: true })`. */
export type EventSourceConstructorLike = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** A client of the spotauth API. Its methods work unbound. */
export interface SpotauthClient {
  /** `GET /api/config` (public); cached after the first success. */
  config(): Promise<SpotauthConfig>;
  /**
   * Starts a login: `POST /api/auth/spotify/login` (with `{returnTo}` when given), then
   * navigates to Spotify's authorize page. Spotify sends the browser back to the frontend,
   * logged in or with `?error=`: see {@link SpotauthClient.loginResult}.
   */
  login(opts?: { returnTo?: string }): Promise<void>;
  /**
   * The login callback's outcome in a URL (default `window.location.href`): a SpotauthError for
   * `?error=<code>[&retryAfter=<s>]` (status 0), or null when the URL carries no error.
   */
  loginResult(url?: string | URL): SpotauthError | null;
  /**
   * `POST /api/auth/spotify/logout?scope=` (default `device`: this browser's session; `everywhere`:
   * every session of the user, and Spotify disconnected). Forgets the tokens in memory and tells
   * the other tabs. A 401 (nothing to log out) counts as success with `sessionsEnded: 0`.
   */
  logout(opts?: { scope?: 'device' | 'everywhere' }): Promise<LogoutResult>;
  /** `GET /api/users/me`. */
  me(): Promise<User>;
  /** `GET /api/users/active?offset=&limit=`. */
  activeUsers(opts?: { offset?: number; limit?: number }): Promise<Page<Presence>>;
  /** `PUT /api/users/me/active` (false: leave the active list; true: come back). */
  setActive(active: boolean): Promise<User>;
  /** `GET /api/users/me/sessions`: where this user is signed in, most recently used first. */
  sessions(): Promise<SessionInfo[]>;
  /**
   * `DELETE /api/users/me/sessions/{id}`: ends one session at once (404 `session_not_found`
   * unless it is a live one of this user). Given this browser's own session (`current`), the
   * tokens in memory are forgotten and the other tabs told, as by `logout`.
   */
  endSession(session: string | Pick<SessionInfo, 'id' | 'current'>): Promise<void>;
  /** `DELETE /api/users/me/sessions`: logs out every other device; this one stays signed in. */
  endOtherSessions(): Promise<{ sessionsEnded: number }>;
  /**
   * `DELETE /api/users/me`: deletes the account and everything stored about it (profile,
   * Spotify tokens, sessions, room presence). The grant at Spotify stays until the user removes
   * it at spotify.com/account/apps.
   */
  deleteAccount(): Promise<void>;
  /** `GET /api/auth/spotify/subscription`. */
  subscription(): Promise<Subscription>;
  /**
   * `PUT /api/room/player`: this page's Web Playback SDK player is here (on `ready`, when the
   * track or play/pause changes, and every 30 s as a heartbeat: the service forgets a player not
   * reported for 90 s). Rejects with kind `no_player` (`device_not_found`) when Spotify does not
   * list the device yet (retry once after about a second), `premium_required` for a free account,
   * `spotify_busy` (with `retryAfter`) while Spotify cannot be asked; a TypeError for a malformed
   * report.
   */
  reportPlayer(report: PlayerReport): Promise<void>;
  /**
   * `DELETE /api/room/player?deviceId=` (idempotent): this page's player went away (`not_ready`,
   * logout, opting out). With `keepalive` (for `pagehide`) the request outlives the page and is
   * sent once, with no session rotation.
   */
  leavePlayer(deviceId: string, opts?: { keepalive?: boolean }): Promise<void>;
  /**
   * `POST /api/room/play`: starts the same music for everyone present, each on their own account
   * and player. Resolves with each person's outcome. Call the SDK player's `activateElement()`
   * first, inside the user's gesture, so that this page's own player may start. Rejects with kind
   * `not_host` when this user may not control the room, `too_many_requests` (`rate_limited`,
   * with `retryAfter`), `server` with code `invalid_target` for a URI the service refused; a
   * TypeError for a malformed target.
   */
  groupPlay(target: GroupTarget, opts?: { positionMs?: number }): Promise<GroupOutcome[]>;
  /** `POST /api/room/pause`: pauses everyone present; outcomes as {@link SpotauthClient.groupPlay} (`paused`). */
  groupPause(): Promise<GroupOutcome[]>;
  /**
   * Live updates of the room: calls `onChange` on each `room` event of `GET /api/room/events`
   * (an EventSource with credentials; the service sends one right after connecting), and every
   * `pollMs` (default 5000) while that stream is not open: before it opens, while the browser
   * reconnects it, when it cannot be opened (then it is opened again later, backing off up to a
   * minute), or when there is no EventSource at all. Polling stops as soon as it is open.
   * `onChange` is never awaited; its errors are ignored. Returns the unsubscribe function.
   */
  subscribe(onChange: (change: RoomChange) => unknown, opts?: { pollMs?: number }): () => void;
  /**
   * A Spotify access token: from memory while fresh, else from the service (one request at a
   * time per page, one across tabs with Web Locks; concurrent callers share it). With `refused`
   * (a token Spotify turned down), never hands that token out again: a different fresh token in
   * memory, else `POST /api/auth/spotify/token {"refused"}`.
   */
  accessToken(opts?: { refused?: string }): Promise<AccessToken>;
  /**
   * For `new Spotify.Player({ getOAuthToken: client.getOAuthToken })` (works unbound). The first
   * call hands out a token; each later call (the SDK's token expired or was refused) hands out a
   * different fresh token when memory holds one, else asks the service to replace the last one
   * handed out, one request per expiry. Failures go to the {@link SpotauthClient.onError}
   * listeners, and `cb` is not called.
   */
  getOAuthToken(cb: (token: string) => void): void;
  /** Listens to errors of `getOAuthToken` (which cannot reject); returns the unsubscribe function. */
  onError(listener: (e: SpotauthError) => void): () => void;
  /** Stops listening to other tabs (closes the BroadcastChannel). The client still works alone. */
  close(): void;
}

/** Creates a client. One per page is enough. */
export function createClient(options?: ClientOptions): SpotauthClient;
