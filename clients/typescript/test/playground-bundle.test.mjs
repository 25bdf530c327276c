// The playground page the server embeds must be exactly what the current sources build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildPage } from "../scripts/build-playground.mjs";

test("server/playground/index.html equals a fresh build of the playground", async () => {
  const committed = readFileSync(fileURLToPath(new URL("../../../server/playground/index.html", import.meta.url)), "utf8");
  const fresh = await buildPage();
  assert.ok(fresh.includes("Skirmish playground") && fresh.length > 10_000);
  assert.ok(committed === fresh, "stale: run `npm run build:playground` in clients/typescript and commit server/playground/index.html");
});
