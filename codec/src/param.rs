//! RFC 5354 parameters: addresses, transports, policies (RFC 5356 and RSPLIB's private ones),
//! pool handle, pool element, server information, operational error, cookie, PE identifier,
//! PE checksum, and RSPLIB's Handle Resolution option.
//!
//! Each parameter has an owned Repr with `buffer_len` (padded TLV length) and an emit that
//! cannot fail; [`ParameterView`] is the zero-copy view of any one TLV; [`Parameter`] is the
//! enum over all of them, the entry point of the parameter fuzzer.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::types::POOL_HANDLE_LENGTH_MAX;
use crate::types::{PolicyType, PoolElementId, PoolHandle, RegistrarId, TransportUse};
use crate::wire::{list_len, pad4, required, set_once, walk, Reader, Tlv, Writer, TLV_HEADER_LEN};

/// Most addresses we keep per transport parameter.
///
/// RFC 5354 bounds nothing but the message length (65,535 bytes would hold 8,000 addresses).
/// Real SCTP multihoming uses a handful of interfaces, each with an IPv4 and an IPv6 address,
/// but a host that binds every address it has (RSPLIB's PEs do) can name more: the lab found an
/// RSPLIB PE with 11. Sixteen keeps [`AddressList`] inline (no heap; the handlespace stores
/// the encoded parameter, not this list). A transport that names more keeps its first sixteen
/// and the rest are skipped ([`ADDRESSES_WALKED_MAX`]), so the PE is still registered and
/// reachable, rather than refused whole.
pub const ADDRESSES_PER_TRANSPORT_MAX: usize = 16;

/// Most address parameters read in one transport parameter (those past
/// [`ADDRESSES_PER_TRANSPORT_MAX`] are skipped): bounded work per parameter.
pub const ADDRESSES_WALKED_MAX: usize = 1_024;

/// Most error causes we decode in one Operational Error parameter.
///
/// A registrar reports one cause per problem and stops at the first; RSPLIB sends exactly one.
/// Sixteen leaves room for a peer that reports several unknown parameters at once.
pub const ERROR_CAUSES_MAX: usize = 16;

/// Parameter type (RFC 5354 §3, Table 1). Open: an unknown value is kept as it is. The two top
/// bits say what a receiver that does not know the type must do ([`UnknownParameterAction`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParameterType(pub u16);

impl ParameterType {
    /// IPv4 Address (§3.1).
    pub const IPV4_ADDRESS: Self = Self(0x0001);
    /// IPv6 Address (§3.2).
    pub const IPV6_ADDRESS: Self = Self(0x0002);
    /// DCCP Transport (§3.3).
    pub const DCCP_TRANSPORT: Self = Self(0x0003);
    /// SCTP Transport (§3.4).
    pub const SCTP_TRANSPORT: Self = Self(0x0004);
    /// TCP Transport (§3.5).
    pub const TCP_TRANSPORT: Self = Self(0x0005);
    /// UDP Transport (§3.6).
    pub const UDP_TRANSPORT: Self = Self(0x0006);
    /// UDP-Lite Transport (§3.7).
    pub const UDP_LITE_TRANSPORT: Self = Self(0x0007);
    /// Pool Member Selection Policy (§3.8).
    pub const POOL_MEMBER_SELECTION_POLICY: Self = Self(0x0008);
    /// Pool Handle (§3.9).
    pub const POOL_HANDLE: Self = Self(0x0009);
    /// Pool Element (§3.10).
    pub const POOL_ELEMENT: Self = Self(0x000a);
    /// Server Information (§3.11).
    pub const SERVER_INFORMATION: Self = Self(0x000b);
    /// Operational Error (§3.12).
    pub const OPERATIONAL_ERROR: Self = Self(0x000c);
    /// Cookie (§3.13).
    pub const COOKIE: Self = Self(0x000d);
    /// PE Identifier (§3.14).
    pub const PE_IDENTIFIER: Self = Self(0x000e);
    /// PE Checksum (§3.15).
    pub const PE_CHECKSUM: Self = Self(0x000f);
    /// Opaque Transport (§3.16).
    pub const OPAQUE_TRANSPORT: Self = Self(0x0010);
    /// Handle Resolution option (draft-dreibholz-rserpool-asap-hropt), as the draft numbers it.
    pub const HANDLE_RESOLUTION: Self = Self(0x003f);
    /// Handle Resolution option with the "skip" action bit set: what RSPLIB 3.4.4 and
    /// Wireshark use, so that a registrar that does not know it ignores it. We emit this one.
    pub const HANDLE_RESOLUTION_SKIP: Self = Self(0x803f);

    /// What to do with this type when we do not recognise it (RFC 5354 §3).
    pub const fn unknown_action(self) -> UnknownParameterAction {
        match self.0 >> 14 {
            0 => UnknownParameterAction::Stop,
            1 => UnknownParameterAction::StopAndReport,
            2 => UnknownParameterAction::Skip,
            _ => UnknownParameterAction::SkipAndReport,
        }
    }

    pub(crate) fn is_known(self) -> bool {
        matches!(self.0, 0x0001..=0x0010 | 0x003f | 0x803f)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::IPV4_ADDRESS => "Ipv4Address",
            Self::IPV6_ADDRESS => "Ipv6Address",
            Self::DCCP_TRANSPORT => "DccpTransport",
            Self::SCTP_TRANSPORT => "SctpTransport",
            Self::TCP_TRANSPORT => "TcpTransport",
            Self::UDP_TRANSPORT => "UdpTransport",
            Self::UDP_LITE_TRANSPORT => "UdpLiteTransport",
            Self::POOL_MEMBER_SELECTION_POLICY => "PoolMemberSelectionPolicy",
            Self::POOL_HANDLE => "PoolHandle",
            Self::POOL_ELEMENT => "PoolElement",
            Self::SERVER_INFORMATION => "ServerInformation",
            Self::OPERATIONAL_ERROR => "OperationalError",
            Self::COOKIE => "Cookie",
            Self::PE_IDENTIFIER => "PeIdentifier",
            Self::PE_CHECKSUM => "PeChecksum",
            Self::OPAQUE_TRANSPORT => "OpaqueTransport",
            Self::HANDLE_RESOLUTION | Self::HANDLE_RESOLUTION_SKIP => "HandleResolution",
            _ => "UnknownParameter",
        }
    }
}

impl fmt::Debug for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            write!(f, "{}(0x{:04x})", self.name(), self.0)
        } else {
            write!(f, "ParameterType(0x{:04x})", self.0)
        }
    }
}

/// The action the two top bits of an unrecognised parameter type ask for (RFC 5354 §3). The
/// order is the RFC's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownParameterAction {
    /// `00`: stop processing the message and discard it.
    Stop,
    /// `01`: stop, discard, and report an Unrecognized Parameter error.
    StopAndReport,
    /// `10`: skip this parameter and go on.
    Skip,
    /// `11`: skip, go on, and report an Unrecognized Parameter error.
    SkipAndReport,
}

/// The one place that applies the action bits of an unrecognised parameter: `Ok` means skip it,
/// an error means discard the message (and [`DecodeError::should_report`] says whether to tell
/// the sender).
///
/// Skip-and-report parameters are skipped; the report is not surfaced by the Reprs (see the
/// crate docs, "Not done").
pub(crate) fn handle_unknown_parameter(tlv: &Tlv<'_>) -> Result<(), DecodeError> {
    let stop = |report| {
        Err(DecodeError::new(DecodeErrorKind::UnknownParameter { report }, "Parameter", tlv.offset))
    };
    match tlv.ty.unknown_action() {
        UnknownParameterAction::Stop => stop(false),
        UnknownParameterAction::StopAndReport => stop(true),
        UnknownParameterAction::Skip | UnknownParameterAction::SkipAndReport => Ok(()),
    }
}

