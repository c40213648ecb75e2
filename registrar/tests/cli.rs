//! The `registrar` binary refuses bad input with one clear line that names the culprit.
//!
//! Goal: bad flags, unreadable or invalid config files and busy ports end the process with a
//! non-zero status and a message naming the flag, file, field or address; never a panic.

use std::process::{Command, Output};

fn registrar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(args)
        .args(["--no-announce", "--run-seconds", "5", "--log", "warn"])
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_refused(output: &Output, needle: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "should fail: {text}");
    assert!(text.contains(needle), "message should name {needle:?}: {text}");
    assert!(!text.contains("panicked"), "no panic: {text}");
}

#[test]
fn bad_flag_value_names_the_flag() {
    assert_refused(&registrar(&["--workers", "many"]), "--workers");
    assert_refused(&registrar(&["--udp", "not-an-address"]), "--udp");
    // In range for the type, out of range for SCTP: the validation names the setting.
    assert_refused(&registrar(&["--sctp-mtu", "100"]), "sctp_mtu");
    assert_refused(&registrar(&["--sctp-mtu", "70000"]), "--sctp-mtu");
}

#[test]
fn unreadable_config_names_the_file() {
    assert_refused(&registrar(&["--config", "/nonexistent/registrar.toml"]), "/nonexistent");
}

#[test]
fn invalid_config_names_the_field() {
    let dir = std::env::temp_dir().join(format!("registrar-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[timers]\nkeep_alive_timeout_ms = 0\n").unwrap();
    assert_refused(&registrar(&["--config", path.to_str().unwrap()]), "keep_alive_timeout_ms");
    std::fs::write(&path, "[limits]\npools_mx = 3\n").unwrap();
    assert_refused(&registrar(&["--config", path.to_str().unwrap()]), "pools_mx");
}

#[test]
fn busy_port_names_the_address() {
    // A plain socket without SO_REUSEPORT holds the port, so the registrar's bind must fail.
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = holder.local_addr().unwrap().to_string();
    let output = registrar(&["--udp", &address, "--workers", "1"]);
    assert_refused(&output, &address);
    assert_eq!(stderr(&output).lines().filter(|l| l.starts_with("registrar:")).count(), 1);
}

// Goal: the switches for read replicas and segmentation offload are accepted, and the registrar
// runs and stops cleanly with them. Method: 2 workers, `--no-replicas --udp-gso`, 1 s.
#[test]
fn feature_switches_run() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &format!("127.0.0.1:{port}"), "--workers", "2"])
        .args(["--no-replicas", "--udp-gso", "--no-announce", "--run-seconds", "1"])
        .args(["--log", "warn"])
        .output()
        .expect("the binary runs");
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("registrar ready") && text.contains("registrar stopped"), "{text}");
}

/// The `RssAnon` and `AnonHugePages` (kB) of a registrar started with `extra`, read once it
/// says it is ready; then it is stopped.
fn idle_anonymous_kb(extra: &[&str]) -> (u64, u64) {
    use std::io::{BufRead, BufReader};
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--udp", &format!("127.0.0.1:{port}"), "--workers", "1", "--no-announce"])
        .args(["--no-enrp", "--run-seconds", "20", "--log", "warn"])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(
        lines.by_ref().map_while(Result::ok).any(|l| l.contains("registrar ready")),
        "no 'registrar ready'"
    );
    let field = |file: &str, name: &str| -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", child.id())).unwrap();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let figures = (field("status", "RssAnon:"), field("smaps_rollup", "AnonHugePages:"));
    eprintln!("{extra:?}: RssAnon {} kB, AnonHugePages {} kB", figures.0, figures.1);
    child.kill().unwrap();
    child.wait().unwrap();
    figures
}

// Goal: an idle registrar stays small: the tables and buffers reserved at start are touched
// sparsely, and under transparent huge pages each touch would make a 2 MiB block of the
// allocator's arenas resident (40 MB for one idle worker instead of 10-14, BENCHMARKS.md).
// Method: one worker, its anonymous resident memory once ready: below 24 MB, at most the 4 MiB
// of huge pages the runtime faults in before `main`; with `--huge-pages`, on a host whose THP
// setting allows them, more huge pages than that (the switch works).
#[test]
fn idle_registrar_keeps_its_heap_in_small_pages() {
    let (anon, huge) = idle_anonymous_kb(&[]);
    assert!(anon < 24 * 1024, "idle RssAnon {anon} kB");
    assert!(huge <= 4 * 1024, "AnonHugePages {huge} kB without --huge-pages");
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[always]") || thp.contains("[madvise]") {
        let (_, huge_on) = idle_anonymous_kb(&["--huge-pages"]);
        assert!(huge_on > huge, "--huge-pages: AnonHugePages {huge_on} kB, without {huge} kB");
    }
}
