/**
 * The connection to a Skirmish room: `connect(wsUrl)` with the `ws_url` of a matchmaker's answer.
 *
 * It decodes every server message into typed events (and an async iterator), numbers inputs and
 * follows their acknowledgement through `last_seq`, measures round-trip time and input-ack latency,
 * and takes the slot back with the resume token after a drop (asking `GET /v1/locate` where the room
 * is when the server says it moved, close 4005).
 */
import {
  type ArenaState,
  type ChatMessage,
  type ClientMessage,
  type Direction,
  type ErrorMessage,
  type EventMessage,
  type PongMessage,
  type ServerMessage,
  type StateMessage,
  type StateParser,
  type WelcomeMessage,
  decodeServerMessage,
  encodeClientMessage,
  parseArenaState,
} from "./codec.js";
import { type CloseReason, closeReason } from "./close.js";

/** What the SDK needs of a WebSocket: the browser's, Node 22's global one, or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectOptions<S = ArenaState> {
  /** A WebSocket constructor; defaults to the global `WebSocket` (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /** `fetch` for `GET /v1/locate`; defaults to the global one. */
  fetch?: typeof globalThis.fetch;
  /** Base of HTTP URLs (`http://host:port`); derived from the WebSocket URL by default. */
  httpBase?: string;
  /** Turns the wire STATE into your game's state; the arena's parser by default. */
  parseState?: StateParser<S>;
  /** Your own `last_seq` in a state (the input ack); the arena's rule by default. */
  lastSeqOf?: (state: S, playerId: string) => number | undefined;
  /** Take the slot back after a drop (default true). */
  resume?: boolean;
  /** How long the server keeps a dropped slot (its `resume_grace_ms`, 15000 by default). */
  resumeGraceMs?: number;
  /** Backoff between resume attempts: starts at `initialMs` and doubles up to `maxMs`. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Send an application `ping` this often to measure round-trip time (default 1000; 0 turns it off). */
  pingIntervalMs?: number;
  /** Give up a connection attempt that has no `welcome` after this long (default 10000). */
  connectTimeoutMs?: number;
  /** Messages kept for `messages()` iterators that are behind (default 1024; the oldest go first). */
  messageBuffer?: number;
}

/** An input sent but not yet acknowledged through `last_seq`. */
export interface PendingInput<I = Direction> {
  seq: number;
  input: I;
  /** `performance.now()` when it was sent. */
  sentAt: number;
}

export interface ClientStats {
  /** Latest round-trip time of a ping (ms), and its moving average. */
  rttMs: number | undefined;
  rttAvgMs: number | undefined;
  /** Latest time from sending an input to the state that acknowledged it (ms), and its moving average. */
  ackLatencyMs: number | undefined;
  ackLatencyAvgMs: number | undefined;
  /** Estimated server clock minus local `Date.now()` (ms), from pongs. */
  serverClockOffsetMs: number | undefined;
  /** Newest tick seen. */
  tick: number;
  pendingInputs: number;
  /** Successful resumes of this client. */
  resumes: number;
}

export interface ClientEvents<S> {
  welcome: WelcomeMessage<S>;
  state: StateMessage<S>;
  event: EventMessage;
  chat: ChatMessage;
  error: ErrorMessage;
  pong: PongMessage & { rtt_ms: number };
  /** Inputs up to `seq` were applied; `latency_ms` is the time since `seq` was sent. */
  ack: { seq: number; latency_ms: number };
  /** The socket ended and the SDK will try to resume after `delay_ms`. */
  reconnecting: { attempt: number; delay_ms: number; reason: CloseReason };
  /** The slot was taken back (the welcome of the new connection). */
  resumed: WelcomeMessage<S>;
  /** The client is done: no more messages, no more resumes. */
  close: CloseReason;
}
type Listener<T> = (value: T) => void;

/** The connection attempt failed before a `welcome` (a refused ticket shows as `abnormal`, 1006). */
export class ConnectError extends Error {
  readonly reason: CloseReason;
  constructor(reason: CloseReason, message?: string) {
    super(message ?? `connection closed before welcome (${reason.code} ${reason.kind})`);
    this.name = "ConnectError";
    this.reason = reason;
  }
}

/** Where `GET /v1/locate` says a room is now. */
export type LocateAnswer =
  | { kind: "found"; room_id: string; ws_url: string }
  | { kind: "refused"; status: number } // 401 bad or expired token, 404 room gone: final
  | { kind: "retry"; after_ms: number } // 503 (no owner yet) or a network error
  | { kind: "unsupported" }; // 404 `not_found`: a server without /v1/locate; resume where you were

