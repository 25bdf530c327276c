//! The bots' fast path over the wire protocol: encode an input frame into a few bytes, and scan a
//! server frame for the only things a bot needs (the message type, the own player's `last_seq`, the
//! `player_id` of a welcome) without decoding the rest.
//!
//! The scanner walks the MessagePack bytes with a cursor and skips every value it does not need
//! (iteratively, so a deeply nested frame cannot overflow the stack). It stops as soon as it has
//! the type and the own row of a `state`.

use std::fmt;

/// The message type of a server frame (its `"t"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Welcome,
    State,
    Event,
    Error,
    Pong,
    Chat,
    /// A type this bot does not know (counted, not an error: the protocol may grow).
    Other,
    /// No `"t"` key at all.
    Missing,
}

impl Kind {
    fn from_tag(tag: &[u8]) -> Self {
        match tag {
            b"welcome" => Self::Welcome,
            b"state" => Self::State,
            b"event" => Self::Event,
            b"error" => Self::Error,
            b"pong" => Self::Pong,
            b"chat" => Self::Chat,
            _ => Self::Other,
        }
    }
}

/// What a bot takes from a server frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned<'a> {
    pub kind: Kind,
    /// `last_seq` of the row whose player id is the bot's own, when the frame's state has one.
    pub own_last_seq: Option<u32>,
    /// The top-level `player_id` (a welcome's, or an event's).
    pub player_id: Option<&'a [u8]>,
}

/// A frame that is not the MessagePack the protocol promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    Truncated,
    /// A marker where another type was required (or the never-used 0xc1).
    Unexpected(u8),
    NotAMap,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated MessagePack"),
            Self::Unexpected(m) => write!(f, "unexpected MessagePack marker 0x{m:02x}"),
            Self::NotAMap => f.write_str("frame is not a MessagePack map"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Scans one binary server frame. `own_id` is the bot's player id.
pub fn scan<'a>(frame: &'a [u8], own_id: &[u8]) -> Result<Scanned<'a>, ScanError> {
    let mut r = Reader::new(frame);
    let entries = r.map_len().map_err(|e| match e {
        ScanError::Unexpected(_) => ScanError::NotAMap,
        other => other,
    })?;
    let mut out = Scanned {
        kind: Kind::Missing,
        own_last_seq: None,
        player_id: None,
    };
    for _ in 0..entries {
        let key = match r.peek()? {
            m if is_str(m) => r.str()?,
            _ => {
                // Not a string key: skip key and value.
                r.skip(2)?;
                continue;
            }
        };
        match key {
            b"t" => {
                let m = r.peek()?;
                if is_str(m) {
                    out.kind = Kind::from_tag(r.str()?);
                } else {
                    r.skip(1)?;
                }
            }
            b"state" => {
                out.own_last_seq = scan_state(&mut r, own_id)?;
            }
            b"player_id" if is_str(r.peek()?) => out.player_id = Some(r.str()?),
            _ => r.skip(1)?,
        }
        if out.kind == Kind::State && out.own_last_seq.is_some() {
            // Everything a bot needs from a state: stop here.
            return Ok(out);
        }
    }
    Ok(out)
}

/// `{"players":[[player_id, x, y, score, last_seq], …], …}`: the own row's `last_seq`.
fn scan_state(r: &mut Reader<'_>, own_id: &[u8]) -> Result<Option<u32>, ScanError> {
    if !is_map(r.peek()?) {
        r.skip(1)?;
        return Ok(None);
    }
    let entries = r.map_len()?;
    let mut found = None;
    for _ in 0..entries {
        let m = r.peek()?;
        if !is_str(m) {
            r.skip(2)?;
            continue;
        }
        if r.str()? != b"players" || !is_array(r.peek()?) {
            r.skip(1)?;
            continue;
        }
        let rows = r.array_len()?;
        for _ in 0..rows {
            if !is_array(r.peek()?) {
                r.skip(1)?;
                continue;
            }
            let fields = r.array_len()?;
            if fields < 5 || found.is_some() || !is_str(r.peek()?) {
                r.skip(fields)?;
                continue;
            }
            if r.str()? != own_id {
                r.skip(fields - 1)?;
                continue;
            }
            r.skip(3)?; // x, y, score
            found = r.opt_u32()?;
            r.skip(fields - 5)?;
        }
    }
    Ok(found)
}

