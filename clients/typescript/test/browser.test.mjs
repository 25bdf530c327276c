// The playground in a real browser (Debian's Chromium driven by playwright-core): two pages join one
// room, each sees the other move, bots score, the room list updates, and no page logs an error.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { API_KEY, startServer, until } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));
let server;
let context;
let profile;
const problems = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer();
  profile = mkdtempSync(join(tmpdir(), "skirmish-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1200, height: 900 },
  });
});

after(async () => {
  await context?.close();
  await server?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function open(query) {
  const page = await context.newPage();
  const name = query.player ?? query.view ?? "page";
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`${name} console ${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${name} page error: ${error.message}`));
  await page.goto(`${server.http}/playground?${new URLSearchParams(query)}`);
  return page;
}

const view = (page) => page.evaluate(() => window.skirmishPlayground.state());
/** A player's position as the page's scoreboard shows it. */
async function seen(page, player) {
  const row = page.locator(`#scoreboard tr[data-player="${player}"]`);
  if ((await row.count()) === 0) return undefined;
  return {
    x: Number(await row.getAttribute("data-x")),
    y: Number(await row.getAttribute("data-y")),
    score: Number(await row.locator("td").nth(1).textContent()),
  };
}
const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

/** Holds a key on `mover` until `watcher` sees `player` move by more than 60 units along `axis`. */
async function moveAndWatch(mover, watcher, player, key, axis) {
  const before = await until(`${player} on the watcher's page`, () => seen(watcher, player));
  await mover.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await mover.keyboard.down(key);
  try {
    await until(`${player} moving (${key}) on the other page`, async () => {
      const now = await seen(watcher, player);
      return now && Math.abs(now[axis] - before[axis]) > 60;
    });
  } finally {
    await mover.keyboard.up(key);
  }
}

test("two pages play in one room, see each other move, bots score, the room list updates", async () => {
  // Without a key the page shows nothing but the form.
  const empty = await open({});
  assert.match(await empty.locator("#status").textContent(), /API key/);
  assert.equal(await empty.locator("#scoreboard tr").count(), 0);
  await empty.close();

  const alice = await open({ key: API_KEY, mode: "arena", player: "alice" });
  await until("alice connected", async () => (await view(alice)).connected);
  assert.ok(!alice.url().includes(API_KEY), "the key is removed from the address bar");
  const bob = await open({ key: API_KEY, mode: "arena", player: "bob" });
  await until("bob connected", async () => (await view(bob)).connected);
  const roomId = (await view(alice)).roomId;
  assert.equal((await view(bob)).roomId, roomId, "matchmaking put both in one room");
  await until("alice sees bob", () => seen(alice, "bob"));
  await shot(alice, "1-joined-alice");

  // Alice moves by keyboard (arrows, then WASD); bob's page sees it, and the other way round.
  const a = await seen(bob, "alice");
  await moveAndWatch(alice, bob, "alice", a.x < 500 ? "ArrowRight" : "ArrowLeft", "x");
  await moveAndWatch(alice, bob, "alice", a.y < 500 ? "KeyS" : "KeyW", "y");
  const b = await seen(alice, "bob");
  await moveAndWatch(bob, alice, "bob", b.x < 500 ? "KeyD" : "KeyA", "x");
  await shot(bob, "2-moved-bob");

  // Touch or mouse: holding the pointer on the arena moves toward it.
  const box = await bob.locator("#arena").boundingBox();
  const start = await seen(bob, "bob");
  const target = { x: start.x < 500 ? 900 : 100, y: start.y };
  await bob.mouse.move(box.x + (target.x / 1000) * box.width, box.y + (target.y / 1000) * box.height);
  await bob.mouse.down();
  try {
    await until("bob follows the pointer", async () => Math.abs((await seen(alice, "bob")).x - start.x) > 60);
  } finally {
    await bob.mouse.up();
  }

  // Stats: tick, RTT and input-ack latency are shown.
  await until("stats shown", async () => {
    const [tick, rtt, ack] = await Promise.all(["#s-tick", "#s-rtt", "#s-ack"].map((s) => alice.locator(s).textContent()));
    return Number(tick) > 0 && /^\d+\.\d ms/.test(rtt) && /^\d+\.\d ms/.test(ack);
  });

  // Chat goes both ways.
  await alice.fill("#chat-text", "hello from alice");
  await alice.click("#chat-send");
  await until("bob reads the chat", async () => (await bob.locator("#chat-log").textContent()).includes("alice: hello from alice"));

  // The room list (second view) shows the room with two players, then four once alice adds two bots.
  const rooms = await open({ key: API_KEY, view: "rooms" });
  const row = rooms.locator(`#room-list tr[data-room="${roomId}"]`);
  await until("the room listed with 2 players", async () => (await row.count()) === 1 && (await row.getAttribute("data-players")) === "2");
  assert.match(await row.textContent(), /open/);
  await alice.click("#add-bot");
  await alice.click("#add-bot");
  await until("two bots seated", async () => (await view(alice)).bots.length === 2);
  await until("the room list updates to 4 players", async () => (await row.getAttribute("data-players")) === "4", 10_000);
  await shot(rooms, "3-rooms");

  // Bots head for pickups: scores rise on both pages.
  const bots = (await view(alice)).bots;
  await until(
    "a bot scores on bob's page",
    async () => {
      for (const bot of bots) if ((await seen(bob, bot))?.score > 0) return true;
      return false;
    },
    30_000,
  );
  await until("alice's page agrees", async () => {
    for (const bot of bots) if ((await seen(alice, bot))?.score > 0) return true;
    return false;
  });
  await shot(alice, "4-scores-alice");
  await shot(bob, "4-scores-bob");

  assert.deepEqual(problems, [], "no console errors or warnings");
});
