// The SDK against a real skirmish server: play, acks, chat, errors, close codes, resume.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import WebSocket, { WebSocketServer } from "ws";
import { Encoder } from "@msgpack/msgpack";
import { Client, ConnectError, ProtocolError, connect } from "../dist/index.js";
import { startProxy, startServer, until } from "./harness.mjs";

// Node 20 has no global WebSocket: the SDK takes the `ws` package's constructor.
const options = { WebSocket, pingIntervalMs: 200 };
let server;
let clients = [];

before(async () => {
  server = await startServer();
});
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

async function room(extra = {}) {
  const { status, body } = await server.api("POST", "/v1/rooms", { mode: "arena", ...extra });
  assert.equal(status, 201, JSON.stringify(body));
  return body.room_id;
}

async function seat(roomId, player) {
  const { status, body } = await server.api("POST", `/v1/rooms/${roomId}/seats`, { player_id: player });
  assert.equal(status, 201, JSON.stringify(body));
  return body.ws_url;
}

async function join(roomId, player, extra = {}) {
  const client = await connect(await seat(roomId, player), { ...options, ...extra });
  clients.push(client);
  return client;
}

const me = (client) => client.latestState.players.find((p) => p.player_id === client.playerId);

test("play: welcome, inputs acknowledged through last_seq, movement, RTT", async () => {
  const { status, body } = await server.api("POST", "/v1/matchmake", { mode: "arena", player_id: "ana" });
  assert.equal(status, 201);
  const ana = await connect(body.ws_url, options);
  clients.push(ana);
  assert.equal(ana.playerId, "ana");
  assert.equal(ana.roomId, body.room_id);
  assert.equal(ana.tickRate, 20);
  assert.ok(ana.resumeToken.length > 10);
  assert.ok(me(ana), "the welcome's state contains the player");

  const start = me(ana);
  const dx = start.x < 500 ? 1 : -1;
  const acked = ana.next("ack");
  const seq = ana.sendInput({ dx, dy: 0 });
  assert.equal(seq, 1);
  assert.equal(ana.pendingInputs().length, 1);
  const ack = await acked;
  assert.equal(ack.seq, 1);
  assert.ok(ack.latency_ms > 0 && ack.latency_ms < 1000, `ack latency ${ack.latency_ms}`);
  assert.equal(ana.pendingInputs().length, 0);
  assert.equal(ana.ackedSeq, 1);

  // Full speed is 200 units/s: after a few ticks the player has moved the way it was sent.
  await until("ana moves", () => Math.abs(me(ana).x - start.x) > 40);
  assert.ok(Math.sign(me(ana).x - start.x) === dx);
  assert.ok(Math.abs(me(ana).y - start.y) < 1e-3);

  // A stop, and seqs keep increasing.
  assert.equal(ana.sendInput({ dx: 0, dy: 0 }), 2);
  await ana.next("ack", (a) => a.seq === 2);
  const stopped = me(ana).x;
  await ana.next("state");
  await ana.next("state");
  assert.equal(me(ana).x, stopped);

  const rtt = await ana.ping();
  assert.ok(rtt > 0 && rtt < 1000, `rtt ${rtt}`);
  const stats = ana.stats();
  assert.ok(stats.rttMs > 0 && stats.ackLatencyMs > 0 && stats.tick > 0, JSON.stringify(stats));
  assert.ok(Math.abs(stats.serverClockOffsetMs) < 5000, "same machine: clocks agree");
});

test("without a global WebSocket (Node 20) the constructor must be passed", () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    assert.throws(() => new Client("ws://127.0.0.1:1/v1/ws?ticket=x"), /options\.WebSocket/);
    assert.ok(new Client("ws://127.0.0.1:1/v1/ws?ticket=x", { WebSocket }));
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});

