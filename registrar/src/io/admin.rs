//! The admin API (HTTP + JSON) and the status page: read the handlespace, the sessions, the
//! peers, the effective configuration and the counters; deregister a PE; drain the
//! registrar. Off by default; on loopback only unless the configuration says otherwise.
//!
//! One thread, off the cores, serving one request at a time. Reads and actions go to the
//! cores through their mailboxes (`management.rs`): each core answers at its next loop turn,
//! the thread waits at most [`management::ANSWER_TIMEOUT`] and answers 503 if a core did not.
//! Counters come from what the cores publish every 100 ms (`StatsHandle`), as for `/metrics`.
//!
//! Authentication: every request but `/healthz` and `/readyz` carries
//! `Authorization: Bearer <token>`, compared in constant time with the first line of
//! `admin.token_file`; anything else gets `401` and the one word `unauthorized`, whatever the
//! path, so that an unauthenticated client learns nothing, not even which paths exist. The
//! status page (`GET /` only) also takes the token as `?token=`, because a browser cannot
//! add a header to the page it navigates to; its script then sends the header itself. The
//! token in a URL can end up in the browser's history and in the logs of any proxy on the
//! way, which is why the endpoint is loopback-only by default and sends
//! `Referrer-Policy: no-referrer`. No cookie is set: a cookie would be sent by the browser
//! to cross-site requests too (CSRF against `DELETE` and `POST`), a header never is.
//!
//! Why its own listener and not the metrics one: the two have different audiences (a
//! scraper with no secret, an operator with one), so they are configured, exposed and
//! firewalled apart; and one's slow client never delays the other.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use codec::{PoolElementId, PoolHandle, RegistrarId};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::http::{self, Request};
use super::management::{
    Answer, CoreSnapshot, Deregistered, Elements, EnrpServerEntry, Management, Request as Ask,
};
use crate::config::Config;
use crate::core::StatsHandle;
use crate::proto::Stats;

/// The status page, self-contained (inline CSS and script, no external assets).
const STATUS_PAGE: &str = include_str!("status.html");
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(25);
/// Longest token accepted from the token file (a 32-byte secret in hex is 64).
const TOKEN_MAX: usize = 4_096;

/// What the admin thread serves from.
pub struct Context {
    /// The effective configuration (`GET /api/v1/config`).
    pub config: Config,
    /// The registrar id in use.
    pub registrar_id: RegistrarId,
    /// When the registrar started (uptime).
    pub started: StdInstant,
    /// The cores' published counters.
    pub stats: StatsHandle,
    /// The cores' mailboxes.
    pub management: Management,
    /// The bearer token.
    pub token: Vec<u8>,
    /// Set while the registrar drains; the Server Announce thread is silent then.
    pub draining: Arc<AtomicBool>,
}

/// Reads the bearer token: the file's first line, without its line end. Errors name the path.
pub fn load_token(path: &Path) -> io::Result<Vec<u8>> {
    let name = path.display();
    let text = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("admin.token_file {name}: {e}")))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let token = line.strip_suffix(b"\r").unwrap_or(line);
    let invalid = |why: &str| {
        io::Error::new(io::ErrorKind::InvalidData, format!("admin.token_file {name}: {why}"))
    };
    if token.is_empty() {
        return Err(invalid("the first line (the token) is empty"));
    }
    if token.len() > TOKEN_MAX {
        return Err(invalid("the token is longer than 4096 bytes"));
    }
    if token.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(invalid("the token must be printable ASCII without spaces"));
    }
    Ok(token.to_vec())
}

/// Binds `listen` and serves until `stop` is set.
pub fn spawn(
    listen: SocketAddr,
    context: Context,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let listener = TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    tracing::info!(address = %listener.local_addr()?, "admin API listening");
    std::thread::Builder::new().name("registrar-admin".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = serve(stream, &context) {
                        tracing::debug!(%peer, error = %e, "admin request");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(STOP_POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept");
                    std::thread::sleep(STOP_POLL);
                }
            }
        }
        Ok(())
    })
}

