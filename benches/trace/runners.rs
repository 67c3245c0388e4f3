//! The three ways of tracing that the bench compares, each run the same way: residency's
//! library (`trace_all`), scamper, and the `residency check` binary.

use super::*;

/// One run of any tool: wall time, peak RSS, traces that showed the expected path, probes sent.
#[derive(Clone)]
pub(super) struct Run {
    pub(super) wall: f64,
    pub(super) rss_kb: u64,
    pub(super) cpu_s: f64,
    pub(super) reached: usize,
    pub(super) probes: u64,
    /// `trace_all`'s own time inside the process (library runs only).
    pub(super) inner_s: Option<f64>,
}

/// `trace_all` over a targets file at `concurrency`, inside the client namespace.
pub(super) fn run_library(
    bench: &Bench,
    file: &Path,
    concurrency: usize,
    expect: usize,
) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let before = echo_requests_sent(&bench.lab)?;
    let label = format!("residency trace_all -c {concurrency}");
    let timed = run_timed(
        bench,
        &label,
        &exe,
        &[
            INNER.to_string(),
            file.display().to_string(),
            concurrency.to_string(),
        ],
    )?;
    let probes = echo_requests_sent(&bench.lab)? - before;
    if timed.exit != 0 {
        return Err(format!("{label} exited {}:\n{}", timed.exit, timed.stderr));
    }
    let result: InnerResult = serde_json::from_str(&timed.stdout).map_err(|e| {
        format!(
            "{label}: stdout is not JSON ({e}); stderr:\n{}",
            timed.stderr
        )
    })?;
    if result.paths.len() != expect {
        return Err(format!(
            "{label}: {} paths for {expect} targets",
            result.paths.len()
        ));
    }
    let mut reached = 0;
    let mut first_bad = None;
    for path in &result.paths {
        let hops: Vec<(u8, Option<IpAddr>)> = path.hops.iter().map(|h| (h.ttl, h.addr)).collect();
        if path.status == TraceStatus::Measured
            && path.reached
            && bench.expected(path.target, &hops)
        {
            reached += 1;
        } else if first_bad.is_none() {
            first_bad = Some(format!(
                "{} status {:?} reached {} hops {hops:?}",
                path.target, path.status, path.reached
            ));
        }
    }
    if let Some(bad) = first_bad {
        eprintln!("bench trace: {label}: first unexpected path: {bad}");
    }
    Ok(Run {
        wall: timed.wall.as_secs_f64(),
        rss_kb: timed.rss_kb,
        cpu_s: timed.cpu_s,
        reached,
        probes,
        inner_s: Some(result.elapsed_s),
    })
}

/// The scamper command run for each target; `-w 1` waits 1 s for a reply, as residency's round
/// timeout, instead of scamper's 5 s.
pub(super) const SCAMPER_TRACE: &str = "trace -P icmp-paris -q 1 -m 8 -w 1";

pub(super) fn scamper_args(file: &Path, pps: u32) -> Vec<String> {
    vec![
        "-c".to_string(),
        SCAMPER_TRACE.to_string(),
        "-p".to_string(),
        pps.to_string(),
        // No bound on traces in parallel (scamper's default too): the packet rate is the bound.
        "-w".to_string(),
        "0".to_string(),
        "-O".to_string(),
        "json".to_string(),
        "-f".to_string(),
        file.display().to_string(),
    ]
}

