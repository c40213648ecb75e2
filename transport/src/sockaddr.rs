//! Conversions between `std::net::SocketAddr` and the C `sockaddr` family, shared by every
//! backend that calls libc directly. No allocation; no panics on kernel-provided bytes.

use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes reserved for a peer name in receive buffers: `sockaddr_in6` holds IPv4 and IPv6.
pub(crate) const NAME_LEN: usize = mem::size_of::<libc::sockaddr_in6>();

const _: () = assert!(mem::size_of::<libc::sockaddr_in>() <= NAME_LEN);
const _: () = assert!(NAME_LEN <= mem::size_of::<libc::sockaddr_storage>());

/// Writes `addr` into `out` and returns the length the kernel must be told.
pub(crate) fn write(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    // SAFETY: sockaddr_storage is a plain C struct; all-zero is a valid value.
    *out = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in (asserted above).
            let sin = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Parses a `sockaddr_in` or `sockaddr_in6` from raw bytes, as the kernel wrote them.
/// Returns `None` for other families or short input.
pub(crate) fn parse(bytes: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
    if i32::from(family) == libc::AF_INET {
        let raw = bytes.get(..mem::size_of::<libc::sockaddr_in>())?;
        // Layout (linux/in.h): family u16, port u16 BE, addr [u8; 4].
        let port = u16::from_be_bytes([raw[2], raw[3]]);
        let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
        return Some(SocketAddr::V4(SocketAddrV4::new(ip, port)));
    }
    if i32::from(family) == libc::AF_INET6 {
        let raw = bytes.get(..mem::size_of::<libc::sockaddr_in6>())?;
        // Layout (linux/in6.h): family u16, port u16 BE, flowinfo u32, addr [u8; 16], scope u32.
        let port = u16::from_be_bytes([raw[2], raw[3]]);
        let flowinfo = u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&raw[8..24]);
        let scope_id = u32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]]);
        let ip = Ipv6Addr::from(octets);
        return Some(SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id)));
    }
    None
}

/// Views a `sockaddr_storage` prefix of `len` bytes as a byte slice, for `parse`.
pub(crate) fn storage_bytes(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> &[u8] {
    let len = (len as usize).min(mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: storage is a valid object of at least `len` bytes (clamped above).
    unsafe { std::slice::from_raw_parts(storage as *const _ as *const u8, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: write then parse is the identity for both families. Method: round-trip samples.
    #[test]
    fn sockaddr_round_trip() {
        let samples: [SocketAddr; 3] = [
            "127.0.0.1:9899".parse().unwrap(),
            "[::1]:3863".parse().unwrap(),
            "[fe80::1%7]:1".parse().unwrap(),
        ];
        for addr in samples {
            // SAFETY: all-zero sockaddr_storage is valid.
            let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let len = write(&addr, &mut storage);
            assert_eq!(parse(storage_bytes(&storage, len)), Some(addr));
        }
    }

    // Goal: short or foreign input never panics. Method: every truncation, and AF_UNIX.
    #[test]
    fn sockaddr_parse_rejects_short_and_foreign() {
        let addr: SocketAddr = "[::1]:3863".parse().unwrap();
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let len = write(&addr, &mut storage);
        let bytes = storage_bytes(&storage, len);
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), None);
        }
        let unix = (libc::AF_UNIX as u16).to_ne_bytes();
        assert_eq!(parse(&[unix[0], unix[1], 0, 0, 0, 0, 0, 0]), None);
    }
}
