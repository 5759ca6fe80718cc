// The listening room in a real (headless) Chromium, several people at once, each in their own
// browser context, against the real service and the Spotify emulator with its fake SDK.
// Run: `cargo xtask browser` (builds the binaries, then `npm run test:browser`).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { ARTIFACTS, WAIT_MS, logIn, playOnPage, readyDevice, scenario, waitFor } from './harness.mjs';

/** A user's stream in the emulator, once it plays on `device`. */
async function playingOn(stack, user, device) {
  return waitFor(async () => {
    const snapshot = await stack.player();
    const p = snapshot.playback[user];
    return p && p.is_playing && p.device_id === device ? snapshot : null;
  }, `${user} playing on ${device}`);
}

test('three people at once: two Premium players play together, the free one sees why not', async () => {
  await scenario('three-people', {}, async ({ stack, person }) => {
    const [alice, bob, carol] = [await person('alice'), await person('bob'), await person('carol')];
    // Log in one after the other (the emulator's chooser is per browser context).
    for (const [p, user] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']]) {
      await logIn(p, stack.page, user);
    }
    assert.equal(await alice.page.getByTestId('user-name').textContent(), 'Alice');
    assert.equal(await bob.page.getByTestId('user-name').textContent(), 'Bob');

    // Each Premium player reaches `ready` with its own device, registered for its own user.
    const [aliceDevice, bobDevice] = [await readyDevice(alice), await readyDevice(bob)];
    assert.ok(aliceDevice && bobDevice && aliceDevice !== bobDevice);
    const { devices } = await stack.player();
    assert.equal(devices[aliceDevice]?.user_id, 'alice');
    assert.equal(devices[bobDevice]?.user_id, 'bob');

    // Both press Play: the emulator shows two accounts, each playing on its own device.
    await playOnPage(alice);
    await playOnPage(bob);
    const snapshot = await playingOn(stack, 'bob', bobDevice);
    assert.equal(snapshot.playback.alice.is_playing, true, 'Alice still plays while Bob plays');
    assert.equal(snapshot.playback.alice.device_id, aliceDevice);

    // The free account: the Premium message, no player, no device at the emulator.
    await carol.page.getByTestId('premium-required').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await carol.page.getByTestId('player-status').isVisible(), false);
    assert.ok(!Object.values((await stack.player()).devices).some((d) => d.user_id === 'carol'));

    // Everyone sees everyone in the active list, each with whether they can play.
    await waitFor(async () => (await alice.page.getByTestId('active-user').count()) === 3, 'three people listed');
    const carolRow = alice.page.locator('[data-testid="active-user"][data-can-play="false"]');
    assert.equal(await carolRow.count(), 1);

    // The screenshot README shows.
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.page.screenshot({ path: path.join(ARTIFACTS, 'listening-room.png'), fullPage: true });
  });
});

test('a frontend on another origin works through CORS; an untrusted origin cannot read the API', async () => {
  await scenario('cors', { separateFrontend: true }, async ({ stack, person }) => {
    assert.notEqual(new URL(stack.page).origin, new URL(stack.api).origin);
    const alice = await person('alice');
    await logIn(alice, stack.page, 'alice');
    assert.equal(new URL(alice.page.url()).origin, new URL(stack.page).origin, 'back on the frontend');
    assert.equal(await alice.page.getByTestId('user-name').textContent(), 'Alice');
    const device = await readyDevice(alice);
    await playOnPage(alice);
    await playingOn(stack, 'alice', device);

    // The same browser (so the same session cookie) on an origin the service does not trust:
    // the browser sends the cookie, but the answer carries no CORS grant, so the page cannot
    // read it; a change is refused by the CSRF guard before anything happens.
    const other = await alice.context.newPage();
    await other.goto(stack.untrusted);
    const read = await other.evaluate(async (api) => {
      try {
        const r = await fetch(`${api}/api/users/me`, { credentials: 'include' });
        return `read ${r.status}`;
      } catch (e) {
        return `blocked: ${e.name}`;
      }
    }, stack.api);
    assert.equal(read, 'blocked: TypeError');
    const trustedRead = await alice.page.evaluate(async (api) => {
      const r = await fetch(`${api}/api/users/me`, { credentials: 'include' });
      return (await r.json()).displayName;
    }, stack.api);
    assert.equal(trustedRead, 'Alice');
    await other.close();
  });
});

