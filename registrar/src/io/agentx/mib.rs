//! RFC 5525's RSERPOOL-MIB as a sorted list of instances, built from one management snapshot,
//! and the Get, GetNext and GetBulk lookups over it (RFC 2741 §7.2.3).
//!
//! Indexes (RFC 5525 §6 leaves their values to the agent): `rserpoolENRPIndex` is 1, this
//! registrar being the only ENRP server it describes; `rserpoolENRPPoolIndex` numbers the
//! pools from 1 in handle byte order; `rserpoolENRPPoolElementIndex` numbers a pool's PEs
//! from 1 in PE id order; `rserpoolENRPPeerIndex` numbers the peers from 1 in identifier
//! order; address indexes number a row's addresses from 1 in the order the row lists them.
//! Positions, not identities: a pool registered before another shifts the latter's index at
//! the next snapshot, as in any MIB whose indexes the agent assigns (the PE id is its column,
//! not its index, because RFC 5525 gives the index a range that starts at 1 and PE id 0 is
//! legal).

use std::net::IpAddr;

use super::pdu::{Oid, SearchRange, Value, VarBind, RANGES_MAX};
use crate::io::management::{EnrpServerEntry, PeerEntry, PoolElementEntry, PoolEntry};

/// `rserpoolMIB`: `experimental 125` (RFC 5525 §6, `::= { experimental 125 }`), i.e.
/// 1.3.6.1.3.125.
pub const RSERPOOL_MIB: [u32; 6] = [1, 3, 6, 1, 3, 125];
/// `rserpoolMIBObjects` (`rserpoolMIB 1`): the subtree the subagent registers.
pub const RSERPOOL_MIB_OBJECTS: [u32; 7] = [1, 3, 6, 1, 3, 125, 1];
/// `rserpoolENRPServers` (`rserpoolMIBObjects 1`).
const ENRP_SERVERS: [u32; 8] = [1, 3, 6, 1, 3, 125, 1, 1];

/// The tables under `rserpoolENRPServers`, by their sub-identifier.
mod table {
    /// `rserpoolENRPTable`.
    pub(super) const ENRP: u32 = 1;
    /// `rserpoolENRPPoolTable`.
    pub(super) const POOL: u32 = 3;
    /// `rserpoolENRPPoolElementTable`.
    pub(super) const POOL_ELEMENT: u32 = 4;
    /// `rserpoolENRPASAPAddrTable`.
    pub(super) const ASAP_ADDR: u32 = 5;
    /// `rserpoolENRPUserAddrTable`.
    pub(super) const USER_ADDR: u32 = 6;
    /// `rserpoolENRPENRPAddrTable`.
    pub(super) const ENRP_ADDR: u32 = 7;
    /// `rserpoolENRPPeerTable`.
    pub(super) const PEER: u32 = 8;
    /// `rserpoolENRPPeerAddrTable`.
    pub(super) const PEER_ADDR: u32 = 9;
}

/// The readable columns of each served table (column 1 is the not-accessible index), so that
/// a Get of a column without that instance says noSuchInstance rather than noSuchObject.
const COLUMNS: &[(u32, u32)] = &[
    (table::ENRP, 12),
    (table::POOL, 2),
    (table::POOL_ELEMENT, 13),
    (table::ASAP_ADDR, 3),
    (table::USER_ADDR, 4),
    (table::ENRP_ADDR, 3),
    (table::PEER, 4),
    (table::PEER_ADDR, 3),
];

/// What one snapshot says, merged over the cores.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// The local row of `rserpoolENRPTable`.
    pub server: Option<EnrpServerEntry>,
    /// The addresses of our ENRP transport endpoint (`rserpoolENRPENRPAddrTable`); none with
    /// ENRP off.
    pub enrp_addresses: Vec<IpAddr>,
    /// Every pool, any order.
    pub pools: Vec<PoolEntry>,
    /// Every PE, any order; `pool_url` names its pool (as [`PoolEntry::handle_url`]).
    pub elements: Vec<PoolElementEntry>,
    /// The ENRP peers.
    pub peers: Vec<PeerEntry>,
}

/// The MIB's instances at one snapshot, sorted by name.
#[derive(Debug, Default)]
pub struct Mib {
    objects: Vec<VarBind>,
}

/// TimeTicks from milliseconds, saturating at the type's maximum (497 days).
fn ticks(ms: u64) -> Value {
    Value::TimeTicks(u32::try_from(ms / 10).unwrap_or(u32::MAX))
}

