//! ASAP messages (RFC 5352 §2.2): Reprs for all 14 types, the [`Message`] enum, and the
//! zero-allocation fast path for Handle Resolution and its response.

use core::fmt;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::message::{collect, message, Allowed, Body, MessageView};
use crate::param::{
    emit_pe_identifier, emit_pool_handle, pe_identifier_length, pool_handle_length,
    Cookie as CookieParameter, HandleResolutionOption, OperationalError, ParameterType, Policy,
    PoolElement, PoolElementSource, UserTransport,
};
use crate::types::{PoolElementId, PoolHandle, RegistrarId};
use crate::wire::{list_len, required, walk, Reader, Writer, MESSAGE_HEADER_LEN};

/// ASAP message type (RFC 5352 §2.2, Figure 1). Open: an unknown value is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// ASAP_REGISTRATION (§2.2.1).
    pub const REGISTRATION: Self = Self(0x01);
    /// ASAP_DEREGISTRATION (§2.2.2).
    pub const DEREGISTRATION: Self = Self(0x02);
    /// ASAP_REGISTRATION_RESPONSE (§2.2.3).
    pub const REGISTRATION_RESPONSE: Self = Self(0x03);
    /// ASAP_DEREGISTRATION_RESPONSE (§2.2.4).
    pub const DEREGISTRATION_RESPONSE: Self = Self(0x04);
    /// ASAP_HANDLE_RESOLUTION (§2.2.5).
    pub const HANDLE_RESOLUTION: Self = Self(0x05);
    /// ASAP_HANDLE_RESOLUTION_RESPONSE (§2.2.6).
    pub const HANDLE_RESOLUTION_RESPONSE: Self = Self(0x06);
    /// ASAP_ENDPOINT_KEEP_ALIVE (§2.2.7).
    pub const ENDPOINT_KEEP_ALIVE: Self = Self(0x07);
    /// ASAP_ENDPOINT_KEEP_ALIVE_ACK (§2.2.8).
    pub const ENDPOINT_KEEP_ALIVE_ACK: Self = Self(0x08);
    /// ASAP_ENDPOINT_UNREACHABLE (§2.2.9).
    pub const ENDPOINT_UNREACHABLE: Self = Self(0x09);
    /// ASAP_SERVER_ANNOUNCE (§2.2.10).
    pub const SERVER_ANNOUNCE: Self = Self(0x0a);
    /// ASAP_COOKIE (§2.2.11).
    pub const COOKIE: Self = Self(0x0b);
    /// ASAP_COOKIE_ECHO (§2.2.12).
    pub const COOKIE_ECHO: Self = Self(0x0c);
    /// ASAP_BUSINESS_CARD (§2.2.13).
    pub const BUSINESS_CARD: Self = Self(0x0d);
    /// ASAP_ERROR (§2.2.14).
    pub const ERROR: Self = Self(0x0e);
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "asap::MessageType(0x{:02x})", self.0)
    }
}

/// The one flag bit each ASAP message defines (R, S, A or H) is the lowest bit.
const FLAG_BIT: u8 = 0x01;

/// Any ASAP message, owned.
// Kept inline: boxing the PE-carrying variants would cost an allocation per parse.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// ASAP_REGISTRATION.
    Registration(Registration),
    /// ASAP_DEREGISTRATION.
    Deregistration(Deregistration),
    /// ASAP_REGISTRATION_RESPONSE.
    RegistrationResponse(RegistrationResponse),
    /// ASAP_DEREGISTRATION_RESPONSE.
    DeregistrationResponse(DeregistrationResponse),
    /// ASAP_HANDLE_RESOLUTION.
    HandleResolution(HandleResolution),
    /// ASAP_HANDLE_RESOLUTION_RESPONSE.
    HandleResolutionResponse(HandleResolutionResponse),
    /// ASAP_ENDPOINT_KEEP_ALIVE.
    EndpointKeepAlive(EndpointKeepAlive),
    /// ASAP_ENDPOINT_KEEP_ALIVE_ACK.
    EndpointKeepAliveAck(EndpointKeepAliveAck),
    /// ASAP_ENDPOINT_UNREACHABLE.
    EndpointUnreachable(EndpointUnreachable),
    /// ASAP_SERVER_ANNOUNCE.
    ServerAnnounce(ServerAnnounce),
    /// ASAP_COOKIE.
    Cookie(Cookie),
    /// ASAP_COOKIE_ECHO.
    CookieEcho(CookieEcho),
    /// ASAP_BUSINESS_CARD.
    BusinessCard(BusinessCard),
    /// ASAP_ERROR.
    Error(Error),
}

