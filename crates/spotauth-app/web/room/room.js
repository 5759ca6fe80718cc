// The listening room: who is here, a Spotify player of your own in this browser, and music
// started for everyone at once.
//
// It talks to spotauth only through the browser client (../client/spotauth.js) and to
// Spotify only through the Web Playback SDK and one Web API call (start playback), so it
// doubles as the integration example. Everything shown comes from textContent: display
// names and track names are other people's input and are never parsed as HTML. No token is
// ever shown.
//
// Listening together: the page tells the service about its player (when it is ready, when
// the track or play/pause changes, and every 30 s), and tells it when the player goes away;
// the service can then start the same music on everyone's own player in one call. The list
// of people follows the service's room events (client.subscribe), which polls every 5 s
// only while the event stream is not open.

import { createClient } from '../client/spotauth.js';

const ACTIVE_FALLBACK_MS = 5000; // the active list's polling while live updates are down
const ACTIVE_PAGE_SIZE = 50;
const HEARTBEAT_MS = 30_000; // the service forgets a player not reported for 90 s
const REPORT_GAP_MS = 1000; // at most one player report a second
const DEVICE_RETRY_MS = 1000; // Spotify lists a player that just became ready a moment later
const LEAVE_WAIT_MS = 3000; // how long a logout waits for the player to leave the room
const ITEM_URI = /^spotify:(track|episode):[A-Za-z0-9]{1,64}$/;
const GROUP_URI = /^spotify:(track|episode|album|playlist|artist|show):[A-Za-z0-9]{1,64}$/;

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
  listenAlongRow: document.getElementById('listen-along-row'), listenAlong: $('listen-along'),
  groupForm: document.getElementById('group-form'), groupUri: $('group-uri'),
  groupPlay: $('group-play'), groupPause: $('group-pause'),
  groupSummary: document.getElementById('group-summary'), groupOutcomes: $('group-outcomes'),
};

const show = (el, visible = true) => { el.hidden = !visible; };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ignore = () => {};

/** A name the service takes: no control characters, trimmed, at most 200 characters. */
function shortText(text) {
  const clean = String(text ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
  return [...clean].slice(0, 200).join('').trim();
}

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
let playerName = null;    // the name it shows in Spotify Connect
let deviceId = null;      // our player's Spotify Connect device id, once `ready`
let activated = false;    // activateElement() ran inside a user gesture for this player
let autoplayBlocked = false; // the browser kept music someone started from playing here
let configPromise = null; // client.config(), fetched once
let refreshTimer = null;  // a refresh put off while the service asked us to back off
let refreshing = false;
let refreshAgain = false; // a change arrived while a refresh was running
let refreshNotBefore = 0;
let stopRoomUpdates = null; // client.subscribe's unsubscribe, while subscribed

// The room's view of our player: the device we reported (null: not in the room), what it
// plays, and the reports' pacing.
let joinedDevice = null;
let nowPlayingReport = null; // {uri, name, isPlaying} or null
let nowPlayingKey = '';
const reports = { due: false, inFlight: null, lastAt: -Infinity, timer: null, retry: null, heartbeat: null };

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
    case 'not_host': return NOT_HOST;
    case 'no_player': return 'Spotify does not list your player yet. It will be added to the room shortly.';
    case 'network': return 'The listening room service can\'t be reached. Check your connection and try again.';
    default: return 'Something went wrong on our side. Please try again.';
  }
}

const NOT_HOST = 'You can\'t start or pause music for everyone: only the room\'s hosts can, and only while '
  + 'they show themselves to others.';

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
  me = null;
  syncRoomUpdates();
  disconnectPlayer();
  show(ui.signedIn, false);
  show(ui.account, false);
  show(ui.reconnectMessage, false);
  show(ui.reconnect, false);
  show(ui.premium, false);
  show(ui.signedOut);
  ui.activeList.replaceChildren(); // nothing about others stays on a signed-out page
  ui.activeSummary.textContent = '';
  ui.groupOutcomes.replaceChildren();
  ui.groupSummary.textContent = '';
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

  syncRoomUpdates(); // the list now, then on every change in the room
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
  showListenAlong();
}

/** "Listen along" is offered while the player is ready but may not start music by itself. */
function showListenAlong() {
  show(ui.listenAlongRow, Boolean(player && deviceId && (!activated || autoplayBlocked)));
}

/**
 * Lets this page's player start music, also music that someone else starts: browsers play
 * sound only after a user gesture, and the SDK's activateElement() must run inside one, before
 * anything is awaited.
 */
