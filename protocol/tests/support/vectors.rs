//! The test vectors: one per example message of `PROTOCOL.md`. Shared by the `write_vectors` example,
//! which writes `protocol/vectors/`, and the `vectors` test, which checks the committed files.

use std::fmt::Write as _;

use bytes::Bytes;
use game_core::Seq;
use game_core::arena::RawDirection;
use protocol::{
    ArenaState, ChatText, ClientMessage, ErrorCode, Event, ServerMessage, encode_client,
};

/// What a vector holds.
pub enum Message {
    /// A valid client frame and the message it decodes to.
    Client(ClientMessage<RawDirection>),
    /// A client frame the server must refuse, with the error code it answers with.
    InvalidClient(Vec<u8>, ErrorCode),
    /// A server frame; decoding and re-encoding it gives the same bytes.
    Server(ServerMessage<ArenaState>),
}

pub struct Vector {
    pub name: &'static str,
    pub description: &'static str,
    pub message: Message,
}

impl Vector {
    pub fn bytes(&self) -> Bytes {
        match &self.message {
            Message::Client(m) => encode_client(m),
            Message::InvalidClient(bytes, _) => Bytes::from(bytes.clone()),
            Message::Server(m) => m.encode(),
        }
    }

    pub fn direction(&self) -> &'static str {
        match self.message {
            Message::Server(_) => "server_to_client",
            _ => "client_to_server",
        }
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        match self.message {
            Message::InvalidClient(_, code) => Some(code),
            _ => None,
        }
    }
}

fn named(value: &impl serde::Serialize) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap_or_else(|e| unreachable!("plain data encodes: {e}"))
}

fn chat(text: &str) -> ChatText {
    ChatText::new(text.to_owned()).unwrap_or_else(|e| unreachable!("valid chat: {e}"))
}

pub fn all() -> Vec<Vector> {
    #[derive(serde::Serialize)]
    struct Typed {
        t: &'static str,
    }
    #[derive(serde::Serialize)]
    struct NoSeq {
        t: &'static str,
        input: RawDirection,
    }
    let state = ArenaState {
        players: vec![
            ("ana".into(), 120.5, 80.25, 3, 57),
            ("bo_2".into(), 640.0, 999.75, 0, 12),
        ],
        pickups: vec![(17, 500.0, 250.5), (18, 33.125, 900.0)],
        remaining_ms: 239_950,
    };
    let joined = ArenaState {
        players: vec![("ana".into(), 120.5, 80.25, 0, 0)],
        pickups: vec![(0, 500.0, 250.5)],
        remaining_ms: 300_000,
    };
    vec![
        Vector {
            name: "client_input",
            description: "input: seq 42, direction (0.5, -0.75)",
            message: Message::Client(ClientMessage::Input {
                seq: Seq(42),
                input: RawDirection { dx: 0.5, dy: -0.75 },
            }),
        },
        Vector {
            name: "client_ping",
            description: "ping with id 7",
            message: Message::Client(ClientMessage::Ping { id: 7 }),
        },
        Vector {
            name: "client_chat",
            description: "chat text with a non-ASCII character (UTF-8)",
            message: Message::Client(ClientMessage::Chat {
                text: chat("gg, well played é"),
            }),
        },
        Vector {
            name: "client_leave",
            description: "leave the room",
            message: Message::Client(ClientMessage::Leave),
        },
        Vector {
            name: "client_invalid_nan_input",
            description: "refused: dx is a float32 NaN (invalid_value)",
            message: Message::InvalidClient(
                encode_client(&ClientMessage::Input {
                    seq: Seq(1),
                    input: RawDirection {
                        dx: f32::NAN,
                        dy: 0.0,
                    },
                })
                .to_vec(),
                ErrorCode::InvalidValue,
            ),
        },
        Vector {
            name: "client_invalid_unknown_type",
            description: "refused: no message is called \"jump\" (unknown_type)",
            message: Message::InvalidClient(named(&Typed { t: "jump" }), ErrorCode::UnknownType),
        },
        Vector {
            name: "client_invalid_missing_seq",
            description: "refused: an input without seq (invalid_field)",
            message: Message::InvalidClient(
                named(&NoSeq {
                    t: "input",
                    input: RawDirection { dx: 1.0, dy: 0.0 },
                }),
                ErrorCode::InvalidField,
            ),
        },
        Vector {
            name: "client_invalid_not_a_map",
            description: "refused: the frame is an array, not a map (malformed)",
            message: Message::InvalidClient(named(&("t", "ping")), ErrorCode::Malformed),
        },
        Vector {
            name: "server_welcome",
            description: "welcome to room r-1f3a as ana, at tick 0, 20 ticks/s",
            message: Message::Server(ServerMessage::Welcome {
                room_id: "r-1f3a".into(),
                player_id: "ana".into(),
                tick: 0,
                tick_rate: 20,
                resume_token: "rt.abc123".into(),
                state: joined,
            }),
        },
        Vector {
            name: "server_state",
            description: "arena state at tick 1201: two players, two pickups",
            message: Message::Server(ServerMessage::State { tick: 1201, state }),
        },
        Vector {
            name: "server_event_player_joined",
            description: "bo_2 joined",
            message: Message::Server(ServerMessage::Event(Event::PlayerJoined {
                player_id: "bo_2".into(),
            })),
        },
        Vector {
            name: "server_event_player_left",
            description: "bo_2 left (or their resume grace ran out)",
            message: Message::Server(ServerMessage::Event(Event::PlayerLeft {
                player_id: "bo_2".into(),
            })),
        },
        Vector {
            name: "server_event_match_over",
            description: "match over: two players tie for rank 1, the next is rank 3",
            message: Message::Server(ServerMessage::Event(Event::MatchOver {
                results: vec![
                    ("ana".into(), 12, 1),
                    ("bo_2".into(), 12, 1),
                    ("cy".into(), 3, 3),
                ],
            })),
        },
        Vector {
            name: "server_chat",
            description: "chat from ana, broadcast to the room",
            message: Message::Server(ServerMessage::Chat {
                from: "ana".into(),
                text: "gg".into(),
            }),
        },
        Vector {
            name: "server_pong",
            description: "pong for ping 7; server time in ms since the Unix epoch",
            message: Message::Server(ServerMessage::Pong {
                id: 7,
                server_time_ms: 1_764_408_600_000,
            }),
        },
        Vector {
            name: "server_error",
            description: "error answering an invalid frame",
            message: Message::Server(ServerMessage::Error {
                code: ErrorCode::InvalidValue,
                message: "chat text must not be empty".into(),
            }),
        },
    ]
}