/// Calls `$f` on the Repr inside any `Message` variant.
macro_rules! each {
    ($m:expr, $x:ident => $f:expr) => {
        match $m {
            Message::Registration($x) => $f,
            Message::Deregistration($x) => $f,
            Message::RegistrationResponse($x) => $f,
            Message::DeregistrationResponse($x) => $f,
            Message::HandleResolution($x) => $f,
            Message::HandleResolutionResponse($x) => $f,
            Message::EndpointKeepAlive($x) => $f,
            Message::EndpointKeepAliveAck($x) => $f,
            Message::EndpointUnreachable($x) => $f,
            Message::ServerAnnounce($x) => $f,
            Message::Cookie($x) => $f,
            Message::CookieEcho($x) => $f,
            Message::BusinessCard($x) => $f,
            Message::Error($x) => $f,
        }
    };
}

impl Message {
    /// Parses one ASAP message; at most its padding may follow it in `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let view = MessageView::new_checked(bytes)?;
        let flags = view.flags();
        let r = view.body_reader();
        let message = match MessageType(view.message_type()) {
            MessageType::REGISTRATION => Self::Registration(Body::parse_body(flags, r)?),
            MessageType::DEREGISTRATION => Self::Deregistration(Body::parse_body(flags, r)?),
            MessageType::REGISTRATION_RESPONSE => {
                Self::RegistrationResponse(Body::parse_body(flags, r)?)
            }
            MessageType::DEREGISTRATION_RESPONSE => {
                Self::DeregistrationResponse(Body::parse_body(flags, r)?)
            }
            MessageType::HANDLE_RESOLUTION => Self::HandleResolution(Body::parse_body(flags, r)?),
            MessageType::HANDLE_RESOLUTION_RESPONSE => {
                Self::HandleResolutionResponse(Body::parse_body(flags, r)?)
            }
            MessageType::ENDPOINT_KEEP_ALIVE => {
                Self::EndpointKeepAlive(Body::parse_body(flags, r)?)
            }
            MessageType::ENDPOINT_KEEP_ALIVE_ACK => {
                Self::EndpointKeepAliveAck(Body::parse_body(flags, r)?)
            }
            MessageType::ENDPOINT_UNREACHABLE => {
                Self::EndpointUnreachable(Body::parse_body(flags, r)?)
            }
            MessageType::SERVER_ANNOUNCE => Self::ServerAnnounce(Body::parse_body(flags, r)?),
            MessageType::COOKIE => Self::Cookie(Body::parse_body(flags, r)?),
            MessageType::COOKIE_ECHO => Self::CookieEcho(Body::parse_body(flags, r)?),
            MessageType::BUSINESS_CARD => Self::BusinessCard(Body::parse_body(flags, r)?),
            MessageType::ERROR => Self::Error(Body::parse_body(flags, r)?),
            _ => return Err(DecodeError::new(DecodeErrorKind::UnknownMessage, "MessageType", 0)),
        };
        each!(&message, m => crate::message::check_emittable(m))?;
        Ok(message)
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        MessageType(each!(self, m => type_of(m)))
    }

    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        each!(self, m => m.buffer_len())
    }

    /// Emits into `buf` (at least [`Self::buffer_len`] bytes); returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        each!(self, m => m.emit(buf))
    }

    /// Emits into a new vector.
    pub fn emit_to_vec(&self) -> Vec<u8> {
        each!(self, m => m.emit_to_vec())
    }
}

fn type_of<B: Body>(_: &B) -> u8 {
    B::TYPE
}

fn lengths<const N: usize>(items: [Option<usize>; N]) -> usize {
    list_len(items.into_iter().flatten())
}

// ---- §2.2.1 Registration ----

/// ASAP_REGISTRATION (§2.2.1): a PE registers with its home registrar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The pool to join.
    pub pool_handle: PoolHandle,
    /// The PE.
    pub pool_element: PoolElement,
}
message!(Registration, RegistrationView, 0);

