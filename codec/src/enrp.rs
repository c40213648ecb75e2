//! ENRP messages (RFC 5353 §2): Reprs for all 10 types RFC 5353 defines, and the
//! [`Message`] enum.
//!
//! RFC 5353 has no Ownership Change message: drafts of ENRP had one at 0x0a with ENRP_ERROR at
//! 0x0b, and very old RSPLIB releases still used 0x0b for the error. The RFC, Wireshark 4.0 and
//! RSPLIB 3.4.4 put ENRP_ERROR at 0x0a; so do we. The takeover-suggested flag that RSPLIB
//! sends in Handle Update (draft-dreibholz-rserpool-enrp-takeover) is
//! [`HandleUpdate::takeover_suggested`].

use core::fmt;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::message::{collect, message, Allowed, Body, MessageView};
use crate::param::{
    emit_pool_handle, parse_pool_handle, pool_handle_length, OperationalError, ParameterType,
    PeChecksum, PoolElement, PoolElementRef, PoolElementSource, ServerInformation,
};
use crate::types::{PoolHandle, RegistrarId};
use crate::wire::{list_len, required, walk, Reader, Writer};

/// ENRP message type (RFC 5353 §2, Figure 1). Open: an unknown value is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// ENRP_PRESENCE (§2.1).
    pub const PRESENCE: Self = Self(0x01);
    /// ENRP_HANDLE_TABLE_REQUEST (§2.2).
    pub const HANDLE_TABLE_REQUEST: Self = Self(0x02);
    /// ENRP_HANDLE_TABLE_RESPONSE (§2.3).
    pub const HANDLE_TABLE_RESPONSE: Self = Self(0x03);
    /// ENRP_HANDLE_UPDATE (§2.4).
    pub const HANDLE_UPDATE: Self = Self(0x04);
    /// ENRP_LIST_REQUEST (§2.5).
    pub const LIST_REQUEST: Self = Self(0x05);
    /// ENRP_LIST_RESPONSE (§2.6).
    pub const LIST_RESPONSE: Self = Self(0x06);
    /// ENRP_INIT_TAKEOVER (§2.7).
    pub const INIT_TAKEOVER: Self = Self(0x07);
    /// ENRP_INIT_TAKEOVER_ACK (§2.8).
    pub const INIT_TAKEOVER_ACK: Self = Self(0x08);
    /// ENRP_TAKEOVER_SERVER (§2.9).
    pub const TAKEOVER_SERVER: Self = Self(0x09);
    /// ENRP_ERROR (§2.10).
    pub const ERROR: Self = Self(0x0a);
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enrp::MessageType(0x{:02x})", self.0)
    }
}

/// Update action of a Handle Update (§2.4). Open: an unknown value is kept as it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpdateAction(pub u16);

impl UpdateAction {
    /// ADD_PE: add or update the PE.
    pub const ADD_PE: Self = Self(0x0000);
    /// DEL_PE: delete the PE.
    pub const DEL_PE: Self = Self(0x0001);
}

impl fmt::Debug for UpdateAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ADD_PE => f.write_str("AddPe"),
            Self::DEL_PE => f.write_str("DelPe"),
            _ => write!(f, "UpdateAction(0x{:04x})", self.0),
        }
    }
}

const BIT_0: u8 = 0x01;

/// Sender and receiver getters, common to every ENRP view.
macro_rules! enrp_servers {
    ($view:ident) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Sending server's id.
            pub fn sender(&self) -> RegistrarId {
                RegistrarId(self.fixed_u32(0))
            }

            /// Receiving server's id.
            pub fn receiver(&self) -> RegistrarId {
                RegistrarId(self.fixed_u32(4))
            }
        }
    };
}
const BIT_1: u8 = 0x02;

