//! What cores send each other: requests for another core's pools, answers for another core's
//! associations, session ends, and changes to a shard for the other cores' read replicas.

use std::net::SocketAddr;
use std::sync::Arc;

use codec::asap::{HandleResolution, Message};
use codec::{PoolElementId, PoolHandle, RegistrarId};
use handlespace::Registration as HsRegistration;

use super::enrp::{Announcement, PeerOp};

/// A session (SCTP association) anywhere in the registrar: the core that owns it and the
/// transport's association id there. Packed into the handlespace's opaque `registrator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// The core whose transport holds the association.
    pub core: u16,
    /// The association id on that core.
    pub assoc: u32,
}

impl SessionId {
    /// The handlespace's opaque registrator value for this session.
    pub(crate) fn to_u64(self) -> u64 {
        u64::from(self.core) << 32 | u64::from(self.assoc)
    }

    /// The session a registrator value names (the inverse of [`Self::to_u64`]).
    pub(crate) fn from_u64(v: u64) -> Self {
        Self { core: (v >> 32) as u16, assoc: v as u32 }
    }
}

/// A message between cores. It owns everything it carries (STYLE.md §4).
#[derive(Debug)]
pub enum CrossCore {
    /// A parsed request for a pool on the target core's shard.
    Request {
        /// Where the request came from (and where the answer goes).
        session: SessionId,
        /// The association's primary peer address (for the masquerade rule).
        peer: SocketAddr,
        /// The request.
        message: Box<Message>,
    },
    /// A Handle Resolution for a pool on the target core's shard: the hot request, carried by
    /// value (no allocation, no 400-byte `Message`), answered with `Transmit`.
    Resolve {
        /// Where the answer goes.
        session: SessionId,
        /// The request.
        request: HandleResolution,
    },
    /// ASAP bytes to send on one of the target core's associations.
    Transmit {
        /// The association on the target core.
        assoc: u32,
        /// The whole ASAP message.
        bytes: Vec<u8>,
    },
    /// A session ended: every shard drops the PEs registered over it.
    SessionClosed {
        /// The session.
        session: SessionId,
    },
    /// A change to the sender's shard, for the target core's read replica. It must arrive: a
    /// queue with no room keeps it for the next turn instead of refusing it.
    Replica(ReplicaUpdate),
    /// An ENRP message (PPID 12) that arrived on the sender's association, for the ENRP core.
    EnrpMessage {
        /// The association it came on.
        session: SessionId,
        /// The whole message.
        bytes: Vec<u8>,
    },
    /// An association that carried ENRP ended, for the ENRP core.
    EnrpClosed {
        /// The association.
        session: SessionId,
    },
    /// ENRP bytes for one of the target core's associations (a peer that connected to it).
    TransmitEnrp {
        /// The association on the target core.
        assoc: u32,
        /// The whole ENRP message, shared by every peer it goes to.
        bytes: Arc<[u8]>,
    },
    /// A change ENRP asks of the shard that owns the pool (or of every shard).
    Peer(PeerOp),
    /// A change of one of this registrar's own PEs, for the ENRP core to announce to every
    /// peer (it encodes the Handle Update once, if it has peers).
    Announce(Announcement),
}

/// A change to one core's shard, applied to every other core's read replica so that a handle
/// resolution is answered on the core that received it (ARCHITECTURE.md, "Read replicas").
#[derive(Debug)]
pub enum ReplicaUpdate {
    /// A PE was registered or re-registered; boxed, since it is rare and large.
    Upsert(Box<HsRegistration>),
    /// A PE left the shard (deregistration, timeout, expiry, report or session end).
    Remove {
        /// The pool.
        pool_handle: PoolHandle,
        /// The PE.
        id: PoolElementId,
    },
    /// Every PE homed at `source` is now homed at `target` (an ENRP takeover).
    TakeOver {
        /// The registrar taken over.
        source: RegistrarId,
        /// Its successor.
        target: RegistrarId,
    },
}

impl CrossCore {
    /// Whether this message belongs to the control plane (registrations, keep-alives, session
    /// ends) rather than the data plane (handle resolutions and their answers).
    pub fn is_control(&self) -> bool {
        match self {
            Self::Request { message, .. } => !matches!(**message, Message::HandleResolution(_)),
            Self::Resolve { .. } => false,
            Self::Transmit { bytes, .. } => {
                bytes.first() != Some(&codec::asap::MessageType::HANDLE_RESOLUTION_RESPONSE.0)
            }
            Self::SessionClosed { .. }
            | Self::Replica(_)
            | Self::EnrpMessage { .. }
            | Self::EnrpClosed { .. }
            | Self::TransmitEnrp { .. }
            | Self::Peer(_)
            | Self::Announce(_) => true,
        }
    }

    /// Whether a full queue must keep this message for later instead of refusing it: a lost
    /// replica update would leave a core answering from a stale copy, and a lost ENRP message
    /// or change would leave this registrar's handlespace apart from its peers' until the next
    /// audit.
    pub fn must_arrive(&self) -> bool {
        matches!(
            self,
            Self::Replica(_)
                | Self::EnrpMessage { .. }
                | Self::EnrpClosed { .. }
                | Self::Peer(_)
                | Self::Announce(_)
        )
    }
}
