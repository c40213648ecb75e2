//! Wire referee: Wireshark's ASAP and ENRP dissectors judge what we emit. Goal: one message of
//! every type, with every parameter type, every error cause and every policy at least once,
//! dissects with zero malformed frames and zero expert infos. Method: write them into a pcap
//! (Ethernet/IPv4/UDP to port 3863 for ASAP, 9901 for ENRP, which is where the dissectors
//! listen), then run tshark. Skips, visibly, only where tshark is not installed.

use std::net::IpAddr;
use std::process::Command;

use codec::asap;
use codec::enrp::{self, Servers, UpdateAction};
use codec::param::{
    AddressList, Cause, CauseInfo, OperationalError, PeChecksum, ServerInformation,
};
use codec::{
    ErrorCause, Policy, PolicyType, PoolElement, PoolElementId, PoolHandle, RegistrarId,
    SctpTransport, TransportUse, UserTransport,
};

const ASAP_PORT: u16 = 3863;
const ENRP_PORT: u16 = 9901;

fn address(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sctp(port: u16) -> SctpTransport {
    SctpTransport {
        port,
        transport_use: TransportUse::DATA_PLUS_CONTROL,
        addresses: AddressList::from_slice(&[address("192.0.2.1"), address("2001:db8::1")])
            .unwrap(),
    }
}

fn every_policy() -> Vec<Policy> {
    vec![
        Policy::RoundRobin,
        Policy::WeightedRoundRobin { weight: 3 },
        Policy::Random,
        Policy::WeightedRandom { weight: 4 },
        Policy::Priority { priority: 5 },
        Policy::LeastUsed { load: 0x4000_0000 },
        Policy::LeastUsedDegradation { load: 0x4000_0000, load_degradation: 0x0100_0000 },
        Policy::PriorityLeastUsed { load: 0x4000_0000, load_degradation: 0x0100_0000 },
        Policy::RandomizedLeastUsed { load: 0x4000_0000 },
        Policy::RandomizedPriorityLeastUsed { load: 0x4000_0000 },
        Policy::RandomizedLeastUsedDegradation { load: 1, load_degradation: 2 },
        Policy::PriorityLeastUsedDegradation { load: 1, load_degradation: 2 },
        Policy::RandomizedPriorityLeastUsedDegradation { load: 1, load_degradation: 2 },
        Policy::WeightedRandomDpf { weight: 1, weight_dpf: 2, distance: 3 },
        Policy::LeastUsedDpf { load: 1, load_dpf: 2, distance: 3 },
        Policy::LeastUsedDegradationDpf { load: 1, load_degradation: 2, load_dpf: 3, distance: 4 },
        Policy::Unknown { policy_type: PolicyType(0xc000_0001), value: vec![1, 2, 3, 4] },
    ]
}

fn every_transport() -> Vec<UserTransport> {
    vec![
        UserTransport::Sctp(sctp(8080)),
        UserTransport::Dccp { port: 8081, service_code: 42, address: address("192.0.2.2") },
        UserTransport::Tcp {
            port: 8082,
            transport_use: TransportUse::DATA_ONLY,
            address: address("2001:db8::2"),
        },
        UserTransport::Udp { port: 8083, address: address("192.0.2.3") },
        UserTransport::UdpLite { port: 8084, address: address("192.0.2.4") },
        UserTransport::Opaque(b"opaque".to_vec()),
    ]
}

/// One PE per policy, cycling through the transports, every other one with an ASAP transport.
fn pool_elements() -> Vec<PoolElement> {
    let transports = every_transport();
    every_policy()
        .into_iter()
        .enumerate()
        .map(|(i, policy)| PoolElement {
            id: PoolElementId(0x1000 + i as u32),
            home_registrar: RegistrarId(0x0a0b_0c0d),
            registration_life_ms: 30_000,
            user_transport: transports[i % transports.len()].clone(),
            policy,
            asap_transport: (i % 2 == 0).then(|| sctp(3863)),
        })
        .collect()
}

fn every_cause(unrecognized_message: Vec<u8>) -> OperationalError {
    let c = |code, info| Cause { code, info };
    OperationalError {
        causes: vec![
            c(ErrorCause::UNSPECIFIED, CauseInfo::None),
            c(
                ErrorCause::UNRECOGNIZED_PARAMETER,
                CauseInfo::Parameter(vec![0xc1, 0x23, 0, 8, 0xde, 0xad, 0xbe, 0xef]),
            ),
            c(ErrorCause::UNRECOGNIZED_MESSAGE, CauseInfo::Message(unrecognized_message)),
            c(ErrorCause::INVALID_VALUES, CauseInfo::Parameter(vec![0, 0x0e, 0, 8, 1, 2, 3, 4])),
            c(ErrorCause::NON_UNIQUE_PE_IDENTIFIER, CauseInfo::None),
            c(ErrorCause::INCONSISTENT_POOLING_POLICY, CauseInfo::Policy(Policy::RoundRobin)),
            c(ErrorCause::LACK_OF_RESOURCES, CauseInfo::None),
            c(
                ErrorCause::INCONSISTENT_TRANSPORT_TYPE,
                CauseInfo::Transport(UserTransport::Sctp(sctp(1))),
            ),
            c(ErrorCause::INCONSISTENT_DATA_CONTROL_CONFIGURATION, CauseInfo::None),
            c(ErrorCause::UNKNOWN_POOL_HANDLE, CauseInfo::None),
            c(ErrorCause::REJECTED_SECURITY, CauseInfo::None),
            c(ErrorCause(0x0123), CauseInfo::Opaque(vec![9, 9, 9])),
        ],
    }
}

fn asap_messages() -> Vec<asap::Message> {
    use asap::Message as M;
    let ph = PoolHandle::new(b"EchoPool").unwrap();
    let odd = PoolHandle::new(b"OddPool").unwrap();
    let id = PoolElementId(0x0102_0304);
    let pes = pool_elements();
    let cookie = asap::Message::Cookie(asap::Cookie { cookie: b"abc".to_vec() }).emit_to_vec();
    vec![
        M::Registration(asap::Registration { pool_handle: ph, pool_element: pes[0].clone() }),
        M::Deregistration(asap::Deregistration { pool_handle: odd, pe_id: id }),
        M::RegistrationResponse(asap::RegistrationResponse {
            reject: true,
            pool_handle: ph,
            pe_id: id,
            // RFC 5354 §3.12.6: this cause carries the pool's policy; Wireshark 4.0 flags a
            // frame without it as malformed, rightly.
            error: Some(OperationalError {
                causes: vec![Cause {
                    code: ErrorCause::INCONSISTENT_POOLING_POLICY,
                    info: CauseInfo::Policy(Policy::Priority { priority: 1 }),
                }],
            }),
        }),
        M::DeregistrationResponse(asap::DeregistrationResponse {
            pool_handle: ph,
            pe_id: id,
            error: None,
        }),
        M::HandleResolution(asap::HandleResolution {
            subscribe: true,
            pool_handle: ph,
            items_wanted: Some(3),
        }),
        M::HandleResolutionResponse(asap::HandleResolutionResponse {
            accept_updates: true,
            pool_handle: ph,
            overall_policy: Some(Policy::RoundRobin),
            pool_elements: pes.clone(),
            error: None,
        }),
        M::EndpointKeepAlive(asap::EndpointKeepAlive {
            home: true,
            server_id: RegistrarId(0x0a0b_0c0d),
            pool_handle: ph,
            pe_id: Some(id),
        }),
        M::EndpointKeepAliveAck(asap::EndpointKeepAliveAck { pool_handle: ph, pe_id: id }),
        M::EndpointUnreachable(asap::EndpointUnreachable { pool_handle: ph, pe_id: id }),
        M::ServerAnnounce(asap::ServerAnnounce {
            server_id: RegistrarId(0x0a0b_0c0d),
            transports: vec![UserTransport::Sctp(sctp(3863)), every_transport()[2].clone()],
        }),
        M::Cookie(asap::Cookie { cookie: b"abc".to_vec() }),
        M::CookieEcho(asap::CookieEcho { cookie: b"abcdef".to_vec() }),
        M::BusinessCard(asap::BusinessCard { pool_handle: ph, pool_elements: pes[1..4].to_vec() }),
        M::Error(asap::Error { error: every_cause(cookie) }),
    ]
}

fn enrp_messages() -> Vec<enrp::Message> {
    use enrp::Message as M;
    let ph = PoolHandle::new(b"EchoPool").unwrap();
    let servers = Servers { sender: RegistrarId(0x0a0b_0c0d), receiver: RegistrarId(0x0101_0101) };
    let info = ServerInformation { server_id: RegistrarId(0x0a0b_0c0d), transport: sctp(9901) };
    let pes = pool_elements();
    let list_request = M::ListRequest(enrp::ListRequest { servers }).emit_to_vec();
    let target = RegistrarId(0x0202_0202);
    vec![
        M::Presence(enrp::Presence {
            reply_required: true,
            servers,
            checksum: Some(PeChecksum(0xabcd)),
            server_information: Some(info),
        }),
        M::HandleTableRequest(enrp::HandleTableRequest { own_children_only: true, servers }),
        M::HandleTableResponse(enrp::HandleTableResponse {
            more_to_send: true,
            reject: false,
            servers,
            pools: vec![
                enrp::PoolEntry { pool_handle: ph, pool_elements: pes[..2].to_vec() },
                enrp::PoolEntry {
                    pool_handle: PoolHandle::new(b"Other").unwrap(),
                    pool_elements: pes[2..5].to_vec(),
                },
            ],
        }),
        M::HandleUpdate(enrp::HandleUpdate {
            takeover_suggested: true,
            servers,
            action: UpdateAction::ADD_PE,
            pool_handle: ph,
            pool_element: pes[0].clone(),
        }),
        M::ListRequest(enrp::ListRequest { servers }),
        M::ListResponse(enrp::ListResponse { reject: false, servers, peers: vec![info, info] }),
        M::InitTakeover(enrp::InitTakeover { servers, target }),
        M::InitTakeoverAck(enrp::InitTakeoverAck { servers, target }),
        M::TakeoverServer(enrp::TakeoverServer { servers, target }),
        M::Error(enrp::Error { servers, error: every_cause(list_request) }),
    ]
}

/// A minimal pcap writer: classic format, Ethernet link type, one UDP/IPv4 datagram a frame.
struct Pcap(Vec<u8>);

impl Pcap {
    fn new() -> Self {
        let mut b = Vec::new();
        b.extend(0xa1b2_c3d4u32.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend(4u16.to_le_bytes());
        b.extend([0; 8]); // thiszone, sigfigs
        b.extend(65_535u32.to_le_bytes());
        b.extend(1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        Self(b)
    }

    fn udp(&mut self, second: u32, port: u16, payload: &[u8]) {
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let mut f = Vec::new();
        f.extend([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend(u16::try_from(ip_len).unwrap().to_be_bytes());
        ip.extend([0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 10, 192, 0, 2, 20]);
        let sum = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(
            &(!u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap()).to_be_bytes(),
        );
        f.extend(ip);
        f.extend(40_000u16.to_be_bytes());
        f.extend(port.to_be_bytes());
        f.extend(u16::try_from(udp_len).unwrap().to_be_bytes());
        f.extend([0, 0]); // no UDP checksum (allowed over IPv4)
        f.extend(payload);
        self.0.extend(second.to_le_bytes());
        self.0.extend(0u32.to_le_bytes());
        self.0.extend(u32::try_from(f.len()).unwrap().to_le_bytes());
        self.0.extend(u32::try_from(f.len()).unwrap().to_le_bytes());
        self.0.extend(f);
    }
}

fn tshark(args: &[&str]) -> Option<String> {
    let out = Command::new("tshark").args(args).output().ok()?;
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn tshark_finds_no_malformed_frames_and_no_expert_infos() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIPPED wire referee: tshark is not installed (apt-get install -y tshark)");
        return;
    }
    let mut pcap = Pcap::new();
    let asap = asap_messages();
    let enrp = enrp_messages();
    for (i, m) in asap.iter().enumerate() {
        let bytes = m.emit_to_vec();
        assert_eq!(asap::Message::parse(&bytes).as_ref(), Ok(m));
        pcap.udp(i as u32, ASAP_PORT, &bytes);
    }
    for (i, m) in enrp.iter().enumerate() {
        let bytes = m.emit_to_vec();
        assert_eq!(enrp::Message::parse(&bytes).as_ref(), Ok(m));
        pcap.udp(100 + i as u32, ENRP_PORT, &bytes);
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("codec-wire-referee.pcap");
    std::fs::write(&path, &pcap.0).unwrap();
    let file = path.to_str().unwrap();

    let asap_frames = tshark(&["-r", file, "-Y", "asap"]).unwrap();
    let enrp_frames = tshark(&["-r", file, "-Y", "enrp"]).unwrap();
    assert_eq!(asap_frames.lines().count(), asap.len(), "every ASAP frame dissected as ASAP");
    assert_eq!(enrp_frames.lines().count(), enrp.len(), "every ENRP frame dissected as ENRP");
    let malformed = tshark(&["-r", file, "-Y", "_ws.malformed"]).unwrap();
    assert_eq!(malformed, "", "malformed frames in {file}");
    let expert = tshark(&[
        "-r",
        file,
        "-Y",
        "_ws.expert",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
    ])
    .unwrap();
    assert_eq!(expert, "", "expert infos in {file}");
    // Wireshark shows each message type by name; an unnamed one means we emitted a wrong type.
    let names = tshark(&["-r", file, "-T", "fields", "-e", "_ws.col.Info"]).unwrap();
    assert!(!names.contains("Unknown"), "unknown types or parameters:\n{names}");
}