/// Any ENRP message, owned.
// Kept inline: boxing the PE-carrying variants would cost an allocation per parse.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// ENRP_PRESENCE.
    Presence(Presence),
    /// ENRP_HANDLE_TABLE_REQUEST.
    HandleTableRequest(HandleTableRequest),
    /// ENRP_HANDLE_TABLE_RESPONSE.
    HandleTableResponse(HandleTableResponse),
    /// ENRP_HANDLE_UPDATE.
    HandleUpdate(HandleUpdate),
    /// ENRP_LIST_REQUEST.
    ListRequest(ListRequest),
    /// ENRP_LIST_RESPONSE.
    ListResponse(ListResponse),
    /// ENRP_INIT_TAKEOVER.
    InitTakeover(InitTakeover),
    /// ENRP_INIT_TAKEOVER_ACK.
    InitTakeoverAck(InitTakeoverAck),
    /// ENRP_TAKEOVER_SERVER.
    TakeoverServer(TakeoverServer),
    /// ENRP_ERROR.
    Error(Error),
}

macro_rules! each {
    ($m:expr, $x:ident => $f:expr) => {
        match $m {
            Message::Presence($x) => $f,
            Message::HandleTableRequest($x) => $f,
            Message::HandleTableResponse($x) => $f,
            Message::HandleUpdate($x) => $f,
            Message::ListRequest($x) => $f,
            Message::ListResponse($x) => $f,
            Message::InitTakeover($x) => $f,
            Message::InitTakeoverAck($x) => $f,
            Message::TakeoverServer($x) => $f,
            Message::Error($x) => $f,
        }
    };
}

impl Message {
    /// Parses one ENRP message; at most its padding may follow it in `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let view = MessageView::new_checked(bytes)?;
        let f = view.flags();
        let r = view.body_reader();
        let message = match MessageType(view.message_type()) {
            MessageType::PRESENCE => Self::Presence(Body::parse_body(f, r)?),
            MessageType::HANDLE_TABLE_REQUEST => Self::HandleTableRequest(Body::parse_body(f, r)?),
            MessageType::HANDLE_TABLE_RESPONSE => {
                Self::HandleTableResponse(Body::parse_body(f, r)?)
            }
            MessageType::HANDLE_UPDATE => Self::HandleUpdate(Body::parse_body(f, r)?),
            MessageType::LIST_REQUEST => Self::ListRequest(Body::parse_body(f, r)?),
            MessageType::LIST_RESPONSE => Self::ListResponse(Body::parse_body(f, r)?),
            MessageType::INIT_TAKEOVER => Self::InitTakeover(Body::parse_body(f, r)?),
            MessageType::INIT_TAKEOVER_ACK => Self::InitTakeoverAck(Body::parse_body(f, r)?),
            MessageType::TAKEOVER_SERVER => Self::TakeoverServer(Body::parse_body(f, r)?),
            MessageType::ERROR => Self::Error(Body::parse_body(f, r)?),
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

    /// Sending server's id, common to every ENRP message.
    pub fn sender(&self) -> RegistrarId {
        each!(self, m => m.servers.sender)
    }
}

fn type_of<B: Body>(_: &B) -> u8 {
    B::TYPE
}

/// Sending and receiving server ids, the first fields of every ENRP message (§2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Servers {
    /// Sending server's id.
    pub sender: RegistrarId,
    /// Receiving server's id; zero when sent to a group.
    pub receiver: RegistrarId,
}

impl Servers {
    const LEN: usize = 8;

    fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let sender = RegistrarId(r.u32("SendingServerId")?);
        let receiver = RegistrarId(r.u32("ReceivingServerId")?);
        Ok(Self { sender, receiver })
    }

    fn emit(&self, w: &mut Writer<'_>) {
        w.u32(self.sender.0);
        w.u32(self.receiver.0);
    }
}

// ---- §2.1 Presence ----

