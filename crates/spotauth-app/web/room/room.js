// The listening room: who is here, and a Spotify player of your own in this browser.
//
// It talks to spotauth only through the browser client (../client/spotauth.js) and to
// Spotify only through the Web Playback SDK and one Web API call (start playback), so it
// doubles as the integration example. Everything shown comes from textContent: display
// names are other people's input and are never parsed as HTML. No token is ever shown.

import { createClient } from '../client/spotauth.js';

const ACTIVE_REFRESH_MS = 5000; // the active list is polled while the page is visible
const ACTIVE_PAGE_SIZE = 50;

// ---------------------------------------------------------------- elements and helpers

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const ui = {
  status: $('status'), error: $('error'),
  signedOut: document.getElementById('signed-out'), login: $('login'),
  reconnectMessage: document.getElementById('reconnect-message'), reconnect: $('reconnect'),
  signedIn: document.getElementById('signed-in'), account: document.getElementById('account'),
  userName: $('user-name'), logout: $('logout'), disconnect: $('disconnect'),
  premium: $('premium-required'), controls: document.getElementById('player-controls'),
  playerStatus: $('player-status'), playForm: document.getElementById('play-form'),
  trackUri: $('track-uri'), play: $('play'), toggle: $('toggle'), nowPlaying: $('now-playing'),
  activeList: $('active-list'), activeSummary: document.getElementById('active-summary'),
  showMe: $('show-me'),
};