test("events, chat and the async iterator", async () => {
  const roomId = await room();
  const ana = await join(roomId, "ana");
  const seen = [];
  const iterating = (async () => {
    for await (const message of ana.messages()) {
      // (ana's own player_joined may still come: the room announces every seat, the joiner's too)
      if (message.t !== "state" && message.t !== "pong" && !(message.t === "event" && message.player_id === "ana")) {
        seen.push(message);
      }
      if (message.t === "chat") break;
    }
  })();
  const joined = ana.next("event", (e) => e.kind === "player_joined" && e.player_id === "bo_2");
  const bo = await join(roomId, "bo_2");
  assert.deepEqual(await joined, { t: "event", kind: "player_joined", player_id: "bo_2" });
  assert.equal(bo.latestState.players.length, 2);

  const anaHears = ana.next("chat");
  const boHears = bo.next("chat");
  bo.chat("gg, well played é");
  const line = { t: "chat", from: "bo_2", text: "gg, well played é" };
  assert.deepEqual(await anaHears, line);
  assert.deepEqual(await boHears, line);
  await iterating;
  assert.deepEqual(seen, [{ t: "event", kind: "player_joined", player_id: "bo_2" }, line]);

  // The SDK refuses what the server would, before sending.
  assert.throws(() => bo.chat(""), (e) => e instanceof ProtocolError && e.code === "invalid_value");
  assert.throws(() => bo.sendInput({ dx: NaN, dy: 0 }), (e) => e instanceof ProtocolError);

  // Chat is rate limited (a burst of 5): the server answers `rate_limited`.
  const limited = bo.next("error", (e) => e.code === "rate_limited");
  for (let i = 0; i < 8; i++) bo.chat(`line ${i}`);
  assert.equal((await limited).t, "error");

  const left = ana.next("event", (e) => e.kind === "player_left");
  const boClosed = bo.next("close");
  bo.leave();
  assert.deepEqual(await left, { t: "event", kind: "player_left", player_id: "bo_2" });
  assert.equal((await boClosed).kind, "normal");
  await until("bo's row gone", () => ana.latestState.players.length === 1);
});

test("errors: each refused vector gets its error code; a stream of them closes with 1008", async () => {
  const ana = await join(await room(), "ana");
  const vectors = JSON.parse(
    readFileSync(fileURLToPath(new URL("../../../protocol/vectors/vectors.json", import.meta.url)), "utf8"),
  ).vectors.filter((v) => v.direction === "client_to_server" && !v.valid);
  assert.equal(vectors.length, 4);
  for (const vector of vectors) {
    const bytes = new Uint8Array(vector.hex.split(" ").map((h) => parseInt(h, 16)));
    const answer = ana.next("error");
    assert.ok(ana.sendRaw(bytes));
    const error = await answer;
    assert.equal(error.code, vector.error_code, vector.name);
    assert.ok(error.message.length > 0);
  }
  assert.ok(ana.connected, "invalid frames do not close the connection");

  let reconnects = 0;
  ana.on("reconnecting", () => reconnects++);
  const closed = ana.next("close");
  const drained = (async () => {
    let n = 0;
    for await (const _ of ana.messages()) n++;
    return n;
  })();
  for (let i = 0; i < 12 && ana.connected; i++) ana.sendRaw(new Uint8Array([0xc1]));
  const reason = await closed;
  assert.deepEqual([reason.code, reason.kind, reason.resumable], [1008, "policy", false]);
  assert.equal(reconnects, 0, "no resume after 1008");
  assert.ok((await drained) > 0, "the iterator saw the errors and ended with the client");
  assert.equal(ana.sendRaw(new Uint8Array([0x80])), false, "nothing is sent after the end");
});

test("close codes: a frame over 4096 bytes closes with 1009, final", async () => {
  const ana = await join(await room(), "ana");
  let reconnects = 0;
  ana.on("reconnecting", () => reconnects++);
  const closed = ana.next("close");
  assert.ok(ana.sendRaw(new Uint8Array(5000).fill(0x90)));
  const reason = await closed;
  assert.deepEqual([reason.code, reason.kind, reason.resumable], [1009, "too_big", false]);
  assert.equal(reconnects, 0);
});

test("close codes: 4001 when the room is deleted, 4003 when replaced, a reused ticket is refused", async () => {
  const roomId = await room();
  const ws = await seat(roomId, "ana");
  const ana = await connect(ws, options);
  clients.push(ana);
  await assert.rejects(connect(ws, options), (e) => e instanceof ConnectError && e.reason.kind === "abnormal");

  // Replaced: a second connection resumes with ana's token.
  const replaced = ana.next("close");
  const url = new URL(ws);
  const twin = await connect(`ws://${url.host}/v1/ws?resume=${encodeURIComponent(ana.resumeToken)}`, options);
  clients.push(twin);
  assert.equal(twin.playerId, "ana");
  assert.deepEqual(
    (({ code, kind, resumable }) => ({ code, kind, resumable }))(await replaced),
    { code: 4003, kind: "replaced", resumable: false },
  );

  let reconnects = 0;
  twin.on("reconnecting", () => reconnects++);
  const gone = twin.next("close");
  assert.equal((await server.api("DELETE", `/v1/rooms/${roomId}`)).status, 204);
  const reason = await gone;
  assert.deepEqual([reason.code, reason.kind, reason.resumable], [4001, "room_closed", false]);
  assert.equal(reconnects, 0);
  assert.equal(twin.connected, false);
});

