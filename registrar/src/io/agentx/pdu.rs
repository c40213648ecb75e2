//! AgentX (RFC 2741) PDUs: the header (§6.1), object identifiers (§5.1), octet strings
//! (§5.3), varbinds (§5.4), search ranges (§5.2), and the PDUs a read-only subagent sends
//! (Open, Close, Register, Response) and receives (Response, Get, GetNext, GetBulk, Close, and
//! the set PDUs it refuses).
//!
//! Written here rather than taken from a crate: see the module docs of `agentx`. One layer
//! only (owned Reprs, no zero-copy views): PDUs are small and rare (an operator's walk), so
//! copying costs nothing that matters. Parsing shrinks a cursor; every length is checked
//! before it is used and errors name the field and the offset; nothing here panics on input.
//! Emitting always uses network byte order (the `NETWORK_BYTE_ORDER` flag set); decoding
//! takes either order, as the flag of each PDU says (§5: "the byte order of the PDU").

use std::fmt;

/// Header length (§6.1): version, type, flags, reserved, session, transaction, packet ids,
/// payload length.
pub const HEADER_LEN: usize = 20;
/// Longest payload accepted. A master's request holds search ranges (two OIDs of at most
/// [`SUBIDS_MAX`] sub-identifiers each, ≤ 1 KiB a range); 64 KiB is hundreds of them, far
/// more than net-snmp puts in one PDU, and bounds what one bad header makes us buffer.
pub const PAYLOAD_MAX: usize = 64 * 1024;
/// Most sub-identifiers in an OID: SNMP's own limit (RFC 2578 §3.5, "at most 128").
pub const SUBIDS_MAX: usize = 128;
/// Most search ranges (or varbinds) accepted in one PDU; each one is answered, so this also
/// bounds a response.
pub const RANGES_MAX: usize = 1_024;

/// Header flags (§6.1).
pub mod flags {
    /// `INSTANCE_REGISTRATION` (Register only).
    pub const INSTANCE_REGISTRATION: u8 = 0x01;
    /// `NEW_INDEX`.
    pub const NEW_INDEX: u8 = 0x02;
    /// `ANY_INDEX`.
    pub const ANY_INDEX: u8 = 0x04;
    /// `NON_DEFAULT_CONTEXT`: a context octet string follows the header.
    pub const NON_DEFAULT_CONTEXT: u8 = 0x08;
    /// `NETWORK_BYTE_ORDER`: multi-byte integers are big-endian (else little-endian).
    pub const NETWORK_BYTE_ORDER: u8 = 0x10;
}

/// A PDU type (§6.1, `h.type`), open: an unknown value is kept and printed in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PduType(pub u8);

impl PduType {
    /// agentx-Open-PDU.
    pub const OPEN: Self = Self(1);
    /// agentx-Close-PDU.
    pub const CLOSE: Self = Self(2);
    /// agentx-Register-PDU.
    pub const REGISTER: Self = Self(3);
    /// agentx-Unregister-PDU.
    pub const UNREGISTER: Self = Self(4);
    /// agentx-Get-PDU.
    pub const GET: Self = Self(5);
    /// agentx-GetNext-PDU.
    pub const GET_NEXT: Self = Self(6);
    /// agentx-GetBulk-PDU.
    pub const GET_BULK: Self = Self(7);
    /// agentx-TestSet-PDU.
    pub const TEST_SET: Self = Self(8);
    /// agentx-CommitSet-PDU.
    pub const COMMIT_SET: Self = Self(9);
    /// agentx-UndoSet-PDU.
    pub const UNDO_SET: Self = Self(10);
    /// agentx-CleanupSet-PDU.
    pub const CLEANUP_SET: Self = Self(11);
    /// agentx-Notify-PDU.
    pub const NOTIFY: Self = Self(12);
    /// agentx-Ping-PDU.
    pub const PING: Self = Self(13);
    /// agentx-Response-PDU.
    pub const RESPONSE: Self = Self(18);
}

