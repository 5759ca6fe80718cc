// Test doubles for the browser client: a recording fetch, a fake spotauth, a manual clock, a
// BroadcastChannel hub (the tabs of one browser), a Web Locks manager and EventSources driven by
// the test. No timers anywhere: everything settles through promises (the room's polling tests
// use node:test's mock timers), so the tests do not depend on the machine's speed.

import { createClient } from '../../client/spotauth.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A promise with its resolve/reject outside. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise job run (setImmediate runs after the whole microtask queue). */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A manual clock. */
export function clock(start = T0) {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

export function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

/** An RFC 9457 problem as the service sends it (Retry-After both as header and in the body). */
export function problem(status, code, { retryAfter, detail, header = true, requestId } = {}) {
  const body = { type: `urn:spotauth:problem:${code}`, title: `Problem ${code}`, status, code };
  if (detail) body.detail = detail;
  if (requestId) body.requestId = requestId;
  const headers = { 'content-type': 'application/problem+json' };
  if (retryAfter !== undefined) {
    body.retryAfter = retryAfter;
    if (header) headers['retry-after'] = String(retryAfter);
  }
  return new Response(JSON.stringify(body), { status, headers });
}

export function tokenBody(accessToken, expiresIn = 3600, at = T0) {
  return { accessToken, expiresAt: new Date(at + expiresIn * 1000).toISOString(), expiresIn };
}

/**
 * A fetch that records every call and answers with `handler(call)` (a Response, an Error to
 * reject with, or a promise of either).
 */
export function fakeFetch(handler) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const u = new URL(url, 'http://app.test');
    const call = {
      url: String(url),
      method: init.method ?? 'GET',
      path: u.pathname,
      search: u.search,
      route: `${init.method ?? 'GET'} ${u.pathname}`,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body,
      init,
    };
    calls.push(call);
    const answer = await handler(call);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, calls };
}

/**
 * A fake spotauth: one user's Spotify token (`AT1`, `AT2`, ...) and a session that can be made
 * to expire (`session: 'expired'`) or end (`'over'`, as after a logout). `GET /token` answers the current token; `POST /token {refused}` replaces the
 * current one if it is the one refused, else answers the current one; `POST /refresh` rotates
 * the session (when there is one) and answers the current token. `gate`, when set, holds every
 * answer until it resolves.
 */
/**
 * A page alone (no other tab, no locks) whose service answers by route (`'GET /api/users/me'`),
 * each route from a list of answers (the last one repeats); an answer is a function of the call.
 * Unknown routes answer 404.
 */
export function scriptedPage(script, options = {}) {
  const c = clock();
  const seen = {};
  const f = fakeFetch((call) => {
    const answers = script[call.route];
    if (!answers) return problem(404, 'not_found');
    const i = seen[call.route] ?? 0;
    seen[call.route] = i + 1;
    return answers[Math.min(i, answers.length - 1)](call);
  });
  const client = createClient({ fetch: f.fetch, now: c.now, channelName: null, locks: null, ...options });
  return { client, calls: f.calls, routes: () => f.calls.map((x) => x.route) };
}

/** Answers for [`scriptedPage`]: a JSON 200, or a problem. */
export const ok = (body) => () => json(200, body);
export const fail = (status, code, opts) => () => problem(status, code, opts);

export function fakeService({ lifetime = 3600, now = () => T0 } = {}) {
  const svc = {
    minted: 1,
    current: 'AT1',
    lifetime,
    /** 'live' | 'expired' (rotatable) | 'over' */
    session: 'live',
    gate: null,
    override: null,
  };
  const { fetch, calls } = fakeFetch(async (call) => {
    if (svc.gate) await svc.gate;
    if (svc.override) {
      const answer = svc.override(call);
      if (answer) return answer;
    }
    const token = () => json(200, tokenBody(svc.current, svc.lifetime, now()));
    switch (call.route) {
      case 'GET /api/config':
        return json(200, { sdkUrl: 'https://sdk.example/spotify-player.js', spotifyApiUrl: 'https://api.example/v1' });
      case 'POST /api/auth/spotify/refresh':
        if (svc.session !== 'expired' && svc.session !== 'live') return problem(401, 'unauthenticated');
        svc.session = 'live';
        return token();
      case 'POST /api/auth/spotify/logout': {
        if (svc.session === 'over') return problem(401, 'unauthenticated');
        svc.session = 'over';
        const scope = new URLSearchParams(call.search).get('scope');
        return json(200, { scope, sessionsEnded: 1, spotifyDisconnected: scope === 'everywhere' });
      }
      default:
        break;
    }
    if (svc.session !== 'live') return problem(401, 'unauthenticated');
    switch (call.route) {
      case 'GET /api/auth/spotify/token':
        return token();
      case 'POST /api/auth/spotify/token':
        if (call.body?.refused === svc.current) {
          svc.minted += 1;
          svc.current = `AT${svc.minted}`;
        }
        return token();
      case 'GET /api/users/me':
        return json(200, { id: 'u1', spotifyId: 'alice', displayName: 'Alice', isActive: true, isPremium: true });
      default:
        return problem(404, 'not_found');
    }
  });
  svc.fetch = fetch;
  svc.calls = calls;
  svc.count = (route) => calls.filter((c) => c.route === route).length;
  return svc;
}

