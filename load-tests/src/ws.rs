//! A lean WebSocket client (RFC 6455, `ws://` only) for the bots.
//!
//! One bot costs the generator a read and a write per tick; what a general-purpose client adds on top
//! (zeroing a read buffer before every read, an owned message and a waker proxy per frame, a sink
//! flush per send) was a third of the bots' CPU. This client keeps one buffer per connection, zeroed
//! once, hands out each binary payload as a slice of it, answers pings itself, and writes each frame
//! with one `write`.
//!
//! Cancel safety: [`Ws::next_frame`] and [`Ws::flush`] keep all their state in `Ws`, so a `select!`
//! may drop them at any await without losing or tearing a frame.

use std::fmt;
use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Largest frame accepted from the server (payload bytes).
pub const MAX_FRAME: usize = 1 << 20;
/// The read buffer's starting size: a few state frames.
const READ_BUF: usize = 4096;
/// Largest HTTP response head accepted for the upgrade.
const MAX_HEAD: usize = 8192;

#[derive(Debug)]
pub enum WsError {
    Io(io::Error),
    /// The connection ended without a close frame.
    Eof,
    /// The upgrade was refused: the status line, and the start of the body.
    Refused(String),
    Protocol(&'static str),
    Url(String),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Eof => f.write_str("connection closed without a close frame"),
            Self::Refused(s) => write!(f, "upgrade refused: {s}"),
            Self::Protocol(s) => write!(f, "protocol error: {s}"),
            Self::Url(s) => write!(f, "bad ws_url: {s}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A frame for the caller. Pings are answered inside; pongs are skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Binary(&'a [u8]),
    Text,
    /// The server's close code (1005 when the close frame has none).
    Close(u16),
}

/// A parsed frame header: where the payload is in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Header length in bytes.
    head: usize,
    len: usize,
}

/// Parses the frame header at the start of `buf`: None when more bytes are needed.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol(
            "reserved bits set (no extension was negotiated)",
        ));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut head) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (usize::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let n = u64::from_be_bytes(a);
            (usize::try_from(n).unwrap_or(usize::MAX), 10)
        }
        n => (usize::from(n), 2),
    };
    if len > MAX_FRAME {
        return Err(WsError::Protocol("frame larger than 1 MiB"));
    }
    let mask = if masked {
        let Some(b) = buf.get(head..head + 4) else {
            return Ok(None);
        };
        head += 4;
        Some([b[0], b[1], b[2], b[3]])
    } else {
        None
    };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        mask,
        head,
        len,
    }))
}