/// An answer before it is written.
struct Reply {
    status: &'static str,
    content_type: &'static str,
    headers: &'static str,
    body: Vec<u8>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn serve(mut stream: TcpStream, context: &Context) -> io::Result<()> {
    let request = match http::read_request(&mut stream)? {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(refusal) => {
            let body = error_body(&refusal.reason);
            return http::respond(&mut stream, refusal.status, JSON, "", &body);
        }
    };
    let reply = route(&request, context);
    http::respond(&mut stream, reply.status, reply.content_type, reply.headers, &reply.body)
}

fn route(request: &Request, context: &Context) -> Reply {
    let method = request.method.as_str();
    let path = request.path.as_str();
    // Health first: no token, the same meaning as the metrics endpoint's.
    match (method, path) {
        ("GET", "/healthz") => return text("200 OK", "ok\n"),
        ("GET", "/readyz") if ready(&context.stats.per_core(), &context.config) => {
            return text("200 OK", "ready\n");
        }
        ("GET", "/readyz") => return text("503 Service Unavailable", "ENRP start-up not done\n"),
        _ => {}
    }
    let page = method == "GET" && path == "/";
    if !authorized(request, &context.token, page) {
        return Reply {
            status: "401 Unauthorized",
            content_type: TEXT,
            headers: "WWW-Authenticate: Bearer\r\n",
            body: b"unauthorized\n".to_vec(),
        };
    }
    if page {
        return Reply {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            headers: PAGE_HEADERS,
            body: STATUS_PAGE.as_bytes().to_vec(),
        };
    }
    match api(request, context) {
        Ok(reply) => reply,
        Err(ApiError { status, message }) => json_reply(status, &json!({ "error": message })),
    }
}

/// The page may run its own inline script and style and talk to this origin, nothing else.
const PAGE_HEADERS: &str =
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\n";

/// A 4xx/5xx answer with a JSON `{ "error": ... }` body.
struct ApiError {
    status: &'static str,
    message: String,
}

fn fail(status: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, message: message.into() }
}

