/**
 * Interpolation: keep the last few states with the time they stand for, and render the world a
 * little in the past (typically two ticks), between the two states around the render time. States
 * arrive at the tick rate with jitter; drawing between them gives smooth motion at any frame rate.
 */
import type { ArenaState } from "./codec.js";

export type Lerp<S> = (from: S, to: S, alpha: number) => S;

export interface Sample<S> {
  /** The interpolated state. */
  state: S;
  /** The two buffered states around the render time, and how far (0 to 1) it is from one to the other. */
  from: S;
  to: S;
  alpha: number;
}

export class Interpolator<S = ArenaState> {
  readonly #lerp: Lerp<S>;
  readonly #capacity: number;
  #buffer: { time: number; state: S }[] = [];

  constructor(lerp: Lerp<S>, capacity = 32) {
    if (!(capacity >= 2)) throw new RangeError("an interpolation buffer needs room for at least 2 states");
    this.#lerp = lerp;
    this.#capacity = capacity;
  }

  /** Adds a state standing for `time` (any clock in ms, the same as the render time's). Older or equal times are ignored. */
  push(time: number, state: S): void {
    const last = this.#buffer[this.#buffer.length - 1];
    if (last && time <= last.time) return;
    this.#buffer.push({ time, state });
    if (this.#buffer.length > this.#capacity) this.#buffer.shift();
  }

  get size(): number {
    return this.#buffer.length;
  }

  clear(): void {
    this.#buffer = [];
  }

  /**
   * The view at `renderTime`: interpolated between the states around it; before the oldest state
   * the oldest, after the newest the newest (no extrapolation). Undefined while the buffer is empty.
   */
  sample(renderTime: number): Sample<S> | undefined {
    const buffer = this.#buffer;
    const first = buffer[0];
    const last = buffer[buffer.length - 1];
    if (!first || !last) return undefined;
    if (renderTime <= first.time) return { state: first.state, from: first.state, to: first.state, alpha: 0 };
    if (renderTime >= last.time) return { state: last.state, from: last.state, to: last.state, alpha: 1 };
    let i = buffer.length - 2;
    while (i > 0 && (buffer[i] as { time: number }).time > renderTime) i--;
    const a = buffer[i] as { time: number; state: S };
    const b = buffer[i + 1] as { time: number; state: S };
    const alpha = (renderTime - a.time) / (b.time - a.time);
    return { state: this.#lerp(a.state, b.state, alpha), from: a.state, to: b.state, alpha };
  }
}

/**
 * Interpolates the arena: positions of players present in both states move linearly; the player list,
 * scores, acks and pickups are the newer state's (a player who just joined appears at their position).
 */
export const lerpArena: Lerp<ArenaState> = (from, to, alpha) => {
  const before = new Map(from.players.map((p) => [p.player_id, p]));
  return {
    players: to.players.map((p) => {
      const q = before.get(p.player_id);
      if (!q) return p;
      return { ...p, x: q.x + (p.x - q.x) * alpha, y: q.y + (p.y - q.y) * alpha };
    }),
    pickups: to.pickups,
    remaining_ms: Math.round(from.remaining_ms + (to.remaining_ms - from.remaining_ms) * alpha),
  };
};
