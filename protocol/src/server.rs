//! Server to client messages: encoding once into `Bytes` (server side), the typed owned form and its
//! decoder (clients, bots, tests).

use bytes::Bytes;
use game_core::RankedResult;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::wire::{self, clip, put_array_len, put_map_len, put_serde, put_str, put_uint};
use crate::{ErrorCode, ProtocolError};

/// One player of an arena STATE: `[player_id, x, y, score, last_seq]`.
pub type PlayerRow = (String, f32, f32, u32, u32);
/// One pickup of an arena STATE: `[id, x, y]`.
pub type PickupRow = (u32, f32, f32);
/// One line of `match_over` results: `[player_id, score, rank]`.
pub type ResultRow = (String, u32, u32);

/// The arena's STATE as a client owns it. Encodes to the same bytes as game-core's `ArenaView`:
/// `{"players":[[id,x,y,score,last_seq],…],"pickups":[[id,x,y],…],"remaining_ms":u64}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArenaState {
    pub players: Vec<PlayerRow>,
    pub pickups: Vec<PickupRow>,
    pub remaining_ms: u64,
}

/// The payload of `{"t":"event",...}`, told apart by `"kind"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `{"t":"event","kind":"player_joined","player_id":str}`
    PlayerJoined { player_id: String },
    /// `{"t":"event","kind":"player_left","player_id":str}`
    PlayerLeft { player_id: String },
    /// `{"t":"event","kind":"match_over","results":[[player_id, score, rank], …]}`, best first.
    MatchOver { results: Vec<ResultRow> },
}

/// Every server message, owned. `S` is the game's STATE ([`ArenaState`] for the arena).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<S = ArenaState> {
    /// First message of a session; its state already contains the joining player.
    Welcome {
        room_id: String,
        player_id: String,
        tick: u64,
        tick_rate: u32,
        resume_token: String,
        state: S,
    },
    /// The room's state after a tick.
    State {
        tick: u64,
        state: S,
    },
    Event(Event),
    Chat {
        from: String,
        text: String,
    },
    Pong {
        id: u32,
        server_time_ms: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl<S: Serialize> ServerMessage<S> {
    /// Encodes the message: the same bytes as the matching `encode_*` function.
    pub fn encode(&self) -> Bytes {
        match self {
            Self::Welcome {
                room_id,
                player_id,
                tick,
                tick_rate,
                resume_token,
                state,
            } => encode_welcome(room_id, player_id, *tick, *tick_rate, resume_token, state),
            Self::State { tick, state } => StateEncoder::new().encode(*tick, state),
            Self::Event(Event::PlayerJoined { player_id }) => encode_player_joined(player_id),
            Self::Event(Event::PlayerLeft { player_id }) => encode_player_left(player_id),
            Self::Event(Event::MatchOver { results }) => match_over(
                results
                    .iter()
                    .map(|(id, score, rank)| (id.as_str(), *score, *rank)),
                results.len(),
            ),
            Self::Chat { from, text } => encode_chat(from, text),
            Self::Pong { id, server_time_ms } => encode_pong(*id, *server_time_ms),
            Self::Error { code, message } => encode_error(*code, message),
        }
    }
}

impl<S> ServerMessage<S> {
    /// The wire name of the message (its `"t"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::State { .. } => "state",
            Self::Event(_) => "event",
            Self::Chat { .. } => "chat",
            Self::Pong { .. } => "pong",
            Self::Error { .. } => "error",
        }
    }
}

fn header(capacity: usize, entries: u32, t: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity);
    put_map_len(&mut buf, entries);
    put_str(&mut buf, "t");
    put_str(&mut buf, t);
    buf
}

