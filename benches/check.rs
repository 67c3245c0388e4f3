//! `cargo bench --bench check`: how fast `residency check` measures a 1,000-endpoint policy
//! against a real DNS server on loopback, how much memory it takes, how fast a dedicated DNS
//! load tool (dnsperf) gets through the same queries on the same server, and how much the
//! history grows per run.
//!
//! Everything runs against a knotd started here on 127.0.0.1; no packet leaves loopback. Every
//! load loop is bounded in count (fixed repetitions, `dnsperf -n 1`) and in time (a deadline per
//! process, after which its process group is killed, and an overall budget).
//!
//! Needs `knotd`, GNU `time` and `dnsperf` (`apt-get install knot time dnsperf`); `kdig`
//! (`knot-dnsutils`) is optional. A missing tool is an error, never a silent skip.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "dnslab.rs"]
mod dnslab;
#[path = "util.rs"]
mod util;
use dnslab::{ENDPOINTS, Lab, REPEAT};
use util::{find_in_path, median, run_bounded};

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// A and AAAA for every endpoint, `REPEAT` times, from the one resolver.
const QUERIES: usize = ENDPOINTS * 2 * REPEAT;
const REPETITIONS: usize = 3;
/// Concurrency levels measured after the sequential (or fallback) level.
const CONCURRENCY: [u16; 3] = [16, 64, 256];
/// The default `--concurrency`, which dnsperf's `-q` is compared against.
const DEFAULT_CONCURRENCY: u16 = 64;
/// Concurrency 1 is measured only if one run finishes within this; otherwise `FALLBACK`.
const SEQUENTIAL_LIMIT: Duration = Duration::from_secs(60);
const FALLBACK_CONCURRENCY: u16 = 8;
/// Most any single run of residency or dnsperf may take before it is killed.
const RUN_DEADLINE: Duration = Duration::from_secs(90);
/// Most the whole bench may take; past it, no new run is started.
const BUDGET: Duration = Duration::from_secs(300);
/// dnsperf is run only at this many outstanding queries or more: at `-q 1`/`-q 2` dnsperf 2.10
/// stalls at random (about 10 ms per query, hitting its `-l` limit), which measures dnsperf.
const DNSPERF_MIN_OUTSTANDING: u16 = 16;
/// Names asked by the optional kdig loop, one process per query.
const KDIG_NAMES: usize = 200;

const INSTALL: &str = "apt-get install time dnsperf";

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench check failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Tools the bench cannot do without; the error names the packages to install.
struct Tools {
    time: PathBuf,
    dnsperf: PathBuf,
    kdig: Option<PathBuf>,
}

fn find_tools() -> Result<Tools, String> {
    let time = find_in_path("time").or_else(|| {
        Path::new("/usr/bin/time")
            .is_file()
            .then(|| PathBuf::from("/usr/bin/time"))
    });
    let dnsperf = find_in_path("dnsperf");
    let mut missing = Vec::new();
    if time.is_none() {
        missing.push("GNU time (/usr/bin/time)");
    }
    if dnsperf.is_none() {
        missing.push("dnsperf");
    }
    match (time, dnsperf) {
        (Some(time), Some(dnsperf)) => Ok(Tools {
            time,
            dnsperf,
            kdig: find_in_path("kdig"),
        }),
        _ => Err(format!(
            "{} not found; install with `{INSTALL}` (this bench does not skip)",
            missing.join(" and ")
        )),
    }
}

/// One measured `residency check`.
struct CheckRun {
    wall: Duration,
    /// GNU time's `%e`, seconds with two decimals (a cross-check of `wall`).
    gnu_wall: f64,
    rss_kb: u64,
    exit: i32,
    compliant: u64,
    inconclusive: u64,
    violation: u64,
    db_bytes: u64,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The history database and its SQLite side files (`-wal`, `-journal`), in bytes.
fn db_size(db: &Path) -> u64 {
    let side = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        file_size(Path::new(&p))
    };
    file_size(db) + side("-wal") + side("-journal")
}

