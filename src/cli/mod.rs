//! The command-line surface: arguments, and the glue from them to the library.
//!
//! Owns nothing of the measurement itself. Each command returns an [`Exit`] code following
//! the monitoring-plugin convention, or a [`CliError`] that the binary prints and maps to 3.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check::{self};
use crate::compare::{self, RunRef};
use crate::history::{self, AuditFilter, History, RunFilter};
use crate::measure::integrity::{self, SurveyPlan};
use crate::measure::resolve::{self, DnsResolver};
use crate::measure::trace::{Protocol, TraceSettings};
use crate::model::{CountryCode, Verdict};
use crate::policy::RegistryPolicy;
use crate::policy::{self, Policy, PolicyError};
use crate::record::RunDocument;
use crate::report::table::{self, Stored};
use crate::run::schedule::{self as schedule, Schedule, ScheduleError};
use crate::run::{self, MeasureOptions, Notice, Outcome, RegistryOverrides, RunError, Runner};
use crate::sources::evidence::ProbeSettings;
use crate::sources::geo::{self, Geolocator};
use crate::sources::physics::Vantage;
use crate::sources::registry::{
    CacheSource, DEFAULT_CACHE_TTL, DiskCache, RegistryError, default_cache_dir,
};
use crate::text;

/// `print!` with hostile text made visible (see [`crate::text`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::text::print_out(&format!($($arg)*)) };
}

/// `println!` with hostile text made visible.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::text::print_out(&(format!($($arg)*) + "\n")) };
}

/// `eprintln!` with hostile text made visible.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::text::print_err(&(format!($($arg)*) + "\n")) };
}

/// Exit codes, as monitoring plugins (Nagios, Icinga) and schedulers read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Inconclusive = 1,
    Violation = 2,
    Error = 3,
}

impl From<Verdict> for Exit {
    fn from(v: Verdict) -> Exit {
        match v {
            Verdict::Compliant => Exit::Ok,
            Verdict::Inconclusive => Exit::Inconclusive,
            Verdict::Violation => Exit::Violation,
        }
    }
}

/// Everything that stops a command; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Geo(#[from] geo::GeoError),
    #[error("{0}")]
    History(#[from] history::HistoryError),
    #[error("{0}")]
    Resolve(#[from] resolve::ResolveError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Compare(#[from] compare::CompareError),
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Report(#[from] crate::report::ReportError),
    #[error(
        "interrupted by a signal before the run of {0} was recorded; nothing was written, run `check` again"
    )]
    Interrupted(String),
    #[error("{0} of {1} policy files are invalid; nothing was checked")]
    InvalidPolicies(usize, usize),
    #[error("no run with id {0} in {1}: list runs with `residency history`")]
    NoSuchRun(i64, String),
    #[error(
        "`{0}` is not a date: write YYYY-MM-DD or an RFC 3339 time such as 2026-11-27T06:00:00Z"
    )]
    BadDate(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "run {0} cannot be shown as a table ({1}); its full record is still there: `residency show {0} --format json`"
    )]
    Unreadable(i64, String),
}