/// Zero-copy view of one TLV parameter.
#[derive(Clone, Copy, Debug)]
pub struct ParameterView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ParameterView<T> {
    /// Wraps a buffer that holds one TLV, checking that its declared length fits.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let bytes = buffer.as_ref();
        let mut r = Reader::new(bytes, 0);
        let _ = r.u16("ParameterType")?;
        let length = usize::from(r.u16("ParameterLength")?);
        if length < TLV_HEADER_LEN {
            return Err(DecodeError::new(DecodeErrorKind::BadLength, "ParameterLength", 2));
        }
        if length > bytes.len() {
            return Err(DecodeError::new(
                DecodeErrorKind::Truncated,
                "ParameterValue",
                bytes.len(),
            ));
        }
        Ok(Self { buffer })
    }

    /// Wraps a buffer without checks: only for a buffer already validated or sized by you.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// The parameter type.
    pub fn parameter_type(&self) -> ParameterType {
        let b = self.buffer.as_ref();
        ParameterType(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The declared length: header plus value, without padding.
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.buffer.as_ref()[TLV_HEADER_LEN..usize::from(self.length())]
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// Any one parameter, owned. The fuzz and property tests go through this enum.
// The SCTP transport's addresses are inline (`AddressList`, no heap on the decode path), so
// this variant is larger than the others by design.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parameter {
    /// IPv4 or IPv6 Address (§3.1, §3.2).
    Address(IpAddr),
    /// A user transport (§3.3-§3.7, §3.16).
    Transport(UserTransport),
    /// Pool Member Selection Policy (§3.8).
    Policy(Policy),
    /// Pool Handle (§3.9).
    PoolHandle(PoolHandle),
    /// Pool Element (§3.10).
    PoolElement(PoolElement),
    /// Server Information (§3.11).
    ServerInformation(ServerInformation),
    /// Operational Error (§3.12).
    OperationalError(OperationalError),
    /// Cookie (§3.13).
    Cookie(Cookie),
    /// PE Identifier (§3.14).
    PeIdentifier(PoolElementId),
    /// PE Checksum (§3.15).
    PeChecksum(PeChecksum),
    /// Handle Resolution option (RSPLIB).
    HandleResolution(HandleResolutionOption),
}

impl Parameter {
    /// Parses exactly one parameter (with optional padding) from `bytes`.
    pub fn parse(bytes: impl AsRef<[u8]>) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes.as_ref(), 0);
        let tlv = r.tlv()?.ok_or(DecodeError::new(DecodeErrorKind::Truncated, "Parameter", 0))?;
        r.finish("Parameter")?;
        let parameter = Self::parse_tlv(&tlv)?;
        // Canonical re-emission may be longer than the input; it must still fit 16 bits.
        if parameter.length() > usize::from(u16::MAX) {
            return Err(DecodeError::new(DecodeErrorKind::TooMany, "ParameterLength", 2));
        }
        Ok(parameter)
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        Ok(match tlv.ty {
            ParameterType::IPV4_ADDRESS | ParameterType::IPV6_ADDRESS => {
                Self::Address(parse_address(tlv)?)
            }
            ParameterType::POOL_MEMBER_SELECTION_POLICY => Self::Policy(Policy::parse_tlv(tlv)?),
            ParameterType::POOL_HANDLE => Self::PoolHandle(parse_pool_handle(tlv)?),
            ParameterType::POOL_ELEMENT => Self::PoolElement(PoolElement::parse_tlv(tlv)?),
            ParameterType::SERVER_INFORMATION => {
                Self::ServerInformation(ServerInformation::parse_tlv(tlv)?)
            }
            ParameterType::OPERATIONAL_ERROR => {
                Self::OperationalError(OperationalError::parse_tlv(tlv)?)
            }
            ParameterType::COOKIE => Self::Cookie(Cookie::parse_tlv(tlv)),
            ParameterType::PE_IDENTIFIER => Self::PeIdentifier(parse_pe_identifier(tlv)?),
            ParameterType::PE_CHECKSUM => Self::PeChecksum(PeChecksum::parse_tlv(tlv)?),
            ParameterType::HANDLE_RESOLUTION | ParameterType::HANDLE_RESOLUTION_SKIP => {
                Self::HandleResolution(HandleResolutionOption::parse_tlv(tlv)?)
            }
            ty if UserTransport::is_transport(ty) => {
                Self::Transport(UserTransport::parse_tlv(tlv)?)
            }
            _ => {
                handle_unknown_parameter(tlv)?;
                return Err(DecodeError::new(
                    DecodeErrorKind::UnknownParameter { report: false },
                    "Parameter",
                    tlv.offset,
                ));
            }
        })
    }

    /// Padded length on the wire.
    pub fn buffer_len(&self) -> usize {
        pad4(self.length())
    }

    fn length(&self) -> usize {
        match self {
            Self::Address(a) => address_length(a),
            Self::Transport(t) => t.length(),
            Self::Policy(p) => p.length(),
            Self::PoolHandle(h) => pool_handle_length(h),
            Self::PoolElement(pe) => pe.length(),
            Self::ServerInformation(s) => s.length(),
            Self::OperationalError(e) => e.length(),
            Self::Cookie(c) => c.length(),
            Self::PeIdentifier(_) => PE_IDENTIFIER_LEN,
            Self::PeChecksum(_) => PE_CHECKSUM_LEN,
            Self::HandleResolution(_) => HANDLE_RESOLUTION_LEN,
        }
    }

    /// Emits into `buf`, which must be at least [`Self::buffer_len`] bytes; returns the length
    /// written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut w = Writer::new(buf);
        match self {
            Self::Address(a) => emit_address(&mut w, a),
            Self::Transport(t) => t.emit(&mut w),
            Self::Policy(p) => p.emit(&mut w),
            Self::PoolHandle(h) => emit_pool_handle(&mut w, h),
            Self::PoolElement(pe) => pe.emit(&mut w),
            Self::ServerInformation(s) => s.emit(&mut w),
            Self::OperationalError(e) => e.emit(&mut w),
            Self::Cookie(c) => c.emit(&mut w),
            Self::PeIdentifier(id) => emit_pe_identifier(&mut w, *id),
            Self::PeChecksum(c) => c.emit(&mut w),
            Self::HandleResolution(h) => h.emit(&mut w),
        }
        assert_eq!(w.position(), self.buffer_len());
        w.position()
    }
}

// ---- Addresses (§3.1, §3.2) ----

pub(crate) fn parse_address(tlv: &Tlv<'_>) -> Result<IpAddr, DecodeError> {
    let mut r = tlv.value;
    let address = match tlv.ty {
        ParameterType::IPV4_ADDRESS => {
            let b = r.take(4, "Ipv4Address")?;
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        _ => {
            let b = r.take(16, "Ipv6Address")?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    };
    // A fixed-size value with extra bytes is a length error, not trailing data.
    if !r.is_empty() {
        return Err(DecodeError::new(DecodeErrorKind::BadLength, "AddressLength", tlv.offset + 2));
    }
    Ok(address)
}

pub(crate) fn address_length(address: &IpAddr) -> usize {
    match address {
        IpAddr::V4(_) => TLV_HEADER_LEN + 4,
        IpAddr::V6(_) => TLV_HEADER_LEN + 16,
    }
}

pub(crate) fn emit_address(w: &mut Writer<'_>, address: &IpAddr) {
    match address {
        IpAddr::V4(a) => w.tlv(ParameterType::IPV4_ADDRESS, |w| w.bytes(&a.octets())),
        IpAddr::V6(a) => w.tlv(ParameterType::IPV6_ADDRESS, |w| w.bytes(&a.octets())),
    }
}

/// A bounded inline list of addresses (no heap): at most [`ADDRESSES_PER_TRANSPORT_MAX`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressList {
    length: u8,
    addresses: [IpAddr; ADDRESSES_PER_TRANSPORT_MAX],
}

impl AddressList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            length: 0,
            addresses: [IpAddr::V4(Ipv4Addr::UNSPECIFIED); ADDRESSES_PER_TRANSPORT_MAX],
        }
    }

    /// A list of `addresses`, or `None` when there are more than the cap.
    pub fn from_slice(addresses: &[IpAddr]) -> Option<Self> {
        let mut list = Self::new();
        for a in addresses {
            list.push(*a).ok()?;
        }
        Some(list)
    }

    /// Appends an address; gives it back when the list is full.
    pub fn push(&mut self, address: IpAddr) -> Result<(), IpAddr> {
        let index = usize::from(self.length);
        if index >= ADDRESSES_PER_TRANSPORT_MAX {
            return Err(address);
        }
        self.addresses[index] = address;
        self.length += 1;
        Ok(())
    }

    /// The addresses.
    pub fn as_slice(&self) -> &[IpAddr] {
        &self.addresses[..usize::from(self.length)]
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        usize::from(self.length)
    }

    /// Whether there is no address.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }
}

impl Default for AddressList {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Parses the address TLVs that fill the rest of a transport parameter.
fn parse_addresses(r: &mut Reader<'_>) -> Result<AddressList, DecodeError> {
    let mut list = AddressList::new();
    walk(r, ADDRESSES_WALKED_MAX, |tlv| match tlv.ty {
        ParameterType::IPV4_ADDRESS | ParameterType::IPV6_ADDRESS => {
            let address = parse_address(&tlv)?;
            // Past the cap an address is checked and skipped (see ADDRESSES_PER_TRANSPORT_MAX).
            let _ = list.push(address);
            Ok(true)
        }
        _ => Ok(false),
    })?;
    Ok(list)
}

// ---- Transports (§3.3-§3.7, §3.16) ----

/// An SCTP transport (§3.4): port, transport use and 1 to [`ADDRESSES_PER_TRANSPORT_MAX`]
/// addresses. Also the ASAP transport of a PE and the transport of a registrar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SctpTransport {
    /// SCTP port.
    pub port: u16,
    /// Data only, or data plus control.
    pub transport_use: TransportUse,
    /// The addresses; never empty in a parsed Repr.
    pub addresses: AddressList,
}

impl SctpTransport {
    fn length(&self) -> usize {
        TLV_HEADER_LEN + 4 + list_len(self.addresses.as_slice().iter().map(address_length))
    }

    fn emit(&self, w: &mut Writer<'_>) {
        assert!(!self.addresses.is_empty(), "an SCTP transport needs an address");
        w.tlv(ParameterType::SCTP_TRANSPORT, |w| {
            w.u16(self.port);
            w.u16(self.transport_use.0);
            self.addresses.as_slice().iter().for_each(|a| emit_address(w, a));
        });
    }

    fn parse_value(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        let port = r.u16("SctpPort")?;
        let transport_use = TransportUse(r.u16("TransportUse")?);
        let addresses = parse_addresses(&mut r)?;
        //= https://www.rfc-editor.org/rfc/rfc5354#section-3.4
        //# at least one IP address parameter MUST be present in an SCTP Transport parameter.
        if addresses.is_empty() {
            return Err(DecodeError::new(DecodeErrorKind::Missing, "Addresses", r.offset()));
        }
        Ok(Self { port, transport_use, addresses })
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        if tlv.ty != ParameterType::SCTP_TRANSPORT {
            return Err(DecodeError::new(DecodeErrorKind::Unexpected, tlv.ty.name(), tlv.offset));
        }
        Self::parse_value(tlv)
    }
}

/// A user transport (§3.3-§3.7, §3.16). DCCP, TCP, UDP and UDP-Lite carry exactly one address
/// ("only one IP address parameter can be present").
// The SCTP transport's addresses are inline (`AddressList`, no heap on the decode path), so
// this variant is larger than the others by design.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UserTransport {
    /// DCCP (§3.3): port, service code, one address. Always data only.
    Dccp {
        /// DCCP port.
        port: u16,
        /// DCCP service code.
        service_code: u32,
        /// The address.
        address: IpAddr,
    },
    /// Opaque transport data (§3.16).
    Opaque(Vec<u8>),
    /// SCTP (§3.4).
    Sctp(SctpTransport),
    /// TCP (§3.5). RFC 5354 calls the second 16 bits reserved; RSPLIB and Wireshark read a
    /// transport use there, so we keep it (data only, zero, is the RFC's reserved value).
    Tcp {
        /// TCP port.
        port: u16,
        /// Transport use as RSPLIB writes it.
        transport_use: TransportUse,
        /// The address.
        address: IpAddr,
    },
    /// UDP (§3.6).
    Udp {
        /// UDP port.
        port: u16,
        /// The address.
        address: IpAddr,
    },
    /// UDP-Lite (§3.7).
    UdpLite {
        /// UDP-Lite port.
        port: u16,
        /// The address.
        address: IpAddr,
    },
}