function activate() {
  if (!player) return;
  Promise.resolve(player.activateElement()).catch(ignore);
  if (!navigator.userActivation || navigator.userActivation.isActive) activated = true;
  showListenAlong();
}

/** Any click or key press in the page activates the player once (so does "Listen along"). */
function unlockPlayback(event) {
  if (player && !activated && event.isTrusted) activate();
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

  playerName = shortText(`Listening room – ${name}`);
  player = new window.Spotify.Player({
    name: playerName,
    getOAuthToken: client.getOAuthToken, // the client fetches (and refreshes) our user's token
    volume: 0.8,
  });

  player.addListener('ready', ({ device_id: id }) => {
    deviceId = id;
    setPlayerStatus('ready', 'Ready');
    say('Your player is ready. Pick something and press Play.');
    joinRoom();
  });
  player.addListener('not_ready', () => {
    leaveRoom();
    deviceId = null;
    setPlayerStatus('not_ready', 'Offline, reconnecting…');
  });
  player.addListener('player_state_changed', (state) => {
    showNowPlaying(state);
    noteNowPlaying(state);
  });
  player.addListener('autoplay_failed', () => {
    autoplayBlocked = true;
    activated = false; // the gesture did not count: ask for one
    showListenAlong();
    say('Your browser blocked autoplay. Press Listen along, Play or Pause / resume to start the music.');
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
  leaveRoom();
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

// ---------------------------------------------------------------- our player in the room

/** Whether this page's player is in the room: ready, and its user shows themselves. */
const inRoom = () => Boolean(player && deviceId && joinedDevice === deviceId && me?.isActive !== false);

/** Our player is ready (or we show ourselves again): report it now and every 30 s. */
function joinRoom() {
  if (!player || !deviceId || !me || me.isActive === false) return;
  joinedDevice = deviceId;
  clearInterval(reports.heartbeat);
  reports.heartbeat = setInterval(wantReport, HEARTBEAT_MS);
  wantReport();
}

/**
 * Our player leaves the room (not_ready, logout, hiding ourselves, the page going away). A
 * report still on its way is waited for, so that it cannot land after the leave; with
 * `keepalive` (pagehide) nothing is waited for. Never rejects: the service forgets a player
 * that stops reporting anyway.
 */
function leaveRoom({ keepalive = false } = {}) {
  const device = joinedDevice;
  joinedDevice = null;
  clearInterval(reports.heartbeat);
  clearTimeout(reports.timer);
  clearTimeout(reports.retry);
  reports.heartbeat = reports.timer = reports.retry = null;
  reports.due = false;
  if (!device) return Promise.resolve();
  if (keepalive) return client.leavePlayer(device, { keepalive: true }).catch(ignore);
  return Promise.resolve(reports.inFlight).then(() => client.leavePlayer(device)).catch(ignore);
}

/** Asks for a report: sent at once, or one second after the last one (the latest state). */
function wantReport() {
  reports.due = true;
  pumpReports();
}

function pumpReports() {
  if (reports.inFlight || reports.timer || !reports.due) return;
  if (!inRoom()) { reports.due = false; return; }
  const hold = reports.lastAt + REPORT_GAP_MS - Date.now();
  if (hold > 0) {
    reports.timer = setTimeout(() => { reports.timer = null; pumpReports(); }, hold);
    return;
  }
  reports.due = false;
  reports.lastAt = Date.now();
  reports.inFlight = sendReport().finally(() => {
    reports.inFlight = null;
    pumpReports();
  });
}

async function sendReport() {
  const device = joinedDevice;
  const report = () => client.reportPlayer({ deviceId: device, name: playerName, nowPlaying: nowPlayingReport });
  try {
    try {
      await report();
    } catch (e) {
      if (e?.kind !== 'no_player') throw e;
      await sleep(DEVICE_RETRY_MS); // a player that just became ready: Spotify lists it shortly
      if (joinedDevice !== device) return;
      await report();
    }
    clearError('no_player');
  } catch (e) {
    if (joinedDevice !== device) return; // left meanwhile: nothing to fix
    reportFailed(e);
  }
}

function reportFailed(e) {
  switch (e?.kind) {
    case 'not_logged_in':
    case 'reconnect_spotify':
    case 'premium_required':
      handleError(e);
      return;
    case 'no_player': // still not listed: the next heartbeat tries again
      return;
    case 'server':
      if (e.status >= 400 && e.status < 500) return; // refused as sent: again only with the heartbeat
    // fall through: the service is in trouble
    default: { // the service or Spotify is busy or unreachable: quietly try again soon
      const ms = Math.min(HEARTBEAT_MS, Math.max(REPORT_GAP_MS, (e?.retryAfter ?? 5) * 1000));
      clearTimeout(reports.retry);
      reports.retry = setTimeout(() => { reports.retry = null; wantReport(); }, ms);
    }
  }
}

/** Reports what our player plays when the track or play/pause changed (at most once a second). */
function noteNowPlaying(state) {
  const track = state?.track_window?.current_track;
  const name = shortText(track?.name);
  nowPlayingReport = track && ITEM_URI.test(track.uri ?? '') && name
    ? { uri: track.uri, name, isPlaying: !state.paused }
    : null;
  if (state && state.paused === false) autoplayBlocked = false;
  showListenAlong();
  const key = nowPlayingReport ? `${nowPlayingReport.uri} ${nowPlayingReport.isPlaying}` : '';
  if (key === nowPlayingKey) return;
  nowPlayingKey = key;
  if (inRoom()) wantReport();
}

// ---------------------------------------------------------------- our own playback

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

/** What the badge says: free, ready (a player open), or Premium with no player open. */
function badge(person, canPlay) {
  if (canPlay === 'false' || typeof person.ready !== 'boolean') return CAN_PLAY[canPlay];
  return person.ready ? 'ready to play' : 'no player open';
}

function renderActive({ items, total }) {
  const span = (className, text) => Object.assign(document.createElement('span'), { className, textContent: text });
  const rows = items.map((person) => {
    const canPlay = typeof person.canPlay === 'boolean' ? String(person.canPlay) : 'unknown';
    const np = person.nowPlaying && typeof person.nowPlaying.uri === 'string' ? person.nowPlaying : null;
    const li = document.createElement('li');
    Object.assign(li.dataset, {
      testid: 'active-user', userId: person.id, canPlay,
      ready: String(person.ready === true), nowPlayingUri: np ? np.uri : '',
    });
    const name = span('name', person.displayName || 'Spotify user');
    if (me && person.id === me.id) {
      li.className = 'self';
      name.append(span('you', ' (you)'));
    }
    li.append(name, span(`badge can-play-${canPlay}${person.ready === true ? ' ready' : ''}`, badge(person, canPlay)));
    if (np) {
      const what = np.name || np.uri;
      li.append(span(`now ${np.isPlaying ? 'playing' : 'paused'}`, np.isPlaying ? `playing ${what}` : `paused: ${what}`));
    }
    return li;
  });
  ui.activeList.replaceChildren(...rows);
  ui.activeSummary.textContent = total === 0 ? 'Nobody is showing themselves right now.'
    : total > items.length ? `Showing ${items.length} of ${total} people.`
    : `${total} ${total === 1 ? 'person' : 'people'} here.`;
}

/**
 * Reads the list again (on a room event, or the fallback's poll). One at a time: a change that
 * arrives meanwhile makes one more; while the service asked us to back off, one waits.
 */
async function refreshActive() {
  if (!me || document.visibilityState !== 'visible') return;
  if (refreshing) { refreshAgain = true; return; }
  const hold = refreshNotBefore - Date.now();
  if (hold > 0) {
    refreshTimer ??= setTimeout(() => { refreshTimer = null; refreshActive(); }, hold);
    return;
  }
  refreshing = true;
  refreshAgain = false;
  try {
    renderActive(await client.activeUsers({ offset: 0, limit: ACTIVE_PAGE_SIZE }));
    clearError('network');
  } catch (e) {
    handleError(e);
    if (e?.retryAfter) refreshNotBefore = Date.now() + e.retryAfter * 1000;
  } finally {
    refreshing = false;
  }
  if (refreshAgain) refreshActive();
}

/**
 * Live updates while signed in and the page is visible (a hidden page holds no connection to
 * the service): the list now, then on every room event (polled every 5 s while the event
 * stream is down: the client's fallback, so the page never polls on its own).
 */
function syncRoomUpdates() {
  const wanted = Boolean(me) && document.visibilityState === 'visible';
  if (wanted && !stopRoomUpdates) {
    stopRoomUpdates = client.subscribe(refreshActive, { pollMs: ACTIVE_FALLBACK_MS });
    refreshActive();
  } else if (!wanted && stopRoomUpdates) {
    stopRoomUpdates();
    stopRoomUpdates = null;
    clearTimeout(refreshTimer);
    refreshTimer = null;
  }
}

document.addEventListener('visibilitychange', syncRoomUpdates);

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
    // Hidden people are not in the room: their player is not started for everyone.
    if (me.isActive) joinRoom();
    else leaveRoom();
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
  // Out of the room first (while the session still works), then stop the music.
  await Promise.race([leaveRoom(), sleep(LEAVE_WAIT_MS)]);
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

// Any click or key press lets this page's player play what others start (see unlockPlayback).
document.addEventListener('click', unlockPlayback, true);
document.addEventListener('keydown', unlockPlayback, true);
ui.listenAlong.addEventListener('click', async () => {
  if (!player) return;
  activate(); // inside the click (unlockPlayback may have done it already: harmless)
  if (autoplayBlocked) {
    autoplayBlocked = false;
    try { await player.resume(); } catch { /* the toggle button is still there */ }
  }
  showListenAlong();
  say('This browser will play the music started for everyone.');
});

// The page is going away (closed, reloaded, navigated): out of the room, with a request that
// outlives the page. Back from the back/forward cache: in again.
window.addEventListener('pagehide', () => {
  leaveRoom({ keepalive: true });
  if (stopRoomUpdates) { stopRoomUpdates(); stopRoomUpdates = null; }
});
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  joinRoom();
  syncRoomUpdates();
});

// ---------------------------------------------------------------- play for everyone

/** What a person's outcome means, in words. */
function outcomeText(o) {
  switch (o.outcome) {
    case 'started': return 'started';
    case 'paused': return 'paused';
    case 'premium_required': return 'needs Spotify Premium';
    case 'no_player': return 'no player open';
    case 'reconnect_spotify': return 'must reconnect Spotify';
    case 'rate_limited': return `Spotify is busy, retry in ${wait(o.retryAfter ?? null)}`;
    default: return 'failed';
  }
}

function renderOutcomes(outcomes, done) {
  const rows = outcomes.map((o) => {
    const li = document.createElement('li');
    Object.assign(li.dataset, { testid: 'group-outcome', userId: o.id, outcome: o.outcome });
    li.className = `outcome-${o.outcome}`;
    const you = me && o.id === me.id ? ' (you)' : '';
    li.textContent = `${o.displayName || 'Spotify user'}${you}: ${outcomeText(o)}`;
    return li;
  });
  const n = outcomes.filter((o) => o.outcome === done).length;
  ui.groupSummary.textContent = outcomes.length === 0 ? 'Nobody is in the room right now.'
    : `${done === 'started' ? 'Started' : 'Paused'} for ${n} of ${outcomes.length} ${outcomes.length === 1 ? 'person' : 'people'}.`;
  ui.groupOutcomes.replaceChildren(...rows);
}

/** The errors of a group command: some are about this command only. */
function groupFailed(e) {
  if (e?.kind === 'not_host') return showError('not_host', NOT_HOST);
  if (e?.code === 'invalid_target') {
    return showError('invalid_uri', 'That can\'t be played for everyone. Enter a track, episode, album, playlist, artist or show URI.');
  }
  if (e?.kind === 'premium_required') return showError('premium_required', describe(e));
  if (e?.kind) return handleError(e);
  showError('server', describe({ kind: 'server' }));
}

async function groupCommand(action, uri) {
  ui.groupPlay.disabled = ui.groupPause.disabled = true;
  say(action === 'play' ? 'Starting the music for everyone…' : 'Pausing everyone…');
  try {
    const outcomes = action === 'play'
      ? await client.groupPlay(ITEM_URI.test(uri) ? { uris: [uri] } : { contextUri: uri })
      : await client.groupPause();
    for (const kind of ['not_host', 'invalid_uri', 'too_many_requests', 'server', 'network']) clearError(kind);
    renderOutcomes(outcomes, action === 'play' ? 'started' : 'paused');
    say(action === 'play' ? 'Music started for everyone.' : 'Everyone is paused.');
    refreshActive();
  } catch (e) {
    say(action === 'play' ? 'The music did not start for everyone.' : 'Not everyone was paused.');
    groupFailed(e);
  } finally {
    ui.groupPlay.disabled = ui.groupPause.disabled = false;
  }
}

ui.groupForm.addEventListener('submit', (event) => {
  event.preventDefault();
  // First, inside the gesture: this page's own player may then start with the others.
  if (player) activate();
  const uri = ui.groupUri.value.trim();
  if (!GROUP_URI.test(uri)) {
    showError('invalid_uri', 'Enter a Spotify URI such as spotify:track:4uLU6hMCjMI75M1A2tKUQC or spotify:album:….');
    ui.groupUri.focus();
    return;
  }
  clearError('invalid_uri');
  groupCommand('play', uri);
});

ui.groupPause.addEventListener('click', () => groupCommand('pause'));

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
