//! Decode errors and the RFC 5354 §3.12 error causes they map to.

use core::fmt;

/// Why bytes could not be decoded, where, and in which field.
///
/// Every error a peer can provoke is one of these; [`ErrorCause::from`] turns it into the cause
/// a registrar sends back in an Operational Error parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The RFC name of the field or parameter being decoded, e.g. `"PoolHandle"`.
    pub field: &'static str,
    /// Byte offset from the start of the outermost buffer handed to the decoder.
    pub offset: usize,
}

/// The kind of a [`DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A length field is below its minimum or disagrees with the fixed size of its value.
    BadLength,
    /// Padding after a parameter is not zero, or is cut short before another parameter.
    BadPadding,
    /// A field holds a value the RFC forbids (e.g. a pool handle longer than our cap).
    BadValue,
    /// A parameter allowed once appears twice.
    Duplicate,
    /// A mandatory parameter is absent.
    Missing,
    /// More items than a named cap allows (see the `*_MAX` constants).
    TooMany,
    /// Bytes follow the end given by a length field.
    Trailing,
    /// The buffer ends before a field or a declared length does.
    Truncated,
    /// A known parameter appears where the message does not allow it.
    Unexpected,
    /// The message type is not one we know.
    UnknownMessage,
    /// An unrecognised parameter whose action bits say "stop" (RFC 5354 §3).
    UnknownParameter {
        /// The action bits also say "report" (an Unrecognized Parameter error goes back).
        report: bool,
    },
}

impl DecodeError {
    pub(crate) const fn new(kind: DecodeErrorKind, field: &'static str, offset: usize) -> Self {
        Self { kind, field, offset }
    }

    /// Whether the sender should get an error back. Only an unknown parameter whose action bits
    /// are `00` is discarded silently (RFC 5354 §3).
    pub fn should_report(&self) -> bool {
        !matches!(self.kind, DecodeErrorKind::UnknownParameter { report: false })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} in {} at offset {}", self.kind, self.field, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Error cause code of an Operational Error parameter (RFC 5354 §3.12, Table 2). Open: an unknown
/// code is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCause(pub u16);

impl ErrorCause {
    /// Unspecified Error (§3.12.1).
    pub const UNSPECIFIED: Self = Self(0x0);
    /// Unrecognized Parameter (§3.12.2); carries the offending TLV.
    pub const UNRECOGNIZED_PARAMETER: Self = Self(0x1);
    /// Unrecognized Message (§3.12.3); carries the offending message.
    pub const UNRECOGNIZED_MESSAGE: Self = Self(0x2);
    /// Invalid Values (§3.12.4); carries the offending TLV.
    pub const INVALID_VALUES: Self = Self(0x3);
    /// Non-unique PE Identifier (§3.12.5).
    pub const NON_UNIQUE_PE_IDENTIFIER: Self = Self(0x4);
    /// Inconsistent Pooling Policy (§3.12.6); carries the pool's policy parameter.
    pub const INCONSISTENT_POOLING_POLICY: Self = Self(0x5);
    /// Lack of Resources (§3.12.7).
    pub const LACK_OF_RESOURCES: Self = Self(0x6);
    /// Inconsistent Transport Type (§3.12.8); carries the pool's transport parameter.
    pub const INCONSISTENT_TRANSPORT_TYPE: Self = Self(0x7);
    /// Inconsistent Data/Control Configuration (§3.12.9).
    pub const INCONSISTENT_DATA_CONTROL_CONFIGURATION: Self = Self(0x8);
    /// Unknown Pool Handle (§3.12.11).
    pub const UNKNOWN_POOL_HANDLE: Self = Self(0x9);
    /// Rejected due to security considerations (§3.12.10).
    pub const REJECTED_SECURITY: Self = Self(0xa);
}

impl fmt::Debug for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::UNSPECIFIED => "Unspecified",
            Self::UNRECOGNIZED_PARAMETER => "UnrecognizedParameter",
            Self::UNRECOGNIZED_MESSAGE => "UnrecognizedMessage",
            Self::INVALID_VALUES => "InvalidValues",
            Self::NON_UNIQUE_PE_IDENTIFIER => "NonUniquePeIdentifier",
            Self::INCONSISTENT_POOLING_POLICY => "InconsistentPoolingPolicy",
            Self::LACK_OF_RESOURCES => "LackOfResources",
            Self::INCONSISTENT_TRANSPORT_TYPE => "InconsistentTransportType",
            Self::INCONSISTENT_DATA_CONTROL_CONFIGURATION => "InconsistentDataControlConfiguration",
            Self::UNKNOWN_POOL_HANDLE => "UnknownPoolHandle",
            Self::REJECTED_SECURITY => "RejectedSecurity",
            _ => return write!(f, "ErrorCause(0x{:04x})", self.0),
        };
        f.write_str(name)
    }
}

/// The one mapping from a decode failure to the cause a registrar reports (RFC 5354 §3.12).
impl From<DecodeError> for ErrorCause {
    fn from(error: DecodeError) -> Self {
        match error.kind {
            DecodeErrorKind::UnknownMessage => Self::UNRECOGNIZED_MESSAGE,
            DecodeErrorKind::UnknownParameter { .. } => Self::UNRECOGNIZED_PARAMETER,
            // We hold at most a capped number of items; more is a resource limit of ours, not
            // a wrong value of theirs.
            DecodeErrorKind::TooMany => Self::LACK_OF_RESOURCES,
            DecodeErrorKind::BadLength
            | DecodeErrorKind::BadPadding
            | DecodeErrorKind::BadValue
            | DecodeErrorKind::Duplicate
            | DecodeErrorKind::Missing
            | DecodeErrorKind::Trailing
            | DecodeErrorKind::Truncated
            | DecodeErrorKind::Unexpected => Self::INVALID_VALUES,
        }
    }
}
