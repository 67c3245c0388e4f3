//! `cargo bench --bench report`: how long a compliance report of a year takes, and how big it is.
//!
//! The history is the benches' synthetic year (`year.rs`): 1,460 six-hourly runs of the
//! 1,000-endpoint DNS lab policy, templated on one real `residency check` against a knotd on
//! 127.0.0.1 and written through `History::append`. Then, median of `REPETITIONS`: the period
//! report of the whole year and the run report of its last run, as HTML and PDF, both as library
//! calls (context, then render) and as `residency report` processes (the whole job, including
//! opening the history and verifying the policy's hash chain: from its verified checkpoint by
//! default, in full with `--full-verify`; and with `--no-verify`).
//!
//! Needs `knotd` (`apt-get install knot`) and `pdfinfo` (`poppler-utils`) for the page count;
//! a missing tool is an error. Bounded: a fixed number of runs, a deadline per process.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "dnslab.rs"]
mod dnslab;
#[path = "util.rs"]
mod util;
#[path = "year.rs"]
mod year;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dnslab::{ENDPOINTS, Lab};
use residency::history::History;
use residency::report::context::{self, Options, Selection};
use residency::report::render::{self, OutputFormat};
use util::{find_in_path, median, run_bounded};
use year::{DAYS, RUNS_PER_DAY, append_year, residency_bin, template};

const REPETITIONS: usize = 3;
const REPORT_DEADLINE: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench report failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Median wall time of `REPETITIONS` calls, and the last result.
fn timed<T>(mut f: impl FnMut() -> Result<T, String>) -> Result<(Duration, T), String> {
    let mut times = Vec::with_capacity(REPETITIONS);
    let mut last = None;
    for _ in 0..REPETITIONS {
        let start = Instant::now();
        last = Some(f()?);
        times.push(start.elapsed());
    }
    let last = last.ok_or("no repetition ran")?;
    Ok((median(&times), last))
}

