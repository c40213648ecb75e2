//! The stateless State Cookie (RFC 9260 §5.1.3) and the keyed generator for tags and TSNs.
//!
//! A listener keeps no state for an INIT: everything the association needs travels in the cookie,
//! authenticated with HMAC-SHA-256 under the endpoint's secret, and is checked again when the
//! COOKIE ECHO comes back (§5.1.5).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::time::Instant;

type HmacSha256 = Hmac<Sha256>;

/// The association parameters carried inside the cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CookieState {
    /// When the cookie was issued.
    pub(crate) created: Instant,
    /// Our Initiate Tag (the tag the peer puts on packets to us).
    pub(crate) local_tag: u32,
    /// The peer's Initiate Tag.
    pub(crate) peer_tag: u32,
    /// Our initial TSN.
    pub(crate) local_tsn: u32,
    /// The peer's initial TSN.
    pub(crate) peer_tsn: u32,
    /// The peer's a_rwnd.
    pub(crate) peer_rwnd: u32,
    /// Negotiated outbound streams.
    pub(crate) out_streams: u16,
    /// Negotiated inbound streams.
    pub(crate) in_streams: u16,
    /// Our SCTP port.
    pub(crate) local_port: u16,
    /// The peer's SCTP port.
    pub(crate) remote_port: u16,
    /// Tie-tags (§5.2.2): our and the peer's tags of the association existing when the INIT came.
    pub(crate) local_tie_tag: u32,
    /// See `local_tie_tag`.
    pub(crate) peer_tie_tag: u32,
    /// Address parameters of the INIT, at most `ADDRESSES_MAX`.
    pub(crate) addresses: [Option<IpAddr>; ADDRESSES_MAX],
}

/// Peer address parameters kept from an INIT or INIT ACK; more are ignored. Eight covers every
/// multi-homed server we know of and keeps the cookie inside one packet.
pub(crate) const ADDRESSES_MAX: usize = 8;

const FIXED_LEN: usize = 8 + 4 * 5 + 2 * 4 + 4 * 2 + 1;
const ADDRESS_LEN: usize = 17;
const MAC_LEN: usize = 32;
/// The longest cookie we issue.
pub(crate) const COOKIE_LEN_MAX: usize = FIXED_LEN + ADDRESSES_MAX * ADDRESS_LEN + MAC_LEN;

impl CookieState {
    /// Serialises and signs into `out`; returns the length.
    pub(crate) fn seal(&self, key: &[u8; 32], out: &mut [u8; COOKIE_LEN_MAX]) -> usize {
        let mut n = 0;
        let mut put = |b: &[u8]| {
            out[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        put(&self.created.0.to_be_bytes());
        for v in [self.local_tag, self.peer_tag, self.local_tsn, self.peer_tsn, self.peer_rwnd] {
            put(&v.to_be_bytes());
        }
        for v in [self.out_streams, self.in_streams, self.local_port, self.remote_port] {
            put(&v.to_be_bytes());
        }
        put(&self.local_tie_tag.to_be_bytes());
        put(&self.peer_tie_tag.to_be_bytes());
        let count = self.addresses.iter().flatten().count();
        put(&[count as u8]);
        for a in self.addresses.iter().flatten() {
            let mut rec = [0u8; ADDRESS_LEN];
            match a {
                IpAddr::V4(v4) => {
                    rec[0] = 4;
                    rec[1..5].copy_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    rec[0] = 6;
                    rec[1..17].copy_from_slice(&v6.octets());
                }
            }
            put(&rec);
        }
        let body_len = n;
        let tag = mac(key, &out[..body_len]);
        out[body_len..body_len + MAC_LEN].copy_from_slice(&tag);
        let total = body_len + MAC_LEN;
        assert_eq!(total, FIXED_LEN + count * ADDRESS_LEN + MAC_LEN);
        total
    }

    /// Authenticates and decodes a cookie (§5.1.5 steps 1-2). The lifetime is checked by the
    /// caller, because §5.2.4 accepts an old cookie whose tags match the association.
    pub(crate) fn open(key: &[u8; 32], cookie: &[u8]) -> Option<CookieState> {
        if cookie.len() < FIXED_LEN + MAC_LEN || cookie.len() > COOKIE_LEN_MAX {
            return None;
        }
        let (body, tag) = cookie.split_at(cookie.len() - MAC_LEN);
        let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        m.update(body);
        m.verify_slice(tag).ok()?; // constant-time comparison
        let count = usize::from(body[FIXED_LEN - 1]);
        if count > ADDRESSES_MAX || body.len() != FIXED_LEN + count * ADDRESS_LEN {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let u16_at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&body[..8]);
        let mut addresses = [None; ADDRESSES_MAX];
        for (i, slot) in addresses.iter_mut().enumerate().take(count) {
            let rec = &body[FIXED_LEN + i * ADDRESS_LEN..FIXED_LEN + (i + 1) * ADDRESS_LEN];
            *slot = match rec[0] {
                4 => Some(IpAddr::V4(Ipv4Addr::new(rec[1], rec[2], rec[3], rec[4]))),
                _ => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&rec[1..17]);
                    Some(IpAddr::V6(Ipv6Addr::from(o)))
                }
            };
        }
        Some(CookieState {
            created: Instant(u64::from_be_bytes(created)),
            local_tag: u32_at(8),
            peer_tag: u32_at(12),
            local_tsn: u32_at(16),
            peer_tsn: u32_at(20),
            peer_rwnd: u32_at(24),
            out_streams: u16_at(28),
            in_streams: u16_at(30),
            local_port: u16_at(32),
            remote_port: u16_at(34),
            local_tie_tag: u32_at(36),
            peer_tie_tag: u32_at(40),
            addresses,
        })
    }
}