/// `InetAddressType` and `InetAddress` (RFC 4001): ipv4(1) with 4 bytes, ipv6(2) with 16.
fn inet(ip: IpAddr) -> (Value, Value) {
    match ip {
        IpAddr::V4(v4) => (Value::Integer(1), Value::OctetString(v4.octets().to_vec())),
        IpAddr::V6(v6) => (Value::Integer(2), Value::OctetString(v6.octets().to_vec())),
    }
}

fn index(n: usize) -> u32 {
    // Rows are cut at the management model's caps (10 000 a core), far below u32::MAX.
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

impl Mib {
    /// Builds the instances from `data`.
    pub fn build(data: &Data) -> Self {
        let mut objects = Vec::new();
        let mut put = |table: u32, column: u32, idx: &[u32], value: Value| {
            let mut name = ENRP_SERVERS.to_vec();
            name.extend_from_slice(&[table, 1, column]);
            name.extend_from_slice(idx);
            objects.push(VarBind { name: Oid(name), value });
        };
        const ME: u32 = 1;
        if let Some(s) = &data.server {
            let t = table::ENRP;
            put(t, 2, &[ME], Value::OctetString(Vec::new()));
            put(t, 3, &[ME], Value::Gauge32(s.identifier));
            put(t, 4, &[ME], Value::OctetString(b"rserpool registrar".to_vec()));
            put(t, 5, &[ME], ticks(s.uptime_ms));
            put(t, 6, &[ME], Value::Gauge32(s.enrp_port.map_or(0, u32::from)));
            if let Some(a) = s.asap_announce {
                let (ty, addr) = inet(a.ip());
                put(t, 7, &[ME], Value::Gauge32(u32::from(a.port())));
                put(t, 8, &[ME], ty);
                put(t, 9, &[ME], addr);
            }
            if let Some(a) = s.enrp_announce {
                let (ty, addr) = inet(a.ip());
                put(t, 10, &[ME], Value::Gauge32(u32::from(a.port())));
                put(t, 11, &[ME], ty);
                put(t, 12, &[ME], addr);
            }
        }
        for (i, ip) in data.enrp_addresses.iter().enumerate() {
            let (ty, addr) = inet(*ip);
            put(table::ENRP_ADDR, 2, &[ME, index(i)], ty);
            put(table::ENRP_ADDR, 3, &[ME, index(i)], addr);
        }
        // Pools in handle byte order (the hex of the bytes sorts as the bytes do).
        let mut pools: Vec<&PoolEntry> = data.pools.iter().collect();
        pools.sort_by(|a, b| a.handle_hex.cmp(&b.handle_hex));
        let mut by_pool: hashbrown::HashMap<&str, Vec<&PoolElementEntry>> = Default::default();
        for e in &data.elements {
            by_pool.entry(e.pool_url.as_str()).or_default().push(e);
        }
        for (p, pool) in pools.iter().enumerate() {
            let pi = index(p);
            let handle = hex_bytes(&pool.handle_hex);
            put(table::POOL, 2, &[ME, pi], Value::OctetString(handle));
            let mut members = by_pool.remove(pool.handle_url.as_str()).unwrap_or_default();
            members.sort_by_key(|e| e.id);
            for (e, pe) in members.iter().enumerate() {
                let ei = index(e);
                let row = [ME, pi, ei];
                let t = table::POOL_ELEMENT;
                put(t, 2, &row, Value::Gauge32(pe.id));
                put(t, 3, &row, Value::Gauge32(pe.asap_transport_port.map_or(0, u32::from)));
                put(t, 4, &row, Value::Gauge32(u32::from(pe.user_transport_proto)));
                put(t, 5, &row, Value::Gauge32(u32::from(pe.user_transport_port)));
                put(t, 6, &row, Value::Integer(i32::from(pe.user_transport_use)));
                put(t, 7, &row, Value::Gauge32(pe.policy_id));
                let descr = pe.policy_description.as_bytes();
                put(t, 8, &row, Value::OctetString(descr[..descr.len().min(255)].to_vec()));
                put(t, 9, &row, Value::Gauge32(pe.policy_weight));
                put(t, 10, &row, Value::Gauge32(pe.policy_load));
                put(t, 11, &row, Value::Gauge32(pe.policy_load_deg));
                put(t, 12, &row, ticks(u64::from(pe.registration_life_ms)));
                put(t, 13, &row, Value::Gauge32(pe.home_enrp_server));
                for (a, ip) in pe.asap_addresses.iter().enumerate() {
                    let (ty, addr) = inet(*ip);
                    let idx = [ME, pi, ei, index(a)];
                    put(table::ASAP_ADDR, 2, &idx, ty);
                    put(table::ASAP_ADDR, 3, &idx, addr);
                }
                for (a, ip) in pe.user_addresses.iter().enumerate() {
                    let (ty, addr) = inet(*ip);
                    let idx = [ME, pi, ei, index(a)];
                    put(table::USER_ADDR, 2, &idx, ty);
                    put(table::USER_ADDR, 3, &idx, addr);
                    put(table::USER_ADDR, 4, &idx, Value::OctetString(Vec::new()));
                }
            }
        }
        let mut peers: Vec<&PeerEntry> = data.peers.iter().collect();
        peers.sort_by_key(|p| p.identifier);
        for (i, peer) in peers.iter().enumerate() {
            let pi = index(i);
            put(table::PEER, 2, &[pi], Value::Gauge32(peer.identifier));
            put(table::PEER, 3, &[pi], Value::Gauge32(peer.port.map_or(0, u32::from)));
            put(table::PEER, 4, &[pi], ticks(peer.last_heard_ms));
            if let Some(ip) = peer.address {
                let (ty, addr) = inet(ip);
                put(table::PEER_ADDR, 2, &[pi, 1], ty);
                put(table::PEER_ADDR, 3, &[pi, 1], addr);
            }
        }
        objects.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Self { objects }
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Get (§7.2.3.1): the instance named `oid`, noSuchInstance for a served column without
    /// that row, noSuchObject for anything else.
    pub fn get(&self, oid: &Oid) -> VarBind {
        if let Ok(i) = self.objects.binary_search_by(|o| o.name.cmp(oid)) {
            return self.objects[i].clone();
        }
        let value = if is_column(oid) { Value::NoSuchInstance } else { Value::NoSuchObject };
        VarBind { name: oid.clone(), value }
    }

    /// GetNext (§7.2.3.2): the first instance in `range`, or endOfMibView named after its
    /// start.
    pub fn next(&self, range: &SearchRange) -> VarBind {
        let from = self.objects.partition_point(|o| {
            if range.include {
                o.name < range.start
            } else {
                o.name <= range.start
            }
        });
        match self.objects.get(from) {
            Some(o) if range.end.0.is_empty() || o.name < range.end => o.clone(),
            _ => VarBind { name: range.start.clone(), value: Value::EndOfMibView },
        }
    }

    /// GetBulk (§7.2.3.3): the first `non_repeaters` ranges once, then up to
    /// `max_repetitions` rounds of the others, each round going on from the last; a round
    /// in which every repeater has reached endOfMibView ends it. At most [`RANGES_MAX`]
    /// varbinds in all, so one request bounds its answer.
    pub fn bulk(
        &self,
        non_repeaters: u16,
        max_repetitions: u16,
        ranges: &[SearchRange],
    ) -> Vec<VarBind> {
        let split = usize::from(non_repeaters).min(ranges.len());
        let (single, repeated) = ranges.split_at(split);
        let mut out: Vec<VarBind> = single.iter().map(|r| self.next(r)).collect();
        let mut cursors: Vec<SearchRange> = repeated.to_vec();
        for _ in 0..max_repetitions {
            if cursors.is_empty() || out.len() + cursors.len() > RANGES_MAX {
                break;
            }
            let mut all_ended = true;
            for cursor in &mut cursors {
                let vb = self.next(cursor);
                if vb.value != Value::EndOfMibView {
                    all_ended = false;
                    cursor.start = vb.name.clone();
                    cursor.include = false;
                }
                out.push(vb);
            }
            if all_ended {
                break;
            }
        }
        out
    }
}

/// Whether `oid` names an instance of a served column (`...Entry.column.index...`).
fn is_column(oid: &Oid) -> bool {
    let Some(rest) = oid.0.strip_prefix(&ENRP_SERVERS[..]) else { return false };
    match rest {
        [t, 1, column, _, ..] => {
            COLUMNS.iter().any(|&(table, last)| table == *t && (2..=last).contains(column))
        }
        _ => false,
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let digits = hex.as_bytes();
    let nibble = |c: u8| char::from(c).to_digit(16).map_or(0, |d| d as u8);
    digits.chunks_exact(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])).collect()
}
