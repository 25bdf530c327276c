//! `skirmish healthcheck`: the container's probe. It reads the same configuration as the server
//! (so `SKIRMISH_LISTEN` decides the port), sends `GET /healthz` over a plain TCP connection and
//! passes on a 2xx status line. No HTTP client and no name resolution: it must run inside a
//! `FROM scratch` image as a static binary.
//!
//! It asks `/healthz` (the process serves HTTP), not `/readyz` (the database answers): the server
//! rides out a database outage by buffering its writes, and an orchestrator that replaced every
//! node during one would end all their games.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::Config;

/// The path asked.
pub const PATH: &str = "/healthz";
/// Connecting, writing and reading each give up after this long.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The status line is read from at most this many bytes.
const MAX_HEAD: usize = 1024;

/// Why the probe failed: the one line printed to stderr.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{address}: {source}")]
    Io {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{address}: not an HTTP status line: {line:?}")]
    Malformed { address: SocketAddr, line: String },
    #[error("{address}{PATH} answered {status}")]
    Status { address: SocketAddr, status: String },
}

/// Where the probe connects for a server listening on `listen`: the loopback address of the same
/// family when it listens on every address (`0.0.0.0`, `::`), else the address itself.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        // `::` is dual-stack on Linux by default; 127.0.0.1 also works where IPv6 is turned off.
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Loads the configuration and probes the server it describes.
pub fn run() -> Result<String, Unhealthy> {
    let config = Config::load()?;
    probe(target(config.listen))
}

/// Sends `GET /healthz` to `address`; the status line when it is 2xx.
pub fn probe(address: SocketAddr) -> Result<String, Unhealthy> {
    let io = |source| Unhealthy::Io { address, source };
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|source| Unhealthy::Connect { address, source })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: skirmish-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let line = read_status_line(&mut stream).map_err(io)?;
    match status_code(&line) {
        Some(code) if (200..300).contains(&code) => Ok(line),
        Some(_) => Err(Unhealthy::Status {
            address,
            status: line,
        }),
        None => Err(Unhealthy::Malformed { address, line }),
    }
}

/// Reads up to the first line break (or `MAX_HEAD` bytes, or the end of the stream).
fn read_status_line(stream: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while head.len() < MAX_HEAD && !head.contains(&b'\n') {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(head.len())
        .min(MAX_HEAD);
    Ok(String::from_utf8_lossy(&head[..end]).trim_end().to_string())
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        let cases = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "127.0.0.1:8080"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("10.1.2.3:81", "10.1.2.3:81"),
            ("[::1]:82", "[::1]:82"),
        ];
        for (listen, expected) in cases {
            let listen: SocketAddr = listen.parse().unwrap();
            assert_eq!(target(listen).to_string(), expected, "{listen}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code("HTTP/1.0 204 No Content"), Some(204));
        assert_eq!(status_code("HTTP/1.1 503 Service Unavailable"), Some(503));
        assert_eq!(status_code("SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(status_code("HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code(""), None);
    }

    #[test]
    fn reads_the_first_line_only() {
        let mut response: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(read_status_line(&mut response).unwrap(), "HTTP/1.1 200 OK");
        let mut empty: &[u8] = b"";
        assert_eq!(read_status_line(&mut empty).unwrap(), "");
    }

    #[test]
    fn a_non_2xx_answer_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        });
        let error = probe(address).unwrap_err().to_string();
        server.join().unwrap();
        assert!(error.contains("503"), "{error}");
    }
}
