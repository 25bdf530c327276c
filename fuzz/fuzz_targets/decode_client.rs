//! Arbitrary bytes into the client-frame decoder: it must never panic, everything it accepts must be
//! valid (finite direction of length <= 1, chat of 1..=200 characters), and an accepted message must
//! survive a re-encode and decode unchanged.

#![no_main]

use game_core::arena::{Arena, RawDirection};
use libfuzzer_sys::fuzz_target;
use protocol::{
    ClientMessage, MAX_CHAT_CHARS, MAX_CLIENT_FRAME_BYTES, decode_client, encode_client,
};

fuzz_target!(|data: &[u8]| {
    let decoded = match decode_client::<Arena>(data, MAX_CLIENT_FRAME_BYTES) {
        Ok(message) => message,
        Err(error) => {
            let _ = (error.code().as_str(), error.to_string());
            return;
        }
    };
    let wire = match &decoded {
        ClientMessage::Input { seq, input } => {
            assert!(input.dx().is_finite() && input.dy().is_finite());
            assert!(input.dx().hypot(input.dy()) <= 1.0);
            ClientMessage::Input {
                seq: *seq,
                input: RawDirection {
                    dx: input.dx(),
                    dy: input.dy(),
                },
            }
        }
        ClientMessage::Ping { id } => ClientMessage::Ping { id: *id },
        ClientMessage::Chat { text } => {
            assert!((1..=MAX_CHAT_CHARS).contains(&text.as_str().chars().count()));
            ClientMessage::Chat { text: text.clone() }
        }
        ClientMessage::Leave => ClientMessage::Leave,
    };
    let again = decode_client::<Arena>(&encode_client(&wire), MAX_CLIENT_FRAME_BYTES);
    assert_eq!(again.ok(), Some(decoded));
});