test("resume after a dropped socket keeps the slot, the score and the input sequence", async () => {
  const roomId = await room();
  const proxy = await startProxy(server.port);
  try {
    const direct = await seat(roomId, "ana");
    const viaProxy = direct.replace(`:${server.port}/`, `:${proxy.port}/`);
    const ana = await connect(viaProxy, { ...options, backoff: { initialMs: 50, maxMs: 400 } });
    clients.push(ana);
    const bo = await join(roomId, "bo_2");
    let boSawLeft = false;
    bo.on("event", (e) => e.kind === "player_left" && (boSawLeft = true));

    assert.equal(ana.sendInput({ dx: me(ana).x < 500 ? 1 : -1, dy: 0 }), 1);
    await ana.next("ack");
    const firstToken = ana.resumeToken;
    const events = [];
    let whileDown;
    ana.on("reconnecting", (r) => {
      events.push(`reconnecting ${r.reason.kind}`);
      // An input while the socket is down is kept, and sent again (with a new seq) once resumed.
      if (whileDown === undefined) whileDown = { seq: ana.sendInput({ dx: 0, dy: me(ana).y < 500 ? 1 : -1 }), connected: ana.connected };
    });
    const resumed = ana.next("resumed");
    const droppedAt = performance.now();
    const before = me(ana);
    proxy.cut();
    const welcome = await resumed;
    const resumeMs = performance.now() - droppedAt;
    assert.deepEqual(events.slice(0, 1), ["reconnecting abnormal"]);
    assert.equal(welcome.player_id, "ana");
    assert.equal(welcome.room_id, roomId);
    assert.notEqual(ana.resumeToken, firstToken, "a fresh token with every welcome");
    assert.equal(ana.stats().resumes, 1);
    assert.ok(ana.connected);
    const after = welcome.state.players.find((p) => p.player_id === "ana");
    assert.ok(Math.abs(after.x - before.x) < 60, "the same slot: the player is where it was, not respawned");
    console.log(`# resume took ${resumeMs.toFixed(1)} ms`);

    assert.deepEqual(whileDown, { seq: 2, connected: false });
    await ana.next("ack", (a) => a.seq === 3);
    assert.equal(ana.pendingInputs().length, 0);
    const y = me(ana).y;
    await until("ana moves along y after the resume", () => Math.abs(me(ana).y - y) > 20);
    assert.equal(ana.sendInput({ dx: 0, dy: 0 }), 4, "seqs go on across the resume");
    await ana.next("ack", (a) => a.seq === 4);
    assert.equal(boSawLeft, false, "a drop within the grace is no leave");

    // Refused for good: the proxy refuses every connection; the SDK gives up within the grace.
    const short = await connect(
      (await seat(roomId, "cy")).replace(`:${server.port}/`, `:${proxy.port}/`),
      { ...options, resumeGraceMs: 1500, backoff: { initialMs: 50, maxMs: 200 } },
    );
    clients.push(short);
    const final = short.next("close");
    proxy.block(true);
    proxy.cut();
    const started = performance.now();
    const reason = await final;
    assert.equal(reason.kind, "resume_refused");
    assert.ok(performance.now() - started < 2000, "within the grace");
  } finally {
    await proxy.close();
  }
});

