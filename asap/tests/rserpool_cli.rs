//! The built `rserpool` binary on bad command lines and without a registrar.
//!
//! Goal: every failure is one line on stderr naming what failed, with exit status 2 for a bad
//! command line (clap's) and 1 for a failed operation; nothing panics. Method: run the binary
//! with bad arguments, and against a registrar address where nothing listens (a UDP port of
//! our own that we bound and never read), each run bounded by a short --timeout-ms.

use std::net::UdpSocket;
use std::process::{Command, Output};

fn rserpool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rserpool")).args(args).output().expect("rserpool runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_fails(args: &[&str], status: i32, wanted: &str) {
    let output = rserpool(args);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(status), "{args:?}: {text}");
    assert!(text.contains(wanted), "{args:?}: wanted {wanted:?} in {text:?}");
    assert!(!text.contains("panicked"), "{args:?}: {text}");
    assert!(output.stdout.is_empty(), "{args:?}: stdout {:?}", output.stdout);
}

#[test]
fn bad_arguments_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["resolve"], "<POOL>"),
        (&["resolve", "p", "--timeout-ms", "0"], "--timeout-ms"),
        (&["resolve", "p", "--timeout-ms", "soon"], "--timeout-ms"),
        (&["--registrar", "localhost:3863", "resolve", "p"], "--registrar"),
        (&["--udp", "nowhere", "resolve", "p"], "--udp"),
        (&["--registrar-udp-port", "70000", "resolve", "p"], "--registrar-udp-port"),
        (&["resolve", "p", "--items", "0"], "--items"),
        (&["pe"], "--pool"),
        (&["pe", "--pool", "p", "--service", "chargen"], "--service"),
        (&["pe", "--pool", "p", "--policy", "fifo"], "--policy"),
        (&["pe", "--pool", "p", "--port", "65536"], "--port"),
        (&["pe", "--pool", "p", "--weight", "2"], "--weight applies only to --policy wrr"),
        (&["pe", "--pool", "p", "--policy", "wrand", "--load", "1"], "--load applies only"),
        (&["register", "--pool", "p"], "--port"),
        (&["register", "--pool", "p", "--port", "7", "--id", "4294967296"], "--id"),
        (&["terminal"], "<POOL>"),
        (&["watch"], "<POOL>"),
        (&["watch", "p", "--count", "0"], "--count"),
        (&["watch", "p", "--duration-ms", "soon"], "--duration-ms"),
        (&["dump", "--enrp-port", "0"], "--enrp-port"),
        (&["connect"], "<POOL>"),
        (&["--home-silence-ms", "0", "pe", "--pool", "p"], "--home-silence-ms"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, wanted) in cases {
        assert_fails(args, 2, wanted);
    }
}

#[test]
fn help_lists_the_subcommands() {
    let output = rserpool(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for subcommand in ["pe", "register", "resolve", "terminal", "watch", "dump", "connect"] {
        assert!(text.contains(subcommand), "{subcommand} missing from {text}");
    }
}

// A registrar that never answers: our own UDP socket stands where its SCTP would be.
#[test]
fn no_registrar_is_one_line_naming_the_registrar() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let common = ["--registrar", "127.0.0.1:3863", "--registrar-udp-port", &port];
    let wanted = "rserpool: no registrar reachable (tried 127.0.0.1:3863)\n";

    let mut resolve = common.to_vec();
    resolve.extend(["--timeout-ms", "300", "resolve", "p"]);
    let output = rserpool(&resolve);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), wanted);

    for subcommand in [&["watch", "p"][..], &["connect", "p"][..]] {
        let mut args = common.to_vec();
        args.extend(["--timeout-ms", "300"]);
        args.extend(subcommand);
        let output = rserpool(&args);
        assert_eq!(output.status.code(), Some(1), "{subcommand:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), wanted, "{subcommand:?}");
    }

    let mut register = common.to_vec();
    register.extend(["--timeout-ms", "300", "register", "--pool", "p", "--port", "7"]);
    let output = rserpool(&register);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), wanted);
}

#[test]
fn a_taken_udp_address_is_named() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = rserpool(&["--udp", &address, "resolve", "p"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.starts_with(&format!("rserpool: cannot bind UDP {address} for SCTP: ")), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}