const now = (): number => globalThis.performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function httpBaseOf(wsUrl: string): string {
  const url = new URL(wsUrl);
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`;
}

function defaultLastSeqOf(state: unknown, playerId: string): number | undefined {
  const players = (state as Partial<ArenaState> | undefined)?.players;
  return Array.isArray(players) ? players.find((p) => p.player_id === playerId)?.last_seq : undefined;
}

/** Asks the server where the room of a resume token is now (no API key: the token is the credential). */
export async function locate(
  httpBase: string,
  resumeToken: string,
  fetchFn: typeof globalThis.fetch = globalThis.fetch,
): Promise<LocateAnswer> {
  let response: Response;
  try {
    response = await fetchFn(`${httpBase}/v1/locate?resume=${encodeURIComponent(resumeToken)}`);
  } catch {
    return { kind: "retry", after_ms: 0 };
  }
  if (response.status === 200) {
    const body = (await response.json()) as { room_id?: unknown; ws_url?: unknown };
    if (typeof body.ws_url === "string" && typeof body.room_id === "string") {
      return { kind: "found", room_id: body.room_id, ws_url: body.ws_url };
    }
    return { kind: "retry", after_ms: 0 };
  }
  if (response.status === 404) {
    // `room_not_found` is the answer about the room; `not_found` means the route itself is missing.
    const body = (await response.json().catch(() => undefined)) as { error?: { code?: unknown } } | undefined;
    return body?.error?.code === "not_found" ? { kind: "unsupported" } : { kind: "refused", status: 404 };
  }
  await response.body?.cancel();
  if (response.status === 401) return { kind: "refused", status: 401 };
  const seconds = Number(response.headers.get("retry-after"));
  return { kind: "retry", after_ms: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0 };
}

export class Client<S = ArenaState> {
  /** Your player id, room, tick rate and newest resume token (from the latest `welcome`). */
  playerId = "";
  roomId = "";
  tickRate = 0;
  resumeToken = "";
  /** The newest state received (from `welcome` or `state`). */
  latestState: S | undefined;
  /** Set once the client is done (see the `close` event). */
  closeReason: CloseReason | undefined;

  readonly #options: Required<Omit<ConnectOptions<S>, "WebSocket" | "fetch" | "httpBase" | "backoff">> & {
    backoff: { initialMs: number; maxMs: number };
  };
  readonly #WebSocket: WebSocketConstructor;
  readonly #fetch: typeof globalThis.fetch;
  #url: string;
  #httpBase: string;
  #socket: WebSocketLike | undefined;
  #closing = false;
  #listeners = new Map<keyof ClientEvents<S>, Set<Listener<never>>>();
  #iterators = new Set<{ queue: ServerMessage<S>[]; wake: (() => void) | undefined }>();
  #seq = 0;
  #pending: PendingInput[] = [];
  #acked = 0;
  #lastInput: Direction | undefined;
  #pingId = 0;
  #pings = new Map<number, number>();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #stats: ClientStats = {
    rttMs: undefined,
    rttAvgMs: undefined,
    ackLatencyMs: undefined,
    ackLatencyAvgMs: undefined,
    serverClockOffsetMs: undefined,
    tick: 0,
    pendingInputs: 0,
    resumes: 0,
  };

  constructor(wsUrl: string, options: ConnectOptions<S> = {}) {
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new TypeError("no global WebSocket (Node 20): pass one as options.WebSocket, e.g. from the `ws` package");
    }
    this.#WebSocket = ctor;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#url = wsUrl;
    this.#httpBase = (options.httpBase ?? httpBaseOf(wsUrl)).replace(/\/$/, "");
    this.#options = {
      parseState: options.parseState ?? (parseArenaState as unknown as StateParser<S>),
      lastSeqOf: options.lastSeqOf ?? defaultLastSeqOf,
      resume: options.resume ?? true,
      resumeGraceMs: options.resumeGraceMs ?? 15_000,
      backoff: { initialMs: options.backoff?.initialMs ?? 100, maxMs: options.backoff?.maxMs ?? 2000 },
      pingIntervalMs: options.pingIntervalMs ?? 1000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      messageBuffer: options.messageBuffer ?? 1024,
    };
  }

  /** Opens the first connection and resolves on its `welcome`. */
  async start(): Promise<WelcomeMessage<S>> {
    const result = await this.#open(this.#url);
    if (result.kind === "closed") {
      this.#finish(result.reason);
      throw new ConnectError(result.reason);
    }
    this.#startPings();
    return result.welcome;
  }

  // -------------------------------------------------------------------------------------------
  // Events and messages
  // -------------------------------------------------------------------------------------------

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents<S>>(type: K, listener: Listener<ClientEvents<S>[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Resolves with the next event of this type (or rejects after `timeoutMs`). */
  next<K extends keyof ClientEvents<S>>(
    type: K,
    filter: (value: ClientEvents<S>[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ClientEvents<S>[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${String(type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (value) => {
        if (!filter(value)) return;
        clearTimeout(timer);
        off();
        resolve(value);
      });
    });
  }

  #emit<K extends keyof ClientEvents<S>>(type: K, value: ClientEvents<S>[K]): void {
    for (const listener of this.#listeners.get(type) ?? []) {
      try {
        (listener as Listener<ClientEvents<S>[K]>)(value);
      } catch (error) {
        // A listener's bug must not break the connection; report it where the host reports errors.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /**
   * Every server message, in order, as an async iterator that ends when the client closes. An
   * iterator that falls more than `messageBuffer` messages behind loses the oldest.
   */
  messages(): AsyncIterableIterator<ServerMessage<S>> {
    const it = { queue: [] as ServerMessage<S>[], wake: undefined as (() => void) | undefined };
    this.#iterators.add(it);
    const self = this;
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<ServerMessage<S>>> {
        for (;;) {
          const value = it.queue.shift();
          if (value) return { value, done: false };
          if (self.closeReason || !self.#iterators.has(it)) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (it.wake = resolve));
        }
      },
      async return(): Promise<IteratorResult<ServerMessage<S>>> {
        self.#iterators.delete(it);
        it.wake?.();
        return { value: undefined, done: true };
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------------------------

  /** Whether a connection is open (false while resuming). */
  get connected(): boolean {
    return this.#socket !== undefined && this.#socket.readyState === 1 && this.playerId !== "";
  }

  #send(message: ClientMessage): boolean {
    const bytes = encodeClientMessage(message);
    return this.sendRaw(bytes);
  }

  /** Sends bytes as one binary frame, unchecked (for tools and tests). False when not connected. */
  sendRaw(bytes: Uint8Array): boolean {
    if (!this.connected) return false;
    this.#socket?.send(bytes);
    return true;
  }

  /**
   * Sends the movement direction with the next sequence number and keeps it until a state
   * acknowledges it. Returns the seq. While resuming the input is kept and re-sent afterwards.
   * The server applies at most one input per tick and drops inputs beyond about twice the tick rate
   * (answering `rate_limited`): send when the direction changes, or once per tick.
   */
  sendInput(input: Direction): number {
    const seq = ++this.#seq;
    const message: ClientMessage = { t: "input", seq, input: { dx: input.dx, dy: input.dy } };
    encodeClientMessage(message); // throws on a bad direction before anything is kept
    this.#lastInput = message.input;
    this.#pending.push({ seq, input: message.input, sentAt: now() });
    // The server applies only the latest input per tick: older unacked ones need not be kept forever.
    if (this.#pending.length > 256) this.#pending.shift();
    this.#stats.pendingInputs = this.#pending.length;
    this.#send(message);
    return seq;
  }

  /** The inputs sent and not yet acknowledged, oldest first: replay them over the acked state to predict. */
  pendingInputs(): readonly PendingInput[] {
    return this.#pending;
  }

  /** The newest acknowledged seq (your `last_seq` in the latest state). */
  get ackedSeq(): number {
    return this.#acked;
  }

  /** Sends a chat line (1 to 200 characters; throws `ProtocolError` otherwise). */
  chat(text: string): void {
    this.#send({ t: "chat", text });
  }

  /** Sends a ping; resolves with the round-trip time in ms (rejects if no pong within `timeoutMs`). */
  async ping(timeoutMs = 5000): Promise<number> {
    const id = this.#sendPing();
    const pong = await this.next("pong", (p) => p.id === id, timeoutMs);
    return pong.rtt_ms;
  }

  #sendPing(): number {
    this.#pingId = (this.#pingId + 1) % 4_294_967_296;
    const id = this.#pingId;
    if (this.#send({ t: "ping", id })) this.#pings.set(id, now());
    if (this.#pings.size > 64) this.#pings.delete(this.#pings.keys().next().value as number);
    return id;
  }

  #startPings(): void {
    if (this.#options.pingIntervalMs > 0 && !this.#pingTimer) {
      this.#sendPing();
      this.#pingTimer = setInterval(() => this.#sendPing(), this.#options.pingIntervalMs);
    }
  }

  /** Leaves the room (the slot is freed at once, no resume) and closes with 1000. */
  leave(): void {
    this.#closing = true;
    if (this.connected) this.#send({ t: "leave" });
    this.#socket?.close(1000);
    if (!this.#socket) this.#finish(closeReason(1000, "left"));
  }

  /**
   * Closes this client. With 1000 (the default) the server frees the slot; a code from 4000 to 4999
   * is a drop that keeps the slot for the grace, so another client can resume with `resumeToken`.
   */
  close(code = 1000, reason = ""): void {
    this.#closing = true;
    if (this.#socket) this.#socket.close(code, reason);
    else this.#finish({ ...closeReason(code, reason), kind: "closed_by_client", resumable: false });
  }

  stats(): ClientStats {
    return { ...this.#stats };
  }

  // -------------------------------------------------------------------------------------------
  // Connection and resume
  // -------------------------------------------------------------------------------------------

  /** Opens one socket; resolves on its welcome or on its close, whichever comes first. */
  #open(url: string): Promise<{ kind: "welcome"; welcome: WelcomeMessage<S> } | { kind: "closed"; reason: CloseReason }> {
    return new Promise((resolve) => {
      let settled = false;
      const socket = new this.#WebSocket(url);
      socket.binaryType = "arraybuffer";
      this.#socket = socket;
      const timer = setTimeout(() => {
        if (!settled) socket.close(4000, "no welcome in time");
      }, this.#options.connectTimeoutMs);
      socket.onmessage = (event) => {
        const bytes = toBytes(event.data);
        if (!bytes) return;
        let message: ServerMessage<S> | undefined;
        try {
          message = decodeServerMessage(bytes, this.#options.parseState);
        } catch (error) {
          // A frame this SDK cannot read is the server's bug or a newer protocol; surface it as an error.
          this.#dispatch({ t: "error", code: "internal", message: `undecodable server frame: ${(error as Error).message}` });
          return;
        }
        if (!message) return;
        if (message.t === "welcome" && !settled) {
          settled = true;
          clearTimeout(timer);
          this.#dispatch(message);
          resolve({ kind: "welcome", welcome: message });
          return;
        }
        this.#dispatch(message);
      };
      socket.onclose = (event) => {
        clearTimeout(timer);
        if (this.#socket === socket) this.#socket = undefined;
        const reason = closeReason(event.code, event.reason);
        if (!settled) {
          settled = true;
          resolve({ kind: "closed", reason });
        } else {
          void this.#onDrop(reason);
        }
      };
      socket.onerror = () => {
        // Every error is followed by a close event, which decides what happens.
      };
    });
  }

  #dispatch(message: ServerMessage<S>): void {
    switch (message.t) {
      case "welcome":
        this.playerId = message.player_id;
        this.roomId = message.room_id;
        this.tickRate = message.tick_rate;
        this.resumeToken = message.resume_token;
        this.#onState(message.tick, message.state);
        this.#emit("welcome", message);
        break;
      case "state":
        this.#onState(message.tick, message.state);
        this.#emit("state", message);
        break;
      case "pong": {
        const sentAt = this.#pings.get(message.id);
        if (sentAt === undefined) break;
        this.#pings.delete(message.id);
        const rtt = now() - sentAt;
        this.#stats.rttMs = rtt;
        this.#stats.rttAvgMs = ewma(this.#stats.rttAvgMs, rtt);
        this.#stats.serverClockOffsetMs = message.server_time_ms + rtt / 2 - Date.now();
        this.#emit("pong", { ...message, rtt_ms: rtt });
        break;
      }
      case "event":
        this.#emit("event", message);
        break;
      case "chat":
        this.#emit("chat", message);
        break;
      case "error":
        this.#emit("error", message);
        break;
    }
    for (const it of this.#iterators) {
      it.queue.push(message);
      if (it.queue.length > this.#options.messageBuffer) it.queue.shift();
      it.wake?.();
      it.wake = undefined;
    }
  }

  #onState(tick: number, state: S): void {
    this.latestState = state;
    this.#stats.tick = tick;
    const lastSeq = this.#options.lastSeqOf(state, this.playerId);
    if (lastSeq === undefined || lastSeq <= this.#acked) return;
    this.#acked = lastSeq;
    let sentAt: number | undefined;
    while (this.#pending.length > 0 && (this.#pending[0] as PendingInput).seq <= lastSeq) {
      sentAt = (this.#pending.shift() as PendingInput).sentAt;
    }
    this.#stats.pendingInputs = this.#pending.length;
    if (sentAt === undefined) return; // acked before this client sent it (an earlier connection's seq)
    const latency = now() - sentAt;
    this.#stats.ackLatencyMs = latency;
    this.#stats.ackLatencyAvgMs = ewma(this.#stats.ackLatencyAvgMs, latency);
    this.#emit("ack", { seq: lastSeq, latency_ms: latency });
  }

  async #onDrop(first: CloseReason): Promise<void> {
    if (this.#closing) {
      this.#finish({ ...first, kind: first.code === 1000 ? "normal" : "closed_by_client", resumable: false });
      return;
    }
    if (!first.resumable || !this.#options.resume || this.resumeToken === "") {
      this.#finish(first);
      return;
    }
    const deadline = now() + this.#options.resumeGraceMs;
    let url = `${this.#httpBase.replace(/^http/, "ws")}/v1/ws?resume=${encodeURIComponent(this.resumeToken)}`;
    // 4005: the room lives elsewhere now; ask before trying.
    let mustLocate = first.code === 4005;
    let canLocate = true;
    let reason = first;
    for (let attempt = 1; attempt <= 1000 && !this.#closing; attempt++) {
      let delay = Math.min(this.#options.backoff.maxMs, this.#options.backoff.initialMs * 2 ** (attempt - 1));
      delay = delay / 2 + Math.random() * (delay / 2); // jitter: clients of one server do not return in step
      if (mustLocate) {
        const answer = await locate(this.#httpBase, this.resumeToken, this.#fetch);
        if (answer.kind === "refused") break;
        if (answer.kind === "found") {
          url = answer.ws_url;
          mustLocate = false;
        } else if (answer.kind === "unsupported") {
          canLocate = false;
          mustLocate = false;
        } else {
          delay = Math.max(delay, answer.after_ms);
        }
      }
      if (now() + delay >= deadline) break;
      this.#emit("reconnecting", { attempt, delay_ms: delay, reason });
      await sleep(delay);
      if (this.#closing) break;
      if (mustLocate) continue;
      const result = await this.#open(url);
      if (result.kind === "welcome") {
        this.#stats.resumes++;
        this.#emit("resumed", result.welcome);
        // The last direction may have been lost with the old socket: send it again with a new seq.
        if (this.#lastInput && this.#pending.length > 0) this.sendInput(this.#lastInput);
        return;
      }
      reason = result.reason;
      if (!reason.resumable) {
        this.#finish(reason.code === 1008 ? { ...reason, kind: "resume_refused" } : reason);
        return;
      }
      // A refused upgrade (token expired, room gone, or not owned by that node) looks like 1006 to a
      // WebSocket: ask the server where the room is, which also tells a refusal from an outage.
      mustLocate = canLocate;
    }
    if (this.#closing) {
      this.#finish({ ...reason, kind: "closed_by_client", resumable: false });
    } else {
      this.#finish({ ...reason, kind: "resume_refused", resumable: false });
    }
  }

  #finish(reason: CloseReason): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    this.#emit("close", reason);
    for (const it of this.#iterators) it.wake?.();
  }
}

function ewma(average: number | undefined, sample: number): number {
  return average === undefined ? sample : average * 0.8 + sample * 0.2;
}

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    // The `ws` package may deliver fragmented messages as a list of buffers.
    const parts = data.filter((part): part is Uint8Array => ArrayBuffer.isView(part));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
  return undefined; // a text frame is not part of the protocol
}

/**
 * Connects with the `ws_url` of a seat (`POST /v1/matchmake` or `POST /v1/rooms/{id}/seats`) and
 * resolves once the server's `welcome` arrived. Rejects with `ConnectError` if the connection ends
 * first (a refused ticket shows as 1006).
 */
export async function connect<S = ArenaState>(wsUrl: string, options: ConnectOptions<S> = {}): Promise<Client<S>> {
  const client = new Client<S>(wsUrl, options);
  await client.start();
  return client;
}