impl Body for Registration {
    const TYPE: u8 = MessageType::REGISTRATION.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        lengths([Some(pool_handle_length(&self.pool_handle)), Some(self.pool_element.length())])
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_pool_handle(w, &self.pool_handle);
        self.pool_element.emit(w);
    }
    fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::POOL_ELEMENT))?;
        Ok(Self {
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            pool_element: required(c.pool_element, "PoolElement", c.end)?,
        })
    }
}

// ---- §2.2.2, §2.2.8, §2.2.9: pool handle + PE identifier ----

macro_rules! handle_and_id {
    ($(#[$doc:meta])* $name:ident, $view:ident, $ty:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The pool.
            pub pool_handle: PoolHandle,
            /// The PE.
            pub pe_id: PoolElementId,
        }
        message!($name, $view, 0);

        impl Body for $name {
            const TYPE: u8 = $ty.0;
            fn flags(&self) -> u8 {
                0
            }
            fn body_len(&self) -> usize {
                lengths([Some(pool_handle_length(&self.pool_handle)), Some(pe_identifier_length())])
            }
            fn emit_body(&self, w: &mut Writer<'_>) {
                emit_pool_handle(w, &self.pool_handle);
                emit_pe_identifier(w, self.pe_id);
            }
            fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
                let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::PE_ID))?;
                Ok(Self {
                    pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
                    pe_id: required(c.pe_id, "PeIdentifier", c.end)?,
                })
            }
        }
    };
}

handle_and_id!(
    /// ASAP_DEREGISTRATION (§2.2.2): a PE leaves its pool.
    Deregistration,
    DeregistrationView,
    MessageType::DEREGISTRATION
);
handle_and_id!(
    /// ASAP_ENDPOINT_KEEP_ALIVE_ACK (§2.2.8): a PE answers a keep-alive.
    EndpointKeepAliveAck,
    EndpointKeepAliveAckView,
    MessageType::ENDPOINT_KEEP_ALIVE_ACK
);
handle_and_id!(
    /// ASAP_ENDPOINT_UNREACHABLE (§2.2.9): a PU or PE reports a PE it cannot reach.
    EndpointUnreachable,
    EndpointUnreachableView,
    MessageType::ENDPOINT_UNREACHABLE
);

// ---- §2.2.3 Registration Response, §2.2.4 Deregistration Response ----

/// ASAP_REGISTRATION_RESPONSE (§2.2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// R flag: the registration was rejected.
    pub reject: bool,
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE.
    pub pe_id: PoolElementId,
    /// Why it was rejected, or a warning.
    pub error: Option<OperationalError>,
}
message!(RegistrationResponse, RegistrationResponseView, 0);

impl Body for RegistrationResponse {
    const TYPE: u8 = MessageType::REGISTRATION_RESPONSE.0;
    fn flags(&self) -> u8 {
        if self.reject {
            FLAG_BIT
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        outcome_body_len(&self.pool_handle, self.error.as_ref())
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_outcome_body(w, &self.pool_handle, self.pe_id, self.error.as_ref());
    }
    fn parse_body(flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let (pool_handle, pe_id, error) = parse_outcome_body(r)?;
        Ok(Self { reject: flags & FLAG_BIT != 0, pool_handle, pe_id, error })
    }
}

/// ASAP_DEREGISTRATION_RESPONSE (§2.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeregistrationResponse {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE.
    pub pe_id: PoolElementId,
    /// What went wrong, if anything.
    pub error: Option<OperationalError>,
}
message!(DeregistrationResponse, DeregistrationResponseView, 0);

impl Body for DeregistrationResponse {
    const TYPE: u8 = MessageType::DEREGISTRATION_RESPONSE.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        outcome_body_len(&self.pool_handle, self.error.as_ref())
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_outcome_body(w, &self.pool_handle, self.pe_id, self.error.as_ref());
    }
    fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let (pool_handle, pe_id, error) = parse_outcome_body(r)?;
        Ok(Self { pool_handle, pe_id, error })
    }
}

// The two responses share one body: pool handle, PE identifier, optional Operational Error.

