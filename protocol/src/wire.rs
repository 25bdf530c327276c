//! A minimal MessagePack reader and writer over byte slices.
//!
//! The reader walks a frame in place: it never allocates, and every length prefix is checked against
//! the bytes actually left before it is used, so a frame that claims a four-billion-element array
//! fails at once instead of reserving memory. The writer emits the most compact form of each value,
//! the same bytes `rmp`/`rmp-serde` write, so hand-written envelopes and serde-written states agree.

use serde::Serialize;

use crate::ProtocolError;

/// The MessagePack family of a value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Bin,
    Array,
    Map,
    Ext,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool => "bool",
            Self::Int => "integer",
            Self::Float => "float",
            Self::Str => "string",
            Self::Bin => "binary",
            Self::Array => "array",
            Self::Map => "map",
            Self::Ext => "extension",
        }
    }
}

/// An integer as read, before it is narrowed to the field's type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Int {
    Pos(u64),
    Neg(i64),
}

impl std::fmt::Display for Int {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pos(v) => write!(f, "{v}"),
            Self::Neg(v) => write!(f, "{v}"),
        }
    }
}

fn malformed(what: &str) -> ProtocolError {
    ProtocolError::NotMessagePack(what.to_owned())
}

fn truncated() -> ProtocolError {
    malformed("the frame ends in the middle of a value")
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, ProtocolError> {
        let b = *self.buf.get(self.pos).ok_or_else(truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.remaining() {
            return Err(truncated());
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len8(&mut self) -> Result<usize, ProtocolError> {
        Ok(usize::from(self.byte()?))
    }

    fn len16(&mut self) -> Result<usize, ProtocolError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn len32(&mut self) -> Result<usize, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?) as usize)
    }

    /// The kind of the next value, without consuming it.
    pub(crate) fn peek_kind(&self) -> Result<Kind, ProtocolError> {
        let marker = *self.buf.get(self.pos).ok_or_else(truncated)?;
        Ok(match marker {
            0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff => Kind::Int,
            0x80..=0x8f | 0xde | 0xdf => Kind::Map,
            0x90..=0x9f | 0xdc | 0xdd => Kind::Array,
            0xa0..=0xbf | 0xd9..=0xdb => Kind::Str,
            0xc0 => Kind::Nil,
            0xc2 | 0xc3 => Kind::Bool,
            0xc4..=0xc6 => Kind::Bin,
            0xc7..=0xc9 | 0xd4..=0xd8 => Kind::Ext,
            0xca | 0xcb => Kind::Float,
            0xc1 => return Err(malformed("0xc1 is not a MessagePack marker")),
        })
    }

    /// Reads a map header, or returns the kind found instead.
    pub(crate) fn map_len(&mut self) -> Result<Result<usize, Kind>, ProtocolError> {
        let kind = self.peek_kind()?;
        let marker = self.byte()?;
        let len = match marker {
            0x80..=0x8f => usize::from(marker & 0x0f),
            0xde => self.len16()?,
            0xdf => self.len32()?,
            _ => {
                self.pos -= 1;
                return Ok(Err(kind));
            }
        };
        // Every entry takes at least two bytes: refuse impossible lengths before looping over them.
        if len > self.remaining() / 2 {
            return Err(malformed("a map claims more entries than the frame holds"));
        }
        Ok(Ok(len))
    }

    /// Reads a string, or returns the kind found instead.
    pub(crate) fn str(&mut self) -> Result<Result<&'a str, Kind>, ProtocolError> {
        let kind = self.peek_kind()?;
        let marker = self.byte()?;
        let len = match marker {
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => self.len8()?,
            0xda => self.len16()?,
            0xdb => self.len32()?,
            _ => {
                self.pos -= 1;
                return Ok(Err(kind));
            }
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Ok)
            .map_err(|_| ProtocolError::InvalidValue("a string is not valid UTF-8".to_owned()))
    }

    /// Reads an integer of any width, or returns the kind found instead.
    pub(crate) fn int(&mut self) -> Result<Result<Int, Kind>, ProtocolError> {
        let kind = self.peek_kind()?;
        let marker = self.byte()?;
        let value = match marker {
            0x00..=0x7f => Int::Pos(u64::from(marker)),
            0xe0..=0xff => Int::Neg(i64::from(marker as i8)),
            0xcc => Int::Pos(u64::from(self.byte()?)),
            0xcd => Int::Pos(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Int::Pos(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Int::Pos(u64::from_be_bytes(self.array()?)),
            0xd0 => signed(i64::from(self.byte()? as i8)),
            0xd1 => signed(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => signed(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => signed(i64::from_be_bytes(self.array()?)),
            _ => {
                self.pos -= 1;
                return Ok(Err(kind));
            }
        };
        Ok(Ok(value))
    }

    /// Skips one complete value (of any nesting) and returns its bytes. Iterative, so deep nesting
    /// cannot overflow the stack; bounded by the frame length, so it cannot run long.
    pub(crate) fn value(&mut self) -> Result<&'a [u8], ProtocolError> {
        let start = self.pos;
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let marker = self.byte()?;
            let (skip, children) = match marker {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
                0x90..=0x9f => (0, usize::from(marker & 0x0f)),
                0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
                0xc1 => return Err(malformed("0xc1 is not a MessagePack marker")),
                0xc4 | 0xd9 => (self.len8()?, 0),
                0xc5 | 0xda => (self.len16()?, 0),
                0xc6 | 0xdb => (self.len32()?, 0),
                0xc7 => (self.len8()? + 1, 0),
                0xc8 => (self.len16()? + 1, 0),
                0xc9 => (self.len32()?.saturating_add(1), 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.len16()?),
                0xdd => (0, self.len32()?),
                0xde => (0, 2 * self.len16()?),
                0xdf => (0, self.len32()?.saturating_mul(2)),
            };
            self.take(skip)?;
            pending = pending.saturating_add(children);
            // Every value takes at least one byte.
            if pending > self.remaining() {
                return Err(malformed(
                    "an array or map claims more elements than the frame holds",
                ));
            }
        }
        Ok(&self.buf[start..self.pos])
    }
}

fn signed(v: i64) -> Int {
    if v >= 0 {
        Int::Pos(v as u64)
    } else {
        Int::Neg(v)
    }
}

/// The bytes of one complete value, as found in a frame.
pub(crate) fn one<'a>(value: &'a [u8]) -> Reader<'a> {
    Reader::new(value)
}

