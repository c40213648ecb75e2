//! An SNMP AgentX subagent (RFC 2741) serving RFC 5525's RSERPOOL-MIB, read-only. Off by
//! default (`[snmp] agentx = "..."`, `--snmp-agentx`).
//!
//! ```text
//!  snmpwalk ─UDP─▶ snmpd (master) ─AgentX─▶ registrar-agentx thread ─mailboxes─▶ cores
//!                                   Unix socket or TCP     (snapshot, cached 1 s)
//! ```
//!
//! One thread, off the cores. It connects to the master, opens a session (§7.1.1), registers
//! `rserpoolMIBObjects` (1.3.6.1.3.125.1, §7.1.5) and answers Get, GetNext and GetBulk from
//! a [`mib::Mib`] built from a management snapshot of every core (`management.rs`). The
//! snapshot is cached for [`SNAPSHOT_TTL`] (1 s): a walk is hundreds of GetNext PDUs (or
//! tens of GetBulk), and asking the cores for each would cost them a turn per PDU and make
//! the walk see rows move under it. A core that does not answer within the management
//! model's 2 s makes the request fail with genErr; the next request tries again.
//!
//! Sets are refused (notWritable; the MIB's read-write objects are served read-only), and a
//! request in a non-default context gets unsupportedContext. A PDU whose payload does not
//! decode gets a parseError response; a header that does not (a version other than 1, a
//! length over [`pdu::PAYLOAD_MAX`]) loses the framing, so the session is closed with
//! reasonParseError and opened again. When the master goes away (snmpd stopped) the thread
//! retries every [`RETRY`] until it comes back, then opens and registers again; the
//! registrar itself is never stopped or slowed by any of this.
//!
//! The encoding (`pdu.rs`) is written here. The one Rust crate for it, `agentx` 0.1 (LINBIT,
//! used by drbd-reactor), encodes every PDU type and would have worked, but it reports every
//! decoding failure as a bare `io::ErrorKind::InvalidData` (the house style wants the field
//! and offset, STYLE.md §2), checks neither `h.version` nor `h.payload_length` (a multiple
//! of 4, capped: framing is left to its user), and never emits prefix-compressed OIDs; the
//! part a read-only subagent needs is a few hundred lines, tested here byte by byte.
//!
//! Served: `rserpoolENRPTable` (the local row), `rserpoolENRPPoolTable`,
//! `rserpoolENRPPoolElementTable`, `rserpoolENRPASAPAddrTable`, `rserpoolENRPUserAddrTable`,
//! `rserpoolENRPENRPAddrTable` (from the configuration: the address our ENRP endpoint is
//! reached at), `rserpoolENRPPeerTable`, `rserpoolENRPPeerAddrTable`; indexes as `mib.rs`
//! says (positions, 1-based). Not served: the PE and PU branches (`rserpoolPoolElements`,
//! `rserpoolPoolUsers`: they describe PE and PU processes, not a registrar), and the
//! registrar's counters, for which RFC 5525 has no objects (they are on the Prometheus
//! endpoint). `rserpoolENRPDescription` is a fixed text and, like every read-write object,
//! read-only here.
//!
//! Limits: at most 10 000 pools and 10 000 PEs a core are listed (the management model's
//! caps); a refresh asks every core for all its PEs, about a millisecond of one turn of each
//! core at 10 000 PEs, at most once a second and only while someone walks; no traps
//! (Notify); one context, the default; no agentx-Ping, so a master that vanishes without
//! closing the connection (possible only for a TCP master on another host) is noticed when a
//! write to it fails.

pub mod mib;
pub mod pdu;

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use codec::RegistrarId;

use self::mib::{Data, Mib, RSERPOOL_MIB, RSERPOOL_MIB_OBJECTS};
use self::pdu::{close_reason, error, Body, DecodeError, Header, Oid, Pdu, PduType, HEADER_LEN};
use super::management::{Answer, Elements, EnrpServerEntry, Management, Request};
use crate::config::Config;

/// How long a snapshot serves requests before the cores are asked again.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(1);
/// How long to wait between attempts to reach the master.
pub const RETRY: Duration = Duration::from_secs(3);
/// How long the master has to answer our Open and Register.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How often a blocked read looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);
/// `o.timeout`, seconds the master waits for our answers (net-snmp's default is 1 s; a
/// snapshot may take up to the management model's 2 s).
const SESSION_TIMEOUT: u8 = 5;

/// Where the master agent listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Master {
    /// A Unix stream socket (net-snmp's default: `/var/agentx/master`).
    Unix(std::path::PathBuf),
    /// TCP, `host:port` (net-snmp's `agentXSocket tcp:127.0.0.1:705`).
    Tcp(String),
}