impl UserTransport {
    pub(crate) fn is_transport(ty: ParameterType) -> bool {
        matches!(ty.0, 0x0003..=0x0007 | 0x0010)
    }

    pub(crate) fn length(&self) -> usize {
        let one = |a: &IpAddr| TLV_HEADER_LEN + 4 + address_length(a);
        match self {
            Self::Dccp { address, .. } => one(address) + 4,
            Self::Opaque(data) => TLV_HEADER_LEN + data.len(),
            Self::Sctp(s) => s.length(),
            Self::Tcp { address, .. }
            | Self::Udp { address, .. }
            | Self::UdpLite { address, .. } => one(address),
        }
    }

    /// Padded length on the wire.
    pub fn buffer_len(&self) -> usize {
        pad4(self.length())
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Self::Dccp { port, service_code, address } => {
                w.tlv(ParameterType::DCCP_TRANSPORT, |w| {
                    w.u16(*port);
                    w.u16(0);
                    w.u32(*service_code);
                    emit_address(w, address);
                });
            }
            Self::Opaque(data) => {
                w.tlv(ParameterType::OPAQUE_TRANSPORT, |w| w.bytes(data));
            }
            Self::Sctp(s) => s.emit(w),
            Self::Tcp { port, transport_use, address } => {
                w.tlv(ParameterType::TCP_TRANSPORT, |w| {
                    w.u16(*port);
                    w.u16(transport_use.0);
                    emit_address(w, address);
                });
            }
            Self::Udp { port, address } | Self::UdpLite { port, address } => {
                let ty = if matches!(self, Self::Udp { .. }) {
                    ParameterType::UDP_TRANSPORT
                } else {
                    ParameterType::UDP_LITE_TRANSPORT
                };
                w.tlv(ty, |w| {
                    w.u16(*port);
                    w.u16(0);
                    emit_address(w, address);
                });
            }
        }
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        let single = |r: &mut Reader<'_>| -> Result<IpAddr, DecodeError> {
            let list = parse_addresses(r)?;
            match list.as_slice() {
                [address] => Ok(*address),
                [] => Err(DecodeError::new(DecodeErrorKind::Missing, "Address", r.offset())),
                _ => Err(DecodeError::new(DecodeErrorKind::TooMany, "Address", r.offset())),
            }
        };
        Ok(match tlv.ty {
            ParameterType::SCTP_TRANSPORT => Self::Sctp(SctpTransport::parse_value(tlv)?),
            ParameterType::OPAQUE_TRANSPORT => Self::Opaque(r.rest().to_vec()),
            ParameterType::DCCP_TRANSPORT => {
                let port = r.u16("DccpPort")?;
                // Reserved: set to zero by senders, ignored by receivers.
                let _reserved = r.u16("DccpReserved")?;
                let service_code = r.u32("DccpServiceCode")?;
                Self::Dccp { port, service_code, address: single(&mut r)? }
            }
            ParameterType::TCP_TRANSPORT => {
                let port = r.u16("TcpPort")?;
                let transport_use = TransportUse(r.u16("TcpTransportUse")?);
                Self::Tcp { port, transport_use, address: single(&mut r)? }
            }
            ParameterType::UDP_TRANSPORT => {
                let port = r.u16("UdpPort")?;
                let _reserved = r.u16("UdpReserved")?;
                Self::Udp { port, address: single(&mut r)? }
            }
            ParameterType::UDP_LITE_TRANSPORT => {
                let port = r.u16("UdpLitePort")?;
                let _reserved = r.u16("UdpLiteReserved")?;
                Self::UdpLite { port, address: single(&mut r)? }
            }
            ty => return Err(DecodeError::new(DecodeErrorKind::Unexpected, ty.name(), tlv.offset)),
        })
    }
}

// ---- Pool member selection policy (§3.8, RFC 5356, RSPLIB private range) ----

/// A pool member selection policy with its policy-specific data (RFC 5356 §4-§5; RSPLIB's
/// private policies as RSPLIB 3.4.4 encodes them: every field is 32 bits, in this order).
/// Variants are in policy-type order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Round Robin (0x00000001): no data.
    RoundRobin,
    /// Weighted Round Robin (0x00000002).
    WeightedRoundRobin {
        /// Weight.
        weight: u32,
    },
    /// Random (0x00000003): no data.
    Random,
    /// Weighted Random (0x00000004).
    WeightedRandom {
        /// Weight.
        weight: u32,
    },
    /// Priority (0x00000005).
    Priority {
        /// Priority.
        priority: u32,
    },
    /// Least Used (0x40000001).
    LeastUsed {
        /// Load, 0 = idle, 0xffffffff = full.
        load: u32,
    },
    /// Least Used with Degradation (0x40000002).
    LeastUsedDegradation {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
    },
    /// Priority Least Used (0x40000003).
    PriorityLeastUsed {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
    },
    /// Randomized Least Used (0x40000004).
    RandomizedLeastUsed {
        /// Load.
        load: u32,
    },
    /// RSPLIB Randomized Priority Least Used (0xb0001001).
    RandomizedPriorityLeastUsed {
        /// Load.
        load: u32,
    },
    /// RSPLIB Randomized Least Used with Degradation (0xb0001002).
    RandomizedLeastUsedDegradation {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
    },
    /// RSPLIB Priority Least Used with Degradation (0xb0001003).
    PriorityLeastUsedDegradation {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
    },
    /// RSPLIB Randomized Priority Least Used with Degradation (0xb0001004).
    RandomizedPriorityLeastUsedDegradation {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
    },
    /// RSPLIB Weighted Random with Distance Penalty Factor (0xb0002001).
    WeightedRandomDpf {
        /// Weight.
        weight: u32,
        /// Weight distance penalty factor (fraction of 0xffffffff).
        weight_dpf: u32,
        /// Distance (RSPLIB: milliseconds of delay).
        distance: u32,
    },
    /// RSPLIB Least Used with Distance Penalty Factor (0xb0002002).
    LeastUsedDpf {
        /// Load.
        load: u32,
        /// Load distance penalty factor.
        load_dpf: u32,
        /// Distance.
        distance: u32,
    },
    /// RSPLIB Least Used with Degradation and Distance Penalty Factor (0xb0002003).
    LeastUsedDegradationDpf {
        /// Load.
        load: u32,
        /// Load degradation.
        load_degradation: u32,
        /// Load distance penalty factor.
        load_dpf: u32,
        /// Distance.
        distance: u32,
    },
    /// A policy type we do not know, with its value kept as opaque bytes.
    Unknown {
        /// The policy type; never one of the known ones above.
        policy_type: PolicyType,
        /// Policy-specific data.
        value: Vec<u8>,
    },
}

impl Policy {
    /// The policy type on the wire.
    pub fn policy_type(&self) -> PolicyType {
        match self {
            Self::RoundRobin => PolicyType::ROUND_ROBIN,
            Self::WeightedRoundRobin { .. } => PolicyType::WEIGHTED_ROUND_ROBIN,
            Self::Random => PolicyType::RANDOM,
            Self::WeightedRandom { .. } => PolicyType::WEIGHTED_RANDOM,
            Self::Priority { .. } => PolicyType::PRIORITY,
            Self::LeastUsed { .. } => PolicyType::LEAST_USED,
            Self::LeastUsedDegradation { .. } => PolicyType::LEAST_USED_DEGRADATION,
            Self::PriorityLeastUsed { .. } => PolicyType::PRIORITY_LEAST_USED,
            Self::RandomizedLeastUsed { .. } => PolicyType::RANDOMIZED_LEAST_USED,
            Self::RandomizedPriorityLeastUsed { .. } => PolicyType::RANDOMIZED_PRIORITY_LEAST_USED,
            Self::RandomizedLeastUsedDegradation { .. } => {
                PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            }
            Self::PriorityLeastUsedDegradation { .. } => {
                PolicyType::PRIORITY_LEAST_USED_DEGRADATION
            }
            Self::RandomizedPriorityLeastUsedDegradation { .. } => {
                PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
            }
            Self::WeightedRandomDpf { .. } => PolicyType::WEIGHTED_RANDOM_DPF,
            Self::LeastUsedDpf { .. } => PolicyType::LEAST_USED_DPF,
            Self::LeastUsedDegradationDpf { .. } => PolicyType::LEAST_USED_DEGRADATION_DPF,
            Self::Unknown { policy_type, .. } => *policy_type,
        }
    }

    /// The 32-bit fields after the policy type, in wire order (empty for `Unknown`).
    fn fields(&self) -> ([u32; 4], usize) {
        match *self {
            Self::RoundRobin | Self::Random | Self::Unknown { .. } => ([0; 4], 0),
            Self::WeightedRoundRobin { weight } | Self::WeightedRandom { weight } => {
                ([weight, 0, 0, 0], 1)
            }
            Self::Priority { priority } => ([priority, 0, 0, 0], 1),
            Self::LeastUsed { load }
            | Self::RandomizedLeastUsed { load }
            | Self::RandomizedPriorityLeastUsed { load } => ([load, 0, 0, 0], 1),
            Self::LeastUsedDegradation { load, load_degradation }
            | Self::PriorityLeastUsed { load, load_degradation }
            | Self::RandomizedLeastUsedDegradation { load, load_degradation }
            | Self::PriorityLeastUsedDegradation { load, load_degradation }
            | Self::RandomizedPriorityLeastUsedDegradation { load, load_degradation } => {
                ([load, load_degradation, 0, 0], 2)
            }
            Self::WeightedRandomDpf { weight, weight_dpf, distance } => {
                ([weight, weight_dpf, distance, 0], 3)
            }
            Self::LeastUsedDpf { load, load_dpf, distance } => ([load, load_dpf, distance, 0], 3),
            Self::LeastUsedDegradationDpf { load, load_degradation, load_dpf, distance } => {
                ([load, load_degradation, load_dpf, distance], 4)
            }
        }
    }

