//! Property tests: round trips of every message, and a decoder that never panics, always answers
//! with an error for garbage, and is bounded in time and memory for anything up to the size limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use game_core::Seq;
use game_core::arena::{Arena, Direction, RawDirection};
use proptest::prelude::*;
use protocol::*;

fn decode(frame: &[u8]) -> Result<ClientMessage<Direction>, ProtocolError> {
    decode_client::<Arena>(frame, MAX_CLIENT_FRAME_BYTES)
}

fn finite() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("finite", |f| f.is_finite()),
        -2.0f32..2.0,
        Just(0.0),
        Just(-0.0),
    ]
}

fn chat_text() -> impl Strategy<Value = ChatText> {
    prop::collection::vec(any::<char>(), 1..=MAX_CHAT_CHARS)
        .prop_map(|chars| ChatText::new(chars.into_iter().collect()).unwrap())
}

fn client_message() -> impl Strategy<Value = ClientMessage<RawDirection>> {
    prop_oneof![
        (any::<u32>(), finite(), finite()).prop_map(|(seq, dx, dy)| ClientMessage::Input {
            seq: Seq(seq),
            input: RawDirection { dx, dy }
        }),
        any::<u32>().prop_map(|id| ClientMessage::Ping { id }),
        chat_text().prop_map(|text| ClientMessage::Chat { text }),
        Just(ClientMessage::Leave),
    ]
}

fn arena_state() -> impl Strategy<Value = ArenaState> {
    (
        prop::collection::vec(
            (".{0,70}", finite(), finite(), any::<u32>(), any::<u32>()),
            0..40,
        ),
        prop::collection::vec((any::<u32>(), finite(), finite()), 0..40),
        any::<u64>(),
    )
        .prop_map(|(players, pickups, remaining_ms)| ArenaState {
            players,
            pickups,
            remaining_ms,
        })
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (".*", ".*", any::<u64>(), any::<u32>(), ".*", arena_state()).prop_map(
            |(room_id, player_id, tick, tick_rate, resume_token, state)| ServerMessage::Welcome {
                room_id,
                player_id,
                tick,
                tick_rate,
                resume_token,
                state
            }
        ),
        (any::<u64>(), arena_state())
            .prop_map(|(tick, state)| ServerMessage::State { tick, state }),
        ".*".prop_map(|player_id| ServerMessage::Event(Event::PlayerJoined { player_id })),
        ".*".prop_map(|player_id| ServerMessage::Event(Event::PlayerLeft { player_id })),
        prop::collection::vec((".*", any::<u32>(), any::<u32>()), 0..70)
            .prop_map(|results| ServerMessage::Event(Event::MatchOver { results })),
        (".*", ".*").prop_map(|(from, text)| ServerMessage::Chat { from, text }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(id, server_time_ms)| ServerMessage::Pong { id, server_time_ms }),
        (prop::sample::select(ErrorCode::ALL.to_vec()), ".*")
            .prop_map(|(code, message)| ServerMessage::Error { code, message }),
    ]
}

/// An arbitrary MessagePack value, written by a tiny encoder independent of the crate's.
#[derive(Debug, Clone)]
enum Value {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Ext(i8, Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    fn write(&self, out: &mut Vec<u8>) {
        use rmp::encode as e;
        match self {
            Value::Nil => e::write_nil(out).unwrap(),
            Value::Bool(b) => e::write_bool(out, *b).unwrap(),
            Value::Uint(v) => drop(e::write_uint(out, *v).unwrap()),
            Value::Int(v) => drop(e::write_sint(out, *v).unwrap()),
            Value::F32(v) => e::write_f32(out, *v).unwrap(),
            Value::F64(v) => e::write_f64(out, *v).unwrap(),
            Value::Str(s) => e::write_str(out, s).unwrap(),
            Value::Bin(b) => e::write_bin(out, b).unwrap(),
            Value::Ext(ty, data) => {
                e::write_ext_meta(out, data.len() as u32, *ty).unwrap();
                out.extend_from_slice(data);
            }
            Value::Array(items) => {
                e::write_array_len(out, items.len() as u32).unwrap();
                items.iter().for_each(|v| v.write(out));
            }
            Value::Map(entries) => {
                e::write_map_len(out, entries.len() as u32).unwrap();
                for (k, v) in entries {
                    k.write(out);
                    v.write(out);
                }
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::Uint),
        any::<i64>().prop_map(Value::Int),
        (0u64..300).prop_map(Value::Uint),
        any::<f32>().prop_map(Value::F32),
        any::<f64>().prop_map(Value::F64),
        ".{0,40}".prop_map(Value::Str),
        prop::sample::select(vec![
            "t", "input", "ping", "chat", "leave", "seq", "id", "text", "dx", "dy"
        ])
        .prop_map(|s| Value::Str(s.to_owned())),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bin),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

/// A map that looks like a client message: a known or random `"t"` and known or random fields with
/// values of any type, so the decoder's field checks are exercised, not only its parser.
fn message_like() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec!["t", "seq", "input", "id", "text", "dx", "dy"])
            .prop_map(|s| Value::Str(s.to_owned())),
        scalar(),
    ];
    let t = prop_oneof![
        prop::sample::select(vec!["input", "ping", "chat", "leave"])
            .prop_map(|s| Value::Str(s.into())),
        scalar(),
    ];
    let direction = prop::collection::vec((key.clone(), value()), 0..4).prop_map(Value::Map);
    let field = prop_oneof![value(), direction];
    (t, prop::collection::vec((key, field), 0..5)).prop_map(|(t, mut fields)| {
        fields.insert(0, (Value::Str("t".into()), t));
        Value::Map(fields)
    })
}

