//! `faultq`: the fault lab's NFQUEUE shim for delay, jitter, reordering and duplication (this
//! machine's kernel has no `netem`; NFQUEUE and the xtables NFQUEUE target are built in).
//!
//! An iptables rule in a node's namespace hands the node's outgoing packets to queue `--queue`
//! (`-j NFQUEUE --queue-bypass`, skipping packets that carry `--mark`); this shim, running in
//! the same namespace, holds each packet and accepts it when it is due:
//! - every packet is due `--delay-ms` plus a uniform draw in `0..=--jitter-ms` after it
//!   arrived (jitter larger than the gap between packets reorders them);
//! - `--reorder-pct` of the packets are accepted at once instead, overtaking the held ones
//!   (netem's `reorder`);
//! - `--duplicate-pct` of the packets are also sent a second time, a fresh delay later, as a
//!   copy written to a raw socket with `--mark` set so the copy is not queued again (IPv4
//!   only; a copy of an IPv6 packet, or of one longer than the copy range, is skipped and
//!   counted).
//!
//! Verdicts are given out of order, which NFQUEUE allows. The netlink socket is read without
//! blocking every `--tick-us`, so that is the shim's time resolution. On SIGTERM, SIGINT or
//! `--run-seconds` it accepts every packet it still holds and exits, printing its counts; if it
//! dies instead, `--queue-bypass` lets the node's packets through. Packets the kernel drops
//! from the queue while they are held (it flushes a namespace's queued packets when one of its
//! netfilter hooks goes away, as when the lab deletes its loss table) are counted as
//! `verdicts_unknown`: the kernel answers their verdict with ENOENT. `copy_errors` counts
//! duplicates the node's own rules refused (the lab's loss rule drops them on output too).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use nfq::{Message, Queue, Verdict};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

/// Bytes of each packet copied to us: the lab's datagrams fit (MTU 1500), and a held packet
/// pins a receive buffer of about this size.
const COPY_RANGE: u16 = 2048;

/// NFQUEUE delay, jitter, reordering and duplication shim.
#[derive(Parser, Debug)]
#[command(name = "faultq", version, about)]
struct Cli {
    /// NFQUEUE number to bind (the iptables rule's --queue-num).
    #[arg(long, default_value_t = 0)]
    queue: u16,
    /// Fixed delay of every held packet, in ms.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    delay_ms: u64,
    /// Added uniform delay in 0..=JITTER ms per packet.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    jitter_ms: u64,
    /// Percent of packets accepted at once, overtaking the held ones.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    reorder_pct: u8,
    /// Percent of packets also sent a second time.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    duplicate_pct: u8,
    /// Firewall mark set on duplicates; the iptables rule must skip packets carrying it.
    #[arg(long, default_value_t = 7)]
    mark: u32,
    /// Kernel queue length (packets past it are accepted unqueued: fail open).
    #[arg(long, default_value_t = 8192)]
    queue_max_len: u32,
    /// How often the queue is read, in µs (the shim's time resolution).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=100_000))]
    tick_us: u64,
    /// Random seed (default: from the OS).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this long.
    #[arg(long, default_value_t = 300)]
    run_seconds: u64,
}

/// What is waiting to go out: a queued packet's verdict, or a duplicate to write.
enum Held {
    Verdict(Message),
    Copy(Vec<u8>),
}

#[derive(Default)]
struct Counts {
    packets: u64,
    reordered: u64,
    duplicated: u64,
    copies_skipped: u64,
    copy_errors: u64,
    verdicts_unknown: u64,
}

/// Packets ordered by when they are due (`seq` keeps arrival order among equal times).
struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: std::collections::HashMap<u64, Held>,
    seq: u64,
}

impl Schedule {
    fn push(&mut self, due: Instant, held: Held) {
        self.seq += 1;
        self.heap.push(Reverse((due, self.seq)));
        self.items.insert(self.seq, held);
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        let &Reverse((due, seq)) = self.heap.peek()?;
        if due > now {
            return None;
        }
        self.heap.pop();
        self.items.remove(&seq)
    }
}

/// An IPv4 raw socket (`IPPROTO_RAW`: we write whole IP headers) whose packets carry `mark`.
struct RawSender {
    fd: libc::c_int,
}

impl RawSender {
    fn open(mark: u32) -> anyhow::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned by the returned value.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("raw socket (needs CAP_NET_RAW)");
        }
        let sender = Self { fd };
        // SAFETY: `mark` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_MARK,
                (&mark as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error()).context("SO_MARK (needs CAP_NET_ADMIN)");
        }
        Ok(sender)
    }

    /// Writes one whole IPv4 packet to its destination address.
    fn send(&self, packet: &[u8]) -> std::io::Result<()> {
        let dst = ipv4_destination(packet)
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "not an IPv4 packet"))?;
        // SAFETY: sockaddr_in is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        // SAFETY: `packet` and `addr` are valid for the lengths passed.
        let rc = unsafe {
            libc::sendto(
                self.fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.fd) };
    }
}

