// Listening together in a real (headless) Chromium: each person's page reports its player to
// the service, and one click starts (or pauses) the same music for everyone present, each on
// their own account and device; people who hid themselves or logged out are left alone.
// Run: `cargo xtask browser` (builds the binaries, then `npm run test:browser`).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { ARTIFACTS, WAIT_MS, logIn, readyDevice, scenario, waitFor } from './harness.mjs';

const TRACK = 'spotify:track:4uLU6hMCjMI75M1A2tKUQC'; // the group-uri field's default
/** How soon after the click every player must play (the service's fan-out plus the SDK's poll). */
const GROUP_PLAY_MS = 2000;

/** The opaque user id of the person signed in on this page (as the room's lists use it). */
async function userId(stack, p) {
  const id = await p.page.evaluate(
    async (api) => (await (await fetch(`${api}/api/users/me`, { credentials: 'include' })).json()).id,
    stack.api,
  );
  assert.ok(id, `${p.name} has an id`);
  return id;
}

/** What the page's own player shows: `{state, uri}` of `now-playing`. */
function nowPlaying(p) {
  return p.page.evaluate(() => {
    const el = document.querySelector('[data-testid="now-playing"]');
    return { state: el?.dataset.state, uri: el?.dataset.trackUri };
  });
}

/** `{user id → outcome}` of the outcome list on this page. */
function outcomes(p) {
  return p.page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-testid="group-outcome"]')].map((li) => [li.dataset.userId, li.dataset.outcome]),
  ));
}

/** Whether two `{key → value}` maps hold the same entries, in any order. */
function sameEntries(a, b) {
  const sorted = (m) => JSON.stringify(Object.entries(m).sort(([x], [y]) => x.localeCompare(y)));
  return sorted(a) === sorted(b);
}

/** The ids of the people on this page's active list who are ready to play along. */
function readyIds(p) {
  return p.page.evaluate(() => [...document.querySelectorAll('[data-testid="active-user"][data-ready="true"]')]
    .map((li) => li.dataset.userId).sort());
}

async function playerCalls(stack, user) {
  return (await stack.counters()).per_user[user]?.player ?? 0;
}

/** Everyone logs in (one browser context each), the Premium players reach `ready`. */
async function gather(stack, person, names) {
  const people = {};
  for (const name of names) {
    people[name] = await person(name);
    await logIn(people[name], stack.page, name);
  }
  return people;
}

test('four people, one group play: three Premium players start at once, the free one is told why not', async () => {
  await scenario('group-play', {}, async ({ stack, person }) => {
    await stack.control('POST', '/users', {
      id: 'dave', display_name: 'Dave', product: 'premium', email: 'dave@example.com', country: 'SE',
    });
    const { alice, bob, carol, dave } = await gather(stack, person, ['alice', 'bob', 'carol', 'dave']);
    const premium = [alice, bob, dave];
    const devices = {};
    for (const p of premium) devices[p.name] = await readyDevice(p);
    assert.equal(new Set(Object.values(devices)).size, 3, 'three devices');
    const ids = {};
    for (const p of [alice, bob, carol, dave]) ids[p.name] = await userId(stack, p);

    // Browsers play sound only after a click in the page: Bob and Dave each click "Listen
    // along" once (Alice's click on "Play for everyone" is hers).
    for (const p of [bob, dave]) {
      await p.page.getByTestId('listen-along').click({ timeout: WAIT_MS });
      await p.page.getByTestId('listen-along').waitFor({ state: 'hidden', timeout: WAIT_MS });
    }

    // Each page reported its player: Alice's list shows the three of them ready, Carol not.
    const premiumIds = premium.map((p) => ids[p.name]).sort();
    await waitFor(async () => JSON.stringify(await readyIds(alice)) === JSON.stringify(premiumIds),
      'Alice, Bob and Dave ready in Alice\'s list');
    const carolRow = alice.page.locator(`[data-testid="active-user"][data-user-id="${ids.carol}"]`);
    assert.equal(await carolRow.getAttribute('data-ready'), 'false');
    assert.equal(await carolRow.getAttribute('data-can-play'), 'false');
    assert.equal(await carolRow.getAttribute('data-now-playing-uri'), '');
    const carolCalls = await playerCalls(stack, 'carol');

    // One click.
    assert.equal(await alice.page.getByTestId('group-uri').inputValue(), TRACK);
    const clicked = Date.now();
    await alice.page.getByTestId('group-play').click({ timeout: WAIT_MS });
    const left = Math.max(0, GROUP_PLAY_MS - (Date.now() - clicked));
    const shown = await waitFor(async () => {
      const all = await Promise.all(premium.map(nowPlaying));
      return all.every((n) => n.state === 'playing' && n.uri === TRACK) ? all : null;
    }, `every Premium page playing ${TRACK} within ${GROUP_PLAY_MS} ms of the click`, left);
    assert.equal(new Set(shown.map((n) => n.uri)).size, 1, 'the same track everywhere');

    // Each account plays on its own device.
    const snapshot = await stack.player();
    for (const p of premium) {
      const playback = snapshot.playback[p.name];
      assert.ok(playback?.is_playing, `${p.name} plays: ${JSON.stringify(playback)}`);
      assert.equal(playback.device_id, devices[p.name], `${p.name} on their own device`);
      assert.equal(playback.track_uri, TRACK);
    }
    assert.ok(!snapshot.playback.carol?.is_playing, 'nothing plays for Carol');

    // The outcome of each person, on Alice's page; Spotify was never asked for Carol.
    const expected = {
      [ids.alice]: 'started', [ids.bob]: 'started', [ids.dave]: 'started', [ids.carol]: 'premium_required',
    };
    await waitFor(async () => (await outcomes(alice))[ids.carol], 'the outcomes on Alice\'s page');
    assert.ok(sameEntries(await outcomes(alice), expected),
      `outcomes ${JSON.stringify(await outcomes(alice))}, expected ${JSON.stringify(expected)}`);
    const outcomeText = (id) => alice.page.locator(`[data-testid="group-outcome"][data-user-id="${id}"]`).textContent();
    assert.match(await outcomeText(ids.carol), /: needs Spotify Premium$/);
    assert.match(await outcomeText(ids.bob), /^Bob: started$/);
    assert.equal(await playerCalls(stack, 'carol'), carolCalls, 'no Spotify call for the free account');

    // The active list shows what everyone plays.
    await waitFor(async () => {
      const uris = await alice.page.evaluate((wanted) => wanted.map((id) => document
        .querySelector(`[data-testid="active-user"][data-user-id="${id}"]`)?.dataset.nowPlayingUri), premiumIds);
      return uris.every((u) => u === TRACK);
    }, 'what each one plays in Alice\'s list');
    assert.match(await alice.page.locator(`[data-testid="active-user"][data-user-id="${ids.bob}"]`).textContent(), /playing /);
    // The screenshot README shows.
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.page.screenshot({ path: path.join(ARTIFACTS, 'group-play.png'), fullPage: true });

    // One click pauses everyone.
    await alice.page.getByTestId('group-pause').click({ timeout: WAIT_MS });
    await waitFor(async () => (await Promise.all(premium.map(nowPlaying))).every((n) => n.state === 'paused'),
      'every Premium page paused');
    await waitFor(async () => !Object.values((await stack.player()).playback).some((p) => p.is_playing),
      'nobody playing at the emulator');
    await waitFor(async () => {
      const got = await outcomes(alice);
      return premium.every((p) => got[ids[p.name]] === 'paused') && got[ids.carol] === 'premium_required';
    }, 'the pause outcomes on Alice\'s page');
    assert.equal(await playerCalls(stack, 'carol'), carolCalls, 'still no Spotify call for the free account');
  });
});