impl fmt::Debug for PduType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::OPEN => "Open",
            Self::CLOSE => "Close",
            Self::REGISTER => "Register",
            Self::UNREGISTER => "Unregister",
            Self::GET => "Get",
            Self::GET_NEXT => "GetNext",
            Self::GET_BULK => "GetBulk",
            Self::TEST_SET => "TestSet",
            Self::COMMIT_SET => "CommitSet",
            Self::UNDO_SET => "UndoSet",
            Self::CLEANUP_SET => "CleanupSet",
            Self::NOTIFY => "Notify",
            Self::PING => "Ping",
            Self::RESPONSE => "Response",
            _ => return write!(f, "PduType({:#04x})", self.0),
        };
        f.write_str(name)
    }
}

/// `res.error` values (§6.2.16), SNMP's and AgentX's own.
pub mod error {
    /// No error.
    pub const NO_ERROR: u16 = 0;
    /// SNMP genErr.
    pub const GEN_ERR: u16 = 5;
    /// SNMP notWritable: the answer to any set, this subagent being read-only.
    pub const NOT_WRITABLE: u16 = 17;
    /// openFailed.
    pub const OPEN_FAILED: u16 = 256;
    /// notOpen.
    pub const NOT_OPEN: u16 = 257;
    /// unsupportedContext.
    pub const UNSUPPORTED_CONTEXT: u16 = 262;
    /// duplicateRegistration.
    pub const DUPLICATE_REGISTRATION: u16 = 263;
    /// parseError.
    pub const PARSE_ERROR: u16 = 266;
    /// requestDenied.
    pub const REQUEST_DENIED: u16 = 267;
    /// processingError.
    pub const PROCESSING_ERROR: u16 = 268;
}

/// Close reasons (§6.2.2).
pub mod close_reason {
    /// reasonOther.
    pub const OTHER: u8 = 1;
    /// reasonParseError.
    pub const PARSE_ERROR: u8 = 2;
    /// reasonProtocolError.
    pub const PROTOCOL_ERROR: u8 = 3;
    /// reasonShutdown.
    pub const SHUTDOWN: u8 = 5;
}

/// What went wrong decoding, where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Fewer bytes than the field needs.
    Truncated,
    /// Bytes left over after the last field.
    Trailing,
    /// A length or count out of its range.
    BadLength,
    /// A value this version does not know (a version, a varbind type).
    Unknown,
}

/// A decoding error: what failed, in which field, at which offset of the PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What.
    pub kind: DecodeErrorKind,
    /// The field, as RFC 2741 names it.
    pub field: &'static str,
    /// Byte offset from the start of the PDU (header included).
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {} at byte {}", self.kind, self.field, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a PDU that knows its byte order and where it is.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    fn err(&self, kind: DecodeErrorKind, field: &'static str) -> DecodeError {
        DecodeError { kind, field, offset: self.at }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return Err(self.err(DecodeErrorKind::Truncated, field)) };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        let b = [b[0], b[1]];
        Ok(if self.big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        // §5.4: a Counter64 is two 32-bit words, high first, each in the PDU's order.
        let high = u64::from(self.u32(field)?);
        let low = u64::from(self.u32(field)?);
        Ok(high << 32 | low)
    }

    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(DecodeErrorKind::Trailing, field))
        }
    }
}

/// A growing PDU in network byte order.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
}

/// The PDU header (§6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `h.version`: 1.
    pub version: u8,
    /// `h.type`.
    pub ty: PduType,
    /// `h.flags`.
    pub flags: u8,
    /// `h.sessionID`.
    pub session_id: u32,
    /// `h.transactionID`.
    pub transaction_id: u32,
    /// `h.packetID`.
    pub packet_id: u32,
    /// `h.payload_length`: bytes after the header, a multiple of 4.
    pub payload_length: u32,
}