/// The destination of an IPv4 packet, or `None` when `packet` is not one.
fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("signal handler")?;
    }
    let mut rng = match cli.seed {
        Some(s) => SmallRng::seed_from_u64(s),
        None => SmallRng::from_os_rng(),
    };
    let raw = if cli.duplicate_pct > 0 { Some(RawSender::open(cli.mark)?) } else { None };

    let mut queue = Queue::open().context("netlink socket for NFQUEUE")?;
    queue.bind(cli.queue).with_context(|| format!("bind NFQUEUE {}", cli.queue))?;
    queue.set_copy_range(cli.queue, COPY_RANGE).context("copy range")?;
    queue.set_fail_open(cli.queue, true).context("fail open")?;
    queue.set_queue_max_len(cli.queue, cli.queue_max_len).context("queue length")?;
    queue.set_nonblocking(true);
    eprintln!(
        "faultq: queue {} delay {} ms jitter {} ms reorder {}% duplicate {}%",
        cli.queue, cli.delay_ms, cli.jitter_ms, cli.reorder_pct, cli.duplicate_pct
    );

    let delay = |rng: &mut SmallRng| {
        Duration::from_millis(cli.delay_ms + rng.random_range(0..=cli.jitter_ms))
    };
    let deadline = Instant::now() + Duration::from_secs(cli.run_seconds);
    let tick = Duration::from_micros(cli.tick_us);
    let mut schedule =
        Schedule { heap: BinaryHeap::new(), items: std::collections::HashMap::new(), seq: 0 };
    let mut counts = Counts::default();
    let release = |held: Held, queue: &mut Queue, counts: &mut Counts| -> anyhow::Result<()> {
        match held {
            Held::Verdict(msg) => queue.verdict(msg).context("verdict")?,
            Held::Copy(packet) => {
                if let Some(raw) = &raw {
                    if raw.send(&packet).is_err() {
                        counts.copy_errors += 1;
                    }
                }
            }
        }
        Ok(())
    };

    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        loop {
            let mut msg = match queue.recv() {
                Ok(msg) => msg,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // The answer to an earlier verdict: the kernel no longer held that packet (it
                // drops what a queue holds when a netfilter hook of the namespace goes, as
                // when the lab deletes its loss table). That packet is lost, the shim is not.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    counts.verdicts_unknown += 1;
                    continue;
                }
                Err(e) => bail!("NFQUEUE receive: {e}"),
            };
            counts.packets += 1;
            let now = Instant::now();
            if cli.duplicate_pct > 0 && rng.random_range(0..100u8) < cli.duplicate_pct {
                let payload = msg.get_payload();
                if ipv4_destination(payload).is_some() && msg.get_original_len() == payload.len() {
                    counts.duplicated += 1;
                    let copy = payload.to_vec();
                    schedule.push(now + delay(&mut rng), Held::Copy(copy));
                } else {
                    counts.copies_skipped += 1;
                }
            }
            msg.set_verdict(Verdict::Accept);
            if cli.reorder_pct > 0 && rng.random_range(0..100u8) < cli.reorder_pct {
                counts.reordered += 1;
                queue.verdict(msg).context("verdict")?;
            } else {
                schedule.push(now + delay(&mut rng), Held::Verdict(msg));
            }
        }
        let now = Instant::now();
        while let Some(held) = schedule.pop_due(now) {
            release(held, &mut queue, &mut counts)?;
        }
        let wake = schedule.next_due().map_or(now + tick, |t| t.min(now + tick));
        std::thread::sleep(wake.saturating_duration_since(now));
    }
    // Whatever is still held goes out now, in due order.
    let far = Instant::now() + Duration::from_secs(3600);
    while let Some(held) = schedule.pop_due(far) {
        release(held, &mut queue, &mut counts)?;
    }
    let _ = queue.unbind(cli.queue);
    let Counts { packets, reordered, duplicated, copies_skipped, copy_errors, verdicts_unknown } =
        counts;
    // lab.sh reads this line: a shim that saw no packet injected nothing.
    eprintln!(
        "faultq: packets={packets} reordered={reordered} duplicated={duplicated} \
         copies_skipped={copies_skipped} copy_errors={copy_errors} \
         verdicts_unknown={verdicts_unknown}"
    );
    Ok(())
}
