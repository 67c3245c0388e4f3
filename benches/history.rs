//! `cargo bench --bench history`: how fast the history answers once it holds a year of 6-hourly
//! runs of a 1,000-endpoint policy, and how big that year is on disk.
//!
//! The year is built from one real run: `residency check` measures the 1,000-endpoint lab policy
//! against a knotd on 127.0.0.1 (no packet leaves loopback), and its run document is the template
//! of 1,460 runs written through the real write path (`History::append`). Between runs the
//! synthetic vendor changes things the way the history has to show: the first 100 endpoints are
//! located in CN (a violation) until day 120 and then move to IN, and every run a few endpoints
//! (a different few each time) come out inconclusive.
//!
//! Then, median of `REPETITIONS`: `history --policy`, `diff` across the move, `timeline` per run
//! and per day and `claims`, both as library calls and as `residency` processes writing JSON;
//! the `sqlite3` shell listing the same runs is the peer. `history verify` is timed once.
//!
//! Needs `knotd` and `sqlite3` (`apt-get install knot sqlite3`); a missing tool is an error.
//! Bounded: a fixed number of runs, a deadline per process, and an overall budget for the fill.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "dnslab.rs"]
mod dnslab;
#[path = "util.rs"]
mod util;
#[path = "year.rs"]
mod year;
use dnslab::{ENDPOINTS, Lab};
use util::{find_in_path, median, run_bounded};
use year::{DAYS, MOVE_DAY, MOVED, RUNS_PER_DAY, append_year, residency_bin, template};

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, Utc};
use residency::compare::{self, Per, RunRef};
use residency::history::{History, RunFilter};

