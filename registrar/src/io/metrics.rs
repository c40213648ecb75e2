//! The Prometheus endpoint: `GET /metrics` in the text exposition format (prometheus-client),
//! `GET /healthz` (the process answers) and `GET /readyz` (ENRP start-up done: the mentor's
//! handlespace is in, or there is no mentor). One thread, off the cores: it reads the counters
//! each core already publishes every 100 ms ([`StatsHandle`]), so a scrape costs the cores
//! nothing and shows values at most that old.
//!
//! The HTTP side is deliberately small: one request per connection (`Connection: close`),
//! parsed by httparse, a 2 s read timeout and an 8 KiB request bound, so a slow or hostile
//! client holds the thread for at most that long and never grows its memory.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use codec::RegistrarId;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::core::StatsHandle;
use crate::proto::Stats;

/// Longest request accepted (line and headers).
const REQUEST_MAX: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(25);

/// What the endpoint says about the registrar besides its counters.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The registrar's id (the `rserpool_registrar_info` labels).
    pub registrar_id: RegistrarId,
    /// Whether ENRP runs (readiness waits for its start-up).
    pub enrp: bool,
}

/// Binds `listen` and serves until `stop` is set.
pub fn spawn(
    listen: SocketAddr,
    stats: StatsHandle,
    context: Context,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let listener = TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    std::thread::Builder::new().name("registrar-metrics".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = serve(stream, &stats, context) {
                        tracing::debug!(%peer, error = %e, "metrics request");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(STOP_POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept");
                    std::thread::sleep(STOP_POLL);
                }
            }
        }
        Ok(())
    })
}

