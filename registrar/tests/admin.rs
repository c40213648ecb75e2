//! The admin API of the real `registrar` binary over loopback HTTP: authentication (none,
//! wrong, right), listings after registrations, deregistration through the API on whichever
//! core owns the pool (a resolution no longer returns the PE), 4xx answers for bad input,
//! the drain, the configuration without the token, and start-up errors that name the field.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use asap::Session;
use codec::asap::{HandleResolution, Message, Registration};
use codec::{ErrorCause, PoolHandle};
use serde_json::Value;
use transport::sctp_udp::{SctpUdpConfig, SctpUdpTransport};

const TOKEN: &str = "t0ken-for-the-admin-test";

struct Registrar {
    child: Child,
    admin_port: u16,
    udp_port: u16,
    _dir: TempDir,
}

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("admin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts a registrar with `workers` workers and the admin API on a free port.
fn start(tag: &str, workers: usize) -> Registrar {
    let udp_port = common::free_udp_port();
    let udp = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), udp_port);
    let args = ["--workers".to_owned(), workers.to_string(), "--no-enrp".to_owned()];
    start_with(tag, udp, &args)
}

/// Starts a registrar on UDP `udp` with the admin API on a free port, plus `args`.
fn start_with(tag: &str, udp: SocketAddr, args: &[String]) -> Registrar {
    let dir = TempDir::new(tag);
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\nnot the token\n")).unwrap();
    let admin_port = free_tcp_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &udp.to_string(), "--no-announce"])
        .args(args)
        .args(["--admin", &format!("127.0.0.1:{admin_port}")])
        .arg("--admin-token-file")
        .arg(&token_file)
        .args(["--keep-alive-interval-ms", "600000", "--run-seconds", "60", "--log", "warn"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("the registrar binary runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("registrar ready"), "registrar said: {line}");
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| eprintln!("{l}")));
    Registrar { child, admin_port, udp_port: udp.port(), _dir: dir }
}

