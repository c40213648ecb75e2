//! What `rserpool` prints: a resolution as a table or JSON, and the names of ids, policies
//! and transports. Pure functions of their input, so they are tested without a network.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use codec::param::{Policy, UserTransport};
use codec::{PoolElement, PoolHandle, TransportUse};
use serde_json::{json, Value};

/// A PE or registrar identifier as the tools print it: `0x0000002a`.
pub(crate) fn id_hex(id: u32) -> String {
    format!("0x{id:08x}")
}

/// A resolution as a table, one PE a line, under a header; columns padded to their widest cell.
pub(crate) fn table(elements: &[PoolElement]) -> String {
    let header = ["ID", "TRANSPORT", "ADDRESS", "POLICY", "HOME"].map(str::to_owned);
    let rows: Vec<[String; 5]> = elements.iter().map(row).collect();
    aligned(&header, &rows)
}

/// A whole handlespace as a table: one PE a line, its pool first, under a header.
pub(crate) fn dump_table(pools: &[(PoolHandle, Vec<PoolElement>)]) -> String {
    let header = ["POOL", "ID", "TRANSPORT", "ADDRESS", "POLICY", "HOME"].map(str::to_owned);
    let rows: Vec<[String; 6]> = pools
        .iter()
        .flat_map(|(pool, elements)| {
            elements.iter().map(move |e| {
                let [id, transport, address, policy, home] = row(e);
                [pool.to_string(), id, transport, address, policy, home]
            })
        })
        .collect();
    aligned(&header, &rows)
}

