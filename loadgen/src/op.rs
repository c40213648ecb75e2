//! The vocabulary that crosses the seam: operations, their completions and error causes.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One association (an SCTP association to the registrar in the real target), numbered across
/// all workers so that reports and targets agree on names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssociationId(pub u32);

/// What an operation does. Variants are in alphabetical order; `INDEX` order is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// ASAP_DEREGISTRATION sent by a PE, completed by its response (RFC 5352 §2.2.2).
    Deregister,
    /// ASAP_ENDPOINT_KEEP_ALIVE received by a PE, completed when the ACK is sent
    /// (RFC 5352 §2.2.5, §2.2.6). Its latency is the PE's service time, not a round trip.
    KeepAlive,
    /// ASAP_REGISTRATION (first registration or re-registration), completed by its response
    /// (RFC 5352 §2.2.1).
    Register,
    /// ASAP_HANDLE_RESOLUTION from a PU, completed by its response (RFC 5352 §2.2.3).
    Resolve,
}

impl OpKind {
    /// Every kind, indexed by [`OpKind::index`].
    pub const ALL: [OpKind; OP_KINDS] =
        [OpKind::Deregister, OpKind::KeepAlive, OpKind::Register, OpKind::Resolve];

    /// Dense index for per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            OpKind::Deregister => 0,
            OpKind::KeepAlive => 1,
            OpKind::Register => 2,
            OpKind::Resolve => 3,
        }
    }

    /// Name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Deregister => "deregister",
            OpKind::KeepAlive => "keep-alive",
            OpKind::Register => "register",
            OpKind::Resolve => "resolve",
        }
    }

    /// Wire byte of the loadgen datagram framing (see [`crate::wire`]).
    pub fn to_byte(self) -> u8 {
        self.index() as u8 + 1
    }

    /// Inverse of [`OpKind::to_byte`]; `None` for anything else.
    pub fn from_byte(byte: u8) -> Option<OpKind> {
        OpKind::ALL.get(usize::from(byte).checked_sub(1)?).copied()
    }
}

/// Number of [`OpKind`] variants.
pub const OP_KINDS: usize = 4;

/// One operation the workload asks a [`crate::Client`] to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// What to do.
    pub kind: OpKind,
    /// Which association carries it. For PE operations this is the association the PE is
    /// on (its own, or shared with other PEs: `pe.per_association`).
    pub association: AssociationId,
    /// Pool index; the target maps it to a pool handle (see [`pool_handle`]).
    pub pool: u32,
    /// Pool element index (the PE identifier for PE operations; unused, zero, for resolutions).
    pub element: u32,
    /// When the operation was meant to start. In open loop this is the scheduled time, not the
    /// time it was sent, so that a slow target cannot hide its queueing delay (no coordinated
    /// omission).
    pub issued_at: Instant,
}

/// What came back for one [`Op`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The operation, exactly as submitted.
    pub op: Op,
    /// When the response arrived (or the error was decided).
    pub end: Instant,
    /// Success or the cause of failure.
    pub outcome: Outcome,
}

impl Completion {
    /// Latency from `op.issued_at` to `end`, saturating at zero.
    pub fn latency_ns(&self) -> u64 {
        let latency = self.end.saturating_duration_since(self.op.issued_at);
        u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Success, or why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The target returned an error cause or the operation failed locally.
    Fail(ErrorCause),
    /// The target answered the operation as asked.
    Succeed,
}

/// Why an operation failed. Local causes are kept apart from the registrar's own causes so that
/// a report never blames the registrar for the load generator's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorCause {
    /// An ASAP error cause code returned by the target (RFC 5352 §2.2; codes from RFC 5354
    /// §3.10, "Operation Error").
    Asap(u16),
    /// Local: the client's in-flight bound was reached, so an open-loop operation was not sent.
    Backpressure,
    /// The response did not make sense (wrong kind, malformed).
    Protocol,
    /// No response within `run.op_timeout_ms`.
    Timeout,
    /// A socket or association error.
    Transport,
}

impl ErrorCause {
    /// Human name used as the key of "errors by cause".
    pub fn name(self) -> String {
        match self {
            ErrorCause::Asap(code) => format!("asap-0x{code:04x}-{}", asap_cause_name(code)),
            ErrorCause::Backpressure => "local-backpressure".to_owned(),
            ErrorCause::Protocol => "protocol".to_owned(),
            ErrorCause::Timeout => "timeout".to_owned(),
            ErrorCause::Transport => "transport".to_owned(),
        }
    }
}

/// Names of the RFC 5354 §3.10 error causes as reports spell them (kebab case; codec's `Debug`
/// names are CamelCase, and changing the report keys would break saved JSON comparisons).
pub fn asap_cause_name(code: u16) -> &'static str {
    match code {
        0x0001 => "unrecognized-parameter",
        0x0002 => "unrecognized-message",
        0x0003 => "invalid-values",
        0x0004 => "non-unique-pe-identifier",
        0x0005 => "inconsistent-pooling-policy",
        0x0006 => "lack-of-resources",
        0x0007 => "inconsistent-transport-type",
        0x0008 => "inconsistent-data-control-configuration",
        0x0009 => "unknown-pool-handle",
        0x000a => "rejection-due-to-security",
        _ => "unknown",
    }
}

/// The pool handle the workload uses for pool index `pool`: `prefix` followed by the decimal
/// index, so that a person reading a capture can tell the pools apart.
pub fn pool_handle(prefix: &str, pool: u32) -> Vec<u8> {
    format!("{prefix}{pool}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_kind_byte_round_trip() {
        // Goal: the framing byte maps back to the same kind, and nothing else maps at all.
        for kind in OpKind::ALL {
            assert_eq!(OpKind::from_byte(kind.to_byte()), Some(kind));
            assert_eq!(OpKind::ALL[kind.index()], kind);
        }
        assert_eq!(OpKind::from_byte(0), None);
        assert_eq!(OpKind::from_byte(OP_KINDS as u8 + 1), None);
    }
}