impl Header {
    /// Parses the 20 header bytes: version 1, a payload length that is a multiple of 4 and at
    /// most [`PAYLOAD_MAX`].
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, at: 0, big: false };
        let version = r.u8("h.version")?;
        if version != 1 {
            return Err(DecodeError {
                kind: DecodeErrorKind::Unknown,
                field: "h.version",
                offset: 0,
            });
        }
        let ty = PduType(r.u8("h.type")?);
        let flags = r.u8("h.flags")?;
        r.big = flags & flags::NETWORK_BYTE_ORDER != 0;
        r.u8("reserved")?;
        let session_id = r.u32("h.sessionID")?;
        let transaction_id = r.u32("h.transactionID")?;
        let packet_id = r.u32("h.packetID")?;
        let payload_length = r.u32("h.payload_length")?;
        let length_ok = payload_length % 4 == 0
            && usize::try_from(payload_length).is_ok_and(|l| l <= PAYLOAD_MAX);
        if !length_ok {
            return Err(DecodeError {
                kind: DecodeErrorKind::BadLength,
                field: "h.payload_length",
                offset: 16,
            });
        }
        Ok(Self { version, ty, flags, session_id, transaction_id, packet_id, payload_length })
    }

    /// Whether multi-byte fields are big-endian.
    pub fn network_byte_order(&self) -> bool {
        self.flags & flags::NETWORK_BYTE_ORDER != 0
    }

    fn emit(&self, w: &mut Writer) {
        w.u8(self.version);
        w.u8(self.ty.0);
        w.u8(self.flags | flags::NETWORK_BYTE_ORDER);
        w.u8(0);
        w.u32(self.session_id);
        w.u32(self.transaction_id);
        w.u32(self.packet_id);
        w.u32(self.payload_length);
    }
}

/// An object identifier (§5.1), with the `include` flag search ranges use.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

/// The `internet` prefix (1.3.6.1) prefix compression stands for (§5.1).
const INTERNET: [u32; 4] = [1, 3, 6, 1];

impl Oid {
    /// Whether `self` starts with `prefix`.
    pub fn starts_with(&self, prefix: &[u32]) -> bool {
        self.0.starts_with(prefix)
    }

    /// The encoded length (prefix-compressed when it can be).
    pub fn buffer_len(&self) -> usize {
        4 + 4 * (self.0.len() - if self.compressible() { 5 } else { 0 })
    }

    /// `1.3.6.1.x.…` with `x` in 1..=255 is sent as prefix `x` and the rest.
    fn compressible(&self) -> bool {
        self.0.len() >= 5 && self.0[..4] == INTERNET && (1..=255).contains(&self.0[4])
    }

    fn emit(&self, include: bool, w: &mut Writer) {
        let (prefix, rest) =
            if self.compressible() { (self.0[4] as u8, &self.0[5..]) } else { (0, &self.0[..]) };
        // At most SUBIDS_MAX sub-identifiers are ever built or parsed (see `parse` and the
        // MIB), so the count fits its byte.
        w.u8(u8::try_from(rest.len()).unwrap_or(u8::MAX));
        w.u8(prefix);
        w.u8(u8::from(include));
        w.u8(0);
        for &s in rest {
            w.u32(s);
        }
    }

