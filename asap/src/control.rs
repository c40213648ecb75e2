//! The PE side of the PE↔PU control channel (RFC 5352 §3.7-§3.9) as data: the ASAP Cookie a
//! PE sends its PU, and what a PU may send a PE on the control channel (Cookie Echo, Business
//! Card). The PU side is [`crate::pu::Failover`].
//!
//! No I/O: bytes in, bytes or typed values out. The channel itself is the user's SCTP
//! association, carrying ASAP with PPID 11 beside the application's own messages, when the
//! PE registered its SCTP transport with transport use "data plus control" (RFC 5354 §3.3).
//! [`crate::blocking::SctpService`] and [`crate::blocking::SctpPoolSession`] run it over a
//! transport.
//!
//! Not done: cookies are neither signed nor verified (§3.8 leaves their content to the PE),
//! and a PE does not send Business Cards of its own.

use codec::asap::{BusinessCard, Cookie, CookieEcho, Message, MessageType};
use codec::DecodeError;

/// Longest cookie a PE sends or a PU keeps. The RFC sets no bound; a cookie is state the PE
/// wants back after a failover, which a PU keeps in memory for each session, so a peer must
/// not make it large: 4 KiB fits every application state we know of (RSPLIB's are a few
/// hundred bytes).
pub const COOKIE_LEN_MAX: usize = 4_096;

/// What a PU sent on the control channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromPoolUser {
    /// A Business Card (§3.9): the PU's own pool, when it is a PE too, and its PEs.
    BusinessCard(BusinessCard),
    /// A Cookie Echo (§3.8): the PU failed over to us with the cookie of its former PE.
    CookieEcho(Vec<u8>),
}

/// Why control-channel bytes were dropped. Each names what was wrong; none is fatal to the
/// association (the PE or PU logs it and goes on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// A cookie longer than [`COOKIE_LEN_MAX`].
    CookieTooLong {
        /// Its length.
        len: usize,
    },
    /// Not an ASAP message.
    Decode(DecodeError),
    /// An ASAP message that does not belong on this side of the control channel.
    Unexpected(MessageType),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CookieTooLong { len } => {
                write!(f, "cookie of {len} bytes (at most {COOKIE_LEN_MAX})")
            }
            Self::Decode(e) => write!(f, "not ASAP: {e}"),
            Self::Unexpected(t) => write!(f, "unexpected ASAP message type {t:?}"),
        }
    }
}

impl std::error::Error for ControlError {}

impl From<DecodeError> for ControlError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// An ASAP Cookie (§2.2.11) carrying `state`, for a PE to send its PU (PPID 11).
pub fn cookie(state: &[u8]) -> Result<Vec<u8>, ControlError> {
    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.8
    //# The PE MAY send the
    //# ASAP_COOKIE message at any time after the control channel has been
    //# established.
    if state.len() > COOKIE_LEN_MAX {
        return Err(ControlError::CookieTooLong { len: state.len() });
    }
    let bytes = Message::Cookie(Cookie { cookie: state.to_vec() }).emit_to_vec();
    assert!(bytes.len() > state.len());
    Ok(bytes)
}

/// One control message a PE received from its PU. Any message other than Cookie Echo and
/// Business Card is an [`ControlError::Unexpected`] (a PU sends nothing else to a PE).
pub fn handle_from_pool_user(bytes: &[u8]) -> Result<FromPoolUser, ControlError> {
    match Message::parse(bytes)? {
        Message::CookieEcho(CookieEcho { cookie }) => {
            if cookie.len() > COOKIE_LEN_MAX {
                return Err(ControlError::CookieTooLong { len: cookie.len() });
            }
            Ok(FromPoolUser::CookieEcho(cookie))
        }
        //= https://www.rfc-editor.org/rfc/rfc5352#section-3.9
        //# BC1)  Find the Pool Handle parameter in the ASAP_BUSINESS_CARD message
        //# and if not found, silently discard the message.
        // (The codec rejects a card without a Pool Handle as Missing, so it is dropped.)
        Message::BusinessCard(card) => Ok(FromPoolUser::BusinessCard(card)),
        other => Err(ControlError::Unexpected(other.message_type())),
    }
}

#[cfg(test)]
mod tests {
    use codec::asap::EndpointUnreachable;
    use codec::{DecodeErrorKind, PoolElementId};

    use super::*;
    use crate::testing::{pool, pool_element};

    // Goal: a cookie leaves as an ASAP Cookie with the state unmodified, and the cap holds
    // at its boundary. Method: emit at the cap and one past it, parse back.
    #[test]
    fn cookie_round_trip_and_cap() {
        let state = vec![0xa5; COOKIE_LEN_MAX];
        let bytes = cookie(&state).unwrap();
        assert_eq!(Message::parse(&bytes), Ok(Message::Cookie(Cookie { cookie: state })));
        let long = vec![0; COOKIE_LEN_MAX + 1];
        assert_eq!(cookie(&long), Err(ControlError::CookieTooLong { len: COOKIE_LEN_MAX + 1 }));
    }

    //= https://www.rfc-editor.org/rfc/rfc5352#section-3.9
    //= type=test
    //# BC2)  Unpack the message and populate a preferred list for failover
    //# order.
    // Goal: a PE accepts a Cookie Echo and a Business Card from its PU and drops anything
    // else with a typed error, never a panic. Method: one of each, plus every truncation of
    // a Business Card.
    #[test]
    fn pool_user_messages_are_typed() {
        let echo = Message::CookieEcho(CookieEcho { cookie: b"pe=1;lines=2".to_vec() });
        let got = handle_from_pool_user(&echo.emit_to_vec());
        assert_eq!(got, Ok(FromPoolUser::CookieEcho(b"pe=1;lines=2".to_vec())));
        let card = BusinessCard { pool_handle: pool("p"), pool_elements: vec![pool_element(3)] };
        let bytes = Message::BusinessCard(card.clone()).emit_to_vec();
        assert_eq!(handle_from_pool_user(&bytes), Ok(FromPoolUser::BusinessCard(card)));
        for cut in 0..bytes.len() {
            assert!(handle_from_pool_user(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let report = Message::EndpointUnreachable(EndpointUnreachable {
            pool_handle: pool("p"),
            pe_id: PoolElementId(1),
        });
        let got = handle_from_pool_user(&report.emit_to_vec());
        assert_eq!(got, Err(ControlError::Unexpected(MessageType::ENDPOINT_UNREACHABLE)));
        let Err(ControlError::Decode(e)) = handle_from_pool_user(b"line\n") else { panic!() };
        assert_ne!(e.kind, DecodeErrorKind::Duplicate);
        let long = Message::CookieEcho(CookieEcho { cookie: vec![1; COOKIE_LEN_MAX + 1] });
        let got = handle_from_pool_user(&long.emit_to_vec());
        assert_eq!(got, Err(ControlError::CookieTooLong { len: COOKIE_LEN_MAX + 1 }));
    }
}
