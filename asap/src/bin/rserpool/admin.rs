//! The registrar's admin API as `rserpool dump --admin` and `rserpool status` read it: HTTP/1.1
//! GETs with the bearer token over one TCP connection each, JSON answers.
//!
//! The client is a few lines of std: the admin API is ours, answers with `Content-Length`
//! and closes after each answer (`Connection: close`), so no HTTP crate is needed. Errors name
//! what failed: the address, the path, the status and the API's own `error` text.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use crate::cli::AdminArgs;
use crate::format;

/// Answers larger than this are refused (a dump of 10 000 PEs per core is a few MiB).
const ANSWER_BYTES_MAX: u64 = 256 << 20;

/// One admin API.
pub(crate) struct Admin {
    address: SocketAddr,
    token: String,
    timeout: Duration,
}

impl Admin {
    /// The API at `args.admin`, with the token from `args.admin_token_file`.
    pub(crate) fn new(args: &AdminArgs, timeout: Duration) -> anyhow::Result<Self> {
        let Some(address) = &args.admin else { bail!("--admin: the admin API's address") };
        let address = address
            .to_socket_addrs()
            .with_context(|| format!("--admin {address}"))?
            .next()
            .ok_or_else(|| anyhow!("--admin {address}: no address"))?;
        let Some(path) = &args.admin_token_file else {
            bail!("--admin-token-file: the file with the registrar's admin token (its first line)")
        };
        Ok(Self { address, token: read_token(path)?, timeout })
    }

    /// GET `path`: the JSON body of a 200 answer, or an error naming the status and the API's
    /// error text.
    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Value> {
        let what = || format!("admin API {}{path}", self.address);
        let mut stream = TcpStream::connect_timeout(&self.address, self.timeout)
            .with_context(|| format!("{}: connect", what()))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: \
             application/json\r\nConnection: close\r\n\r\n",
            self.address, self.token
        );
        stream.write_all(request.as_bytes()).with_context(|| format!("{}: send", what()))?;
        let mut answer = Vec::new();
        stream
            .take(ANSWER_BYTES_MAX)
            .read_to_end(&mut answer)
            .with_context(|| format!("{}: read", what()))?;
        let (status, body) = split_answer(&answer).with_context(what)?;
        let json: Option<Value> = serde_json::from_slice(body).ok();
        match status {
            200 => json.ok_or_else(|| anyhow!("{}: the answer is not JSON", what())),
            401 => bail!("{}: 401, the token was refused (--admin-token-file)", what()),
            _ => {
                let text = json.as_ref().and_then(|j| j["error"].as_str()).unwrap_or("");
                bail!("{}: {status} {text}", what())
            }
        }
    }
}

/// The token: the file's first line without its line end, as the registrar reads it.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--admin-token-file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        bail!("--admin-token-file {}: the first line is empty", path.display());
    }
    Ok(line.to_owned())
}

/// An HTTP/1.1 answer's status code and body (up to `Content-Length` when it is given).
fn split_answer(answer: &[u8]) -> anyhow::Result<(u16, &[u8])> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no complete HTTP answer ({} bytes)", answer.len()))?;
    let head = std::str::from_utf8(&answer[..end]).context("an HTTP head that is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| anyhow!("not an HTTP status line: {status_line:?}"))?;
    let body = &answer[end + 4..];
    let length = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if n <= body.len() => Ok((status, &body[..n])),
        Some(n) => bail!("the body ended after {} of {n} bytes", body.len()),
        None => Ok((status, body)),
    }
}

/// `rserpool dump --admin`: every PE of the registrar, from `/api/v1/pool-elements`.
pub(crate) fn dump(admin: &Admin, json: bool) -> anyhow::Result<String> {
    let answer = admin.get("/api/v1/pool-elements")?;
    let elements = answer["elements"].as_array().cloned().unwrap_or_default();
    if answer["truncated"] == true {
        eprintln!("rserpool: the registrar listed at most 10 000 PEs per core; the dump is cut");
    }
    if json {
        return Ok(format!("{answer:#}\n"));
    }
    let header = ["POOL", "ID", "TRANSPORT", "ADDRESS", "POLICY", "HOME"].map(str::to_owned);
    let rows: Vec<[String; 6]> = elements.iter().map(element_row).collect();
    Ok(format::aligned(&header, &rows))
}