#[derive(Debug, Parser)]
#[command(
    name = "residency",
    version,
    about = "Verify where a vendor's services really are: resolve, locate, judge against a policy, keep a tamper-evident history.",
    after_help = "Exit codes: 0 compliant, 1 inconclusive, 2 violation, 3 error (bad input, unreadable file, usage)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every endpoint of each policy, judge it, and append the run to the history.
    Check(CheckArgs),
    /// Run checks on a schedule (--every 6h, or --cron "0 */6 * * *") until stopped.
    ///
    /// Each run is recorded exactly as `check` records it. A run of a policy already being
    /// checked by another live process is skipped (reported on stderr); a run that fails is
    /// recorded in the history's `failed_runs` and watching goes on. SIGINT/SIGTERM abandon the
    /// run in progress (nothing half-written), release its lock, and exit 0.
    Watch(WatchArgs),
    /// Check policy files for mistakes without measuring anything.
    Validate {
        /// Policy files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List recorded runs, verify the history's hash chain (`history verify`), or list its audit
    /// tables (`history events|failures|alerts`).
    #[command(args_conflicts_with_subcommands = true)]
    History {
        #[command(subcommand)]
        action: Option<HistoryAction>,
        #[command(flatten)]
        list: HistoryListArgs,
    },
    /// Where is this server? Every piece of evidence for one address or host, no policy needed.
    Locate(LocateArgs),
    /// What can this vantage point measure honestly? Canaries for TCP, DNS and ICMP
    /// interception, raw-socket privilege, each resolver's NSID and answer times, the clock.
    /// Exit 0 when every method is clean, 1 otherwise.
    Doctor(DoctorArgs),
    /// Clear the on-disk registry cache (RDAP and WHOIS answers), e.g. after a vendor moved.
    ClearCache {
        /// Which source's answers to forget.
        #[arg(value_enum, default_value_t = CacheArg::All)]
        source: CacheArg,
    },
    /// Print one recorded run in full.
    Show {
        /// The run id shown by `check` and `history`.
        run_id: i64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// What changed between two runs of a policy: endpoints, addresses, countries, verdicts, transit.
    Diff {
        policy_id: String,
        /// The older run: a run id, a date YYYY-MM-DD (its last run that day or before) or an RFC 3339 time.
        #[arg(long, value_name = "RUN|DATE")]
        from: String,
        /// The newer run, written like --from.
        #[arg(long, value_name = "RUN|DATE")]
        to: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Per run of a policy: its verdict, each endpoint's verdict, and the share of addresses per country.
    Timeline {
        policy_id: String,
        /// Only runs started at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only runs started on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// One point per run, or per UTC day (a day's worst verdict, its runs' addresses).
        #[arg(long, value_enum, default_value_t = PerArg::Run)]
        per: PerArg,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// A compliance report (HTML, PDF or Markdown, from templates) of one run or of a period.
    ///
    /// `--run RUN` (a run id or date, as in `diff`) reports one run, `--since`/`--until` every
    /// run in a period; with neither, the policy's latest run. The format follows `--out`'s
    /// extension. The report states its runs' hashes and the chain head; check it later with
    /// `residency history verify --report FILE`.
    Report(ReportArgs),
    /// Webhook alerts recorded in the history (`alerts resend`).
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Whether each dated claim of a policy has held since its date, with the runs that show it.
    Claims {
        policy_id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Recompute every run's hash and check the chain; names the first broken run.
    Verify {
        /// Only this policy's chain.
        #[arg(long)]
        policy: Option<String>,
        /// Check a report made by `residency report` instead: its runs' hashes and chain head
        /// against this history, and the policy's chain.
        #[arg(long, value_name = "FILE", conflicts_with = "policy")]
        report: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Lock takeovers: which run took over which holder's lock, and why (the `events` table).
    Events(AuditArgs),
    /// Runs that ended without a verdict, with the reason (the `failed_runs` table).
    Failures(AuditArgs),
    /// Every attempt to deliver a webhook alert, delivered or given up (`alert_deliveries`).
    Alerts(AuditArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Deliver again every alert whose latest delivery failed, and record each outcome.
    ///
    /// The alert is rebuilt from its recorded run and the run before it, and sent to the
    /// policy's current `alerts.webhook`: from the policy files given, else from the file the
    /// run recorded. Exit 0 when every alert owed is now delivered (or none was owed), 1 when
    /// some still are not.
    Resend {
        /// Policy files to take the webhooks from (default: the file each run recorded).
        policies: Vec<PathBuf>,
        /// Only alerts of this policy id.
        #[arg(long)]
        policy: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

/// The filters and output of the audit listings (`history events|failures|alerts`).
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows of this policy id.
    #[arg(long)]
    policy: Option<String>,
    /// Only rows at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time (failures: by start).
    #[arg(long)]
    since: Option<String>,
    /// Only rows on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The policy id, as in `residency history`.
    policy_id: String,
    /// One run: a run id, a date YYYY-MM-DD (its last run that day or before) or an RFC 3339 time.
    #[arg(long, value_name = "RUN|DATE", conflicts_with_all = ["since", "until"])]
    run: Option<String>,
    /// A period report of the runs started at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// A period report of the runs started on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Your own template (`.html.j2`, `.md.j2` or `.typ`; see reports/README.md); default: reports/.
    #[arg(long, value_name = "PATH")]
    template: Option<PathBuf>,
    /// The report file: FILE.html, FILE.pdf or FILE.md.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Do not recompute the policy's hash chain before reporting (faster on long histories).
    #[arg(long)]
    no_verify: bool,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Args)]
pub struct HistoryListArgs {
    /// Only runs of this policy id.
    #[arg(long)]
    policy: Option<String>,
    /// Only runs started at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only runs started on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// History database: an SQLite file, or a postgres:// URL for a history shared by several
    /// checkers. Default: $RESIDENCY_DB, else $XDG_DATA_HOME/residency/history.sqlite,
    /// else ~/.local/share/residency/history.sqlite.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

impl DbArg {
    fn path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(history::default_path)
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy files (YAML).
    #[arg(required = true)]
    policies: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Policy files (YAML).
    #[arg(required = true)]
    policies: Vec<PathBuf>,
    /// Run every DURATION (30s, 10m, 6h, 1d); the first run starts at once.
    #[arg(long, value_name = "DURATION", conflicts_with = "cron")]
    every: Option<String>,
    /// Run at the times of this five-field cron pattern, in UTC, e.g. "0 */6 * * *".
    #[arg(long, value_name = "PATTERN")]
    cron: Option<String>,
    /// Delay each run by a random time up to DURATION, so many watchers spread their queries.
    #[arg(long, value_name = "DURATION")]
    jitter: Option<String>,
    /// Stop after this many scheduled rounds (each runs every policy once); default: never.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_runs: Option<u64>,
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    measure: MeasureArgs,
}

/// How to measure: the options `check` and `watch` share.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Ask this resolver instead of the policy's (repeatable): 8.8.8.8, 127.0.0.1:5353, [::1]:53.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    resolvers: Vec<SocketAddr>,
    /// Most DNS queries in flight at once.
    #[arg(long, default_value_t = check::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// How long to wait for one DNS answer, in milliseconds (overrides the policy's dns.timeout_ms).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    dns_timeout_ms: Option<u64>,
    /// Measure DNS and databases only: no traceroute and no RTT probes (overrides `trace.enabled`).
    #[arg(long)]
    no_trace: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Most traceroutes (and TCP RTT probes) in flight at once.
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_TRACE_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
    trace_concurrency: u16,
    /// Where this check runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21); overrides the policy's `vantage`.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    vantage: Option<Vantage>,
    /// How many times to send a DNS query that got no answer (overrides the policy's dns.tries).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10))]
    dns_tries: Option<u32>,
    /// Take over a policy's run lock when its heartbeat is older than DURATION (e.g. 5m, 30s);
    /// give every process sharing the history the same value.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_stale_after)]
    stale_after: Duration,
}

/// `--stale-after`: a duration of at least one second (this process then heartbeats four
/// times as often, see `lock::heartbeat_every`).
fn parse_stale_after(s: &str) -> Result<Duration, String> {
    let d = schedule::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}` is too short: a lock must be allowed at least 1s between heartbeats"
        ));
    }
    Ok(d)
}

/// `IN,28.61,77.21` → a validated vantage point.
pub fn parse_vantage(s: &str) -> Result<Vantage, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [cc, lat, lon] = parts.as_slice() else {
        return Err(format!(
            "`{s}`: write the vantage point as COUNTRY,LAT,LON, e.g. IN,28.61,77.21"
        ));
    };
    let country: CountryCode = cc
        .parse()
        .map_err(|e: crate::model::CountryCodeError| e.to_string())?;
    let number = |v: &str, what: &str| {
        v.parse::<f64>()
            .map_err(|_| format!("`{v}` is not a {what} in degrees, e.g. 28.61"))
    };
    Vantage::new(country, number(lat, "latitude")?, number(lon, "longitude")?)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct LocateArgs {
    /// An IP address or a host name.
    target: String,
    /// Where this runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21): turns RTTs into distances.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    vantage: Option<Vantage>,
    /// Geolocation database (repeatable); default: the shipped one.
    #[arg(long = "geo-db", value_name = "FILE")]
    geo_dbs: Vec<PathBuf>,
    /// Resolver for a host name (repeatable); default: the system's.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    resolvers: Vec<SocketAddr>,
    /// Probe protocol for the traceroute.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Icmp)]
    protocol: ProtocolArg,
    /// Destination port for UDP/TCP traces and for TCP RTT probes.
    #[arg(long, default_value_t = 443, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..=64))]
    max_hops: u8,
    /// Rounds of probes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// How long to wait for the replies of one round, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    timeout_ms: u64,
    /// Databases only: no traceroute, no RTT probes, no canaries.
    #[arg(long)]
    no_trace: bool,
    /// An address where nothing answers, probed to detect interception (repeatable); default:
    /// 198.18.0.1 and 100::1, or the next documentation address the target does not use.
    #[arg(long = "canary", value_name = "ADDR")]
    canaries: Vec<std::net::IpAddr>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Where this runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21); shown in the report.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    vantage: Option<Vantage>,
    /// Resolver to check (repeatable); default: the system's.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    resolvers: Vec<SocketAddr>,
    /// An address where nothing answers (repeatable); default: 198.18.0.1 and 100::1.
    #[arg(long = "canary", value_name = "ADDR")]
    canaries: Vec<std::net::IpAddr>,
    /// TCP port for the canaries' connects (repeatable): the ports your checks probe.
    #[arg(long = "port", value_name = "PORT", default_values_t = [443u16], value_parser = clap::value_parser!(u16).range(1..))]
    ports: Vec<u16>,
    /// Protocol of the canaries' traceroute-style probe, as your checks trace.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Icmp)]
    protocol: ProtocolArg,
    /// How long a canary waits for an answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Where to ask who holds an address.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Do not ask registries (RDAP/WHOIS) who holds each address.
    #[arg(long)]
    no_registry: bool,
    /// RDAP base URL to ask instead of the registry IANA's bootstrap names (overrides `registry.rdap`).
    #[arg(long, value_name = "URL")]
    rdap: Option<String>,
    /// WHOIS server to start from, HOST:PORT (overrides `registry.whois`; default whois.iana.org:43).
    #[arg(long, value_name = "HOST:PORT")]
    whois: Option<String>,
}

impl RegistryArgs {
    fn overrides(&self) -> RegistryOverrides {
        RegistryOverrides {
            disabled: self.no_registry,
            rdap: self.rdap.clone(),
            whois: self.whois.clone(),
        }
    }
}

impl MeasureArgs {
    fn options(&self) -> MeasureOptions {
        MeasureOptions {
            resolvers: self.resolvers.clone(),
            concurrency: usize::from(self.concurrency),
            trace_concurrency: usize::from(self.trace_concurrency),
            dns_timeout: self.dns_timeout_ms.map(Duration::from_millis),
            dns_tries: self.dns_tries,
            no_trace: self.no_trace,
            vantage: self.vantage,
            registry: self.registry.overrides(),
            stale_after: self.stale_after,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheArg {
    Rdap,
    Whois,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    Icmp,
    Udp,
    Tcp,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Protocol {
        match p {
            ProtocolArg::Icmp => Protocol::Icmp,
            ProtocolArg::Udp => Protocol::Udp,
            ProtocolArg::Tcp => Protocol::Tcp,
        }
    }
}

fn parse_resolver_arg(s: &str) -> Result<SocketAddr, String> {
    resolve::parse_resolver(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Exit, CliError> {
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Watch(args) => watch(&args),
        Command::Validate { files } => validate(&files),
        Command::History {
            action:
                Some(HistoryAction::Verify {
                    report: Some(file),
                    db,
                    ..
                }),
            ..
        } => verify_report(&file, &db.path()),
        Command::History {
            action: Some(HistoryAction::Verify { policy, db, .. }),
            ..
        } => verify(policy.as_deref(), &db.path()),
        Command::Report(args) => report(&args),
        Command::History { action: None, list } => list_runs(&list),
        Command::History {
            action: Some(HistoryAction::Events(args)),
            ..
        } => list_events(&args),
        Command::History {
            action: Some(HistoryAction::Failures(args)),
            ..
        } => list_failures(&args),
        Command::History {
            action: Some(HistoryAction::Alerts(args)),
            ..
        } => list_alert_deliveries(&args),
        Command::Show { run_id, format, db } => show(run_id, format, &db.path()),
        Command::Locate(args) => locate(&args),
        Command::Doctor(args) => doctor(&args),
        Command::ClearCache { source } => clear_cache(source),
        Command::Diff {
            policy_id,
            from,
            to,
            format,
            db,
        } => diff(&policy_id, &from, &to, format, &db.path()),
        Command::Timeline {
            policy_id,
            since,
            until,
            per,
            format,
            db,
        } => timeline(
            &policy_id,
            since.as_deref(),
            until.as_deref(),
            per.into(),
            format,
            &db.path(),
        ),
        Command::Claims {
            policy_id,
            format,
            db,
        } => claims(&policy_id, format, &db.path()),
        Command::Alerts {
            action:
                AlertsAction::Resend {
                    policies,
                    policy,
                    db,
                },
        } => resend(&policies, policy.as_deref(), &db.path()),
    }
}

fn diff(policy: &str, from: &str, to: &str, format: Format, db: &Path) -> Result<Exit, CliError> {
    // Both references are checked before the database is opened (or created).
    let (from, to) = (RunRef::parse(from)?, RunRef::parse(to)?);
    let history = History::open(db)?;
    let d = compare::diff(&history, db, policy, from, to)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&d)?),
        Format::Table => out!("{}", compare::diff_table(&d)),
    }
    Ok(Exit::Ok)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PerArg {
    Run,
    Day,
}

impl From<PerArg> for compare::Per {
    fn from(p: PerArg) -> compare::Per {
        match p {
            PerArg::Run => compare::Per::Run,
            PerArg::Day => compare::Per::Day,
        }
    }
}

fn timeline(
    policy: &str,
    since: Option<&str>,
    until: Option<&str>,
    per: compare::Per,
    format: Format,
    db: &Path,
) -> Result<Exit, CliError> {
    let since = since.map(|s| compare::parse_time(s, false)).transpose()?;
    let until = until.map(|s| compare::parse_time(s, true)).transpose()?;
    let history = History::open(db)?;
    let t = compare::timeline(&history, db, policy, since, until, per)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&t)?),
        Format::Table => out!("{}", compare::timeline_table(&t)),
    }
    Ok(Exit::Ok)
}

fn claims(policy: &str, format: Format, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let c = compare::claims(&history, db, policy)?;
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&c)?),
        Format::Table => out!("{}", compare::claims_table(&c)),
    }
    Ok(Exit::Ok)
}

/// Loads every file, printing each problem; fails if any is invalid.
fn load_all(files: &[PathBuf]) -> Result<Vec<Policy>, CliError> {
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

fn validate(files: &[PathBuf]) -> Result<Exit, CliError> {
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

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// `check`: every policy once. A policy whose run another live process holds is skipped with a
/// message on stderr and counts as inconclusive (exit 1): no new verdict was reached for it.
fn check(args: &CheckArgs) -> Result<Exit, CliError> {
    let policies = load_all(&args.policies)?;
    let options = args.measure.options();
    // Everything that can be wrong with the inputs is found before anything is measured.
    let prepared = policies
        .into_iter()
        .map(|p| run::prepare(p, &options))
        .collect::<Result<Vec<_>, _>>()?;
    let history = History::open(&args.db.path())?;
    let runtime = runtime()?;
    let stop = run::shutdown_signal(&runtime);
    let mut runner = Runner::new(history, options, stop);

    let mut worst = Verdict::Compliant;
    let mut json_docs = Vec::new();
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
        worst = worst.max(doc.verdict);
        match args.format {
            Format::Table => out!("{}", table::run(&doc, Some(&stored))),
            Format::Json => json_docs.push(with_history(&doc, &stored)?),
        }
    }
    if args.format == Format::Json {
        let out = if json_docs.len() == 1 {
            json_docs.remove(0)
        } else {
            serde_json::Value::Array(json_docs)
        };
        text::print_json(&serde_json::to_string_pretty(&out)?);
    }
    Ok(worst.into())
}

/// Shows a notice from a run on stderr, where diagnostics go.
fn tell(notice: Notice) {
    errln!("{notice}");
}

/// `watch`: the policies on a schedule until a signal or `--max-runs`. Exits 0 then: verdicts
/// are in the history, not the exit code; exit 3 only for inputs wrong at start.
fn watch(args: &WatchArgs) -> Result<Exit, CliError> {
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
    let mut previous = None;
    let mut rounds = 0u64;
    while args.max_runs.is_none_or(|max| rounds < max) {
        let now = Utc::now();
        let next = schedule
            .next_after(now, previous)
            .ok_or_else(|| ScheduleError::NeverFires(args.cron.clone().unwrap_or_default()))?;
        let wait = (next - now).to_std().unwrap_or_default() + schedule::jitter(jitter_max);
        let interrupted = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = runner.stopped() => true,
            }
        });
        if interrupted {
            break;
        }
        previous = Some(next);
        rounds += 1;
        for policy in &policies {
            let started = Utc::now();
            let result = match run::prepare(policy.clone(), &options) {
                Ok(p) => runtime.block_on(runner.run_one(&p, &mut tell)),
                Err(e) => Err(e),
            };
            let failure = match result {
                Ok(Outcome::Recorded(doc, stored)) => {
                    outln!(
                        "{}: run #{} seq {} {} hash {}",
                        doc.policy.id,
                        stored.run_id,
                        stored.seq,
                        doc.verdict.as_str(),
                        stored.hash
                    );
                    None
                }
                Ok(Outcome::Skipped {
                    holder,
                    heartbeat_at,
                }) => {
                    errln!(
                        "skipped: policy {} is being checked by {holder} (heartbeat {heartbeat_at})",
                        policy.id
                    );
                    None
                }
                Ok(Outcome::Interrupted) => {
                    Some("abandoned: a shutdown signal arrived while measuring".to_string())
                }
                Err(e) => {
                    errln!(
                        "run of {} failed: {e}; recorded as a failed run, watching goes on",
                        policy.id
                    );
                    Some(e.to_string())
                }
            };
            let holder = runner.holder().to_string();
            if let Some(reason) = failure
                && let Err(e) = runner.history_mut().record_failure(
                    policy.id.as_str(),
                    started,
                    &holder,
                    &reason,
                )
            {
                errln!("cannot record the failed run of {}: {e}", policy.id);
            }
            if runner.is_stopped() {
                errln!("stopped by a signal; no run is in progress and every lock is released");
                return Ok(Exit::Ok);
            }
        }
        // Nobody reads the runs' lines any more (`watch ... | head -1`): the runs are recorded,
        // and watching on would be for no one.
        if text::stdout_closed() {
            return Ok(Exit::Ok);
        }
    }
    Ok(Exit::Ok)
}

fn clear_cache(source: CacheArg) -> Result<Exit, CliError> {
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

fn locate(args: &LocateArgs) -> Result<Exit, CliError> {
    let geo = if args.geo_dbs.is_empty() {
        Geolocator::shipped()?
    } else {
        Geolocator::open(&args.geo_dbs)?
    };
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
    let report = runtime.block_on(crate::check::locate::locate(
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
        Format::Table => out!("{}", table::locate(&report)),
        Format::Json => text::print_json(&serde_json::to_string_pretty(&report)?),
    }
    // Nothing to locate is not an answer: the monitoring convention's "unknown-ish" warning.
    Ok(if report.addresses.is_empty() {
        Exit::Inconclusive
    } else {
        Exit::Ok
    })
}

fn doctor(args: &DoctorArgs) -> Result<Exit, CliError> {
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
fn with_history(doc: &RunDocument, stored: &Stored) -> Result<serde_json::Value, CliError> {
    let mut value = serde_json::to_value(doc)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "history".into(),
            serde_json::json!({
                "run_id": stored.run_id,
                "seq": stored.seq,
                "hash": stored.hash,
                "database": stored.database,
            }),
        );
    }
    Ok(value)
}

/// A `--since`/`--until` bound. The history's window is half-open (`since <= started_at <
/// until`), so a whole day given as `--until` ends where the next one starts.
fn parse_when(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, CliError> {
    crate::compare::parse_time(s, end_of_day).map_err(|_| CliError::BadDate(s.to_string()))
}

fn list_runs(args: &HistoryListArgs) -> Result<Exit, CliError> {
    let filter = RunFilter {
        policy_id: args.policy.clone(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_when(s, false))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_when(s, true))
            .transpose()?,
    };
    let history = History::open(&args.db.path())?;
    let runs = history.list(&filter)?;
    let mut out = String::new();
    match args.format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(&runs)?),
        Format::Table => {
            let _ = writeln!(
                out,
                "{:>6}  {:<24} {:>5}  {:<24}  {:<12}  HASH",
                "RUN", "POLICY", "SEQ", "STARTED", "VERDICT"
            );
            for r in &runs {
                let _ = writeln!(
                    out,
                    "{:>6}  {:<24} {:>5}  {:<24}  {:<12}  {}",
                    r.id,
                    r.policy_id,
                    r.seq,
                    crate::time::rfc3339::format(&r.started_at),
                    r.verdict.as_str(),
                    r.hash.get(..16).unwrap_or(&r.hash)
                );
            }
            if runs.is_empty() {
                let _ = writeln!(out, "(no runs)");
            }
            text::print_out(&out);
        }
    }
    Ok(Exit::Ok)
}

impl AuditArgs {
    fn filter(&self) -> Result<AuditFilter, CliError> {
        Ok(AuditFilter {
            policy_id: self.policy.clone(),
            since: self
                .since
                .as_deref()
                .map(|s| parse_when(s, false))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| parse_when(s, true))
                .transpose()?,
        })
    }
}

/// Prints `rows` as JSON, or as a table: a header, one line per row, `(none)` line when empty.
fn print_rows<T: serde::Serialize>(
    rows: &[T],
    format: Format,
    header: &str,
    line: impl Fn(&T) -> String,
    none: &str,
) -> Result<(), CliError> {
    let mut out = String::new();
    match format {
        Format::Json => text::print_json(&serde_json::to_string_pretty(rows)?),
        Format::Table => {
            let _ = writeln!(out, "{header}");
            for r in rows {
                let _ = writeln!(out, "{}", line(r));
            }
            if rows.is_empty() {
                let _ = writeln!(out, "{none}");
            }
            text::print_out(&out);
        }
    }
    Ok(())
}

fn list_events(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let events = History::open(&args.db.path())?.events(&filter)?;
    print_rows(
        &events,
        args.format,
        &format!(
            "{:>6}  {:<24}  {:<24} {:<14} {:<24}  DETAIL",
            "EVENT", "AT", "POLICY", "KIND", "HOLDER"
        ),
        |e| {
            format!(
                "{:>6}  {:<24}  {:<24} {:<14} {:<24}  {}",
                e.id,
                crate::time::rfc3339::format(&e.at),
                e.policy_id,
                e.kind.as_str(),
                e.holder,
                e.detail
            )
        },
        "(no events)",
    )?;
    Ok(Exit::Ok)
}

fn list_failures(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let failures = History::open(&args.db.path())?.failed_runs(&filter)?;
    print_rows(
        &failures,
        args.format,
        &format!(
            "{:>6}  {:<24} {:<24}  {:<24}  {:<24}  REASON",
            "ID", "POLICY", "STARTED", "FAILED AT", "HOLDER"
        ),
        |f| {
            format!(
                "{:>6}  {:<24} {:<24}  {:<24}  {:<24}  {}",
                f.id,
                f.policy_id,
                crate::time::rfc3339::format(&f.started_at),
                crate::time::rfc3339::format(&f.failed_at),
                f.holder,
                f.reason
            )
        },
        "(no failed runs)",
    )?;
    Ok(Exit::Ok)
}

fn list_alert_deliveries(args: &AuditArgs) -> Result<Exit, CliError> {
    let filter = args.filter()?;
    let deliveries = History::open(&args.db.path())?.alert_deliveries(&filter)?;
    print_rows(
        &deliveries,
        args.format,
        &format!(
            "{:>6}  {:<24}  {:>6}  {:<24} {:<12}  {:<9}  DETAIL",
            "ALERT", "AT", "RUN", "POLICY", "EVENT", "DELIVERED"
        ),
        |d| {
            format!(
                "{:>6}  {:<24}  {:>6}  {:<24} {:<12}  {:<9}  {}",
                d.id,
                crate::time::rfc3339::format(&d.at),
                d.run_id,
                d.policy_id,
                d.event.as_str(),
                if d.delivered { "yes" } else { "no" },
                d.detail
            )
        },
        "(no alerts)",
    )?;
    Ok(Exit::Ok)
}

/// `alerts resend`: one line per alert owed, on stdout when delivered, on stderr when not.
fn resend(files: &[PathBuf], policy: Option<&str>, db: &Path) -> Result<Exit, CliError> {
    let policies = load_all(files)?;
    let mut history = History::open(db)?;
    let runtime = runtime()?;
    let resent = runtime.block_on(run::resend_alerts(
        &mut history,
        &policies,
        policy,
        &mut tell,
    ))?;
    if resent.is_empty() {
        outln!("no undelivered alerts");
        return Ok(Exit::Ok);
    }
    let mut all = true;
    for r in &resent {
        let what = format!(
            "the {} alert of run #{} of {}",
            r.event.as_str(),
            r.run_id,
            r.policy
        );
        match &r.result {
            Ok(tries) => outln!("{what}: delivered on try {tries}"),
            Err(e) => {
                all = false;
                errln!("{what}: {e}");
            }
        }
    }
    Ok(if all { Exit::Ok } else { Exit::Inconclusive })
}

fn show(run_id: i64, format: Format, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let run = history
        .get(run_id)?
        .ok_or_else(|| CliError::NoSuchRun(run_id, db.display().to_string()))?;
    let stored = Stored {
        run_id: run.id,
        seq: run.seq,
        hash: run.hash.clone(),
        database: db.display().to_string(),
    };
    match format {
        Format::Json => {
            let mut value = run.document.clone();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert(
                    "history".into(),
                    serde_json::json!({"run_id": run.id, "seq": run.seq, "hash": run.hash, "prev_hash": run.prev_hash, "database": stored.database}),
                );
            }
            text::print_json(&serde_json::to_string_pretty(&value)?);
        }
        Format::Table => {
            let doc: RunDocument = serde_json::from_value(run.document.clone())
                .map_err(|e| CliError::Unreadable(run.id, e.to_string()))?;
            out!("{}", table::run(&doc, Some(&stored)));
        }
    }
    Ok(Exit::Ok)
}

fn verify(policy: Option<&str>, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let report = history.verify(policy)?;
    out!("{report}");
    Ok(if report.is_intact() {
        Exit::Ok
    } else {
        Exit::Violation
    })
}

/// `residency report`: build the context, render, write the file, say where it went.
fn report(args: &ReportArgs) -> Result<Exit, CliError> {
    use crate::report::{context, render};
    // Everything the user typed is checked before the database is opened (or created).
    let format = render::OutputFormat::from_path(&args.out)?;
    let selection = match (&args.run, &args.since, &args.until) {
        (Some(run), _, _) => context::Selection::Run(Some(RunRef::parse(run)?)),
        (None, None, None) => context::Selection::Run(None),
        (None, since, until) => context::Selection::Period {
            since: since.as_deref().map(|s| parse_when(s, false)).transpose()?,
            until: until.as_deref().map(|s| parse_when(s, true)).transpose()?,
        },
    };
    let db = args.db.path();
    let history = History::open(&db)?;
    let options = context::Options {
        generated_at: Utc::now(),
        verify_chain: !args.no_verify,
    };
    let ctx = context::build(&history, &db, &args.policy_id, &selection, &options)?;
    let bytes = render::render(&ctx, format, args.template.as_deref())?;
    std::fs::write(&args.out, &bytes).map_err(|e| crate::report::ReportError::Write {
        path: args.out.clone(),
        source: e,
    })?;
    outln!(
        "{}: {} report of {} ({} run(s), latest {} {}), {} bytes",
        args.out.display(),
        format.as_str(),
        args.policy_id,
        ctx.runs.len(),
        ctx.run.id,
        ctx.run.verdict,
        bytes.len()
    );
    if ctx.provenance.chain_verified == Some(false) {
        errln!(
            "warning: the chain of {} is broken; the report says so. See `residency history verify --policy {}`",
            args.policy_id,
            args.policy_id
        );
    }
    Ok(Exit::Ok)
}

/// `residency history verify --report FILE`: exit 0 when the report matches the history, 2 when not.
fn verify_report(file: &Path, db: &Path) -> Result<Exit, CliError> {
    let history = History::open(db)?;
    let check = crate::report::provenance::check_report(&history, file)?;
    out!("{check}");
    Ok(if check.matches {
        Exit::Ok
    } else {
        Exit::Violation
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_after_defaults_to_the_lock_modules_limit_and_refuses_less_than_a_second() {
        let cli = Cli::try_parse_from(["residency", "check", "p.yaml"]).map_err(|e| e.to_string());
        let Ok(Cli {
            command: Command::Check(args),
        }) = cli
        else {
            panic!("`check p.yaml` parses: {cli:?}");
        };
        assert_eq!(args.measure.stale_after, crate::run::lock::STALE_AFTER);
        assert_eq!(parse_stale_after("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_stale_after("500ms").is_err_and(|e| e.contains("at least 1s")));
        assert!(parse_stale_after("soon").is_err_and(|e| e.contains("is not a duration")));
    }
}
