//! The datagram framing loadgen's own UDP targets speak (`udp-echo` and `model`). It is not
//! ASAP: it exists so the pipeline can be measured without the registrar and its SCTP, and it
//! carries what a completion needs (token, kind, status) in a fixed header.
//!
//! ```text
//!  0               8      9       10      12      16      20      24
//!  +---------------+------+-------+-------+-------+-------+-------+---- padding ----+
//!  | token (u64)   | kind | flags | status| pool  | elem. | zero  | to payload_bytes |
//!  +---------------+------+-------+-------+-------+-------+-------+------------------+
//! ```
//!
//! Integers are big-endian. An echo server returns the datagram unchanged, so a response with
//! `flags == REQUEST` and `status == 0` is a success too.

use crate::op::OpKind;

/// One datagram header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Client-chosen; comes back unchanged.
    pub token: u64,
    /// What the datagram asks for.
    pub kind: OpKind,
    /// [`REQUEST`] or [`RESPONSE`].
    pub flags: u8,
    /// 0 for success, else an ASAP error cause code (RFC 5354 §3.10).
    pub status: u16,
    /// Pool index.
    pub pool: u32,
    /// Pool element index.
    pub element: u32,
}

/// Why a datagram was not a [`Header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than [`HEADER_LEN`].
    Truncated,
    /// The kind byte names no [`OpKind`].
    UnknownKind(u8),
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes; the rest is padding and ignored.
    pub fn parse(bytes: &[u8]) -> Result<Header, DecodeError> {
        let b = bytes.get(..HEADER_LEN).ok_or(DecodeError::Truncated)?;
        let kind =
            OpKind::from_byte(b[field::KIND]).ok_or(DecodeError::UnknownKind(b[field::KIND]))?;
        Ok(Header {
            token: u64::from_be_bytes(array(&b[field::TOKEN])),
            kind,
            flags: b[field::FLAGS],
            status: u16::from_be_bytes(array(&b[field::STATUS])),
            pool: u32::from_be_bytes(array(&b[field::POOL])),
            element: u32::from_be_bytes(array(&b[field::ELEMENT])),
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buffer` and zeroes them up to
    /// its end. `buffer` must be at least [`HEADER_LEN`] long.
    pub fn emit(&self, buffer: &mut [u8]) {
        assert!(buffer.len() >= HEADER_LEN);
        buffer.fill(0);
        buffer[field::TOKEN].copy_from_slice(&self.token.to_be_bytes());
        buffer[field::KIND] = self.kind.to_byte();
        buffer[field::FLAGS] = self.flags;
        buffer[field::STATUS].copy_from_slice(&self.status.to_be_bytes());
        buffer[field::POOL].copy_from_slice(&self.pool.to_be_bytes());
        buffer[field::ELEMENT].copy_from_slice(&self.element.to_be_bytes());
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    // Callers pass a field range of exactly N bytes from a slice already checked to be
    // HEADER_LEN long.
    bytes.try_into().expect("field width")
}

mod field {
    use std::ops::Range;
    pub(super) const TOKEN: Range<usize> = 0..8;
    pub(super) const KIND: usize = 8;
    pub(super) const FLAGS: usize = 9;
    pub(super) const STATUS: Range<usize> = 10..12;
    pub(super) const POOL: Range<usize> = 12..16;
    pub(super) const ELEMENT: Range<usize> = 16..20;
    pub(super) const RESERVED: Range<usize> = 20..24;
}

/// `flags` of a request.
pub const REQUEST: u8 = 0x00;
/// `flags` of a response.
pub const RESPONSE: u8 = 0x01;
/// Fixed header length: the end of the last field.
pub const HEADER_LEN: usize = field::RESERVED.end;
/// Largest datagram: an Ethernet MTU less IPv4 and UDP headers, so that a run on a real NIC
/// never fragments.
pub const DATAGRAM_MAX: usize = 1_472;

const _: () = assert!(HEADER_LEN <= DATAGRAM_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_parse_round_trip_and_truncation() {
        // Goal: parse(emit(h)) == h, padding is zeroed, and every short buffer is rejected.
        // Method: emit into a 0xa5-filled buffer, then parse it back and cut it at each length.
        let header = Header {
            token: 0x0102_0304_0506_0708,
            kind: OpKind::Resolve,
            flags: RESPONSE,
            status: 0x0009,
            pool: 7,
            element: 0xdead_beef,
        };
        let mut buffer = [0xa5u8; 40];
        header.emit(&mut buffer);
        assert!(buffer[field::RESERVED.start..].iter().all(|&b| b == 0));
        assert_eq!(Header::parse(&buffer), Ok(header));
        for len in 0..HEADER_LEN {
            assert_eq!(Header::parse(&buffer[..len]), Err(DecodeError::Truncated));
        }
        buffer[field::KIND] = 0x77;
        assert_eq!(Header::parse(&buffer), Err(DecodeError::UnknownKind(0x77)));
    }
}