    /// Parses an OID; returns it and its `include` byte (non-zero: true).
    fn parse(r: &mut Reader<'_>) -> Result<(Self, bool), DecodeError> {
        let n = usize::from(r.u8("n_subid")?);
        let prefix = r.u8("prefix")?;
        let include = r.u8("include")? != 0;
        r.u8("reserved")?;
        let mut subids = Vec::with_capacity(n + 5);
        if prefix != 0 {
            subids.extend_from_slice(&INTERNET);
            subids.push(u32::from(prefix));
        }
        if subids.len() + n > SUBIDS_MAX {
            return Err(r.err(DecodeErrorKind::BadLength, "n_subid"));
        }
        for _ in 0..n {
            subids.push(r.u32("sub-identifier")?);
        }
        Ok((Self(subids), include))
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

fn emit_octets(bytes: &[u8], w: &mut Writer) {
    w.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    w.0.extend_from_slice(bytes);
    // §5.3: padded with 0 to a multiple of 4; the padding is not counted in the length.
    w.0.resize(w.0.len() + pad(bytes.len()), 0);
}

fn parse_octets(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    let len = r.u32(field)?;
    let len = usize::try_from(len).map_err(|_| r.err(DecodeErrorKind::BadLength, field))?;
    let bytes = r.take(len, field)?.to_vec();
    r.take(pad(len), "padding")?;
    Ok(bytes)
}

fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// A varbind value (§5.4), by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Integer (2).
    Integer(i32),
    /// OCTET STRING (4).
    OctetString(Vec<u8>),
    /// Null (5).
    Null,
    /// OBJECT IDENTIFIER (6).
    ObjectIdentifier(Oid),
    /// IpAddress (64).
    IpAddress([u8; 4]),
    /// Counter32 (65).
    Counter32(u32),
    /// Gauge32 (66), which is also Unsigned32.
    Gauge32(u32),
    /// TimeTicks (67), hundredths of a second.
    TimeTicks(u32),
    /// Opaque (68).
    Opaque(Vec<u8>),
    /// Counter64 (70).
    Counter64(u64),
    /// noSuchObject (128).
    NoSuchObject,
    /// noSuchInstance (129).
    NoSuchInstance,
    /// endOfMibView (130).
    EndOfMibView,
}

impl Value {
    fn tag(&self) -> u16 {
        match self {
            Self::Integer(_) => 2,
            Self::OctetString(_) => 4,
            Self::Null => 5,
            Self::ObjectIdentifier(_) => 6,
            Self::IpAddress(_) => 64,
            Self::Counter32(_) => 65,
            Self::Gauge32(_) => 66,
            Self::TimeTicks(_) => 67,
            Self::Opaque(_) => 68,
            Self::Counter64(_) => 70,
            Self::NoSuchObject => 128,
            Self::NoSuchInstance => 129,
            Self::EndOfMibView => 130,
        }
    }
}

/// A variable binding: a name and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarBind {
    /// The name.
    pub name: Oid,
    /// The value.
    pub value: Value,
}

impl VarBind {
    fn emit(&self, w: &mut Writer) {
        w.u16(self.value.tag());
        w.u16(0);
        self.name.emit(false, w);
        match &self.value {
            Value::Integer(v) => w.u32(*v as u32),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => w.u32(*v),
            Value::Counter64(v) => {
                w.u32((v >> 32) as u32);
                w.u32(*v as u32);
            }
            Value::OctetString(b) | Value::Opaque(b) => emit_octets(b, w),
            Value::IpAddress(a) => emit_octets(a, w),
            Value::ObjectIdentifier(o) => o.emit(false, w),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {}
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u16("v.type")?;
        r.u16("reserved")?;
        let (name, _) = Oid::parse(r)?;
        let value = match tag {
            2 => Value::Integer(r.u32("v.data")? as i32),
            4 => Value::OctetString(parse_octets(r, "v.data")?),
            5 => Value::Null,
            6 => Value::ObjectIdentifier(Oid::parse(r)?.0),
            64 => {
                let at = r.at;
                let b = parse_octets(r, "v.data")?;
                let a = <[u8; 4]>::try_from(b.as_slice()).map_err(|_| DecodeError {
                    kind: DecodeErrorKind::BadLength,
                    field: "IpAddress",
                    offset: at,
                })?;
                Value::IpAddress(a)
            }
            65 => Value::Counter32(r.u32("v.data")?),
            66 => Value::Gauge32(r.u32("v.data")?),
            67 => Value::TimeTicks(r.u32("v.data")?),
            68 => Value::Opaque(parse_octets(r, "v.data")?),
            70 => Value::Counter64(r.u64("v.data")?),
            128 => Value::NoSuchObject,
            129 => Value::NoSuchInstance,
            130 => Value::EndOfMibView,
            _ => return Err(r.err(DecodeErrorKind::Unknown, "v.type")),
        };
        Ok(Self { name, value })
    }
}

/// A search range (§5.2): from `start` (itself included when `include`) up to, not
/// including, `end` (no bound when `end` is the null OID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchRange {
    /// The start.
    pub start: Oid,
    /// Whether `start` itself may be returned.
    pub include: bool,
    /// The end, exclusive; empty for none.
    pub end: Oid,
}

