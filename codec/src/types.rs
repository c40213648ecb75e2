//! Newtypes for the RFC nouns shared by every crate: pool handles, identifiers, policy types.

use core::fmt;

/// Longest pool handle we accept, in bytes.
///
/// RFC 5351 leaves the length open; RSPLIB caps it at 32 bytes (`MAX_POOLHANDLESIZE`), so a
/// larger cap buys interoperability headroom while keeping per-pool memory small and bounded.
pub const POOL_HANDLE_LENGTH_MAX: usize = 64;

/// A pool handle (RFC 5351 §3): an opaque, non-empty byte string naming a pool.
///
/// Stored inline (no heap) so that a handle can be copied into a cross-core message or a hash
/// key without allocation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolHandle {
    length: u8,
    /// The handle, then zeros (so the derived comparisons agree with [`PoolHandle::as_bytes`]).
    bytes: [u8; POOL_HANDLE_LENGTH_MAX],
}

/// Hashes the handle's bytes only, not the 64-byte array: a handle is a hash key on the
/// registrar's hot path, and most handles are a few bytes long. Consistent with `Eq`, which
/// sees equal arrays exactly when the bytes are equal (the tail is always zero).
impl core::hash::Hash for PoolHandle {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
    }
}

/// Why bytes cannot be a pool handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolHandleError {
    /// The handle is empty.
    Empty,
    /// The handle is longer than [`POOL_HANDLE_LENGTH_MAX`].
    TooLong,
}

impl PoolHandle {
    /// Makes a pool handle from its bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, PoolHandleError> {
        if bytes.is_empty() {
            return Err(PoolHandleError::Empty);
        }
        if bytes.len() > POOL_HANDLE_LENGTH_MAX {
            return Err(PoolHandleError::TooLong);
        }
        let mut out = Self { length: 0, bytes: [0; POOL_HANDLE_LENGTH_MAX] };
        out.bytes[..bytes.len()].copy_from_slice(bytes);
        out.length = u8::try_from(bytes.len()).expect("bounded by POOL_HANDLE_LENGTH_MAX above");
        Ok(out)
    }

    /// The handle's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.length)]
    }
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "PoolHandle({s:?})"),
            _ => write!(f, "PoolHandle(0x{})", Hex(self.as_bytes())),
        }
    }
}

impl fmt::Display for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => f.write_str(s),
            Err(_) => write!(f, "0x{}", Hex(self.as_bytes())),
        }
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Pool element identifier (RFC 5352 §2.2.1, RFC 5354 §3.14): chosen by the PE, unique per pool.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolElementId(pub u32);

/// Registrar (ENRP server) identifier (RFC 5353 §2.1): random, non-zero, unique in the operational
/// scope.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrarId(pub u32);

impl fmt::Debug for PoolElementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolElementId(0x{:08x})", self.0)
    }
}

impl fmt::Debug for RegistrarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistrarId(0x{:08x})", self.0)
    }
}

/// Pool member selection policy type (RFC 5356 §4.1 and RSPLIB's private range). Open: an
/// unknown value is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyType(pub u32);

