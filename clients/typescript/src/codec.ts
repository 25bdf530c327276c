/**
 * Wire protocol v1 (PROTOCOL.md): typed messages and their MessagePack encoding.
 *
 * Every frame is one binary WebSocket message holding one MessagePack map with string keys; the
 * message type is under `"t"`. Floats are written as float 32, integers in their most compact form.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

/** The client frame limit of the server's default configuration (bytes). */
export const MAX_CLIENT_FRAME_BYTES = 4096;
/** Chat text is 1 to this many characters (Unicode scalar values). */
export const MAX_CHAT_CHARS = 200;
const U32_MAX = 4_294_967_295;

/** The `error.code` values of PROTOCOL.md section 5. Unknown codes should be treated as `internal`. */
export const ERROR_CODES = [
  "too_big",
  "malformed",
  "unknown_type",
  "invalid_field",
  "invalid_value",
  "rate_limited",
  "not_allowed",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A frame that cannot be encoded or decoded; `code` is the protocol's error code for it. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/** The arena game's input: a direction; a length over 1 is normalised by the server. */
export interface Direction {
  dx: number;
  dy: number;
}

export interface InputMessage<I = Direction> {
  t: "input";
  seq: number;
  input: I;
}
export interface PingMessage {
  t: "ping";
  id: number;
}
export interface ChatRequest {
  t: "chat";
  text: string;
}
export interface LeaveMessage {
  t: "leave";
}
export type ClientMessage<I = Direction> = InputMessage<I> | PingMessage | ChatRequest | LeaveMessage;

/** One row of `state.players` in the arena game. */
export interface ArenaPlayer {
  player_id: string;
  x: number;
  y: number;
  score: number;
  /** The newest input seq of this player that the tick applied (0 before any input). */
  last_seq: number;
}
export interface ArenaPickup {
  id: number;
  x: number;
  y: number;
}
/** The arena game's STATE. The arena is 1000 x 1000. */
export interface ArenaState {
  players: ArenaPlayer[];
  pickups: ArenaPickup[];
  remaining_ms: number;
}

export interface WelcomeMessage<S = ArenaState> {
  t: "welcome";
  room_id: string;
  player_id: string;
  tick: number;
  tick_rate: number;
  resume_token: string;
  state: S;
}
export interface StateMessage<S = ArenaState> {
  t: "state";
  tick: number;
  state: S;
}
export interface MatchResult {
  player_id: string;
  score: number;
  rank: number;
}
export type EventMessage =
  | { t: "event"; kind: "player_joined"; player_id: string }
  | { t: "event"; kind: "player_left"; player_id: string }
  | { t: "event"; kind: "match_over"; results: MatchResult[] };
export interface ChatMessage {
  t: "chat";
  from: string;
  text: string;
}
export interface PongMessage {
  t: "pong";
  id: number;
  /** The server's wall clock, ms since the Unix epoch. */
  server_time_ms: number;
}
export interface ErrorMessage {
  t: "error";
  /** One of `ERROR_CODES`; later servers may add codes (treat those like `internal`). */
  code: ErrorCode | (string & {});
  message: string;
}
export type ServerMessage<S = ArenaState> =
  | WelcomeMessage<S>
  | StateMessage<S>
  | EventMessage
  | ChatMessage
  | PongMessage
  | ErrorMessage;

/** Turns the wire STATE into the game's typed state; throws `ProtocolError` on a bad shape. */
export type StateParser<S> = (raw: unknown) => S;

// ---------------------------------------------------------------------------------------------
// Encoding (client to server)
// ---------------------------------------------------------------------------------------------

// Integers in their most compact form (the library's default), every other number as float 32.
const encoder = new Encoder({ forceFloat32: true, ignoreUndefined: true });

function checkU32(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new ProtocolError("invalid_value", `${field} must be an integer from 0 to ${U32_MAX}, got ${value}`);
  }
}

