//! The commands that measure: `check`, `watch`, `validate`, `locate`, `doctor` and
//! `clear-cache`.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::check::capture::CapturedTraffic;
use crate::history::History;
use crate::history::Stored;
use crate::measure::http::HttpSettings;
use crate::measure::integrity::{self, SurveyPlan};
use crate::measure::resolve::{self, DnsResolver};
use crate::measure::trace::TraceSettings;
use crate::model::Verdict;
use crate::policy::RegistryPolicy;
use crate::policy::{self, Policy};
use crate::record::RunDocument;
use crate::report::table;
use crate::run::schedule::{self as schedule, Schedule, Watch, WatchEvent};
use crate::run::{self, Notice, Outcome, Runner};
use crate::sources::declared;
use crate::sources::evidence::{HttpPlan, ProbeSettings};
use crate::sources::geo::Geolocator;
use crate::sources::registry::{CacheSource, DEFAULT_CACHE_TTL, DiskCache, default_cache_dir};
use crate::text;

use super::args::*;
use super::{CliError, Exit};

/// Loads every file, printing each problem; fails if any is invalid.
pub(super) fn load_all(files: &[PathBuf]) -> Result<Vec<Policy>, CliError> {
    let mut policies = Vec::new();
    let mut bad = 0;
    for file in files {
        match policy::load(file) {
            Ok(p) => policies.push(p),
            Err(e) => {
                bad += 1;
                errln!("{e}");
            }
        }
    }
    if bad > 0 {
        return Err(CliError::InvalidPolicies(bad, files.len()));
    }
    Ok(policies)
}