impl SearchRange {
    fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (start, include) = Oid::parse(r)?;
        let (end, _) = Oid::parse(r)?;
        Ok(Self { start, include, end })
    }

    fn emit(&self, w: &mut Writer) {
        self.start.emit(self.include, w);
        self.end.emit(false, w);
    }
}

/// A PDU's body, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Open (§6.2.1): timeout in seconds (0: the master's default), the subagent's id, its
    /// description.
    Open {
        /// `o.timeout`.
        timeout: u8,
        /// `o.id`.
        id: Oid,
        /// `o.descr`.
        descr: Vec<u8>,
    },
    /// Close (§6.2.2).
    Close {
        /// `c.reason`.
        reason: u8,
    },
    /// Register (§6.2.3), without a range (`r.range_subid` 0).
    Register {
        /// `r.timeout`.
        timeout: u8,
        /// `r.priority` (127 is the default, lower wins).
        priority: u8,
        /// `r.subtree`.
        subtree: Oid,
    },
    /// Get (§6.2.5).
    Get(Vec<SearchRange>),
    /// GetNext (§6.2.6).
    GetNext(Vec<SearchRange>),
    /// GetBulk (§6.2.7).
    GetBulk {
        /// `g.non_repeaters`.
        non_repeaters: u16,
        /// `g.max_repetitions`.
        max_repetitions: u16,
        /// The ranges.
        ranges: Vec<SearchRange>,
    },
    /// Response (§6.2.16).
    Response {
        /// `res.sysUpTime`.
        sys_up_time: u32,
        /// `res.error`.
        error: u16,
        /// `res.index`.
        index: u16,
        /// The varbinds.
        varbinds: Vec<VarBind>,
    },
    /// Any other PDU: its type and payload are kept, undecoded (a read-only subagent answers
    /// sets with an error and needs nothing else of them).
    Other(Vec<u8>),
}

/// A whole PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// The header; `payload_length` is recomputed by [`Pdu::emit`].
    pub header: Header,
    /// A non-default context (`NON_DEFAULT_CONTEXT`), as received.
    pub context: Option<Vec<u8>>,
    /// The body.
    pub body: Body,
}

impl Pdu {
    /// A PDU of `ty` with ids and no flags.
    pub fn new(
        ty: PduType,
        session_id: u32,
        transaction_id: u32,
        packet_id: u32,
        body: Body,
    ) -> Self {
        let header = Header {
            version: 1,
            ty,
            flags: flags::NETWORK_BYTE_ORDER,
            session_id,
            transaction_id,
            packet_id,
            payload_length: 0,
        };
        Self { header, context: None, body }
    }

