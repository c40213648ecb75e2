//! `faultcheck HISTORY... --bounds converge=MS,depart=MS,failover=MS`: reads the histories
//! (merged by time), prints each property's verdict, exits 1 if any failed, 2 on bad input.

use std::process::ExitCode;

use clap::Parser;
use faults::{check, history, Bounds};

/// Check a fault-lab history against the RSerPool properties of issue #16.
#[derive(Parser, Debug)]
#[command(name = "faultcheck", version, about)]
struct Cli {
    /// History files (JSON lines); several are merged by time.
    #[arg(required = true)]
    histories: Vec<std::path::PathBuf>,
    /// converge=MS,depart=MS,failover=MS
    #[arg(long)]
    bounds: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bounds = match Bounds::parse(&cli.bounds) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("faultcheck: --bounds: {e}");
            return ExitCode::from(2);
        }
    };
    let mut text = String::new();
    for path in &cli.histories {
        match std::fs::read_to_string(path) {
            Ok(t) => text.push_str(&t),
            Err(e) => {
                eprintln!("faultcheck: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
        text.push('\n');
    }
    let entries = match history::parse(&text) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("faultcheck: {e}");
            return ExitCode::from(2);
        }
    };
    println!("faultcheck: {} entries", entries.len());
    let verdicts = check(&entries, &bounds);
    for v in &verdicts {
        let word = if v.passed { "PASS" } else { "FAIL" };
        println!("{word} {}: {}", v.property, v.summary);
        for line in &v.violations {
            println!("    {line}");
        }
    }
    if verdicts.iter().all(|v| v.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