/**
 * The BroadcastChannels of one browser. Messages are structured-cloned and delivered as later
 * jobs (never synchronously, as in browsers); `hold()` keeps them until `release()`.
 */
export function broadcastHub() {
  const open = new Set();
  const sent = [];
  let held = null;
  class FakeBroadcastChannel {
    constructor(name) {
      this.name = String(name);
      this.listeners = new Set();
      this.closed = false;
      open.add(this);
    }
    addEventListener(type, fn) {
      if (type === 'message') this.listeners.add(fn);
    }
    removeEventListener(type, fn) {
      this.listeners.delete(fn);
    }
    postMessage(data) {
      if (this.closed) throw new Error('InvalidStateError: channel closed');
      const copy = structuredClone(data);
      sent.push({ name: this.name, data: copy });
      for (const other of open) {
        if (other === this || other.name !== this.name) continue;
        const deliver = () => {
          if (other.closed) return;
          for (const fn of [...other.listeners]) fn({ data: structuredClone(copy) });
        };
        if (held) held.push(deliver);
        else queueMicrotask(deliver);
      }
    }
    close() {
      this.closed = true;
      open.delete(this);
    }
  }
  return {
    BroadcastChannel: FakeBroadcastChannel,
    sent,
    hold() {
      held = [];
    },
    release() {
      const queue = held ?? [];
      held = null;
      for (const deliver of queue) deliver();
    },
  };
}

/** An exclusive Web Locks manager, as shared by the tabs of one browser. */
export class FakeLocks {
  constructor() {
    this.queues = new Map();
    this.granted = [];
  }

  request(name, optionsOrCallback, maybeCallback) {
    const callback = typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback;
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      const run = async () => {
        this.granted.push(name);
        try {
          resolve(await callback({ name, mode: 'exclusive' }));
        } catch (e) {
          reject(e);
        } finally {
          queue.shift();
          if (queue.length > 0) queue[0]();
        }
      };
      queue.push(run);
      if (queue.length === 1) run();
    });
  }

  /** How many requests for `name` are waiting or holding it. */
  pending(name) {
    return (this.queues.get(name) ?? []).length;
  }
}

/**
 * EventSources, as a browser makes them: each one records its URL and options, starts
 * CONNECTING, and is driven by the test (`open()`, `send(type, data)`, `fail()`; `fail({ closed:
 * true })` is a browser giving up, as after an error status). `made` lists every one, in order.
 */
export function eventSources() {
  const made = [];
  class FakeEventSource {
    constructor(url, init) {
      this.url = String(url);
      this.init = init;
      this.withCredentials = init?.withCredentials === true;
      this.readyState = 0;
      this.listeners = new Map();
      this.closed = false;
      made.push(this);
    }
    addEventListener(type, fn) {
      if (!this.listeners.has(type)) this.listeners.set(type, new Set());
      this.listeners.get(type).add(fn);
    }
    removeEventListener(type, fn) {
      this.listeners.get(type)?.delete(fn);
    }
    close() {
      this.readyState = 2;
      this.closed = true;
    }
    /** How many listeners are left (0 once the client let go of it). */
    listenerCount() {
      let n = 0;
      for (const set of this.listeners.values()) n += set.size;
      return n;
    }
    dispatch(type, event) {
      for (const fn of [...(this.listeners.get(type) ?? [])]) fn(event);
    }
    open() {
      this.readyState = 1;
      this.dispatch('open', { type: 'open' });
    }
    send(type, data) {
      this.dispatch(type, { type, data: typeof data === 'string' ? data : JSON.stringify(data) });
    }
    fail({ closed = false } = {}) {
      this.readyState = closed ? 2 : 0;
      this.dispatch('error', { type: 'error' });
    }
  }
  FakeEventSource.CONNECTING = 0;
  FakeEventSource.OPEN = 1;
  FakeEventSource.CLOSED = 2;
  return {
    EventSource: FakeEventSource,
    made,
    get last() {
      return made.at(-1);
    },
  };
}