impl Master {
    /// `tcp:HOST:PORT`, `HOST:PORT` (anything with a colon and no slash) or a socket path.
    pub fn parse(text: &str) -> Self {
        if let Some(rest) = text.strip_prefix("tcp:") {
            return Self::Tcp(rest.to_string());
        }
        if let Some(rest) = text.strip_prefix("unix:") {
            return Self::Unix(rest.into());
        }
        if text.contains(':') && !text.contains('/') {
            Self::Tcp(text.to_string())
        } else {
            Self::Unix(text.into())
        }
    }
}

/// What the subagent thread serves from.
pub struct Context {
    /// The effective configuration (the local ENRP server row).
    pub config: Config,
    /// The registrar id in use.
    pub registrar_id: RegistrarId,
    /// When the registrar started (`rserpoolENRPUptime`, `res.sysUpTime`).
    pub started: Instant,
    /// The cores' mailboxes.
    pub management: Management,
}

/// Starts the subagent thread; it runs until `stop` is set.
pub fn spawn(
    master: Master,
    context: Context,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<io::Result<()>>> {
    std::thread::Builder::new().name("registrar-agentx".into()).spawn(move || {
        let mut source = Snapshots::new(context);
        let mut logged_down = false;
        while !stop.load(Ordering::Relaxed) {
            match session(&master, &mut source, &stop) {
                Ok(()) => {}
                Err(e) if !logged_down => {
                    let what = "AgentX master unreachable; retrying";
                    tracing::warn!(master = ?master, error = %e, "{what}");
                    logged_down = true;
                }
                Err(e) => tracing::debug!(master = ?master, error = %e, "AgentX master"),
            }
            if source.served {
                // A session that worked and ended: warn again when the next attempt fails.
                logged_down = false;
                source.served = false;
            }
            sleep_unless_stopped(RETRY, &stop);
        }
        Ok(())
    })
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let Some(left) = end.checked_duration_since(Instant::now()) else { return };
        std::thread::sleep(left.min(STOP_POLL));
    }
}

/// A Unix or TCP stream to the master.
enum Stream {
    #[cfg(unix)]
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(master: &Master) -> io::Result<Self> {
        let stream = match master {
            #[cfg(unix)]
            Master::Unix(path) => Self::Unix(UnixStream::connect(path)?),
            #[cfg(not(unix))]
            Master::Unix(_) => return Err(io::Error::other("no Unix sockets here")),
            Master::Tcp(address) => {
                use std::net::ToSocketAddrs;
                let mut last = io::Error::other("no address");
                let mut found = None;
                for a in address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&a, ANSWER_WAIT) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or(last)?;
                s.set_nodelay(true)?;
                Self::Tcp(s)
            }
        };
        match &stream {
            #[cfg(unix)]
            Self::Unix(s) => s.set_read_timeout(Some(STOP_POLL))?,
            Self::Tcp(s) => s.set_read_timeout(Some(STOP_POLL))?,
        }
        match &stream {
            #[cfg(unix)]
            Self::Unix(s) => s.set_write_timeout(Some(ANSWER_WAIT))?,
            Self::Tcp(s) => s.set_write_timeout(Some(ANSWER_WAIT))?,
        }
        Ok(stream)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Self::Unix(s) => s.read(buf),
            Self::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Self::Unix(s) => s.write(buf),
            Self::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Self::Unix(s) => s.flush(),
            Self::Tcp(s) => s.flush(),
        }
    }
}

/// One frame read from the master.
pub enum Frame {
    /// A PDU that decoded.
    Pdu(Pdu),
    /// A header that decoded, a payload that did not: answer parseError.
    BadPayload(Header, DecodeError),
}

/// Splits a byte stream into PDUs: the header says how long each one is.
#[derive(Default)]
pub struct Framer {
    buffer: Vec<u8>,
}

impl Framer {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed, or the header error that
    /// makes the rest of the stream unreadable.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = Header::parse(&self.buffer[..HEADER_LEN])?;
        let total = HEADER_LEN + header.payload_length as usize;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buffer.drain(..total).collect();
        Ok(Some(match Pdu::parse(&frame) {
            Ok(pdu) => Frame::Pdu(pdu),
            Err(e) => Frame::BadPayload(header, e),
        }))
    }
}

/// The management snapshot, cached.
struct Snapshots {
    context: Context,
    cached: Option<(Instant, Arc<Mib>)>,
    /// A session got as far as registering (for the thread's logging).
    served: bool,
    /// A cut listing was logged (once: it would be again every second of a walk).
    warned_truncated: bool,
}