test('token expiry while playing: one token request per expiry, same device, playback survives', async () => {
  await scenario('token-expiry', {}, async ({ stack, person }) => {
    const alice = await person('alice');
    await logIn(alice, stack.page, 'alice');
    const device = await readyDevice(alice);
    await playOnPage(alice);
    await playingOn(stack, 'alice', device);
    const refreshesBefore = (await stack.counters()).per_user.alice?.token_refresh_token ?? 0;

    for (let expiry = 1; expiry <= 2; expiry += 1) {
      const before = alice.tokenRequests.length;
      // Spotify says the SDK's token expired (early, so the test need not wait an hour).
      await stack.control('POST', '/users/alice/expire_access_tokens');
      await waitFor(() => alice.tokenRequests.length > before, `the page to ask for a new token (expiry ${expiry})`);
      // Give a storm time to show: the SDK polls every 300 ms.
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(alice.tokenRequests.slice(before), ['POST'], `one request for expiry ${expiry}`);
      const counters = await stack.counters();
      assert.equal(counters.per_user.alice.token_refresh_token, refreshesBefore + expiry, 'one upstream refresh');
      // Same device, still ready, still playing.
      assert.equal(await alice.page.getByTestId('player-status').getAttribute('data-device-id'), device);
      await playingOn(stack, 'alice', device);
      assert.equal(await alice.page.getByTestId('now-playing').getAttribute('data-state'), 'playing');
    }
  });
});

test('log out in one page: that page is out, the others keep playing, the next login asks who', async () => {
  await scenario('logout', {}, async ({ stack, person }) => {
    const [alice, bob] = [await person('alice'), await person('bob')];
    await logIn(alice, stack.page, 'alice');
    await logIn(bob, stack.page, 'bob');
    const [aliceDevice, bobDevice] = [await readyDevice(alice), await readyDevice(bob)];
    await playOnPage(alice);
    await playOnPage(bob);
    await playingOn(stack, 'alice', aliceDevice);

    await alice.page.getByTestId('logout').click();
    await alice.page.getByTestId('login').waitFor({ state: 'visible', timeout: WAIT_MS });
    // Alice's player disconnected: her device is gone at the emulator; Bob plays on.
    await waitFor(async () => !(await stack.player()).devices[aliceDevice], "Alice's device to be gone");
    await new Promise((r) => setTimeout(r, 1000));
    await playingOn(stack, 'bob', bobDevice);
    assert.equal(await bob.page.getByTestId('now-playing').getAttribute('data-state'), 'playing');
    const me = await bob.page.evaluate(async () => (await fetch('/api/users/me')).status);
    assert.equal(me, 200, "Bob's session is untouched");

    // The next login in Alice's browser shows Spotify's account chooser ("Not you?") instead
    // of silently reusing her Spotify login; Bob's browser (no logout) is logged in silently.
    await alice.page.getByTestId('login').click();
    await alice.page.locator('#account-chooser').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await alice.page.locator('#not-you').textContent(), /alice/);
    await alice.page.locator('li[data-user="bob"] a').first().click();
    await alice.page.getByTestId('user-name').waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await alice.page.getByTestId('user-name').textContent(), 'Bob', 'switched account');
  });
});

test('a reconnect state shows "Reconnect Spotify", and the button works', async () => {
  await scenario('reconnect', {}, async ({ stack, person }) => {
    const alice = await person('alice');
    await logIn(alice, stack.page, 'alice');
    const device = await readyDevice(alice);
    // Alice removed the app at spotify.com: her refresh token answers invalid_grant, and her
    // access token stops working.
    await stack.control('POST', '/users/alice/revoke');
    await stack.control('POST', '/users/alice/expire_access_tokens');
    const reconnect = alice.page.getByTestId('reconnect');
    await reconnect.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.ok(device);

    // The button logs in again (this browser's Spotify login is reused: no logout happened).
    await reconnect.click();
    await alice.page.getByTestId('user-name').waitFor({ state: 'visible', timeout: WAIT_MS });
    await waitFor(async () => !(await reconnect.isVisible()), 'the reconnect message to go');
    const again = await readyDevice(alice);
    assert.ok(again);
    await playOnPage(alice);
    await playingOn(stack, 'alice', again);
  });
});
