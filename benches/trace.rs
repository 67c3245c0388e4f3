//! `cargo bench --bench trace`: how fast residency traces many addresses, against scamper on the
//! same targets in the same lab run.
//!
//! The lab (tests/it/common/netns.rs, real namespaces and real delays):
//!
//! ```text
//! client ──5 ms── r1 192.0.2.1 ──5 ms── r2 198.51.100.1 ──0 ms── targets: 1,000 /32s of 198.18.0.0/15 on lo
//! ```
//!
//! Every trace should show exactly three hops: r1, r2, the target (RTT 20 ms). Measured, for
//! N = 200 and N = 1,000 targets:
//!
//! - residency's tracer as a library (`residency::measure::trace::trace_all`, ICMP, max_hops 8, 1 round,
//!   1 s round timeout) at concurrency 32 and 128: this bench binary re-executes itself inside the
//!   client namespace (`ip netns exec NS <bench> --inner ...`) and prints the paths as JSON;
//! - `scamper -c "trace -P icmp-paris -q 1 -m 8 -w 1" -p PPS -w 0 -O json -f targets` at several
//!   packet rates (its default of 20 pps is far too conservative for a lab);
//! - one trace alone, to compare with N × one trace;
//! - `residency check --format json` on a policy whose endpoints are the N literal addresses,
//!   when the binary traces (if its JSON has no `path` for the addresses, the row says so).
//!
//! Every run is checked: a trace counts as reached only if it shows r1, r2 and the target at TTL
//! 1, 2 and 3. ICMP rate limits are lifted in every namespace of the lab (`icmp_ratelimit=0`,
//! `icmp_msgs_per_sec`/`icmp_msgs_burst` high; per-namespace on this kernel) and the kernel's own
//! rate-limit counters are reported, so a result cannot be distorted silently.
//!
//! Traffic stays inside the lab's namespaces. Every child has a deadline after which its process
//! group is killed, and the bench has an overall budget. Needs root, `ip` (iproute2), GNU time and
//! scamper (`apt-get install iproute2 time scamper`); a missing tool is an error, never a skip.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "trace/runners.rs"]
mod runners;
#[path = "util.rs"]
mod util;
use runners::*;
use util::{find_in_path, median, run_bounded};

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mmdb::write_country_db;
use common::netns::{CLIENT, Lab, LabBuilder, Server};
use residency::measure::trace::{
    Protocol, TracePath, TraceSettings, TraceStatus, TrippyTracer, trace_all,
};
use serde::{Deserialize, Serialize};

/// Target counts measured; the smaller set is the first addresses of the larger.
const SIZES: [usize; 2] = [200, 1_000];
/// `trace_all` concurrency levels (the CLI's default `--trace-concurrency` is 32).
const CONCURRENCY: [usize; 2] = [32, 128];
/// scamper packet rates tried; its maximum is 10,000.
const SCAMPER_PPS: [u32; 3] = [100, 1_000, 10_000];
/// A scamper rate this low is bounded by the rate itself (about 3 probes per target), so it is
/// run once instead of `REPETITIONS` times.
const SLOW_PPS: u32 = 100;
const MAX_HOPS: u8 = 8;
const ROUND_TIMEOUT: Duration = Duration::from_millis(1000);
const HOP_DELAY: Duration = Duration::from_millis(5);
const R1: &str = "192.0.2.1";
const R2: &str = "198.51.100.1";
const SERVER: &str = "targets";
/// Runs per configuration; the table shows the median.
const REPETITIONS: usize = 3;
/// Traces made one after the other to time one trace alone.
const SINGLE_TRACES: usize = 5;
/// Most any single child may take before its process group is killed.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// Most the whole bench may take; past it, no new run is started.
const BUDGET: Duration = Duration::from_secs(330);
/// Residency's goal: wall time within this factor of scamper's.
const GOAL_RATIO: f64 = 1.5;
/// First argument of the re-executed bench binary.
const INNER: &str = "--inner";