impl Snapshots {
    fn new(context: Context) -> Self {
        Self { context, cached: None, served: false, warned_truncated: false }
    }

    fn uptime_ticks(&self) -> u32 {
        u32::try_from(self.context.started.elapsed().as_millis() / 10).unwrap_or(u32::MAX)
    }

    /// The MIB at most [`SNAPSHOT_TTL`] old, or `None` when a core did not answer.
    fn mib(&mut self) -> Option<Arc<Mib>> {
        if let Some((at, mib)) = &self.cached {
            if at.elapsed() < SNAPSHOT_TTL {
                return Some(mib.clone());
            }
        }
        let answers = self.context.management.ask_all(Request::Snapshot(Elements::All));
        let answers = match answers {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(core = e.core, "AgentX: a core did not answer the snapshot");
                return None;
            }
        };
        let mut data = Data {
            server: Some(EnrpServerEntry::new(
                &self.context.config,
                self.context.registrar_id,
                self.context.started,
            )),
            enrp_addresses: enrp_addresses(&self.context.config),
            ..Data::default()
        };
        for answer in answers {
            if let Answer::Snapshot(s) = answer {
                let s = *s;
                if (s.pools_truncated || s.elements_truncated) && !self.warned_truncated {
                    tracing::warn!(core = s.core, "AgentX: the core's listing was cut at 10 000");
                    self.warned_truncated = true;
                }
                data.pools.extend(s.pools);
                data.elements.extend(s.elements);
                data.peers.extend(s.peers.unwrap_or_default());
            }
        }
        let mib = Arc::new(Mib::build(&data));
        self.cached = Some((Instant::now(), mib.clone()));
        Some(mib)
    }
}

/// Our ENRP endpoint's addresses as the configuration gives them (a wildcard address is not
/// one a peer can use, so it is left out).
fn enrp_addresses(config: &Config) -> Vec<std::net::IpAddr> {
    if !config.enrp.enabled {
        return Vec::new();
    }
    let ip = config.enrp_address().ip();
    if ip.is_unspecified() {
        return Vec::new();
    }
    vec![ip]
}