    pub(crate) fn is_known_type(policy_type: PolicyType) -> bool {
        Self::field_count(policy_type).is_some()
    }

    /// Number of 32-bit fields of a known policy type, or `None` for an unknown one.
    #[inline]
    fn field_count(policy_type: PolicyType) -> Option<usize> {
        Some(match policy_type {
            PolicyType::ROUND_ROBIN | PolicyType::RANDOM => 0,
            PolicyType::WEIGHTED_ROUND_ROBIN
            | PolicyType::WEIGHTED_RANDOM
            | PolicyType::PRIORITY
            | PolicyType::LEAST_USED
            | PolicyType::RANDOMIZED_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => 1,
            PolicyType::LEAST_USED_DEGRADATION
            | PolicyType::PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => 2,
            PolicyType::WEIGHTED_RANDOM_DPF | PolicyType::LEAST_USED_DPF => 3,
            PolicyType::LEAST_USED_DEGRADATION_DPF => 4,
            _ => return None,
        })
    }

    fn from_fields(policy_type: PolicyType, f: [u32; 4]) -> Self {
        let [a, b, c, d] = f;
        match policy_type {
            PolicyType::ROUND_ROBIN => Self::RoundRobin,
            PolicyType::WEIGHTED_ROUND_ROBIN => Self::WeightedRoundRobin { weight: a },
            PolicyType::RANDOM => Self::Random,
            PolicyType::WEIGHTED_RANDOM => Self::WeightedRandom { weight: a },
            PolicyType::PRIORITY => Self::Priority { priority: a },
            PolicyType::LEAST_USED => Self::LeastUsed { load: a },
            PolicyType::LEAST_USED_DEGRADATION => {
                Self::LeastUsedDegradation { load: a, load_degradation: b }
            }
            PolicyType::PRIORITY_LEAST_USED => {
                Self::PriorityLeastUsed { load: a, load_degradation: b }
            }
            PolicyType::RANDOMIZED_LEAST_USED => Self::RandomizedLeastUsed { load: a },
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => {
                Self::RandomizedPriorityLeastUsed { load: a }
            }
            PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => {
                Self::RandomizedLeastUsedDegradation { load: a, load_degradation: b }
            }
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION => {
                Self::PriorityLeastUsedDegradation { load: a, load_degradation: b }
            }
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => {
                Self::RandomizedPriorityLeastUsedDegradation { load: a, load_degradation: b }
            }
            PolicyType::WEIGHTED_RANDOM_DPF => {
                Self::WeightedRandomDpf { weight: a, weight_dpf: b, distance: c }
            }
            PolicyType::LEAST_USED_DPF => Self::LeastUsedDpf { load: a, load_dpf: b, distance: c },
            _ => Self::LeastUsedDegradationDpf {
                load: a,
                load_degradation: b,
                load_dpf: c,
                distance: d,
            },
        }
    }

    pub(crate) fn length(&self) -> usize {
        let value = match self {
            Self::Unknown { value, .. } => value.len(),
            _ => 4 * self.fields().1,
        };
        TLV_HEADER_LEN + 4 + value
    }

    /// Padded length on the wire.
    pub fn buffer_len(&self) -> usize {
        pad4(self.length())
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::POOL_MEMBER_SELECTION_POLICY, |w| {
            w.u32(self.policy_type().0);
            if let Self::Unknown { policy_type, value } = self {
                // A known type with opaque bytes would not parse back to this Repr.
                assert!(!Self::is_known_type(*policy_type), "Policy::Unknown with a known type");
                w.bytes(value);
            } else {
                let (fields, count) = self.fields();
                fields[..count].iter().for_each(|&f| w.u32(f));
            }
        });
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        if tlv.ty != ParameterType::POOL_MEMBER_SELECTION_POLICY {
            return Err(DecodeError::new(DecodeErrorKind::Unexpected, tlv.ty.name(), tlv.offset));
        }
        let mut r = tlv.value;
        let policy_type = PolicyType(r.u32("PolicyType")?);
        let Some(count) = Self::field_count(policy_type) else {
            return Ok(Self::Unknown { policy_type, value: r.rest().to_vec() });
        };
        // RSPLIB 3.4.4 writes Priority Least Used with the load only (its struct has no
        // degradation), where RFC 5356 §5.3.4 has load and load degradation. Accept RSPLIB's
        // form as degradation 0 so its PEs can register; we emit the RFC's form, which RSPLIB
        // accepts (it reads "at least" its struct).
        if policy_type == PolicyType::PRIORITY_LEAST_USED && r.remaining() == 4 {
            let load = r.u32("PolicyValue")?;
            return Ok(Self::PriorityLeastUsed { load, load_degradation: 0 });
        }
        //= https://www.rfc-editor.org/rfc/rfc5356#section-4
        //# each policy has a fixed parameter length; a different length is invalid.
        if r.remaining() != 4 * count {
            return Err(DecodeError::new(
                DecodeErrorKind::BadLength,
                "PolicyLength",
                tlv.offset + 2,
            ));
        }
        let mut fields = [0u32; 4];
        for f in fields.iter_mut().take(count) {
            *f = r.u32("PolicyValue")?;
        }
        Ok(Self::from_fields(policy_type, fields))
    }
}

// ---- Pool handle (§3.9) ----

pub(crate) fn parse_pool_handle(tlv: &Tlv<'_>) -> Result<PoolHandle, DecodeError> {
    let bytes = check_pool_handle(tlv)?;
    PoolHandle::new(bytes)
        .map_err(|_| DecodeError::new(DecodeErrorKind::BadValue, "PoolHandle", tlv.offset))
}

/// Checks a pool handle's bounds without copying it: the view path's half of
/// [`parse_pool_handle`].
pub(crate) fn check_pool_handle<'a>(tlv: &Tlv<'a>) -> Result<&'a [u8], DecodeError> {
    let bytes = tlv.value.rest();
    if bytes.len() > POOL_HANDLE_LENGTH_MAX {
        return Err(DecodeError::new(DecodeErrorKind::TooMany, "PoolHandle", tlv.offset));
    }
    if bytes.is_empty() {
        return Err(DecodeError::new(DecodeErrorKind::BadValue, "PoolHandle", tlv.offset));
    }
    Ok(bytes)
}

pub(crate) fn pool_handle_length(handle: &PoolHandle) -> usize {
    TLV_HEADER_LEN + handle.as_bytes().len()
}

pub(crate) fn emit_pool_handle(w: &mut Writer<'_>, handle: &PoolHandle) {
    let bytes = handle.as_bytes();
    w.tlv(ParameterType::POOL_HANDLE, |w| w.bytes(bytes));
}

// ---- PE identifier (§3.14) ----

const PE_IDENTIFIER_LEN: usize = TLV_HEADER_LEN + 4;

pub(crate) fn parse_pe_identifier(tlv: &Tlv<'_>) -> Result<PoolElementId, DecodeError> {
    let mut r = tlv.value;
    if r.remaining() != 4 {
        return Err(DecodeError::new(DecodeErrorKind::BadLength, "PeIdentifier", tlv.offset + 2));
    }
    Ok(PoolElementId(r.u32("PeIdentifier")?))
}

pub(crate) fn pe_identifier_length() -> usize {
    PE_IDENTIFIER_LEN
}

pub(crate) fn emit_pe_identifier(w: &mut Writer<'_>, id: PoolElementId) {
    w.tlv(ParameterType::PE_IDENTIFIER, |w| w.u32(id.0));
}

// ---- PE checksum (§3.15) ----

const PE_CHECKSUM_LEN: usize = TLV_HEADER_LEN + 2;

/// PE Checksum (§3.15): the 16-bit handlespace checksum of the PEs a registrar owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeChecksum(pub u16);

impl PeChecksum {
    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        if r.remaining() != 2 {
            return Err(DecodeError::new(DecodeErrorKind::BadLength, "PeChecksum", tlv.offset + 2));
        }
        Ok(Self(r.u16("PeChecksum")?))
    }

    pub(crate) fn length(&self) -> usize {
        PE_CHECKSUM_LEN
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::PE_CHECKSUM, |w| w.u16(self.0));
    }
}

// ---- Handle Resolution option (RSPLIB, draft-dreibholz-rserpool-asap-hropt) ----

const HANDLE_RESOLUTION_LEN: usize = TLV_HEADER_LEN + 4;

/// Handle Resolution option: how many PEs the pool user wants. Parsed from type 0x003f or
/// 0x803f; emitted as 0x803f as RSPLIB does, so that a registrar without it skips it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandleResolutionOption {
    /// Items wanted (RSPLIB: 0xffffffff = as many as the registrar gives).
    pub items_wanted: u32,
}

impl HandleResolutionOption {
    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        if r.remaining() != 4 {
            return Err(DecodeError::new(
                DecodeErrorKind::BadLength,
                "HandleResolution",
                tlv.offset + 2,
            ));
        }
        Ok(Self { items_wanted: r.u32("ItemsWanted")? })
    }

    pub(crate) fn length(&self) -> usize {
        HANDLE_RESOLUTION_LEN
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::HANDLE_RESOLUTION_SKIP, |w| w.u32(self.items_wanted));
    }
}

// ---- Cookie (§3.13) ----

/// Cookie (§3.13): opaque bytes a PE hands its PUs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cookie(pub Vec<u8>);

impl Cookie {
    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Self {
        Self(tlv.value.rest().to_vec())
    }

    pub(crate) fn length(&self) -> usize {
        TLV_HEADER_LEN + self.0.len()
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::COOKIE, |w| w.bytes(&self.0));
    }
}

// ---- Pool element (§3.10) ----

/// Pool Element parameter (§3.10): what a handlespace stores per PE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolElement {
    /// PE identifier, unique in its pool.
    pub id: PoolElementId,
    /// Home registrar; zero when undetermined.
    pub home_registrar: RegistrarId,
    /// Registration life. RFC 5354 says seconds with -1 infinite; RSPLIB 3.4.4 sends
    /// milliseconds (90,000 in our capture), and so do we.
    pub registration_life_ms: u32,
    /// User transport: exactly one.
    pub user_transport: UserTransport,
    /// Member selection policy.
    pub policy: Policy,
    /// ASAP transport (SCTP), present when a registrar describes a PE to others.
    pub asap_transport: Option<SctpTransport>,
}