fn api(request: &Request, context: &Context) -> Result<Reply, ApiError> {
    let Some(rest) = request.path.strip_prefix("/api/v1/") else {
        return Err(fail("404 Not Found", format!("no such path: {}", request.path)));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let method = request.method.as_str();
    let allow = |methods: &str| {
        fail("405 Method Not Allowed", format!("{} takes {methods} only", request.path))
    };
    if !matches!(segments.as_slice(), ["pool-elements"]) && !request.query.is_empty() {
        return Err(fail("400 Bad Request", "this path takes no query parameters"));
    }
    match segments.as_slice() {
        ["pools"] if method == "GET" => pools(context),
        ["pools", handle] if method == "GET" => pool(context, &pool_handle(handle)?),
        ["pools", handle, "elements", id] if method == "DELETE" => {
            remove(context, &pool_handle(handle)?, element_id(id)?)
        }
        ["pool-elements"] if method == "GET" => elements(context, &request.query),
        ["sessions"] if method == "GET" => sessions(context),
        ["peers"] if method == "GET" => peers(context),
        ["config"] if method == "GET" => Ok(json_reply("200 OK", &config_json(&context.config))),
        ["stats"] if method == "GET" => stats(context),
        ["drain"] if method == "GET" => drain_state(context),
        ["drain"] if method == "POST" => drain(context, &request.body),
        ["pools"]
        | ["pools", _]
        | ["pool-elements"]
        | ["sessions"]
        | ["peers"]
        | ["config"]
        | ["stats"] => Err(allow("GET")),
        ["pools", _, "elements", _] => Err(allow("DELETE")),
        ["drain"] => Err(allow("GET and POST")),
        _ => Err(fail("404 Not Found", format!("no such path: {}", request.path))),
    }
}

fn pools(context: &Context) -> Result<Reply, ApiError> {
    let snapshots = snapshots(context, Elements::Omit)?;
    let mut pools: Vec<_> = snapshots.iter().flat_map(|s| s.pools.iter()).collect();
    // Each core lists its own pools in order; the merged list is in handle order too.
    pools.sort_unstable_by(|a, b| a.handle_hex.cmp(&b.handle_hex));
    let truncated = snapshots.iter().any(|s| s.pools_truncated);
    let elements: u32 = pools.iter().map(|p| p.members).sum();
    let body = json!({
        "registrar_id": context.registrar_id.0,
        "pools": pools,
        "pool_count": pools.len(),
        "element_count": elements,
        "truncated": truncated,
    });
    Ok(json_reply("200 OK", &body))
}

fn pool(context: &Context, handle: &PoolHandle) -> Result<Reply, ApiError> {
    let core = context.management.core_of(handle);
    let snapshot = one_snapshot(context, core, Elements::Pool(*handle))?;
    let Some(entry) = snapshot.pools.iter().find(|p| p.handle_hex == hex(handle.as_bytes())) else {
        return Err(fail("404 Not Found", format!("no pool {handle}")));
    };
    let body = json!({
        "pool": entry,
        "elements": snapshot.elements,
        "truncated": snapshot.elements_truncated,
    });
    Ok(json_reply("200 OK", &body))
}

fn elements(context: &Context, query: &str) -> Result<Reply, ApiError> {
    let pairs = http::query_pairs(query).map_err(|e| fail("400 Bad Request", e))?;
    let mut handle = None;
    for (key, value) in pairs {
        match key.as_str() {
            "pool" if handle.is_none() => handle = Some(handle_from_bytes(&value)?),
            "pool" => return Err(fail("400 Bad Request", "pool: given twice")),
            other => {
                return Err(fail("400 Bad Request", format!("unknown query parameter {other:?}")))
            }
        }
    }
    let Some(handle) = handle else {
        let snapshots = snapshots(context, Elements::All)?;
        let mut all: Vec<_> = snapshots.iter().flat_map(|s| s.elements.iter()).collect();
        // In the pools' order: by handle bytes, then id.
        all.sort_by_cached_key(|e| (http::percent_decode(&e.pool_url).unwrap_or_default(), e.id));
        let truncated = snapshots.iter().any(|s| s.elements_truncated);
        return Ok(json_reply("200 OK", &json!({ "elements": all, "truncated": truncated })));
    };
    let core = context.management.core_of(&handle);
    let snapshot = one_snapshot(context, core, Elements::Pool(handle))?;
    if !snapshot.pools.iter().any(|p| p.handle_hex == hex(handle.as_bytes())) {
        return Err(fail("404 Not Found", format!("no pool {handle}")));
    }
    let body = json!({ "elements": snapshot.elements, "truncated": snapshot.elements_truncated });
    Ok(json_reply("200 OK", &body))
}

fn remove(context: &Context, handle: &PoolHandle, id: PoolElementId) -> Result<Reply, ApiError> {
    let core = context.management.core_of(handle);
    let request = Ask::Deregister { pool_handle: *handle, id };
    let answer = ask_one(context, core, request)?;
    let Answer::Deregistered(outcome) = answer else {
        return Err(fail("500 Internal Server Error", "the core answered something else"));
    };
    match outcome {
        Deregistered::Removed(entry) => Ok(json_reply("200 OK", &json!({ "removed": entry }))),
        Deregistered::UnknownPool => Err(fail("404 Not Found", format!("no pool {handle}"))),
        Deregistered::UnknownElement => {
            Err(fail("404 Not Found", format!("pool {handle} has no pool element {}", id.0)))
        }
        Deregistered::HomedElsewhere(home) => Err(fail(
            "409 Conflict",
            format!(
                "pool element {} is homed at registrar 0x{:08x}: deregister it there",
                id.0, home.0
            ),
        )),
    }
}

fn sessions(context: &Context) -> Result<Reply, ApiError> {
    let snapshots = snapshots(context, Elements::Omit)?;
    let per_core = context.stats.per_core();
    let cores: Vec<Value> = snapshots
        .iter()
        .map(|s| {
            let opened = per_core.get(usize::from(s.core)).map_or(0, |c| c.sessions_opened);
            json!({
                "core": s.core,
                "associations": s.associations,
                "subscriptions": s.subscriptions,
                "sessions_opened": opened,
            })
        })
        .collect();
    let associations: u64 = snapshots.iter().map(|s| s.associations).sum();
    Ok(json_reply("200 OK", &json!({ "associations": associations, "cores": cores })))
}

fn peers(context: &Context) -> Result<Reply, ApiError> {
    let enrp = context.config.enrp.enabled;
    let server = EnrpServerEntry::new(&context.config, context.registrar_id, context.started);
    let peers = if enrp {
        let snapshot = one_snapshot(context, crate::proto::ENRP_CORE, Elements::Omit)?;
        snapshot.peers.unwrap_or_default()
    } else {
        Vec::new()
    };
    let ready = ready(&context.stats.per_core(), &context.config);
    let body = json!({ "enrp": enrp, "ready": ready, "server": server, "peers": peers });
    Ok(json_reply("200 OK", &body))
}

fn stats(context: &Context) -> Result<Reply, ApiError> {
    let per_core = context.stats.per_core();
    let mut total = Stats::default();
    for s in &per_core {
        crate::core::runtime::add(&mut total, s);
    }
    let draining = drain_flags(context)?;
    let body = json!({
        "registrar_id": context.registrar_id.0,
        "uptime_ms": u64::try_from(context.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "cores": per_core.len(),
        "ready": ready(&per_core, &context.config),
        "draining": draining.iter().all(|&d| d),
        "stats": stats_json(&total),
    });
    Ok(json_reply("200 OK", &body))
}

fn drain_state(context: &Context) -> Result<Reply, ApiError> {
    let flags = drain_flags(context)?;
    Ok(json_reply("200 OK", &json!({ "draining": flags.iter().all(|&d| d), "cores": flags })))
}

/// `POST /api/v1/drain`: an empty body or `{"draining": true}` starts draining,
/// `{"draining": false}` stops it. Answers once every core has switched. Draining refuses new
/// registrations, silences the Server Announces and, unless `"hand_off": false`, hands the
/// PEs to the ENRP peers when one is active: every PE association is shut down, and each PE
/// registers at a peer (see `Server::hand_off`). The answer says how many were handed off,
/// or why none were.
fn drain(context: &Context, body: &[u8]) -> Result<Reply, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DrainBody {
        draining: bool,
        #[serde(default = "yes")]
        hand_off: bool,
    }
    fn yes() -> bool {
        true
    }
    let (on, hand_off) = if body.iter().all(u8::is_ascii_whitespace) {
        (true, true)
    } else {
        let parsed: DrainBody = serde_json::from_slice(body)
            .map_err(|e| fail("400 Bad Request", format!("body: {e}")))?;
        (parsed.draining, parsed.hand_off)
    };
    let answers = context.management.ask_all(Ask::Drain(on)).map_err(unanswered)?;
    assert!(answers.iter().all(|a| matches!(a, Answer::Drained)), "every core drains");
    context.draining.store(on, Ordering::Relaxed);
    tracing::info!(draining = on, "drain switched through the admin API");
    if !on {
        return Ok(json_reply("200 OK", &json!({ "draining": false })));
    }
    let active_peers = snapshots(context, Elements::Omit)?
        .iter()
        .filter_map(|s| s.peers.as_ref())
        .flatten()
        // Connected as well: a one-off reader such as hsdump or `rserpool dump` is listed as
        // an active peer for a while after it left, and would take no PE.
        .filter(|p| p.active && p.connected)
        .count();
    let (handed_off, hand_off) = match (hand_off, active_peers) {
        (false, _) => (0, "not asked"),
        (true, 0) => (0, "no active ENRP peer to take the PEs: they stay"),
        (true, _) => {
            let answers = context.management.ask_all(Ask::HandOff).map_err(unanswered)?;
            let count: u64 = answers
                .iter()
                .map(|a| match a {
                    Answer::HandedOff(n) => *n,
                    _ => 0,
                })
                .sum();
            tracing::info!(associations = count, active_peers, "drain: PEs handed to the peers");
            (count, "PE associations shut down: their PEs register at a peer")
        }
    };
    let body = json!({
        "draining": true,
        "handed_off": handed_off,
        "hand_off": hand_off,
        "active_peers": active_peers,
    });
    Ok(json_reply("200 OK", &body))
}

fn drain_flags(context: &Context) -> Result<Vec<bool>, ApiError> {
    Ok(snapshots(context, Elements::Omit)?.iter().map(|s| s.draining).collect())
}

fn snapshots(context: &Context, elements: Elements) -> Result<Vec<CoreSnapshot>, ApiError> {
    let answers = context.management.ask_all(Ask::Snapshot(elements)).map_err(unanswered)?;
    Ok(answers
        .into_iter()
        .filter_map(|a| match a {
            Answer::Snapshot(s) => Some(*s),
            _ => None,
        })
        .collect())
}

fn one_snapshot(
    context: &Context,
    core: u16,
    elements: Elements,
) -> Result<CoreSnapshot, ApiError> {
    match ask_one(context, core, Ask::Snapshot(elements))? {
        Answer::Snapshot(s) => Ok(*s),
        _ => Err(fail("500 Internal Server Error", "the core answered something else")),
    }
}

fn ask_one(context: &Context, core: u16, request: Ask) -> Result<Answer, ApiError> {
    let mut answers = context.management.ask(vec![(core, request)]).map_err(unanswered)?;
    answers.pop().ok_or_else(|| fail("500 Internal Server Error", "no answer"))
}

fn unanswered(e: super::management::Unanswered) -> ApiError {
    fail("503 Service Unavailable", format!("core {} did not answer within 2 s", e.core))
}

/// A pool handle from a URL path segment (percent-encoded bytes).
fn pool_handle(segment: &str) -> Result<PoolHandle, ApiError> {
    let bytes = http::percent_decode(segment)
        .map_err(|e| fail("400 Bad Request", format!("pool handle: {e}")))?;
    handle_from_bytes(&bytes)
}

fn handle_from_bytes(bytes: &[u8]) -> Result<PoolHandle, ApiError> {
    if bytes.is_empty() {
        return Err(fail("400 Bad Request", "pool handle: empty"));
    }
    let max = codec::POOL_HANDLE_LENGTH_MAX;
    PoolHandle::new(bytes)
        .map_err(|_| fail("400 Bad Request", format!("pool handle: longer than {max} bytes")))
}

/// A PE id from a URL path segment: decimal, or hex with `0x`.
fn element_id(segment: &str) -> Result<PoolElementId, ApiError> {
    let parsed = match segment.strip_prefix("0x").or_else(|| segment.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => segment.parse(),
    };
    parsed.map(PoolElementId).map_err(|_| {
        let shown: String = segment.chars().take(32).collect();
        fail("400 Bad Request", format!("pool element id {shown:?}: not a 32-bit number"))
    })
}

/// Whether the request carries the token: the Bearer header, or for the page `?token=`.
fn authorized(request: &Request, token: &[u8], page: bool) -> bool {
    let from_header = request.authorization.as_deref().and_then(|value| {
        let (scheme, credentials) = value.split_at(value.len().min(7));
        scheme.eq_ignore_ascii_case(b"bearer ").then_some(credentials)
    });
    let from_query = || {
        let pairs = http::query_pairs(&request.query).ok()?;
        pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v)
    };
    let offered = match (from_header, page) {
        (Some(credentials), _) => credentials.to_vec(),
        (None, true) => match from_query() {
            Some(v) => v,
            None => return false,
        },
        (None, false) => return false,
    };
    // Constant time in the content; the length is not secret (and `ct_eq` on slices of
    // different lengths answers false at once).
    bool::from(offered.as_slice().ct_eq(token))
}