fn outcome_body_len(pool_handle: &PoolHandle, error: Option<&OperationalError>) -> usize {
    lengths([
        Some(pool_handle_length(pool_handle)),
        Some(pe_identifier_length()),
        error.map(OperationalError::length),
    ])
}

fn emit_outcome_body(
    w: &mut Writer<'_>,
    pool_handle: &PoolHandle,
    pe_id: PoolElementId,
    error: Option<&OperationalError>,
) {
    emit_pool_handle(w, pool_handle);
    emit_pe_identifier(w, pe_id);
    if let Some(e) = error {
        e.emit(w);
    }
}

fn parse_outcome_body(
    r: Reader<'_>,
) -> Result<(PoolHandle, PoolElementId, Option<OperationalError>), DecodeError> {
    let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::PE_ID).and(Allowed::ERROR))?;
    Ok((
        required(c.pool_handle, "PoolHandle", c.end)?,
        required(c.pe_id, "PeIdentifier", c.end)?,
        c.error,
    ))
}

// ---- §2.2.5 Handle Resolution ----

/// ASAP_HANDLE_RESOLUTION (§2.2.5), with RSPLIB's Handle Resolution option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleResolution {
    /// S flag: send updates while the association lives.
    pub subscribe: bool,
    /// The pool to resolve.
    pub pool_handle: PoolHandle,
    /// Handle Resolution option: PEs wanted.
    pub items_wanted: Option<u32>,
}
message!(@api HandleResolution, HandleResolutionView);

impl Body for HandleResolution {
    const TYPE: u8 = MessageType::HANDLE_RESOLUTION.0;
    fn flags(&self) -> u8 {
        if self.subscribe {
            FLAG_BIT
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        let option = self.items_wanted.map(|items_wanted| HandleResolutionOption { items_wanted });
        lengths([Some(pool_handle_length(&self.pool_handle)), option.map(|o| o.length())])
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_pool_handle(w, &self.pool_handle);
        if let Some(items_wanted) = self.items_wanted {
            HandleResolutionOption { items_wanted }.emit(w);
        }
    }
    fn parse_body(flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::HANDLE_RESOLUTION))?;
        Ok(Self {
            subscribe: flags & FLAG_BIT != 0,
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            items_wanted: c.handle_resolution.map(|o| o.items_wanted),
        })
    }
}

// ---- §2.2.6 Handle Resolution Response ----

/// ASAP_HANDLE_RESOLUTION_RESPONSE (§2.2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleResolutionResponse {
    /// A flag: the registrar accepted the subscription. RSPLIB names this bit "reject".
    pub accept_updates: bool,
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The pool's overall policy.
    pub overall_policy: Option<Policy>,
    /// The selected PEs, at most [`crate::POOL_ELEMENTS_PER_MESSAGE_MAX`].
    pub pool_elements: Vec<PoolElement>,
    /// Present when the resolution failed.
    pub error: Option<OperationalError>,
}
message!(HandleResolutionResponse, HandleResolutionResponseView, 0);

impl Body for HandleResolutionResponse {
    const TYPE: u8 = MessageType::HANDLE_RESOLUTION_RESPONSE.0;
    fn flags(&self) -> u8 {
        if self.accept_updates {
            FLAG_BIT
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        let mut body = response_body_len(
            &self.pool_handle,
            self.overall_policy.as_ref(),
            self.pool_elements.iter(),
        );
        if let Some(e) = &self.error {
            body = append_len(body, e.length());
        }
        body
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_response_body(
            w,
            &self.pool_handle,
            self.overall_policy.as_ref(),
            self.pool_elements.iter(),
        );
        if let Some(e) = &self.error {
            e.emit(w);
        }
    }
    fn parse_body(flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let allowed = Allowed::POOL_HANDLE
            .and(Allowed::POLICY)
            .and(Allowed::POOL_ELEMENTS)
            .and(Allowed::ERROR);
        let c = collect(r, allowed)?;
        Ok(Self {
            accept_updates: flags & FLAG_BIT != 0,
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            overall_policy: c.policy,
            pool_elements: c.pool_elements,
            error: c.error,
        })
    }
}

/// Appends a TLV of unpadded `length` to a list whose unpadded length is `list`.
fn append_len(list: usize, length: usize) -> usize {
    crate::wire::pad4(list) + length
}

fn response_body_len<'a>(
    pool_handle: &PoolHandle,
    overall_policy: Option<&Policy>,
    pool_elements: impl Iterator<Item = &'a PoolElement>,
) -> usize {
    let mut body = pool_handle_length(pool_handle);
    if let Some(p) = overall_policy {
        body = append_len(body, p.length());
    }
    pool_elements.fold(body, |body, pe| append_len(body, pe.length()))
}