/// `{"t":"welcome","room_id","player_id","tick","tick_rate","resume_token","state"}`.
pub fn encode_welcome<S: Serialize + ?Sized>(
    room_id: &str,
    player_id: &str,
    tick: u64,
    tick_rate: u32,
    resume_token: &str,
    state: &S,
) -> Bytes {
    let mut buf = header(256, 7, "welcome");
    put_str(&mut buf, "room_id");
    put_str(&mut buf, room_id);
    put_str(&mut buf, "player_id");
    put_str(&mut buf, player_id);
    put_str(&mut buf, "tick");
    put_uint(&mut buf, tick);
    put_str(&mut buf, "tick_rate");
    put_uint(&mut buf, u64::from(tick_rate));
    put_str(&mut buf, "resume_token");
    put_str(&mut buf, resume_token);
    put_str(&mut buf, "state");
    put_serde(&mut buf, state);
    Bytes::from(buf)
}

/// `{"t":"pong","id":u32,"server_time_ms":u64}`.
pub fn encode_pong(id: u32, server_time_ms: u64) -> Bytes {
    let mut buf = header(40, 3, "pong");
    put_str(&mut buf, "id");
    put_uint(&mut buf, u64::from(id));
    put_str(&mut buf, "server_time_ms");
    put_uint(&mut buf, server_time_ms);
    Bytes::from(buf)
}

/// `{"t":"chat","from":str,"text":str}`.
pub fn encode_chat(from: &str, text: &str) -> Bytes {
    let mut buf = header(24 + from.len() + text.len(), 3, "chat");
    put_str(&mut buf, "from");
    put_str(&mut buf, from);
    put_str(&mut buf, "text");
    put_str(&mut buf, text);
    Bytes::from(buf)
}

fn player_event(kind: &str, player_id: &str) -> Bytes {
    let mut buf = header(40 + player_id.len(), 3, "event");
    put_str(&mut buf, "kind");
    put_str(&mut buf, kind);
    put_str(&mut buf, "player_id");
    put_str(&mut buf, player_id);
    Bytes::from(buf)
}

/// `{"t":"event","kind":"player_joined","player_id":str}`.
pub fn encode_player_joined(player_id: &str) -> Bytes {
    player_event("player_joined", player_id)
}

/// `{"t":"event","kind":"player_left","player_id":str}`.
pub fn encode_player_left(player_id: &str) -> Bytes {
    player_event("player_left", player_id)
}

/// `{"t":"event","kind":"match_over","results":[[player_id, score, rank], …]}`, in the given order
/// (best first, as `rank_by_score` returns them).
pub fn encode_match_over(results: &[RankedResult]) -> Bytes {
    match_over(
        results
            .iter()
            .map(|r| (r.player_id.as_str(), r.score, r.rank)),
        results.len(),
    )
}

fn match_over<'a>(rows: impl Iterator<Item = (&'a str, u32, u32)>, len: usize) -> Bytes {
    let mut buf = header(48 + len * 24, 3, "event");
    put_str(&mut buf, "kind");
    put_str(&mut buf, "match_over");
    put_str(&mut buf, "results");
    put_array_len(&mut buf, len);
    for (player_id, score, rank) in rows {
        put_array_len(&mut buf, 3);
        put_str(&mut buf, player_id);
        put_uint(&mut buf, u64::from(score));
        put_uint(&mut buf, u64::from(rank));
    }
    Bytes::from(buf)
}

/// `{"t":"error","code":str,"message":str}`.
pub fn encode_error(code: ErrorCode, message: &str) -> Bytes {
    let mut buf = header(40 + message.len(), 3, "error");
    put_str(&mut buf, "code");
    put_str(&mut buf, code.as_str());
    put_str(&mut buf, "message");
    put_str(&mut buf, message);
    Bytes::from(buf)
}

/// Encodes the per-tick `{"t":"state","tick":u64,"state":STATE}` into buffers it keeps, however many
/// players the state holds. Keep one per room.
///
/// The output `Bytes` is split off a `BytesMut` the encoder owns: cloning it for every session does
/// not allocate, and once the sessions have written and dropped the previous tick's frame, the next
/// tick reuses the same memory. A tick allocates only while an older frame is still held somewhere
/// (a slow client's queue).
#[derive(Debug, Default)]
pub struct StateEncoder {
    buf: Vec<u8>,
    out: bytes::BytesMut,
}

