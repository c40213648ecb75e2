//! Errors the handlespace returns to the registrar.

use core::fmt;

/// Why a registration (ASAP or ENRP) was rejected. Each variant is exactly one RFC 5354 §3.12
/// error cause; [`RegistrationError::cause_code`] gives the code for the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationError {
    /// 0x3 Invalid Values: an unknown policy type, no or too many addresses, a pool handle longer
    /// than the configured limit.
    InvalidValues,
    /// 0x5 Inconsistent Pooling Policy: the pool exists with another policy (RFC 5352 §3.1 rule 2).
    InconsistentPoolingPolicy,
    /// 0x6 Lack of Resources: a [`Limits`](crate::Limits) bound was reached.
    LackOfResources,
    /// 0x7 Inconsistent Transport Type: the pool exists with another transport protocol.
    InconsistentTransportType,
    /// 0x8 Inconsistent Data/Control Configuration: the pool exists with another transport use.
    InconsistentDataControlConfiguration,
}

impl RegistrationError {
    /// The RFC 5354 §3.12 Cause Code for this error.
    pub const fn cause_code(self) -> u16 {
        match self {
            Self::InvalidValues => 0x3,
            Self::InconsistentPoolingPolicy => 0x5,
            Self::LackOfResources => 0x6,
            Self::InconsistentTransportType => 0x7,
            Self::InconsistentDataControlConfiguration => 0x8,
        }
    }
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InvalidValues => "invalid values",
            Self::InconsistentPoolingPolicy => "inconsistent pooling policy",
            Self::LackOfResources => "lack of resources",
            Self::InconsistentTransportType => "inconsistent transport type",
            Self::InconsistentDataControlConfiguration => "inconsistent data/control configuration",
        };
        f.write_str(text)
    }
}

impl std::error::Error for RegistrationError {}

/// Why a handle resolution found nothing to select from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// 0x9 Unknown Pool Handle: no pool with this handle (RFC 5352 §3.3 answers with this cause).
    UnknownPoolHandle,
}

impl ResolveError {
    /// The RFC 5354 §3.12 Cause Code for this error.
    pub const fn cause_code(self) -> u16 {
        match self {
            Self::UnknownPoolHandle => 0x9,
        }
    }
}