pub(super) fn validate(files: &[PathBuf]) -> Result<Exit, CliError> {
    let policies = load_all(files)?;
    for p in &policies {
        outln!(
            "{}: ok (policy {}, {} endpoints)",
            p.source.display(),
            p.id,
            p.endpoints.len()
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// `check`: every policy once. A policy whose run another live process holds is skipped with a
/// message on stderr and counts as inconclusive (exit 1): no new verdict was reached for it.
pub(super) fn check(args: &CheckArgs) -> Result<Exit, CliError> {
    let policies = load_all(&args.policies)?;
    let options = args.measure.options();
    // Everything that can be wrong with the inputs is found before anything is measured.
    let traffic = if args.capture.is_empty() {
        None
    } else {
        let traffic = CapturedTraffic::read(&args.capture)?;
        for c in &traffic.discovery.captures {
            for p in &c.problems {
                errln!("warning: {}: {p}", c.file);
            }
        }
        Some(Arc::new(traffic))
    };
    let prepared = policies
        .into_iter()
        .map(|p| {
            let prepared = run::prepare(p, &options)?;
            Ok(match &traffic {
                Some(t) => prepared.with_capture(Arc::clone(t)),
                None => prepared,
            })
        })
        .collect::<Result<Vec<_>, run::RunError>>()?;
    // The key and the API are checked before anything is measured.
    let atlas = super::combine_commands::RemoteRound::from_args(&args.atlas)?;
    let history = History::open(&args.db.path())?;
    let runtime = runtime()?;
    let stop = run::shutdown_signal(&runtime);
    let mut runner = Runner::new(history, options.clone(), stop);

    let mut worst = Verdict::Compliant;
    let mut json_docs: Vec<(RunDocument, Stored)> = Vec::new();
    for p in prepared {
        let outcome = runtime.block_on(runner.run_one(&p, &mut tell))?;
        let (doc, stored) = match outcome {
            Outcome::Recorded(doc, stored) => (doc, stored),
            Outcome::Skipped {
                holder,
                heartbeat_at,
            } => {
                errln!(
                    "skipped: policy {} is being checked by {holder} (heartbeat {heartbeat_at}); \
                     its run will be recorded by that process",
                    p.policy().id
                );
                worst = worst.max(Verdict::Inconclusive);
                continue;
            }
            Outcome::Interrupted => return Err(CliError::Interrupted(p.policy().id.to_string())),
        };
        if let Some(atlas) = &atlas {
            // This machine's run first, then the probes', then all of them together.
            if args.format == Format::Table {
                out!("{}", table::run_document(&doc, Some(&stored)));
            }
            let (combined, at) = atlas.round(
                &runtime,
                runner.history_mut(),
                &p,
                &options,
                (&doc, &stored),
            )?;
            worst = worst.max(combined.verdict);
            match args.format {
                Format::Table => out!("\n{}", table::run_document(&combined, Some(&at))),
                Format::Json => json_docs.push((combined, at)),
            }
            continue;
        }
        worst = worst.max(doc.verdict);
        match args.format {
            Format::Table => out!("{}", table::run_document(&doc, Some(&stored))),
            Format::Json => json_docs.push((*doc, stored)),
        }
    }
    if args.format == Format::Json {
        let shown = json_docs
            .iter()
            .map(|(doc, stored)| with_history(doc, stored))
            .collect::<Result<Vec<_>, _>>()?;
        let out = match shown.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            all => serde_json::to_string_pretty(all)?,
        };
        text::print_json(&out);
    }
    Ok(worst.into())
}

/// Shows a notice from a run on stderr, where diagnostics go.
pub(super) fn tell(notice: Notice) {
    errln!("{notice}");
}

/// `watch`: the policies on a schedule until a signal or `--max-runs`. Exits 0 then: verdicts
/// are in the history, not the exit code; exit 3 only for inputs wrong at start.
pub(super) fn watch(args: &WatchArgs) -> Result<Exit, CliError> {
    let schedule = Schedule::from_args(args.every.as_deref(), args.cron.as_deref())?;
    let jitter_max = args
        .jitter
        .as_deref()
        .map(schedule::parse_duration)
        .transpose()?
        .unwrap_or_default();
    let policies = load_all(&args.policies)?;
    let options = args.measure.options();
    // Wrong inputs stop the watch at once; the same problems appearing later are failed runs.
    for p in &policies {
        run::prepare(p.clone(), &options)?;
    }
    let history = History::open(&args.db.path())?;
    let runtime = runtime()?;
    let stop = run::shutdown_signal(&runtime);
    let mut runner = Runner::new(history, options.clone(), stop);
    let watch = Watch {
        schedule,
        cron: args.cron.clone(),
        jitter: jitter_max,
        max_runs: args.max_runs,
    };
    schedule::run_watch(
        &mut runner,
        &runtime,
        &policies,
        &options,
        &watch,
        &mut tell,
        &mut |event| {
            match event {
                WatchEvent::Ran {
                    policy,
                    outcome,
                    unrecorded,
                } => {
                    match outcome {
                        Ok(Outcome::Recorded(doc, stored)) => outln!(
                            "{}: run #{} seq {} {} hash {}",
                            doc.policy.id,
                            stored.run_id,
                            stored.seq,
                            doc.verdict.as_str(),
                            stored.hash
                        ),
                        Ok(Outcome::Skipped {
                            holder,
                            heartbeat_at,
                        }) => errln!(
                            "skipped: policy {} is being checked by {holder} (heartbeat {heartbeat_at})",
                            policy.id
                        ),
                        Ok(Outcome::Interrupted) => {}
                        Err(e) => errln!(
                            "run of {} failed: {e}; recorded as a failed run, watching goes on",
                            policy.id
                        ),
                    }
                    if let Some(e) = unrecorded {
                        errln!("cannot record the failed run of {}: {e}", policy.id);
                    }
                }
                WatchEvent::Stopped => {
                    errln!("stopped by a signal; no run is in progress and every lock is released");
                }
            }
            // Nobody reads the runs' lines any more (`watch ... | head -1`): the runs are
            // recorded, and watching on would be for no one.
            if text::stdout_closed() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    Ok(Exit::Ok)
}

pub(super) fn clear_cache(source: CacheArg) -> Result<Exit, CliError> {
    let Some(dir) = default_cache_dir() else {
        outln!("no cache directory (neither XDG_CACHE_HOME nor HOME is set): nothing to clear");
        return Ok(Exit::Ok);
    };
    let cache = DiskCache::new(dir.clone(), DEFAULT_CACHE_TTL);
    let sources: &[CacheSource] = match source {
        CacheArg::Rdap => &[CacheSource::Rdap],
        CacheArg::Whois => &[CacheSource::Whois],
        CacheArg::All => &[CacheSource::Rdap, CacheSource::Whois],
    };
    for s in sources {
        cache.clear(*s)?;
        outln!("cleared {} answers in {}", s.as_str(), dir.display());
    }
    Ok(Exit::Ok)
}

pub(super) fn locate(args: &LocateArgs) -> Result<Exit, CliError> {
    let mut geo = if args.geo_dbs.is_empty() {
        Geolocator::shipped()?
    } else {
        Geolocator::open(&args.geo_dbs)?
    };
    geo.push(Box::new(declared::load_cloud_ranges(
        crate::sources::data::default_data_dir().as_deref(),
        &args.declared.cloud_ranges,
    )?));
    let resolvers = if !args.resolvers.is_empty() {
        args.resolvers.clone()
    } else if args.target.parse::<std::net::IpAddr>().is_ok() {
        // An address needs a resolver only for its PTR names: without one, go on without them.
        resolve::system_resolvers().unwrap_or_default()
    } else {
        resolve::system_resolvers()?
    };
    let settings = TraceSettings {
        protocol: args.protocol.into(),
        port: args.port,
        max_hops: args.max_hops,
        rounds: args.rounds,
        round_timeout: Duration::from_millis(args.timeout_ms),
    };
    let tracer = (!args.no_trace).then(|| {
        let (tracer, notice) = run::tracer_for(settings);
        if let Some(notice) = notice {
            tell(notice);
        }
        Arc::new(tracer)
    });
    let probe = ProbeSettings {
        trace: (!args.no_trace).then_some(settings),
        registry: args
            .registry
            .overrides()
            .registry(&RegistryPolicy::default())?,
        concurrency: 8,
        vantage: args.vantage,
        http: (!args.no_trace && !args.declared.no_http).then(|| {
            Arc::new(HttpPlan {
                settings: HttpSettings::default(),
                names: Default::default(),
                default_name: args
                    .target
                    .parse::<std::net::IpAddr>()
                    .is_err()
                    .then(|| args.target.clone()),
            })
        }),
        geofeeds: Vec::new(),
    };
    let survey = (!args.no_trace).then(|| {
        let literal = args.target.parse::<std::net::IpAddr>().ok();
        let used: Vec<ipnetwork::IpNetwork> = literal
            .into_iter()
            .chain(resolvers.iter().map(SocketAddr::ip))
            .map(ipnetwork::IpNetwork::from)
            .collect();
        let configured = (!args.canaries.is_empty()).then_some(args.canaries.as_slice());
        SurveyPlan {
            canaries: integrity::choose_canaries(configured, &used),
            tcp_ports: vec![args.port],
            trace: settings,
            dns: resolve::ResolveSettings::default(),
            resolvers: resolvers.clone(),
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let report = runtime.block_on(crate::check::locate::locate_target(
        &args.target,
        &resolvers,
        Arc::new(DnsResolver::default()),
        tracer,
        &integrity::Canaries,
        &geo,
        &probe,
        survey.as_ref(),
    ));
    match args.format {
        Format::Table => out!("{}", table::locate_report(&report)),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&report)?),
    }
    // Nothing to locate is not an answer: the monitoring convention's "unknown-ish" warning.
    Ok(if report.addresses.is_empty() {
        Exit::Inconclusive
    } else {
        Exit::Ok
    })
}

pub(super) fn doctor(args: &DoctorArgs) -> Result<Exit, CliError> {
    let resolvers = if args.resolvers.is_empty() {
        resolve::system_resolvers()?
    } else {
        args.resolvers.clone()
    };
    let used: Vec<ipnetwork::IpNetwork> = resolvers
        .iter()
        .map(|r| ipnetwork::IpNetwork::from(r.ip()))
        .collect();
    let configured = (!args.canaries.is_empty()).then_some(args.canaries.as_slice());
    let timeout = Duration::from_millis(args.timeout_ms);
    let plan = SurveyPlan {
        canaries: integrity::choose_canaries(configured, &used),
        tcp_ports: args.ports.clone(),
        trace: TraceSettings {
            protocol: args.protocol.into(),
            port: args.ports.first().copied().unwrap_or(443),
            round_timeout: timeout,
            ..TraceSettings::default()
        },
        dns: resolve::ResolveSettings { timeout, tries: 1 },
        resolvers,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let report = runtime.block_on(crate::check::doctor::doctor(&plan, args.vantage));
    match args.format {
        Format::Table => out!("{}", table::doctor(&report)),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.clean() {
        Exit::Ok
    } else {
        Exit::Inconclusive
    })
}

/// The run document plus where it was stored; the `history` key is outside the hashed document.
pub(super) fn with_history<'a>(
    doc: &'a RunDocument,
    stored: &'a Stored,
) -> Result<WithHistory<'a>, CliError> {
    Ok(WithHistory {
        doc,
        history: HistoryRef {
            run_id: stored.run_id,
            seq: stored.seq,
            hash: &stored.hash,
            database: &stored.database,
        },
    })
}

/// A run document as `--format json` prints it: the stored document with a `history` object
/// beside its fields (not part of what is stored). Serialised straight from the document, not
/// through a JSON value, so a 10,000-endpoint run is not held twice more to be printed.
#[derive(serde::Serialize)]
pub(super) struct WithHistory<'a> {
    #[serde(flatten)]
    doc: &'a RunDocument,
    history: HistoryRef<'a>,
}

#[derive(serde::Serialize)]
struct HistoryRef<'a> {
    run_id: crate::history::RunId,
    seq: crate::history::Seq,
    hash: &'a str,
    database: &'a str,
}
