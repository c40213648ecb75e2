//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

/// Decodes a hex string (whitespace allowed).
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() & 1 == 0, "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The RSPLIB 3.4.4 capture vectors: (protocol, frame, bytes).
pub fn rsplib_vectors() -> Vec<(String, u32, Vec<u8>)> {
    let text = include_str!("../vectors/rsplib-3.4.4.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap(), hex(f[3]))
        })
        .collect()
}