const fn is_str(m: u8) -> bool {
    matches!(m, 0xa0..=0xbf | 0xd9..=0xdb)
}
const fn is_map(m: u8) -> bool {
    matches!(m, 0x80..=0x8f | 0xde | 0xdf)
}
const fn is_array(m: u8) -> bool {
    matches!(m, 0x90..=0x9f | 0xdc | 0xdd)
}

/// A forward-only cursor over MessagePack bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn peek(&self) -> Result<u8, ScanError> {
        self.buf.get(self.pos).copied().ok_or(ScanError::Truncated)
    }

    fn byte(&mut self) -> Result<u8, ScanError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ScanError> {
        let end = self.pos.checked_add(n).ok_or(ScanError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ScanError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, ScanError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn map_len(&mut self) -> Result<usize, ScanError> {
        match self.byte()? {
            m @ 0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.len(2),
            0xdf => self.len(4),
            m => Err(ScanError::Unexpected(m)),
        }
    }

    fn array_len(&mut self) -> Result<usize, ScanError> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.len(2),
            0xdd => self.len(4),
            m => Err(ScanError::Unexpected(m)),
        }
    }

    fn len(&mut self, bytes: usize) -> Result<usize, ScanError> {
        usize::try_from(self.be(bytes)?).map_err(|_| ScanError::Truncated)
    }

    fn str(&mut self) -> Result<&'a [u8], ScanError> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            m => return Err(ScanError::Unexpected(m)),
        };
        self.take(n)
    }

    /// An unsigned integer that fits u32, or nil (None).
    fn opt_u32(&mut self) -> Result<Option<u32>, ScanError> {
        let m = self.byte()?;
        let v: i128 = match m {
            0x00..=0x7f => i128::from(m),
            0xc0 => return Ok(None),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            // Signed encodings of a non-negative value are accepted too.
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            _ => return Err(ScanError::Unexpected(m)),
        };
        u32::try_from(v)
            .map(Some)
            .map_err(|_| ScanError::Unexpected(m))
    }

    /// Skips `count` complete values (containers included), with the protocol crate's bounded
    /// skipper: a forged length fails at once as a truncation.
    fn skip(&mut self, count: usize) -> Result<(), ScanError> {
        for _ in 0..count {
            let rest = &self.buf[self.pos..];
            match protocol::value_len(rest) {
                Ok(len) => self.pos += len,
                Err(_) if rest.first() == Some(&0xc1) => return Err(ScanError::Unexpected(0xc1)),
                Err(_) => return Err(ScanError::Truncated),
            }
        }
        Ok(())
    }
}

/// Appends `{"t":"input","seq":SEQ,"input":{"dx":DX,"dy":DY}}` (the arena input) to `out`, with the
/// same bytes that `rmp_serde` produces for it: smallest integer encoding, f32 floats.
pub fn encode_input(out: &mut Vec<u8>, seq: u32, dx: f32, dy: f32) {
    out.push(0x83);
    push_str(out, "t");
    push_str(out, "input");
    push_str(out, "seq");
    push_uint(out, seq);
    push_str(out, "input");
    out.push(0x82);
    push_str(out, "dx");
    out.push(0xca);
    out.extend_from_slice(&dx.to_be_bytes());
    push_str(out, "dy");
    out.push(0xca);
    out.extend_from_slice(&dy.to_be_bytes());
}

/// A fixstr (every key and tag the bots write is shorter than 32 bytes).
fn push_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() < 32);
    out.push(0xa0 | (s.len() as u8 & 0x1f));
    out.extend_from_slice(s.as_bytes());
}