/// Ready once ENRP's start-up is done (core 0 runs it), or always without ENRP: the metrics
/// endpoint's rule.
fn ready(per_core: &[Stats], config: &Config) -> bool {
    !config.enrp.enabled || per_core.first().is_some_and(|s| s.enrp_ready == 1)
}

/// The effective configuration. The token file's path is in it; the token never is (it is
/// not part of the configuration).
fn config_json(config: &Config) -> Value {
    serde_json::to_value(config).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn stats_json(s: &Stats) -> Value {
    let e = &s.enrp;
    json!({
        "registrations": s.registrations,
        "registrations_rejected": s.registrations_rejected,
        "deregistrations": s.deregistrations,
        "resolutions": s.resolutions,
        "replica_resolutions": s.replica_resolutions,
        "keep_alives_sent": s.keep_alives_sent,
        "keep_alive_timeouts": s.keep_alive_timeouts,
        "lifetime_expiries": s.lifetime_expiries,
        "unreachable_removals": s.unreachable_removals,
        "session_removals": s.session_removals,
        "handed_off": s.handed_off,
        "decode_errors": s.decode_errors,
        "dropped": s.dropped,
        "too_long": s.too_long,
        "sessions_opened": s.sessions_opened,
        "replica_updates": s.replica_updates,
        "shard_elements": s.shard_elements,
        "shard_pools": s.shard_pools,
        "replica_elements": s.replica_elements,
        "peer_upserts": s.peer_upserts,
        "peer_removals": s.peer_removals,
        "peer_rejected": s.peer_rejected,
        "peer_claims_refused": s.peer_claims_refused,
        "keep_alives_unroutable": s.keep_alives_unroutable,
        "subscriptions": s.subscriptions,
        "subscription_pushes": s.subscription_pushes,
        "subscriptions_refused": s.subscriptions_refused,
        "enrp_peers": s.enrp_peers,
        "enrp": {
            "received": e.received,
            "sent": e.sent,
            "updates_sent": e.updates_sent,
            "updates_received": e.updates_received,
            "peers_failed": e.peers_failed,
            "takeovers_won": e.takeovers_won,
            "takeover_acks_withheld": e.takeover_acks_withheld,
            "resyncs": e.resyncs,
            "decode_errors": e.decode_errors,
        },
    })
}

fn json_reply(status: &'static str, value: &Value) -> Reply {
    let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    Reply { status, content_type: JSON, headers: "", body }
}

fn text(status: &'static str, body: &str) -> Reply {
    Reply { status, content_type: TEXT, headers: "", body: body.as_bytes().to_vec() }
}

fn error_body(message: &str) -> Vec<u8> {
    let mut body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    body.push(b'\n');
    body
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>, query: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: query.into(),
            authorization: authorization.map(|a| a.as_bytes().to_vec()),
            body: Vec::new(),
        }
    }

    // Goal: only the exact token passes, by header anywhere and by query on the page only.
    // Method: the right token, a prefix, an extension, another scheme, an empty header.
    #[test]
    fn only_the_exact_token_passes() {
        let token = b"s3cret";
        assert!(authorized(&request(Some("Bearer s3cret"), ""), token, false));
        assert!(authorized(&request(Some("bearer s3cret"), ""), token, false));
        for wrong in ["Bearer s3cre", "Bearer s3crett", "Basic s3cret", "", "Bearer", "s3cret"] {
            assert!(!authorized(&request(Some(wrong), ""), token, false), "{wrong:?}");
        }
        assert!(!authorized(&request(None, ""), token, true));
        assert!(authorized(&request(None, "token=s3cret"), token, true));
        assert!(!authorized(&request(None, "token=s3cret"), token, false), "query: page only");
        assert!(!authorized(&request(None, "token=s3cre"), token, true));
    }

    // Goal: the token file's errors name the path, and only its first line is the token.
    #[test]
    fn token_file_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("admin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        let e = load_token(&missing).unwrap_err();
        assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
        let file = dir.join("token");
        std::fs::write(&file, "abc\r\nsecond line\n").unwrap();
        assert_eq!(load_token(&file).unwrap(), b"abc");
        std::fs::write(&file, "\nabc\n").unwrap();
        assert!(load_token(&file).unwrap_err().to_string().contains("empty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Goal: bad ids and handles are clear 400s, never panics.
    #[test]
    fn bad_ids_and_handles_are_400() {
        assert_eq!(element_id("17").ok(), Some(PoolElementId(17)));
        assert_eq!(element_id("0x11").ok(), Some(PoolElementId(17)));
        for bad in ["", "-1", "4294967296", "0x", "x1", "1.5"] {
            let e = element_id(bad).expect_err(bad);
            assert_eq!(e.status, "400 Bad Request");
        }
        assert_eq!(pool_handle("a%2Fb").ok(), PoolHandle::new(b"a/b").ok());
        for bad in ["", "%zz", &"a".repeat(65)] {
            assert_eq!(pool_handle(bad).expect_err("refused").status, "400 Bad Request");
        }
    }
}