    /// Parses one whole PDU (header and exactly `payload_length` bytes after it).
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = Header::parse(bytes)?;
        let total = HEADER_LEN + header.payload_length as usize;
        if bytes.len() < total {
            return Err(DecodeError {
                kind: DecodeErrorKind::Truncated,
                field: "payload",
                offset: bytes.len(),
            });
        }
        if bytes.len() > total {
            return Err(DecodeError {
                kind: DecodeErrorKind::Trailing,
                field: "payload",
                offset: total,
            });
        }
        let mut r = Reader { bytes, at: HEADER_LEN, big: header.network_byte_order() };
        let has_context = header.flags & flags::NON_DEFAULT_CONTEXT != 0;
        let context_allowed = matches!(
            header.ty,
            PduType::REGISTER
                | PduType::UNREGISTER
                | PduType::GET
                | PduType::GET_NEXT
                | PduType::GET_BULK
                | PduType::TEST_SET
                | PduType::NOTIFY
                | PduType::PING
        );
        let context = if has_context && context_allowed {
            Some(parse_octets(&mut r, "context")?)
        } else {
            None
        };
        let body = match header.ty {
            PduType::OPEN => {
                let timeout = r.u8("o.timeout")?;
                r.take(3, "reserved")?;
                let (id, _) = Oid::parse(&mut r)?;
                let descr = parse_octets(&mut r, "o.descr")?;
                Body::Open { timeout, id, descr }
            }
            PduType::CLOSE => {
                let reason = r.u8("c.reason")?;
                r.take(3, "reserved")?;
                Body::Close { reason }
            }
            PduType::REGISTER => {
                let timeout = r.u8("r.timeout")?;
                let priority = r.u8("r.priority")?;
                let range_subid = r.u8("r.range_subid")?;
                r.u8("reserved")?;
                let (subtree, _) = Oid::parse(&mut r)?;
                if range_subid != 0 {
                    r.u32("r.upper_bound")?;
                }
                Body::Register { timeout, priority, subtree }
            }
            PduType::GET => Body::Get(parse_ranges(&mut r)?),
            PduType::GET_NEXT => Body::GetNext(parse_ranges(&mut r)?),
            PduType::GET_BULK => {
                let non_repeaters = r.u16("g.non_repeaters")?;
                let max_repetitions = r.u16("g.max_repetitions")?;
                Body::GetBulk { non_repeaters, max_repetitions, ranges: parse_ranges(&mut r)? }
            }
            PduType::RESPONSE => {
                let sys_up_time = r.u32("res.sysUpTime")?;
                let error = r.u16("res.error")?;
                let index = r.u16("res.index")?;
                let mut varbinds = Vec::new();
                while !r.is_empty() {
                    if varbinds.len() == RANGES_MAX {
                        return Err(r.err(DecodeErrorKind::BadLength, "VarBindList"));
                    }
                    varbinds.push(VarBind::parse(&mut r)?);
                }
                Body::Response { sys_up_time, error, index, varbinds }
            }
            _ => {
                let rest = r.take(bytes.len() - r.at, "payload")?;
                Body::Other(rest.to_vec())
            }
        };
        r.finish("payload")?;
        Ok(Self { header, context, body })
    }

    /// The PDU's bytes, in network byte order, `h.payload_length` filled in.
    pub fn emit(&self) -> Vec<u8> {
        let mut w = Writer::default();
        let mut header = self.header;
        header.flags = (header.flags | flags::NETWORK_BYTE_ORDER) & !flags::NON_DEFAULT_CONTEXT;
        if self.context.is_some() {
            header.flags |= flags::NON_DEFAULT_CONTEXT;
        }
        header.emit(&mut w);
        if let Some(context) = &self.context {
            emit_octets(context, &mut w);
        }
        match &self.body {
            Body::Open { timeout, id, descr } => {
                w.u8(*timeout);
                w.0.extend_from_slice(&[0; 3]);
                id.emit(false, &mut w);
                emit_octets(descr, &mut w);
            }
            Body::Close { reason } => {
                w.u8(*reason);
                w.0.extend_from_slice(&[0; 3]);
            }
            Body::Register { timeout, priority, subtree } => {
                w.u8(*timeout);
                w.u8(*priority);
                w.u8(0);
                w.u8(0);
                subtree.emit(false, &mut w);
            }
            Body::Get(ranges) | Body::GetNext(ranges) => ranges.iter().for_each(|r| r.emit(&mut w)),
            Body::GetBulk { non_repeaters, max_repetitions, ranges } => {
                w.u16(*non_repeaters);
                w.u16(*max_repetitions);
                ranges.iter().for_each(|r| r.emit(&mut w));
            }
            Body::Response { sys_up_time, error, index, varbinds } => {
                w.u32(*sys_up_time);
                w.u16(*error);
                w.u16(*index);
                varbinds.iter().for_each(|v| v.emit(&mut w));
            }
            Body::Other(bytes) => {
                w.0.extend_from_slice(bytes);
                w.0.resize(w.0.len() + pad(bytes.len()), 0);
            }
        }
        let length = u32::try_from(w.0.len() - HEADER_LEN).unwrap_or(u32::MAX);
        w.0[16..20].copy_from_slice(&length.to_be_bytes());
        w.0
    }
}

fn parse_ranges(r: &mut Reader<'_>) -> Result<Vec<SearchRange>, DecodeError> {
    let mut ranges = Vec::new();
    while !r.is_empty() {
        if ranges.len() == RANGES_MAX {
            return Err(r.err(DecodeErrorKind::BadLength, "SearchRangeList"));
        }
        ranges.push(SearchRange::parse(r)?);
    }
    Ok(ranges)
}