/// ENRP_PRESENCE (§2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// R flag (RSPLIB, Wireshark): reply required.
    pub reply_required: bool,
    /// Sender and receiver.
    pub servers: Servers,
    /// PE checksum of the sender's own PEs (SHOULD be present).
    pub checksum: Option<PeChecksum>,
    /// The sender's server information.
    pub server_information: Option<ServerInformation>,
}
enrp_servers!(PresenceView);
message!(Presence, PresenceView, 8);

impl Body for Presence {
    const TYPE: u8 = MessageType::PRESENCE.0;
    fn flags(&self) -> u8 {
        if self.reply_required {
            BIT_0
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        let children = [
            self.checksum.as_ref().map(PeChecksum::length),
            self.server_information.as_ref().map(ServerInformation::length),
        ];
        Servers::LEN + list_len(children.into_iter().flatten())
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
        if let Some(c) = &self.checksum {
            c.emit(w);
        }
        if let Some(s) = &self.server_information {
            s.emit(w);
        }
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        let c = collect(r, Allowed::CHECKSUM.and(Allowed::SERVER_INFO))?;
        Ok(Self {
            reply_required: flags & BIT_0 != 0,
            servers,
            checksum: c.checksum,
            server_information: c.server_info,
        })
    }
}

// ---- §2.2 Handle Table Request ----

/// ENRP_HANDLE_TABLE_REQUEST (§2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleTableRequest {
    /// W flag: only PEs owned by the receiver.
    pub own_children_only: bool,
    /// Sender and receiver.
    pub servers: Servers,
}
enrp_servers!(HandleTableRequestView);
message!(HandleTableRequest, HandleTableRequestView, 8);

impl Body for HandleTableRequest {
    const TYPE: u8 = MessageType::HANDLE_TABLE_REQUEST.0;
    fn flags(&self) -> u8 {
        if self.own_children_only {
            BIT_0
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        Servers::LEN
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        r.finish("HandleTableRequest")?;
        Ok(Self { own_children_only: flags & BIT_0 != 0, servers })
    }
}

// ---- §2.3 Handle Table Response ----

/// One pool entry of a Handle Table Response: a pool handle and its PEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEntry {
    /// The pool.
    pub pool_handle: PoolHandle,
    /// Its PEs (at least one on the wire).
    pub pool_elements: Vec<PoolElement>,
}

/// ENRP_HANDLE_TABLE_RESPONSE (§2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleTableResponse {
    /// M flag: more to send.
    pub more_to_send: bool,
    /// R flag: the request is rejected.
    pub reject: bool,
    /// Sender and receiver.
    pub servers: Servers,
    /// Pool entries; the PEs of all entries together are at most
    /// [`crate::POOL_ELEMENTS_PER_MESSAGE_MAX`].
    pub pools: Vec<PoolEntry>,
}
enrp_servers!(HandleTableResponseView);
message!(HandleTableResponse, HandleTableResponseView, 8);

