// The browser playground served at /playground: matchmake, play the arena on a canvas, chat, add
// bots, list rooms. Built on the SDK only, with the HTTP API for matchmaking, seats and listing.
import { type ArenaState, type Client, type Direction, Interpolator, connect, lerpArena } from "../src/index.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} missing`);
  return element as T;
};

const KEY_STORAGE = "skirmish.playground.key";
const ARENA = 1000;
const RENDER_DELAY_MS = 100; // two ticks at 20 Hz: there is nearly always a newer state to move toward
const MAX_BOTS = 8;

const keyInput = $<HTMLInputElement>("key");
const modeInput = $<HTMLInputElement>("mode");
const playerInput = $<HTMLInputElement>("player");
const status = $("status");
const canvas = $<HTMLCanvasElement>("arena");
const context = canvas.getContext("2d") as CanvasRenderingContext2D;

let client: Client | undefined;
let bots: Client[] = [];
const interpolator = new Interpolator<ArenaState>(lerpArena, 32);

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle("error", error);
}

function apiKey(): string {
  return keyInput.value.trim();
}

/** Calls the HTTP API with the typed key; throws with the server's error message. */
async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${apiKey()}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new Error(`${method} ${path}: ${response.status} ${error?.code ?? ""} ${error?.message ?? ""}`.trim());
  }
  return json as T;
}

// ---------------------------------------------------------------------------------------------
// Joining and leaving
// ---------------------------------------------------------------------------------------------

async function join(): Promise<void> {
  if (!apiKey()) return say("Type the API key first.", true);
  sessionStorage.setItem(KEY_STORAGE, apiKey());
  await leave();
  say("Matchmaking…");
  try {
    const seat = await api<{ room_id: string; ws_url: string }>("POST", "/v1/matchmake", {
      mode: modeInput.value.trim(),
      player_id: playerInput.value.trim(),
    });
    const joined = await connect(seat.ws_url, { pingIntervalMs: 1000 });
    client = joined;
    interpolator.clear();
    if (joined.latestState) interpolator.push(performance.now(), joined.latestState);
    joined.on("state", (m) => interpolator.push(performance.now(), m.state));
    joined.on("resumed", (m) => {
      interpolator.push(performance.now(), m.state);
      say(`Resumed in room ${m.room_id}.`);
    });
    joined.on("reconnecting", (r) => say(`Connection lost (${r.reason.kind}); resuming (attempt ${r.attempt})…`, true));
    joined.on("chat", (m) => addChat(`${m.from}: ${m.text}`));
    joined.on("error", (m) => addChat(`error ${m.code}: ${m.message}`));
    joined.on("event", (m) => {
      if (m.kind === "match_over") {
        addChat(`match over: ${m.results.map((r) => `${r.rank}. ${r.player_id} (${r.score})`).join(", ")}`);
      } else {
        addChat(`${m.player_id} ${m.kind === "player_joined" ? "joined" : "left"}`);
      }
    });
    joined.on("close", (reason) => {
      if (client !== joined) return;
      say(`Disconnected: ${reason.kind} (${reason.code}). Join again to play.`, reason.kind !== "normal" && reason.kind !== "closed_by_client");
      setPlaying(false);
    });
    setPlaying(true);
    say(`Playing in room ${joined.roomId} as ${joined.playerId}.`);
  } catch (error) {
    say(`Could not join: ${(error as Error).message}`, true);
  }
}

async function leave(): Promise<void> {
  for (const bot of bots) bot.leave();
  bots = [];
  const current = client;
  client = undefined;
  current?.leave();
  setPlaying(false);
}

function setPlaying(playing: boolean): void {
  for (const id of ["leave", "add-bot", "chat-text", "chat-send"]) $<HTMLButtonElement>(id).disabled = !playing;
  $("bots").textContent = bots.length ? `${bots.length} bot${bots.length > 1 ? "s" : ""}` : "";
}

// ---------------------------------------------------------------------------------------------
// Bots: extra seats in the same room, driven by the SDK toward the nearest pickup
// ---------------------------------------------------------------------------------------------