fn emit_response_body<'a>(
    w: &mut Writer<'_>,
    pool_handle: &PoolHandle,
    overall_policy: Option<&Policy>,
    pool_elements: impl Iterator<Item = &'a PoolElement>,
) {
    emit_pool_handle(w, pool_handle);
    if let Some(p) = overall_policy {
        p.emit(w);
    }
    pool_elements.for_each(|pe| pe.emit(w));
}

/// A Handle Resolution Response that borrows its PEs: the registrar's hot path emits it
/// straight from its handlespace, with no allocation.
#[derive(Clone, Copy, Debug)]
pub struct HandleResolutionResponseRef<'a> {
    /// A flag: the subscription was accepted.
    pub accept_updates: bool,
    /// The pool.
    pub pool_handle: &'a PoolHandle,
    /// The pool's overall policy.
    pub overall_policy: Option<&'a Policy>,
    /// The selected PEs.
    pub pool_elements: &'a [&'a PoolElement],
}

impl HandleResolutionResponseRef<'_> {
    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let body = response_body_len(
            self.pool_handle,
            self.overall_policy,
            self.pool_elements.iter().copied(),
        );
        crate::wire::pad4(MESSAGE_HEADER_LEN + body)
    }

    /// Emits into `buf` (at least [`Self::buffer_len`] bytes); returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        assert!(self.pool_elements.len() <= crate::POOL_ELEMENTS_PER_MESSAGE_MAX);
        let flags = if self.accept_updates { FLAG_BIT } else { 0 };
        let mut w = Writer::new(buf);
        w.message(MessageType::HANDLE_RESOLUTION_RESPONSE.0, flags, |w| {
            emit_response_body(
                w,
                self.pool_handle,
                self.overall_policy,
                self.pool_elements.iter().copied(),
            );
        });
        // O(n) re-measure: debug builds only, this is the hot path.
        debug_assert_eq!(w.position(), self.buffer_len());
        w.position()
    }
}

impl HandleResolutionResponseRef<'_> {
    /// Writes into `out` (cleared first) this response followed by PEs as the registrar keeps
    /// them (encoded at registration, or fields encoded here), each with its current home
    /// registrar and without its ASAP Transport (registrars' business): the registrar's answer
    /// path, a header emit and one copy or field encode per PE. `self.pool_elements` must be
    /// empty (the PEs come from `encoded` instead).
    pub fn emit_with_encoded<'e, S: PoolElementSource + ?Sized + 'e>(
        &self,
        out: &mut Vec<u8>,
        encoded: impl IntoIterator<Item = (&'e S, RegistrarId)>,
    ) {
        assert!(self.pool_elements.is_empty(), "PEs come either borrowed or encoded");
        out.clear();
        // Everything appended starts on a 4-byte boundary: the prefix is padded (RFC 5354 §2).
        out.resize(self.buffer_len(), 0);
        let written = self.emit(out);
        assert_eq!(written, out.len());
        let mut unpadded_end = None;
        let mut count = 0usize;
        for (element, home) in encoded {
            unpadded_end = Some(element.append_for_pool_users(out, home));
            count += 1;
        }
        assert!(count <= crate::POOL_ELEMENTS_PER_MESSAGE_MAX);
        // RFC 5352 §2.1: the message length excludes the last parameter's padding. With no PE
        // appended, the prefix's own length is already right.
        if let Some(end) = unpadded_end {
            let length = u16::try_from(end).expect("bounded by POOL_ELEMENTS_PER_MESSAGE_MAX");
            out[2..4].copy_from_slice(&length.to_be_bytes());
        }
    }
}

/// Zero-copy view of a Handle Resolution: the registrar's hot message, validated without
/// allocating.
#[derive(Clone, Copy, Debug)]
pub struct HandleResolutionView<T: AsRef<[u8]>> {
    inner: MessageView<T>,
    handle_start: usize,
    handle_end: usize,
    items_wanted: Option<u32>,
}

