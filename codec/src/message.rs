//! What ASAP and ENRP messages share: the common header view (RFC 5354 §4), the caps on
//! peer-controlled counts, and the parameter collector both protocols parse with.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::param::{
    parse_pe_identifier, parse_pool_handle, Cookie, HandleResolutionOption, OperationalError,
    ParameterType, PeChecksum, Policy, PoolElement, ServerInformation, UserTransport,
};
use crate::types::{PoolElementId, PoolHandle};
use crate::wire::{pad4, set_once, walk, Reader, Writer, MESSAGE_HEADER_LEN};

/// Most Pool Element parameters we decode in one message.
///
/// A 65,535-byte message could hold about 1,600 minimal PEs. RSPLIB answers a handle resolution
/// with at most 128 (`MAX_MAX_HANDLE_RESOLUTION_ITEMS`) and splits handle tables into messages
/// of about that size; 256 doubles that and bounds the work one message can cause.
pub const POOL_ELEMENTS_PER_MESSAGE_MAX: usize = 256;

/// Most top-level parameters we walk in one message.
///
/// The largest legitimate message, a Handle Table Response, has one pool handle per pool plus
/// its PEs: at most 2 × [`POOL_ELEMENTS_PER_MESSAGE_MAX`]. Nested lists have their own caps.
pub const PARAMETERS_PER_MESSAGE_MAX: usize = 2 * POOL_ELEMENTS_PER_MESSAGE_MAX;

/// Most Server Information parameters in one ENRP List Response, and transports in one ASAP
/// Server Announce: an operational scope with more registrars than this is far beyond what
/// RSerPool's full-mesh ENRP was designed for.
pub const SERVERS_PER_MESSAGE_MAX: usize = 64;

/// Zero-copy view of an ASAP or ENRP message: the common header (type, flags, length) and the
/// body (RFC 5354 §4).
#[derive(Clone, Copy, Debug)]
pub struct MessageView<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use core::ops::Range;
    pub(super) const TYPE: usize = 0;
    pub(super) const FLAGS: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
}

impl<T: AsRef<[u8]>> MessageView<T> {
    /// Wraps a buffer holding one message, checking the header and the length field. After
    /// the message, at most its padding (zero bytes up to a multiple of four) may follow.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let bytes = buffer.as_ref();
        if bytes.len() < MESSAGE_HEADER_LEN {
            return Err(DecodeError::new(DecodeErrorKind::Truncated, "MessageHeader", bytes.len()));
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if length < MESSAGE_HEADER_LEN {
            return Err(DecodeError::new(DecodeErrorKind::BadLength, "MessageLength", 2));
        }
        if length > bytes.len() {
            return Err(DecodeError::new(DecodeErrorKind::Truncated, "MessageLength", bytes.len()));
        }
        //= https://www.rfc-editor.org/rfc/rfc5353#section-2.3
        //# the value in the Message Length field will NOT cover any padding at the end of this
        //# message.
        let after = &bytes[length..];
        if length + after.len() > pad4(length) || after.iter().any(|&b| b != 0) {
            return Err(DecodeError::new(DecodeErrorKind::Trailing, "Message", length));
        }
        Ok(Self { buffer })
    }