/// One HTTP request; the status code and the body.
fn http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// `method path` with the right token and `body`.
fn call(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    http(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = call(port, "GET", path, "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The `error` of a 4xx JSON answer, checking its status.
fn error_of(port: u16, method: &str, path: &str, body: &str, status: u16) -> String {
    let (got, text) = call(port, method, path, body);
    assert_eq!(got, status, "{method} {path}: {text}");
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    value["error"].as_str().expect("an error string").to_owned()
}

fn pool(name: &str) -> PoolHandle {
    PoolHandle::new(name.as_bytes()).unwrap()
}

fn session(udp_port: u16, secret: u8) -> Session<SctpUdpTransport> {
    session_to(IpAddr::V4(Ipv4Addr::LOCALHOST), udp_port, secret)
}

fn session_to(ip: IpAddr, udp_port: u16, secret: u8) -> Session<SctpUdpTransport> {
    let cfg = SctpUdpConfig { remote_udp_port: udp_port, ..Default::default() };
    let transport =
        SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [secret; 32]).unwrap();
    Session::connect(transport, SocketAddr::new(ip, 3863), Duration::from_secs(5)).unwrap()
}

fn register(s: &mut Session<SctpUdpTransport>, name: &str, id: u32) -> Message {
    let m = Registration { pool_handle: pool(name), pool_element: common::element(id) };
    s.send(&Message::Registration(m)).unwrap();
    s.recv(Duration::from_secs(5)).expect("a Registration Response")
}

fn resolve(s: &mut Session<SctpUdpTransport>, name: &str) -> Vec<u32> {
    let h = HandleResolution { subscribe: false, pool_handle: pool(name), items_wanted: Some(64) };
    s.send(&Message::HandleResolution(h)).unwrap();
    match s.recv(Duration::from_secs(5)).expect("a Handle Resolution Response") {
        Message::HandleResolutionResponse(r) => {
            let mut ids: Vec<u32> = r.pool_elements.iter().map(|e| e.id.0).collect();
            ids.sort_unstable();
            ids
        }
        other => panic!("{other:?}"),
    }
}

/// Two pool names, the first owned by core 0 of 2, the second by core 1.
fn one_pool_per_core() -> [String; 2] {
    let owned_by = |core: u16| {
        (0..1_000)
            .map(|i| format!("pool-{i}"))
            .find(|n| handlespace::shard_of(&pool(n), 2) == core)
            .expect("a handle for each core")
    };
    [owned_by(0), owned_by(1)]
}

// Goal: without the token, with a wrong one, or with it in the wrong place, every path but
// health answers 401 and the one word, nothing that tells paths apart; with it, 200.
// Method: the same paths with no header, a wrong token, another scheme, ?token= on the API.
#[test]
fn only_the_right_token_gets_in_and_401_says_nothing() {
    let r = start("auth", 1);
    let port = r.admin_port;
    let paths = ["/api/v1/pools", "/api/v1/config", "/api/v1/nothing-here", "/", "/x"];
    let mut bodies = std::collections::BTreeSet::new();
    for path in paths {
        let none = http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let wrong = http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}x\r\n\r\n"),
        );
        let basic = http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {TOKEN}\r\n\r\n"),
        );
        for (status, body) in [none, wrong, basic] {
            assert_eq!(status, 401, "{path}");
            bodies.insert(body);
        }
    }
    let query = http(port, &format!("GET /api/v1/pools?token={TOKEN} HTTP/1.1\r\n\r\n"));
    assert_eq!(query.0, 401, "the API takes the token in the header only");
    bodies.insert(query.1);
    assert_eq!(bodies.into_iter().collect::<Vec<_>>(), ["unauthorized\n"]);

    assert_eq!(http(port, "GET /healthz HTTP/1.1\r\n\r\n").0, 200, "health needs no token");
    assert_eq!(http(port, "GET /readyz HTTP/1.1\r\n\r\n").0, 200, "no ENRP: ready");
    assert_eq!(get_json(port, "/api/v1/pools")["pools"], Value::Array(Vec::new()));
    let (status, page) = http(port, &format!("GET /?token={TOKEN} HTTP/1.1\r\n\r\n"));
    assert_eq!(status, 200);
    assert!(page.contains("<title>RSerPool registrar</title>") && page.contains("/api/v1/stats"));
    assert_eq!(call(port, "GET", "/", "").0, 200, "the page also takes the header");
    assert_eq!(
        error_of(port, "GET", "/api/v1/nothing-here", "", 404),
        "no such path: /api/v1/nothing-here"
    );
}