fn mac(key: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// Unpredictable 32-bit values for Verification Tags and initial TSNs (§5.3.1), from SHA-256 over
/// a key derived from the endpoint secret and a counter. Deterministic for a given secret, which
/// the simulation tests need; unpredictable without the secret, which §5.3.1 needs.
pub(crate) struct TagSource {
    key: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl TagSource {
    pub(crate) fn new(secret: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"sctp tag source");
        h.update(secret);
        TagSource { key: h.finalize().into(), counter: 0, block: [0; 32], used: 32 }
    }

    /// A source for core `core` of a steering group sharing `secret`: the cores' sequences
    /// differ, so that two cores never hand out the same tags in step.
    pub(crate) fn for_core(secret: &[u8; 32], core: u32) -> Self {
        let mut source = Self::new(secret);
        let mut h = Sha256::new();
        h.update(source.key);
        h.update(b"core");
        h.update(core.to_be_bytes());
        source.key = h.finalize().into();
        source
    }

    /// The next value that is `target` modulo `cores`; never zero.
    pub(crate) fn next_steered(&mut self, cores: u32, target: u32) -> u32 {
        assert!(target < cores);
        loop {
            let v = self.next_nonzero();
            // Replace the residue; drop the rare value whose block would overflow or be zero.
            if let Some(tag) = (v - v % cores).checked_add(target).filter(|&t| t != 0) {
                return tag;
            }
        }
    }

    /// The next value; never zero (a zero Initiate Tag is invalid).
    pub(crate) fn next_nonzero(&mut self) -> u32 {
        loop {
            if self.used == 32 {
                let mut h = Sha256::new();
                h.update(self.key);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.block = h.finalize().into();
                self.used = 0;
            }
            let b = &self.block[self.used..self.used + 4];
            self.used += 4;
            let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if v != 0 {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CookieState {
        let mut addresses = [None; ADDRESSES_MAX];
        addresses[0] = Some("10.0.0.1".parse().unwrap());
        addresses[1] = Some("fe80::1".parse().unwrap());
        CookieState {
            created: Instant(123_456),
            local_tag: 1,
            peer_tag: 2,
            local_tsn: 3,
            peer_tsn: 4,
            peer_rwnd: 5,
            out_streams: 6,
            in_streams: 7,
            local_port: 8,
            remote_port: 9,
            local_tie_tag: 10,
            peer_tie_tag: 11,
            addresses,
        }
    }

    // Goal: a sealed cookie opens to the same state; any flipped bit or other key fails.
    #[test]
    fn cookie_round_trip_and_tamper() {
        let key = [7u8; 32];
        let mut buf = [0xa5u8; COOKIE_LEN_MAX];
        let n = sample().seal(&key, &mut buf);
        assert_eq!(CookieState::open(&key, &buf[..n]), Some(sample()));
        assert_eq!(CookieState::open(&[8u8; 32], &buf[..n]), None);
        for i in 0..n {
            let mut b = buf;
            b[i] ^= 0x10;
            assert_eq!(CookieState::open(&key, &b[..n]), None, "bit flip at {i}");
        }
        for cut in 0..n {
            assert_eq!(CookieState::open(&key, &buf[..cut]), None);
        }
    }
}