/// What an accepted message must satisfy, whatever the bytes were.
fn check_accepted(message: &ClientMessage<Direction>) {
    match message {
        ClientMessage::Input { input, .. } => {
            assert!(input.dx().is_finite() && input.dy().is_finite());
            assert!(input.dx().hypot(input.dy()) <= 1.0);
        }
        ClientMessage::Chat { text } => {
            let chars = text.as_str().chars().count();
            assert!((1..=MAX_CHAT_CHARS).contains(&chars));
        }
        ClientMessage::Ping { .. } | ClientMessage::Leave => {}
    }
}

const DECODER_CODES: [ErrorCode; 5] = [
    ErrorCode::TooBig,
    ErrorCode::Malformed,
    ErrorCode::UnknownType,
    ErrorCode::InvalidField,
    ErrorCode::InvalidValue,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_messages_round_trip(message in client_message()) {
        let bytes = encode_client(&message);
        let decoded = decode(&bytes).unwrap();
        let expected = match message {
            ClientMessage::Input { seq, input } => ClientMessage::Input { seq, input: Direction::try_from(input).unwrap() },
            ClientMessage::Ping { id } => ClientMessage::Ping { id },
            ClientMessage::Chat { text } => ClientMessage::Chat { text },
            ClientMessage::Leave => ClientMessage::Leave,
        };
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn server_messages_round_trip(message in server_message()) {
        let bytes = message.encode();
        let decoded = decode_server(&bytes).unwrap();
        prop_assert_eq!(&decoded, &message);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..=MAX_CLIENT_FRAME_BYTES)) {
        match decode(&bytes) {
            Err(e) => prop_assert!(DECODER_CODES.contains(&e.code())),
            Ok(m) => check_accepted(&m),
        }
        let _ = decode_server(&bytes);
    }

    #[test]
    fn arbitrary_msgpack_values_never_panic(v in value()) {
        let bytes = v.bytes();
        match decode(&bytes) {
            Err(e) => prop_assert!(DECODER_CODES.contains(&e.code()), "{e}"),
            Ok(m) => check_accepted(&m),
        }
        let _ = decode_server(&bytes);
    }

    #[test]
    fn message_like_maps_never_panic(v in message_like()) {
        let bytes = v.bytes();
        match decode(&bytes) {
            Err(e) => prop_assert!(DECODER_CODES.contains(&e.code()), "{e}"),
            Ok(m) => check_accepted(&m),
        }
    }

    #[test]
    fn truncated_valid_frames_are_malformed(message in client_message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_client(&message);
        let cut = cut.index(bytes.len());
        let err = decode(&bytes[..cut]).unwrap_err();
        prop_assert_eq!(err.code(), ErrorCode::Malformed);
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_parsing(extra in 1usize..10_000) {
        let bytes = vec![0xc1; MAX_CLIENT_FRAME_BYTES + extra];
        prop_assert_eq!(decode(&bytes).unwrap_err(), ProtocolError::TooBig { size: MAX_CLIENT_FRAME_BYTES + extra, limit: MAX_CLIENT_FRAME_BYTES });
    }

    #[test]
    fn huge_length_prefixes_fail_fast(
        header in prop::sample::select(vec![0xdcu8, 0xdd, 0xde, 0xdf, 0xc6, 0xdb, 0xc9, 0xc5, 0xda]),
        len in any::<u32>(),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        nested in any::<bool>(),
    ) {
        let mut value = vec![header];
        value.extend_from_slice(&len.to_be_bytes()[if matches!(header, 0xdc | 0xde | 0xc5 | 0xda) { 2 } else { 0 }..]);
        value.extend_from_slice(&tail);
        let frame = if nested {
            // {"t":"input","seq":1,"input":<value>}
            let mut f = vec![0x83, 0xa1, b't', 0xa5, b'i', b'n', b'p', b'u', b't', 0xa3, b's', b'e', b'q', 0x01, 0xa5, b'i', b'n', b'p', b'u', b't'];
            f.extend_from_slice(&value);
            f
        } else {
            value
        };
        let started = Instant::now();
        let result = decode(&frame);
        prop_assert!(started.elapsed() < Duration::from_millis(50));
        if let Ok(m) = result { check_accepted(&m) }
    }
}

/// Four-billion-element claims at every level: refused at once, without reserving memory (the
/// allocation side is measured in `tests/alloc.rs`).
#[test]
fn four_billion_element_claims_error_quickly() {
    let prefix = [0xffu8, 0xff, 0xff, 0xff];
    let mut frames = Vec::new();
    for marker in [0xdd, 0xdf, 0xdb, 0xc6, 0xc9] {
        let mut top = vec![marker];
        top.extend_from_slice(&prefix);
        frames.push(top.clone());
        let mut nested = vec![
            0x83, 0xa1, b't', 0xa5, b'i', b'n', b'p', b'u', b't', 0xa3, b's', b'e', b'q', 0x01,
            0xa5, b'i', b'n', b'p', b'u', b't',
        ];
        nested.extend_from_slice(&top);
        frames.push(nested);
    }
    let started = Instant::now();
    for frame in &frames {
        assert!(decode(frame).is_err(), "{frame:x?}");
        assert!(decode_server(frame).is_err(), "{frame:x?}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

/// The worst inputs up to the limit: deep nesting and many tiny elements. No stack overflow, and
/// each decode stays far under a millisecond-scale budget.
#[test]
fn worst_case_frames_up_to_the_limit_are_bounded() {
    let head = [
        0x83, 0xa1, b't', 0xa5, b'i', b'n', b'p', b'u', b't', 0xa3, b's', b'e', b'q', 0x01, 0xa5,
        b'i', b'n', b'p', b'u', b't',
    ];
    let room = MAX_CLIENT_FRAME_BYTES - head.len();
    let mut frames = Vec::new();
    // input = [[[[...]]]] nested as deep as the frame allows
    let mut deep = head.to_vec();
    deep.extend(std::iter::repeat_n(0x91, room - 1));
    deep.push(0xc0);
    frames.push(deep);
    // input = {"dx": [[[[...]]]], ...}
    let mut deep_field = head.to_vec();
    deep_field.extend_from_slice(&[0x82, 0xa2, b'd', b'x']);
    deep_field.extend(std::iter::repeat_n(0x91, room - 10));
    deep_field.extend_from_slice(&[0xc0, 0xa2, b'd', b'y', 0x00]);
    frames.push(deep_field);
    // input = [nil, nil, ... ] (thousands of elements)
    let mut wide = head.to_vec();
    let n = room - 3;
    wide.push(0xdc);
    wide.extend_from_slice(&(n as u16).to_be_bytes());
    wide.extend(std::iter::repeat_n(0xc0, n));
    frames.push(wide);
    // top-level map with thousands of unknown keys
    let mut keys = vec![0xde];
    let n = (MAX_CLIENT_FRAME_BYTES - 3) / 2;
    keys.extend_from_slice(&(n as u16).to_be_bytes());
    keys.extend(std::iter::repeat_n([0xa0, 0xc0], n).flatten());
    frames.push(keys);
    for frame in &frames {
        assert!(frame.len() <= MAX_CLIENT_FRAME_BYTES);
        let started = Instant::now();
        let result = decode(frame);
        assert!(result.is_err(), "{:x?}", &frame[..24]);
        assert!(
            started.elapsed() < Duration::from_millis(20),
            "{:?}",
            started.elapsed()
        );
    }
}