pub(crate) fn read_str<'a>(value: &'a [u8], field: &str) -> Result<&'a str, ProtocolError> {
    one(value)
        .str()?
        .map_err(|kind| wrong_type(field, "a string", kind))
}

pub(crate) fn read_u64(value: &[u8], field: &str) -> Result<u64, ProtocolError> {
    match one(value).int()? {
        Ok(Int::Pos(v)) => Ok(v),
        Ok(neg @ Int::Neg(_)) => Err(ProtocolError::InvalidValue(format!(
            "{field:?} must not be negative, got {neg}"
        ))),
        Err(kind) => Err(wrong_type(field, "an integer", kind)),
    }
}

pub(crate) fn read_u32(value: &[u8], field: &str) -> Result<u32, ProtocolError> {
    match one(value).int()? {
        Ok(Int::Pos(v)) if v <= u64::from(u32::MAX) => Ok(v as u32),
        Ok(other) => Err(ProtocolError::InvalidValue(format!(
            "{field:?} must be in 0..=4294967295, got {other}"
        ))),
        Err(kind) => Err(wrong_type(field, "an integer", kind)),
    }
}

pub(crate) fn wrong_type(field: &str, expected: &str, found: Kind) -> ProtocolError {
    ProtocolError::WrongType(format!(
        "{field:?} must be {expected}, got {}",
        found.name()
    ))
}

