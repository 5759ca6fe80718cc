// The browser tests' harness: the real service binary and the Spotify emulator binary on free
// ports (a fresh SQLite store each time), Debian's Chromium driven by playwright-core (never a
// downloaded browser), one browser context per person, bounded waits, and screenshots of every
// open page when a test fails (target/browser-artifacts/).
//
// Environment: SPOTAUTH_BIN and EMULATOR_BIN (default: target/debug/...), CHROMIUM (default
// /usr/bin/chromium). `cargo xtask browser` builds the binaries and sets them.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = path.resolve(here, '../..');
export const REPO = path.resolve(WEB_DIR, '../../..');
export const ARTIFACTS = path.join(REPO, 'target', 'browser-artifacts');
const bin = (name) => path.join(REPO, 'target', 'debug', name);

/** Generous bound for anything the page or the emulator must do (a busy 2-core machine). */
export const WAIT_MS = 20_000;
const CLIENT_ID = 'browser-tests';

/** A port nobody listens on right now. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` (sync or async) until it returns a truthy value, at most `timeout` ms. */
export async function waitFor(check, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startProcess(name, file, args, env) {
  const merged = { ...process.env, ...env };
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const child = spawn(file, args, { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', (e) => keep(`\n${name}: cannot start: ${e.message}\n`));
  return { child, name, output: () => output };
}

async function httpOk(url) {
  try {
    const resp = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return resp.ok;
  } catch {
    return false;
  }
}

/**
 * A tiny static server for the room and the client module on an origin of its own (a
 * frontend beside the API), with the page's `spotauth-api` meta naming the API's origin.
 */
async function startStaticFrontend(apiOrigin) {
  const port = await freePort();
  const files = {
    '/': ['text/html', readFileSync(path.join(WEB_DIR, 'room/index.html'), 'utf8')
      .replace('<meta name="spotauth-api" content="">', `<meta name="spotauth-api" content="${apiOrigin}">`)],
    '/room/room.js': ['text/javascript', readFileSync(path.join(WEB_DIR, 'room/room.js'))],
    '/room/room.css': ['text/css', readFileSync(path.join(WEB_DIR, 'room/room.css'))],
    '/client/spotauth.js': ['text/javascript', readFileSync(path.join(WEB_DIR, 'client/spotauth.js'))],
  };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': `${file[0]}; charset=utf-8`, 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/**
 * Starts the emulator and the service; `separateFrontend` serves the room from another origin
 * (the service's FRONTEND_URL) and also starts a second, untrusted origin.
 */
export async function startStack({ separateFrontend = false, env = {} } = {}) {
  const [servicePort, emulatorPort] = [await freePort(), await freePort()];
  const api = `http://127.0.0.1:${servicePort}`;
  const emulator = `http://127.0.0.1:${emulatorPort}`;
  const frontend = separateFrontend ? await startStaticFrontend(api) : null;
  const untrusted = separateFrontend ? await startStaticFrontend(api) : null;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'spotauth-browser-'));
  const redirect = `${api}/api/auth/spotify/callback`;
  const emu = startProcess('emulator', process.env.EMULATOR_BIN || bin('spotauth-emulator'), [
    '--port', String(emulatorPort), '--client-id', CLIENT_ID, '--public', '--redirect-uri', redirect,
  ], {});
  const service = startProcess('service', process.env.SPOTAUTH_BIN || bin('spotauth'), [], {
    APP_ENV: 'development',
    BIND_ADDR: `127.0.0.1:${servicePort}`,
    DATA_DIR: dataDir,
    SPOTIFY_CLIENT_ID: CLIENT_ID,
    SPOTIFY_REDIRECT_URI: redirect,
    SPOTIFY_ACCOUNTS_URL: emulator,
    SPOTIFY_API_URL: `${emulator}/v1`,
    SPOTIFY_SDK_URL: `${emulator}/sdk/spotify-player.js`,
    FRONTEND_URL: `${frontend ? frontend.origin : api}/`,
    ROOM_PAGE: 'true',
    COOKIE_SECURE: 'false',
    // BROWSER_TEST_LOG=info keeps the service's access lines for a failure's report.
    RUST_LOG: process.env.BROWSER_TEST_LOG || 'warn',
    // The SQLite default in DATA_DIR, whatever the caller's environment says.
    DATABASE_URL: undefined,
    SQLITE_PATH: undefined,
    CONFIG_FILE: undefined,
    ...env,
  });
  const stack = {
    api,
    emulator,
    page: frontend ? `${frontend.origin}/` : `${api}/`,
    untrusted: untrusted ? `${untrusted.origin}/` : null,
    async stop() {
      for (const p of [service, emu]) p.child.kill('SIGTERM');
      await Promise.all([frontend?.close(), untrusted?.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
    logs: () => `--- service ---\n${service.output()}\n--- emulator ---\n${emu.output()}`,
    /** The emulator's control API. */
    async control(method, route, body) {
      const resp = await fetch(`${emulator}/__control${route}`, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      if (!resp.ok) throw new Error(`control ${method} ${route}: ${resp.status} ${await resp.text()}`);
      return resp.status === 204 ? null : resp.json();
    },
    player() {
      return this.control('GET', '/player');
    },
    counters() {
      return this.control('GET', '/counters');
    },
  };
  try {
    await waitFor(async () => (await httpOk(`${emulator}/__control/clock`)) && (await httpOk(`${api}/readyz`)),
      'the emulator and the service to be ready');
  } catch (e) {
    const logs = stack.logs();
    await stack.stop();
    throw new Error(`${e.message}\n${logs}`);
  }
  return stack;
}

/** Debian's Chromium, headless. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Root in CI containers has no user namespaces for the sandbox; the pages are our own.
    args: ['--no-sandbox', '--autoplay-policy=user-gesture-required'],
  });
}

/**
 * One person: their own browser context (cookies, storage), one page, and every request to
 * the token endpoint recorded.
 */
export async function person(browser, name) {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await context.newPage();
  const tokenRequests = [];
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === '/api/auth/spotify/token') tokenRequests.push(req.method());
  });
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
  return { name, context, page, tokenRequests, consoleLines };
}

/** Logs `who` in through the page: the button, then the emulator's account chooser. */
export async function logIn(p, url, user) {
  await p.page.goto(url);
  await p.page.getByTestId('login').click({ timeout: WAIT_MS });
  await p.page.locator(`li[data-user="${user}"] a`).first().click({ timeout: WAIT_MS });
  await p.page.getByTestId('user-name').waitFor({ state: 'visible', timeout: WAIT_MS });
}

/** The device id the page's player reports once `ready`. */
export async function readyDevice(p) {
  const status = p.page.getByTestId('player-status');
  await p.page.waitForFunction(
    () => document.querySelector('[data-testid="player-status"]')?.dataset.state === 'ready',
    null,
    { timeout: WAIT_MS },
  );
  return status.getAttribute('data-device-id');
}

/** Presses Play (a user gesture) and waits for the player to report playing. */
export async function playOnPage(p) {
  await p.page.getByTestId('play').click({ timeout: WAIT_MS });
  await p.page.waitForFunction(
    () => document.querySelector('[data-testid="now-playing"]')?.dataset.state === 'playing',
    null,
    { timeout: WAIT_MS },
  );
}

/**
 * Runs `body(ctx)` with a fresh stack and browser; on failure keeps a screenshot of every
 * person's page and the processes' logs, then rethrows.
 */
export async function scenario(name, options, body) {
  const stack = await startStack(options);
  const browser = await launchBrowser();
  const people = [];
  const ctx = {
    stack,
    browser,
    async person(label) {
      const p = await person(browser, label);
      people.push(p);
      return p;
    },
  };
  try {
    await body(ctx);
  } catch (e) {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const p of people) {
      const file = path.join(ARTIFACTS, `${name}-${p.name}.png`.replace(/[^\w.-]+/g, '_'));
      await p.page.screenshot({ path: file, fullPage: true }).catch(() => {});
    }
    const consoles = people.map((p) => `--- console of ${p.name} ---\n${p.consoleLines.join('\n')}`).join('\n');
    e.message += `\n(screenshots in ${ARTIFACTS})\n${consoles}\n${stack.logs()}`;
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await stack.stop();
  }
}