fn push_uint(out: &mut Vec<u8>, v: u32) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        _ => {
            out.push(0xce);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Frames that a `chaos` bot sends now and then: each one is invalid in a different way, and none
/// of them is of the kind that closes a session at once (no text frame, nothing over the size limit).
pub fn chaos_frame(n: u64, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    match n % 4 {
        // Not MessagePack at all (0xc1 is never used).
        0 => out.extend_from_slice(&[0xc1, 0xff, 0x00, 0x13, 0x37]),
        // A message type that does not exist.
        1 => {
            out.push(0x81);
            push_str(&mut out, "t");
            push_str(&mut out, "teleport");
        }
        // An input whose direction is NaN.
        2 => encode_input(&mut out, seq, f32::NAN, 0.0),
        // An input whose seq is a string.
        _ => {
            out.push(0x83);
            push_str(&mut out, "t");
            push_str(&mut out, "input");
            push_str(&mut out, "seq");
            push_str(&mut out, "seven");
            push_str(&mut out, "input");
            out.push(0x80);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Dir {
        dx: f32,
        dy: f32,
    }
    #[derive(Serialize)]
    struct Input {
        t: &'static str,
        seq: u32,
        input: Dir,
    }
    #[derive(Serialize)]
    struct Arena {
        players: Vec<(String, f32, f32, u32, Option<u32>)>,
        pickups: Vec<(u32, f32, f32)>,
        remaining_ms: u64,
    }
    #[derive(Serialize)]
    struct StateMsg {
        t: &'static str,
        tick: u64,
        state: Arena,
    }
    #[derive(Serialize)]
    struct StateFirst {
        tick: u64,
        state: Arena,
        t: &'static str,
    }
    #[derive(Serialize)]
    struct Welcome {
        t: &'static str,
        room_id: String,
        player_id: String,
        tick: u64,
        tick_rate: u32,
        resume_token: String,
        state: Arena,
    }
    #[derive(Serialize)]
    struct Event {
        t: &'static str,
        kind: &'static str,
        results: Vec<(String, u32, u32)>,
    }

    fn arena(n: usize, seq_of: impl Fn(usize) -> Option<u32>) -> Arena {
        Arena {
            players: (0..n)
                .map(|i| {
                    (
                        format!("bot-{i}"),
                        i as f32 * 1.5,
                        -2.25,
                        i as u32 * 1000,
                        seq_of(i),
                    )
                })
                .collect(),
            pickups: (0..5).map(|i| (i, 1.0, 2.0)).collect(),
            remaining_ms: 299_950,
        }
    }

    fn named<T: Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    #[test]
    fn input_encoding_matches_rmp_serde() {
        for seq in [0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX] {
            let mut mine = Vec::new();
            encode_input(&mut mine, seq, 0.6, -0.8);
            let theirs = named(&Input {
                t: "input",
                seq,
                input: Dir { dx: 0.6, dy: -0.8 },
            });
            assert_eq!(mine, theirs, "seq {seq}");
        }
    }

    #[test]
    fn finds_own_last_seq_in_a_state() {
        let frame = named(&StateMsg {
            t: "state",
            tick: 77,
            state: arena(16, |i| Some(100_000 + i as u32)),
        });
        for i in [0usize, 7, 15] {
            let s = scan(&frame, format!("bot-{i}").as_bytes()).unwrap();
            assert_eq!(s.kind, Kind::State);
            assert_eq!(s.own_last_seq, Some(100_000 + i as u32));
        }
        let s = scan(&frame, b"bot-99").unwrap();
        assert_eq!((s.kind, s.own_last_seq), (Kind::State, None));
    }

    #[test]
    fn key_order_and_nil_seq_do_not_matter() {
        let frame = named(&StateFirst {
            tick: 1,
            state: arena(3, |i| (i != 1).then_some(i as u32)),
            t: "state",
        });
        assert_eq!(scan(&frame, b"bot-2").unwrap().own_last_seq, Some(2));
        let s = scan(&frame, b"bot-1").unwrap();
        assert_eq!((s.kind, s.own_last_seq), (Kind::State, None));
    }

    #[test]
    fn reads_welcome_and_other_kinds() {
        let frame = named(&Welcome {
            t: "welcome",
            room_id: "r1".into(),
            player_id: "bot-3".into(),
            tick: 0,
            tick_rate: 20,
            resume_token: "x".repeat(300),
            state: arena(4, |_| Some(0)),
        });
        let s = scan(&frame, b"bot-3").unwrap();
        assert_eq!(s.kind, Kind::Welcome);
        assert_eq!(s.player_id, Some(&b"bot-3"[..]));
        assert_eq!(s.own_last_seq, Some(0));

        let frame = named(&Event {
            t: "event",
            kind: "match_over",
            results: vec![("a".into(), 3, 1)],
        });
        assert_eq!(scan(&frame, b"a").unwrap().kind, Kind::Event);
        let frame = named(&Input {
            t: "bogus",
            seq: 1,
            input: Dir { dx: 0.0, dy: 0.0 },
        });
        assert_eq!(scan(&frame, b"a").unwrap().kind, Kind::Other);
    }

    #[test]
    fn big_states_use_16_bit_lengths() {
        // 40 players and a long remaining_ms push lengths past the fix* forms.
        let frame = named(&StateMsg {
            t: "state",
            tick: u64::MAX,
            state: arena(40, |i| Some(70_000 + i as u32)),
        });
        assert_eq!(scan(&frame, b"bot-39").unwrap().own_last_seq, Some(70_039));
    }

    /// The input the bots write is byte for byte what the protocol crate encodes, and it decodes.
    #[test]
    fn input_encoding_matches_the_protocol_crate() {
        use game_core::Seq;
        use game_core::arena::{Arena, RawDirection};
        use protocol::ClientMessage;
        for (seq, dx, dy) in [
            (1, 0.0, 1.0),
            (200, -0.6, 0.8),
            (70_000, 1.0, 0.0),
            (u32::MAX, 0.1, 0.2),
        ] {
            let mut mine = Vec::new();
            encode_input(&mut mine, seq, dx, dy);
            let theirs = protocol::encode_client(&ClientMessage::Input {
                seq: Seq(seq),
                input: RawDirection { dx, dy },
            });
            assert_eq!(mine, theirs.as_ref(), "seq {seq}");
            match protocol::decode_client::<Arena>(&mine, 4096).unwrap() {
                ClientMessage::Input { seq: s, .. } => assert_eq!(s, Seq(seq)),
                other => panic!("decoded as {other:?}"),
            }
        }
        // The chaos frames are rejected by the protocol, each for its own reason.
        for n in 0..4 {
            assert!(
                protocol::decode_client::<Arena>(&chaos_frame(n, 3), 4096).is_err(),
                "{n}"
            );
        }
    }

    /// The scan reads the own ack out of a state that the real game and encoder produce.
    #[test]
    fn scans_states_of_the_real_game_and_encoder() {
        use game_core::arena::{Arena, ArenaConfig, Direction, RawDirection};
        use game_core::{Game, PlayerId, Seq};
        let mut game = Arena::new(ArenaConfig::default(), 7);
        let ids: Vec<String> = (0..16).map(|i| format!("bot-1a2b3c4d-{i}")).collect();
        for id in &ids {
            game.join(PlayerId::parse(id).unwrap()).unwrap();
        }
        for (i, id) in ids.iter().enumerate() {
            let dir = Direction::try_from(RawDirection { dx: 1.0, dy: 0.0 }).unwrap();
            game.apply_input(&PlayerId::parse(id).unwrap(), Seq(1000 + i as u32), dir);
        }
        let mut events = Vec::new();
        game.step(&mut events);
        let mut encoder = protocol::StateEncoder::new();
        let frame = encoder.encode(game.tick(), &game.view());
        for (i, id) in ids.iter().enumerate() {
            let s = scan(&frame, id.as_bytes()).unwrap();
            assert_eq!(
                (s.kind, s.own_last_seq),
                (Kind::State, Some(1000 + i as u32))
            );
        }
        let welcome =
            protocol::encode_welcome("r1", &ids[3], game.tick(), 20, "token", &game.view());
        let s = scan(&welcome, ids[3].as_bytes()).unwrap();
        assert_eq!(s.kind, Kind::Welcome);
        assert_eq!(s.player_id, Some(ids[3].as_bytes()));
    }

    /// Every server test vector of the protocol crate scans to its type.
    #[test]
    fn scans_the_protocol_test_vectors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/vectors");
        let kinds = [
            ("server_chat", Kind::Chat),
            ("server_error", Kind::Error),
            ("server_event_match_over", Kind::Event),
            ("server_event_player_joined", Kind::Event),
            ("server_event_player_left", Kind::Event),
            ("server_pong", Kind::Pong),
            ("server_state", Kind::State),
            ("server_welcome", Kind::Welcome),
        ];
        for (name, kind) in kinds {
            let frame = std::fs::read(dir.join(format!("{name}.msgpack"))).unwrap();
            assert_eq!(scan(&frame, b"nobody").unwrap().kind, kind, "{name}");
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(scan(&[], b"a"), Err(ScanError::Truncated));
        assert_eq!(scan(&[0x93, 1, 2, 3], b"a"), Err(ScanError::NotAMap));
        let frame = named(&StateMsg {
            t: "state",
            tick: 1,
            state: arena(4, |_| Some(1)),
        });
        for cut in 1..frame.len() {
            // Any prefix either fails cleanly or (if the own row was already seen) succeeds.
            let _ = scan(&frame[..cut], b"bot-3");
        }
        // A forged huge array length is rejected at once.
        assert_eq!(
            scan(&[0x81, 0xa1, b'x', 0xdd, 0xff, 0xff, 0xff, 0xff], b"a"),
            Err(ScanError::Truncated)
        );
        for n in 0..4 {
            let f = chaos_frame(n, 9);
            let _ = scan(&f, b"a");
        }
    }
}