const INSTALL: &str = "apt-get install iproute2 time scamper";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some(INNER) {
        inner(&args[1..])
    } else {
        bench()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench trace failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- inside the client namespace ----

/// What the re-executed binary prints: the time `trace_all` took and every path.
#[derive(Serialize, Deserialize)]
struct InnerResult {
    elapsed_s: f64,
    paths: Vec<TracePath>,
}

fn settings() -> TraceSettings {
    TraceSettings {
        protocol: Protocol::Icmp,
        port: 443,
        max_hops: MAX_HOPS,
        rounds: 1,
        round_timeout: ROUND_TIMEOUT,
    }
}

/// `--inner TARGETS_FILE CONCURRENCY`: traces every address of the file with `trace_all` and
/// prints an [`InnerResult`] as JSON on stdout.
fn inner(args: &[String]) -> Result<(), String> {
    let [file, concurrency, ..] = args else {
        return Err(format!("usage: {INNER} TARGETS_FILE CONCURRENCY"));
    };
    let concurrency: usize = concurrency
        .parse()
        .map_err(|e| format!("concurrency {concurrency:?}: {e}"))?;
    let targets = read_targets(Path::new(file))?;
    let tracer = TrippyTracer::new(settings());
    tracer
        .privilege()
        .map_err(|e| format!("cannot trace: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let started = Instant::now();
    let paths = runtime.block_on(trace_all(Arc::new(tracer), targets, concurrency));
    let result = InnerResult {
        elapsed_s: started.elapsed().as_secs_f64(),
        paths,
    };
    let json = serde_json::to_string(&result).map_err(|e| format!("json: {e}"))?;
    println!("{json}");
    Ok(())
}

fn read_targets(path: &Path) -> Result<Vec<IpAddr>, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().map_err(|e| format!("{l:?}: {e}")))
        .collect()
}

// ---- the outer bench ----

struct Tools {
    time: PathBuf,
    scamper: PathBuf,
}

fn find_tools() -> Result<Tools, String> {
    // GNU time specifically: `%M` (peak RSS) is not in other `time`s.
    let time = Path::new("/usr/bin/time")
        .is_file()
        .then(|| PathBuf::from("/usr/bin/time"));
    let scamper = find_in_path("scamper");
    let ip = find_in_path("ip");
    let mut missing = Vec::new();
    if time.is_none() {
        missing.push("GNU time (/usr/bin/time)");
    }
    if scamper.is_none() {
        missing.push("scamper");
    }
    if ip.is_none() {
        missing.push("ip (iproute2)");
    }
    match (time, scamper, ip) {
        (Some(time), Some(scamper), Some(_)) => Ok(Tools { time, scamper }),
        _ => Err(format!(
            "{} not found; install with `{INSTALL}` (this bench does not skip)",
            missing.join(", ")
        )),
    }
}

/// The N-th target: 198.18.0.1, 198.18.0.2, ... (250 per /24, so no .0 or .255).
fn target(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// One measured process: wall time seen from here, GNU time's view, its stdout.
struct Timed {
    wall: Duration,
    rss_kb: u64,
    /// User + system CPU seconds (GNU time's `%U + %S`).
    cpu_s: f64,
    stdout: String,
    stderr: String,
    exit: i32,
}

/// Runs `program args` inside the client namespace under GNU time, bounded by `RUN_DEADLINE`.
fn run_timed(bench: &Bench, label: &str, program: &Path, args: &[String]) -> Result<Timed, String> {
    let work = bench.dir.path();
    let time_out = work.join("time.txt");
    let (stdout, stderr) = (work.join("run.out"), work.join("run.err"));
    let mut cmd = Command::new(&bench.tools.time);
    cmd.arg("-f")
        .arg("%e %M %U %S")
        .arg("-o")
        .arg(&time_out)
        .args(bench.lab.prefix(CLIENT))
        .arg(program)
        .args(args)
        .current_dir(work)
        .env_remove("RESIDENCY_LOG")
        .env_remove("RESIDENCY_DB");
    let done = run_bounded(cmd, &stdout, &stderr, RUN_DEADLINE)?
        .ok_or_else(|| format!("{label} did not finish in {RUN_DEADLINE:?} (killed)"))?;
    let stdout = std::fs::read_to_string(&stdout).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    let timing = std::fs::read_to_string(&time_out).map_err(|e| format!("time output: {e}"))?;
    // GNU time writes "Command exited with non-zero status N" before the format line.
    let last = timing.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split_whitespace().collect();
    let field = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("cannot read GNU time's output: {timing:?}"))
    };
    Ok(Timed {
        wall: done.elapsed,
        rss_kb: field(1)? as u64,
        cpu_s: field(2)? + field(3)?,
        stdout,
        stderr,
        exit: done.status.code().unwrap_or(-1),
    })
}

/// The lab and everything the runs share.
struct Bench {
    lab: Lab,
    tools: Tools,
    dir: tempfile::TempDir,
    /// The hops every trace must show, in TTL order, before the target.
    hops: Vec<IpAddr>,
    targets_files: HashMap<usize, PathBuf>,
    single_file: PathBuf,
    budget_end: Instant,
}

