//! Behaviour of the codec on hand-written frames: every message, every error category.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use game_core::arena::{Arena, Direction, RawDirection};
use game_core::{PlayerId, RankedResult, Seq};
use protocol::*;

fn decode(frame: &[u8]) -> Result<ClientMessage<Direction>, ProtocolError> {
    decode_client::<Arena>(frame, MAX_CLIENT_FRAME_BYTES)
}

/// Builds a frame from (key, msgpack-encodable value) pairs through rmp-serde's named encoding.
fn frame(value: &impl serde::Serialize) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

#[derive(serde::Serialize)]
struct InputMsg<T> {
    t: &'static str,
    seq: u32,
    input: T,
}

#[test]
fn decodes_every_client_message() {
    let input = encode_client(&ClientMessage::Input {
        seq: Seq(7),
        input: RawDirection { dx: 0.5, dy: -0.5 },
    });
    assert_eq!(
        decode(&input).unwrap(),
        ClientMessage::Input {
            seq: Seq(7),
            input: Direction::new(0.5, -0.5).unwrap()
        }
    );
    let ping = encode_client::<RawDirection>(&ClientMessage::Ping { id: 99 });
    assert_eq!(decode(&ping).unwrap(), ClientMessage::Ping { id: 99 });
    let text = ChatText::new("hi".into()).unwrap();
    let chat = encode_client::<RawDirection>(&ClientMessage::Chat { text: text.clone() });
    assert_eq!(decode(&chat).unwrap(), ClientMessage::Chat { text });
    let leave = encode_client::<RawDirection>(&ClientMessage::Leave);
    assert_eq!(decode(&leave).unwrap(), ClientMessage::Leave);
}

#[test]
fn keys_may_come_in_any_order_and_unknown_keys_are_ignored() {
    #[derive(serde::Serialize)]
    struct Odd {
        extra: Vec<u8>,
        input: RawDirection,
        seq: u32,
        t: &'static str,
    }
    let f = frame(&Odd {
        extra: vec![1, 2],
        input: RawDirection { dx: 1.0, dy: 0.0 },
        seq: 3,
        t: "input",
    });
    assert!(matches!(
        decode(&f),
        Ok(ClientMessage::Input { seq: Seq(3), .. })
    ));
}

#[test]
fn dx_dy_accept_any_number() {
    #[derive(serde::Serialize)]
    struct D<T> {
        dx: T,
        dy: T,
    }
    for f in [
        frame(&InputMsg {
            t: "input",
            seq: 1,
            input: D {
                dx: 1i64,
                dy: -1i64,
            },
        }),
        frame(&InputMsg {
            t: "input",
            seq: 1,
            input: D {
                dx: 0.25f64,
                dy: 0.5f64,
            },
        }),
        frame(&InputMsg {
            t: "input",
            seq: 1,
            input: D {
                dx: 300u64,
                dy: 0u64,
            },
        }),
    ] {
        assert!(
            matches!(decode(&f), Ok(ClientMessage::Input { .. })),
            "{f:x?}"
        );
    }
}

#[test]
fn non_finite_directions_are_invalid_values() {
    for (dx, dy) in [
        (f32::NAN, 0.0),
        (0.0, f32::INFINITY),
        (f32::NEG_INFINITY, 1.0),
    ] {
        let f = encode_client(&ClientMessage::Input {
            seq: Seq(1),
            input: RawDirection { dx, dy },
        });
        let err = decode(&f).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidValue, "{err}");
    }
    // A finite f64 beyond f32's range becomes infinite and is refused too.
    #[derive(serde::Serialize)]
    struct D {
        dx: f64,
        dy: f64,
    }
    let f = frame(&InputMsg {
        t: "input",
        seq: 1,
        input: D { dx: 1e300, dy: 0.0 },
    });
    assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidValue);
}

#[test]
fn every_error_category_is_reported() {
    assert_eq!(
        decode_client::<Arena>(&[0x80; 10], 4).unwrap_err(),
        ProtocolError::TooBig { size: 10, limit: 4 }
    );
    let cases: Vec<(Vec<u8>, ErrorCode, &str)> = vec![
        (vec![], ErrorCode::Malformed, "ends"),
        (vec![0xc1], ErrorCode::Malformed, "0xc1"),
        (frame(&[1, 2]), ErrorCode::Malformed, "must be a map"),
        (
            {
                let mut f = frame(&InputMsg {
                    t: "ping",
                    seq: 1,
                    input: 1,
                });
                f.push(0);
                f
            },
            ErrorCode::Malformed,
            "trailing",
        ),
        (
            vec![0x81, 0x01, 0x02],
            ErrorCode::Malformed,
            "keys must be strings",
        ),
        (
            frame(&std::collections::BTreeMap::from([("t", "jump")])),
            ErrorCode::UnknownType,
            "jump",
        ),
        (
            frame(&std::collections::BTreeMap::from([("x", "ping")])),
            ErrorCode::InvalidField,
            "\"t\"",
        ),
        (
            frame(&std::collections::BTreeMap::from([("t", 5)])),
            ErrorCode::InvalidField,
            "string",
        ),
        (
            frame(&std::collections::BTreeMap::from([("t", "ping")])),
            ErrorCode::InvalidField,
            "\"id\"",
        ),
        (
            frame(&InputMsg {
                t: "input",
                seq: 1,
                input: "up",
            }),
            ErrorCode::InvalidField,
            "invalid type",
        ),
        (
            frame(&InputMsg {
                t: "input",
                seq: 1,
                input: std::collections::BTreeMap::from([("dx", 1.0)]),
            }),
            ErrorCode::InvalidField,
            "input.dy",
        ),
        (
            frame(&(
                ("t", "input"),
                ("seq", -1),
                ("input", RawDirection { dx: 0.0, dy: 0.0 }),
            )),
            ErrorCode::Malformed,
            "must be a map",
        ),
    ];
    for (f, code, needle) in cases {
        let err = decode(&f).unwrap_err();
        assert_eq!(err.code(), code, "{f:x?}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{f:x?}: {err} lacks {needle:?}"
        );
    }
}