test('a person who opted out or logged out is not controlled', async () => {
  await scenario('group-consent', {}, async ({ stack, person }) => {
    await stack.control('POST', '/users', {
      id: 'dave', display_name: 'Dave', product: 'premium', email: 'dave@example.com', country: 'SE',
    });
    const { alice, bob, dave } = await gather(stack, person, ['alice', 'bob', 'dave']);
    const ids = {};
    for (const p of [alice, bob, dave]) {
      await readyDevice(p);
      ids[p.name] = await userId(stack, p);
    }
    const all = Object.values(ids).sort();
    await waitFor(async () => JSON.stringify(await readyIds(alice)) === JSON.stringify(all), 'three ready in Alice\'s list');

    // Bob hides himself; Dave logs out.
    const showMe = bob.page.getByTestId('show-me');
    assert.equal(await showMe.isChecked(), true);
    await showMe.uncheck({ timeout: WAIT_MS });
    await waitFor(async () => !(await showMe.isChecked()) && !(await showMe.isDisabled()), 'Bob\'s opt-out to be saved');
    await dave.page.getByTestId('logout').click({ timeout: WAIT_MS });
    await dave.page.getByTestId('login').waitFor({ state: 'visible', timeout: WAIT_MS });
    await waitFor(async () => {
      const listed = await alice.page.evaluate(() => [...document.querySelectorAll('[data-testid="active-user"]')]
        .map((li) => li.dataset.userId));
      return !listed.includes(ids.bob) && !listed.includes(ids.dave) && listed.includes(ids.alice);
    }, 'Bob and Dave gone from Alice\'s list');
    const before = { bob: await playerCalls(stack, 'bob'), dave: await playerCalls(stack, 'dave') };

    await alice.page.getByTestId('group-play').click({ timeout: WAIT_MS });
    const got = await waitFor(async () => {
      const o = await outcomes(alice);
      return Object.keys(o).length > 0 ? o : null;
    }, 'the outcomes on Alice\'s page');
    assert.deepEqual(got, { [ids.alice]: 'started' }, 'only the people present (Alice)');
    await waitFor(async () => (await nowPlaying(alice)).state === 'playing', 'Alice playing');
    const after = { bob: await playerCalls(stack, 'bob'), dave: await playerCalls(stack, 'dave') };
    assert.deepEqual(after, before, 'no Spotify player call for Bob or Dave');
    const snapshot = await stack.player();
    assert.ok(!snapshot.playback.bob?.is_playing && !snapshot.playback.dave?.is_playing, JSON.stringify(snapshot.playback));
    assert.notEqual((await nowPlaying(bob)).state, 'playing');

    // Someone hidden cannot start music for everyone either: a clear message.
    await bob.page.getByTestId('group-play').click({ timeout: WAIT_MS });
    const error = bob.page.getByTestId('error');
    await error.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.equal(await error.getAttribute('data-kind'), 'not_host');
    assert.match(await error.textContent(), /only the room's hosts/);
    assert.deepEqual(
      { bob: await playerCalls(stack, 'bob'), dave: await playerCalls(stack, 'dave') }, before,
      'still no call for Bob or Dave',
    );
  });
});
