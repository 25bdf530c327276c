//! Seat tickets and resume tokens: HMAC-SHA256-signed claims, URL-safe base64.
//!
//! Layout before encoding: `version | kind | expires_at_ms (u64 BE) | nonce (16) | len | room_id | len | player_id | mac (32)`.
//! Tickets are single-use (their nonce is remembered until they expire); resume tokens may be used
//! again for as long as the room keeps the player's slot.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use game_core::PlayerId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::RoomId;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const NONCE_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Ticket = 1,
    Resume = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub kind: TokenKind,
    pub room_id: RoomId,
    pub player_id: PlayerId,
    pub expires_at_ms: u64,
    pub nonce: [u8; NONCE_LEN],
}

/// Why a ticket or token was refused. `reason()` is the metric label a matchmaker can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Neither a ticket nor a resume token, or both: the upgrade carries no single credential.
    #[error("give exactly one of ticket or resume")]
    Missing,
    #[error("the ticket is not a valid token")]
    Malformed,
    #[error("the ticket's signature does not match")]
    Forged,
    #[error("the ticket has expired")]
    Expired,
    #[error("the ticket has already been used")]
    Reused,
    #[error("a resume token was given where a ticket was expected, or the other way round")]
    WrongKind,
    #[error("the ticket's room does not exist or is closed")]
    UnknownRoom,
    #[error("the ticket's seat is no longer held")]
    NoSeat,
}

impl TicketError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Reused => "reused",
            Self::WrongKind => "wrong_kind",
            Self::UnknownRoom => "unknown_room",
            Self::NoSeat => "no_seat",
        }
    }
}

/// Signs and verifies with the server's secret.
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        // unwrap-free: HMAC accepts keys of any length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        Self { mac }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut bytes = Vec::with_capacity(
            64 + claims.room_id.as_str().len() + claims.player_id.as_str().len(),
        );
        bytes.push(VERSION);
        bytes.push(claims.kind as u8);
        bytes.extend_from_slice(&claims.expires_at_ms.to_be_bytes());
        bytes.extend_from_slice(&claims.nonce);
        for field in [claims.room_id.as_str(), claims.player_id.as_str()] {
            // Both ids are at most 64 bytes, validated by their types.
            bytes.push(field.len() as u8);
            bytes.extend_from_slice(field.as_bytes());
        }
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks signature, kind and expiry. Single use is the caller's business ([`UsedNonces`]).
    pub fn verify(&self, token: &str, kind: TokenKind, now_ms: u64) -> Result<Claims, TicketError> {
        if token.len() > 512 {
            return Err(TicketError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TicketError::Malformed)?;
        if bytes.len() < 2 + 8 + NONCE_LEN + 2 + MAC_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| TicketError::Forged)?;
        let claims = parse(body).ok_or(TicketError::Malformed)?;
        if claims.kind != kind {
            return Err(TicketError::WrongKind);
        }
        if claims.expires_at_ms <= now_ms {
            return Err(TicketError::Expired);
        }
        Ok(claims)
    }
}

fn parse(body: &[u8]) -> Option<Claims> {
    let (&version, rest) = body.split_first()?;
    let (&kind, rest) = rest.split_first()?;
    if version != VERSION {
        return None;
    }
    let kind = match kind {
        1 => TokenKind::Ticket,
        2 => TokenKind::Resume,
        _ => return None,
    };
    let (expiry, rest) = rest.split_at_checked(8)?;
    let (nonce, rest) = rest.split_at_checked(NONCE_LEN)?;
    let (room, rest) = take_field(rest)?;
    let (player, rest) = take_field(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Some(Claims {
        kind,
        room_id: RoomId::parse(room).ok()?,
        player_id: PlayerId::parse(player).ok()?,
        expires_at_ms: u64::from_be_bytes(expiry.try_into().ok()?),
        nonce: nonce.try_into().ok()?,
    })
}

fn take_field(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let (field, rest) = rest.split_at_checked(len as usize)?;
    Some((std::str::from_utf8(field).ok()?, rest))
}

pub fn new_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// Nonces of tickets already used, remembered until the ticket would have expired anyway.
#[derive(Debug, Default)]
pub struct UsedNonces {
    used: DashMap<[u8; NONCE_LEN], u64>,
}

impl UsedNonces {
    /// Marks the ticket used; false if it was used before.
    pub fn consume(&self, claims: &Claims) -> bool {
        match self.used.entry(claims.nonce) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(claims.expires_at_ms);
                true
            }
        }
    }

    pub fn purge_expired(&self, now_ms: u64) {
        self.used.retain(|_, expires_at_ms| *expires_at_ms > now_ms);
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind, expires_at_ms: u64) -> Claims {
        Claims {
            kind,
            room_id: RoomId::parse("room1").unwrap(),
            player_id: PlayerId::parse("alice").unwrap(),
            expires_at_ms,
            nonce: new_nonce(),
        }
    }

    #[test]
    fn a_signed_ticket_verifies_and_is_url_safe() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let c = claims(TokenKind::Ticket, 2_000);
        let token = signer.sign(&c);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(signer.verify(&token, TokenKind::Ticket, 1_000), Ok(c));
    }

    #[test]
    fn expired_forged_wrong_kind_and_garbage_are_refused() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let other = Signer::new(b"another secret, another server!!");
        let token = signer.sign(&claims(TokenKind::Ticket, 2_000));
        assert_eq!(
            signer.verify(&token, TokenKind::Ticket, 2_000),
            Err(TicketError::Expired)
        );
        assert_eq!(
            other.verify(&token, TokenKind::Ticket, 1_000),
            Err(TicketError::Forged)
        );
        assert_eq!(
            signer.verify(&token, TokenKind::Resume, 1_000),
            Err(TicketError::WrongKind)
        );
        assert_eq!(
            signer.verify("not a token!", TokenKind::Ticket, 1_000),
            Err(TicketError::Malformed)
        );
        // Flip one bit of the payload: the signature no longer matches.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[12] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            signer.verify(&tampered, TokenKind::Ticket, 1_000),
            Err(TicketError::Forged)
        );
    }

    #[test]
    fn a_nonce_is_consumed_once_and_forgotten_after_expiry() {
        let used = UsedNonces::default();
        let c = claims(TokenKind::Ticket, 2_000);
        assert!(used.consume(&c));
        assert!(!used.consume(&c));
        used.purge_expired(1_999);
        assert_eq!(used.len(), 1);
        used.purge_expired(2_000);
        assert!(used.is_empty());
    }
}
