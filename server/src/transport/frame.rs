//! WebSocket frames as clients send them (RFC 6455 §5), parsed in place.
//!
//! A client frame is masked; the parser checks the header (FIN, RSV, opcode, MASK, length against
//! the limit) before any payload is needed, so an oversized frame is refused from its first bytes,
//! then unmasks the payload where it lies. Fragmented messages are not part of our protocol: a
//! continuation or a data frame without FIN is reported as such, and the session closes with 1003.

/// The longest client frame header: 2 bytes, a 64-bit length, the mask key.
pub const MAX_HEADER: usize = 14;
const MAX_CONTROL_PAYLOAD: usize = 125;

/// One complete client frame, its payload unmasked.
#[derive(Debug, PartialEq, Eq)]
pub enum InFrame<'a> {
    Binary(&'a [u8]),
    Text,
    /// A continuation, or a data frame without FIN: a fragmented message.
    Fragment,
    Ping(&'a [u8]),
    Pong,
    /// The client's close frame, with its status code if it gave one.
    Close(Option<u16>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is longer than the limit")]
    TooBig,
    #[error("client frames must be masked")]
    Unmasked,
    #[error("reserved bits or opcode")]
    Reserved,
    #[error("a control frame that is fragmented, too long or malformed")]
    BadControl,
}

/// Parses the frame at the start of `buf`, unmasking its payload in place. `Ok(None)`: the frame is
/// not complete yet. On success, also returns how many bytes of `buf` the frame took.
pub fn parse(
    buf: &mut [u8],
    max_payload: usize,
) -> Result<Option<(usize, InFrame<'_>)>, FrameError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let fin = first & 0x80 != 0;
    if first & 0x70 != 0 {
        return Err(FrameError::Reserved);
    }
    let opcode = first & 0x0f;
    if second & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (len, mut at) = match second & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b);
                (u64::from_be_bytes(be), 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let is_control = opcode & 0x08 != 0;
    if is_control && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(FrameError::BadControl);
    }
    if !matches!(opcode, 0x0..=0x2 | 0x8..=0xa) {
        return Err(FrameError::Reserved);
    }
    let len = usize::try_from(len).map_err(|_| FrameError::TooBig)?;
    if len > max_payload {
        return Err(FrameError::TooBig);
    }
    let Some(key) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let key = [key[0], key[1], key[2], key[3]];
    at += 4;
    let total = at + len;
    let Some(payload) = buf.get_mut(at..total) else {
        return Ok(None);
    };
    unmask(payload, key);
    let payload = &*payload;
    let frame = match opcode {
        0x2 if fin => InFrame::Binary(payload),
        0x1 if fin => InFrame::Text,
        0x0..=0x2 => InFrame::Fragment,
        0x8 => match payload {
            [] => InFrame::Close(None),
            [hi, lo, ..] => InFrame::Close(Some(u16::from_be_bytes([*hi, *lo]))),
            [_] => return Err(FrameError::BadControl),
        },
        0x9 => InFrame::Ping(payload),
        _ => InFrame::Pong,
    };
    Ok(Some((total, frame)))
}

fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let masked = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// Appends a frame header without its mask key: `first` is FIN, RSV and opcode, then the MASK bit
/// and the shortest length encoding (RFC 6455 §5.2). Shared by server frames and [`client_frame`].
pub fn push_header(buf: &mut Vec<u8>, first: u8, masked: bool, len: usize) {
    let mask = if masked { 0x80 } else { 0 };
    buf.push(first);
    match len {
        0..=125 => buf.push(mask | len as u8),
        126..=0xffff => {
            buf.push(mask | 126);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.push(mask | 127);
            buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Bytes of the header [`push_header`] writes for an unmasked frame of `len` bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

/// A masked client frame, as a client would send it: for tests and fuzzing.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::new();
    push_header(
        &mut frame,
        (u8::from(fin) << 7) | opcode,
        true,
        payload.len(),
    );
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn frames_of_every_kind() {
        let mut binary = client_frame(true, 2, b"hello", KEY);
        assert_eq!(
            parse(&mut binary, 4096),
            Ok(Some((11, InFrame::Binary(b"hello"))))
        );
        let mut close = client_frame(true, 8, &[0x03, 0xe8, b'b', b'y', b'e'], KEY);
        assert_eq!(
            parse(&mut close, 4096),
            Ok(Some((11, InFrame::Close(Some(1000)))))
        );
        let mut empty_close = client_frame(true, 8, &[], KEY);
        assert_eq!(
            parse(&mut empty_close, 4096).map(|f| f.map(|(_, f)| f)),
            Ok(Some(InFrame::Close(None)))
        );
        let mut ping = client_frame(true, 9, b"p", KEY);
        assert_eq!(
            parse(&mut ping, 4096).map(|f| f.map(|(_, f)| f)),
            Ok(Some(InFrame::Ping(b"p")))
        );
        for (fin, opcode, expected) in [
            (true, 1, InFrame::Text),
            (false, 2, InFrame::Fragment),
            (true, 0, InFrame::Fragment),
            (true, 10, InFrame::Pong),
        ] {
            let mut frame = client_frame(fin, opcode, b"x", KEY);
            assert_eq!(
                parse(&mut frame, 4096).map(|f| f.map(|(_, f)| f)),
                Ok(Some(expected))
            );
        }
    }

    #[test]
    fn bad_frames_are_refused_from_their_header() {
        // Too long: refused from the first four bytes, before the payload arrives.
        let mut big = client_frame(true, 2, &[0; 5000], KEY);
        assert_eq!(parse(&mut big[..4], 4096), Err(FrameError::TooBig));
        let mut huge = client_frame(true, 2, &[0; 70_000], KEY);
        assert_eq!(parse(&mut huge[..10], 4096), Err(FrameError::TooBig));
        let mut unmasked = vec![0x82, 1, 7];
        assert_eq!(parse(&mut unmasked, 4096), Err(FrameError::Unmasked));
        let mut rsv = client_frame(true, 2, b"x", KEY);
        rsv[0] |= 0x40;
        assert_eq!(parse(&mut rsv, 4096), Err(FrameError::Reserved));
        let mut opcode = client_frame(true, 3, b"x", KEY);
        assert_eq!(parse(&mut opcode, 4096), Err(FrameError::Reserved));
        let mut long_ping = client_frame(true, 9, &[0; 126], KEY);
        assert_eq!(parse(&mut long_ping, 4096), Err(FrameError::BadControl));
        let mut fragmented_close = client_frame(false, 8, &[], KEY);
        assert_eq!(
            parse(&mut fragmented_close, 4096),
            Err(FrameError::BadControl)
        );
        let mut one_byte_close = client_frame(true, 8, &[3], KEY);
        assert_eq!(
            parse(&mut one_byte_close, 4096),
            Err(FrameError::BadControl)
        );
    }

    proptest! {
        /// Any frame within the limit parses whole from its bytes, its payload unmasked, and every
        /// strict prefix of it asks for more.
        #[test]
        fn a_frame_round_trips_and_its_prefixes_wait(
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            key in any::<[u8; 4]>(),
            trailing in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let frame = client_frame(true, 2, &payload, key);
            for cut in 0..frame.len() {
                let mut prefix = frame[..cut].to_vec();
                prop_assert_eq!(parse(&mut prefix, 4096), Ok(None));
            }
            let mut bytes = frame.clone();
            bytes.extend_from_slice(&trailing);
            let parsed = parse(&mut bytes, 4096);
            prop_assert_eq!(parsed, Ok(Some((frame.len(), InFrame::Binary(&payload[..])))));
        }

        /// Whatever the bytes, the parser answers without panicking and never claims more than it has.
        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let len = bytes.len();
            if let Ok(Some((taken, _))) = parse(&mut bytes, 32) {
                prop_assert!(taken <= len);
            }
        }
    }
}
