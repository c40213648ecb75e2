//! `rserpool terminal`: a pool user. Each stdin line goes to the PE in use over its SCTP, TCP
//! or UDP user transport and the reply line is printed. When the PE cannot be reached, does
//! not answer or drops the connection, the terminal reports it to the registrar (Endpoint
//! Unreachable, RFC 5352 §3.5), picks another PE from a fresh resolution and sends the line
//! again. Over SCTP the line is one message (PPID 0, without its newline) and the ASAP
//! control channel runs beside it (PPID 11): the terminal keeps the PE's last cookie and, at
//! a failover, sends it to the next PE in a Cookie Echo before the line (RFC 5352 §3.8).

use std::io::{self, BufRead, BufReader, Read as _, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use asap::blocking::{BlockingError, PoolUser, SctpPoolSession, SessionNote};
use codec::param::UserTransport;
use codec::{PoolElement, PoolHandle};
use transport::Ppid;

use crate::cli::{Global, TerminalArgs};
use crate::format::{endpoints, id_hex, transport_name};
use crate::net::{self, Backend, Registrars};
use crate::say;

/// How long the terminal waits for a stdin line before it runs the SCTP stack again (to
/// answer heartbeats while the user types).
const IDLE_SLICE: Duration = Duration::from_millis(50);

/// How long the SCTP stack runs between two looks at stdin.
const SERVE_SLICE: Duration = Duration::from_millis(5);

/// How long the terminal waits for a stale cache entry before it resolves again, when every
/// PE of the last resolution was reported unreachable.
const STALE_WAIT: Duration = Duration::from_millis(100);

/// stdin lines read ahead of the network.
const LINES_QUEUED_MAX: usize = 64;

/// Longest stdin line; a longer one is cut into lines of this length.
const LINE_LEN_MAX: usize = 60_000;

/// The PPID of lines over SCTP: 0, "unspecified" (RFC 9260 §3.3.1), as for any text.
const SCTP_PPID: Ppid = Ppid(0);

/// Runs the terminal until stdin ends.
pub(crate) fn run(global: &Global, args: &TerminalArgs) -> anyhow::Result<()> {
    let lines = read_stdin();
    let transport = net::transport(global, false)?;
    let local = SocketAddr::new(global.udp.ip(), 0);
    let to_pes = net::sctp_at(global, local, args.pe_udp_port, false)?;
    let mut terminal = Terminal {
        user: PoolUser::new(transport, net::endpoint_config(global), rand::random()),
        sctp: SctpPoolSession::new(to_pes, args.pool, SCTP_PPID),
        pool: args.pool,
        current: None,
        reopen: None,
        registrars: Registrars::new(global),
        global: global.clone(),
        no_reply: args.no_reply,
        failover: Duration::from_millis(args.failover_ms),
    };
    loop {
        match lines.recv_timeout(IDLE_SLICE) {
            Ok(line) => terminal.send(&line)?,
            Err(RecvTimeoutError::Timeout) => terminal.idle()?,
            Err(RecvTimeoutError::Disconnected) => {
                terminal.sctp.close(Duration::from_millis(500));
                terminal.user.driver_mut().close(Duration::from_millis(500));
                return Ok(());
            }
        }
    }
}

/// The pool user and the PE it talks to.
struct Terminal {
    user: PoolUser<Backend>,
    /// The associations to SCTP PEs, with the control channel.
    sctp: SctpPoolSession<Backend>,
    pool: PoolHandle,
    current: Option<(PoolElement, Connection)>,
    /// A PE to connect to again before any other.
    reopen: Option<PoolElement>,
    registrars: Registrars,
    global: Global,
    no_reply: bool,
    failover: Duration,
}

impl Terminal {
    /// Sends one line to a PE and prints its reply, failing over until `--failover-ms`.
    fn send(&mut self, line: &[u8]) -> anyhow::Result<()> {
        let give_up = Instant::now() + self.failover;
        let mut failed_from: Option<u32> = None;
        let mut last_error = String::new();
        let mut retried = false;
        loop {
            if Instant::now() >= give_up && failed_from.is_some() {
                return Err(anyhow::anyhow!(
                    "no PE of pool \"{}\" took the line within {} ms (last: {last_error})",
                    self.pool,
                    self.failover.as_millis()
                ));
            }
            // Whether the exchange below runs on a connection left from an earlier line.
            let mut reused = true;
            if let Some(pe) = self.pe_to_open(give_up)? {
                reused = false;
                let id = pe.id.0;
                if let Err(why) = self.connect(pe, failed_from)? {
                    failed_from.get_or_insert(id);
                    last_error = why;
                    continue;
                }
            }
            // Set: `pe_to_open` left the open connection there, or `connect` just put one
            // there (each failure above went round the loop again).
            let (pe, connection) = self.current.as_mut().expect("opened above");
            let (no_reply, timeout) = (self.no_reply, self.global.timeout());
            let exchanged = match connection {
                Connection::Sctp => {
                    exchange_sctp(&mut self.sctp, &mut self.user, line, no_reply, timeout)
                }
                other => other.exchange(line, no_reply, timeout),
            };
            let pe = pe.clone();
            self.print_notes();
            match exchanged {
                Ok(reply) => {
                    if let Some(reply) = reply {
                        say(String::from_utf8_lossy(trim_newline(&reply)));
                    }
                    return Ok(());
                }
                Err(why) => {
                    self.current = None;
                    if reused && !retried {
                        // The PE may have closed the idle connection as the line left (a
                        // daytime server does): a new connection to it decides.
                        retried = true;
                        self.reopen = Some(pe);
                        continue;
                    }
                    failed_from.get_or_insert(pe.id.0);
                    last_error = self.unreachable(&pe, &why)?;
                }
            }
        }
    }

    /// Opens a connection to `pe` and makes it the one in use, saying so when it replaces
    /// the failed `failed_from`; or says (and reports) why not.
    fn connect(
        &mut self,
        pe: PoolElement,
        failed_from: Option<u32>,
    ) -> anyhow::Result<Result<(), String>> {
        let timeout = self.global.timeout();
        let opened = match pe.user_transport {
            UserTransport::Sctp(_) => match self.sctp.open(&mut self.user, pe.clone(), timeout) {
                Ok(()) => Ok(Connection::Sctp),
                Err(e) => Err(Unusable::Unreachable(in_words(&e))),
            },
            _ => Connection::open(&pe, timeout),
        };
        match opened {
            Ok(connection) => {
                if let Some(from) = failed_from {
                    eprintln!("failover: PE {} -> PE {}", id_hex(from), id_hex(pe.id.0));
                }
                self.print_notes();
                self.current = Some((pe, connection));
                Ok(Ok(()))
            }
            Err(Unusable::Unreachable(why)) => Ok(Err(self.unreachable(&pe, &why)?)),
            Err(Unusable::Unsupported) => {
                let why = format!(
                    "PE {} offers only {}, which the terminal does not speak",
                    id_hex(pe.id.0),
                    transport_name(&pe.user_transport)
                );
                eprintln!("{why}");
                // Round robin moves on at the next selection; do not spin meanwhile.
                self.user.driver_mut().serve(STALE_WAIT)?;
                Ok(Err(why))
            }
        }
    }

    /// The PE to open a connection to: `None` while the one in use is open; the same PE
    /// again when it closed the connection after its reply (a daytime server does, and a PE
    /// that died looks the same until the reconnection fails) or when a reused connection
    /// failed; else one freshly selected.
    fn pe_to_open(&mut self, give_up: Instant) -> anyhow::Result<Option<PoolElement>> {
        if let Some(pe) = self.reopen.take() {
            return Ok(Some(pe));
        }
        match self.current.take() {
            Some((pe, mut connection)) => {
                if connection.is_closed() {
                    return Ok(Some(pe));
                }
                self.current = Some((pe, connection));
                Ok(None)
            }
            None => self.select(give_up).map(Some),
        }
    }

    /// Runs the SCTP stacks a little while no line waits.
    fn idle(&mut self) -> anyhow::Result<()> {
        self.user.driver_mut().serve(SERVE_SLICE)?;
        if matches!(self.current, Some((_, Connection::Sctp))) {
            // Cookies that came after the last reply, and heartbeats. A failure shows at the
            // next line, which then fails over.
            let _ = self.sctp.receive(&mut self.user, Instant::now());
            self.print_notes();
        }
        self.observe();
        Ok(())
    }

    /// One stderr line for each thing the control channel did that the user should see.
    fn print_notes(&mut self) {
        for note in self.sctp.take_notes() {
            match note {
                SessionNote::CookieEchoed { pe } => {
                    eprintln!("cookie echo sent to PE {}", id_hex(pe.0));
                }
                SessionNote::BusinessCard(card) => eprintln!(
                    "business card from the PE: pool \"{}\", {} PEs",
                    card.pool_handle,
                    card.pool_elements.len()
                ),
                SessionNote::ControlDropped(e) => eprintln!("dropped a control message: {e}"),
                SessionNote::InboxFull => eprintln!("dropped a message: too many unread"),
                // A cookie is kept silently: one per line would drown the replies.
                SessionNote::Cookie(_) => {}
            }
        }
    }

    /// A PE from a fresh resolution; when every listed PE was reported unreachable, waits
    /// for the cache to go stale and resolves again, until `give_up`.
    fn select(&mut self, give_up: Instant) -> anyhow::Result<PoolElement> {
        loop {
            let picked = self.user.select(self.pool, self.global.timeout());
            self.observe();
            match picked {
                Ok(pe) => return Ok(pe),
                Err(BlockingError::NoReachablePoolElement(_)) if Instant::now() < give_up => {
                    self.user.driver_mut().serve(STALE_WAIT)?;
                }
                Err(e) => {
                    let home = self.registrars.home();
                    return Err(net::resolution_error(e, &self.pool, home, &self.global));
                }
            }
        }
    }

    /// Says why `pe` failed and reports it to the registrar; returns the message.
    fn unreachable(&mut self, pe: &PoolElement, why: &str) -> anyhow::Result<String> {
        let message = format!(
            "PE {} at {} unreachable: {why}",
            id_hex(pe.id.0),
            endpoints(&pe.user_transport)
        );
        eprintln!("{message}");
        self.user.report_unreachable(&self.pool, pe.id)?;
        Ok(message)
    }

    fn observe(&mut self) {
        for event in self.user.driver_mut().take_events() {
            self.registrars.observe(&event);
        }
    }
}

/// An open exchange with a PE.
enum Connection {
    /// The association of the terminal's [`SctpPoolSession`].
    Sctp,
    Tcp {
        stream: TcpStream,
        reader: BufReader<TcpStream>,
    },
    Udp(UdpSocket),
}

/// Sends `line` as one message on the session's association and waits for one reply (unless
/// `no_reply`); the error says why the PE is to be given up.
fn exchange_sctp(
    sctp: &mut SctpPoolSession<Backend>,
    user: &mut PoolUser<Backend>,
    line: &[u8],
    no_reply: bool,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    sctp.send(line).map_err(|e| in_words(&e))?;
    // With `no_reply`, this only sends: the deadline is now.
    let until = if no_reply { Instant::now() } else { Instant::now() + timeout };
    match sctp.receive(user, until) {
        Ok(_) if no_reply => Ok(None),
        Ok(Some(reply)) => Ok(Some(reply)),
        Ok(None) => Err(format!("no reply within {} ms", timeout.as_millis())),
        Err(e) => Err(in_words(&e)),
    }
}

/// A session error in the words of an unreachable line (the PE is named there already).
fn in_words(e: &BlockingError) -> String {
    match e {
        BlockingError::PoolElementFailed { why, .. } => why.as_str().to_owned(),
        other => other.to_string(),
    }
}

/// Why a PE could not be used.
enum Unusable {
    /// Its transport is one the terminal does not speak (not reported to the registrar).
    Unsupported,
    /// It did not accept the connection.
    Unreachable(String),
}

impl Connection {
    fn open(pe: &PoolElement, timeout: Duration) -> Result<Self, Unusable> {
        let failed = |e: io::Error| Unusable::Unreachable(e.to_string());
        match pe.user_transport {
            UserTransport::Tcp { port, address, .. } => {
                let stream = TcpStream::connect_timeout(&SocketAddr::new(address, port), timeout)
                    .map_err(failed)?;
                stream.set_read_timeout(Some(timeout)).map_err(failed)?;
                stream.set_nodelay(true).map_err(failed)?;
                let reader = BufReader::new(stream.try_clone().map_err(failed)?);
                Ok(Self::Tcp { stream, reader })
            }
            UserTransport::Udp { port, address } => {
                let any = match address {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                let socket = UdpSocket::bind(SocketAddr::new(any, 0)).map_err(failed)?;
                socket.connect(SocketAddr::new(address, port)).map_err(failed)?;
                socket.set_read_timeout(Some(timeout)).map_err(failed)?;
                Ok(Self::Udp(socket))
            }
            _ => Err(Unusable::Unsupported),
        }
    }

    /// Sends `line` and reads one reply line (unless `no_reply`); the error says why the PE
    /// is to be given up.
    fn exchange(
        &mut self,
        line: &[u8],
        no_reply: bool,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, String> {
        let mut reply = Vec::new();
        let timed_out = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("no reply within {} ms", timeout.as_millis())
            }
            _ => e.to_string(),
        };
        match self {
            Self::Tcp { stream, reader } => {
                let mut framed = line.to_vec();
                framed.push(b'\n');
                stream.write_all(&framed).map_err(|e| e.to_string())?;
                if no_reply {
                    return Ok(None);
                }
                let n = reader.read_until(b'\n', &mut reply).map_err(timed_out)?;
                if n == 0 {
                    return Err("closed the connection".to_owned());
                }
            }
            Self::Udp(socket) => {
                socket.send(line).map_err(|e| e.to_string())?;
                if no_reply {
                    return Ok(None);
                }
                reply.resize(65_536, 0);
                let n = socket.recv(&mut reply).map_err(timed_out)?;
                reply.truncate(n);
            }
            Self::Sctp => unreachable!("SCTP exchanges go through exchange_sctp"),
        }
        Ok(Some(reply))
    }

    /// Whether the PE closed a TCP connection after its last reply (a daytime server does);
    /// that is no failure, the next line just opens a new connection.
    fn is_closed(&mut self) -> bool {
        // An SCTP association that failed shows at the next exchange, which reopens it.
        let Self::Tcp { stream, reader } = self else { return false };
        if !reader.buffer().is_empty() {
            return false;
        }
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let closed = match stream.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        closed || stream.set_nonblocking(false).is_err()
    }
}

/// Reads stdin lines (without their newline) on a thread; the channel ends with stdin.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (lines, out) = mpsc::sync_channel(LINES_QUEUED_MAX);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = (&mut stdin).take(LINE_LEN_MAX as u64).read_until(b'\n', &mut line);
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if lines.send(trim_newline(&line).to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    out
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use codec::param::Policy;
    use codec::{PoolElementId, RegistrarId, TransportUse};

    use super::*;

    fn tcp_pe(port: u16) -> PoolElement {
        let address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        PoolElement {
            id: PoolElementId(1),
            home_registrar: RegistrarId(1),
            registration_life_ms: 1_000,
            user_transport: UserTransport::Tcp {
                port,
                transport_use: TransportUse::DATA_ONLY,
                address,
            },
            policy: Policy::RoundRobin,
            asap_transport: None,
        }
    }

    // Goal: line ends of either kind are cut, and only one of them.
    #[test]
    fn newlines_are_trimmed() {
        assert_eq!(trim_newline(b"a\r\n"), b"a");
        assert_eq!(trim_newline(b"a\n"), b"a");
        assert_eq!(trim_newline(b"a"), b"a");
        assert_eq!(trim_newline(b"a\n\n"), b"a\n");
    }

    // Goal: a PE that closes before answering, or never answers, is a failure with a reason;
    // one that answers and then closes is not, and is seen as closed afterwards. Method: a
    // scripted TCP server on loopback per case.
    #[test]
    fn exchange_failures_have_reasons() {
        let timeout = Duration::from_millis(200);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            // First client: closed at once. Second: never answered. Third: answered, closed.
            drop(listener.accept().unwrap());
            let (silent, _) = listener.accept().unwrap();
            let (mut answered, _) = listener.accept().unwrap();
            answered.write_all(b"hi\r\n").unwrap();
            drop(answered);
            std::thread::sleep(Duration::from_millis(500));
            drop(silent);
        });
        let pe = tcp_pe(port);
        let Ok(mut closing) = Connection::open(&pe, timeout) else { panic!() };
        // An EOF or a reset, depending on whether our line reached the closed socket first.
        let why = closing.exchange(b"x", false, timeout).err().unwrap();
        assert!(why == "closed the connection" || why.contains("reset"), "{why}");
        let Ok(mut silent) = Connection::open(&pe, timeout) else { panic!() };
        assert_eq!(silent.exchange(b"x", false, timeout).err().unwrap(), "no reply within 200 ms");
        let Ok(mut answered) = Connection::open(&pe, timeout) else { panic!() };
        assert_eq!(answered.exchange(b"x", false, timeout).ok().unwrap().unwrap(), b"hi\r\n");
        std::thread::sleep(Duration::from_millis(50));
        assert!(answered.is_closed());
        server.join().unwrap();
        let refused = Connection::open(&tcp_pe(port), timeout);
        assert!(matches!(refused, Err(Unusable::Unreachable(_))));
    }
}
