// Starts a real `skirmish` server (the release binary) on a free port with SQLite in a temporary
// directory, and a TCP proxy that a test can cut to drop connections the way a network does.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
export const API_KEY = "sdk-test-key-0123456789";

/** SKIRMISH_BIN, else `$CARGO_TARGET_DIR/release/skirmish`, else `<repo>/target/release/skirmish`. */
export function serverBinary() {
  const path =
    process.env.SKIRMISH_BIN ??
    join(process.env.CARGO_TARGET_DIR ?? join(REPO, "target"), "release", "skirmish");
  if (!existsSync(path)) {
    throw new Error(`no skirmish binary at ${path}: run \`cargo build --release --bin skirmish\` or set SKIRMISH_BIN`);
  }
  return path;
}

/**
 * Starts the server and resolves once it logged the port it bound. `dir` reuses a database directory
 * (a restart); `stop({ keep: true })` leaves it in place for that.
 */
export async function startServer(env = {}, { dir = mkdtempSync(join(tmpdir(), "skirmish-sdk-")) } = {}) {
  const child = spawn(serverBinary(), [], {
    cwd: dir, // no skirmish.toml from the caller's directory
    env: {
      PATH: process.env.PATH,
      SKIRMISH_LISTEN: "127.0.0.1:0",
      SKIRMISH_DATABASE_URL: `sqlite://${dir}/s.db?mode=rwc`,
      SKIRMISH_API_KEY: API_KEY,
      SKIRMISH_LOG_FORMAT: "json",
      SKIRMISH_LOG: "info",
      SKIRMISH_WORKERS: "2",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log = [];
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${log.join("\n")}`)), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${log.join("\n")}`));
    });
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (log.length < 2000) log.push(line);
      try {
        const entry = JSON.parse(line);
        if (entry.fields?.message === "skirmish listening") {
          clearTimeout(timer);
          resolve(entry.fields.port);
        }
      } catch {
        // not a JSON log line
      }
    });
  });
  const http = `http://127.0.0.1:${port}`;
  return {
    port,
    http,
    log,
    dir,
    /** Calls the HTTP API with the key; returns { status, body }. */
    async api(method, path, body) {
      const response = await fetch(`${http}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
    },
    async stop({ keep = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy to `target`. `cut()` destroys every open connection (a network drop: no close frame);
 * `block(true)` refuses new ones until `block(false)`.
 */
export async function startProxy(targetPort) {
  const sockets = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    cut() {
      for (const s of sockets) s.destroy();
    },
    block(on) {
      blocked = on;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Waits until `check()` returns a truthy value (polled every 20 ms), or fails after `timeoutMs`. */
export async function until(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