#[test]
fn out_of_range_seq_and_id_are_invalid_values() {
    #[derive(serde::Serialize)]
    struct Ping<T> {
        t: &'static str,
        id: T,
    }
    for f in [
        frame(&Ping {
            t: "ping",
            id: -1i64,
        }),
        frame(&Ping {
            t: "ping",
            id: 1u64 << 32,
        }),
    ] {
        assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidValue);
    }
    let f = frame(&Ping { t: "ping", id: 1.5 });
    assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidField);
    let f = frame(&Ping {
        t: "ping",
        id: u32::MAX,
    });
    assert_eq!(decode(&f).unwrap(), ClientMessage::Ping { id: u32::MAX });
}

#[test]
fn chat_text_is_length_checked_in_characters() {
    assert!(ChatText::new(String::new()).is_err());
    assert!(ChatText::new("é".repeat(200)).is_ok()); // 400 bytes, 200 characters
    assert!(ChatText::new("a".repeat(201)).is_err());
    #[derive(serde::Serialize)]
    struct Chat {
        t: &'static str,
        text: String,
    }
    let f = frame(&Chat {
        t: "chat",
        text: "a".repeat(201),
    });
    assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidValue);
    let f = frame(&Chat {
        t: "chat",
        text: String::new(),
    });
    assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidValue);
}

#[test]
fn duplicate_keys_are_refused() {
    let f = [
        0x82, 0xa1, b't', 0xa5, b'l', b'e', b'a', b'v', b'e', 0xa1, b't', 0xa5, b'l', b'e', b'a',
        b'v', b'e',
    ];
    assert_eq!(decode(&f).unwrap_err().code(), ErrorCode::InvalidValue);
}

#[test]
fn error_codes_have_their_wire_strings() {
    let strings: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        strings,
        [
            "too_big",
            "malformed",
            "unknown_type",
            "invalid_field",
            "invalid_value",
            "rate_limited",
            "not_allowed",
            "internal"
        ]
    );
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
    }
}

#[test]
fn server_messages_round_trip_and_put_t_first() {
    let state = ArenaState {
        players: vec![("ana".into(), 1.5, 2.5, 3, 4)],
        pickups: vec![(9, 10.0, 11.0)],
        remaining_ms: 1000,
    };
    let messages = vec![
        ServerMessage::Welcome {
            room_id: "r1".into(),
            player_id: "ana".into(),
            tick: 5,
            tick_rate: 20,
            resume_token: "tok".into(),
            state: state.clone(),
        },
        ServerMessage::State {
            tick: 1 << 40,
            state,
        },
        ServerMessage::Event(Event::PlayerJoined {
            player_id: "ana".into(),
        }),
        ServerMessage::Event(Event::PlayerLeft {
            player_id: "ana".into(),
        }),
        ServerMessage::Event(Event::MatchOver {
            results: vec![("ana".into(), 3, 1), ("bo".into(), 3, 1)],
        }),
        ServerMessage::Chat {
            from: "ana".into(),
            text: "gg".into(),
        },
        ServerMessage::Pong {
            id: 1,
            server_time_ms: 1_700_000_000_000,
        },
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        },
    ];
    for message in messages {
        let bytes = message.encode();
        assert_eq!(&bytes[..3], &[bytes[0], 0xa1, b't'], "{message:?}");
        assert_eq!(decode_server(&bytes).unwrap(), message);
    }
}

#[test]
fn arena_view_encodes_like_arena_state() {
    use game_core::Game;
    let mut arena = Arena::new(Default::default(), 3);
    arena.join(PlayerId::parse("ana").unwrap()).unwrap();
    arena.step(&mut Vec::new());
    let bytes = StateEncoder::new().encode(arena.tick(), &arena.view());
    let ServerMessage::State { tick, state } = decode_server(&bytes).unwrap() else {
        panic!("not a state")
    };
    assert_eq!(tick, 1);
    assert_eq!(state.players.len(), 1);
    assert_eq!(state.players[0].0, "ana");
    assert_eq!(state.remaining_ms, arena.remaining_ms());
    assert_eq!(ServerMessage::State { tick, state }.encode(), bytes);
}

#[test]
fn helper_encoders_match_the_typed_messages() {
    let results = vec![RankedResult {
        player_id: PlayerId::parse("ana").unwrap(),
        score: 2,
        rank: 1,
    }];
    assert_eq!(
        encode_match_over(&results),
        ServerMessage::<ArenaState>::Event(Event::MatchOver {
            results: vec![("ana".into(), 2, 1)]
        })
        .encode()
    );
    let welcome = encode_welcome("r", "p", 0, 20, "tok", &ArenaState::default());
    assert!(matches!(
        decode_server(&welcome).unwrap(),
        ServerMessage::Welcome { tick_rate: 20, .. }
    ));
}