const POOL_ELEMENT_FIXED_LEN: usize = 12;

impl PoolElement {
    pub(crate) fn length(&self) -> usize {
        let children = [
            Some(self.user_transport.length()),
            Some(self.policy.length()),
            self.asap_transport.as_ref().map(SctpTransport::length),
        ];
        TLV_HEADER_LEN + POOL_ELEMENT_FIXED_LEN + list_len(children.into_iter().flatten())
    }

    /// Padded length on the wire.
    pub fn buffer_len(&self) -> usize {
        pad4(self.length())
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::POOL_ELEMENT, |w| {
            w.u32(self.id.0);
            w.u32(self.home_registrar.0);
            w.u32(self.registration_life_ms);
            self.user_transport.emit(w);
            self.policy.emit(w);
            if let Some(asap) = &self.asap_transport {
                asap.emit(w);
            }
        });
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        let id = PoolElementId(r.u32("PeIdentifier")?);
        let home_registrar = RegistrarId(r.u32("HomeRegistrarId")?);
        let registration_life_ms = r.u32("RegistrationLife")?;
        let mut user_transport = None;
        let mut policy = None;
        let mut asap_transport = None;
        walk(&mut r, 8, |tlv| {
            //= https://www.rfc-editor.org/rfc/rfc5354#section-3.10
            //# A PE MUST have one and only one User Transport.
            // The first transport is the user transport, the second (SCTP) the ASAP transport.
            if UserTransport::is_transport(tlv.ty) && user_transport.is_none() {
                user_transport = Some(UserTransport::parse_tlv(&tlv)?);
            } else if UserTransport::is_transport(tlv.ty) {
                set_once(
                    &mut asap_transport,
                    SctpTransport::parse_tlv(&tlv)?,
                    "AsapTransport",
                    tlv.offset,
                )?;
            } else if tlv.ty == ParameterType::POOL_MEMBER_SELECTION_POLICY {
                set_once(&mut policy, Policy::parse_tlv(&tlv)?, "Policy", tlv.offset)?;
            } else {
                return Ok(false);
            }
            Ok(true)
        })?;
        let end = r.offset();
        Ok(Self {
            id,
            home_registrar,
            registration_life_ms,
            user_transport: required(user_transport, "UserTransport", end)?,
            policy: required(policy, "Policy", end)?,
            asap_transport,
        })
    }
}

/// A Pool Element parameter as it goes on the wire (header, value and padding), emitted once
/// by [`PoolElement::encode`] and kept by a registrar so that every answer that carries the PE
/// (Handle Resolution Response, ENRP Handle Update, Handle Table Response) copies bytes instead
/// of encoding. Only the Home ENRP Server Identifier changes after that (on takeover); the
/// writers that take an encoded PE overwrite it, so no caller patches offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedPoolElement<'a> {
    bytes: &'a [u8],
}

impl<'a> EncodedPoolElement<'a> {
    /// Checks that `bytes` hold exactly one padded Pool Element TLV whose value is at least the
    /// fixed part (PE identifier, home registrar, registration life).
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0);
        let ty = ParameterType(r.u16("ParameterType")?);
        if ty != ParameterType::POOL_ELEMENT {
            return Err(DecodeError::new(DecodeErrorKind::Unexpected, "PoolElement", 0));
        }
        let length = usize::from(r.u16("ParameterLength")?);
        if length < TLV_HEADER_LEN + POOL_ELEMENT_FIXED_LEN || pad4(length) != bytes.len() {
            return Err(DecodeError::new(DecodeErrorKind::BadLength, "ParameterLength", 2));
        }
        Ok(Self { bytes })
    }

    /// The padded TLV.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The TLV's length field: header and value, without padding (RFC 5354 §2).
    pub fn tlv_length(&self) -> usize {
        usize::from(u16::from_be_bytes([self.bytes[2], self.bytes[3]]))
    }

    /// The PE identifier inside.
    pub fn id(&self) -> PoolElementId {
        let b = &self.bytes[TLV_HEADER_LEN..TLV_HEADER_LEN + 4];
        PoolElementId(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The Registration Life inside, as the PE registered it.
    pub fn registration_life_ms(&self) -> u32 {
        let b = &self.bytes[REGISTRATION_LIFE_OFFSET..REGISTRATION_LIFE_OFFSET + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The ASAP Transport: the one SCTP transport after the policy, as [`PoolElement::encode`]
    /// places it. `None` when there is none, or when what follows the policy is not exactly one
    /// well-formed SCTP transport.
    pub fn asap_transport(&self) -> Option<SctpTransport> {
        let (cut, _) = self.without_asap_transport();
        if cut == self.bytes.len() {
            return None;
        }
        let mut r = Reader::new(&self.bytes[cut..], cut);
        let tlv = r.tlv().ok()??;
        if !r.is_empty() {
            return None;
        }
        SctpTransport::parse_tlv(&tlv).ok()
    }

    /// Appends the parameter as pool users get it: without the ASAP Transport (which tells
    /// registrars how to reach the PE's ASAP endpoint, §3.10; RSPLIB's registrar leaves it out
    /// of ASAP answers too), with `home` as its Home ENRP Server Identifier. Returns the
    /// unpadded end.
    pub(crate) fn append_for_pool_users(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        let (cut, length) = self.without_asap_transport();
        let start = out.len();
        out.extend_from_slice(&self.bytes[..cut]);
        let length = u16::try_from(length).expect("shorter than the whole, which fits");
        out[start + 2..start + 4].copy_from_slice(&length.to_be_bytes());
        let at = start + HOME_REGISTRAR_OFFSET;
        out[at..at + 4].copy_from_slice(&home.0.to_be_bytes());
        start + length as usize
    }

    /// Where the parameter ends without its ASAP Transport: (bytes to keep, padded; the TLV
    /// length then). The children come in emit order (user transport, policy, ASAP transport),
    /// so the cut is after the policy; without an ASAP Transport (or anything unexpected) the
    /// whole parameter is kept.
    fn without_asap_transport(&self) -> (usize, usize) {
        let whole = (self.bytes.len(), self.tlv_length());
        let mut at = TLV_HEADER_LEN + POOL_ELEMENT_FIXED_LEN;
        while at + TLV_HEADER_LEN <= whole.1 {
            let ty = u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]]);
            let length = usize::from(u16::from_be_bytes([self.bytes[at + 2], self.bytes[at + 3]]));
            if length < TLV_HEADER_LEN || at + length > whole.1 {
                return whole;
            }
            if ty == ParameterType::POOL_MEMBER_SELECTION_POLICY.0 {
                let cut = pad4(at + length);
                return if cut < self.bytes.len() { (cut, at + length) } else { whole };
            }
            at += pad4(length);
        }
        whole
    }

    /// Writes the parameter with `home` as its Home ENRP Server Identifier.
    pub(crate) fn emit_with_home(&self, w: &mut Writer<'_>, home: RegistrarId) {
        let start = w.position();
        w.bytes(self.bytes);
        w.patch_u32(start + HOME_REGISTRAR_OFFSET, home.0);
        w.set_trailing_padding(self.bytes.len() - self.tlv_length());
    }

    /// Appends the parameter to `out` with `home` as its Home ENRP Server Identifier; returns
    /// the unpadded end (RFC 5354 §2: a message's length excludes its last parameter's
    /// padding).
    pub(crate) fn append_with_home(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        let start = out.len();
        out.extend_from_slice(self.bytes);
        let at = start + HOME_REGISTRAR_OFFSET;
        out[at..at + 4].copy_from_slice(&home.0.to_be_bytes());
        start + self.tlv_length()
    }
}

/// Offset of the Home ENRP Server Identifier in a Pool Element parameter (§3.10): after the TLV
/// header and the PE identifier.
const HOME_REGISTRAR_OFFSET: usize = TLV_HEADER_LEN + 4;
/// Offset of the Registration Life (§3.10): after the home registrar.
const REGISTRATION_LIFE_OFFSET: usize = HOME_REGISTRAR_OFFSET + 4;

impl PoolElement {
    /// The parameter as it goes on the wire, padded: what [`EncodedPoolElement`] wraps.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; self.buffer_len()];
        let mut w = Writer::new(&mut bytes);
        self.emit(&mut w);
        assert_eq!(w.position(), bytes.len(), "emit writes buffer_len bytes");
        bytes
    }
}

// ---- Pool element from borrowed fields (§3.10) ----

/// A Pool Element parameter (§3.10) from borrowed fields, encoded without building a
/// [`PoolElement`] and without allocating: what a registrar that keeps a PE's fields, rather
/// than its encoded parameter, writes into its answers. [`Self::emit`] writes exactly the bytes
/// [`PoolElement::encode`] makes of the same values (`codec/tests/roundtrip.rs` checks it over
/// generated PEs). Every child TLV a field can name is a multiple of four bytes long (addresses
/// are 8 or 20, policy values 4 each), so the parameter has no padding and its length is known
/// before a byte is written: nothing is patched afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolElementFields<'a> {
    /// PE identifier.
    pub id: PoolElementId,
    /// Home registrar.
    pub home_registrar: RegistrarId,
    /// Registration life, as the PE registered it.
    pub registration_life_ms: u32,
    /// User transport.
    pub user_transport: UserTransportRef<'a>,
    /// Member selection policy.
    pub policy: PolicyValues,
    /// ASAP transport, when a registrar describes the PE to others.
    pub asap_transport: Option<SctpTransportRef<'a>>,
}

/// A user transport (§3.3-§3.7) with borrowed addresses, for [`PoolElementFields`]: every
/// [`UserTransport`] but opaque transport data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserTransportRef<'a> {
    /// DCCP (§3.3).
    Dccp {
        /// DCCP port.
        port: u16,
        /// DCCP service code.
        service_code: u32,
        /// The address.
        address: IpAddr,
    },
    /// SCTP (§3.4).
    Sctp(SctpTransportRef<'a>),
    /// TCP (§3.5), with the transport use RSPLIB writes.
    Tcp {
        /// TCP port.
        port: u16,
        /// Transport use.
        transport_use: TransportUse,
        /// The address.
        address: IpAddr,
    },
    /// UDP (§3.6).
    Udp {
        /// UDP port.
        port: u16,
        /// The address.
        address: IpAddr,
    },
    /// UDP-Lite (§3.7).
    UdpLite {
        /// UDP-Lite port.
        port: u16,
        /// The address.
        address: IpAddr,
    },
}

