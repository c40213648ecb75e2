//! The registrar's final statistics as a short table for people (`registrar` prints it when it
//! stops): what it did, what it refused or dropped, what it holds, and ENRP.

use std::fmt::Write;

use crate::proto::Stats;

/// The table, one `name  value` line per counter that matters to an operator, in groups.
pub fn summary(s: &Stats) -> String {
    let e = &s.enrp;
    let groups: [(&str, Vec<(&str, u64)>); 4] = [
        (
            "ASAP",
            vec![
                ("sessions opened", s.sessions_opened),
                ("registrations", s.registrations),
                ("registrations rejected", s.registrations_rejected),
                ("deregistrations", s.deregistrations),
                ("handle resolutions", s.resolutions),
                ("  from a read replica", s.replica_resolutions),
                ("keep-alives sent", s.keep_alives_sent),
                ("subscriptions (now)", s.subscriptions),
                ("subscription pushes", s.subscription_pushes),
                ("PE associations handed off", s.handed_off),
            ],
        ),
        (
            "PEs removed",
            vec![
                ("keep-alive timeout", s.keep_alive_timeouts),
                ("registration life over", s.lifetime_expiries),
                ("unreachable reports", s.unreachable_removals),
                ("session ended", s.session_removals),
            ],
        ),
        (
            "Trouble",
            vec![
                ("malformed messages", s.decode_errors),
                ("messages dropped", s.dropped),
                ("packets too long", s.too_long),
                ("keep-alives unroutable", s.keep_alives_unroutable),
                ("subscriptions refused", s.subscriptions_refused),
            ],
        ),
        (
            "ENRP",
            vec![
                ("peers (now)", s.enrp_peers),
                ("messages in", e.received),
                ("messages out", e.sent),
                ("handle updates out", e.updates_sent),
                ("handle updates in", e.updates_received),
                ("peer PEs applied", s.peer_upserts),
                ("peer PEs removed", s.peer_removals),
                ("peers failed", e.peers_failed),
                ("takeovers won", e.takeovers_won),
                ("takeover acks withheld", e.takeover_acks_withheld),
                ("resynchronisations", e.resyncs),
            ],
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(out, "  {:<28}{:>12}", "PEs held (own shards)", s.shard_elements);
    for (title, rows) in groups {
        let _ = writeln!(out, "  {title}");
        for (name, value) in rows {
            let _ = writeln!(out, "    {name:<26}{value:>12}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_and_value_is_in_the_table() {
        let mut s = Stats { registrations: 12_345, shard_elements: 7, ..Stats::default() };
        s.enrp.takeovers_won = 2;
        let table = summary(&s);
        assert!(table.contains("PEs held (own shards)") && table.contains("           7"));
        assert!(table
            .lines()
            .any(|l| l.trim_start().starts_with("registrations") && l.ends_with("12345")));
        assert!(table.lines().any(|l| l.contains("takeovers won") && l.ends_with(" 2")));
        for title in ["ASAP", "PEs removed", "Trouble", "ENRP"] {
            assert!(table.lines().any(|l| l.trim() == title), "{title} in\n{table}");
        }
    }
}
