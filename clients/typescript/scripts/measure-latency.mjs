// Input-ack latency and RTT as the SDK measures them, against a fresh release server on 127.0.0.1:
// 100 inputs at 10 Hz and pings at 10 Hz for about 10 s. Run `npm run build` first.
import WebSocket from "ws";
import { connect } from "../dist/index.js";
import { startServer } from "../test/harness.mjs";
const server = await startServer();
try {
  const { body } = await server.api("POST", "/v1/matchmake", { mode: "arena", player_id: "m" });
  const c = await connect(body.ws_url, { WebSocket, pingIntervalMs: 100 });
  const acks = [], rtts = [];
  c.on("ack", (a) => acks.push(a.latency_ms));
  c.on("pong", (p) => rtts.push(p.rtt_ms));
  for (let i = 0; i < 100; i++) {
    const a = (i * 0.7) % (2 * Math.PI);
    c.sendInput({ dx: Math.cos(a), dy: Math.sin(a) });
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 7));
  }
  const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(1);
  console.log(`acks n=${acks.length} p50=${pct(acks, 0.5)} p99=${pct(acks, 0.99)} max=${pct(acks, 1)} ms`);
  console.log(`rtt n=${rtts.length} p50=${pct(rtts, 0.5)} p99=${pct(rtts, 0.99)} ms`);
  c.leave();
} finally {
  await server.stop();
}