fn run_check(
    lab: &Lab,
    tools: &Tools,
    concurrency: u16,
    db: &Path,
    deadline: Duration,
) -> Result<Option<CheckRun>, String> {
    let work = lab.dir.path();
    let time_out = work.join("time.txt");
    let stdout = work.join("check.json");
    let stderr = work.join("check.err");
    let mut cmd = Command::new(&tools.time);
    cmd.arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&time_out)
        .arg(env!("CARGO_BIN_EXE_residency"))
        .args(["check", "--format", "json", "--concurrency"])
        .arg(concurrency.to_string())
        .arg("--db")
        .arg(db)
        .arg(&lab.policy)
        .current_dir(work)
        .env_remove("RESIDENCY_LOG")
        .env_remove("RESIDENCY_DB");
    let Some(done) = run_bounded(cmd, &stdout, &stderr, deadline)? else {
        return Ok(None);
    };
    let stderr_text = std::fs::read_to_string(&stderr).unwrap_or_default();
    let code = done.status.code().unwrap_or(-1);
    if !(0..=2).contains(&code) {
        return Err(format!(
            "residency check --concurrency {concurrency} exited {code} (expected 0, 1 or 2):\n{stderr_text}"
        ));
    }
    let timing = std::fs::read_to_string(&time_out).map_err(|e| format!("time output: {e}"))?;
    // GNU time writes "Command exited with non-zero status N" before the format line.
    let last = timing.lines().last().unwrap_or_default();
    let mut fields = last.split_whitespace();
    let gnu_wall: f64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("cannot read wall time from GNU time: {timing:?}"))?;
    let rss_kb: u64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("cannot read peak RSS from GNU time: {timing:?}"))?;

    let doc: serde_json::Value = serde_json::from_reader(
        File::open(&stdout).map_err(|e| format!("{}: {e}", stdout.display()))?,
    )
    .map_err(|e| format!("residency stdout is not JSON ({e}); stderr:\n{stderr_text}"))?;
    let summary = &doc["summary"];
    let count = |key: &str| summary[key].as_u64().unwrap_or(u64::MAX);
    if count("endpoints") != ENDPOINTS as u64 || count("queries") != QUERIES as u64 {
        return Err(format!(
            "expected {ENDPOINTS} endpoints and {QUERIES} queries, the summary says {summary}"
        ));
    }
    Ok(Some(CheckRun {
        wall: done.elapsed,
        gnu_wall,
        rss_kb,
        exit: code,
        compliant: count("compliant"),
        inconclusive: count("inconclusive"),
        violation: count("violation"),
        db_bytes: db_size(db),
    }))
}

/// One dnsperf pass over the query file.
struct PerfRun {
    run_time: f64,
    qps: f64,
    completed: u64,
    lost: u64,
}

fn run_dnsperf(lab: &Lab, tools: &Tools, outstanding: u16) -> Result<PerfRun, String> {
    let addr = lab.addr();
    let work = lab.dir.path();
    let (stdout, stderr) = (work.join("dnsperf.out"), work.join("dnsperf.err"));
    let mut cmd = Command::new(&tools.dnsperf);
    cmd.args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("-d")
        .arg(&lab.queries)
        // EDNS on, as residency sends it; one pass, one client, bounded in time.
        .args(["-e", "-n", "1", "-l", "60", "-c", "1", "-t", "2", "-q"])
        .arg(outstanding.to_string());
    let done = run_bounded(cmd, &stdout, &stderr, RUN_DEADLINE)?
        .ok_or_else(|| format!("dnsperf -q {outstanding} did not finish in {RUN_DEADLINE:?}"))?;
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    if !done.status.success() {
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        return Err(format!("dnsperf failed ({}):\n{text}\n{err}", done.status));
    }
    let field = |label: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {label:?} in dnsperf output:\n{text}"))
    };
    Ok(PerfRun {
        run_time: field("Run time (s):")?,
        qps: field("Queries per second:")?,
        completed: field("Queries completed:")? as u64,
        lost: field("Queries lost:")? as u64,
    })
}

