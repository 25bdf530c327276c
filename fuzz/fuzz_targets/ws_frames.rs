//! Arbitrary bytes as a client's WebSocket stream into the transport's frame parser, the way a link
//! reads it: frame after frame from the front of a buffer. It must never panic, never claim more
//! bytes than it has or a payload over the limit, and a frame it accepts must be waited for (not
//! misread, not refused) when only a part of it has arrived.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::transport::frame::{InFrame, MAX_HEADER, parse};

const LIMIT: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut stream = data.to_vec();
    let mut at = 0;
    while at < stream.len() {
        let original = stream[at..].to_vec();
        let Ok(Some((taken, frame))) = parse(&mut stream[at..], LIMIT) else {
            break;
        };
        assert!(taken <= original.len() && taken <= LIMIT + MAX_HEADER);
        if let InFrame::Binary(payload) | InFrame::Ping(payload) = frame {
            assert!(payload.len() <= LIMIT);
        }
        for cut in 0..taken {
            let mut prefix = original[..cut].to_vec();
            assert_eq!(parse(&mut prefix, LIMIT), Ok(None), "a prefix of {cut} bytes");
        }
        at += taken;
    }
});
