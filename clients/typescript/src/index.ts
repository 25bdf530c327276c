/**
 * Skirmish client SDK: connect to a room with the `ws_url` of a matchmaker's answer, play, chat,
 * resume after drops. The wire format is PROTOCOL.md's protocol v1.
 */
export * from "./codec.js";
export * from "./close.js";
export * from "./client.js";
export * from "./interpolation.js";
