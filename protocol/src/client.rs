//! Client to server messages: decoding (server side) and encoding (bots, tests).

use bytes::Bytes;
use game_core::{Game, Seq};
use serde::Serialize;

use crate::wire::{self, clip, put_map_len, put_serde, put_str, put_uint};
use crate::{MAX_CHAT_CHARS, ProtocolError};

/// Validated chat text: 1 to [`MAX_CHAT_CHARS`] characters (Unicode scalar values, not bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChatText(String);

impl ChatText {
    pub fn new(s: String) -> Result<Self, ProtocolError> {
        check_chat(&s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for ChatText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for ChatText {
    type Error = ProtocolError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        check_chat(s)?;
        Ok(Self(s.to_owned()))
    }
}

fn check_chat(s: &str) -> Result<(), ProtocolError> {
    // Counting stops past the limit, so a long string costs no more than a short one.
    let chars = s.chars().take(MAX_CHAT_CHARS + 1).count();
    if chars == 0 {
        return Err(ProtocolError::InvalidValue(
            "chat text must not be empty".to_owned(),
        ));
    }
    if chars > MAX_CHAT_CHARS {
        return Err(ProtocolError::InvalidValue(format!(
            "chat text must be at most {MAX_CHAT_CHARS} characters"
        )));
    }
    Ok(())
}

/// A message from a client. `I` is the game's validated input on the server
/// ([`Game::Input`]), or its wire form when a client encodes ([`Game::WireInput`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage<I> {
    /// `{"t":"input","seq":u32,"input":INPUT}`: the player's latest input; `seq` increases per player.
    Input { seq: Seq, input: I },
    /// `{"t":"ping","id":u32}`: answered with a `pong` carrying the same id.
    Ping { id: u32 },
    /// `{"t":"chat","text":str}`: broadcast to the room.
    Chat { text: ChatText },
    /// `{"t":"leave"}`: frees the player's slot at once.
    Leave,
}

impl<I> ClientMessage<I> {
    /// The wire name of the message (its `"t"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Input { .. } => "input",
            Self::Ping { .. } => "ping",
            Self::Chat { .. } => "chat",
            Self::Leave => "leave",
        }
    }
}

const KEYS: [&str; 5] = ["t", "seq", "input", "id", "text"];
const T: usize = 0;
const SEQ: usize = 1;
const INPUT: usize = 2;
const ID: usize = 3;
const TEXT: usize = 4;

fn required<'a>(fields: &[Option<&'a [u8]>], index: usize) -> Result<&'a [u8], ProtocolError> {
    fields[index].ok_or_else(|| ProtocolError::MissingField(KEYS[index].to_owned()))
}

/// Decodes one binary client frame for game `G`.
///
/// The size is checked against `limit` before anything is parsed. The frame is walked in place
/// (keys in any order, unknown keys ignored); only the game input goes through serde, as
/// `G::WireInput`, and becomes `G::Input` through `TryFrom`, so for the arena a NaN or infinite
/// direction is an [`ProtocolError::InvalidValue`] and never reaches a room.
pub fn decode_client<G: Game>(
    frame: &[u8],
    limit: usize,
) -> Result<ClientMessage<G::Input>, ProtocolError> {
    if frame.len() > limit {
        return Err(ProtocolError::TooBig {
            size: frame.len(),
            limit,
        });
    }
    let mut fields = [None; KEYS.len()];
    wire::envelope(frame, &KEYS, &mut fields)?;
    let kind = wire::read_str(required(&fields, T)?, "t")?;
    match kind {
        "input" => {
            let seq = Seq(wire::read_u32(required(&fields, SEQ)?, "seq")?);
            let raw: G::WireInput = wire::read_serde(required(&fields, INPUT)?, "input")?;
            let input = G::Input::try_from(raw)
                .map_err(|e| ProtocolError::InvalidValue(format!("\"input\": {e}")))?;
            Ok(ClientMessage::Input { seq, input })
        }
        "ping" => Ok(ClientMessage::Ping {
            id: wire::read_u32(required(&fields, ID)?, "id")?,
        }),
        "chat" => {
            let text = wire::read_str(required(&fields, TEXT)?, "text")?;
            Ok(ClientMessage::Chat {
                text: ChatText::try_from(text)?,
            })
        }
        "leave" => Ok(ClientMessage::Leave),
        other => Err(ProtocolError::UnknownType(clip(other))),
    }
}

/// Encodes a client message, as a client sends it. Inputs are written with serde, structs as maps
/// with string keys (`{"dx":f32,"dy":f32}` for the arena's `RawDirection`).
pub fn encode_client<I: Serialize>(message: &ClientMessage<I>) -> Bytes {
    let mut buf = Vec::with_capacity(32);
    match message {
        ClientMessage::Input { seq, input } => {
            put_map_len(&mut buf, 3);
            put_str(&mut buf, "t");
            put_str(&mut buf, "input");
            put_str(&mut buf, "seq");
            put_uint(&mut buf, u64::from(seq.get()));
            put_str(&mut buf, "input");
            put_serde(&mut buf, input);
        }
        ClientMessage::Ping { id } => {
            put_map_len(&mut buf, 2);
            put_str(&mut buf, "t");
            put_str(&mut buf, "ping");
            put_str(&mut buf, "id");
            put_uint(&mut buf, u64::from(*id));
        }
        ClientMessage::Chat { text } => {
            put_map_len(&mut buf, 2);
            put_str(&mut buf, "t");
            put_str(&mut buf, "chat");
            put_str(&mut buf, "text");
            put_str(&mut buf, text.as_str());
        }
        ClientMessage::Leave => {
            put_map_len(&mut buf, 1);
            put_str(&mut buf, "t");
            put_str(&mut buf, "leave");
        }
    }
    Bytes::from(buf)
}
