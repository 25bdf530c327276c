import { test } from "node:test";
import assert from "node:assert/strict";
import { Interpolator, lerpArena } from "../dist/index.js";

const arena = (tick, players, pickups = []) => ({
  players: players.map(([player_id, x, y, score = 0]) => ({ player_id, x, y, score, last_seq: tick })),
  pickups,
  remaining_ms: 10_000 - tick * 50,
});

test("samples between the states around the render time", () => {
  const buffer = new Interpolator(lerpArena, 4);
  assert.equal(buffer.sample(0), undefined);
  buffer.push(100, arena(1, [["a", 0, 0]]));
  buffer.push(150, arena(2, [["a", 10, 20], ["b", 5, 5]]));
  buffer.push(200, arena(3, [["a", 30, 20], ["b", 5, 15]]));

  const mid = buffer.sample(125);
  assert.equal(mid.alpha, 0.5);
  assert.deepEqual(mid.state.players.map((p) => [p.player_id, p.x, p.y]), [["a", 5, 10], ["b", 5, 5]]);
  assert.equal(mid.state.remaining_ms, 10_000 - 75);

  const later = buffer.sample(190);
  assert.ok(Math.abs(later.state.players[0].x - 26) < 1e-9);
  assert.ok(Math.abs(later.state.players[1].y - 13) < 1e-9);

  // No extrapolation: before the oldest and after the newest, the edge states.
  assert.equal(buffer.sample(50).state.players[0].x, 0);
  assert.equal(buffer.sample(999).state.players[0].x, 30);
});

test("ignores old states and keeps at most its capacity", () => {
  const buffer = new Interpolator(lerpArena, 3);
  for (let t = 1; t <= 10; t++) buffer.push(t * 50, arena(t, [["a", t, 0]]));
  buffer.push(100, arena(99, [["a", 999, 0]])); // older than the newest: ignored
  assert.equal(buffer.size, 3);
  assert.equal(buffer.sample(0).state.players[0].x, 8); // the oldest kept is tick 8
  assert.equal(buffer.sample(475).state.players[0].x, 9.5);
  assert.throws(() => new Interpolator(lerpArena, 1), RangeError);
});
