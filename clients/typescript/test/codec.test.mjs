// The SDK's codec against every file in protocol/vectors/ (PROTOCOL.md section 7).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { decode } from "@msgpack/msgpack";
import {
  ProtocolError,
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  closeReason,
} from "../dist/index.js";

const VECTORS = fileURLToPath(new URL("../../../protocol/vectors/", import.meta.url));
const index = JSON.parse(readFileSync(`${VECTORS}vectors.json`, "utf8"));

/** A number the reading marks with its float width (`1.5f32`). */
class Float {
  constructor(width, value) {
    this.width = width;
    this.value = value;
  }
}

/** Parses a reading: JSON with float widths marked (`0.5f32`, `NaNf32`). Keeps key order. */
function parseReading(reading) {
  const marked = reading.replace(
    /(-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|inf))f(32|64)/g,
    (_, v, w) => `{"$float":${w},"v":"${v}"}`,
  );
  return JSON.parse(marked, (_key, value) =>
    value && typeof value === "object" && "$float" in value
      ? new Float(value.$float, value.v === "NaN" ? NaN : Number(value.v))
      : value,
  );
}

/** The reading with floats as plain numbers, as a MessagePack decoder yields it. */
function plain(value) {
  if (value instanceof Float) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

/**
 * A reference encoder of the rules in PROTOCOL.md section 2 (most compact integers and strings,
 * floats at their marked width), to check that a reading and those rules give the file's bytes.
 */
function encodeReading(value, out = []) {
  const u = (n, bytes) => {
    for (let i = bytes - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  };
  if (value instanceof Float) {
    const view = new DataView(new ArrayBuffer(value.width / 8));
    if (value.width === 32) view.setFloat32(0, value.value);
    else view.setFloat64(0, value.value);
    out.push(value.width === 32 ? 0xca : 0xcb, ...new Uint8Array(view.buffer));
  } else if (typeof value === "number") {
    assert.ok(Number.isInteger(value) && value >= 0, `readings hold unsigned integers, got ${value}`);
    if (value < 0x80) out.push(value);
    else if (value < 0x100) out.push(0xcc, value);
    else if (value < 0x10000) (out.push(0xcd), u(value, 2));
    else if (value < 0x100000000) (out.push(0xce), u(value, 4));
    else (out.push(0xcf), u(value, 8));
  } else if (typeof value === "string") {
    const bytes = new TextEncoder().encode(value);
    if (bytes.length < 32) out.push(0xa0 | bytes.length);
    else if (bytes.length < 0x100) out.push(0xd9, bytes.length);
    else (out.push(0xda), u(bytes.length, 2));
    out.push(...bytes);
  } else if (Array.isArray(value)) {
    if (value.length < 16) out.push(0x90 | value.length);
    else (out.push(0xdc), u(value.length, 2));
    for (const v of value) encodeReading(v, out);
  } else {
    const entries = Object.entries(value);
    if (entries.length < 16) out.push(0x80 | entries.length);
    else (out.push(0xde), u(entries.length, 2));
    for (const [k, v] of entries) (encodeReading(k, out), encodeReading(v, out));
  }
  return out;
}

/** The typed message the SDK should produce for a server reading. */
function typedServer(reading) {
  const r = plain(reading);
  const arena = (s) => ({
    players: s.players.map(([player_id, x, y, score, last_seq]) => ({ player_id, x, y, score, last_seq })),
    pickups: s.pickups.map(([id, x, y]) => ({ id, x, y })),
    remaining_ms: s.remaining_ms,
  });
  if (r.state) r.state = arena(r.state);
  if (r.results) r.results = r.results.map(([player_id, score, rank]) => ({ player_id, score, rank }));
  return r;
}

test("vectors.json lists every .msgpack file and nothing else", () => {
  const files = readdirSync(VECTORS).filter((f) => f.endsWith(".msgpack")).sort();
  assert.deepEqual(index.vectors.map((v) => v.file).sort(), files);
  assert.ok(files.length >= 16, `${files.length} vectors`);
});

for (const vector of index.vectors) {
  test(`vector ${vector.name}`, () => {
    const bytes = new Uint8Array(readFileSync(`${VECTORS}${vector.file}`));
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    assert.equal(hex, vector.hex, "file bytes equal the listed hex");
    const reading = parseReading(vector.reading);
    assert.deepEqual(encodeReading(reading), [...bytes], "the reading, encoded by PROTOCOL.md's rules, is the file");

    if (vector.direction === "server_to_client") {
      const message = decodeServerMessage(bytes);
      assert.deepEqual(message, typedServer(reading));
      // Keys come in the documented order.
      assert.deepEqual(Object.keys(decode(bytes)), Object.keys(reading));
      return;
    }
    assert.equal(vector.direction, "client_to_server");
    if (vector.valid) {
      const message = decodeClientMessage(bytes);
      assert.deepEqual(message, plain(reading));
      assert.deepEqual([...encodeClientMessage(message)], [...bytes], "the SDK encodes the same bytes");
    } else {
      assert.throws(
        () => decodeClientMessage(bytes),
        (error) => error instanceof ProtocolError && error.code === vector.error_code,
        `refused with ${vector.error_code}`,
      );
    }
  });
}

test("the encoder refuses what the server would refuse, with the server's code", () => {
  const refuses = (message, code) =>
    assert.throws(() => encodeClientMessage(message), (e) => e instanceof ProtocolError && e.code === code);
  refuses({ t: "input", seq: 1, input: { dx: NaN, dy: 0 } }, "invalid_value");
  refuses({ t: "input", seq: 1, input: { dx: 1e39, dy: 0 } }, "invalid_value"); // infinite as float 32
  refuses({ t: "input", seq: -1, input: { dx: 0, dy: 0 } }, "invalid_value");
  refuses({ t: "input", seq: 2 ** 32, input: { dx: 0, dy: 0 } }, "invalid_value");
  refuses({ t: "input", seq: 1.5, input: { dx: 0, dy: 0 } }, "invalid_value");
  refuses({ t: "ping", id: 2 ** 32 }, "invalid_value");
  refuses({ t: "chat", text: "" }, "invalid_value");
  refuses({ t: "chat", text: "x".repeat(201) }, "invalid_value");
  refuses({ t: "chat", text: "\ud800" }, "invalid_value");
  refuses({ t: "jump" }, "unknown_type");
  // 200 characters counted as Unicode scalar values, not UTF-16 units or bytes.
  assert.ok(encodeClientMessage({ t: "chat", text: "😀".repeat(200) }).length > 800);
  // A whole-number direction is written as an integer, which the server accepts.
  assert.deepEqual(decode(encodeClientMessage({ t: "input", seq: 300, input: { dx: 1, dy: -0.5 } })), {
    t: "input",
    seq: 300,
    input: { dx: 1, dy: -0.5 },
  });
});

test("the decoder follows the framing rules", () => {
  const malformed = (bytes, code = "malformed") =>
    assert.throws(
      () => decodeServerMessage(new Uint8Array(bytes)),
      (e) => e instanceof ProtocolError && e.code === code,
      `${bytes} is ${code}`,
    );
  malformed([0x81, 0xa1, 0x74]); // truncated
  malformed([0xc1]); // never-used marker
  malformed([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67, 0x00]); // trailing byte
  malformed([0x81, 0x01, 0x02]); // integer key
  malformed([0x82, 0xa1, 0x74, 0xa1, 0x78, 0xa1, 0x74, 0xa1, 0x79], "invalid_value"); // "t" twice
  malformed([0x81, 0xa1, 0x74, 0x05], "invalid_field"); // "t" not a string
  // Keys in any order, unknown keys ignored, unknown types skipped.
  const pong = new Uint8Array([
    0x84, 0xa2, 0x69, 0x64, 0x07, 0xa3, 0x6e, 0x65, 0x77, 0xc3, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67, 0xae,
    ...new TextEncoder().encode("server_time_ms"), 0x2a,
  ]);
  assert.deepEqual(decodeServerMessage(pong), { t: "pong", id: 7, server_time_ms: 42 });
  assert.equal(decodeServerMessage(new Uint8Array([0x81, 0xa1, 0x74, 0xa3, 0x6e, 0x65, 0x77])), undefined);
});

test("close codes surface as typed reasons", () => {
  const cases = [
    [1000, "normal", false],
    [1001, "going_away", true],
    [1003, "text_frame", false],
    [1006, "abnormal", true],
    [1008, "policy", false],
    [1009, "too_big", false],
    [4001, "room_closed", false],
    [4002, "too_slow", true],
    [4003, "replaced", false],
    [4004, "silent", true],
    [4005, "room_moved", true],
    [4999, "unknown", true],
  ];
  for (const [code, kind, resumable] of cases) {
    assert.deepEqual(closeReason(code, "why"), { code, kind, reason: "why", resumable }, String(code));
  }
});