impl<T: AsRef<[u8]>> HandleResolutionView<T> {
    /// Checks the header, the pool handle (present once, within its cap) and the option.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let inner = MessageView::new_checked(buffer)?;
        let view = &inner;
        if view.message_type() != MessageType::HANDLE_RESOLUTION.0 {
            return Err(DecodeError::new(DecodeErrorKind::Unexpected, "MessageType", 0));
        }
        let mut r = view.body_reader();
        let mut handle: Option<(usize, usize)> = None;
        let mut items_wanted: Option<u32> = None;
        walk(&mut r, crate::PARAMETERS_PER_MESSAGE_MAX, |tlv| {
            match tlv.ty {
                ParameterType::POOL_HANDLE => {
                    // Validates emptiness and the cap once, so `pool_handle()` cannot fail.
                    crate::param::check_pool_handle(&tlv)?;
                    let start = tlv.offset + crate::wire::TLV_HEADER_LEN;
                    let range = (start, start + tlv.value.remaining());
                    crate::wire::set_once(&mut handle, range, "PoolHandle", tlv.offset)?;
                }
                ParameterType::HANDLE_RESOLUTION | ParameterType::HANDLE_RESOLUTION_SKIP => {
                    let option = HandleResolutionOption::parse_tlv(&tlv)?;
                    crate::wire::set_once(
                        &mut items_wanted,
                        option.items_wanted,
                        "HandleResolution",
                        tlv.offset,
                    )?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        let (handle_start, handle_end) = required(handle, "PoolHandle", r.offset())?;
        Ok(Self { inner, handle_start, handle_end, items_wanted })
    }

    /// The common header.
    pub fn header(&self) -> &MessageView<T> {
        &self.inner
    }

    /// The fixed fields after the header: none in a Handle Resolution.
    pub fn fixed(&self) -> &[u8] {
        &[]
    }

    /// The top-level parameters, in wire order.
    pub fn parameters(&self) -> crate::message::Parameters<'_> {
        crate::message::Parameters::new(self.inner.body(), MESSAGE_HEADER_LEN)
    }

    /// Unknown skip-and-report parameters to quote in an Unrecognized Parameter cause.
    pub fn unrecognized_to_report(&self) -> impl Iterator<Item = &[u8]> + '_ {
        crate::message::to_report(self.parameters())
    }

    /// S flag.
    pub fn subscribe(&self) -> bool {
        self.inner.flags() & FLAG_BIT != 0
    }

    /// The pool handle's bytes.
    pub fn pool_handle_bytes(&self) -> &[u8] {
        &self.inner.body()
            [self.handle_start - MESSAGE_HEADER_LEN..self.handle_end - MESSAGE_HEADER_LEN]
    }

    /// The pool handle, copied inline.
    pub fn pool_handle(&self) -> PoolHandle {
        PoolHandle::new(self.pool_handle_bytes()).expect("new_checked validated the pool handle")
    }

    /// Handle Resolution option: PEs wanted.
    pub fn items_wanted(&self) -> Option<u32> {
        self.items_wanted
    }
}

// ---- §2.2.7 Endpoint Keep Alive ----

/// ASAP_ENDPOINT_KEEP_ALIVE (§2.2.7). RSPLIB 3.4.4 appends the PE Identifier of the PE it
/// probes; the RFC figure has only the pool handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointKeepAlive {
    /// H flag: the sender wants to be the PE's home registrar.
    pub home: bool,
    /// The sending registrar.
    pub server_id: RegistrarId,
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE probed (RSPLIB).
    pub pe_id: Option<PoolElementId>,
}
message!(EndpointKeepAlive, EndpointKeepAliveView, 4);

impl<T: AsRef<[u8]>> EndpointKeepAliveView<T> {
    /// The sending registrar.
    pub fn server_id(&self) -> RegistrarId {
        RegistrarId(self.fixed_u32(0))
    }
}