// Goal: listings show what was registered, on both cores; DELETE removes a PE everywhere (a
// resolution through either core no longer returns it), for a pool of each core; unknown
// pools and ids are 404, bad handles and ids 400, wrong methods 405. Method: 2 workers, PEs
// 1-3 in a pool of core 0 and 4-5 in a pool of core 1 over one association, resolutions
// over a second association (steered to either core).
#[test]
fn listings_and_deregistration_on_the_owning_core() {
    let r = start("list", 2);
    let port = r.admin_port;
    let [zero, one] = one_pool_per_core();
    let mut pe = session(r.udp_port, 1);
    for (name, id) in [(&zero, 1), (&zero, 2), (&zero, 3), (&one, 4), (&one, 5)] {
        assert!(
            matches!(register(&mut pe, name, id), Message::RegistrationResponse(r) if !r.reject)
        );
    }
    let pools = get_json(port, "/api/v1/pools");
    let listed: Vec<(String, u64, u64)> = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["handle"].as_str().unwrap().to_owned(),
                p["core"].as_u64().unwrap(),
                p["members"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![(zero.clone(), 0, 3), (one.clone(), 1, 2)];
    expected.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, expected);
    assert_eq!(pools["element_count"], 5);
    let stats = get_json(port, "/api/v1/stats");
    let id = stats["registrar_id"].as_u64().unwrap();

    let detail = get_json(port, &format!("/api/v1/pools/{zero}"));
    let elements = detail["elements"].as_array().unwrap();
    let ids: Vec<u64> = elements.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
    let first = &elements[0];
    assert_eq!(first["home_enrp_server"].as_u64(), Some(id));
    assert_eq!(first["user_transport_port"], 20_001);
    assert_eq!(first["user_transport_proto"], 132);
    assert_eq!(first["policy_description"], "RoundRobin");
    assert_eq!(first["registration_life_ms"], 600_000);
    assert_eq!(first["user_addresses"][0], "127.0.0.1");
    let filtered = get_json(port, &format!("/api/v1/pool-elements?pool={one}"));
    let ids: Vec<u64> = filtered["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [4, 5]);
    assert_eq!(get_json(port, "/api/v1/pool-elements")["elements"].as_array().unwrap().len(), 5);
    let sessions = get_json(port, "/api/v1/sessions");
    assert_eq!(sessions["associations"], 1, "{sessions}");

    let mut pu = session(r.udp_port, 2);
    assert_eq!(resolve(&mut pu, &zero), [1, 2, 3]);
    assert_eq!(resolve(&mut pu, &one), [4, 5]);
    for (name, id, left) in [(&zero, 2, vec![1, 3]), (&one, 4, vec![5])] {
        let (status, body) =
            call(port, "DELETE", &format!("/api/v1/pools/{name}/elements/{id}"), "");
        assert_eq!(status, 200, "{body}");
        let removed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(removed["removed"]["id"], id);
        // Both associations may sit on either core: each core's replica dropped it too.
        assert_eq!(resolve(&mut pu, name), left);
        assert_eq!(resolve(&mut pe, name), left);
    }
    assert_eq!(get_json(port, "/api/v1/pools")["element_count"], 3);
    assert_eq!(get_json(port, "/api/v1/stats")["stats"]["deregistrations"], 2);

    let again = error_of(port, "DELETE", &format!("/api/v1/pools/{zero}/elements/2"), "", 404);
    assert!(again.contains("no pool element 2"), "{again}");
    let nopool = error_of(port, "DELETE", "/api/v1/pools/nope/elements/1", "", 404);
    assert!(nopool.contains("no pool nope"), "{nopool}");
    assert!(error_of(port, "GET", "/api/v1/pools/nope", "", 404).contains("nope"));
    assert!(error_of(port, "GET", "/api/v1/pool-elements?pool=nope", "", 404).contains("nope"));
    let bad_id = error_of(port, "DELETE", &format!("/api/v1/pools/{zero}/elements/x1"), "", 400);
    assert!(bad_id.contains("pool element id"), "{bad_id}");
    let bad_escape = error_of(port, "GET", "/api/v1/pools/a%zz", "", 400);
    assert!(bad_escape.contains("percent-encoding"), "{bad_escape}");
    let long = "a".repeat(65);
    assert!(error_of(port, "GET", &format!("/api/v1/pools/{long}"), "", 400).contains("longer"));
    let unknown = error_of(port, "GET", "/api/v1/pool-elements?pol=x", "", 400);
    assert!(unknown.contains("pol"), "{unknown}");
    assert_eq!(call(port, "POST", "/api/v1/pools", "").0, 405);
    assert_eq!(call(port, "DELETE", "/api/v1/pools", "").0, 405);
    // Percent-encoded bytes name the same pool as their plain form.
    let encoded: String = zero.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        get_json(port, &format!("/api/v1/pools/{encoded}"))["elements"].as_array().unwrap().len(),
        2
    );
}