/// A whole handlespace as one JSON document: the registrar asked, its id, and every pool.
pub(crate) fn dump_json(
    registrar: SocketAddr,
    registrar_id: Option<u32>,
    pools: &[(PoolHandle, Vec<PoolElement>)],
) -> Value {
    let pools: Vec<Value> = pools
        .iter()
        .map(|(pool, elements)| {
            json!({
                "pool": pool.to_string(),
                "pool_elements": elements.iter().map(element_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "registrar": registrar.to_string(),
        "registrar_id": registrar_id.map(id_hex),
        "pools": pools,
    })
}

fn row(e: &PoolElement) -> [String; 5] {
    [
        id_hex(e.id.0),
        transport_name(&e.user_transport),
        endpoints(&e.user_transport),
        policy_text(&e.policy),
        id_hex(e.home_registrar.0),
    ]
}

/// Rows under a header, each column padded to its widest cell, the last one not padded.
pub(crate) fn aligned<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                // Writing to a String cannot fail.
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A resolution as one JSON document: the pool, the registrar that answered, and the PEs.
pub(crate) fn json(
    pool: &PoolHandle,
    registrar: Option<SocketAddr>,
    elements: &[PoolElement],
) -> Value {
    json!({
        "pool": pool.to_string(),
        "registrar": registrar.map(|r| r.to_string()),
        "pool_elements": elements.iter().map(element_json).collect::<Vec<_>>(),
    })
}

/// The transport's protocol: `tcp`, `udp`, `udplite`, `sctp`, `dccp` or `opaque`.
pub(crate) fn transport_name(transport: &UserTransport) -> String {
    match transport {
        UserTransport::Dccp { .. } => "dccp",
        UserTransport::Opaque(_) => "opaque",
        UserTransport::Sctp(_) => "sctp",
        UserTransport::Tcp { .. } => "tcp",
        UserTransport::Udp { .. } => "udp",
        UserTransport::UdpLite { .. } => "udplite",
    }
    .to_owned()
}

/// Where the transport is reached: `127.0.0.1:7`, several SCTP addresses comma-separated,
/// `[::1]:7` for IPv6, or the length of opaque data.
pub(crate) fn endpoints(transport: &UserTransport) -> String {
    let join = |port: u16, addresses: &[IpAddr]| {
        let all: Vec<String> =
            addresses.iter().map(|a| SocketAddr::new(*a, port).to_string()).collect();
        all.join(",")
    };
    match transport {
        UserTransport::Dccp { port, address, .. }
        | UserTransport::Tcp { port, address, .. }
        | UserTransport::Udp { port, address }
        | UserTransport::UdpLite { port, address } => SocketAddr::new(*address, *port).to_string(),
        UserTransport::Sctp(sctp) => join(sctp.port, sctp.addresses.as_slice()),
        UserTransport::Opaque(bytes) => format!("({} bytes)", bytes.len()),
    }
}

/// The policy's short name: `rr`, `wrand`, `lu`, ..., or its type in hex when unknown.
pub(crate) fn policy_name(policy: &Policy) -> String {
    let name = match policy {
        Policy::RoundRobin => "rr",
        Policy::WeightedRoundRobin { .. } => "wrr",
        Policy::Random => "random",
        Policy::WeightedRandom { .. } => "wrand",
        Policy::Priority { .. } => "priority",
        Policy::LeastUsed { .. } => "lu",
        Policy::LeastUsedDegradation { .. } => "lud",
        Policy::PriorityLeastUsed { .. } => "plu",
        Policy::RandomizedLeastUsed { .. } => "rlu",
        Policy::RandomizedPriorityLeastUsed { .. } => "rplu",
        Policy::RandomizedLeastUsedDegradation { .. } => "rlud",
        Policy::PriorityLeastUsedDegradation { .. } => "plud",
        Policy::RandomizedPriorityLeastUsedDegradation { .. } => "rplud",
        Policy::WeightedRandomDpf { .. } => "wrand-dpf",
        Policy::LeastUsedDpf { .. } => "lu-dpf",
        Policy::LeastUsedDegradationDpf { .. } => "lud-dpf",
        Policy::Unknown { policy_type, .. } => return id_hex(policy_type.0),
    };
    name.to_owned()
}

/// The policy's values by name, in wire order.
pub(crate) fn policy_values(policy: &Policy) -> Vec<(&'static str, u32)> {
    match *policy {
        Policy::RoundRobin | Policy::Random | Policy::Unknown { .. } => vec![],
        Policy::WeightedRoundRobin { weight } | Policy::WeightedRandom { weight } => {
            vec![("weight", weight)]
        }
        Policy::Priority { priority } => vec![("priority", priority)],
        Policy::LeastUsed { load }
        | Policy::RandomizedLeastUsed { load }
        | Policy::RandomizedPriorityLeastUsed { load } => vec![("load", load)],
        Policy::LeastUsedDegradation { load, load_degradation }
        | Policy::PriorityLeastUsed { load, load_degradation }
        | Policy::RandomizedLeastUsedDegradation { load, load_degradation }
        | Policy::PriorityLeastUsedDegradation { load, load_degradation }
        | Policy::RandomizedPriorityLeastUsedDegradation { load, load_degradation } => {
            vec![("load", load), ("load_degradation", load_degradation)]
        }
        Policy::WeightedRandomDpf { weight, weight_dpf, distance } => {
            vec![("weight", weight), ("weight_dpf", weight_dpf), ("distance", distance)]
        }
        Policy::LeastUsedDpf { load, load_dpf, distance } => {
            vec![("load", load), ("load_dpf", load_dpf), ("distance", distance)]
        }
        Policy::LeastUsedDegradationDpf { load, load_degradation, load_dpf, distance } => vec![
            ("load", load),
            ("load_degradation", load_degradation),
            ("load_dpf", load_dpf),
            ("distance", distance),
        ],
    }
}

/// The policy for the table: its name, then `name=value` for each value.
pub(crate) fn policy_text(policy: &Policy) -> String {
    let mut out = policy_name(policy);
    for (name, value) in policy_values(policy) {
        // Writing to a String cannot fail.
        let _ = write!(out, " {name}={value}");
    }
    out
}

/// One PE as JSON, as `resolve --json` lists it.
pub(crate) fn element_json(e: &PoolElement) -> Value {
    let mut policy = serde_json::Map::new();
    policy.insert("name".to_owned(), Value::from(policy_name(&e.policy)));
    for (name, value) in policy_values(&e.policy) {
        policy.insert(name.to_owned(), Value::from(value));
    }
    let t = &e.user_transport;
    let (port, addresses, transport_use): (Option<u16>, Vec<IpAddr>, Option<TransportUse>) = match t
    {
        UserTransport::Dccp { port, address, .. }
        | UserTransport::Udp { port, address }
        | UserTransport::UdpLite { port, address } => (Some(*port), vec![*address], None),
        UserTransport::Tcp { port, address, transport_use } => {
            (Some(*port), vec![*address], Some(*transport_use))
        }
        UserTransport::Sctp(s) => {
            (Some(s.port), s.addresses.as_slice().to_vec(), Some(s.transport_use))
        }
        UserTransport::Opaque(_) => (None, vec![], None),
    };
    json!({
        "id": id_hex(e.id.0),
        "transport": transport_name(t),
        "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "port": port,
        "transport_use": transport_use.map(transport_use_name),
        "policy": Value::Object(policy),
        "home_registrar": id_hex(e.home_registrar.0),
        "registration_life_ms": e.registration_life_ms,
    })
}

fn transport_use_name(transport_use: TransportUse) -> String {
    match transport_use {
        TransportUse::DATA_ONLY => "data".to_owned(),
        TransportUse::DATA_PLUS_CONTROL => "data+control".to_owned(),
        TransportUse(other) => format!("0x{other:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use codec::param::{AddressList, SctpTransport};
    use codec::{PolicyType, PoolElementId, RegistrarId};

    use super::*;

    fn element(id: u32, user_transport: UserTransport, policy: Policy) -> PoolElement {
        PoolElement {
            id: PoolElementId(id),
            home_registrar: RegistrarId(0xdead_beef),
            registration_life_ms: 90_000,
            user_transport,
            policy,
            asap_transport: None,
        }
    }

    fn tcp(port: u16) -> UserTransport {
        let address = "127.0.0.1".parse().unwrap();
        UserTransport::Tcp { port, transport_use: TransportUse::DATA_ONLY, address }
    }

    fn sample() -> Vec<PoolElement> {
        let sctp = UserTransport::Sctp(SctpTransport {
            port: 7,
            transport_use: TransportUse::DATA_PLUS_CONTROL,
            addresses: AddressList::from_slice(&[
                "10.0.0.1".parse().unwrap(),
                "::1".parse().unwrap(),
            ])
            .unwrap(),
        });
        vec![
            element(0x2a, tcp(7000), Policy::RoundRobin),
            element(
                0xffff_ffff,
                sctp,
                Policy::LeastUsedDegradation { load: 5, load_degradation: 6 },
            ),
        ]
    }

    // Goal: the table has a header, one aligned row per PE, hex ids and named policy values.
    // Method: compare the whole text for two unlike PEs.
    #[test]
    fn table_lists_each_pe() {
        let want = "\
ID          TRANSPORT  ADDRESS             POLICY                         HOME
0x0000002a  tcp        127.0.0.1:7000      rr                             0xdeadbeef
0xffffffff  sctp       10.0.0.1:7,[::1]:7  lud load=5 load_degradation=6  0xdeadbeef
";
        assert_eq!(table(&sample()), want);
    }

    // Goal: a dump lists each PE under its pool, aligned, and as JSON by pool.
    // Method: two pools, compare the text and two fields of the document.
    #[test]
    fn dump_lists_pools_and_pes() {
        let pools = vec![
            (PoolHandle::new(b"a").unwrap(), sample()),
            (PoolHandle::new(b"echo").unwrap(), vec![element(7, tcp(7), Policy::Random)]),
        ];
        let want = "\
POOL  ID          TRANSPORT  ADDRESS             POLICY                         HOME
a     0x0000002a  tcp        127.0.0.1:7000      rr                             0xdeadbeef
a     0xffffffff  sctp       10.0.0.1:7,[::1]:7  lud load=5 load_degradation=6  0xdeadbeef
echo  0x00000007  tcp        127.0.0.1:7         random                         0xdeadbeef
";
        assert_eq!(dump_table(&pools), want);
        let doc = dump_json("127.0.0.1:9901".parse().unwrap(), Some(0xab), &pools);
        assert_eq!(doc["registrar_id"], "0x000000ab");
        assert_eq!(doc["pools"][1]["pool_elements"][0]["id"], "0x00000007");
    }

    // Goal: an empty resolution still prints the header, so scripts see the columns.
    #[test]
    fn table_of_nothing_is_the_header() {
        assert_eq!(table(&[]), "ID  TRANSPORT  ADDRESS  POLICY  HOME\n");
    }

    // Goal: the JSON names every field the table shows, with numbers as numbers.
    // Method: compare against a literal document.
    #[test]
    fn json_lists_each_pe() {
        let pool = PoolHandle::new(b"echo").unwrap();
        let registrar = Some("127.0.0.1:3863".parse().unwrap());
        let got = json(&pool, registrar, &sample());
        let want = json!({
            "pool": "echo",
            "registrar": "127.0.0.1:3863",
            "pool_elements": [
                {
                    "id": "0x0000002a", "transport": "tcp", "addresses": ["127.0.0.1"],
                    "port": 7000, "transport_use": "data", "policy": {"name": "rr"},
                    "home_registrar": "0xdeadbeef", "registration_life_ms": 90_000,
                },
                {
                    "id": "0xffffffff", "transport": "sctp", "addresses": ["10.0.0.1", "::1"],
                    "port": 7, "transport_use": "data+control",
                    "policy": {"name": "lud", "load": 5, "load_degradation": 6},
                    "home_registrar": "0xdeadbeef", "registration_life_ms": 90_000,
                },
            ],
        });
        assert_eq!(got, want);
    }

    // Goal: odd transports and policies print something readable, never panic.
    #[test]
    fn odd_transports_and_policies() {
        let opaque = UserTransport::Opaque(vec![1, 2, 3]);
        assert_eq!(endpoints(&opaque), "(3 bytes)");
        assert_eq!(transport_name(&opaque), "opaque");
        let udp = UserTransport::Udp { port: 9, address: "::1".parse().unwrap() };
        assert_eq!(endpoints(&udp), "[::1]:9");
        let unknown = Policy::Unknown { policy_type: PolicyType(0x1234_5678), value: vec![0; 4] };
        assert_eq!(policy_text(&unknown), "0x12345678");
        let dpf = Policy::LeastUsedDegradationDpf {
            load: 1,
            load_degradation: 2,
            load_dpf: 3,
            distance: 4,
        };
        assert_eq!(policy_text(&dpf), "lud-dpf load=1 load_degradation=2 load_dpf=3 distance=4");
        let pool = PoolHandle::new(b"p").unwrap();
        let doc = json(&pool, None, &[element(1, opaque, unknown)]);
        assert_eq!(doc["registrar"], Value::Null);
        assert_eq!(doc["pool_elements"][0]["port"], Value::Null);
        assert_eq!(doc["pool_elements"][0]["policy"]["name"], "0x12345678");
    }
}