/// Walks the top-level map of a frame and records the value bytes of the `known` keys into `out`
/// (same order). Unknown keys are skipped, so newer peers may add fields. Fails on anything that is
/// not exactly one map with string keys, on a repeated key and on trailing bytes.
pub(crate) fn envelope<'a>(
    frame: &'a [u8],
    known: &[&str],
    out: &mut [Option<&'a [u8]>],
) -> Result<(), ProtocolError> {
    let mut reader = Reader::new(frame);
    let len = reader.map_len()?.map_err(|kind| {
        ProtocolError::NotMessagePack(format!("a frame must be a map, got {}", kind.name()))
    })?;
    for _ in 0..len {
        let key = reader
            .str()?
            .map_err(|_| malformed("map keys must be strings"))?;
        let value = reader.value()?;
        if let Some(index) = known.iter().position(|k| *k == key)
            && out[index].replace(value).is_some()
        {
            return Err(ProtocolError::InvalidValue(format!(
                "key {key:?} appears twice"
            )));
        }
    }
    if !reader.at_end() {
        return Err(malformed("trailing bytes after the message map"));
    }
    Ok(())
}

/// Shortens a client-supplied string for an error message, so errors stay small.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 32;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// Deserialises a value with serde from the exact bytes of `field`, sorting serde's errors into the
/// protocol's categories.
pub(crate) fn read_serde<W: serde::de::DeserializeOwned>(
    value: &[u8],
    field: &str,
) -> Result<W, ProtocolError> {
    use rmp_serde::decode::Error;
    rmp_serde::from_slice(value).map_err(|e| match e {
        Error::Syntax(msg) | Error::Uncategorized(msg) => classify_serde(&msg, field),
        Error::TypeMismatch(marker) => {
            ProtocolError::WrongType(format!("{field:?}: unexpected {marker:?}"))
        }
        Error::OutOfRange => {
            ProtocolError::InvalidValue(format!("{field:?}: a number is out of range"))
        }
        Error::LengthMismatch(len) => {
            ProtocolError::WrongType(format!("{field:?}: wrong number of elements ({len})"))
        }
        Error::DepthLimitExceeded => {
            ProtocolError::InvalidValue(format!("{field:?}: nested too deeply"))
        }
        other => ProtocolError::NotMessagePack(format!("{field:?}: {other}")),
    })
}

/// serde's derive reports through `Error::custom` with stable message prefixes.
fn classify_serde(msg: &str, field: &str) -> ProtocolError {
    let msg = clip_long(msg);
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        ProtocolError::MissingField(format!("{field}.{name}"))
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid length") {
        ProtocolError::WrongType(format!("{field:?}: {msg}"))
    } else {
        ProtocolError::InvalidValue(format!("{field:?}: {msg}"))
    }
}

fn clip_long(msg: &str) -> &str {
    const MAX: usize = 160;
    match msg.char_indices().nth(MAX) {
        Some((end, _)) => &msg[..end],
        None => msg,
    }
}

// ---- writing ----

pub(crate) fn put_map_len(buf: &mut Vec<u8>, len: u32) {
    if len < 16 {
        buf.push(0x80 | len as u8);
    } else if len <= u32::from(u16::MAX) {
        buf.push(0xde);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdf);
        buf.extend_from_slice(&len.to_be_bytes());
    }
}

pub(crate) fn put_array_len(buf: &mut Vec<u8>, len: usize) {
    if len < 16 {
        buf.push(0x90 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        buf.push(0xdc);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdd);
        // A frame can never hold 2^32 elements: clamp rather than wrap.
        buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        buf.push(0xd9);
        buf.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_uint(buf: &mut Vec<u8>, v: u64) {
    if v < 128 {
        buf.push(v as u8);
    } else if v <= u64::from(u8::MAX) {
        buf.push(0xcc);
        buf.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        buf.push(0xcd);
        buf.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u64::from(u32::MAX) {
        buf.push(0xce);
        buf.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        buf.push(0xcf);
        buf.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a serde value (structs as maps with string keys, tuples as arrays). A `Serialize` impl that
/// fails (none of this project's do) leaves a nil in its place rather than a broken frame.
pub(crate) fn put_serde<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    let start = buf.len();
    let mut serializer = rmp_serde::Serializer::new(&mut *buf).with_struct_map();
    if value.serialize(&mut serializer).is_err() {
        buf.truncate(start);
        buf.push(0xc0);
    }
}