/// An SCTP transport (§3.4) with borrowed addresses. The first address stands apart so that a
/// caller who keeps a single address inline lends it without building a slice (an SCTP
/// transport has at least one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpTransportRef<'a> {
    /// SCTP port.
    pub port: u16,
    /// Data only, or data plus control.
    pub transport_use: TransportUse,
    /// The first address.
    pub first: IpAddr,
    /// The others, in order: fewer than [`ADDRESSES_PER_TRANSPORT_MAX`].
    pub rest: &'a [IpAddr],
}

/// A known policy (§3.8) as its type and its 32-bit values in wire order: the `Copy` form of a
/// [`Policy`] other than `Unknown`, for [`PoolElementFields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyValues {
    policy_type: PolicyType,
    values: [u32; 4],
    count: u8,
}

/// The common Pool Element parameter (§3.10) in a fixed layout: an SCTP user transport with
/// one IPv4 address, a known policy, and no ASAP Transport or one at that address with its own
/// port, data only (what a registrar records for a PE registered over an association). Nearly
/// every PE in a registrar's answers has this shape, so its encoder writes fixed offsets into
/// one stack buffer and appends that once; [`PoolElementFields`] takes any other shape. The
/// bytes are those [`PoolElement::encode`] makes of the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactPoolElement {
    /// PE identifier.
    pub id: PoolElementId,
    /// Home registrar.
    pub home_registrar: RegistrarId,
    /// Registration life, as the PE registered it.
    pub registration_life_ms: u32,
    /// The SCTP user transport's port.
    pub port: u16,
    /// The SCTP user transport's use.
    pub transport_use: TransportUse,
    /// The one address, of the user transport and of the ASAP Transport.
    pub address: Ipv4Addr,
    /// Member selection policy.
    pub policy: PolicyValues,
    /// The ASAP Transport's SCTP port; 0 for none (a port the shape cannot carry).
    pub asap_port: u16,
}

/// A Pool Element parameter for the writers that carry PEs (Handle Resolution Response, ENRP
/// Handle Update, Handle Table Response): bytes encoded earlier, or fields encoded as they are
/// written. Either way the writer puts in the PE's current home registrar.
#[derive(Clone, Copy, Debug)]
pub enum PoolElementRef<'a> {
    /// The common shape, encoded as it is written.
    Compact(CompactPoolElement),
    /// Encoded earlier, by [`PoolElement::encode`].
    Encoded(EncodedPoolElement<'a>),
    /// Any other shape, encoded as it is written.
    Fields(PoolElementFields<'a>),
}

impl CompactPoolElement {
    /// Bytes on the wire (there is no padding).
    pub fn buffer_len(&self) -> usize {
        self.length(true)
    }

    /// Whether `bytes` are exactly what this encodes to.
    pub fn emits(&self, bytes: &[u8]) -> bool {
        let (words, length) = self.words(self.home_registrar, true);
        words.as_flattened()[..length] == *bytes
    }

    fn length(&self, asap: bool) -> usize {
        let asap_length = if asap && self.asap_port != 0 { COMPACT_ASAP_LEN } else { 0 };
        COMPACT_POLICY_VALUES_AT + 4 * usize::from(self.policy.count) + asap_length
    }

    /// Appends the parameter as pool users get it: without the ASAP Transport, with `home` as
    /// its Home ENRP Server Identifier. Returns its end (it has no padding to leave out).
    // Always inlined: the resolution path, where a call passes the PE through memory and costs
    // a tenth of the encode (callgrind, registrar/tests/resolve_cost.rs).
    #[inline(always)]
    pub fn append_for_pool_users(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        let (words, length) = self.words(home, false);
        let bytes = words.as_flattened();
        // One copy of a length known here (the policy has 0 to 4 values), not a memcpy call.
        match self.policy.count {
            0 => out.extend_from_slice(&bytes[..COMPACT_POLICY_VALUES_AT]),
            1 => out.extend_from_slice(&bytes[..COMPACT_POLICY_VALUES_AT + 4]),
            2 => out.extend_from_slice(&bytes[..COMPACT_POLICY_VALUES_AT + 8]),
            3 => out.extend_from_slice(&bytes[..COMPACT_POLICY_VALUES_AT + 12]),
            _ => out.extend_from_slice(&bytes[..COMPACT_POLICY_VALUES_AT + 16]),
        }
        debug_assert_eq!(length, COMPACT_POLICY_VALUES_AT + 4 * usize::from(self.policy.count));
        out.len()
    }

    /// Appends the parameter with `home` as its Home ENRP Server Identifier, and with its ASAP
    /// Transport only if `asap`; returns its end (it has no padding to leave out).
    #[inline]
    fn append(&self, out: &mut Vec<u8>, home: RegistrarId, asap: bool) -> usize {
        let (words, length) = self.words(home, asap);
        out.extend_from_slice(&words.as_flattened()[..length]);
        out.len()
    }

    /// The parameter as big-endian words at the offsets this shape fixes, and its length in
    /// bytes (the words past it are not part of it). The same fields, in the same order, as
    /// [`PoolElement::emit`]. One array literal: nothing is zeroed first or bounds-checked.
    #[inline(always)]
    fn words(&self, home: RegistrarId, asap: bool) -> ([[u8; 4]; COMPACT_LEN_MAX / 4], usize) {
        let count = usize::from(self.policy.count);
        let length = self.length(asap);
        let pair = |a: u16, b: usize| {
            let b = u16::try_from(b).expect("a length under COMPACT_LEN_MAX");
            let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
            [a[0], a[1], b[0], b[1]]
        };
        let [v0, v1, v2, v3] = self.policy.values.map(u32::to_be_bytes);
        let address = self.address.octets();
        let policy_length = TLV_HEADER_LEN + 4 + 4 * count;
        let mut words = [
            pair(ParameterType::POOL_ELEMENT.0, length),
            self.id.0.to_be_bytes(),
            home.0.to_be_bytes(),
            self.registration_life_ms.to_be_bytes(),
            COMPACT_SCTP_HEADER,
            pair(self.port, usize::from(self.transport_use.0)),
            COMPACT_IPV4_HEADER,
            address,
            pair(ParameterType::POOL_MEMBER_SELECTION_POLICY.0, policy_length),
            self.policy.policy_type.0.to_be_bytes(),
            // All four: those past the policy's count are past its end, or overwritten below.
            v0,
            v1,
            v2,
            v3,
            COMPACT_SCTP_HEADER,
            pair(self.asap_port, usize::from(TransportUse::DATA_ONLY.0)),
            COMPACT_IPV4_HEADER,
            address,
        ];
        if asap && self.asap_port != 0 && count < 4 {
            // The ASAP Transport follows the policy's last value.
            words.copy_within(14..18, 10 + count);
        }
        (words, length)
    }
}

impl PoolElementFields<'_> {
    /// Bytes on the wire (there is no padding: see the type's docs).
    pub fn buffer_len(&self) -> usize {
        self.length(true)
    }

    /// Emits into `buf`, which must be at least [`Self::buffer_len`] bytes; returns the length
    /// written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let length = self.buffer_len();
        self.put(&mut buf[..length], self.home_registrar, true);
        length
    }

    /// The parameter in a new vector: the bytes [`PoolElement::encode`] makes of these values.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.buffer_len()];
        self.emit(&mut bytes);
        bytes
    }

    /// Whether `bytes` are exactly what [`Self::emit`] writes; checked without allocating.
    pub fn emits(&self, bytes: &[u8]) -> bool {
        if bytes.len() != self.buffer_len() {
            return false;
        }
        let mut buf = [0u8; FIELDS_BUFFER_LEN_MAX];
        let length = self.emit(&mut buf);
        buf[..length] == *bytes
    }

    /// The parameter's length, with its ASAP Transport if `asap`.
    fn length(&self, asap: bool) -> usize {
        let asap_length = match (&self.asap_transport, asap) {
            (Some(transport), true) => transport.length(),
            _ => 0,
        };
        TLV_HEADER_LEN
            + POOL_ELEMENT_FIXED_LEN
            + self.user_transport.length()
            + self.policy.length()
            + asap_length
    }

    /// Appends the parameter with `home` as its Home ENRP Server Identifier, and with its ASAP
    /// Transport only if `asap`; returns its end (it has no padding to leave out).
    fn append(&self, out: &mut Vec<u8>, home: RegistrarId, asap: bool) -> usize {
        let length = self.length(asap);
        let start = out.len();
        out.resize(start + length, 0);
        self.put(&mut out[start..], home, asap);
        start + length
    }

    /// Writes the parameter into `buf`, which is exactly its length.
    fn put(&self, buf: &mut [u8], home: RegistrarId, asap: bool) {
        let mut p = Put { buf, at: 0 };
        p.header(ParameterType::POOL_ELEMENT, p.buf.len());
        p.u32(self.id.0);
        p.u32(home.0);
        p.u32(self.registration_life_ms);
        self.user_transport.put(&mut p);
        self.policy.put(&mut p);
        if let (Some(transport), true) = (&self.asap_transport, asap) {
            transport.put(&mut p);
        }
        assert_eq!(p.at, p.buf.len(), "wrote the length computed");
    }
}