/// Median wall time of `REPETITIONS` `residency report` processes; the size of the file made.
fn timed_process(work: &Path, args: &[String], out: &Path) -> Result<(Duration, usize), String> {
    let mut times = Vec::with_capacity(REPETITIONS);
    for _ in 0..REPETITIONS {
        let mut cmd = Command::new(residency_bin());
        // Verified checkpoints go to the bench's own state directory, not the user's.
        cmd.args(args).env("XDG_STATE_HOME", work.join("state"));
        let finished = run_bounded(
            cmd,
            &work.join("report.out"),
            &work.join("report.err"),
            REPORT_DEADLINE,
        )?
        .ok_or("`residency report` outlived its deadline")?;
        if !finished.status.success() {
            return Err(format!(
                "`residency report {}` failed: {}",
                args.join(" "),
                std::fs::read_to_string(work.join("report.err")).unwrap_or_default()
            ));
        }
        times.push(finished.elapsed);
    }
    let size = std::fs::metadata(out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((median(&times), size.len() as usize))
}

fn pages(pdfinfo: &Path, pdf: &Path) -> Result<usize, String> {
    let out = Command::new(pdfinfo)
        .arg(pdf)
        .output()
        .map_err(|e| format!("pdfinfo: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("pdfinfo gave no page count for {}", pdf.display()))
}

fn bench() -> Result<(), String> {
    let pdfinfo = find_in_path("pdfinfo").ok_or(
        "pdfinfo not found; install with `apt-get install poppler-utils` (this bench does not skip)",
    )?;
    let lab = Lab::start()?;
    let template = template(&lab)?;
    let db = lab.dir.path().join("year.sqlite");
    let mut history = History::open(&db).map_err(|e| e.to_string())?;
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z"
        .parse()
        .map_err(|e| format!("start date: {e}"))?;
    let runs = DAYS * RUNS_PER_DAY;
    let fill = append_year(&mut history, &template, start, runs)?;
    eprintln!(
        "bench report: {runs} runs × {ENDPOINTS} endpoints written in {:.1} s",
        secs(fill)
    );
    let policy = template.policy.id.clone();
    let period = Selection::Period {
        since: None,
        until: None,
    };
    let run = Selection::Run(None);
    let options = |verify_chain| Options {
        generated_at: Utc::now(),
        verify_chain,
        full_verify: true,
    };
    let e = |e: residency::report::ReportError| e.to_string();

    // Library: the context (history reads, comparisons, charts), then each renderer.
    let (ctx_period, period_ctx) =
        timed(|| context::build(&history, &db, &policy, &period, &options(false)).map_err(e))?;
    if period_ctx.runs.len() as u64 != runs || period_ctx.endpoint_history.len() != ENDPOINTS {
        return Err(format!(
            "the period context has {} runs and {} endpoints",
            period_ctx.runs.len(),
            period_ctx.endpoint_history.len()
        ));
    }
    let (ctx_verified, _) =
        timed(|| context::build(&history, &db, &policy, &period, &options(true)).map_err(e))?;
    let (ctx_run, run_ctx) =
        timed(|| context::build(&history, &db, &policy, &run, &options(false)).map_err(e))?;
    let (period_html, period_html_bytes) =
        timed(|| render::render(&period_ctx, OutputFormat::Html, None).map_err(e))?;
    let (period_pdf, period_pdf_bytes) =
        timed(|| render::render(&period_ctx, OutputFormat::Pdf, None).map_err(e))?;
    let (run_html, run_html_bytes) =
        timed(|| render::render(&run_ctx, OutputFormat::Html, None).map_err(e))?;
    let (run_pdf, run_pdf_bytes) =
        timed(|| render::render(&run_ctx, OutputFormat::Pdf, None).map_err(e))?;
    let work = lab.dir.path();
    let period_pdf_file = work.join("lib-period.pdf");
    let run_pdf_file = work.join("lib-run.pdf");
    std::fs::write(&period_pdf_file, &period_pdf_bytes).map_err(|e| e.to_string())?;
    std::fs::write(&run_pdf_file, &run_pdf_bytes).map_err(|e| e.to_string())?;
    let period_pages = pages(&pdfinfo, &period_pdf_file)?;
    let run_pages = pages(&pdfinfo, &run_pdf_file)?;

    // The binary, end to end.
    let cli = |out: &PathBuf, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["report", policy.as_str(), "--db"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(db.display().to_string());
        v.push("--out".into());
        v.push(out.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let since = ["--since", "2025-01-01"];
    let out_pdf = work.join("year.pdf");
    let out_html = work.join("year.html");
    let out_run = work.join("last.pdf");
    let mut full = since.to_vec();
    full.push("--full-verify");
    let bin_period_pdf_full = timed_process(work, &cli(&out_pdf, &full), &out_pdf)?;
    // The default: every repetition after a full verification, so from its checkpoint.
    let bin_period_pdf = timed_process(work, &cli(&out_pdf, &since), &out_pdf)?;
    let mut no_verify = since.to_vec();
    no_verify.push("--no-verify");
    let bin_period_pdf_nv = timed_process(work, &cli(&out_pdf, &no_verify), &out_pdf)?;
    let bin_period_html = timed_process(work, &cli(&out_html, &since), &out_html)?;
    let bin_run_pdf = timed_process(work, &cli(&out_run, &[]), &out_run)?;

    // RESIDENCY_BENCH_KEEP=DIR keeps the year's reports for a look (the README's screenshot).
    if let Some(keep) = std::env::var_os("RESIDENCY_BENCH_KEEP") {
        for f in [&out_pdf, &out_html, &out_run] {
            if let Some(name) = f.file_name() {
                let _ = std::fs::copy(f, Path::new(&keep).join(name));
            }
        }
    }

    println!(
        "## report bench: {runs} runs ({DAYS} days × {RUNS_PER_DAY}) × {ENDPOINTS} endpoints, median of {REPETITIONS}"
    );
    println!();
    println!(
        "- context (library): period {:.2} s ({:.2} s with the chain verified), last run {:.2} s",
        secs(ctx_period),
        secs(ctx_verified),
        secs(ctx_run)
    );
    println!();
    println!("| report | render (library) | `residency report` process | size | pages |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| period, PDF | {:.2} s | {:.2} s ({:.2} s with `--full-verify`, {:.2} s with `--no-verify`) | {:.2} MB | {period_pages} |",
        secs(period_pdf),
        secs(bin_period_pdf.0),
        secs(bin_period_pdf_full.0),
        secs(bin_period_pdf_nv.0),
        mb(bin_period_pdf.1)
    );
    println!(
        "| period, HTML | {:.2} s | {:.2} s | {:.2} MB | — |",
        secs(period_html),
        secs(bin_period_html.0),
        mb(bin_period_html.1)
    );
    println!(
        "| last run, PDF | {:.2} s | {:.2} s | {:.2} MB | {run_pages} |",
        secs(run_pdf),
        secs(bin_run_pdf.0),
        mb(bin_run_pdf.1)
    );
    println!(
        "| last run, HTML | {:.2} s | — | {:.2} MB | — |",
        secs(run_html),
        mb(run_html_bytes.len())
    );
    println!();
    println!(
        "(period HTML from the library: {:.2} MB)",
        mb(period_html_bytes.len())
    );
    Ok(())
}