const show = (el, visible = true) => { el.hidden = !visible; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Announces progress in the polite live region. */
const say = (text) => { if (ui.status.textContent !== text) ui.status.textContent = text; };

/** "42 s" for short waits, minutes or hours for long ones (Spotify's can reach a day). */
function wait(seconds) {
  if (seconds == null) return 'a moment';
  if (seconds < 120) return `${Math.ceil(seconds)} s`;
  if (seconds < 7200) return `${Math.ceil(seconds / 60)} min`;
  return `${Math.ceil(seconds / 3600)} h`;
}

// ---------------------------------------------------------------- state

const apiBase = document.querySelector('meta[name="spotauth-api"]')?.content || '';
const client = createClient({ baseUrl: apiBase });

let me = null;            // the signed-in user (GET /api/users/me), or null
let player = null;        // the one Spotify.Player of this page load
let playerCreated = false; // never reset: a token refresh must not create a second player
let deviceId = null;      // our player's Spotify Connect device id, once `ready`
let configPromise = null; // client.config(), fetched once
let refreshTimer = null;
let refreshing = false;

const config = () => (configPromise ??= client.config().catch((e) => { configPromise = null; throw e; }));

// ---------------------------------------------------------------- errors

/** The sentence shown for a SpotauthError (the client's kinds). */
function describe(e) {
  switch (e.kind) {
    case 'not_logged_in': return 'You are signed out.';
    case 'reconnect_spotify': return 'Spotify needs you to connect your account again.';
    case 'premium_required': return 'Spotify Premium is required to play here.';
    case 'not_allow_listed':
      return 'This Spotify account is not on the app\'s list of allowed users. Ask the room\'s owner to add it.';
    case 'spotify_busy': return `Spotify is busy, try again in ${wait(e.retryAfter)}.`;
    case 'too_many_requests': return `Too many requests, try again in ${wait(e.retryAfter)}.`;
    case 'login_declined': return 'Spotify login was cancelled. Connect again whenever you like.';
    case 'login_failed': return 'Logging in with Spotify failed. Please try again.';
    case 'network': return 'The listening room service can\'t be reached. Check your connection and try again.';
    default: return 'Something went wrong on our side. Please try again.';
  }
}

/** Shows an error message; `kind` goes to data-kind for tests and styling. */
function showError(kind, text) {
  if (!ui.error.hidden && ui.error.dataset.kind === kind && ui.error.textContent === text) return; // no re-announce
  ui.error.dataset.kind = kind;
  ui.error.textContent = text;
  show(ui.error);
}

/** Hides the error area, or only when it shows `kind` (so one success clears its own error). */
function clearError(kind) {
  if (kind && ui.error.dataset.kind !== kind) return;
  show(ui.error, false);
  ui.error.textContent = '';
  delete ui.error.dataset.kind;
}

/** The one place every SpotauthError goes: some kinds change what the page shows. */
function handleError(e) {
  if (!e || typeof e.kind !== 'string') e = { kind: 'server', retryAfter: null };
  if (e.kind === 'not_logged_in') return showSignedOut('Your session has ended. Connect again to continue.');
  if (e.kind === 'reconnect_spotify') return showReconnect();
  if (e.kind === 'premium_required') return premiumRequired();
  showError(e.kind, describe(e));
}

// ---------------------------------------------------------------- page states

function showSignedOut(message) {
  stopActiveRefresh();
  disconnectPlayer();
  me = null;
  show(ui.signedIn, false);
  show(ui.account, false);
  show(ui.reconnectMessage, false);
  show(ui.reconnect, false);
  show(ui.premium, false);
  show(ui.signedOut);
  ui.activeList.replaceChildren(); // nothing about others stays on a signed-out page
  ui.activeSummary.textContent = '';
  ui.login.disabled = false;
  say(message || 'Connect with Spotify to join the room.');
}

function showReconnect() {
  show(ui.reconnectMessage);
  show(ui.reconnect);
  say('Spotify needs you to connect your account again.');
}

function showSignedIn(user) {
  me = user;
  const name = user.displayName || user.spotifyId || 'Spotify user';
  ui.userName.textContent = name;
  ui.showMe.checked = user.isActive;
  clearError('network'); // start() may have been retrying
  clearError('server');
  show(ui.signedOut, false);
  show(ui.account);
  show(ui.signedIn);
  say(`Welcome, ${name}.`);

  if (user.reauthRequired) showReconnect();
  else if (user.isPremium === false) premiumRequired();
  else startPlayer(name); // Premium, or unknown (the SDK's account_error will tell)

  refreshActive(); // and every 5 s from then on
}

/** Not Premium: say so clearly, and no player (or disconnect the one we have). */
function premiumRequired() {
  show(ui.premium);
  show(ui.controls, false);
  disconnectPlayer();
  setPlayerStatus('error', 'Spotify Premium required');
  say('Spotify Premium is required to play here; you can still see who is listening.');
}

// ---------------------------------------------------------------- the player

function setPlayerStatus(state, text) {
  ui.playerStatus.dataset.state = state;
  ui.playerStatus.textContent = text;
  if (state === 'ready' && deviceId) ui.playerStatus.dataset.deviceId = deviceId;
  else delete ui.playerStatus.dataset.deviceId;
  ui.play.disabled = ui.toggle.disabled = state !== 'ready';
}

/** Loads the SDK once: the ready callback must exist before the script does. */
function loadSdk(sdkUrl) {
  return new Promise((resolve, reject) => {
    if (window.Spotify?.Player) return resolve();
    window.onSpotifyWebPlaybackSDKReady = resolve;
    const script = document.createElement('script');
    script.src = sdkUrl;
    script.async = true;
    script.onerror = () => reject(new Error('sdk_load_failed'));
    document.head.append(script);
  });
}

// Fixed texts for the SDK's error events: their own messages are not documented, never shown.
const PLAYER_ERRORS = {
  initialization_error: 'This browser can\'t run the Spotify player (it needs a recent browser with protected media enabled).',
  authentication_error: 'Spotify did not accept this player\'s sign-in. Try logging out and in again.',
  playback_error: 'Spotify could not play that. Try another track.',
};

async function startPlayer(name) {
  if (playerCreated) return; // exactly one player per page load
  playerCreated = true;
  show(ui.controls);
  setPlayerStatus('connecting', 'Connecting…');
  try {
    const { sdkUrl } = await config();
    await loadSdk(sdkUrl);
  } catch (e) {
    setPlayerStatus('error', 'The player could not be loaded.');
    if (e?.kind) handleError(e);
    else showError('initialization_error', 'The Spotify player could not be loaded. Check your connection and reload the page.');
    return;
  }
  if (!me || !ui.premium.hidden) return; // signed out, or found not Premium, while loading

  player = new window.Spotify.Player({
    name: `Listening room – ${name}`,
    getOAuthToken: client.getOAuthToken, // the client fetches (and refreshes) our user's token
    volume: 0.8,
  });

  player.addListener('ready', ({ device_id: id }) => {
    deviceId = id;
    setPlayerStatus('ready', 'Ready');
    say('Your player is ready. Pick something and press Play.');
  });
  player.addListener('not_ready', () => {
    deviceId = null;
    setPlayerStatus('not_ready', 'Offline, reconnecting…');
  });
  player.addListener('player_state_changed', showNowPlaying);
  player.addListener('autoplay_failed', () => {
    say('Your browser blocked autoplay. Press Play or Pause / resume to start the music.');
  });
  player.addListener('account_error', premiumRequired); // not Premium after all
  for (const [event, text] of Object.entries(PLAYER_ERRORS)) {
    player.addListener(event, () => {
      if (event !== 'playback_error') setPlayerStatus('error', 'Not available');
      showError(event, text);
    });
  }

  if (!(await player.connect())) setPlayerStatus('error', 'Could not connect');
}

function disconnectPlayer() {
  if (!player) return;
  player.disconnect();
  player = null;
  deviceId = null;
  setPlayerStatus('not_ready', 'Disconnected');
  showNowPlaying(null);
}

/** Renders a WebPlaybackState (null: nothing plays here, e.g. playback moved elsewhere). */
function showNowPlaying(state) {
  const track = state?.track_window?.current_track;
  if (!track) {
    ui.nowPlaying.dataset.state = 'idle';
    ui.nowPlaying.dataset.trackUri = '';
    ui.nowPlaying.textContent = 'Nothing yet';
    return;
  }
  const artists = (track.artists || []).map((a) => a.name).join(', ');
  ui.nowPlaying.dataset.state = state.paused ? 'paused' : 'playing';
  ui.nowPlaying.dataset.trackUri = track.uri;
  ui.nowPlaying.textContent = `${track.name}${artists ? ` — ${artists}` : ''}${state.paused ? ' (paused)' : ''}`;
}

/** PUT /me/player/play on our own device, with our user's token from spotauth. */
async function requestPlay(uri) {
  const [{ spotifyApiUrl }, { accessToken }] = await Promise.all([config(), client.accessToken()]);
  const body = /^spotify:(track|episode):/.test(uri) ? { uris: [uri] } : { context_uri: uri };
  return fetch(`${spotifyApiUrl}/me/player/play?device_id=${encodeURIComponent(deviceId)}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const PLAY_FAILURES = {
  400: 'Spotify did not accept that URI. Check it and try again.',
  401: 'Spotify did not accept this player\'s sign-in. Try logging out and in again.',
  404: 'Spotify lost track of this player (a stale device). Reload the page to reconnect it.',
};

async function play(uri) {
  if (!player || !deviceId) return;
  // First, inside the click: browsers that block autoplay need this before any await.
  await player.activateElement();
  ui.play.disabled = true;
  say('Starting playback…');
  try {
    let res = await requestPlay(uri);
    if (res.status === 404) { // a device that has only just come online: wait and retry once
      await sleep(1000);
      res = await requestPlay(uri);
    }
    if (res.ok) { clearError(); say('Playing in this browser.'); return; }

    // Spotify's errors: {"error": {"status", "message", "reason"?}}
    const reason = await res.json().then((b) => b?.error?.reason, () => undefined);
    if (res.status === 403 && reason === 'PREMIUM_REQUIRED') return premiumRequired();
    say('Playback did not start.');
    if (res.status === 429) { // Retry-After is readable only if Spotify's CORS exposes it
      const after = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
      showError('spotify_busy', `Spotify is busy, try again in ${wait(Number.isNaN(after) ? null : after)}.`);
    } else {
      showError('playback_error', PLAY_FAILURES[res.status] ?? `Spotify refused to play (${res.status}).`);
    }
  } catch (e) {
    if (e?.kind) handleError(e); // from the client: no token, signed out, …
    else showError('network', 'Spotify can\'t be reached. Check your connection and try again.');
    say('Playback did not start.');
  } finally {
    ui.play.disabled = !deviceId;
  }
}

// ---------------------------------------------------------------- who is listening

const CAN_PLAY = { true: 'ready to play', false: 'free account', unknown: 'unknown' };

function renderActive({ items, total }) {
  const span = (className, text) => Object.assign(document.createElement('span'), { className, textContent: text });
  const rows = items.map((person) => {
    const canPlay = typeof person.canPlay === 'boolean' ? String(person.canPlay) : 'unknown';
    const li = document.createElement('li');
    Object.assign(li.dataset, { testid: 'active-user', userId: person.id, canPlay });
    const name = span('name', person.displayName || 'Spotify user');
    if (me && person.id === me.id) {
      li.className = 'self';
      name.append(span('you', ' (you)'));
    }
    li.append(name, span(`badge can-play-${canPlay}`, CAN_PLAY[canPlay]));
    return li;
  });
  ui.activeList.replaceChildren(...rows);
  ui.activeSummary.textContent = total === 0 ? 'Nobody is showing themselves right now.'
    : total > items.length ? `Showing ${items.length} of ${total} people.`
    : `${total} ${total === 1 ? 'person' : 'people'} here.`;
}

/** One refresh, then the next one in 5 s (later when the service asked us to back off). */
async function refreshActive() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (!me || refreshing || document.visibilityState !== 'visible') return;
  refreshing = true;
  let next = ACTIVE_REFRESH_MS;
  try {
    renderActive(await client.activeUsers({ offset: 0, limit: ACTIVE_PAGE_SIZE }));
    clearError('network');
  } catch (e) {
    handleError(e);
    if (e?.retryAfter) next = Math.max(next, e.retryAfter * 1000);
  } finally {
    refreshing = false;
  }
  if (me && document.visibilityState === 'visible') refreshTimer = setTimeout(refreshActive, next);
}

function stopActiveRefresh() { clearTimeout(refreshTimer); refreshTimer = null; }

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') refreshActive();
  else stopActiveRefresh();
});

// ---------------------------------------------------------------- controls

/** Where Spotify sends the user back to: this page's path, when it is a plain one. */
const returnTo = () => (/^\/(?![/\\])/.test(location.pathname) ? location.pathname : '/');

async function login(button) {
  button.disabled = true;
  say('Opening Spotify…');
  try {
    await client.login({ returnTo: returnTo() }); // navigates away
  } catch (e) {
    handleError(e);
    button.disabled = false;
  }
}

ui.login.addEventListener('click', () => login(ui.login));
ui.reconnect.addEventListener('click', () => login(ui.reconnect));

ui.playForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const uri = ui.trackUri.value.trim();
  if (!/^spotify:[a-z]+:\S+$/.test(uri)) {
    showError('invalid_uri', 'Enter a Spotify URI such as spotify:track:4uLU6hMCjMI75M1A2tKUQC.');
    ui.trackUri.focus();
    return;
  }
  clearError('invalid_uri');
  play(uri);
});

ui.toggle.addEventListener('click', async () => {
  if (!player) return;
  try {
    await player.activateElement(); // also inside the click, for a blocked autoplay
    await player.togglePlay();
  } catch {
    showError('playback_error', 'The player did not respond. Try again.');
  }
});

ui.showMe.addEventListener('change', async () => {
  const wanted = ui.showMe.checked;
  ui.showMe.disabled = true;
  try {
    me = await client.setActive(wanted);
    ui.showMe.checked = me.isActive;
    say(wanted ? 'Others can now see you in the room.' : 'You are now hidden from others.');
    refreshActive();
  } catch (e) {
    ui.showMe.checked = !wanted;
    handleError(e);
  } finally {
    ui.showMe.disabled = false;
  }
});

/** Log out ('device') or Disconnect Spotify ('everywhere'): stop the music first. */
async function logout(scope) {
  ui.logout.disabled = ui.disconnect.disabled = true;
  say(scope === 'device' ? 'Logging out…' : 'Disconnecting Spotify…');
  disconnectPlayer();
  try {
    await client.logout({ scope });
  } catch (e) {
    if (e?.kind !== 'not_logged_in') {
      handleError(e);
      ui.logout.disabled = ui.disconnect.disabled = false;
      return;
    }
  }
  ui.logout.disabled = ui.disconnect.disabled = false;
  clearError();
  showSignedOut(scope === 'device'
    ? 'You are logged out on this device.'
    : 'Spotify is disconnected and you are logged out everywhere. You can also remove this app in your Spotify account\'s Apps page.');
}

ui.logout.addEventListener('click', () => logout('device'));
ui.disconnect.addEventListener('click', () => logout('everywhere'));

// Errors the client meets while serving the SDK its token (e.g. Spotify access revoked).
client.onError(handleError);

// ---------------------------------------------------------------- start

/** Who is here? Retries on its own while the service can't be reached. */
async function start() {
  try {
    showSignedIn(await client.me());
  } catch (e) {
    if (e?.kind === 'not_logged_in') return showSignedOut();
    handleError(e);
    if (['network', 'server', 'spotify_busy', 'too_many_requests'].includes(e?.kind)) {
      say('Trying again shortly…');
      setTimeout(start, Math.max(5, e.retryAfter ?? 0) * 1000);
    }
  }
}

// The outcome of a login that just came back from Spotify: show it once, then tidy the URL.
const loginError = client.loginResult();
if (loginError) {
  handleError(loginError);
  const url = new URL(location.href);
  url.searchParams.delete('error');
  url.searchParams.delete('retryAfter');
  history.replaceState(history.state, '', url);
}
start();