/// Appends one masked client frame (FIN set) to `out`.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// `ws://host:port/path?query` → (`host:port`, `host`, `/path?query`).
fn split_url(url: &str) -> Result<(String, String, String), WsError> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| {
        WsError::Url(format!(
            "{url}: only ws:// is supported (the bots test loopback servers)"
        ))
    })?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() {
        return Err(WsError::Url(format!("{url}: no host")));
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let addr = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_owned(), path))
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(T[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub struct Ws {
    stream: TcpStream,
    /// Read buffer: bytes `start..end` are received and not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being put together (rare: the server sends whole frames).
    fragments: Vec<u8>,
    fragment_opcode: Option<u8>,
    /// Bytes queued for the socket and not yet written.
    out: Vec<u8>,
    rng: u64,
}

impl Ws {
    /// Connects and upgrades. `seed` varies the handshake key and the masks.
    pub async fn connect(url: &str, seed: u64) -> Result<Self, WsError> {
        let (addr, host, path) = split_url(url)?;
        let stream = TcpStream::connect(&addr).await?;
        stream.set_nodelay(true)?;
        let mut ws = Self {
            stream,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            fragment_opcode: None,
            out: Vec::with_capacity(256),
            rng: seed | 1,
        };
        let mut key = [0u8; 16];
        for chunk in key.chunks_mut(8) {
            let r = ws.next_rand().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            base64(&key)
        );
        ws.out.extend_from_slice(request.as_bytes());
        ws.flush().await?;
        ws.read_upgrade().await?;
        Ok(ws)
    }

    /// Reads the HTTP response head; bytes after it stay in the buffer as the first frames.
    async fn read_upgrade(&mut self) -> Result<(), WsError> {
        loop {
            if let Some(i) = self.buf[..self.end]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                let head = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                let status = head.lines().next().unwrap_or_default();
                let upgraded = status.split_whitespace().nth(1) == Some("101")
                    && head.lines().any(|l| {
                        let l = l.to_ascii_lowercase();
                        l.starts_with("upgrade:") && l.contains("websocket")
                    });
                if !upgraded {
                    let body = String::from_utf8_lossy(&self.buf[i + 4..self.end]);
                    let body: String = body.chars().take(200).collect();
                    return Err(WsError::Refused(format!("{status} {body}")));
                }
                self.start = i + 4;
                return Ok(());
            }
            if self.end >= MAX_HEAD {
                return Err(WsError::Protocol("upgrade response head too long"));
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Err(WsError::Eof);
            }
            self.end += n;
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn mask(&mut self) -> [u8; 4] {
        let r = self.next_rand().to_le_bytes();
        [r[0], r[1], r[2], r[3]]
    }

    /// Queues a binary frame and writes it (one `write` unless the socket is full).
    pub async fn send_binary(&mut self, payload: &[u8]) -> Result<(), WsError> {
        let mask = self.mask();
        push_frame(&mut self.out, 0x2, payload, mask);
        self.flush().await
    }

    /// Queues a close frame with `code`, writes it, then reads (discarding) until the server's
    /// close or the end of the connection. Bound it with a timeout.
    pub async fn close(&mut self, code: u16) -> Result<(), WsError> {
        let mask = self.mask();
        push_frame(&mut self.out, 0x8, &code.to_be_bytes(), mask);
        self.flush().await?;
        loop {
            match self.next_frame().await {
                Ok(Incoming::Close(_)) | Err(WsError::Eof) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes whatever is queued.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stream.writable().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes what is queued if the socket takes it now; never waits.
    fn try_flush(&mut self) -> Result<(), WsError> {
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The next data or close frame. Pings are answered (queued, and written if the socket takes
    /// them at once, else before the next frame this client sends).
    pub async fn next_frame(&mut self) -> Result<Incoming<'_>, WsError> {
        loop {
            if let Some(h) = parse_header(&self.buf[self.start..self.end])? {
                let total = h.head + h.len;
                if self.end - self.start >= total {
                    let payload = self.start + h.head..self.start + total;
                    self.start += total;
                    if let Some(mask) = h.mask {
                        for (i, b) in self.buf[payload.clone()].iter_mut().enumerate() {
                            *b ^= mask[i & 3];
                        }
                    }
                    match self.handle(h, payload)? {
                        Some(Step::Binary(range)) => return Ok(Incoming::Binary(&self.buf[range])),
                        Some(Step::Assembled) => {
                            return Ok(Incoming::Binary(&self.fragments));
                        }
                        Some(Step::Text) => return Ok(Incoming::Text),
                        Some(Step::Close(code)) => return Ok(Incoming::Close(code)),
                        None => continue,
                    }
                }
                // Make room for the whole frame.
                self.compact();
                if self.buf.len() < total {
                    self.buf.resize(total, 0);
                }
            } else {
                self.compact();
            }
            if self.end == self.buf.len() {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                return Err(WsError::Eof);
            }
            self.end += n;
        }
    }

    /// Moves unread bytes to the front of the buffer (nothing to move in the common case).
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    fn handle(
        &mut self,
        h: Header,
        payload: std::ops::Range<usize>,
    ) -> Result<Option<Step>, WsError> {
        match h.opcode {
            0x1 | 0x2 if self.fragment_opcode.is_some() => {
                Err(WsError::Protocol("new message inside a fragmented one"))
            }
            0x1 if h.fin => Ok(Some(Step::Text)),
            0x2 if h.fin => Ok(Some(Step::Binary(payload))),
            0x1 | 0x2 => {
                self.fragment_opcode = Some(h.opcode);
                self.fragments.clear();
                self.fragments.extend_from_slice(&self.buf[payload]);
                Ok(None)
            }
            0x0 => {
                let Some(opcode) = self.fragment_opcode else {
                    return Err(WsError::Protocol("continuation without a message"));
                };
                if self.fragments.len() + payload.len() > MAX_FRAME {
                    return Err(WsError::Protocol("message larger than 1 MiB"));
                }
                self.fragments.extend_from_slice(&self.buf[payload]);
                if !h.fin {
                    return Ok(None);
                }
                self.fragment_opcode = None;
                Ok(Some(if opcode == 0x1 {
                    Step::Text
                } else {
                    Step::Assembled
                }))
            }
            0x8 => {
                let p = &self.buf[payload];
                let code = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    1005
                };
                // Answer the close (the handshake), echoing the code.
                let mask = self.mask();
                push_frame(&mut self.out, 0x8, &code.to_be_bytes(), mask);
                self.try_flush()?;
                Ok(Some(Step::Close(code)))
            }
            0x9 => {
                if h.len > 125 || !h.fin {
                    return Err(WsError::Protocol("bad ping"));
                }
                let mask = self.mask();
                let mut pong = Vec::with_capacity(h.len + 6);
                push_frame(&mut pong, 0xA, &self.buf[payload], mask);
                self.out.extend_from_slice(&pong);
                self.try_flush()?;
                Ok(None)
            }
            0xA => Ok(None),
            _ => Err(WsError::Protocol("unknown opcode")),
        }
    }
}

enum Step {
    Binary(std::ops::Range<usize>),
    Assembled,
    Text,
    Close(u16),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn headers_of_every_length_form() {
        assert_eq!(parse_header(&[0x82]).unwrap(), None);
        let h = parse_header(&[0x82, 5, 1, 2, 3, 4, 5]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.head, h.len, h.mask),
            (true, 2, 2, 5, None)
        );
        let h = parse_header(&[0x82, 126, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.head, h.len), (4, 256));
        assert_eq!(parse_header(&[0x82, 126, 0x01]).unwrap(), None);
        let h = parse_header(&[0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.fin, h.head, h.len), (false, 10, 65_536));
        let h = parse_header(&[0x89, 0x82, 9, 8, 7, 6, 0xaa, 0xbb])
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.opcode, h.head, h.len, h.mask),
            (9, 6, 2, Some([9, 8, 7, 6]))
        );
        assert!(parse_header(&[0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]).is_err());
        assert!(parse_header(&[0xc2, 0]).is_err());
    }

    #[test]
    fn client_frames_are_masked_and_round_trip() {
        for len in [0usize, 37, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            push_frame(&mut out, 2, &payload, [1, 2, 3, 4]);
            let h = parse_header(&out).unwrap().unwrap();
            assert_eq!((h.opcode, h.len, h.mask), (2, len, Some([1, 2, 3, 4])));
            let unmasked: Vec<u8> = out[h.head..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i & 3])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:8080/v1/ws?ticket=a.b").unwrap(),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/v1/ws?ticket=a.b".into()
            )
        );
        assert_eq!(split_url("ws://localhost").unwrap().0, "localhost:80");
        assert_eq!(split_url("ws://[::1]:9/x").unwrap().0, "[::1]:9");
        assert_eq!(split_url("ws://[::1]/x").unwrap().0, "[::1]:80");
        assert_eq!(split_url("ws://h?x=1").unwrap().2, "/?x=1");
        assert!(split_url("wss://h/").is_err());
        assert!(split_url("ws:///x").is_err());
    }

    #[test]
    fn base64_matches_the_rfc() {
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
