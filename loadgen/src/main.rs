//! `loadgen`: drive an RSerPool registrar (or a baseline) with synthetic PEs and PUs, and
//! report throughput, latency percentiles and errors by cause.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use loadgen::capacity::{sweep, SweepOptions};
use loadgen::op::OpKind;
use loadgen::quickstart::Choice;
use loadgen::report::{median, ratio, Ratio, RunResult};
use loadgen::runner::{run, RunOptions};
use loadgen::scenario::{LoopMode, Overrides, Scenario, TargetKind};
use loadgen::target;

#[derive(Parser)]
#[command(name = "loadgen", version, about = "Synthetic RSerPool PEs and PUs, with reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file; every field can be overridden by a flag.
    Run {
        /// Scenario TOML; omit to use the defaults plus flags.
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
        /// Also run the same scenario against an embedded udp-echo server, right after each
        /// run, and print target/udp-echo ratios per op kind.
        #[arg(long)]
        baseline: bool,
        /// Run this many times (alternating with the baseline) and report the median ratio.
        #[arg(long, default_value_t = 1)]
        repeats: u32,
        #[command(flatten)]
        output: Output,
    },
    /// Baseline: UDP echo server plus closed-loop (or open-loop) clients on loopback. Round
    /// trips are reported as `resolve`, so that `compare` lines them up with resolutions.
    UdpEcho(UdpEcho),
    /// Sweep the offered resolution rate until p99 passes a bound; print the rate per core.
    Capacity(CapacityArgs),
    /// Start a registrar, register PEs, resolve for ~10 s, print the summary, stop it.
    Quickstart {
        /// How long to drive resolutions.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Which registrar: the real one (`auto` is the real one too), or the model.
        #[arg(long, value_enum, default_value_t = Choice::Auto)]
        target: Choice,
        #[command(flatten)]
        output: Output,
    },
    /// Ratios between two JSON results (new / baseline), for BENCHMARKS.md.
    Compare {
        /// The result to judge, e.g. the registrar run.
        #[arg(long)]
        new: PathBuf,
        /// The baseline, e.g. the udp-echo run of the same session.
        #[arg(long)]
        baseline: PathBuf,
        /// Op kind to compare.
        #[arg(long, value_enum, default_value_t = Kind::Resolve)]
        kind: Kind,
    },
}

#[derive(Args)]
struct Output {
    /// Directory for the JSON and HTML reports.
    #[arg(long, default_value = "loadgen-report")]
    report_dir: PathBuf,
    /// Write no report files.
    #[arg(long)]
    no_report: bool,
    /// Show the live progress line even when stderr is not a terminal.
    #[arg(long)]
    progress: bool,
}

