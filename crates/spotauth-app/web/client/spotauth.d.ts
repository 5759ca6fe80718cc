/**
 * Types of the spotauth browser client (`/client/spotauth.js`).
 *
 * ```ts
 * import { createClient, SpotauthError } from '/client/spotauth.js';
 * const client = createClient();
 * const player = new Spotify.Player({ name: 'Room', getOAuthToken: client.getOAuthToken });
 * client.onError((e) => console.warn(e.kind, e.code, e.retryAfter));
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

/** A person in the active list, as other signed-in people see them. */
export interface Presence {
  /** Opaque id (not the Spotify id). */
  id: string;
  displayName: string | null;
  /** Premium and connected; null while unknown. */
  canPlay: boolean | null;
  /** RFC 3339, rounded down to five minutes. */
  lastSeen: string;
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
}

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
  /** `GET /api/auth/spotify/subscription`. */
  subscription(): Promise<Subscription>;
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