impl UserTransportRef<'_> {
    fn length(&self) -> usize {
        match self {
            Self::Dccp { address, .. } => TLV_HEADER_LEN + 8 + address_length(address),
            Self::Sctp(sctp) => sctp.length(),
            Self::Tcp { address, .. }
            | Self::Udp { address, .. }
            | Self::UdpLite { address, .. } => TLV_HEADER_LEN + 4 + address_length(address),
        }
    }

    /// The same fields, in the same order, as [`UserTransport::emit`].
    fn put(&self, p: &mut Put<'_>) {
        let (ty, port, second, address) = match *self {
            Self::Dccp { port, service_code, address } => {
                p.header(ParameterType::DCCP_TRANSPORT, self.length());
                p.u16(port);
                // Reserved.
                p.u16(0);
                p.u32(service_code);
                p.address(&address);
                return;
            }
            Self::Sctp(sctp) => return sctp.put(p),
            Self::Tcp { port, transport_use, address } => {
                (ParameterType::TCP_TRANSPORT, port, transport_use.0, address)
            }
            // The second 16 bits are reserved in UDP and UDP-Lite.
            Self::Udp { port, address } => (ParameterType::UDP_TRANSPORT, port, 0, address),
            Self::UdpLite { port, address } => {
                (ParameterType::UDP_LITE_TRANSPORT, port, 0, address)
            }
        };
        p.header(ty, self.length());
        p.u16(port);
        p.u16(second);
        p.address(&address);
    }
}

impl SctpTransportRef<'_> {
    fn length(&self) -> usize {
        assert!(self.rest.len() < ADDRESSES_PER_TRANSPORT_MAX, "an SCTP transport within the cap");
        let rest: usize = self.rest.iter().map(address_length).sum();
        TLV_HEADER_LEN + 4 + address_length(&self.first) + rest
    }

    /// The same fields, in the same order, as [`SctpTransport::emit`].
    fn put(&self, p: &mut Put<'_>) {
        p.header(ParameterType::SCTP_TRANSPORT, self.length());
        p.u16(self.port);
        p.u16(self.transport_use.0);
        p.address(&self.first);
        self.rest.iter().for_each(|address| p.address(address));
    }
}

impl PolicyValues {
    /// `policy`'s type and values; `None` for [`Policy::Unknown`], whose value is opaque.
    pub fn new(policy: &Policy) -> Option<Self> {
        if let Policy::Unknown { .. } = policy {
            return None;
        }
        let (values, count) = policy.fields();
        let count = u8::try_from(count).expect("a policy has at most four values");
        Some(Self { policy_type: policy.policy_type(), values, count })
    }

    /// A known policy type with its first `count` `values` in wire order (those of its
    /// [`Policy`] variant; the rest are ignored); `None` for an unknown type or a count not the
    /// type's. Fixed-size, so that building one on a hot path copies no slice.
    #[inline]
    pub fn with_values(policy_type: PolicyType, values: [u32; 4], count: usize) -> Option<Self> {
        if Policy::field_count(policy_type)? != count {
            return None;
        }
        let mut values = values;
        for (i, value) in values.iter_mut().enumerate() {
            *value = if i < count { *value } else { 0 };
        }
        let count = u8::try_from(count).expect("at most four");
        Some(Self { policy_type, values, count })
    }

    /// The policy type.
    pub fn policy_type(&self) -> PolicyType {
        self.policy_type
    }

    /// The values after the policy type, in wire order.
    pub fn values(&self) -> &[u32] {
        &self.values[..usize::from(self.count)]
    }

    fn length(&self) -> usize {
        TLV_HEADER_LEN + 4 + 4 * usize::from(self.count)
    }

    /// The same fields, in the same order, as [`Policy::emit`].
    fn put(&self, p: &mut Put<'_>) {
        p.header(ParameterType::POOL_MEMBER_SELECTION_POLICY, self.length());
        p.u32(self.policy_type.0);
        self.values().iter().for_each(|&value| p.u32(value));
    }
}

impl<'a> PoolElementRef<'a> {
    /// Bytes of the whole parameter (ASAP Transport included) on the wire, padded.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Compact(compact) => compact.buffer_len(),
            Self::Encoded(encoded) => encoded.as_bytes().len(),
            Self::Fields(fields) => fields.buffer_len(),
        }
    }

    /// The PE identifier.
    pub fn id(&self) -> PoolElementId {
        match self {
            Self::Compact(compact) => compact.id,
            Self::Encoded(encoded) => encoded.id(),
            Self::Fields(fields) => fields.id,
        }
    }

    /// Whether `bytes` are exactly the whole parameter; checked without allocating.
    pub fn emits(&self, bytes: &[u8]) -> bool {
        match self {
            Self::Compact(compact) => compact.emits(bytes),
            Self::Encoded(encoded) => encoded.as_bytes() == bytes,
            Self::Fields(fields) => fields.emits(bytes),
        }
    }

    /// The whole parameter in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.buffer_len());
        match self {
            Self::Compact(compact) => compact.append(&mut bytes, compact.home_registrar, true),
            Self::Encoded(encoded) => {
                bytes.extend_from_slice(encoded.as_bytes());
                bytes.len()
            }
            Self::Fields(fields) => fields.append(&mut bytes, fields.home_registrar, true),
        };
        bytes
    }

    /// Appends the parameter as pool users get it: without the ASAP Transport (which tells
    /// registrars how to reach the PE's ASAP endpoint, §3.10), with `home` as its Home ENRP
    /// Server Identifier. Returns the unpadded end (a message's length excludes its last
    /// parameter's padding, RFC 5354 §2).
    #[inline]
    pub fn append_for_pool_users(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        match self {
            Self::Compact(compact) => compact.append_for_pool_users(out, home),
            Self::Encoded(encoded) => encoded.append_for_pool_users(out, home),
            Self::Fields(fields) => fields.append(out, home, false),
        }
    }

    /// Appends the whole parameter with `home` as its Home ENRP Server Identifier; returns the
    /// unpadded end.
    pub(crate) fn append_with_home(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        match self {
            Self::Compact(compact) => compact.append(out, home, true),
            Self::Encoded(encoded) => encoded.append_with_home(out, home),
            Self::Fields(fields) => fields.append(out, home, true),
        }
    }

    /// Writes the whole parameter with `home` as its Home ENRP Server Identifier.
    pub(crate) fn emit_with_home(&self, w: &mut Writer<'_>, home: RegistrarId) {
        match self {
            Self::Compact(compact) => {
                let (words, length) = compact.words(home, true);
                w.take(length).copy_from_slice(&words.as_flattened()[..length]);
            }
            Self::Encoded(encoded) => encoded.emit_with_home(w, home),
            Self::Fields(fields) => fields.put(w.take(fields.buffer_len()), home, true),
        }
    }
}

/// What the writers of several PEs take: anything that lends a Pool Element parameter, such as
/// a registrar's stored PE. A reference per PE, the parameter made where it is written: handing
/// the writers finished [`PoolElementRef`]s instead moved a large enum through the iterator on
/// every PE of every resolution.
pub trait PoolElementSource {
    /// The parameter (the writer puts in the home registrar it is given).
    fn pool_element(&self) -> PoolElementRef<'_>;

    /// Appends the parameter as pool users get it ([`PoolElementRef::append_for_pool_users`]):
    /// the resolution path, which a source may shorten for its common shape (a
    /// [`CompactPoolElement`] made and written in one place) but not change.
    #[inline]
    fn append_for_pool_users(&self, out: &mut Vec<u8>, home: RegistrarId) -> usize {
        self.pool_element().append_for_pool_users(out, home)
    }
}

impl PoolElementSource for PoolElementRef<'_> {
    #[inline]
    fn pool_element(&self) -> PoolElementRef<'_> {
        *self
    }
}

impl From<CompactPoolElement> for PoolElementRef<'_> {
    fn from(compact: CompactPoolElement) -> Self {
        Self::Compact(compact)
    }
}

impl<'a> From<EncodedPoolElement<'a>> for PoolElementRef<'a> {
    fn from(encoded: EncodedPoolElement<'a>) -> Self {
        Self::Encoded(encoded)
    }
}

impl<'a> From<PoolElementFields<'a>> for PoolElementRef<'a> {
    fn from(fields: PoolElementFields<'a>) -> Self {
        Self::Fields(fields)
    }
}

impl PoolElement {
    /// This parameter in the compact layout, if it has that shape (see [`CompactPoolElement`]).
    pub fn compact(&self) -> Option<CompactPoolElement> {
        let UserTransport::Sctp(user) = &self.user_transport else { return None };
        let [IpAddr::V4(address)] = *user.addresses.as_slice() else { return None };
        let asap_port = match &self.asap_transport {
            None => 0,
            Some(t) => {
                let same = t.addresses.as_slice() == [IpAddr::V4(address)];
                if !same || t.transport_use != TransportUse::DATA_ONLY || t.port == 0 {
                    return None;
                }
                t.port
            }
        };
        Some(CompactPoolElement {
            id: self.id,
            home_registrar: self.home_registrar,
            registration_life_ms: self.registration_life_ms,
            port: user.port,
            transport_use: user.transport_use,
            address,
            policy: PolicyValues::new(&self.policy)?,
            asap_port,
        })
    }

    /// This parameter's borrowed fields; `None` for what they cannot say: opaque transport
    /// data, an unknown policy, or an SCTP transport without an address.
    pub fn fields(&self) -> Option<PoolElementFields<'_>> {
        fn sctp(t: &SctpTransport) -> Option<SctpTransportRef<'_>> {
            let (first, rest) = t.addresses.as_slice().split_first()?;
            let (port, transport_use) = (t.port, t.transport_use);
            Some(SctpTransportRef { port, transport_use, first: *first, rest })
        }
        let user_transport = match &self.user_transport {
            UserTransport::Dccp { port, service_code, address } => UserTransportRef::Dccp {
                port: *port,
                service_code: *service_code,
                address: *address,
            },
            UserTransport::Opaque(_) => return None,
            UserTransport::Sctp(t) => UserTransportRef::Sctp(sctp(t)?),
            UserTransport::Tcp { port, transport_use, address } => UserTransportRef::Tcp {
                port: *port,
                transport_use: *transport_use,
                address: *address,
            },
            UserTransport::Udp { port, address } => {
                UserTransportRef::Udp { port: *port, address: *address }
            }
            UserTransport::UdpLite { port, address } => {
                UserTransportRef::UdpLite { port: *port, address: *address }
            }
        };
        let asap_transport = match &self.asap_transport {
            Some(t) => Some(sctp(t)?),
            None => None,
        };
        Some(PoolElementFields {
            id: self.id,
            home_registrar: self.home_registrar,
            registration_life_ms: self.registration_life_ms,
            user_transport,
            policy: PolicyValues::new(&self.policy)?,
            asap_transport,
        })
    }
}