#[derive(Args)]
struct UdpEcho {
    /// Client flows (UDP sockets, one per association).
    #[arg(long, default_value_t = 4)]
    flows: u32,
    /// Requests in flight per flow (closed loop).
    #[arg(long, default_value_t = 8)]
    window: u32,
    /// Run length.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Client worker threads.
    #[arg(long, default_value_t = 1)]
    workers: u16,
    /// Echo server threads (SO_REUSEPORT sockets).
    #[arg(long, default_value_t = 1)]
    server_threads: u16,
    /// Datagram size.
    #[arg(long, default_value_t = 64)]
    payload_bytes: u16,
    /// Open loop at this total rate instead of closed loop.
    #[arg(long)]
    rate_per_s: Option<f64>,
    /// Pin worker threads to cores.
    #[arg(long)]
    pin: bool,
    /// Drive an echo server already listening here instead of starting one.
    #[arg(long)]
    address: Option<String>,
    /// Only serve: run the echo server on this address for `--seconds`, with no clients (the
    /// lab VM measures its CPU per round trip as the floor of any UDP server).
    #[arg(long, value_name = "IP:PORT", conflicts_with = "address")]
    serve: Option<std::net::SocketAddr>,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct CapacityArgs {
    /// Scenario TOML for everything but the PU pacing; default: udp-echo, 4 associations.
    #[arg(long)]
    scenario: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// First offered rate.
    #[arg(long, default_value_t = 10_000.0)]
    start_rate_per_s: f64,
    /// Growth factor per step.
    #[arg(long, default_value_t = 1.5)]
    growth: f64,
    /// Measured length of each step.
    #[arg(long, default_value_t = 2_000)]
    step_ms: u64,
    /// p99 bound on resolution latency.
    #[arg(long, default_value_t = 1_000.0)]
    p99_bound_us: f64,
    /// Most steps to run.
    #[arg(long, default_value_t = 12)]
    steps_max: u32,
    /// Cores the target uses (default: target.server_threads).
    #[arg(long)]
    cores: Option<u16>,
    /// Write the sweep as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Deregister,
    KeepAlive,
    Register,
    Resolve,
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { scenario, overrides, baseline, repeats, output } => {
            let mut s = match scenario {
                Some(path) => Scenario::from_file(&path)?,
                None => Scenario { name: "cli".to_owned(), ..Scenario::default() },
            };
            s.apply(&overrides)?;
            anyhow::ensure!((1..=REPEATS_MAX).contains(&repeats), "--repeats: 1..={REPEATS_MAX}");
            if !baseline {
                for _ in 0..repeats {
                    run_and_report(&s, None, &output)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            run_with_baseline(&s, repeats, &output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::UdpEcho(args) if args.serve.is_some() => {
            let address = args.serve.expect("matched on is_some");
            anyhow::ensure!(
                args.seconds.is_finite() && args.seconds > 0.0,
                "--seconds must be a positive number of seconds"
            );
            let server = target::udp::EchoServer::bind(address, args.server_threads.max(1))
                .map_err(|e| anyhow::anyhow!("--serve {address}: {e}"))?;
            eprintln!("udp-echo serving on {address} for {} s", args.seconds);
            std::thread::sleep(std::time::Duration::from_secs_f64(args.seconds));
            drop(server);
            Ok(ExitCode::SUCCESS)
        }
        Command::UdpEcho(args) => {
            let s = udp_echo_scenario(&args)?;
            let result = run_and_report(&s, None, &args.output)?;
            Ok(if result.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Capacity(args) => capacity(&args),
        Command::Quickstart { seconds, target, output } => quickstart(seconds, target, &output),
        Command::Compare { new, baseline, kind } => {
            let (new, baseline) = (RunResult::read_json(&new)?, RunResult::read_json(&baseline)?);
            let kind = op_kind(kind);
            let r = ratio(&new, &baseline, kind).ok_or_else(|| {
                anyhow::anyhow!("both results need successful {} operations", kind.name())
            })?;
            println!("{r}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prepares the target (unless one is given), runs, prints the summary, writes the reports.
fn run_and_report(
    s: &Scenario,
    prepared: Option<target::Prepared>,
    output: &Output,
) -> anyhow::Result<RunResult> {
    let prepared = match prepared {
        Some(p) => p,
        None => target::prepare(s)?,
    };
    eprintln!("loadgen: {} against {} at {}", s.name, prepared.target().name(), prepared.address());
    let result = run(s, prepared.target(), RunOptions { progress: output.progress, quiet: false })?;
    drop(prepared); // Stop what we started before printing, so the summary is the last word.
    print!("{}", result.summary());
    if !output.no_report {
        let (json, html) = write_reports(&result, &output.report_dir)?;
        println!("report: {} and {}", json.display(), html.display());
    }
    Ok(result)
}

/// Runs `s` and the same scenario against udp-echo, alternately (A B A B ...) so that drift
/// hits both, and prints each ratio and the median per op kind.
fn run_with_baseline(s: &Scenario, repeats: u32, output: &Output) -> anyhow::Result<()> {
    let mut echo = s.clone();
    echo.target.kind = TargetKind::UdpEcho;
    echo.target.address = None;
    let mut ratios: Vec<Ratio> = Vec::new();
    for _ in 0..repeats {
        let result = run_and_report(s, None, output)?;
        let baseline = run_and_report(&echo, None, output)?;
        for kind in OpKind::ALL {
            if let Some(r) = ratio(&result, &baseline, kind) {
                println!("{r}");
                ratios.push(r);
            }
        }
    }
    for kind in OpKind::ALL {
        let mut values: Vec<f64> =
            ratios.iter().filter(|r| r.kind == kind).map(|r| r.throughput).collect();
        if let Some(median) = median(&mut values) {
            println!(
                "{}: median throughput ratio {} / udp-echo over {} runs: {median:.3} \
                 (min {:.3}, max {:.3})",
                kind.name(),
                s.target.kind.name(),
                values.len(),
                values[0],
                values[values.len() - 1]
            );
        }
    }
    Ok(())
}

fn write_reports(result: &RunResult, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let stem: String = format!("{}-{}", result.scenario.name, result.target)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let (json, html) = (dir.join(format!("{stem}.json")), dir.join(format!("{stem}.html")));
    result.write_json(&json)?;
    std::fs::write(&html, loadgen::html::render(result))?;
    Ok((json, html))
}

fn udp_echo_scenario(args: &UdpEcho) -> anyhow::Result<Scenario> {
    let mut s = Scenario { name: "udp-echo".to_owned(), ..Scenario::default() };
    let duration_ms = (args.seconds * 1e3).round() as u64;
    let overrides = Overrides {
        target: Some(TargetKind::UdpEcho),
        address: args.address.clone(),
        server_threads: Some(args.server_threads),
        payload_bytes: Some(args.payload_bytes),
        workers: Some(args.workers),
        pin: Some(args.pin),
        pe_count: Some(0),
        associations: Some(args.flows),
        window: Some(args.window),
        mode: Some(if args.rate_per_s.is_some() { LoopMode::Open } else { LoopMode::Closed }),
        rate_per_s: args.rate_per_s,
        // No PEs to wait for: measure from the start, but leave a short warm-up bound valid.
        warmup_ms: Some(0),
        duration_ms: Some(duration_ms),
        in_flight_max: Some((args.flows * args.window).max(1).max(4_096)),
        ..Overrides::default()
    };
    s.apply(&overrides)?;
    Ok(s)
}

fn capacity(args: &CapacityArgs) -> anyhow::Result<ExitCode> {
    let mut s = match &args.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => {
            let mut s = Scenario { name: "capacity".to_owned(), ..Scenario::default() };
            s.target.kind = TargetKind::UdpEcho;
            s.pe.count = 0;
            s.pu.associations = 4;
            s.run.warmup_ms = 200;
            s
        }
    };
    s.apply(&args.overrides)?;
    let prepared = target::prepare(&s)?;
    let options = SweepOptions {
        start_rate_per_s: args.start_rate_per_s,
        growth: args.growth,
        step_ms: args.step_ms,
        p99_bound_us: args.p99_bound_us,
        error_ratio_max: 0.001,
        achieved_ratio_min: 0.95,
        steps_max: args.steps_max,
        cores: args.cores.unwrap_or(s.target.server_threads),
    };
    anyhow::ensure!(options.growth > 1.0, "--growth must be > 1");
    anyhow::ensure!(options.steps_max > 0, "--steps-max must be > 0");
    let capacity = sweep(&s, prepared.target(), &options)?;
    drop(prepared);
    match (capacity.sustainable_per_s, capacity.sustainable_per_core_per_s) {
        (Some(total), Some(per_core)) => {
            println!(
                "sustainable: {total:.0} resolutions/s with p99 ≤ {} µs \
                 ({per_core:.0}/s per core, {} cores)",
                options.p99_bound_us, options.cores
            );
            if let Some(step) = &capacity.at_80_percent {
                println!(
                    "at 80 % ({:.0}/s): p99 {:.1} µs, achieved {:.0}/s",
                    step.offered_per_s, step.p99_us, step.achieved_per_s
                );
            }
        }
        _ => println!(
            "not even {:.0}/s held with p99 ≤ {} µs",
            options.start_rate_per_s, options.p99_bound_us
        ),
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&capacity)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn quickstart(seconds: f64, choice: Choice, output: &Output) -> anyhow::Result<ExitCode> {
    let mut s = loadgen::quickstart::scenario(seconds)?;
    let prepared = loadgen::quickstart::launch(&mut s, choice)?;
    let result = run_and_report(&s, Some(prepared), output)?;
    if let Err(verdict) = loadgen::quickstart::judge(&result) {
        eprintln!("loadgen: {verdict}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn op_kind(kind: Kind) -> OpKind {
    match kind {
        Kind::Deregister => OpKind::Deregister,
        Kind::KeepAlive => OpKind::KeepAlive,
        Kind::Register => OpKind::Register,
        Kind::Resolve => OpKind::Resolve,
    }
}

/// Repeats of `run --repeats`; each is a full run, so more is a different tool.
const REPEATS_MAX: u32 = 100;
