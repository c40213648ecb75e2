//! [`TableDump`]: a registrar's whole handlespace read over ENRP (RFC 5353 §3.2.3), sans-IO,
//! the way RSPLIB's `hsdump` reads it: the dumper acts as an ENRP peer with an id of its own,
//! sends an ENRP_HANDLE_TABLE_REQUEST on an association to the registrar's ENRP port (PPID 12),
//! and sends the request again after each ENRP_HANDLE_TABLE_RESPONSE whose M flag says that
//! more is to come.
//!
//! [`crate::blocking::dump_handlespace`] drives it over a transport.
//!
//! It does not send ENRP_PRESENCE: a registrar still looking for a mentor could take the
//! dumper for one. It answers nothing the registrar sends besides table responses (a Presence
//! asking for a reply, say), so a registrar remembers it as a peer that went silent.
//!
//! ```text
//!   TableDump::new(own_id) ── start() ──▶ request bytes (send on PPID 12)
//!   handle_data(bytes) ──▶ Step::More(request bytes) | Step::Done | Step::Ignored | Err
//!   into_pools() ──▶ every pool with its PEs
//! ```

use std::fmt;

use codec::enrp::{HandleTableRequest, Message, Servers};
use codec::{DecodeError, PoolElement, PoolHandle, RegistrarId};

/// Pages one dump reads. A page holds up to 256 PEs, so 8 192 pages are two million PEs: more
/// than any registrar we run holds, and a bound on a registrar that keeps saying "more".
pub const PAGES_MAX: u32 = 8_192;

/// Where a dump stands after one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The table is complete.
    Done,
    /// Not a table response (a Presence, say); nothing to do.
    Ignored,
    /// More pages follow: send these bytes (the next request).
    More(Vec<u8>),
}

/// Why a dump failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// The registrar sent bytes that are not ENRP.
    Decode(DecodeError),
    /// The registrar sent an ENRP_ERROR.
    Errored(codec::ErrorCause),
    /// The registrar refused the request (R flag): it is not synchronised with its peers yet
    /// (RFC 5353 §3.2.3).
    Refused,
    /// The registrar said "more" more than [`PAGES_MAX`] times.
    TooManyPages,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "undecodable ENRP from the registrar: {e}"),
            Self::TooManyPages => write!(f, "more than {PAGES_MAX} handle table pages"),
            Self::Refused => f.write_str(
                "the registrar refused the handle table request (R flag: not synchronised yet)",
            ),
            Self::Errored(cause) => {
                write!(f, "the registrar sent an ENRP error: {}", crate::blocking::in_words(*cause))
            }
        }
    }
}

impl std::error::Error for DumpError {}

/// One handle table download.
#[derive(Debug)]
pub struct TableDump {
    own: RegistrarId,
    registrar: Option<RegistrarId>,
    pools: Vec<(PoolHandle, Vec<PoolElement>)>,
    pages: u32,
}

impl TableDump {
    /// A dump whose requests carry `own` as the sending server's id (not zero: no registrar
    /// has id 0, RFC 5353 §2.1, and a registrar drops messages from it).
    pub fn new(own: RegistrarId) -> Self {
        assert_ne!(own.0, 0, "a dumper needs a non-zero server id");
        Self { own, registrar: None, pools: Vec::new(), pages: 0 }
    }

    /// The first request.
    pub fn start(&self) -> Vec<u8> {
        self.request()
    }

    /// The registrar's id, once it answered.
    pub fn registrar(&self) -> Option<RegistrarId> {
        self.registrar
    }

    /// Pages read so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// One ENRP message from the registrar.
    pub fn handle_data(&mut self, bytes: &[u8]) -> Result<Step, DumpError> {
        let response = match Message::parse(bytes).map_err(DumpError::Decode)? {
            Message::HandleTableResponse(r) => r,
            Message::Error(e) => {
                let cause =
                    e.error.causes.first().map_or(codec::ErrorCause::UNSPECIFIED, |c| c.code);
                return Err(DumpError::Errored(cause));
            }
            _ => return Ok(Step::Ignored),
        };
        self.registrar = Some(response.servers.sender);
        if response.reject {
            return Err(DumpError::Refused);
        }
        self.pages = self.pages.saturating_add(1);
        for entry in response.pools {
            match self.pools.iter_mut().find(|(p, _)| *p == entry.pool_handle) {
                // A pool split over two pages.
                Some((_, elements)) => elements.extend(entry.pool_elements),
                None => self.pools.push((entry.pool_handle, entry.pool_elements)),
            }
        }
        if !response.more_to_send {
            return Ok(Step::Done);
        }
        if self.pages >= PAGES_MAX {
            return Err(DumpError::TooManyPages);
        }
        //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.3
        //# If the M flag is set to '1' ... the initiating server MUST send another
        //# ENRP_HANDLE_TABLE_REQUEST message to the mentor peer
        Ok(Step::More(self.request()))
    }

    /// Every pool read, sorted by pool handle, each with its PEs sorted by id.
    pub fn into_pools(mut self) -> Vec<(PoolHandle, Vec<PoolElement>)> {
        self.pools.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (_, elements) in &mut self.pools {
            elements.sort_by_key(|e| e.id.0);
        }
        self.pools
    }