/** Counts Unicode scalar values, as the server does (not UTF-16 units, not bytes). */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function checkChat(text: unknown): string {
  if (typeof text !== "string") throw new ProtocolError("invalid_field", "chat text must be a string");
  const n = charCount(text);
  if (n === 0) throw new ProtocolError("invalid_value", "chat text must not be empty");
  if (n > MAX_CHAT_CHARS) throw new ProtocolError("invalid_value", `chat text is over ${MAX_CHAT_CHARS} characters`);
  if (/\p{Cs}/u.test(text)) throw new ProtocolError("invalid_value", "chat text has a lone surrogate (not UTF-8)");
  return text;
}

function checkDirection(input: Direction): void {
  for (const key of ["dx", "dy"] as const) {
    const v = input[key];
    if (typeof v !== "number") throw new ProtocolError("invalid_field", `input.${key} must be a number`);
    // A float 64 too large for a float 32 is infinite on the wire.
    if (!Number.isFinite(Math.fround(v))) {
      throw new ProtocolError("invalid_value", `input.${key} must be finite (float 32), got ${v}`);
    }
  }
}

/**
 * Encodes a client message with keys in the documented order. Checks what the server would refuse
 * (seq and id out of u32, a non-finite direction, empty or too long chat) and throws `ProtocolError`.
 */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  let ordered: Record<string, unknown>;
  switch (message.t) {
    case "input":
      checkU32("seq", message.seq);
      checkDirection(message.input);
      ordered = { t: "input", seq: message.seq, input: { dx: message.input.dx, dy: message.input.dy } };
      break;
    case "ping":
      checkU32("id", message.id);
      ordered = { t: "ping", id: message.id };
      break;
    case "chat":
      ordered = { t: "chat", text: checkChat(message.text) };
      break;
    case "leave":
      ordered = { t: "leave" };
      break;
    default:
      throw new ProtocolError("unknown_type", `no client message is called ${JSON.stringify((message as { t: unknown }).t)}`);
  }
  const bytes = encoder.encode(ordered);
  if (bytes.length > MAX_CLIENT_FRAME_BYTES) {
    throw new ProtocolError("too_big", `frame of ${bytes.length} bytes is over ${MAX_CLIENT_FRAME_BYTES}`);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const decoder = new Decoder({
  // Keys must be strings; a number key is malformed.
  mapKeyConverter: (key: unknown) => {
    if (typeof key !== "string") throw new ProtocolError("malformed", "map keys must be strings");
    return key;
  },
});

/** Number of entries a map header announces at `bytes[at]`, or undefined if it is not a map. */
function mapLength(bytes: Uint8Array, at: number): number | undefined {
  const b = bytes[at];
  if (b === undefined) return undefined;
  if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b === 0xde && at + 3 <= bytes.length) return view.getUint16(at + 1);
  if (b === 0xdf && at + 5 <= bytes.length) return view.getUint32(at + 1);
  return undefined;
}

/** Decodes one frame into a plain map with string keys, checking the framing rules of section 2. */
export function decodeFrame(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError("malformed", `not one well-formed MessagePack value: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError("malformed", "the frame is not a map");
  }
  const map = value as Record<string, unknown>;
  if (mapLength(bytes, 0) !== Object.keys(map).length) {
    throw new ProtocolError("invalid_value", "a key appears twice");
  }
  return map;
}

function field<T>(map: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = map[key];
  if (!check(v)) throw new ProtocolError("invalid_field", `"${key}" must be ${what}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isUint = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isNumber = (v: unknown): v is number => typeof v === "number";
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);

function tuple(row: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(row) || row.length < length) {
    throw new ProtocolError("invalid_field", `${what} must be an array of ${length} elements`);
  }
  return row;
}

/** The arena game's STATE parser (the default). */
export const parseArenaState: StateParser<ArenaState> = (raw) => {
  if (!isMap(raw)) throw new ProtocolError("invalid_field", "state must be a map");
  const players = field(raw, "players", isArray, "an array").map((row) => {
    const r = tuple(row, 5, "a player");
    if (!isString(r[0]) || !isNumber(r[1]) || !isNumber(r[2]) || !isUint(r[3]) || !isUint(r[4])) {
      throw new ProtocolError("invalid_field", "a player is [player_id: str, x: f32, y: f32, score: u32, last_seq: u32]");
    }
    return { player_id: r[0], x: r[1], y: r[2], score: r[3], last_seq: r[4] };
  });
  const pickups = field(raw, "pickups", isArray, "an array").map((row) => {
    const r = tuple(row, 3, "a pickup");
    if (!isUint(r[0]) || !isNumber(r[1]) || !isNumber(r[2])) {
      throw new ProtocolError("invalid_field", "a pickup is [id: u32, x: f32, y: f32]");
    }
    return { id: r[0], x: r[1], y: r[2] };
  });
  const remaining_ms = field(raw, "remaining_ms", isUint, "an unsigned integer");
  return { players, pickups, remaining_ms };
};