pub(super) fn run_scamper(
    bench: &Bench,
    file: &Path,
    pps: u32,
    expect: usize,
) -> Result<Run, String> {
    let before = echo_requests_sent(&bench.lab)?;
    let label = format!("scamper -p {pps}");
    let timed = run_timed(
        bench,
        &label,
        &bench.tools.scamper,
        &scamper_args(file, pps),
    )?;
    let probes = echo_requests_sent(&bench.lab)? - before;
    if timed.exit != 0 {
        return Err(format!("{label} exited {}:\n{}", timed.exit, timed.stderr));
    }
    // One JSON object per line; per destination, whether the trace showed the expected path.
    let mut ok: BTreeMap<IpAddr, bool> = BTreeMap::new();
    let mut first_bad = None;
    for line in timed.stdout.lines() {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if doc["type"] != "trace" {
            continue;
        }
        let Some(dst) = doc["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()) else {
            continue;
        };
        let mut hops: Vec<(u8, Option<IpAddr>)> = doc["hops"]
            .as_array()
            .map(|hops| {
                hops.iter()
                    .map(|h| {
                        (
                            h["probe_ttl"].as_u64().unwrap_or(0) as u8,
                            h["addr"].as_str().and_then(|a| a.parse().ok()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        hops.sort_by_key(|h| h.0);
        let good = doc["stop_reason"] == "COMPLETED" && bench.expected(dst, &hops);
        if !good && first_bad.is_none() {
            first_bad = Some(format!("{dst} stop {} hops {hops:?}", doc["stop_reason"]));
        }
        *ok.entry(dst).or_insert(false) |= good;
    }
    if let Some(bad) = first_bad {
        eprintln!("bench trace: {label}: first unexpected trace: {bad}");
    }
    if ok.len() != expect {
        eprintln!(
            "bench trace: {label}: {} traces in the output for {expect} targets",
            ok.len()
        );
    }
    Ok(Run {
        wall: timed.wall.as_secs_f64(),
        rss_kb: timed.rss_kb,
        cpu_s: timed.cpu_s,
        reached: ok.values().filter(|g| **g).count(),
        probes,
        inner_s: None,
    })
}

/// What `residency check` can do here.
pub(super) struct CheckSupport {
    /// `--trace-concurrency` exists.
    pub(super) trace_concurrency: bool,
    pub(super) mmdb: PathBuf,
}

pub(super) fn check_support(bench: &Bench) -> Result<CheckSupport, String> {
    let help = Command::new(env!("CARGO_BIN_EXE_residency"))
        .args(["check", "--help"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("residency check --help: {e}"))?;
    let mmdb = bench.dir.path().join("lab.mmdb");
    write_country_db(
        &mmdb,
        &[
            ("192.0.2.0/24", "US"),
            ("198.51.100.0/24", "US"),
            ("198.18.0.0/15", "US"),
        ],
    );
    Ok(CheckSupport {
        trace_concurrency: String::from_utf8_lossy(&help.stdout).contains("--trace-concurrency"),
        mmdb,
    })
}

/// The outcome of one `residency check` run.
pub(super) enum CheckRun {
    Traced(Run),
    /// The binary ran but its JSON has no path for the addresses.
    NotTracing {
        wall: f64,
        rss_kb: u64,
        why: String,
    },
}

pub(super) fn run_check(
    bench: &Bench,
    support: &CheckSupport,
    n: usize,
    concurrency: Option<usize>,
) -> Result<CheckRun, String> {
    let work = bench.dir.path();
    let policy = work.join(format!("trace-{n}.yaml"));
    let mut yaml = format!(
        "id: trace-bench-{n}\nallow: [US]\nresolvers: [\"127.0.0.1:53\"]\n\
         trace: {{ enabled: true, protocol: icmp, max_hops: {MAX_HOPS}, rounds: 1, timeout_ms: {} }}\n\
         registry: {{ enabled: false }}\n\
         geo:\n  databases: [{}]\nendpoints:\n",
        ROUND_TIMEOUT.as_millis(),
        support.mmdb.display()
    );
    for i in 0..n {
        let _ = writeln!(yaml, "  - host: {}", target(i));
    }
    std::fs::write(&policy, yaml).map_err(|e| format!("write policy: {e}"))?;
    let db = work.join(format!("history-{n}-{}.sqlite", concurrency.unwrap_or(0)));
    let _ = std::fs::remove_file(&db);
    let mut args = vec![
        "check".to_string(),
        "--format".to_string(),
        "json".to_string(),
        "--db".to_string(),
        db.display().to_string(),
    ];
    if let Some(c) = concurrency {
        args.push("--trace-concurrency".to_string());
        args.push(c.to_string());
    }
    args.push(policy.display().to_string());
    let label = format!("residency check ({n} literal endpoints)");
    let before = echo_requests_sent(&bench.lab)?;
    let timed = run_timed(
        bench,
        &label,
        Path::new(env!("CARGO_BIN_EXE_residency")),
        &args,
    )?;
    let probes = echo_requests_sent(&bench.lab)? - before;
    if !(0..=2).contains(&timed.exit) {
        return Err(format!(
            "{label} exited {} (expected 0, 1 or 2):\n{}",
            timed.exit, timed.stderr
        ));
    }
    let doc: serde_json::Value = serde_json::from_str(&timed.stdout).map_err(|e| {
        format!(
            "{label}: stdout is not JSON ({e}); stderr:\n{}",
            timed.stderr
        )
    })?;
    let addresses: Vec<&serde_json::Value> = doc["endpoints"]
        .as_array()
        .map(|eps| {
            eps.iter()
                .filter_map(|e| e["addresses"].as_array())
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    if addresses.len() != n {
        return Err(format!(
            "{label}: {} addresses in the JSON for {n} endpoints",
            addresses.len()
        ));
    }
    let with_path = addresses
        .iter()
        .filter(|a| a.get("path").is_some_and(|p| !p.is_null()))
        .count();
    if with_path == 0 {
        let why = if addresses.iter().any(|a| a.get("path").is_some()) {
            "`path` is null for every address"
        } else {
            "the addresses have no `path` key"
        };
        return Ok(CheckRun::NotTracing {
            wall: timed.wall.as_secs_f64(),
            rss_kb: timed.rss_kb,
            why: why.to_string(),
        });
    }
    let mut reached = 0;
    let mut first_bad = None;
    for a in &addresses {
        let ip: Option<IpAddr> = a["ip"].as_str().and_then(|s| s.parse().ok());
        let path = &a["path"];
        let hops: Vec<(u8, Option<IpAddr>)> = path["hops"]
            .as_array()
            .map(|hops| {
                hops.iter()
                    .map(|h| {
                        (
                            h["ttl"].as_u64().unwrap_or(0) as u8,
                            h["addr"].as_str().and_then(|s| s.parse().ok()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match ip {
            Some(ip) if path["reached"] == true && bench.expected(ip, &hops) => reached += 1,
            _ if first_bad.is_none() => first_bad = Some(format!("{ip:?}: {path}")),
            _ => {}
        }
    }
    if let Some(bad) = first_bad {
        eprintln!("bench trace: {label}: first unexpected path: {bad}");
    }
    Ok(CheckRun::Traced(Run {
        wall: timed.wall.as_secs_f64(),
        rss_kb: timed.rss_kb,
        cpu_s: timed.cpu_s,
        reached,
        probes,
        inner_s: None,
    }))
}

/// The median run by wall time (so its RSS, reached and probes belong to one real run), and
/// the fewest traces any of the runs reached.
pub(super) fn summarize(runs: &[Run]) -> (Run, usize) {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| {
        a.wall
            .partial_cmp(&b.wall)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let worst = runs.iter().map(|r| r.reached).min().unwrap_or(0);
    (sorted[sorted.len() / 2].clone(), worst)
}