impl Body for EndpointKeepAlive {
    const TYPE: u8 = MessageType::ENDPOINT_KEEP_ALIVE.0;
    fn flags(&self) -> u8 {
        if self.home {
            FLAG_BIT
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        4 + lengths([
            Some(pool_handle_length(&self.pool_handle)),
            self.pe_id.map(|_| pe_identifier_length()),
        ])
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        w.u32(self.server_id.0);
        emit_pool_handle(w, &self.pool_handle);
        if let Some(id) = self.pe_id {
            emit_pe_identifier(w, id);
        }
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let server_id = RegistrarId(r.u32("ServerIdentifier")?);
        let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::PE_ID))?;
        Ok(Self {
            home: flags & FLAG_BIT != 0,
            server_id,
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            pe_id: c.pe_id,
        })
    }
}

// ---- §2.2.10 Server Announce ----

/// ASAP_SERVER_ANNOUNCE (§2.2.10): a registrar announces itself (multicast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAnnounce {
    /// The registrar.
    pub server_id: RegistrarId,
    /// Where to reach it (the RFC allows SCTP and TCP; RSPLIB sends none and means the
    /// announce's source address).
    pub transports: Vec<UserTransport>,
}
message!(ServerAnnounce, ServerAnnounceView, 4);

impl<T: AsRef<[u8]>> ServerAnnounceView<T> {
    /// The announcing registrar.
    pub fn server_id(&self) -> RegistrarId {
        RegistrarId(self.fixed_u32(0))
    }
}

impl Body for ServerAnnounce {
    const TYPE: u8 = MessageType::SERVER_ANNOUNCE.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        4 + list_len(self.transports.iter().map(UserTransport::length))
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        w.u32(self.server_id.0);
        self.transports.iter().for_each(|t| t.emit(w));
    }
    fn parse_body(_flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let server_id = RegistrarId(r.u32("ServerIdentifier")?);
        let c = collect(r, Allowed::TRANSPORTS)?;
        Ok(Self { server_id, transports: c.transports })
    }
}

// ---- §2.2.11 Cookie, §2.2.12 Cookie Echo ----

macro_rules! cookie_message {
    ($(#[$doc:meta])* $name:ident, $view:ident, $ty:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The cookie bytes.
            pub cookie: Vec<u8>,
        }
        message!($name, $view, 0);

        impl Body for $name {
            const TYPE: u8 = $ty.0;
            fn flags(&self) -> u8 {
                0
            }
            fn body_len(&self) -> usize {
                crate::wire::TLV_HEADER_LEN + self.cookie.len()
            }
            fn emit_body(&self, w: &mut Writer<'_>) {
                w.tlv(ParameterType::COOKIE, |w| w.bytes(&self.cookie));
            }
            fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
                let c = collect(r, Allowed::COOKIE)?;
                let CookieParameter(cookie) = required(c.cookie, "Cookie", c.end)?;
                Ok(Self { cookie })
            }
        }
    };
}

cookie_message!(
    /// ASAP_COOKIE (§2.2.11): a PE gives its PU state for failover.
    Cookie,
    CookieView,
    MessageType::COOKIE
);
cookie_message!(
    /// ASAP_COOKIE_ECHO (§2.2.12): a PU hands the last cookie to a new PE.
    CookieEcho,
    CookieEchoView,
    MessageType::COOKIE_ECHO
);

// ---- §2.2.13 Business Card ----

/// ASAP_BUSINESS_CARD (§2.2.13): pool handle and preferred failover order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessCard {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// PEs in failover order.
    pub pool_elements: Vec<PoolElement>,
}
message!(BusinessCard, BusinessCardView, 0);

impl Body for BusinessCard {
    const TYPE: u8 = MessageType::BUSINESS_CARD.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        response_body_len(&self.pool_handle, None, self.pool_elements.iter())
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        emit_response_body(w, &self.pool_handle, None, self.pool_elements.iter());
    }
    fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::POOL_ELEMENTS))?;
        Ok(Self {
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            pool_elements: c.pool_elements,
        })
    }
}

// ---- §2.2.14 Error ----

/// ASAP_ERROR (§2.2.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub error: OperationalError,
}
message!(Error, ErrorView, 0);

impl Body for Error {
    const TYPE: u8 = MessageType::ERROR.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        self.error.length()
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.error.emit(w);
    }
    fn parse_body(_flags: u8, r: Reader<'_>) -> Result<Self, DecodeError> {
        let c = collect(r, Allowed::ERROR)?;
        Ok(Self { error: required(c.error, "OperationalError", c.end)? })
    }
}