impl Bench {
    fn over_budget(&self, what: &str) -> Result<(), String> {
        if Instant::now() > self.budget_end {
            Err(format!(
                "over the {BUDGET:?} budget before {what}; nothing further was run"
            ))
        } else {
            Ok(())
        }
    }

    /// Whether a path shows exactly r1, r2, the target at TTL 1, 2, 3.
    fn expected(&self, target: IpAddr, hops: &[(u8, Option<IpAddr>)]) -> bool {
        let want: Vec<(u8, Option<IpAddr>)> = self
            .hops
            .iter()
            .copied()
            .chain(std::iter::once(target))
            .enumerate()
            .map(|(i, a)| (i as u8 + 1, Some(a)))
            .collect();
        hops == want.as_slice()
    }
}

/// `ICMP` counters of `/proc/net/snmp` inside a node's namespace (they are per namespace).
fn icmp_counters(lab: &Lab, node: &str) -> Result<HashMap<String, u64>, String> {
    let out = lab
        .exec(node, "cat", ["/proc/net/snmp"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("read /proc/net/snmp in {node}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(format!("no Icmp lines in /proc/net/snmp of {node}"));
    };
    Ok(names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect())
}

fn echo_requests_sent(lab: &Lab) -> Result<u64, String> {
    Ok(icmp_counters(lab, CLIENT)?
        .get("OutEchos")
        .copied()
        .unwrap_or(0))
}

/// ICMP messages the kernel did not send because of a rate limit, over every namespace.
fn rate_limited(lab: &Lab) -> Result<u64, String> {
    let mut sum = 0;
    for node in [CLIENT, "r1", "r2", SERVER] {
        let c = icmp_counters(lab, node)?;
        sum += c.get("OutRateLimitGlobal").copied().unwrap_or(0)
            + c.get("OutRateLimitHost").copied().unwrap_or(0);
    }
    Ok(sum)
}

/// Lifts the ICMP rate limits in every namespace and reads them back.
fn lift_rate_limits(lab: &Lab) -> Result<String, String> {
    let keys = [
        ("net.ipv4.icmp_ratelimit", "0"),
        ("net.ipv4.icmp_msgs_per_sec", "1000000"),
        ("net.ipv4.icmp_msgs_burst", "1000000"),
    ];
    for node in [CLIENT, "r1", "r2", SERVER] {
        let mut args = vec!["-qw".to_string()];
        args.extend(keys.iter().map(|(k, v)| format!("{k}={v}")));
        let out = lab
            .exec(node, "sysctl", &args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("sysctl in {node}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "sysctl in {node} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for (k, v) in keys {
            let out = lab
                .exec(node, "sysctl", ["-n", k])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("sysctl in {node}: {e}"))?;
            let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if got != v {
                return Err(format!("{k} is {got:?} in {node} after setting it to {v}"));
            }
        }
    }
    Ok(keys
        .iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect::<Vec<_>>()
        .join(", "))
}

fn start() -> Result<Bench, String> {
    let tools = find_tools()?;
    let budget_end = Instant::now() + BUDGET;
    let total = SIZES.iter().copied().max().unwrap_or(0);
    let all: Vec<IpAddr> = (0..total).map(target).collect();
    let first = all[0].to_string();
    let mut lab = Lab::try_start(
        LabBuilder::new()
            .router("r1", &[R1], HOP_DELAY)
            .router("r2", &[R2], HOP_DELAY)
            .server(Server::new(SERVER, &[first.as_str()])),
    )
    .map_err(|skip| format!("{skip} (this bench does not skip)"))?;
    lab.add_server_addrs(SERVER, &all[1..]);
    let hops = lab.hops_to(all[0]);
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let mut targets_files = HashMap::new();
    for n in SIZES {
        let path = dir.path().join(format!("targets-{n}.txt"));
        let text: String = all[..n].iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        targets_files.insert(n, path);
    }
    let single_file = dir.path().join("targets-single.txt");
    // Spread over the range, so one trace alone is not always the same address.
    let single: String = (0..SINGLE_TRACES)
        .map(|i| format!("{}\n", all[i * total / SINGLE_TRACES]))
        .collect();
    std::fs::write(&single_file, single).map_err(|e| format!("write: {e}"))?;
    Ok(Bench {
        lab,
        tools,
        dir,
        hops,
        targets_files,
        single_file,
        budget_end,
    })
}

/// A measured configuration: its table label and its runs.
struct Config {
    n: usize,
    tool: &'static str,
    settings: String,
    runs: Vec<Run>,
    note: Option<String>,
}

fn bench() -> Result<(), String> {
    let began = Instant::now();
    eprintln!("bench trace: building the lab (client, r1, r2, {SERVER})");
    let bench = start()?;
    let limits = lift_rate_limits(&bench.lab)?;
    let limited_before = rate_limited(&bench.lab)?;
    eprintln!(
        "bench trace: lab up in {:.1} s, hops {:?}; rate limits lifted: {limits}",
        began.elapsed().as_secs_f64(),
        bench.hops
    );
    let support = check_support(&bench)?;

    // One trace alone, five times in a row in one process; per trace = trace_all time / 5.
    let mut single = Vec::new();
    for _ in 0..REPETITIONS {
        bench.over_budget("the single-trace runs")?;
        let run = run_library(&bench, &bench.single_file, 1, SINGLE_TRACES)?;
        if run.reached != SINGLE_TRACES {
            return Err(format!(
                "one trace alone: only {}/{SINGLE_TRACES} reached their target with 3 hops",
                run.reached
            ));
        }
        single.push(run.inner_s.unwrap_or(f64::NAN) / SINGLE_TRACES as f64);
    }
    let one_trace = median(&single);
    eprintln!("bench trace: one trace alone: {:.1} ms", one_trace * 1000.0);

    let mut configs: Vec<Config> = Vec::new();
    for n in SIZES {
        let file = bench.targets_files[&n].clone();
        let mut here: Vec<Config> = Vec::new();
        for c in CONCURRENCY {
            here.push(Config {
                n,
                tool: "residency `trace_all`",
                settings: format!("ICMP, max_hops {MAX_HOPS}, 1 round, concurrency {c}"),
                runs: Vec::new(),
                note: None,
            });
        }
        for pps in SCAMPER_PPS {
            here.push(Config {
                n,
                tool: "scamper",
                settings: format!("`-p {pps} -w 0`"),
                runs: Vec::new(),
                note: None,
            });
        }
        // Repetitions interleaved over the tools, so a slow moment of the machine hits all.
        for rep in 0..REPETITIONS {
            for (k, config) in here.iter_mut().enumerate() {
                if k >= CONCURRENCY.len() {
                    let pps = SCAMPER_PPS[k - CONCURRENCY.len()];
                    if pps <= SLOW_PPS && rep > 0 {
                        continue;
                    }
                    bench.over_budget("the next scamper run")?;
                    let run = run_scamper(&bench, &file, pps, n)?;
                    eprintln!(
                        "bench trace: N {n:>4} scamper -p {pps:>5}: {:.3} s, {:.2} s CPU, {} KB, {}/{n} reached, {} probes",
                        run.wall, run.cpu_s, run.rss_kb, run.reached, run.probes
                    );
                    config.runs.push(run);
                } else {
                    let c = CONCURRENCY[k];
                    bench.over_budget("the next residency run")?;
                    let run = run_library(&bench, &file, c, n)?;
                    eprintln!(
                        "bench trace: N {n:>4} trace_all -c {c:>3}: {:.3} s (trace_all {:.3} s), {:.2} s CPU, {} KB, {}/{n} reached, {} probes",
                        run.wall,
                        run.inner_s.unwrap_or(f64::NAN),
                        run.cpu_s,
                        run.rss_kb,
                        run.reached,
                        run.probes
                    );
                    config.runs.push(run);
                }
            }
        }
        // `residency check` end to end, once per trace concurrency (or once at its default).
        let levels: Vec<Option<usize>> = if support.trace_concurrency {
            CONCURRENCY.iter().map(|c| Some(*c)).collect()
        } else {
            vec![None]
        };
        for c in levels {
            bench.over_budget("the residency check run")?;
            let settings = match c {
                Some(c) => format!("policy `trace:` as above, `--trace-concurrency {c}`"),
                None => "policy `trace:` as above (no `--trace-concurrency` flag yet)".to_string(),
            };
            let (runs, note) = match run_check(&bench, &support, n, c)? {
                CheckRun::Traced(run) => {
                    eprintln!(
                        "bench trace: N {n:>4} residency check {c:?}: {:.3} s, {} KB, {}/{n} reached, {} probes",
                        run.wall, run.rss_kb, run.reached, run.probes
                    );
                    (vec![run], None)
                }
                CheckRun::NotTracing { wall, rss_kb, why } => {
                    eprintln!(
                        "bench trace: N {n:>4} residency check: does not trace yet ({why}); ran in {wall:.3} s, {rss_kb} KB"
                    );
                    (
                        Vec::new(),
                        Some(format!("binary does not trace yet: {why}")),
                    )
                }
            };
            here.push(Config {
                n,
                tool: "`residency check`",
                settings,
                runs,
                note,
            });
        }
        configs.extend(here);
    }
    let limited = rate_limited(&bench.lab)? - limited_before;

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nTraceroute, client → r1 (5 ms) → r2 (5 ms) → N target addresses on one host (RTT 20 ms; \
         every trace must show r1, r2, target at TTL 1-3 to count as reached). {} CPUs. \
         Median of {REPETITIONS} runs (scamper `-p {SLOW_PPS}`: 1 run; `residency check`: 1 run), \
         wall time of the whole process, peak RSS from GNU time. residency: ICMP, max_hops \
         {MAX_HOPS}, 1 round, 1 s round timeout. scamper ({}): `scamper -c \"{SCAMPER_TRACE}\" \
         -p PPS -w 0 -O json -f targets`. Probes: ICMP echo requests the client sent (kernel counter).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        scamper_version(&bench.tools.scamper),
    );
    let _ = writeln!(
        out,
        "| N | tool | settings | wall (s) | CPU (s) | peak RSS (MB) | reached/N | probes sent | ÷ best scamper |"
    );
    let _ = writeln!(out, "|---:|---|---|---:|---:|---:|---:|---:|---:|");
    let mut verdicts = Vec::new();
    for n in SIZES {
        let best_scamper = configs
            .iter()
            .filter(|c| c.n == n && c.tool == "scamper" && !c.runs.is_empty())
            .map(|c| (summarize(&c.runs).0.wall, c.settings.clone()))
            .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        for config in configs.iter().filter(|c| c.n == n) {
            if config.runs.is_empty() {
                let _ = writeln!(
                    out,
                    "| {n} | {} | {} | — | — | — | — | — | {} |",
                    config.tool,
                    config.settings,
                    config.note.as_deref().unwrap_or("not run")
                );
                continue;
            }
            let (run, worst) = summarize(&config.runs);
            let reached = if worst == run.reached {
                format!("{}/{n}", run.reached)
            } else {
                format!("{}/{n} (worst run {worst})", run.reached)
            };
            let ratio = match (&best_scamper, config.tool) {
                (Some((best, settings)), "scamper") if *settings == config.settings => {
                    let _ = best;
                    "best".to_string()
                }
                (Some(_), "scamper") => "—".to_string(),
                (Some((best, _)), _) => format!("{:.2}×", run.wall / best),
                (None, _) => "—".to_string(),
            };
            let _ = writeln!(
                out,
                "| {n} | {} | {} | {:.3} | {:.2} | {:.1} | {reached} | {} | {ratio} |",
                config.tool,
                config.settings,
                run.wall,
                run.cpu_s,
                run.rss_kb as f64 / 1024.0,
                run.probes,
            );
            if config.tool == "residency `trace_all`"
                && let Some((best, _)) = &best_scamper
            {
                verdicts.push((n, config.settings.clone(), run.wall / best, run.inner_s));
            }
        }
        let _ = writeln!(
            out,
            "| {n} | residency, one trace alone × N | {:.0} ms per trace | {:.1} | — | — | — | — | {} |",
            one_trace * 1000.0,
            one_trace * n as f64,
            best_scamper
                .as_ref()
                .map_or("—".to_string(), |(b, _)| format!(
                    "{:.1}×",
                    one_trace * n as f64 / b
                )),
        );
    }
    let _ = writeln!(
        out,
        "\nICMP messages the lab's kernels suppressed by rate limits during the runs: {limited}. \
         One trace alone takes {:.0} ms against a 20 ms RTT to the target.",
        one_trace * 1000.0
    );
    for (n, settings, ratio, inner_s) in &verdicts {
        let goal = if *ratio <= GOAL_RATIO {
            "meets"
        } else {
            "misses"
        };
        let _ = writeln!(
            out,
            "N {n}, {settings}: {ratio:.2}× scamper's best, {goal} the {GOAL_RATIO}× goal \
             (trace_all itself {:.3} s; at one-trace-alone speed, N / concurrency × one trace would be {:.3} s).",
            inner_s.unwrap_or(f64::NAN),
            *n as f64 / concurrency_of(settings) as f64 * one_trace,
        );
    }
    let _ = writeln!(out, "Bench took {:.0} s.", began.elapsed().as_secs_f64());
    print!("{out}");
    Ok(())
}

/// The concurrency written at the end of a library row's settings.
fn concurrency_of(settings: &str) -> usize {
    settings
        .rsplit(' ')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

fn scamper_version(scamper: &Path) -> String {
    Command::new(scamper)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()
        // It prints its version on stderr.
        .map(|o| {
            String::from_utf8_lossy(&[o.stdout, o.stderr].concat())
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}