    fn request(&self) -> Vec<u8> {
        let receiver = self.registrar.unwrap_or(RegistrarId(0));
        let servers = Servers { sender: self.own, receiver };
        Message::HandleTableRequest(HandleTableRequest { own_children_only: false, servers })
            .emit_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use codec::enrp::{HandleTableResponse, PoolEntry, Presence};

    use super::*;
    use crate::testing::{pool, pool_element};

    const OWN: RegistrarId = RegistrarId(0x1234);
    const REGISTRAR: RegistrarId = RegistrarId(0xabcd);

    fn page(more: bool, pools: &[(&str, &[u32])]) -> Vec<u8> {
        let pools = pools
            .iter()
            .map(|(name, ids)| PoolEntry {
                pool_handle: pool(name),
                pool_elements: ids.iter().map(|&id| pool_element(id)).collect(),
            })
            .collect();
        let servers = Servers { sender: REGISTRAR, receiver: OWN };
        Message::HandleTableResponse(HandleTableResponse {
            more_to_send: more,
            reject: false,
            servers,
            pools,
        })
        .emit_to_vec()
    }

    fn request(receiver: u32) -> Vec<u8> {
        let servers = Servers { sender: OWN, receiver: RegistrarId(receiver) };
        Message::HandleTableRequest(HandleTableRequest { own_children_only: false, servers })
            .emit_to_vec()
    }

    //= https://www.rfc-editor.org/rfc/rfc5353#section-3.2.3
    //= type=test
    //# If the M flag is set to '1' ... the initiating server MUST send another
    //# ENRP_HANDLE_TABLE_REQUEST message to the mentor peer
    // Goal: the dump asks for the whole table (W flag clear) from its own id, asks again after
    // each page with M set (now addressed to the registrar), ignores a Presence, and merges a
    // pool split over two pages. Method: three pages, byte-compared requests.
    #[test]
    fn pages_until_m_is_clear() {
        let mut d = TableDump::new(OWN);
        assert_eq!(d.start(), request(0));
        assert_eq!(
            d.handle_data(&page(true, &[("b", &[2]), ("a", &[5])])),
            Ok(Step::More(request(0xabcd)))
        );
        let presence = Message::Presence(Presence {
            reply_required: true,
            servers: Servers { sender: REGISTRAR, receiver: OWN },
            checksum: None,
            server_information: None,
        });
        assert_eq!(d.handle_data(&presence.emit_to_vec()), Ok(Step::Ignored));
        assert_eq!(d.handle_data(&page(true, &[("a", &[1])])), Ok(Step::More(request(0xabcd))));
        assert_eq!(d.handle_data(&page(false, &[("c", &[3])])), Ok(Step::Done));
        assert_eq!((d.pages(), d.registrar()), (3, Some(REGISTRAR)));
        let pools: Vec<(String, Vec<u32>)> = d
            .into_pools()
            .into_iter()
            .map(|(p, e)| (p.to_string(), e.iter().map(|e| e.id.0).collect()))
            .collect();
        let want = [("a", vec![1, 5]), ("b", vec![2]), ("c", vec![3])];
        assert_eq!(pools, want.map(|(p, e)| (p.to_owned(), e)));
    }

    // Goal: a refusal (R flag), an ENRP error and bytes that are not ENRP are errors that say
    // which; an empty table is a table. Method: one message each.
    #[test]
    fn refusals_and_garbage_are_errors() {
        let servers = Servers { sender: REGISTRAR, receiver: OWN };
        let refusal = Message::HandleTableResponse(HandleTableResponse {
            more_to_send: false,
            reject: true,
            servers,
            pools: vec![],
        });
        assert_eq!(
            TableDump::new(OWN).handle_data(&refusal.emit_to_vec()),
            Err(DumpError::Refused)
        );
        assert!(DumpError::Refused.to_string().contains("not synchronised"));
        let error = Message::Error(codec::enrp::Error {
            servers,
            error: codec::param::OperationalError::single(codec::ErrorCause(0x0b)),
        });
        let got = TableDump::new(OWN).handle_data(&error.emit_to_vec());
        assert_eq!(got, Err(DumpError::Errored(codec::ErrorCause(0x0b))));
        let got = TableDump::new(OWN).handle_data(&[0x03, 0, 0, 9, 1]);
        assert!(matches!(got, Err(DumpError::Decode(_))), "{got:?}");
        let mut empty = TableDump::new(OWN);
        assert_eq!(empty.handle_data(&page(false, &[])), Ok(Step::Done));
        assert!(empty.into_pools().is_empty());
    }

    // Goal: a registrar that always says "more" is cut off at PAGES_MAX pages. Method: feed
    // PAGES_MAX pages with M set; the last is an error, the one before a request.
    #[test]
    fn endless_paging_is_bounded() {
        let mut d = TableDump::new(OWN);
        let more = page(true, &[]);
        for _ in 1..PAGES_MAX {
            assert!(matches!(d.handle_data(&more), Ok(Step::More(_))));
        }
        assert_eq!(d.handle_data(&more), Err(DumpError::TooManyPages));
    }
}
