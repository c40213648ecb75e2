//! The history: one JSON object per line, one line per client operation or fault.
//!
//! ```text
//! {"t_us":1700000000000000,"process":"pe1","kind":"register","pool":"P","pe":17,"registrar":"10.77.0.11:3863","outcome":"ok"}
//! {"t_us":1700000000100000,"process":"probe","kind":"probe","pool":"P","registrar":"r1","outcome":"ok","pes":[17,18]}
//! {"t_us":1700000000200000,"process":"r1","kind":"fault","fault":"kill","outcome":"ok"}
//! ```
//!
//! Times are microseconds since the Unix epoch, read by each process from the one host clock
//! (namespaces share it), so lines from different files merge by `t_us`.

use serde::{Deserialize, Serialize};

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A PE's registration: `invoke` when it starts, `ok` when a registrar acknowledged it
    /// (first time, or at a new home), `fail` when the PE gave up.
    Register,
    /// A PE's deregistration: `invoke` before the request, then `ok` or `fail`.
    Deregister,
    /// A PU's handle resolution; `pes` lists what it returned.
    Resolve,
    /// The lab's observer resolving at one named registrar (`registrar` is the node name).
    Probe,
    /// A PU's request to a PE (echo over TCP); `pe` is the PE that answered.
    Request,
    /// A PU gave up on PE `pe` and was served by `target` (a PE id in hex) in the same request.
    Failover,
    /// Registrar `registrar` (id in hex) won the takeover of registrar `target` (id in hex).
    Takeover,
    /// Registrar `registrar` (id in hex) has an association with peer `target` (id in hex)
    /// again, or for the first time: whatever failure of `target` came before is over.
    PeerUp,
    /// A fault injected on node `process` (see [`Fault`]).
    Fault,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Started; the result follows in a later entry.
    Invoke,
    /// Succeeded (for faults: applied).
    Ok,
    /// Failed or timed out.
    Fail,
}

/// A fault, applied to the node named by the entry's `process`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The node's process was started (the first time or again); a registrar's entry names
    /// the id of this incarnation in `registrar`.
    Start,
    /// `kill -9`.
    Kill,
    /// `SIGSTOP`.
    Stop,
    /// `SIGCONT` after a stop.
    Cont,
    /// nftables cut the node off from the nodes listed in `detail` (both ways, or one way
    /// when `detail` says so).
    Partition,
    /// The node's partition rules were removed.
    Heal,
    /// nftables drop a random share of the node's packets (`numgen random`); the node stays
    /// reachable, so this does not excuse the system from any property.
    Loss,
    /// The loss rule was removed.
    LossEnd,
    /// The node's outgoing packets go through the NFQUEUE shim (`faultq`): delayed, jittered,
    /// reordered or duplicated as `detail` says. The node stays reachable, so, like loss,
    /// this excuses nothing.
    Delay,
    /// The shim's rule was removed and the shim stopped.
    DelayEnd,
}

impl Fault {
    /// Whether the fault makes its node dead or unreachable until it is undone.
    pub fn disturbs(self) -> bool {
        matches!(self, Self::Kill | Self::Stop | Self::Partition)
    }

    /// Whether the fault undoes a disturbing one (a start undoes a kill).
    pub fn restores(self) -> bool {
        matches!(self, Self::Start | Self::Cont | Self::Heal)
    }
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Microseconds since the Unix epoch.
    pub t_us: u64,
    /// The process (client) or node (faults) the entry is about: `pe1`, `pu1`, `r2`.
    pub process: String,
    /// What happened.
    pub kind: Kind,
    /// How it ended.
    pub outcome: Outcome,
    /// The fault, for [`Kind::Fault`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// The pool handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The PE identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<u32>,
    /// The registrar: an address, a node name (probes) or an id in hex (takeovers, starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// A resolution's PE identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pes: Vec<u32>,
    /// A takeover's target registrar id, or a failover's new PE id, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Free text: an error, a fault's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Entry {
    /// An entry with only the required fields set.
    pub fn new(t_us: u64, process: &str, kind: Kind, outcome: Outcome) -> Self {
        Self {
            t_us,
            process: process.to_owned(),
            kind,
            outcome,
            fault: None,
            pool: None,
            pe: None,
            registrar: None,
            pes: Vec::new(),
            target: None,
            detail: None,
        }
    }

    /// A fault entry.
    pub fn fault(t_us: u64, node: &str, fault: Fault) -> Self {
        Self { fault: Some(fault), ..Self::new(t_us, node, Kind::Fault, Outcome::Ok) }
    }
}

/// Parses a history: one entry per non-empty line, sorted by time (stable, so that lines of
/// one file with the same time keep their order). The error names the line.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        entries.push(entry);
    }
    entries.sort_by_key(|e| e.t_us);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a line round-trips, optional fields stay out of the JSON, and lines merge by time.
    #[test]
    fn lines_round_trip_and_sort() {
        let mut probe = Entry::new(20, "probe", Kind::Probe, Outcome::Ok);
        probe.registrar = Some("r1".into());
        probe.pes = vec![1, 2];
        let kill = Entry::fault(10, "r1", Fault::Kill);
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&probe).unwrap(),
            serde_json::to_string(&kill).unwrap()
        );
        assert!(!text.contains("\"pe\":"), "{text}");
        assert!(text.contains("\"fault\":\"kill\""), "{text}");
        assert_eq!(parse(&text).unwrap(), vec![kill, probe]);
    }

    // Goal: a bad line is an error naming its line, not a silently shorter history.
    #[test]
    fn bad_line_is_named() {
        let err =
            parse("{\"t_us\":1,\"process\":\"a\",\"kind\":\"probe\",\"outcome\":\"ok\"}\nnope\n")
                .unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