// Goal: a drain refuses new registrations with Lack of Resources and undraining accepts them
// again; bad JSON is a 400 naming the problem. Method: POST /drain, a Registration, then
// POST {"draining": false} and the same Registration.
#[test]
fn drain_refuses_registrations_with_lack_of_resources() {
    let r = start("drain", 2);
    let port = r.admin_port;
    let mut pe = session(r.udp_port, 3);
    assert!(
        matches!(register(&mut pe, "before", 1), Message::RegistrationResponse(r) if !r.reject)
    );
    let (status, body) = call(port, "POST", "/api/v1/drain", "");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["handed_off"], 0, "no ENRP peer to hand PEs to: {answer}");
    assert!(answer["hand_off"].as_str().unwrap().contains("no active ENRP peer"), "{answer}");
    assert_eq!(get_json(port, "/api/v1/drain")["draining"], true);
    assert_eq!(get_json(port, "/api/v1/stats")["draining"], true);
    for name in one_pool_per_core() {
        let Message::RegistrationResponse(refused) = register(&mut pe, &name, 2) else { panic!() };
        assert!(refused.reject, "refused while draining");
        let cause = refused.error.expect("an error cause").causes[0].code;
        assert_eq!(cause, ErrorCause::LACK_OF_RESOURCES);
    }
    assert_eq!(resolve(&mut pe, "before"), [1], "PEs already here stay");
    assert!(error_of(port, "POST", "/api/v1/drain", "{\"draining\": tru", 400).contains("body"));
    assert!(error_of(port, "POST", "/api/v1/drain", "{\"drain\": true}", 400).contains("drain"));
    assert!(error_of(port, "POST", "/api/v1/drain", "[1]", 400).contains("body"));
    assert_eq!(get_json(port, "/api/v1/drain")["draining"], true, "a bad body changes nothing");
    assert_eq!(call(port, "POST", "/api/v1/drain", "{\"draining\": false}").0, 200);
    assert!(matches!(register(&mut pe, "after", 3), Message::RegistrationResponse(r) if !r.reject));
    let stats = get_json(port, "/api/v1/stats");
    assert_eq!(stats["draining"], false);
    // The pool handle "after" must exist now, with its PE.
    assert_eq!(get_json(port, "/api/v1/pools/after")["elements"][0]["id"], 3);
}

// Goal: the configuration endpoint shows the effective configuration, the token file's path
// but never the token. Method: GET /api/v1/config, look for both.
#[test]
fn config_shows_the_token_file_but_never_the_token() {
    let r = start("config", 1);
    let (status, body) = call(r.admin_port, "GET", "/api/v1/config", "");
    assert_eq!(status, 200);
    assert!(!body.contains(TOKEN), "the token leaked: {body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    let path = config["admin"]["token_file"].as_str().unwrap();
    assert!(path.ends_with("/token"), "{path}");
    assert_eq!(config["workers"], 1);
    assert_eq!(config["enrp"]["enabled"], false);
}

fn start_error(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &format!("127.0.0.1:{}", common::free_udp_port()), "--no-announce"])
        .args(["--run-seconds", "1", "--log", "warn"])
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// Goal: bad admin settings stop the start with an error naming the field or the path.
// Method: a missing token file, no token file, a non-loopback address.
#[test]
fn bad_admin_settings_are_start_up_errors_naming_the_field() {
    let admin = format!("127.0.0.1:{}", free_tcp_port());
    let missing = std::env::temp_dir().join("admin-test-no-such-token-file");
    let e = start_error(&["--admin", &admin, "--admin-token-file", missing.to_str().unwrap()]);
    assert!(e.contains("admin.token_file") && e.contains(missing.to_str().unwrap()), "{e}");
    let e = start_error(&["--admin", &admin]);
    assert!(e.contains("admin.token_file"), "{e}");
    let e = start_error(&["--admin", "0.0.0.0:1", "--admin-token-file", "/dev/null"]);
    assert!(e.contains("admin.listen") && e.contains("loopback"), "{e}");
}