impl StateEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn encode<S: Serialize + ?Sized>(&mut self, tick: u64, state: &S) -> Bytes {
        let buf = &mut self.buf;
        buf.clear();
        put_map_len(buf, 3);
        put_str(buf, "t");
        put_str(buf, "state");
        put_str(buf, "tick");
        put_uint(buf, tick);
        put_str(buf, "state");
        put_serde(buf, state);
        // `reserve` reclaims the previous frame's memory when no one holds it any more.
        self.out.reserve(buf.len());
        self.out.extend_from_slice(buf);
        self.out.split().freeze()
    }
}

const KEYS: [&str; 15] = [
    "t",
    "room_id",
    "player_id",
    "tick",
    "tick_rate",
    "resume_token",
    "state",
    "kind",
    "results",
    "from",
    "text",
    "id",
    "server_time_ms",
    "code",
    "message",
];

struct Fields<'a>([Option<&'a [u8]>; KEYS.len()]);

impl<'a> Fields<'a> {
    fn get(&self, key: &'static str) -> Result<&'a [u8], ProtocolError> {
        KEYS.iter()
            .position(|k| *k == key)
            .and_then(|i| self.0[i])
            .ok_or_else(|| ProtocolError::MissingField(key.to_owned()))
    }

    fn string(&self, key: &'static str) -> Result<String, ProtocolError> {
        Ok(wire::read_str(self.get(key)?, key)?.to_owned())
    }

    fn u64(&self, key: &'static str) -> Result<u64, ProtocolError> {
        wire::read_u64(self.get(key)?, key)
    }

    fn u32(&self, key: &'static str) -> Result<u32, ProtocolError> {
        wire::read_u32(self.get(key)?, key)
    }
}

/// Decodes a server frame of the arena game (clients, bots and tests).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage<ArenaState>, ProtocolError> {
    decode_server_as(frame)
}

/// Decodes a server frame whose STATE is `S`. Keys may come in any order; unknown keys are ignored.
pub fn decode_server_as<S: DeserializeOwned>(
    frame: &[u8],
) -> Result<ServerMessage<S>, ProtocolError> {
    let mut fields = Fields([None; KEYS.len()]);
    wire::envelope(frame, &KEYS, &mut fields.0)?;
    let t = wire::read_str(fields.get("t")?, "t")?;
    Ok(match t {
        "welcome" => ServerMessage::Welcome {
            room_id: fields.string("room_id")?,
            player_id: fields.string("player_id")?,
            tick: fields.u64("tick")?,
            tick_rate: fields.u32("tick_rate")?,
            resume_token: fields.string("resume_token")?,
            state: wire::read_serde(fields.get("state")?, "state")?,
        },
        "state" => ServerMessage::State {
            tick: fields.u64("tick")?,
            state: wire::read_serde(fields.get("state")?, "state")?,
        },
        "event" => {
            let kind = wire::read_str(fields.get("kind")?, "kind")?;
            ServerMessage::Event(match kind {
                "player_joined" => Event::PlayerJoined {
                    player_id: fields.string("player_id")?,
                },
                "player_left" => Event::PlayerLeft {
                    player_id: fields.string("player_id")?,
                },
                "match_over" => Event::MatchOver {
                    results: wire::read_serde(fields.get("results")?, "results")?,
                },
                other => {
                    return Err(ProtocolError::UnknownType(format!("event/{}", clip(other))));
                }
            })
        }
        "chat" => ServerMessage::Chat {
            from: fields.string("from")?,
            text: fields.string("text")?,
        },
        "pong" => ServerMessage::Pong {
            id: fields.u32("id")?,
            server_time_ms: fields.u64("server_time_ms")?,
        },
        "error" => {
            let code = wire::read_str(fields.get("code")?, "code")?;
            ServerMessage::Error {
                code: ErrorCode::parse(code).ok_or_else(|| {
                    ProtocolError::InvalidValue(format!("unknown error code {:?}", clip(code)))
                })?,
                message: fields.string("message")?,
            }
        }
        other => return Err(ProtocolError::UnknownType(clip(other))),
    })
}