/// The answer to one request from the master, or `None` for a PDU that takes none.
/// `mib` is called only for the requests that read it.
pub fn answer(
    pdu: &Pdu,
    sys_up_time: u32,
    mib: &mut dyn FnMut() -> Option<Arc<Mib>>,
) -> Option<Pdu> {
    let h = &pdu.header;
    let respond = |error: u16, index: u16, varbinds| {
        let body = Body::Response { sys_up_time, error, index, varbinds };
        Some(Pdu::new(PduType::RESPONSE, h.session_id, h.transaction_id, h.packet_id, body))
    };
    let reads = matches!(pdu.body, Body::Get(_) | Body::GetNext(_) | Body::GetBulk { .. });
    if reads && pdu.context.is_some() {
        return respond(error::UNSUPPORTED_CONTEXT, 0, Vec::new());
    }
    let get_mib = |mib: &mut dyn FnMut() -> Option<Arc<Mib>>| mib();
    match &pdu.body {
        Body::Get(ranges) => match get_mib(mib) {
            Some(m) => {
                respond(error::NO_ERROR, 0, ranges.iter().map(|r| m.get(&r.start)).collect())
            }
            None => respond(error::GEN_ERR, 1, Vec::new()),
        },
        Body::GetNext(ranges) => match get_mib(mib) {
            Some(m) => respond(error::NO_ERROR, 0, ranges.iter().map(|r| m.next(r)).collect()),
            None => respond(error::GEN_ERR, 1, Vec::new()),
        },
        Body::GetBulk { non_repeaters, max_repetitions, ranges } => match get_mib(mib) {
            Some(m) => {
                respond(error::NO_ERROR, 0, m.bulk(*non_repeaters, *max_repetitions, ranges))
            }
            None => respond(error::GEN_ERR, 1, Vec::new()),
        },
        // Responses (to our own PDUs) and Close are the session loop's business; CleanupSet
        // takes no response (§7.2.4.4).
        Body::Response { .. } | Body::Close { .. } => None,
        Body::Other(_) if h.ty == PduType::CLEANUP_SET => None,
        Body::Other(_) if h.ty == PduType::TEST_SET => respond(error::NOT_WRITABLE, 1, Vec::new()),
        Body::Other(_) if h.ty == PduType::PING => respond(error::NO_ERROR, 0, Vec::new()),
        Body::Other(_) => respond(error::PROCESSING_ERROR, 0, Vec::new()),
        // A master never sends these to a subagent.
        Body::Open { .. } | Body::Register { .. } => {
            respond(error::PROCESSING_ERROR, 0, Vec::new())
        }
    }
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads until a whole frame arrives, the stop flag is set (`Ok(None)`), or `deadline`.
fn read_frame(
    stream: &mut Stream,
    framer: &mut Framer,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> io::Result<Option<Frame>> {
    let mut chunk = [0u8; 4096];
    loop {
        match framer.next_frame() {
            Ok(Some(frame)) => return Ok(Some(frame)),
            Ok(None) => {}
            Err(e) => {
                let close = Pdu::new(
                    PduType::CLOSE,
                    0,
                    0,
                    0,
                    Body::Close { reason: close_reason::PARSE_ERROR },
                );
                let _ = stream.write_all(&close.emit());
                return Err(protocol_error(format!("unreadable PDU header: {e}")));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer from the master"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "master closed")),
            Ok(n) => framer.push(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends `request` and waits for the master's Response to it (same packet id).
fn exchange(
    stream: &mut Stream,
    framer: &mut Framer,
    stop: &AtomicBool,
    request: &Pdu,
) -> io::Result<Option<(u32, u16)>> {
    stream.write_all(&request.emit())?;
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        let Some(frame) = read_frame(stream, framer, stop, Some(deadline))? else {
            return Ok(None);
        };
        match frame {
            Frame::Pdu(Pdu { header, body: Body::Response { error, .. }, .. })
                if header.packet_id == request.header.packet_id =>
            {
                return Ok(Some((header.session_id, error)));
            }
            Frame::Pdu(Pdu { body: Body::Close { reason }, .. }) => {
                return Err(protocol_error(format!("master closed the session (reason {reason})")));
            }
            // Anything else before the session is up is not for us; drop it.
            _ => {}
        }
    }
}

/// One session: connect, open, register, serve until the master goes or `stop` is set.
fn session(master: &Master, source: &mut Snapshots, stop: &AtomicBool) -> io::Result<()> {
    let mut stream = Stream::connect(master)?;
    let mut framer = Framer::default();
    let open = Pdu::new(
        PduType::OPEN,
        0,
        0,
        1,
        Body::Open {
            timeout: SESSION_TIMEOUT,
            id: Oid(RSERPOOL_MIB.to_vec()),
            descr: b"rserpool registrar (RSERPOOL-MIB, RFC 5525)".to_vec(),
        },
    );
    let Some((session_id, err)) = exchange(&mut stream, &mut framer, stop, &open)? else {
        return Ok(());
    };
    if err != error::NO_ERROR {
        return Err(protocol_error(format!("Open refused (error {err})")));
    }
    let register = Pdu::new(
        PduType::REGISTER,
        session_id,
        0,
        2,
        Body::Register { timeout: 0, priority: 127, subtree: Oid(RSERPOOL_MIB_OBJECTS.to_vec()) },
    );
    let Some((_, err)) = exchange(&mut stream, &mut framer, stop, &register)? else {
        return Ok(());
    };
    if err != error::NO_ERROR {
        return Err(protocol_error(format!("Register refused (error {err})")));
    }
    tracing::info!(master = ?master, session_id, "AgentX session open; RSERPOOL-MIB registered");
    source.served = true;
    loop {
        let Some(frame) = read_frame(&mut stream, &mut framer, stop, None)? else {
            let close = Pdu::new(
                PduType::CLOSE,
                session_id,
                0,
                3,
                Body::Close { reason: close_reason::SHUTDOWN },
            );
            let _ = stream.write_all(&close.emit());
            return Ok(());
        };
        let reply = match frame {
            Frame::Pdu(Pdu { body: Body::Close { reason }, .. }) => {
                return Err(protocol_error(format!("master closed the session (reason {reason})")));
            }
            Frame::Pdu(pdu) => {
                let ticks = source.uptime_ticks();
                answer(&pdu, ticks, &mut || source.mib())
            }
            Frame::BadPayload(h, e) => {
                tracing::debug!(error = %e, "AgentX: undecodable PDU from the master");
                let body = Body::Response {
                    sys_up_time: 0,
                    error: error::PARSE_ERROR,
                    index: 0,
                    varbinds: Vec::new(),
                };
                Some(Pdu::new(PduType::RESPONSE, h.session_id, h.transaction_id, h.packet_id, body))
            }
        };
        if let Some(reply) = reply {
            stream.write_all(&reply.emit())?;
        }
    }
}

#[cfg(test)]
mod tests;