/// Polls `path` until `done` holds, at most 15 s; the last answer.
fn poll_json(port: u16, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        // Until the deadline a 404 (a pool not here yet: it arrives by ENRP) is polled again.
        let (status, body) = call(port, "GET", path, "");
        if status == 404 && std::time::Instant::now() <= deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(status, 200, "{path}: {body}");
        let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// Goal: over ENRP, the peer table and a PE learned from a peer show with the right columns,
// a peer's PE cannot be deregistered where it is not homed (409), and a deregistration at
// its home removes it everywhere, the peer included. Method: two registrars on their own
// loopback addresses (UDP 9899, as ENRP peers reach each other), a PE registered at B, read
// and deleted through the two admin APIs.
#[test]
fn peers_and_learned_pes_over_enrp() {
    // Addresses of this process only, so that parallel runs and other tests do not collide.
    let net = 100 + (std::process::id() % 150) as u8;
    let ip = |last| IpAddr::V4(Ipv4Addr::new(127, 77, net, last));
    let (a_ip, b_ip) = (ip(1), ip(2));
    let enrp = |id: &str, peer: IpAddr| -> Vec<String> {
        [
            "--workers",
            "1",
            "--registrar-id",
            id,
            "--enrp-heartbeat-ms",
            "500",
            "--enrp-max-time-last-heard-ms",
            "5000",
            "--enrp-mentor-hunt-timeout-ms",
            "1000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--peer".to_owned(), SocketAddr::new(peer, 9901).to_string()])
        .collect()
    };
    let a = start_with("enrp-a", SocketAddr::new(a_ip, 9899), &enrp("0xa1", b_ip));
    let b = start_with("enrp-b", SocketAddr::new(b_ip, 9899), &enrp("0xb2", a_ip));
    let mut pe = session_to(b_ip, 9899, 4);
    assert!(
        matches!(register(&mut pe, "shared", 9), Message::RegistrationResponse(r) if !r.reject)
    );

    let has_pe = |v: &Value| v["elements"].as_array().is_some_and(|e| !e.is_empty());
    let learned = poll_json(a.admin_port, "/api/v1/pool-elements?pool=shared", has_pe);
    let row = &learned["elements"][0];
    assert_eq!(row["id"], 9, "{learned}");
    assert_eq!(row["home_enrp_server"], 0xb2);
    assert_eq!(row["owned"], false);
    assert_eq!(row["user_transport_port"], 20_009);
    assert!(row["asap_transport_port"].as_u64().is_some(), "B's Handle Update carries it: {row}");
    let at_b = get_json(b.admin_port, "/api/v1/pool-elements?pool=shared");
    assert_eq!(
        (at_b["elements"][0]["owned"].clone(), at_b["elements"][0]["home_enrp_server"].clone()),
        (Value::Bool(true), Value::from(0xb2))
    );

    let peers = poll_json(a.admin_port, "/api/v1/peers", |v| v["peers"][0]["connected"] == true);
    let peer = &peers["peers"][0];
    assert_eq!(peers["peers"].as_array().unwrap().len(), 1, "{peers}");
    assert_eq!(peer["identifier"], 0xb2);
    assert_eq!(peer["address"], b_ip.to_string());
    assert_eq!(peer["port"], 9901);
    assert_eq!(peer["active"], true);
    assert!(peer["last_heard_ms"].as_u64().unwrap() < 5_000, "{peer}");
    assert_eq!(peers["server"]["identifier"], 0xa1);
    assert_eq!(peers["server"]["enrp_port"], 9901);

    let refused = error_of(a.admin_port, "DELETE", "/api/v1/pools/shared/elements/9", "", 409);
    assert!(refused.contains("0x000000b2"), "{refused}");
    assert_eq!(call(b.admin_port, "DELETE", "/api/v1/pools/shared/elements/9", "").0, 200);
    let gone = |v: &Value| v["pools"].as_array().is_some_and(|p| p.is_empty());
    assert!(gone(&poll_json(a.admin_port, "/api/v1/pools", gone)), "the peer heard of it");
    assert!(gone(&get_json(b.admin_port, "/api/v1/pools")));
}