/**
 * Decodes a server frame. Unknown keys are ignored; a message type or event kind this SDK does not
 * know (from a later server) gives `undefined`, so a client can skip it. Throws `ProtocolError` on a
 * malformed frame or a field of the wrong type.
 */
export function decodeServerMessage<S = ArenaState>(
  bytes: Uint8Array,
  parseState: StateParser<S> = parseArenaState as unknown as StateParser<S>,
): ServerMessage<S> | undefined {
  const m = decodeFrame(bytes);
  const t = field(m, "t", isString, "a string");
  switch (t) {
    case "welcome":
      return {
        t,
        room_id: field(m, "room_id", isString, "a string"),
        player_id: field(m, "player_id", isString, "a string"),
        tick: field(m, "tick", isUint, "an unsigned integer"),
        tick_rate: field(m, "tick_rate", isUint, "an unsigned integer"),
        resume_token: field(m, "resume_token", isString, "a string"),
        state: parseState(m.state),
      };
    case "state":
      return { t, tick: field(m, "tick", isUint, "an unsigned integer"), state: parseState(m.state) };
    case "event": {
      const kind = field(m, "kind", isString, "a string");
      if (kind === "player_joined" || kind === "player_left") {
        return { t, kind, player_id: field(m, "player_id", isString, "a string") };
      }
      if (kind === "match_over") {
        const results = field(m, "results", isArray, "an array").map((row) => {
          const r = tuple(row, 3, "a result");
          if (!isString(r[0]) || !isUint(r[1]) || !isUint(r[2])) {
            throw new ProtocolError("invalid_field", "a result is [player_id: str, score: u32, rank: u32]");
          }
          return { player_id: r[0], score: r[1], rank: r[2] };
        });
        return { t, kind, results };
      }
      return undefined;
    }
    case "chat":
      return { t, from: field(m, "from", isString, "a string"), text: field(m, "text", isString, "a string") };
    case "pong":
      return {
        t,
        id: field(m, "id", isUint, "an unsigned integer"),
        server_time_ms: field(m, "server_time_ms", isUint, "an unsigned integer"),
      };
    case "error":
      return { t, code: field(m, "code", isString, "a string"), message: field(m, "message", isString, "a string") };
    default:
      return undefined;
  }
}

/**
 * Decodes a client frame as the server does (for test servers and tools): throws `ProtocolError`
 * with the code the server would answer. The input is the arena's direction.
 */
export function decodeClientMessage(bytes: Uint8Array, maxBytes = MAX_CLIENT_FRAME_BYTES): ClientMessage {
  if (bytes.length > maxBytes) throw new ProtocolError("too_big", `frame of ${bytes.length} bytes is over ${maxBytes}`);
  const m = decodeFrame(bytes);
  const t = field(m, "t", isString, "a string");
  const u32 = (key: string): number => {
    const v = m[key];
    if (typeof v !== "number" || !Number.isInteger(v)) throw new ProtocolError("invalid_field", `"${key}" must be an integer`);
    checkU32(key, v);
    return v;
  };
  switch (t) {
    case "input": {
      const seq = u32("seq");
      const input = field(m, "input", isMap, "a map");
      const dx = field(input, "dx", isNumber, "a number");
      const dy = field(input, "dy", isNumber, "a number");
      checkDirection({ dx, dy });
      return { t, seq, input: { dx, dy } };
    }
    case "ping":
      return { t, id: u32("id") };
    case "chat":
      return { t, text: checkChat(m.text) };
    case "leave":
      return { t };
    default:
      throw new ProtocolError("unknown_type", `no client message is called ${JSON.stringify(t)}`);
  }
}