fn serve(mut stream: TcpStream, stats: &StatsHandle, context: Context) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut buffer = vec![0u8; REQUEST_MAX];
    let mut filled = 0;
    let (method, path) = loop {
        let n = stream.read(&mut buffer[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or_default().to_owned();
                break (method, request.path.unwrap_or_default().to_owned());
            }
            Ok(httparse::Status::Partial) if filled < REQUEST_MAX => {}
            Ok(httparse::Status::Partial) => {
                return respond(&mut stream, "431 Request Header Fields Too Large", TEXT, "");
            }
            Err(e) => {
                let body = format!("bad request: {e}\n");
                return respond(&mut stream, "400 Bad Request", TEXT, &body);
            }
        }
    };
    if method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", TEXT, "only GET\n");
    }
    let per_core = stats.per_core();
    match path.split('?').next().unwrap_or_default() {
        "/metrics" => respond(&mut stream, "200 OK", EXPOSITION, &exposition(&per_core, context)),
        "/healthz" => respond(&mut stream, "200 OK", TEXT, "ok\n"),
        "/readyz" if ready(&per_core, context) => respond(&mut stream, "200 OK", TEXT, "ready\n"),
        "/readyz" => {
            respond(&mut stream, "503 Service Unavailable", TEXT, "ENRP start-up not done\n")
        }
        _ => respond(&mut stream, "404 Not Found", TEXT, "try /metrics, /healthz or /readyz\n"),
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Ready once ENRP's start-up is done (core 0 runs it), or always without ENRP.
fn ready(per_core: &[Stats], context: Context) -> bool {
    !context.enrp || per_core.first().is_some_and(|s| s.enrp_ready == 1)
}

type Labels = Vec<(String, String)>;

/// A family of counters or gauges filled from snapshots, by label values.
struct Metric<M> {
    family: Family<Labels, M>,
}

impl<M: Default + Clone + prometheus_client::metrics::TypedMetric + 'static> Metric<M>
where
    M: prometheus_client::encoding::EncodeMetric + Send + Sync + std::fmt::Debug,
{
    fn new(registry: &mut Registry, name: &str, help: &str) -> Self {
        let family = Family::<Labels, M>::default();
        registry.register(name, help, family.clone());
        Self { family }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The text exposition of every core's counters: per-core series labelled `core`, ENRP's on
/// the ENRP core only.
fn exposition(per_core: &[Stats], context: Context) -> String {
    let mut registry = Registry::with_prefix("rserpool_registrar");
    let info = Metric::<Gauge>::new(&mut registry, "info", "The registrar: its server id");
    let id = format!("0x{:08x}", context.registrar_id.0);
    info.family.get_or_create(&labels(&[("registrar_id", &id)])).set(1);
    let ready_gauge = Gauge::<i64>::default();
    registry.register(
        "ready",
        "1 once ENRP start-up is done (the mentor's handlespace is in, or none was found)",
        ready_gauge.clone(),
    );
    ready_gauge.set(i64::from(ready(per_core, context)));

    let counter = |registry: &mut Registry, name: &str, help: &str| {
        Metric::<Counter>::new(registry, name, help)
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        Metric::<Gauge>::new(registry, name, help)
    };
    let registrations =
        counter(&mut registry, "registrations", "ASAP registrations handled, by outcome");
    let deregistrations = counter(&mut registry, "deregistrations", "ASAP deregistrations handled");
    let resolutions = counter(
        &mut registry,
        "handle_resolutions",
        "Handle resolutions answered, by where the answer came from",
    );
    let keep_alives = counter(&mut registry, "keep_alives_sent", "Endpoint Keep-Alives sent");
    let removals = counter(&mut registry, "pe_removals", "PEs removed, by reason");
    let trouble = counter(
        &mut registry,
        "messages_discarded",
        "Messages not handled normally, by reason (malformed: answered with an ASAP Error; dropped: a full queue, an association gone, a message not for a registrar; too_long: a packet or message longer than the transport's receive buffers, dropped unread)",
    );
    let sessions = counter(&mut registry, "sessions_opened", "Associations that came up");
    let pushes = counter(
        &mut registry,
        "subscription_pushes",
        "Handle Resolution Responses pushed to subscribers (the S bit) on pool changes",
    );
    let handed_off = counter(
        &mut registry,
        "handed_off_associations",
        "PE associations a drain shut down so that their PEs register at an ENRP peer",
    );
    let elements = gauge(&mut registry, "pool_elements", "PEs in this core's shard");
    let pools = gauge(&mut registry, "pools", "Pools in this core's shard");
    let replica = gauge(&mut registry, "replica_pool_elements", "PEs in this core's read replica");
    let subscriptions =
        gauge(&mut registry, "subscriptions", "Live pool update subscriptions held");
    let enrp_peers = Gauge::<i64>::default();
    registry.register("enrp_peers", "ENRP peers in the peer table", enrp_peers.clone());
    let enrp_messages = counter(&mut registry, "enrp_messages", "ENRP messages, by direction");
    let enrp_updates =
        counter(&mut registry, "enrp_handle_updates", "ENRP Handle Updates, by direction");
    let enrp_events = counter(
        &mut registry,
        "enrp_events",
        "ENRP peer failures, takeovers won and re-synchronisations",
    );
    let peer_changes = counter(
        &mut registry,
        "enrp_peer_pe_changes",
        "PEs of peers applied to or removed from the handlespace",
    );

    for (core, s) in per_core.iter().enumerate() {
        let core = core.to_string();
        let by = |pairs: &[(&str, &str)]| {
            let mut l = labels(&[("core", &core)]);
            l.extend(labels(pairs));
            l
        };
        let add = |m: &Metric<Counter>, pairs: &[(&str, &str)], v: u64| {
            m.family.get_or_create(&by(pairs)).inc_by(v);
        };
        let set = |m: &Metric<Gauge>, v: u64| {
            m.family.get_or_create(&by(&[])).set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        add(&registrations, &[("outcome", "accepted")], s.registrations);
        add(&registrations, &[("outcome", "rejected")], s.registrations_rejected);
        add(&deregistrations, &[], s.deregistrations);
        let from_shard = s.resolutions.saturating_sub(s.replica_resolutions);
        add(&resolutions, &[("source", "shard")], from_shard);
        add(&resolutions, &[("source", "replica")], s.replica_resolutions);
        add(&keep_alives, &[], s.keep_alives_sent);
        add(&removals, &[("reason", "keep_alive_timeout")], s.keep_alive_timeouts);
        add(&removals, &[("reason", "lifetime_expired")], s.lifetime_expiries);
        add(&removals, &[("reason", "unreachable_reports")], s.unreachable_removals);
        add(&removals, &[("reason", "session_ended")], s.session_removals);
        add(&trouble, &[("reason", "malformed")], s.decode_errors);
        add(&trouble, &[("reason", "dropped")], s.dropped);
        add(&trouble, &[("reason", "too_long")], s.too_long);
        add(&trouble, &[("reason", "keep_alive_unroutable")], s.keep_alives_unroutable);
        add(&sessions, &[], s.sessions_opened);
        add(&pushes, &[], s.subscription_pushes);
        add(&handed_off, &[], s.handed_off);
        set(&elements, s.shard_elements);
        set(&pools, s.shard_pools);
        set(&replica, s.replica_elements);
        set(&subscriptions, s.subscriptions);
        add(&peer_changes, &[("change", "applied")], s.peer_upserts);
        add(&peer_changes, &[("change", "removed")], s.peer_removals);
        add(&peer_changes, &[("change", "refused")], s.peer_rejected);
        add(&peer_changes, &[("change", "stale_claim_refused")], s.peer_claims_refused);
    }
    if context.enrp {
        if let Some(s) = per_core.first() {
            let e = &s.enrp;
            enrp_peers.set(i64::try_from(s.enrp_peers).unwrap_or(i64::MAX));
            let dir = |d: &str| labels(&[("direction", d)]);
            enrp_messages.family.get_or_create(&dir("in")).inc_by(e.received);
            enrp_messages.family.get_or_create(&dir("out")).inc_by(e.sent);
            enrp_updates.family.get_or_create(&dir("in")).inc_by(e.updates_received);
            enrp_updates.family.get_or_create(&dir("out")).inc_by(e.updates_sent);
            let event = |k: &str| labels(&[("event", k)]);
            enrp_events.family.get_or_create(&event("peer_failed")).inc_by(e.peers_failed);
            enrp_events.family.get_or_create(&event("takeover_won")).inc_by(e.takeovers_won);
            enrp_events
                .family
                .get_or_create(&event("takeover_ack_withheld"))
                .inc_by(e.takeover_acks_withheld);
            enrp_events.family.get_or_create(&event("resync")).inc_by(e.resyncs);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_labelled_by_core_and_summed_by_nobody() {
        let per_core = [
            Stats { registrations: 3, resolutions: 10, replica_resolutions: 4, ..Stats::default() },
            Stats { registrations: 5, shard_elements: 2, ..Stats::default() },
        ];
        let context = Context { registrar_id: RegistrarId(0xab), enrp: false };
        let text = exposition(&per_core, context);
        assert!(
            text.contains(
                r#"rserpool_registrar_registrations_total{core="0",outcome="accepted"} 3"#
            ),
            "{text}"
        );
        assert!(text
            .contains(r#"rserpool_registrar_registrations_total{core="1",outcome="accepted"} 5"#));
        assert!(text
            .contains(r#"rserpool_registrar_handle_resolutions_total{core="0",source="shard"} 6"#));
        assert!(text.contains(r#"rserpool_registrar_pool_elements{core="1"} 2"#));
        assert!(text.contains(r#"rserpool_registrar_info{registrar_id="0x000000ab"} 1"#));
        assert!(text.contains("rserpool_registrar_ready 1"), "no ENRP: ready at once");
        assert!(!text.contains("rserpool_registrar_enrp_messages_total{"), "ENRP off: no series");
        assert!(text.ends_with("# EOF\n"));
    }
}