async function addBot(): Promise<void> {
  if (!client || bots.length >= MAX_BOTS) return;
  const roomId = client.roomId;
  const name = `bot-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const seat = await api<{ ws_url: string }>("POST", `/v1/rooms/${encodeURIComponent(roomId)}/seats`, { player_id: name });
    const bot = await connect(seat.ws_url, { pingIntervalMs: 0 });
    bots.push(bot);
    setPlaying(true);
    let last: Direction = { dx: 0, dy: 0 };
    const steer = setInterval(() => {
      const state = bot.latestState;
      const me = state?.players.find((p) => p.player_id === bot.playerId);
      if (!state || !me || !bot.connected) return;
      let best: { x: number; y: number } | undefined;
      let bestDistance = Infinity;
      for (const p of state.pickups) {
        const d = Math.hypot(p.x - me.x, p.y - me.y);
        if (d < bestDistance) [best, bestDistance] = [p, d];
      }
      const next = best && bestDistance > 1 ? { dx: (best.x - me.x) / bestDistance, dy: (best.y - me.y) / bestDistance } : { dx: 0, dy: 0 };
      if (Math.abs(next.dx - last.dx) + Math.abs(next.dy - last.dy) > 0.05) {
        bot.sendInput(next);
        last = next;
      }
    }, 100);
    bot.on("close", () => {
      clearInterval(steer);
      bots = bots.filter((b) => b !== bot);
      setPlaying(client !== undefined);
    });
  } catch (error) {
    say(`Could not add a bot: ${(error as Error).message}`, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Input: keyboard (arrows, WASD) and touch or mouse (toward the pointer)
// ---------------------------------------------------------------------------------------------

const KEYS: Record<string, [number, number]> = {
  ArrowLeft: [-1, 0], KeyA: [-1, 0], ArrowRight: [1, 0], KeyD: [1, 0],
  ArrowUp: [0, -1], KeyW: [0, -1], ArrowDown: [0, 1], KeyS: [0, 1],
};
const held = new Set<string>();
let pointer: { x: number; y: number } | undefined;
let sent: Direction = { dx: 0, dy: 0 };

function currentDirection(): Direction {
  if (pointer && client) {
    const me = client.latestState?.players.find((p) => p.player_id === client?.playerId);
    if (me) {
      const dx = pointer.x - me.x;
      const dy = pointer.y - me.y;
      const length = Math.hypot(dx, dy);
      return length < 8 ? { dx: 0, dy: 0 } : { dx: dx / length, dy: dy / length };
    }
  }
  let dx = 0;
  let dy = 0;
  for (const code of held) {
    const [x, y] = KEYS[code] ?? [0, 0];
    dx += x;
    dy += y;
  }
  const length = Math.hypot(dx, dy);
  return length === 0 ? { dx: 0, dy: 0 } : { dx: dx / length, dy: dy / length };
}

function steer(): void {
  if (!client?.connected) return;
  const next = currentDirection();
  if (Math.abs(next.dx - sent.dx) + Math.abs(next.dy - sent.dy) < 0.02) return;
  sent = next;
  client.sendInput(next);
}

const typing = (): boolean => document.activeElement instanceof HTMLInputElement;
window.addEventListener("keydown", (e) => {
  if (!(e.code in KEYS) || typing()) return;
  e.preventDefault();
  held.add(e.code);
  steer();
});
window.addEventListener("keyup", (e) => {
  if (held.delete(e.code)) steer();
});
window.addEventListener("blur", () => {
  held.clear();
  steer();
});

function toArena(e: PointerEvent): { x: number; y: number } {
  const rect = canvas.getBoundingClientRect();
  return { x: ((e.clientX - rect.left) / rect.width) * ARENA, y: ((e.clientY - rect.top) / rect.height) * ARENA };
}
canvas.addEventListener("pointerdown", (e) => {
  canvas.setPointerCapture(e.pointerId);
  pointer = toArena(e);
  steer();
});
canvas.addEventListener("pointermove", (e) => {
  if (pointer) pointer = toArena(e);
});
const release = (): void => {
  pointer = undefined;
  steer();
};
canvas.addEventListener("pointerup", release);
canvas.addEventListener("pointercancel", release);
// Re-aim at the pointer while the player moves.
setInterval(() => pointer && steer(), 100);

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

function color(id: string): string {
  let h = 0;
  for (const c of id) h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  return `hsl(${h} 65% 50%)`;
}

function draw(): void {
  const scale = canvas.width / ARENA;
  const styles = getComputedStyle(document.documentElement);
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = styles.getPropertyValue("--line");
  context.lineWidth = 1;
  for (let g = 100; g < ARENA; g += 100) {
    context.beginPath();
    context.moveTo(g * scale, 0);
    context.lineTo(g * scale, canvas.height);
    context.moveTo(0, g * scale);
    context.lineTo(canvas.width, g * scale);
    context.stroke();
  }
  const view = client ? interpolator.sample(performance.now() - RENDER_DELAY_MS)?.state : undefined;
  if (view) {
    context.fillStyle = "#e6b422";
    for (const p of view.pickups) {
      context.beginPath();
      context.arc(p.x * scale, p.y * scale, 6 * scale + 2, 0, Math.PI * 2);
      context.fill();
    }
    context.font = `${Math.max(11, 22 * scale)}px system-ui, sans-serif`;
    context.textAlign = "center";
    for (const p of view.players) {
      const mine = p.player_id === client?.playerId;
      context.fillStyle = mine ? styles.getPropertyValue("--me") : color(p.player_id);
      context.beginPath();
      context.arc(p.x * scale, p.y * scale, 12 * scale + 3, 0, Math.PI * 2);
      context.fill();
      context.fillStyle = styles.getPropertyValue("--fg");
      context.fillText(`${p.player_id} ${p.score}`, p.x * scale, p.y * scale - 16 * scale - 6);
    }
    const seconds = Math.ceil(view.remaining_ms / 1000);
    context.textAlign = "right";
    context.fillText(`${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`, canvas.width - 10, 28);
  }
  requestAnimationFrame(draw);
}

function formatMs(ms: number | undefined): string {
  return ms === undefined ? "-" : `${ms.toFixed(1)} ms`;
}

/** The side panel, a few times a second (the canvas has the motion). */
function updatePanel(): void {
  const state = client?.latestState;
  const stats = client?.stats();
  $("s-room").textContent = client?.roomId || "-";
  $("s-player").textContent = client?.playerId || "-";
  $("s-tick").textContent = stats ? String(stats.tick) : "-";
  $("s-remaining").textContent = state ? `${(state.remaining_ms / 1000).toFixed(1)} s` : "-";
  $("s-rtt").textContent = stats ? `${formatMs(stats.rttMs)} (avg ${formatMs(stats.rttAvgMs)})` : "-";
  $("s-ack").textContent = stats ? `${formatMs(stats.ackLatencyMs)} (avg ${formatMs(stats.ackLatencyAvgMs)})` : "-";
  $("s-pending").textContent = stats ? String(stats.pendingInputs) : "-";
  const rows = [...(state?.players ?? [])].sort((a, b) => b.score - a.score || a.player_id.localeCompare(b.player_id));
  $("scoreboard").replaceChildren(
    ...rows.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.player = p.player_id;
      tr.dataset.x = p.x.toFixed(1);
      tr.dataset.y = p.y.toFixed(1);
      tr.classList.toggle("me", p.player_id === client?.playerId);
      for (const text of [p.player_id, String(p.score)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
}

function addChat(line: string): void {
  const log = $("chat-log");
  const p = document.createElement("p");
  p.textContent = line;
  log.append(p);
  while (log.childElementCount > 200) log.firstElementChild?.remove();
  log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------------------------------------
// Rooms view
// ---------------------------------------------------------------------------------------------

interface Room {
  room_id: string;
  mode: string;
  players: number;
  max_players: number;
  tick_rate: number;
  status: string;
  created_at: string;
}

async function refreshRooms(): Promise<void> {
  if ($("rooms").classList.contains("hidden") || !apiKey()) return;
  try {
    const { rooms } = await api<{ rooms: Room[] }>("GET", "/v1/rooms");
    rooms.sort((a, b) => b.created_at.localeCompare(a.created_at));
    $("room-list").replaceChildren(
      ...rooms.map((room) => {
        const tr = document.createElement("tr");
        tr.dataset.room = room.room_id;
        tr.dataset.players = String(room.players);
        for (const text of [room.room_id, room.mode, `${room.players} / ${room.max_players}`, `${room.tick_rate} Hz`, room.status, room.created_at]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        tr.classList.toggle("me", room.room_id === client?.roomId);
        return tr;
      }),
    );
    $("rooms-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    say(`Could not list rooms: ${(error as Error).message}`, true);
  }
}

function show(view: "play" | "rooms"): void {
  $("play").classList.toggle("hidden", view !== "play");
  $("rooms").classList.toggle("hidden", view !== "rooms");
  $("tab-play").setAttribute("aria-selected", String(view === "play"));
  $("tab-rooms").setAttribute("aria-selected", String(view === "rooms"));
  if (view === "rooms") {
    if (!apiKey()) say("Type the API key to list rooms.", true);
    void refreshRooms();
  }
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void join();
});
$("leave").addEventListener("click", () => {
  void leave().then(() => say("Left the room."));
});
$("add-bot").addEventListener("click", () => void addBot());
$("chat-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>("chat-text");
  const text = input.value.trim();
  if (!text || !client) return;
  try {
    client.chat(text);
    input.value = "";
  } catch (error) {
    addChat(`not sent: ${(error as Error).message}`);
  }
});
$("tab-play").addEventListener("click", () => show("play"));
$("tab-rooms").addEventListener("click", () => show("rooms"));

const params = new URLSearchParams(location.search);
const keyParam = params.get("key");
keyInput.value = keyParam ?? sessionStorage.getItem(KEY_STORAGE) ?? "";
if (keyParam) {
  // The key stays in the tab, not in the address bar or the history.
  sessionStorage.setItem(KEY_STORAGE, keyParam);
  params.delete("key");
  history.replaceState(null, "", `${location.pathname}${params.size ? `?${params}` : ""}`);
}
modeInput.value = params.get("mode") ?? "arena";
playerInput.value = params.get("player") ?? `guest-${Math.random().toString(36).slice(2, 7)}`;
if (keyInput.value) say("Ready: join a room, or look at the rooms.");
if (params.get("view") === "rooms") show("rooms");
if (keyParam && (params.has("mode") || params.has("player"))) void join();
window.addEventListener("pagehide", () => void leave());

setInterval(updatePanel, 200);
setInterval(() => void refreshRooms(), 2000);
requestAnimationFrame(draw);

/** For tests and the console: what this page sees. */
(window as unknown as { skirmishPlayground: unknown }).skirmishPlayground = {
  state: () => ({
    roomId: client?.roomId,
    playerId: client?.playerId,
    connected: client?.connected ?? false,
    stats: client?.stats(),
    players: client?.latestState?.players ?? [],
    bots: bots.map((b) => b.playerId),
  }),
};