// Goal: a drain hands the registrar's PEs to its ENRP peer without losing them: the PE's
// association is shut down, the PE (the asap library, which knows both registrars) is
// refused back at the draining one and registers at the peer, and the peer's Handle Update
// re-homes it at the draining one too; the PE is listed at the peer at every look, and the
// draining registrar removes nothing. Method: two ENRP peers on their own loopback
// addresses, an asap PE homed at A (hunt order A then B) served in a thread, POST
// /api/v1/drain at A, then the two admin APIs polled.
#[test]
fn drain_hands_the_pes_to_an_enrp_peer() {
    use asap::blocking::PoolElement;
    use asap::{EndpointConfig, PeConfig};
    use codec::param::{AddressList, Policy, SctpTransport as SctpParam, UserTransport};
    use codec::{PoolElementId, TransportUse};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let net = 100 + (std::process::id() % 150) as u8;
    let ip = |last| IpAddr::V4(Ipv4Addr::new(127, 78, net, last));
    let (a_ip, b_ip) = (ip(1), ip(2));
    let enrp = |id: &str, peer: IpAddr| -> Vec<String> {
        ["--workers", "2", "--registrar-id", id, "--enrp-heartbeat-ms", "300"]
            .iter()
            .chain(&["--enrp-max-time-last-heard-ms", "5000", "--enrp-mentor-hunt-timeout-ms"])
            .chain(&["500"])
            .map(|s| (*s).to_owned())
            .chain(["--peer".to_owned(), SocketAddr::new(peer, 9901).to_string()])
            .collect()
    };
    let a = start_with("handoff-a", SocketAddr::new(a_ip, 9899), &enrp("0xa1", b_ip));
    let b = start_with("handoff-b", SocketAddr::new(b_ip, 9899), &enrp("0xb2", a_ip));
    poll_json(a.admin_port, "/api/v1/peers", |v| v["peers"][0]["active"] == true);

    let stop = Arc::new(AtomicBool::new(false));
    let pe_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let cfg = SctpUdpConfig { remote_udp_port: 9899, ..Default::default() };
            let transport =
                SctpUdpTransport::bind("127.0.0.1:0".parse().unwrap(), cfg, [9; 32]).unwrap();
            let mut config = EndpointConfig::default();
            config.hunt.registrars = vec![SocketAddr::new(a_ip, 3863), SocketAddr::new(b_ip, 3863)];
            config.hunt.parallel_max = 1;
            config.hunt.hunt_timeout_initial = asap::Duration::from_millis(500);
            let user = UserTransport::Sctp(SctpParam {
                port: 20_021,
                transport_use: TransportUse::DATA_ONLY,
                addresses: AddressList::from_slice(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap(),
            });
            let mut pe_config = PeConfig::new(pool("moving"), user, Policy::RoundRobin);
            pe_config.id = Some(PoolElementId(21));
            let mut pe =
                PoolElement::register(transport, config, pe_config, 1, Duration::from_secs(10))
                    .expect("registered at A");
            while !stop.load(Ordering::Relaxed) {
                pe.serve(Duration::from_millis(20)).expect("the PE keeps serving");
            }
        })
    };

    let element_at = |port: u16| -> Option<Value> {
        let v = get_json(port, "/api/v1/pool-elements?pool=moving");
        v["elements"].as_array().and_then(|e| e.first().cloned())
    };
    let homed = |v: &Value, home: u32| v["elements"][0]["home_enrp_server"] == home;
    poll_json(b.admin_port, "/api/v1/pool-elements?pool=moving", |v| homed(v, 0xa1));
    assert_eq!(element_at(a.admin_port).unwrap()["owned"], true, "homed at A first");

    let (status, body) = call(a.admin_port, "POST", "/api/v1/drain", "{\"draining\": true}");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (answer["handed_off"].clone(), answer["active_peers"].clone()),
        (1.into(), 1.into())
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut looks = 0;
    loop {
        let at_b = element_at(b.admin_port).expect("the PE is listed at B at every look");
        looks += 1;
        if at_b["home_enrp_server"] == 0xb2 && at_b["owned"] == true {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not re-homed at B: {at_b}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(looks > 1, "the first look saw A's PE");
    let re_homed = |v: &Value| homed(v, 0xb2) && v["elements"][0]["owned"] == false;
    poll_json(a.admin_port, "/api/v1/pool-elements?pool=moving", re_homed);
    let stats = get_json(a.admin_port, "/api/v1/stats")["stats"].clone();
    assert_eq!(stats["handed_off"], 1, "{stats}");
    for removal in ["session_removals", "keep_alive_timeouts", "lifetime_expiries"] {
        assert_eq!(stats[removal], 0, "{removal}: {stats}");
    }
    stop.store(true, Ordering::Relaxed);
    pe_thread.join().expect("the PE thread ends cleanly");
}