    /// Wraps a buffer without checks: only for one you validated or sized yourself.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// The message type.
    pub fn message_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The declared length, header included, padding excluded.
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The bytes after the header, up to the declared length.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[MESSAGE_HEADER_LEN..usize::from(self.length())]
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub(crate) fn body_reader(&self) -> Reader<'_> {
        Reader::new(self.body(), MESSAGE_HEADER_LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MessageView<T> {
    /// Sets the flags byte.
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }
}

/// The body of one message type: its parse and emit, behind the per-type public API the
/// `message!` macro writes.
pub(crate) trait Body: Sized {
    const TYPE: u8;
    fn flags(&self) -> u8;
    fn body_len(&self) -> usize;
    fn emit_body(&self, w: &mut Writer<'_>);
    fn parse_body(flags: u8, r: Reader<'_>) -> Result<Self, DecodeError>;
}

pub(crate) fn parse_message<B: Body, T: AsRef<[u8]>>(
    view: &MessageView<T>,
) -> Result<B, DecodeError> {
    if view.message_type() != B::TYPE {
        return Err(DecodeError::new(DecodeErrorKind::Unexpected, "MessageType", 0));
    }
    let body = B::parse_body(view.flags(), view.body_reader())?;
    check_emittable(&body)?;
    Ok(body)
}

pub(crate) fn check_view<T: AsRef<[u8]>>(
    view: &MessageView<T>,
    ty: u8,
    fixed: usize,
) -> Result<(), DecodeError> {
    if view.message_type() != ty {
        return Err(DecodeError::new(DecodeErrorKind::Unexpected, "MessageType", 0));
    }
    if view.body().len() < fixed {
        return Err(DecodeError::new(DecodeErrorKind::Truncated, "FixedFields", view.body().len()));
    }
    Ok(())
}

/// Iterator over the top-level parameters of a message view, zero-copy. Yields an error and
/// stops at the first malformed parameter (no resynchronisation).
pub struct Parameters<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> Parameters<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self { reader: Reader::new(bytes, base), failed: false }
    }
}

impl<'a> Iterator for Parameters<'a> {
    type Item = Result<crate::param::ParameterView<&'a [u8]>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.reader.tlv() {
            Ok(Some(tlv)) => Some(Ok(crate::param::ParameterView::new_unchecked(tlv.raw))),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

pub(crate) fn to_report(parameters: Parameters<'_>) -> impl Iterator<Item = &[u8]> + '_ {
    use crate::param::UnknownParameterAction;
    parameters.map_while(Result::ok).filter_map(|p| {
        let ty = p.parameter_type();
        let report = ty.unknown_action() == UnknownParameterAction::SkipAndReport;
        (report && !ty.is_known()).then(|| p.into_inner())
    })
}

/// Refuses a parsed message whose canonical re-emission would not fit the 16-bit length.
/// Emission can be longer than the input (RSPLIB's short Priority Least Used grows by four
/// bytes), and `emit` must never panic on a Repr that came from `parse`.
pub(crate) fn check_emittable<B: Body>(body: &B) -> Result<(), DecodeError> {
    if MESSAGE_HEADER_LEN + body.body_len() > usize::from(u16::MAX) {
        return Err(DecodeError::new(DecodeErrorKind::TooMany, "MessageLength", 2));
    }
    Ok(())
}

pub(crate) fn message_buffer_len<B: Body>(body: &B) -> usize {
    pad4(MESSAGE_HEADER_LEN + body.body_len())
}

pub(crate) fn emit_message<B: Body>(body: &B, buf: &mut [u8]) -> usize {
    let length = message_buffer_len(body);
    assert!(buf.len() >= length, "emit buffer shorter than buffer_len()");
    let mut w = Writer::new(buf);
    w.message(B::TYPE, body.flags(), |w| body.emit_body(w));
    assert_eq!(w.position(), length);
    length
}

/// Writes a message's zero-copy view `$view` (unless `@api`), and `parse`, `buffer_len`, `emit`
/// and `emit_to_vec` for its Repr. `$fixed` is the length of the fixed fields between the
/// header and the parameters.
macro_rules! message {
    ($name:ident, $view:ident, $fixed:expr) => {
        #[doc = concat!("Zero-copy view of a [`", stringify!($name), "`] message: the header, ")]
        #[doc = "the fixed fields and a walk over the parameters, without allocating."]
        #[derive(Clone, Copy, Debug)]
        pub struct $view<T: AsRef<[u8]>> {
            inner: $crate::message::MessageView<T>,
        }

        impl<T: AsRef<[u8]>> $view<T> {
            /// Checks the header, the message type and the fixed fields' length.
            pub fn new_checked(buffer: T) -> Result<Self, $crate::DecodeError> {
                let inner = $crate::message::MessageView::new_checked(buffer)?;
                let ty = <$name as $crate::message::Body>::TYPE;
                $crate::message::check_view(&inner, ty, $fixed)?;
                Ok(Self { inner })
            }

            /// Wraps a buffer without checks: only for one you validated or sized yourself.
            pub fn new_unchecked(buffer: T) -> Self {
                Self { inner: $crate::message::MessageView::new_unchecked(buffer) }
            }

            /// The common header.
            pub fn header(&self) -> &$crate::message::MessageView<T> {
                &self.inner
            }

            /// The fixed fields after the header (server ids and the like).
            pub fn fixed(&self) -> &[u8] {
                &self.inner.body()[..$fixed]
            }

            /// The top-level parameters, in wire order; a malformed one ends the walk with an
            /// error.
            pub fn parameters(&self) -> $crate::message::Parameters<'_> {
                $crate::message::Parameters::new(&self.inner.body()[$fixed..], 4 + $fixed)
            }

            /// Top-level parameters of unknown type whose action bits say "skip and report"
            /// (RFC 5354 §3, `11`): the TLVs to quote in Unrecognized Parameter causes. The
            /// Repr skips them; this is how a registrar finds what to report.
            pub fn unrecognized_to_report(&self) -> impl Iterator<Item = &[u8]> + '_ {
                $crate::message::to_report(self.parameters())
            }

            #[allow(dead_code)]
            fn fixed_u32(&self, at: usize) -> u32 {
                let b = &self.fixed()[at..at + 4];
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            }
        }

        message!(@api $name, $view);
    };
    (@api $name:ident, $view:ident) => {
        impl $name {
            /// Parses the message from its checked view.
            pub fn parse<T: AsRef<[u8]>>(view: &$view<T>) -> Result<Self, $crate::DecodeError> {
                $crate::message::parse_message(view.header())
            }

            /// Bytes [`Self::emit`] writes: the message, padded to four bytes.
            pub fn buffer_len(&self) -> usize {
                $crate::message::message_buffer_len(self)
            }

            /// Emits into `buf` (at least [`Self::buffer_len`] bytes); returns the length
            /// written. Cannot fail for a Repr built from parsed data or within the caps.
            pub fn emit(&self, buf: &mut [u8]) -> usize {
                $crate::message::emit_message(self, buf)
            }

            /// Emits into a new vector.
            pub fn emit_to_vec(&self) -> Vec<u8> {
                let mut v = vec![0; self.buffer_len()];
                self.emit(&mut v);
                v
            }
        }
    };
}
pub(crate) use message;

/// Which parameters a message takes, and whether once or as a list.
#[derive(Clone, Copy)]
pub(crate) struct Allowed(u16);

impl Allowed {
    pub(crate) const POOL_HANDLE: Self = Self(1 << 0);
    pub(crate) const PE_ID: Self = Self(1 << 1);
    pub(crate) const POLICY: Self = Self(1 << 2);
    pub(crate) const ERROR: Self = Self(1 << 3);
    pub(crate) const COOKIE: Self = Self(1 << 4);
    pub(crate) const CHECKSUM: Self = Self(1 << 5);
    pub(crate) const HANDLE_RESOLUTION: Self = Self(1 << 6);
    pub(crate) const SERVER_INFO: Self = Self(1 << 7);
    pub(crate) const SERVER_INFOS: Self = Self(1 << 8);
    pub(crate) const POOL_ELEMENT: Self = Self(1 << 9);
    pub(crate) const POOL_ELEMENTS: Self = Self(1 << 10);
    pub(crate) const TRANSPORTS: Self = Self(1 << 11);