/// Writes big-endian fields one after another into a buffer of exactly the parameter's length:
/// [`PoolElementFields`]'s writer. Unlike [`Writer`] it patches and pads nothing, because every
/// length is known before writing.
struct Put<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    #[inline]
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    #[inline]
    fn header(&mut self, ty: ParameterType, length: usize) {
        self.u16(ty.0);
        self.u16(u16::try_from(length).expect("bounded by FIELDS_BUFFER_LEN_MAX"));
    }

    #[inline]
    fn address(&mut self, address: &IpAddr) {
        match address {
            IpAddr::V4(a) => {
                self.header(ParameterType::IPV4_ADDRESS, TLV_HEADER_LEN + 4);
                self.bytes(&a.octets());
            }
            IpAddr::V6(a) => {
                self.header(ParameterType::IPV6_ADDRESS, TLV_HEADER_LEN + 16);
                self.bytes(&a.octets());
            }
        }
    }
}

/// Where the policy's values start in a [`CompactPoolElement`]: after the parameter's fixed
/// part, the SCTP transport with one IPv4 address (16 bytes) and the policy's header and type.
const COMPACT_POLICY_VALUES_AT: usize =
    TLV_HEADER_LEN + POOL_ELEMENT_FIXED_LEN + COMPACT_ASAP_LEN + TLV_HEADER_LEN + 4;
/// An SCTP transport with one IPv4 address: header, port and use, the address TLV.
const COMPACT_ASAP_LEN: usize = TLV_HEADER_LEN + 4 + TLV_HEADER_LEN + 4;
/// The longest [`CompactPoolElement`]: four policy values and the ASAP Transport.
const COMPACT_LEN_MAX: usize = COMPACT_POLICY_VALUES_AT + 16 + COMPACT_ASAP_LEN;
/// The header of an SCTP transport with one IPv4 address.
const COMPACT_SCTP_HEADER: [u8; 4] = [0x00, 0x04, 0x00, COMPACT_ASAP_LEN as u8];
/// The header of an IPv4 address.
const COMPACT_IPV4_HEADER: [u8; 4] = [0x00, 0x01, 0x00, 0x08];
const _: () = assert!(COMPACT_POLICY_VALUES_AT == 40);
const _: () = assert!(ParameterType::SCTP_TRANSPORT.0 == 0x0004);
const _: () = assert!(ParameterType::IPV4_ADDRESS.0 == 0x0001);

/// The longest SCTP transport [`SctpTransportRef`] names: the address cap, all IPv6.
const SCTP_REF_LEN_MAX: usize =
    TLV_HEADER_LEN + 4 + ADDRESSES_PER_TRANSPORT_MAX * (TLV_HEADER_LEN + 16);
/// The longest parameter [`PoolElementFields`] writes: two maximal SCTP transports (a DCCP one
/// is shorter) and a policy of four values.
const FIELDS_BUFFER_LEN_MAX: usize =
    TLV_HEADER_LEN + POOL_ELEMENT_FIXED_LEN + 2 * SCTP_REF_LEN_MAX + TLV_HEADER_LEN + 4 + 16;
const _: () = assert!(FIELDS_BUFFER_LEN_MAX <= u16::MAX as usize);

// ---- Server information (§3.11) ----

/// Server Information (§3.11): a registrar's id and SCTP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerInformation {
    /// The registrar's id.
    pub server_id: RegistrarId,
    /// Its ENRP transport.
    pub transport: SctpTransport,
}

impl ServerInformation {
    pub(crate) fn length(&self) -> usize {
        TLV_HEADER_LEN + 4 + self.transport.length()
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::SERVER_INFORMATION, |w| {
            w.u32(self.server_id.0);
            self.transport.emit(w);
        });
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        let server_id = RegistrarId(r.u32("ServerId")?);
        let mut transport = None;
        walk(&mut r, 4, |tlv| {
            if tlv.ty != ParameterType::SCTP_TRANSPORT {
                return Ok(false);
            }
            set_once(
                &mut transport,
                SctpTransport::parse_tlv(&tlv)?,
                "ServerTransport",
                tlv.offset,
            )?;
            Ok(true)
        })?;
        let end = r.offset();
        Ok(Self { server_id, transport: required(transport, "ServerTransport", end)? })
    }
}

// ---- Operational error (§3.12) ----

/// Operational Error (§3.12): one or more error causes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OperationalError {
    /// The causes, 1 to [`ERROR_CAUSES_MAX`].
    pub causes: Vec<Cause>,
}

/// One error cause (§3.12) with its cause-specific information.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cause {
    /// The cause code.
    pub code: crate::error::ErrorCause,
    /// Cause-specific information.
    pub info: CauseInfo,
}

/// Cause-specific information (§3.12.1-§3.12.11). Which variant a code carries: Unrecognized
/// Parameter and Invalid Values carry a TLV, Unrecognized Message a message, Inconsistent
/// Pooling Policy a policy, Inconsistent Transport Type a transport, the others nothing.
/// Anything else a peer sends is kept as `Opaque`.
// The SCTP transport's addresses are inline (`AddressList`, no heap on the decode path), so
// this variant is larger than the others by design.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CauseInfo {
    /// The offending message (Unrecognized Message, §3.12.3), as received.
    Message(Vec<u8>),
    /// No information.
    None,
    /// Bytes we do not interpret (an unknown code, or unexpected information).
    Opaque(Vec<u8>),
    /// The offending parameter TLV (Unrecognized Parameter §3.12.2, Invalid Values §3.12.4).
    Parameter(Vec<u8>),
    /// The pool's policy (Inconsistent Pooling Policy, §3.12.6).
    Policy(Policy),
    /// The pool's transport (Inconsistent Transport Type, §3.12.8).
    Transport(UserTransport),
}

impl Cause {
    fn info_len(&self) -> usize {
        match &self.info {
            CauseInfo::None => 0,
            CauseInfo::Message(b) | CauseInfo::Opaque(b) | CauseInfo::Parameter(b) => b.len(),
            CauseInfo::Policy(p) => p.length(),
            CauseInfo::Transport(t) => t.length(),
        }
    }

    fn length(&self) -> usize {
        CAUSE_HEADER_LEN + self.info_len()
    }

    fn emit(&self, w: &mut Writer<'_>) {
        // A cause has the TLV layout, with the cause code in the type field.
        w.tlv(ParameterType(self.code.0), |w| match &self.info {
            CauseInfo::None => {}
            CauseInfo::Message(b) | CauseInfo::Opaque(b) | CauseInfo::Parameter(b) => w.bytes(b),
            CauseInfo::Policy(p) => p.emit(w),
            CauseInfo::Transport(t) => t.emit(w),
        });
    }

    fn parse(tlv: &Tlv<'_>) -> Self {
        use crate::error::ErrorCause as C;
        let code = C(tlv.ty.0);
        let bytes = tlv.value.rest();
        let nested = || {
            let mut r = tlv.value;
            let inner = r.tlv().ok().flatten()?;
            r.finish("CauseInfo").ok()?;
            Some(inner)
        };
        let info = match code {
            _ if bytes.is_empty() => CauseInfo::None,
            C::UNRECOGNIZED_PARAMETER | C::INVALID_VALUES => CauseInfo::Parameter(bytes.to_vec()),
            C::UNRECOGNIZED_MESSAGE => CauseInfo::Message(bytes.to_vec()),
            C::INCONSISTENT_POOLING_POLICY => nested()
                .and_then(|t| Policy::parse_tlv(&t).ok())
                .filter(|p| p.length() == bytes.len())
                .map_or_else(|| CauseInfo::Opaque(bytes.to_vec()), CauseInfo::Policy),
            C::INCONSISTENT_TRANSPORT_TYPE => nested()
                .and_then(|t| UserTransport::parse_tlv(&t).ok())
                .filter(|t| t.length() == bytes.len())
                .map_or_else(|| CauseInfo::Opaque(bytes.to_vec()), CauseInfo::Transport),
            _ => CauseInfo::Opaque(bytes.to_vec()),
        };
        Self { code, info }
    }
}

const CAUSE_HEADER_LEN: usize = 4;

impl OperationalError {
    /// One cause without information. Only for codes the RFC gives no information (§3.12.1,
    /// .5, .7, .9-.11); the others must carry theirs (Wireshark flags them as malformed).
    pub fn single(code: crate::error::ErrorCause) -> Self {
        use crate::error::ErrorCause as C;
        let needs_info = [
            C::UNRECOGNIZED_PARAMETER,
            C::UNRECOGNIZED_MESSAGE,
            C::INVALID_VALUES,
            C::INCONSISTENT_POOLING_POLICY,
            C::INCONSISTENT_TRANSPORT_TYPE,
        ];
        assert!(!needs_info.contains(&code), "{code:?} carries information");
        Self { causes: vec![Cause { code, info: CauseInfo::None }] }
    }

    pub(crate) fn length(&self) -> usize {
        TLV_HEADER_LEN + list_len(self.causes.iter().map(Cause::length))
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) {
        w.tlv(ParameterType::OPERATIONAL_ERROR, |w| {
            self.causes.iter().for_each(|c| c.emit(w));
        });
    }

    pub(crate) fn parse_tlv(tlv: &Tlv<'_>) -> Result<Self, DecodeError> {
        let mut r = tlv.value;
        let mut causes = Vec::new();
        while let Some(cause) = r.tlv()? {
            if causes.len() == ERROR_CAUSES_MAX {
                return Err(DecodeError::new(
                    DecodeErrorKind::TooMany,
                    "ErrorCauses",
                    cause.offset,
                ));
            }
            causes.push(Cause::parse(&cause));
        }
        //= https://www.rfc-editor.org/rfc/rfc5354#section-3.12
        //# one or more Error Causes
        if causes.is_empty() {
            return Err(DecodeError::new(DecodeErrorKind::Missing, "ErrorCause", r.offset()));
        }
        Ok(Self { causes })
    }
}