impl Body for HandleTableResponse {
    const TYPE: u8 = MessageType::HANDLE_TABLE_RESPONSE.0;
    fn flags(&self) -> u8 {
        (if self.reject { BIT_0 } else { 0 }) | (if self.more_to_send { BIT_1 } else { 0 })
    }
    fn body_len(&self) -> usize {
        let lengths = self.pools.iter().flat_map(|p| {
            core::iter::once(pool_handle_length(&p.pool_handle))
                .chain(p.pool_elements.iter().map(PoolElement::length))
        });
        Servers::LEN + list_len(lengths)
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
        for pool in &self.pools {
            emit_pool_handle(w, &pool.pool_handle);
            pool.pool_elements.iter().for_each(|pe| pe.emit(w));
        }
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        let mut pools: Vec<PoolEntry> = Vec::new();
        let mut pool_elements_count = 0usize;
        walk(&mut r, crate::PARAMETERS_PER_MESSAGE_MAX, |tlv| {
            match tlv.ty {
                ParameterType::POOL_HANDLE => {
                    let pool_handle = parse_pool_handle(&tlv)?;
                    pools.push(PoolEntry { pool_handle, pool_elements: Vec::new() });
                }
                ParameterType::POOL_ELEMENT => {
                    //= https://www.rfc-editor.org/rfc/rfc5353#section-2.3
                    //# Each pool entry MUST start with a Pool Handle parameter
                    let Some(pool) = pools.last_mut() else {
                        return Err(DecodeError::new(
                            DecodeErrorKind::Missing,
                            "PoolHandle",
                            tlv.offset,
                        ));
                    };
                    pool_elements_count += 1;
                    if pool_elements_count > crate::POOL_ELEMENTS_PER_MESSAGE_MAX {
                        return Err(DecodeError::new(
                            DecodeErrorKind::TooMany,
                            "PoolElement",
                            tlv.offset,
                        ));
                    }
                    pool.pool_elements.push(PoolElement::parse_tlv(&tlv)?);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Self { more_to_send: flags & BIT_1 != 0, reject: flags & BIT_0 != 0, servers, pools })
    }
}

// ---- §2.4 Handle Update ----

/// ENRP_HANDLE_UPDATE (§2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleUpdate {
    /// T flag (draft-dreibholz-rserpool-enrp-takeover, RSPLIB `EHF_TAKEOVER_SUGGESTED`): the
    /// sender suggests that the receiver take the PE over.
    pub takeover_suggested: bool,
    /// Sender and receiver.
    pub servers: Servers,
    /// Add or delete.
    pub action: UpdateAction,
    /// The pool.
    pub pool_handle: PoolHandle,
    /// The PE.
    pub pool_element: PoolElement,
}
enrp_servers!(HandleUpdateView);

impl<T: AsRef<[u8]>> HandleUpdateView<T> {
    /// Update action.
    pub fn action(&self) -> UpdateAction {
        let b = &self.fixed()[8..10];
        UpdateAction(u16::from_be_bytes([b[0], b[1]]))
    }
}
message!(HandleUpdate, HandleUpdateView, 12);

impl Body for HandleUpdate {
    const TYPE: u8 = MessageType::HANDLE_UPDATE.0;
    fn flags(&self) -> u8 {
        if self.takeover_suggested {
            BIT_0
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        let children = [pool_handle_length(&self.pool_handle), self.pool_element.length()];
        Servers::LEN + 4 + list_len(children.into_iter())
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
        w.u16(self.action.0);
        w.u16(0);
        emit_pool_handle(w, &self.pool_handle);
        self.pool_element.emit(w);
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        let action = UpdateAction(r.u16("UpdateAction")?);
        //= https://www.rfc-editor.org/rfc/rfc5353#section-2.4
        //# This field MUST be set to all 0s by the sender and ignored by the receiver.
        let _reserved = r.u16("Reserved")?;
        let c = collect(r, Allowed::POOL_HANDLE.and(Allowed::POOL_ELEMENT))?;
        Ok(Self {
            takeover_suggested: flags & BIT_0 != 0,
            servers,
            action,
            pool_handle: required(c.pool_handle, "PoolHandle", c.end)?,
            pool_element: required(c.pool_element, "PoolElement", c.end)?,
        })
    }
}

// ---- §2.5 List Request ----

/// ENRP_LIST_REQUEST (§2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    /// Sender and receiver.
    pub servers: Servers,
}
enrp_servers!(ListRequestView);
message!(ListRequest, ListRequestView, 8);

impl Body for ListRequest {
    const TYPE: u8 = MessageType::LIST_REQUEST.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        Servers::LEN
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
    }
    fn parse_body(_flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        r.finish("ListRequest")?;
        Ok(Self { servers })
    }
}

// ---- §2.6 List Response ----

/// ENRP_LIST_RESPONSE (§2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResponse {
    /// R flag: the request is rejected.
    pub reject: bool,
    /// Sender and receiver.
    pub servers: Servers,
    /// Known peers, at most [`crate::SERVERS_PER_MESSAGE_MAX`].
    pub peers: Vec<ServerInformation>,
}
enrp_servers!(ListResponseView);
message!(ListResponse, ListResponseView, 8);