/// `kdig` once per name, sequentially, over the first `KDIG_NAMES` names: queries/s and answers.
fn run_kdig(lab: &Lab, kdig: &Path, budget_end: Instant) -> Result<(f64, usize), String> {
    let addr = lab.addr();
    let start = Instant::now();
    let mut answered = 0;
    for i in 0..KDIG_NAMES {
        if Instant::now() > budget_end || start.elapsed() > Duration::from_secs(30) {
            return Err(format!("kdig loop stopped after {i} names (time bound)"));
        }
        let out = Command::new(kdig)
            .arg(format!("@{}", addr.ip()))
            .args(["-p", &addr.port().to_string()])
            .args(["+short", "+timeout=2", "+retry=0"])
            .arg(format!("h{i}.bench.test"))
            .arg("A")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("kdig: {e}"))?;
        if out.status.success() && String::from_utf8_lossy(&out.stdout).lines().count() == 2 {
            answered += 1;
        }
    }
    Ok((KDIG_NAMES as f64 / start.elapsed().as_secs_f64(), answered))
}

fn tool_version(program: &Path, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .find(|l| l.to_lowercase().contains("version"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

struct Row {
    concurrency: u16,
    runs: Vec<CheckRun>,
    dnsperf: Vec<PerfRun>,
}

fn bench() -> Result<(), String> {
    let tools = find_tools()?;
    let began = Instant::now();
    let budget_end = began + BUDGET;
    let over_budget = |what: &str| -> Result<(), String> {
        if Instant::now() > budget_end {
            Err(format!(
                "over the {BUDGET:?} budget before {what}; nothing further was run"
            ))
        } else {
            Ok(())
        }
    };

    eprintln!("bench check: starting knotd with {ENDPOINTS} names on loopback");
    let lab = Lab::start()?;
    eprintln!("bench check: knotd on {}", lab.addr());
    let mut run_no = 0;
    let mut fresh_db = || {
        run_no += 1;
        lab.dir.path().join(format!("history-{run_no}.sqlite"))
    };

    // Concurrency 1 if a sequential run fits in SEQUENTIAL_LIMIT, else FALLBACK_CONCURRENCY.
    let mut rows = Vec::new();
    let probe = run_check(&lab, &tools, 1, &fresh_db(), SEQUENTIAL_LIMIT)?;
    let mut levels = Vec::new();
    match probe {
        Some(run) => {
            eprintln!(
                "bench check: concurrency 1 took {:.2} s, measuring it",
                run.wall.as_secs_f64()
            );
            rows.push(Row {
                concurrency: 1,
                runs: vec![run],
                dnsperf: Vec::new(),
            });
        }
        None => {
            eprintln!(
                "bench check: concurrency 1 exceeded {SEQUENTIAL_LIMIT:?} (killed); using {FALLBACK_CONCURRENCY}"
            );
            levels.push(FALLBACK_CONCURRENCY);
        }
    }
    levels.extend(CONCURRENCY);
    for c in levels {
        rows.push(Row {
            concurrency: c,
            runs: Vec::new(),
            dnsperf: Vec::new(),
        });
    }

    for row in &mut rows {
        while row.runs.len() < REPETITIONS {
            over_budget("the next residency run")?;
            let run = run_check(&lab, &tools, row.concurrency, &fresh_db(), RUN_DEADLINE)?
                .ok_or_else(|| {
                    format!(
                        "residency check --concurrency {} did not finish in {RUN_DEADLINE:?}",
                        row.concurrency
                    )
                })?;
            eprintln!(
                "bench check: residency -c {:>3}: {:.3} s (GNU time {:.2} s), {} KB, exit {}, {}/{}/{} compliant/inconclusive/violation",
                row.concurrency,
                run.wall.as_secs_f64(),
                run.gnu_wall,
                run.rss_kb,
                run.exit,
                run.compliant,
                run.inconclusive,
                run.violation
            );
            row.runs.push(run);
        }
        if row.concurrency < DNSPERF_MIN_OUTSTANDING {
            continue;
        }
        for _ in 0..REPETITIONS {
            over_budget("the next dnsperf run")?;
            let perf = run_dnsperf(&lab, &tools, row.concurrency)?;
            eprintln!(
                "bench check: dnsperf   -q {:>3}: {:.3} s, {:.0} q/s, {} completed, {} lost",
                row.concurrency, perf.run_time, perf.qps, perf.completed, perf.lost
            );
            row.dnsperf.push(perf);
        }
    }

    // History growth: the first run into an empty database, then a second run into the same one.
    over_budget("the history runs")?;
    let db = fresh_db();
    let grow = |what: &str| -> Result<CheckRun, String> {
        run_check(&lab, &tools, DEFAULT_CONCURRENCY, &db, RUN_DEADLINE)?
            .ok_or_else(|| format!("{what} history run did not finish in {RUN_DEADLINE:?}"))
    };
    let first = grow("first")?.db_bytes;
    let second = grow("second")?.db_bytes;

    let kdig = tools
        .kdig
        .as_ref()
        .map(|kdig| run_kdig(&lab, kdig, budget_end));

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n`residency check`, {ENDPOINTS} endpoints × (A + AAAA) × repeat {REPEAT} = {QUERIES} \
         queries to one knotd on 127.0.0.1 ({}, 1 UDP worker); {} CPUs; median of {REPETITIONS} \
         runs, fresh history DB each run. dnsperf ({}) sends the same {QUERIES} queries \
         (`-n 1 -c 1 -e`, `-q` = the concurrency in that row; not below `-q {DNSPERF_MIN_OUTSTANDING}`, \
         where dnsperf stalls); \"dnsperf lost\" is summed over its {REPETITIONS} passes.\n",
        tool_version(Path::new("knotd"), "-V"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tool_version(&tools.dnsperf, "-h"),
    );
    let _ = writeln!(
        out,
        "| concurrency | wall (s) | slowest (s) | queries/s | peak RSS (MB) | exit | dnsperf run time (s) | dnsperf queries/s | dnsperf lost |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let wall = median(
            &row.runs
                .iter()
                .map(|r| r.wall.as_secs_f64())
                .collect::<Vec<_>>(),
        );
        let rss = median(&row.runs.iter().map(|r| r.rss_kb).collect::<Vec<_>>());
        let mut exits: Vec<i32> = row.runs.iter().map(|r| r.exit).collect();
        exits.dedup();
        let exits: Vec<String> = exits.iter().map(i32::to_string).collect();
        let slowest = row
            .runs
            .iter()
            .map(|r| r.wall.as_secs_f64())
            .fold(0.0, f64::max);
        let perf = if row.dnsperf.is_empty() {
            "— | — | —".to_string()
        } else {
            let time = median(&row.dnsperf.iter().map(|p| p.run_time).collect::<Vec<_>>());
            let qps = median(&row.dnsperf.iter().map(|p| p.qps).collect::<Vec<_>>());
            let lost: u64 = row.dnsperf.iter().map(|p| p.lost).sum();
            format!("{time:.3} | {qps:.0} | {lost}")
        };
        let default = if row.concurrency == DEFAULT_CONCURRENCY {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{default} | {wall:.3} | {slowest:.3} | {:.0} | {:.1} | {} | {perf} |",
            row.concurrency,
            QUERIES as f64 / wall,
            rss as f64 / 1024.0,
            exits.join("/"),
        );
    }
    let _ = writeln!(
        out,
        "\nHistory: {:.1} MB after one {ENDPOINTS}-endpoint run into an empty database; \
         {:.1} MB after a second ({:+.1} MB per run).",
        first as f64 / 1e6,
        second as f64 / 1e6,
        (second as f64 - first as f64) / 1e6
    );
    match kdig {
        Some(Ok((qps, answered))) => {
            let _ = writeln!(
                out,
                "kdig, one process per query over the first {KDIG_NAMES} names: {qps:.0} queries/s \
                 ({answered}/{KDIG_NAMES} answered with 2 A records)."
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "kdig loop: {e}");
        }
        None => {
            let _ = writeln!(
                out,
                "kdig: not installed (optional: apt-get install knot-dnsutils)."
            );
        }
    }
    let lost: u64 = rows.iter().flat_map(|r| &r.dnsperf).map(|p| p.lost).sum();
    let inconclusive: u64 = rows
        .iter()
        .flat_map(|r| &r.runs)
        .map(|r| r.inconclusive)
        .sum();
    let _ = writeln!(
        out,
        "Inconclusive endpoints over all residency runs: {inconclusive}; dnsperf queries lost: {lost}. \
         Bench took {:.0} s.",
        began.elapsed().as_secs_f64()
    );
    print!("{out}");
    Ok(())
}