const REPETITIONS: usize = 5;
const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench history failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median wall time of `f`, run `REPETITIONS` times.
fn timed<T>(mut f: impl FnMut() -> Result<T, String>) -> Result<Duration, String> {
    let mut times = Vec::with_capacity(REPETITIONS);
    for _ in 0..REPETITIONS {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    Ok(median(&times))
}

/// Median wall time of a process (output to a file), and the size of its output.
fn timed_process(work: &Path, mut cmd: impl FnMut() -> Command) -> Result<(Duration, u64), String> {
    let out = work.join("query.out");
    let err = work.join("query.err");
    let mut size = 0;
    let time = timed(|| {
        let finished =
            run_bounded(cmd(), &out, &err, RUN_DEADLINE)?.ok_or("a query outlived its deadline")?;
        if !finished.status.success() {
            return Err(format!(
                "query failed: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            ));
        }
        size = file_size(&out);
        Ok(finished.elapsed)
    })?;
    Ok((time, size))
}

/// What filling the year took.
struct Fill {
    template_bytes: usize,
    time: Duration,
}

/// Measures the template run against the DNS lab and appends the year of runs to `db`.
fn fill_year(db: &Path, start: DateTime<Utc>, runs: u64) -> Result<Fill, String> {
    let lab = Lab::start()?;
    eprintln!("bench history: knotd on {}", lab.addr());
    let template = template(&lab)?;
    let template_bytes = serde_json::to_vec(&template)
        .map_err(|e| e.to_string())?
        .len();
    eprintln!(
        "bench history: template run has {} endpoints, {:.2} MB of JSON",
        template.endpoints.len(),
        mb(template_bytes as u64)
    );
    let mut history = History::open(db).map_err(|e| e.to_string())?;
    Ok(Fill {
        template_bytes,
        time: append_year(&mut history, &template, start, runs)?,
    })
}

fn bench() -> Result<(), String> {
    let sqlite3 = find_in_path("sqlite3").ok_or(
        "sqlite3 not found; install with `apt-get install sqlite3` (this bench does not skip)",
    )?;
    let scratch = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    // RESIDENCY_BENCH_YEAR=PATH keeps the filled year at PATH, and reuses it when it exists, so
    // the queries can be re-measured without the ten-minute fill.
    let keep = std::env::var_os("RESIDENCY_BENCH_YEAR").map(PathBuf::from);
    let runs = DAYS * RUNS_PER_DAY;
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z"
        .parse()
        .map_err(|e| format!("start date: {e}"))?;
    let (db, fill) = match keep {
        Some(path) if path.exists() => {
            eprintln!("bench history: reusing the year in {}", path.display());
            (path, None)
        }
        keep => {
            let db = keep.unwrap_or_else(|| scratch.path().join("year.sqlite"));
            let fill = fill_year(&db, start, runs)?;
            (db, Some(fill))
        }
    };
    let policy = residency::policy::PolicyId::parse(dnslab::POLICY_ID)?;
    // Checkpoint so the file size is the database, not database plus write-ahead log.
    let status = Command::new(&sqlite3)
        .arg(&db)
        .arg("PRAGMA wal_checkpoint(TRUNCATE);")
        .output()
        .map_err(|e| format!("sqlite3: {e}"))?;
    if !status.status.success() {
        return Err("sqlite3 could not checkpoint the history".into());
    }
    let db_bytes = file_size(&db);

    let history = History::open(&db).map_err(|e| e.to_string())?;
    let filter = RunFilter {
        policy_id: Some(policy.clone()),
        ..RunFilter::default()
    };
    let listed = history.list(&filter).map_err(|e| e.to_string())?.len();
    if listed as u64 != runs {
        return Err(format!("expected {runs} runs, the history lists {listed}"));
    }
    let before = (start + Days::new(MOVE_DAY - 1)).date_naive().to_string();
    let after = (start + Days::new(MOVE_DAY + 1)).date_naive().to_string();
    let from = RunRef::parse(&before).map_err(|e| e.to_string())?;
    let to = RunRef::parse(&after).map_err(|e| e.to_string())?;
    let e = |e: compare::CompareError| e.to_string();

    // Sanity: the answers show the vendor's move, so the timings are of real work.
    let d = compare::diff(&history, &db, &policy, from, to).map_err(e)?;
    if d.endpoints_changed.len() < MOVED {
        return Err(format!(
            "the diff across the move shows {} changed endpoints, expected at least {MOVED}",
            d.endpoints_changed.len()
        ));
    }
    let t = compare::timeline(&history, &db, &policy, None, None, Per::Day).map_err(e)?;
    if t.points.len() as u64 != DAYS {
        return Err(format!("the daily timeline has {} points", t.points.len()));
    }

    let lib_list = timed(|| history.list(&filter).map_err(|e| e.to_string()))?;
    let lib_diff = timed(|| compare::diff(&history, &db, &policy, from, to).map_err(e))?;
    let lib_run =
        timed(|| compare::timeline(&history, &db, &policy, None, None, Per::Run).map_err(e))?;
    let lib_day =
        timed(|| compare::timeline(&history, &db, &policy, None, None, Per::Day).map_err(e))?;
    let lib_claims = timed(|| compare::claims(&history, &db, &policy).map_err(e))?;

    let work = scratch.path();
    let cli = |args: Vec<String>| {
        let db = db.clone();
        move || {
            let mut cmd = Command::new(residency_bin());
            cmd.args(&args).arg("--db").arg(&db);
            cmd
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let p = policy.as_str();
    let bin_list = timed_process(
        work,
        cli(s(&["history", "--policy", p, "--format", "json"])),
    )?;
    let bin_diff = timed_process(
        work,
        cli(s(&[
            "diff", p, "--from", &before, "--to", &after, "--format", "json",
        ])),
    )?;
    let bin_run = timed_process(work, cli(s(&["timeline", p, "--format", "json"])))?;
    let bin_day = timed_process(
        work,
        cli(s(&["timeline", p, "--per", "day", "--format", "json"])),
    )?;
    let bin_claims = timed_process(work, cli(s(&["claims", p, "--format", "json"])))?;
    let peer_list = timed_process(work, || {
        let mut cmd = Command::new(&sqlite3);
        cmd.arg("-json").arg(&db).arg(format!(
            "SELECT id, policy_id, seq, started_at, finished_at, verdict, hash FROM runs \
             WHERE policy_id = '{p}' ORDER BY started_at, id"
        ));
        cmd
    })?;
    let verify_start = Instant::now();
    let report = history.verify(Some(&policy)).map_err(|e| e.to_string())?;
    let verify = verify_start.elapsed();
    if !report.is_intact() {
        return Err(format!("the synthetic year does not verify: {report}"));
    }

    println!(
        "## history bench: {runs} runs ({DAYS} days × {RUNS_PER_DAY}) × {ENDPOINTS} endpoints"
    );
    println!();
    let first = history
        .list(&filter)
        .map_err(|e| e.to_string())?
        .first()
        .map(|r| r.id)
        .ok_or("the year has no runs")?;
    let doc_bytes = history
        .document_text(first)
        .map_err(|e| e.to_string())?
        .map_or(0, |t| t.len());
    if let Some(fill) = &fill {
        println!(
            "- template run: {:.2} MB of JSON; filling the year through `History::append`: {:.1} s ({:.1} ms per run)",
            mb(fill.template_bytes as u64),
            fill.time.as_secs_f64(),
            ms(fill.time) / runs as f64
        );
    }
    println!(
        "- database: {:.1} MB ({:.0} KB per run; {:.1} GB of canonical documents uncompressed)",
        mb(db_bytes),
        db_bytes as f64 / 1024.0 / runs as f64,
        doc_bytes as f64 * runs as f64 / 1e9
    );
    println!(
        "- `history verify` of the policy: {:.1} s",
        verify.as_secs_f64()
    );
    println!();
    println!("| query | library call | `residency` process (JSON out) | output |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, lib: Option<Duration>, bin: (Duration, u64)| {
        println!(
            "| {name} | {} | {:.1} ms | {:.0} KB |",
            lib.map_or("—".to_string(), |l| format!("{:.1} ms", ms(l))),
            ms(bin.0),
            bin.1 as f64 / 1024.0
        );
    };
    row("`history --policy` (1,460 runs)", Some(lib_list), bin_list);
    row("`diff` across the move", Some(lib_diff), bin_diff);
    row("`timeline` per run", Some(lib_run), bin_run);
    row("`timeline --per day`", Some(lib_day), bin_day);
    row("`claims`", Some(lib_claims), bin_claims);
    row(
        "peer: `sqlite3 -json` listing the same runs",
        None,
        peer_list,
    );
    Ok(())
}