impl Body for ListResponse {
    const TYPE: u8 = MessageType::LIST_RESPONSE.0;
    fn flags(&self) -> u8 {
        if self.reject {
            BIT_0
        } else {
            0
        }
    }
    fn body_len(&self) -> usize {
        Servers::LEN + list_len(self.peers.iter().map(ServerInformation::length))
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
        self.peers.iter().for_each(|p| p.emit(w));
    }
    fn parse_body(flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        let c = collect(r, Allowed::SERVER_INFOS)?;
        Ok(Self { reject: flags & BIT_0 != 0, servers, peers: c.server_infos })
    }
}

// ---- §2.7-§2.9 takeover messages ----

macro_rules! takeover_message {
    ($(#[$doc:meta])* $name:ident, $view:ident, $ty:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Sender and receiver.
            pub servers: Servers,
            /// The registrar being taken over.
            pub target: RegistrarId,
        }
        message!($name, $view, 12);

        impl<T: AsRef<[u8]>> $view<T> {
            /// Targeting server's id.
            pub fn target(&self) -> RegistrarId {
                RegistrarId(self.fixed_u32(8))
            }
        }

        enrp_servers!($view);

        impl Body for $name {
            const TYPE: u8 = $ty.0;
            fn flags(&self) -> u8 {
                0
            }
            fn body_len(&self) -> usize {
                Servers::LEN + 4
            }
            fn emit_body(&self, w: &mut Writer<'_>) {
                self.servers.emit(w);
                w.u32(self.target.0);
            }
            fn parse_body(_flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
                let servers = Servers::parse(&mut r)?;
                let target = RegistrarId(r.u32("TargetServerId")?);
                r.finish(stringify!($name))?;
                Ok(Self { servers, target })
            }
        }
    };
}

takeover_message!(
    /// ENRP_INIT_TAKEOVER (§2.7): the sender intends to take over `target`.
    InitTakeover,
    InitTakeoverView,
    MessageType::INIT_TAKEOVER
);
takeover_message!(
    /// ENRP_INIT_TAKEOVER_ACK (§2.8): the sender does not object.
    InitTakeoverAck,
    InitTakeoverAckView,
    MessageType::INIT_TAKEOVER_ACK
);
takeover_message!(
    /// ENRP_TAKEOVER_SERVER (§2.9): the takeover is enforced.
    TakeoverServer,
    TakeoverServerView,
    MessageType::TAKEOVER_SERVER
);

// ---- §2.10 Error ----

/// ENRP_ERROR (§2.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Sender and receiver.
    pub servers: Servers,
    /// What went wrong.
    pub error: OperationalError,
}
enrp_servers!(ErrorView);
message!(Error, ErrorView, 8);

impl Body for Error {
    const TYPE: u8 = MessageType::ERROR.0;
    fn flags(&self) -> u8 {
        0
    }
    fn body_len(&self) -> usize {
        Servers::LEN + self.error.length()
    }
    fn emit_body(&self, w: &mut Writer<'_>) {
        self.servers.emit(w);
        self.error.emit(w);
    }
    fn parse_body(_flags: u8, mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let servers = Servers::parse(&mut r)?;
        let c = collect(r, Allowed::ERROR)?;
        Ok(Self { servers, error: required(c.error, "OperationalError", c.end)? })
    }
}

/// An ENRP Handle Update (§2.4) whose PE was encoded at registration: the home registrar's
/// announcement path, one copy of the stored parameter with its current home written in.
#[derive(Clone, Copy, Debug)]
pub struct HandleUpdateRef<'a> {
    /// T flag.
    pub takeover_suggested: bool,
    /// Sender and receiver ids (the receiver is 0 in an announcement, §3.3.1).
    pub servers: Servers,
    /// ADD_PE or DEL_PE.
    pub action: UpdateAction,
    /// The pool.
    pub pool_handle: &'a PoolHandle,
    /// The PE, as encoded.
    pub pool_element: PoolElementRef<'a>,
    /// The PE's home registrar, written into the parameter.
    pub home: RegistrarId,
}