fn element_row(e: &Value) -> [String; 6] {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let transport = match number(&e["user_transport_proto"]) {
        132 => "sctp",
        6 => "tcp",
        17 => "udp",
        136 => "udplite",
        33 => "dccp",
        _ => "opaque",
    };
    let control = if number(&e["user_transport_use"]) == 1 { "+ctrl" } else { "" };
    let port = u16::try_from(number(&e["user_transport_port"])).unwrap_or(0);
    let addresses: Vec<String> = e["user_addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.parse().ok())
        .map(|ip| SocketAddr::new(ip, port).to_string())
        .collect();
    let mut policy = text(&e["policy_description"]);
    for (key, name) in [("policy_weight", "weight"), ("policy_priority", "priority")] {
        if number(&e[key]) != 0 {
            policy.push_str(&format!(" {name}={}", number(&e[key])));
        }
    }
    if number(&e["policy_load"]) != 0 || number(&e["policy_load_deg"]) != 0 {
        policy.push_str(&format!(" load={}", number(&e["policy_load"])));
    }
    let home = u32::try_from(number(&e["home_enrp_server"])).unwrap_or(0);
    let mut home = format::id_hex(home);
    if e["owned"] == true {
        home.push_str(" (here)");
    }
    [
        text(&e["pool"]),
        format::id_hex(u32::try_from(number(&e["id"])).unwrap_or(0)),
        format!("{transport}{control}"),
        addresses.join(","),
        policy,
        home,
    ]
}

/// `rserpool status`: the registrar's state and counters, and its ENRP peers.
pub(crate) fn status(admin: &Admin, json: bool) -> anyhow::Result<String> {
    let stats = admin.get("/api/v1/stats")?;
    let peers = admin.get("/api/v1/peers")?;
    if json {
        return Ok(format!("{:#}\n", serde_json::json!({ "stats": stats, "peers": peers })));
    }
    let s = &stats["stats"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let id = u32::try_from(n(&stats["registrar_id"])).unwrap_or(0);
    let state = match (stats["ready"] == true, stats["draining"] == true) {
        (_, true) => "draining (new registrations refused)",
        (true, false) => "serving",
        (false, false) => "starting (ENRP download not done)",
    };
    let mut out = format!(
        "registrar {}  {state}  up {}  {} cores\n",
        format::id_hex(id),
        uptime(n(&stats["uptime_ms"])),
        n(&stats["cores"]),
    );
    out.push_str(&format!(
        "PEs {}  pools {}  subscriptions {}  associations opened {}\n",
        n(&s["shard_elements"]),
        n(&s["shard_pools"]),
        n(&s["subscriptions"]),
        n(&s["sessions_opened"]),
    ));
    out.push_str(&format!(
        "registrations {} (refused {})  deregistrations {}  resolutions {}  handed off {}\n",
        n(&s["registrations"]),
        n(&s["registrations_rejected"]),
        n(&s["deregistrations"]),
        n(&s["resolutions"]),
        n(&s["handed_off"]),
    ));
    out.push_str(&format!(
        "PEs removed: keep-alive timeout {}  life over {}  unreachable {}  session ended {}\n",
        n(&s["keep_alive_timeouts"]),
        n(&s["lifetime_expiries"]),
        n(&s["unreachable_removals"]),
        n(&s["session_removals"]),
    ));
    if peers["enrp"] == false {
        out.push_str("ENRP off\n");
        return Ok(out);
    }
    let header = ["PEER", "ADDRESS", "STATE", "LAST HEARD", "CHECKSUM"].map(str::to_owned);
    let rows: Vec<[String; 5]> = peers["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let address = match (p["address"].as_str(), p["port"].as_u64()) {
                (Some(ip), Some(port)) => format!("{ip}:{port}"),
                (Some(ip), None) => ip.to_owned(),
                _ => "?".to_owned(),
            };
            let state = match (p["active"] == true, p["connected"] == true) {
                (true, true) => "active",
                (true, false) => "active, no association",
                (false, _) => "inactive",
            };
            let checksum =
                p["checksum"].as_u64().map_or_else(|| "-".to_owned(), |c| format!("0x{c:04x}"));
            [
                format::id_hex(u32::try_from(n(&p["identifier"])).unwrap_or(0)),
                address,
                state.to_owned(),
                format!("{} ms", n(&p["last_heard_ms"])),
                checksum,
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("ENRP peers: none\n");
    } else {
        out.push_str(&format::aligned(&header, &rows));
    }
    Ok(out)
}

fn uptime(ms: u64) -> String {
    let s = ms / 1_000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_at_the_head_and_cut_at_content_length() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(split_answer(answer).unwrap(), (200, &b"{}"[..]));
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}";
        assert!(split_answer(short).unwrap_err().to_string().contains("2 of 9"));
        assert!(split_answer(b"HTTP/1.1 200 OK\r\n").is_err(), "no end of head");
        let not_http = b"SSH-2.0-OpenSSH\r\n\r\n";
        assert!(split_answer(not_http).unwrap_err().to_string().contains("status line"));
        assert_eq!(split_answer(b"HTTP/1.0 401 No\r\n\r\nx").unwrap(), (401, &b"x"[..]));
    }

    #[test]
    fn rows_name_transport_policy_values_and_home() {
        let e = serde_json::json!({
            "pool": "web", "id": 7, "home_enrp_server": 0xa1, "owned": true,
            "user_transport_proto": 6, "user_transport_use": 0, "user_transport_port": 80,
            "user_addresses": ["127.0.0.1"], "policy_description": "WeightedRoundRobin",
            "policy_weight": 3, "policy_priority": 0, "policy_load": 0, "policy_load_deg": 0,
        });
        assert_eq!(
            element_row(&e),
            [
                "web",
                "0x00000007",
                "tcp",
                "127.0.0.1:80",
                "WeightedRoundRobin weight=3",
                "0x000000a1 (here)"
            ]
            .map(str::to_owned)
        );
    }

    #[test]
    fn uptime_reads_as_seconds_minutes_hours() {
        assert_eq!(uptime(59_999), "59 s");
        assert_eq!(uptime(60_000), "1m00s");
        assert_eq!(uptime(3_600_000), "1h00m");
    }
}
