//! The admin endpoint's small HTTP/1.1 side: one request per connection (`Connection: close`),
//! parsed by httparse, with a bounded head, a bounded body and a read timeout, so a slow or
//! hostile client holds the admin thread for at most [`READ_TIMEOUT`] and never grows its
//! memory past [`HEAD_MAX`] + [`BODY_MAX`].
//!
//! It follows `metrics.rs` (same bounds, same shape) but also reads a body and headers, which
//! the metrics endpoint does not need; the metrics endpoint keeps its own listener and code
//! (see `admin.rs` for why the two are not one listener).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest request head accepted (request line and headers).
pub const HEAD_MAX: usize = 8 * 1024;
/// Longest request body accepted: the only body the API reads is `POST /api/v1/drain`'s
/// one-field JSON object.
pub const BODY_MAX: usize = 4 * 1024;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Headers parsed at most; a request with more is refused (431).
const HEADERS_MAX: usize = 32;

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The target's path, still percent-encoded.
    pub path: String,
    /// The target's query (after `?`), still percent-encoded; empty without one.
    pub query: String,
    /// The `Authorization` header's value, if any.
    pub authorization: Option<Vec<u8>>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// Why no request could be read: the status line to answer with, and a reason.
#[derive(Debug)]
pub struct Refusal {
    /// Status line, e.g. `400 Bad Request`.
    pub status: &'static str,
    /// What was wrong, for the JSON error.
    pub reason: String,
}

/// Reads one request from `stream`. `Ok(None)`: the client closed without sending one.
pub fn read_request(stream: &mut TcpStream) -> io::Result<Result<Option<Request>, Refusal>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut buffer = vec![0u8; HEAD_MAX + BODY_MAX];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buffer[filled..])?;
        if n == 0 {
            return Ok(Ok(None));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(&buffer[..filled]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if filled < HEAD_MAX => continue,
            Ok(httparse::Status::Partial) => {
                return Ok(Err(refusal("431 Request Header Fields Too Large", "request head")));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Ok(Err(refusal("431 Request Header Fields Too Large", "too many headers")));
            }
            Err(e) => return Ok(Err(refusal("400 Bad Request", &format!("bad request: {e}")))),
        };
        let header = |name: &str| {
            request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
        };
        let length = match header("content-length").map(parse_length) {
            None => 0,
            Some(Some(length)) if length <= BODY_MAX => length,
            Some(Some(_)) => return Ok(Err(refusal("413 Content Too Large", "body too large"))),
            Some(None) => return Ok(Err(refusal("400 Bad Request", "bad Content-Length"))),
        };
        if header("transfer-encoding").is_some() {
            return Ok(Err(refusal("411 Length Required", "chunked bodies are not read")));
        }
        let authorization = header("authorization").map(<[u8]>::to_vec);
        let target = request.path.unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (method, path, query) =
            (request.method.unwrap_or_default().to_owned(), path.to_owned(), query.to_owned());
        // The body may still be on its way.
        while filled < head_len + length {
            let n = stream.read(&mut buffer[filled..head_len + length])?;
            if n == 0 {
                return Ok(Err(refusal("400 Bad Request", "body shorter than Content-Length")));
            }
            filled += n;
        }
        let body = buffer[head_len..head_len + length].to_vec();
        return Ok(Ok(Some(Request { method, path, query, authorization, body })));
    }
}

fn parse_length(value: &[u8]) -> Option<usize> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn refusal(status: &'static str, reason: &str) -> Refusal {
    Refusal { status, reason: reason.to_owned() }
}

/// One answer: status line, content type, extra header lines (each ending in `\r\n`), body.
pub fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{extra_headers}\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Decodes `%XX` escapes into bytes; every other byte stands for itself (`+` too: handles are
/// bytes, not form fields). Errors name the offset of the bad escape.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                out.push(b);
                i += 3;
            }
            _ => return Err(format!("bad percent-encoding at offset {i}")),
        }
    }
    Ok(out)
}

/// Percent-encodes every byte outside RFC 3986's unreserved set, for a path segment or a
/// query value.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query's `key=value` pairs, values percent-decoded.
pub fn query_pairs(query: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((key.to_owned(), percent_decode(value).map_err(|e| format!("{key}: {e}"))?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: percent-encoding round-trips every byte, and a bad escape is an error naming its
    // offset, never a panic. Method: all 256 bytes; then truncated and non-hex escapes.
    #[test]
    fn percent_coding_round_trips_and_rejects_bad_escapes() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(percent_decode(&percent_encode(&all)).unwrap(), all);
        assert_eq!(percent_decode("a+b%20c").unwrap(), b"a+b c");
        for bad in ["%", "%4", "a%zz", "%+1", "%-1", "%é"] {
            let e = percent_decode(bad).unwrap_err();
            assert!(e.contains("offset"), "{bad}: {e}");
        }
        assert_eq!(percent_decode("%41").unwrap(), b"A");
    }
}