impl HandleUpdateRef<'_> {
    /// Bytes [`Self::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let body = Servers::LEN + 4 + pool_handle_length(self.pool_handle).next_multiple_of(4);
        crate::wire::MESSAGE_HEADER_LEN + body + self.pool_element.buffer_len()
    }

    /// Emits into `buf` (at least [`Self::buffer_len`] bytes); returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let flags = if self.takeover_suggested { BIT_0 } else { 0 };
        let mut w = Writer::new(buf);
        w.message(MessageType::HANDLE_UPDATE.0, flags, |w| {
            self.servers.emit(w);
            w.u16(self.action.0);
            w.u16(0);
            emit_pool_handle(w, self.pool_handle);
            self.pool_element.emit_with_home(w, self.home);
        });
        assert_eq!(w.position(), self.buffer_len());
        w.position()
    }

    /// Emits into a new vector.
    pub fn emit_to_vec(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }
}

/// An ENRP Handle Table Response (§2.3) written from PEs encoded at registration, for a
/// handlespace download or a re-synchronisation page: a pool handle parameter whenever the pool
/// changes, then each PE with its current home.
#[derive(Clone, Copy, Debug)]
pub struct HandleTableResponseRef {
    /// M flag: more pages follow.
    pub more_to_send: bool,
    /// R flag: the request is refused (no entries then).
    pub reject: bool,
    /// Sender and receiver ids.
    pub servers: Servers,
}

impl HandleTableResponseRef {
    /// Writes into `out` (cleared first) the response with `entries`, which must come grouped
    /// by pool (a pool that reappears gets a second pool entry, which §3.2.3 rule C allows).
    /// At most [`crate::POOL_ELEMENTS_PER_MESSAGE_MAX`] entries, whose total must fit a
    /// message (64 KiB): callers page by that count.
    pub fn emit_with_encoded<'e, S: PoolElementSource + ?Sized + 'e>(
        &self,
        out: &mut Vec<u8>,
        entries: impl IntoIterator<Item = (&'e PoolHandle, &'e S, RegistrarId)>,
    ) {
        let reject = if self.reject { BIT_0 } else { 0 };
        let flags = reject | if self.more_to_send { BIT_1 } else { 0 };
        out.clear();
        out.extend_from_slice(&[MessageType::HANDLE_TABLE_RESPONSE.0, flags, 0, 0]);
        out.extend_from_slice(&self.servers.sender.0.to_be_bytes());
        out.extend_from_slice(&self.servers.receiver.0.to_be_bytes());
        let mut end = out.len();
        let mut pool: Option<&PoolHandle> = None;
        let mut count = 0usize;
        for (pool_handle, element, home) in entries {
            if pool != Some(pool_handle) {
                append_pool_handle(out, pool_handle);
                pool = Some(pool_handle);
            }
            end = element.pool_element().append_with_home(out, home);
            count += 1;
        }
        assert!(!self.reject || count == 0, "a refusal carries no entries (§3.2.3)");
        assert!(count <= crate::POOL_ELEMENTS_PER_MESSAGE_MAX);
        let length = u16::try_from(end).expect("callers page below the message size");
        out[2..4].copy_from_slice(&length.to_be_bytes());
    }
}

/// Appends a padded Pool Handle parameter; returns its unpadded end.
fn append_pool_handle(out: &mut Vec<u8>, pool_handle: &PoolHandle) -> usize {
    let length = pool_handle_length(pool_handle);
    let start = out.len();
    out.resize(start + length.next_multiple_of(4), 0);
    let mut w = Writer::new(&mut out[start..]);
    emit_pool_handle(&mut w, pool_handle);
    start + length
}