impl PolicyType {
    /// Round Robin (RFC 5356 §2.1.1).
    pub const ROUND_ROBIN: Self = Self(0x0000_0001);
    /// Weighted Round Robin (RFC 5356 §2.2.1).
    pub const WEIGHTED_ROUND_ROBIN: Self = Self(0x0000_0002);
    /// Random (RFC 5356 §2.1.2).
    pub const RANDOM: Self = Self(0x0000_0003);
    /// Weighted Random (RFC 5356 §2.2.2).
    pub const WEIGHTED_RANDOM: Self = Self(0x0000_0004);
    /// Priority (RFC 5356 §2.2.3).
    pub const PRIORITY: Self = Self(0x0000_0005);
    /// Least Used (RFC 5356 §5.1; IANA value 0x40000001, §7).
    pub const LEAST_USED: Self = Self(0x4000_0001);
    /// Least Used with Degradation (RFC 5356 §5.2).
    pub const LEAST_USED_DEGRADATION: Self = Self(0x4000_0002);
    /// Priority Least Used (RFC 5356 §5.3).
    pub const PRIORITY_LEAST_USED: Self = Self(0x4000_0003);
    /// Randomized Least Used (RFC 5356 §5.4).
    pub const RANDOMIZED_LEAST_USED: Self = Self(0x4000_0004);
    /// RSPLIB private: Randomized Priority Least Used.
    pub const RANDOMIZED_PRIORITY_LEAST_USED: Self = Self(0xb000_1001);
    /// RSPLIB private: Randomized Least Used with Degradation.
    pub const RANDOMIZED_LEAST_USED_DEGRADATION: Self = Self(0xb000_1002);
    /// RSPLIB private: Priority Least Used with Degradation.
    pub const PRIORITY_LEAST_USED_DEGRADATION: Self = Self(0xb000_1003);
    /// RSPLIB private: Randomized Priority Least Used with Degradation.
    pub const RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION: Self = Self(0xb000_1004);
    /// RSPLIB private: Weighted Random with Distance Penalty Factor.
    pub const WEIGHTED_RANDOM_DPF: Self = Self(0xb000_2001);
    /// RSPLIB private: Least Used with Distance Penalty Factor.
    pub const LEAST_USED_DPF: Self = Self(0xb000_2002);
    /// RSPLIB private: Least Used with Degradation and Distance Penalty Factor.
    pub const LEAST_USED_DEGRADATION_DPF: Self = Self(0xb000_2003);
}

impl fmt::Debug for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::ROUND_ROBIN => "RoundRobin",
            Self::WEIGHTED_ROUND_ROBIN => "WeightedRoundRobin",
            Self::RANDOM => "Random",
            Self::WEIGHTED_RANDOM => "WeightedRandom",
            Self::PRIORITY => "Priority",
            Self::LEAST_USED => "LeastUsed",
            Self::LEAST_USED_DEGRADATION => "LeastUsedDegradation",
            Self::PRIORITY_LEAST_USED => "PriorityLeastUsed",
            Self::RANDOMIZED_LEAST_USED => "RandomizedLeastUsed",
            Self::RANDOMIZED_PRIORITY_LEAST_USED => "RandomizedPriorityLeastUsed",
            Self::RANDOMIZED_LEAST_USED_DEGRADATION => "RandomizedLeastUsedDegradation",
            Self::PRIORITY_LEAST_USED_DEGRADATION => "PriorityLeastUsedDegradation",
            Self::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => {
                "RandomizedPriorityLeastUsedDegradation"
            }
            Self::WEIGHTED_RANDOM_DPF => "WeightedRandomDpf",
            Self::LEAST_USED_DPF => "LeastUsedDpf",
            Self::LEAST_USED_DEGRADATION_DPF => "LeastUsedDegradationDpf",
            _ => return write!(f, "PolicyType(0x{:08x})", self.0),
        };
        f.write_str(name)
    }
}

/// Transport use of an SCTP or TCP user transport (RFC 5354 §3.3): data only, or data plus
/// control channel. Open: an unknown value is kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportUse(pub u16);

impl TransportUse {
    /// Data only.
    pub const DATA_ONLY: Self = Self(0x0000);
    /// Data plus control.
    pub const DATA_PLUS_CONTROL: Self = Self(0x0001);
}

impl fmt::Debug for TransportUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DATA_ONLY => f.write_str("DataOnly"),
            Self::DATA_PLUS_CONTROL => f.write_str("DataPlusControl"),
            _ => write!(f, "TransportUse(0x{:04x})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the pool handle newtype enforces its bounds at both ends.
    // Method: a boundary pair at the maximum length, and the empty handle.
    #[test]
    fn pool_handle_bounds() {
        assert!(PoolHandle::new(&[b'a'; POOL_HANDLE_LENGTH_MAX]).is_ok());
        assert_eq!(
            PoolHandle::new(&[b'a'; POOL_HANDLE_LENGTH_MAX + 1]),
            Err(PoolHandleError::TooLong)
        );
        assert_eq!(PoolHandle::new(b""), Err(PoolHandleError::Empty));
        assert_eq!(PoolHandle::new(b"EchoPool").unwrap().as_bytes(), b"EchoPool");
    }
}