test("a server restart (1001): the client resumes once the server is back, in the restored room", async () => {
  const first = await startServer();
  let second;
  try {
    const { body } = await first.api("POST", "/v1/matchmake", { mode: "arena", player_id: "ana" });
    const ana = await connect(body.ws_url, { ...options, backoff: { initialMs: 100, maxMs: 500 } });
    clients.push(ana);
    ana.sendInput({ dx: me(ana).x < 500 ? 1 : -1, dy: 0 });
    await ana.next("ack");
    const reasons = [];
    ana.on("reconnecting", (r) => reasons.push(r.reason.kind));
    const resumed = ana.next("resumed", () => true, 20_000);
    await first.stop({ keep: true });
    assert.equal(reasons[0], "going_away", "the server said 1001");
    const restartedAt = performance.now();
    second = await startServer({ SKIRMISH_LISTEN: `127.0.0.1:${first.port}` }, { dir: first.dir });
    const welcome = await resumed;
    console.log(`# resumed ${(performance.now() - restartedAt).toFixed(0)} ms after the restart began`);
    assert.equal(welcome.player_id, "ana");
    assert.equal(welcome.room_id, body.room_id);
    assert.ok(ana.connected && ana.closeReason === undefined);
    ana.close();
  } finally {
    await second?.stop();
    if (!second) await first.stop();
  }
});

test("4005 room moved: asks /v1/locate (honouring 503 Retry-After) and resumes where it says", async () => {
  // A fake node speaking the protocol: welcome, then 4005; locate answers 503, then 200.
  const encoder = new Encoder({ forceFloat32: true });
  const state = { players: [["ana", 1.5, 2.5, 0, 0]], pickups: [], remaining_ms: 1000 };
  const welcome = (token) =>
    encoder.encode({ t: "welcome", room_id: "r-1", player_id: "ana", tick: 5, tick_rate: 20, resume_token: token, state });
  const locates = [];
  const upgrades = [];
  const http = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname !== "/v1/locate") return res.writeHead(404).end();
    locates.push({ token: url.searchParams.get("resume"), auth: req.headers.authorization, at: performance.now() });
    if (locates.length === 1) return res.writeHead(503, { "retry-after": "1" }).end('{"error":{"code":"unavailable","message":"no owner yet"}}');
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ room_id: "r-1", ws_url: `ws://127.0.0.1:${http.address().port}/node-b/v1/ws?resume=${url.searchParams.get("resume")}` }));
  });
  const wss = new WebSocketServer({ server: http });
  wss.on("connection", (socket, req) => {
    upgrades.push(req.url);
    if (upgrades.length === 1) {
      socket.send(welcome("token-1"));
      setTimeout(() => socket.close(4005, "room moved"), 50);
    } else {
      socket.send(welcome("token-2"));
    }
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  try {
    const port = http.address().port;
    const ana = await connect(`ws://127.0.0.1:${port}/v1/ws?ticket=t`, options);
    const reasons = [];
    ana.on("reconnecting", (r) => reasons.push(r.reason.kind));
    const resumed = await ana.next("resumed");
    assert.equal(resumed.resume_token, "token-2");
    assert.equal(ana.resumeToken, "token-2");
    assert.deepEqual(locates.map((l) => [l.token, l.auth]), [["token-1", undefined], ["token-1", undefined]]);
    assert.ok(locates[1].at - locates[0].at >= 950, "waited Retry-After");
    assert.deepEqual(upgrades, ["/v1/ws?ticket=t", "/node-b/v1/ws?resume=token-1"]);
    assert.ok(reasons.includes("room_moved"), reasons.join());
    ana.close();

    // 401 from locate: the token is no good any more; the client stops.
    locates.length = 0;
    upgrades.length = 0;
    http.removeAllListeners("request");
    http.on("request", (_req, res) => res.writeHead(401).end('{"error":{"code":"bad_token","message":"expired"}}'));
    const bo = await connect(`ws://127.0.0.1:${port}/v1/ws?ticket=u`, options);
    const reason = await bo.next("close");
    assert.deepEqual([reason.kind, reason.code], ["resume_refused", 4005]);
    assert.equal(upgrades.length, 1, "no upgrade after a refused locate");
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.closeAllConnections?.();
    await new Promise((resolve) => http.close(resolve));
  }
});

test("the playground is served at /playground, and is 404 when turned off", async () => {
  const response = await fetch(`${server.http}/playground`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^text\/html/);
  const page = await response.text();
  assert.ok(page.includes("Skirmish playground"), "the embedded page");
  assert.equal(page, readFileSync(fileURLToPath(new URL("../../../server/playground/index.html", import.meta.url)), "utf8"));

  const off = await startServer({ SKIRMISH_PLAYGROUND: "false" });
  try {
    const response = await fetch(`${off.http}/playground`);
    assert.equal(response.status, 404);
    assert.equal((await response.json()).error.code, "not_found");
  } finally {
    await off.stop();
  }
});
