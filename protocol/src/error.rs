//! What can be wrong with a frame, and the codes the server reports it with.

use std::fmt;

/// Why a frame could not be decoded. Each message says what was wrong, so that it can be sent back
/// verbatim in an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is over the size limit; nothing of it was parsed.
    #[error("frame of {size} bytes is over the limit of {limit} bytes")]
    TooBig { size: usize, limit: usize },
    /// The bytes are not one well-formed MessagePack map with string keys.
    #[error("malformed frame: {0}")]
    NotMessagePack(String),
    /// The `"t"` of the frame names no message of the protocol.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A field the message type requires is absent (the payload names the field).
    #[error("missing field {0:?}")]
    MissingField(String),
    /// A field has the wrong MessagePack type.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// A field has the right type but a value the protocol or the game refuses.
    #[error("invalid value: {0}")]
    InvalidValue(String),
}

impl ProtocolError {
    /// The code to report this error with in an `error` message.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooBig { .. } => ErrorCode::TooBig,
            Self::NotMessagePack(_) => ErrorCode::Malformed,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::MissingField(_) | Self::WrongType(_) => ErrorCode::InvalidField,
            Self::InvalidValue(_) => ErrorCode::InvalidValue,
        }
    }
}

/// The codes of `{"t":"error","code":..}`; [`ErrorCode::as_str`] gives the wire string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `"too_big"`: a frame over the size limit.
    TooBig,
    /// `"malformed"`: not one well-formed MessagePack map with string keys.
    Malformed,
    /// `"unknown_type"`: the `"t"` names no client message.
    UnknownType,
    /// `"invalid_field"`: a required field is missing or has the wrong type.
    InvalidField,
    /// `"invalid_value"`: a field's value is refused (NaN direction, chat text too long...).
    InvalidValue,
    /// `"rate_limited"`: the message was dropped by a rate limit (chat, for example).
    RateLimited,
    /// `"not_allowed"`: the message is not allowed in the session's current state.
    NotAllowed,
    /// `"internal"`: the server failed; not the client's fault.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::TooBig,
        Self::Malformed,
        Self::UnknownType,
        Self::InvalidField,
        Self::InvalidValue,
        Self::RateLimited,
        Self::NotAllowed,
        Self::Internal,
    ];

    /// The wire string of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooBig => "too_big",
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::InvalidField => "invalid_field",
            Self::InvalidValue => "invalid_value",
            Self::RateLimited => "rate_limited",
            Self::NotAllowed => "not_allowed",
            Self::Internal => "internal",
        }
    }

    /// The code with this wire string, if any.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