/// Lowercase hex, bytes separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A JSON-like reading of one MessagePack value that keeps map order and marks float widths
/// (`1.5f32`) where a client must pick the right one; NaN reads as `NaN`.
pub fn reading(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    read_value(bytes, &mut pos, &mut out);
    out
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> &'a [u8] {
    let s = &bytes[*pos..*pos + n];
    *pos += n;
    s
}

fn be(bytes: &[u8], pos: &mut usize, n: usize) -> u64 {
    take(bytes, pos, n)
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

fn read_value(bytes: &[u8], pos: &mut usize, out: &mut String) {
    let marker = take(bytes, pos, 1)[0];
    let (str_len, arr_len, map_len) = match marker {
        0x00..=0x7f => return write!(out, "{marker}").unwrap_or(()),
        0xe0..=0xff => return write!(out, "{}", marker as i8).unwrap_or(()),
        0xc0 => return out.push_str("null"),
        0xc2 => return out.push_str("false"),
        0xc3 => return out.push_str("true"),
        0xca => {
            let v = f32::from_bits(be(bytes, pos, 4) as u32);
            return write!(out, "{v:?}f32").unwrap_or(());
        }
        0xcb => {
            let v = f64::from_bits(be(bytes, pos, 8));
            return write!(out, "{v:?}f64").unwrap_or(());
        }
        0xcc => return write!(out, "{}", be(bytes, pos, 1)).unwrap_or(()),
        0xcd => return write!(out, "{}", be(bytes, pos, 2)).unwrap_or(()),
        0xce => return write!(out, "{}", be(bytes, pos, 4)).unwrap_or(()),
        0xcf => return write!(out, "{}", be(bytes, pos, 8)).unwrap_or(()),
        0xa0..=0xbf => (Some(usize::from(marker & 0x1f)), None, None),
        0xd9 => (Some(be(bytes, pos, 1) as usize), None, None),
        0xda => (Some(be(bytes, pos, 2) as usize), None, None),
        0x90..=0x9f => (None, Some(usize::from(marker & 0x0f)), None),
        0xdc => (None, Some(be(bytes, pos, 2) as usize), None),
        0x80..=0x8f => (None, None, Some(usize::from(marker & 0x0f))),
        0xde => (None, None, Some(be(bytes, pos, 2) as usize)),
        other => unreachable!("the vectors use no marker {other:#04x}"),
    };
    if let Some(len) = str_len {
        let s = std::str::from_utf8(take(bytes, pos, len)).unwrap_or("<not UTF-8>");
        let _ = write!(out, "{s:?}");
    } else if let Some(len) = arr_len {
        out.push('[');
        for i in 0..len {
            if i > 0 {
                out.push(',');
            }
            read_value(bytes, pos, out);
        }
        out.push(']');
    } else if let Some(len) = map_len {
        out.push('{');
        for i in 0..len {
            if i > 0 {
                out.push(',');
            }
            read_value(bytes, pos, out);
            out.push(':');
            read_value(bytes, pos, out);
        }
        out.push('}');
    }
}