    pub(crate) const fn and(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    const fn has(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

/// The parameters of one message, sorted into slots.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) pool_handle: Option<PoolHandle>,
    pub(crate) pe_id: Option<PoolElementId>,
    pub(crate) policy: Option<Policy>,
    pub(crate) error: Option<OperationalError>,
    pub(crate) cookie: Option<Cookie>,
    pub(crate) checksum: Option<PeChecksum>,
    pub(crate) handle_resolution: Option<HandleResolutionOption>,
    pub(crate) server_info: Option<ServerInformation>,
    pub(crate) server_infos: Vec<ServerInformation>,
    pub(crate) pool_element: Option<PoolElement>,
    pub(crate) pool_elements: Vec<PoolElement>,
    pub(crate) transports: Vec<UserTransport>,
    /// Offset of the end of the body: where a missing parameter is reported.
    pub(crate) end: usize,
}

/// Parses every parameter of a message body into its slot. A parameter not in `allowed` is
/// `Unexpected` if we know its type, and follows its action bits if we do not.
pub(crate) fn collect(mut r: Reader<'_>, allowed: Allowed) -> Result<Collected, DecodeError> {
    let mut c = Collected::default();
    walk(&mut r, PARAMETERS_PER_MESSAGE_MAX, |tlv| {
        let at = tlv.offset;
        let is = |a: Allowed| allowed.has(a);
        match tlv.ty {
            ParameterType::POOL_HANDLE if is(Allowed::POOL_HANDLE) => {
                set_once(&mut c.pool_handle, parse_pool_handle(&tlv)?, "PoolHandle", at)?;
            }
            ParameterType::PE_IDENTIFIER if is(Allowed::PE_ID) => {
                set_once(&mut c.pe_id, parse_pe_identifier(&tlv)?, "PeIdentifier", at)?;
            }
            ParameterType::POOL_MEMBER_SELECTION_POLICY if is(Allowed::POLICY) => {
                set_once(&mut c.policy, Policy::parse_tlv(&tlv)?, "Policy", at)?;
            }
            ParameterType::OPERATIONAL_ERROR if is(Allowed::ERROR) => {
                set_once(&mut c.error, OperationalError::parse_tlv(&tlv)?, "OperationalError", at)?;
            }
            ParameterType::COOKIE if is(Allowed::COOKIE) => {
                set_once(&mut c.cookie, Cookie::parse_tlv(&tlv), "Cookie", at)?;
            }
            ParameterType::PE_CHECKSUM if is(Allowed::CHECKSUM) => {
                set_once(&mut c.checksum, PeChecksum::parse_tlv(&tlv)?, "PeChecksum", at)?;
            }
            ParameterType::HANDLE_RESOLUTION | ParameterType::HANDLE_RESOLUTION_SKIP
                if is(Allowed::HANDLE_RESOLUTION) =>
            {
                let option = HandleResolutionOption::parse_tlv(&tlv)?;
                set_once(&mut c.handle_resolution, option, "HandleResolution", at)?;
            }
            ParameterType::SERVER_INFORMATION if is(Allowed::SERVER_INFO) => {
                let info = ServerInformation::parse_tlv(&tlv)?;
                set_once(&mut c.server_info, info, "ServerInformation", at)?;
            }
            ParameterType::SERVER_INFORMATION if is(Allowed::SERVER_INFOS) => {
                if c.server_infos.len() == SERVERS_PER_MESSAGE_MAX {
                    return Err(DecodeError::new(
                        DecodeErrorKind::TooMany,
                        "ServerInformation",
                        at,
                    ));
                }
                c.server_infos.push(ServerInformation::parse_tlv(&tlv)?);
            }
            ParameterType::POOL_ELEMENT if is(Allowed::POOL_ELEMENT) => {
                set_once(&mut c.pool_element, PoolElement::parse_tlv(&tlv)?, "PoolElement", at)?;
            }
            ParameterType::POOL_ELEMENT if is(Allowed::POOL_ELEMENTS) => {
                if c.pool_elements.len() == POOL_ELEMENTS_PER_MESSAGE_MAX {
                    return Err(DecodeError::new(DecodeErrorKind::TooMany, "PoolElement", at));
                }
                c.pool_elements.push(PoolElement::parse_tlv(&tlv)?);
            }
            ty if UserTransport::is_transport(ty) && is(Allowed::TRANSPORTS) => {
                if c.transports.len() == SERVERS_PER_MESSAGE_MAX {
                    return Err(DecodeError::new(DecodeErrorKind::TooMany, "Transport", at));
                }
                c.transports.push(UserTransport::parse_tlv(&tlv)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    c.end = r.offset();
    Ok(c)
}
