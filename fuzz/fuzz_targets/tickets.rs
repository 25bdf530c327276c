//! Seat tickets and resume tokens (`server::domain::tickets`).
//!
//! 1. Any string given as a ticket or resume token is refused with an error, never a panic, and
//!    never accepted: nothing but the server's HMAC makes a valid token.
//! 2. Claims built from the input, once signed, verify to the same claims before their expiry, as
//!    `Expired` from it on, as `WrongKind` for the other kind, and not at all with one character
//!    changed or under another secret.

#![no_main]

use game_core::PlayerId;
use libfuzzer_sys::fuzz_target;
use server::domain::RoomId;
use server::domain::tickets::{Claims, Signer, TicketError, TokenKind};

const SECRET: &[u8] = b"fuzzing secret, 32 bytes or more!";

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(SECRET);
    // 1: arbitrary text as a token.
    let text = String::from_utf8_lossy(data);
    for kind in [TokenKind::Ticket, TokenKind::Resume] {
        for now in [0, u64::MAX] {
            assert!(signer.verify(&text, kind, now).is_err());
        }
    }

    // 2: claims from the input: kind, expiry, nonce, then "room/player".
    let Some((&kind_byte, rest)) = data.split_first() else {
        return;
    };
    let Some((expiry, rest)) = rest.split_at_checked(8) else {
        return;
    };
    let Some((nonce, rest)) = rest.split_at_checked(16) else {
        return;
    };
    let Ok(ids) = std::str::from_utf8(rest) else {
        return;
    };
    let Some((room, player)) = ids.split_once('/') else {
        return;
    };
    let (Ok(room_id), Ok(player_id)) = (RoomId::parse(room), PlayerId::parse(player)) else {
        return;
    };
    let (kind, other) = if kind_byte & 1 == 0 {
        (TokenKind::Ticket, TokenKind::Resume)
    } else {
        (TokenKind::Resume, TokenKind::Ticket)
    };
    let mut expires = [0u8; 8];
    expires.copy_from_slice(expiry);
    let expires_at_ms = u64::from_be_bytes(expires).max(1);
    let mut nonce_bytes = [0u8; 16];
    nonce_bytes.copy_from_slice(nonce);
    let claims = Claims {
        kind,
        room_id,
        player_id,
        expires_at_ms,
        nonce: nonce_bytes,
    };
    let token = signer.sign(&claims);
    assert!(
        token.len() <= 512,
        "the longest ids still fit the verifier's bound"
    );
    assert_eq!(signer.verify(&token, kind, expires_at_ms - 1), Ok(claims));
    assert_eq!(
        signer.verify(&token, kind, expires_at_ms),
        Err(TicketError::Expired)
    );
    assert_eq!(signer.verify(&token, other, 0), Err(TicketError::WrongKind));
    assert_eq!(
        Signer::new(b"another secret, not the server's").verify(&token, kind, 0),
        Err(TicketError::Forged)
    );
    // One character changed anywhere (the position and replacement come from the input).
    let position = usize::from(kind_byte) % token.len();
    let mut changed = token.into_bytes();
    changed[position] = if changed[position] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let changed = String::from_utf8(changed).unwrap_or_default();
    assert!(signer.verify(&changed, kind, 0).is_err());
});
