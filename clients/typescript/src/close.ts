/** Close codes of PROTOCOL.md section 6 as typed reasons, with what a client should do. */

export type CloseKind =
  | "normal" // 1000: after leave
  | "going_away" // 1001: server shutdown or restart; resume
  | "abnormal" // 1006 (or no close frame): the connection dropped; resume
  | "text_frame" // 1003: the client sent text; fix the client
  | "policy" // 1008: bad ticket or token, or too many invalid frames
  | "too_big" // 1009: a frame over the size limit
  | "room_closed" // 4001: match over or room closed over HTTP; matchmake again
  | "too_slow" // 4002: did not read in time; resume and read faster
  | "replaced" // 4003: a newer connection of the same player took over
  | "silent" // 4004: no frame for the heartbeat timeout; resume
  | "room_moved" // 4005: the room moved to another node; locate it, then resume there
  | "resume_refused" // the SDK could not take the slot back (grace over, token refused, room gone)
  | "closed_by_client" // this client called close() or leave()
  | "unknown";

export interface CloseReason {
  code: number;
  kind: CloseKind;
  /** The close frame's reason text, if any. */
  reason: string;
  /** Whether the slot may still be taken back with the resume token. */
  resumable: boolean;
}

const KINDS: Record<number, CloseKind> = {
  1000: "normal",
  1001: "going_away",
  1003: "text_frame",
  1005: "abnormal",
  1006: "abnormal",
  1008: "policy",
  1009: "too_big",
  4001: "room_closed",
  4002: "too_slow",
  4003: "replaced",
  4004: "silent",
  4005: "room_moved",
};

/**
 * Which ends are final. 1000 (left), 4001 (room gone), 1008 (bad credentials or abuse) and 4003
 * (another connection holds the slot) are final by the protocol; 1003 and 1009 are client bugs that a
 * resume would only repeat. Every other end is a drop that the resume token can recover.
 */
const FINAL = new Set([1000, 1003, 1008, 1009, 4001, 4003]);

export function closeReason(code: number, reason = ""): CloseReason {
  return { code, kind: KINDS[code] ?? "unknown", reason, resumable: !FINAL.has(code) };
}
