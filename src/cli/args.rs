//! The outer layer of the command line: clap's definitions of every command and option, and
//! the parsers that turn their text into typed values at this boundary (durations, vantage
//! points, resolvers, time windows), so the commands below receive domain types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check;
use crate::compare;
use crate::history::RunId;
use crate::history::{self, AuditFilter, RunFilter};
use crate::measure::resolve;
use crate::measure::trace::{self, Protocol};
use crate::model::{CountryCode, HostPort};
use crate::policy;
use crate::policy::PolicyId;
use crate::run::schedule::{self as schedule};
use crate::run::{MeasureOptions, RegistryOverrides};
use crate::sources::physics::Vantage;

use super::CliError;

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
    /// What did a device contact? Every remote destination in its traffic captures (pcap,
    /// pcapng, HAR, Zeek logs), with the names it used (DNS, TLS and QUIC SNI, HTTP Host),
    /// ports, flows and bytes.
    Discover(DiscoverArgs),
    /// Where is this server? Every piece of evidence for one address or host, no policy needed.
    Locate(LocateArgs),
    /// What can this vantage point measure honestly? Canaries for TCP, DNS and ICMP
    /// interception, raw-socket privilege, each resolver's NSID and answer times, the clock.
    /// Exit 0 when every method is clean, 1 otherwise.
    Doctor(DoctorArgs),
    /// The data sets residency ships and updates (geolocation database, RDAP bootstrap, cloud
    /// ranges, airports, country shapes): `data status` lists them with their dates,
    /// `data update` fetches fresh copies into the data directory.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Record measurements made elsewhere as vantage runs of a policy, one per probe, for
    /// `combine`.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Clear the on-disk registry cache (RDAP and WHOIS answers), e.g. after a vendor moved.
    ClearCache {
        /// Which source's answers to forget.
        #[arg(value_enum, default_value_t = CacheArg::All)]
        source: CacheArg,
    },
    /// Print a shell completion script, e.g.
    /// `residency completions bash > /etc/bash_completion.d/residency`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (roff): `residency.1` and one per subcommand (`residency-check.1`,
    /// ...), e.g. `residency man --dir /usr/local/share/man/man1`.
    Man {
        /// The directory to write them to (created if missing).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
    /// Print one recorded run in full.
    Show {
        /// The run id shown by `check` and `history`.
        run_id: RunId,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        db: DbArg,
    },
    /// Each vantage point's latest run of a policy taken together and recorded as one combined
    /// run: RTT disks intersected (multilateration), anycast sites, catchments. Exit codes as
    /// for check.
    Combine(CombineArgs),
    /// What changed between two runs of a policy: endpoints, addresses, countries, verdicts, transit.
    Diff {
        policy_id: PolicyId,
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
        policy_id: PolicyId,
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
        policy_id: PolicyId,
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
        policy: Option<PolicyId>,
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
        policy: Option<PolicyId>,
        #[command(flatten)]
        db: DbArg,
    },
}

/// The filters and output of the audit listings (`history events|failures|alerts`).
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows of this policy id.
    #[arg(long)]
    pub policy: Option<PolicyId>,
    /// Only rows at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time (failures: by start).
    #[arg(long)]
    pub since: Option<String>,
    /// Only rows on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The policy id, as in `residency history`.
    pub policy_id: PolicyId,
    /// One run: a run id, a date YYYY-MM-DD (its last run that day or before) or an RFC 3339 time.
    #[arg(long, value_name = "RUN|DATE", conflicts_with_all = ["since", "until"])]
    pub run: Option<String>,
    /// A period report of the runs started at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// A period report of the runs started on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Your own template (`.html.j2`, `.md.j2` or `.typ`; see reports/README.md); default: reports/.
    #[arg(long, value_name = "PATH")]
    pub template: Option<PathBuf>,
    /// The report file: FILE.html, FILE.pdf or FILE.md.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Do not recompute the policy's hash chain before reporting (faster on long histories).
    #[arg(long, conflicts_with = "full_verify")]
    pub no_verify: bool,
    /// Rehash every run of the chain, not only those since its verified checkpoint (the head
    /// of the last verification that found it intact, kept in the state directory).
    #[arg(long)]
    pub full_verify: bool,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Args)]
pub struct HistoryListArgs {
    /// Only runs of this policy id.
    #[arg(long)]
    pub policy: Option<PolicyId>,
    /// Only runs started at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only runs started on or before this date (YYYY-MM-DD, UTC), or before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// History database: an SQLite file, or a postgres:// URL for a history shared by several
    /// checkers. Default: $RESIDENCY_DB, else $XDG_DATA_HOME/residency/history.sqlite,
    /// else ~/.local/share/residency/history.sqlite.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl DbArg {
    pub(crate) fn path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(history::default_path)
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy files (YAML).
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// Also judge what a device was captured contacting (pcap, pcapng, HAR, Zeek logs; see
    /// `discover`): every destination is located and judged like an endpoint, in the same run,
    /// and the run records the files' SHA-256 and the bytes sent per country.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub capture: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub measure: MeasureArgs,
    #[command(flatten)]
    pub atlas: AtlasArgs,
}

/// Measuring from RIPE Atlas probes as well (`check --atlas`).
#[derive(Debug, Args)]
pub struct AtlasArgs {
    /// Also measure every endpoint from RIPE Atlas probes chosen as KIND=VALUE:COUNT,...
    /// (countries, asn, prefix, area, probes), e.g. countries=IN:5,asn=55836:2; each probe's run
    /// is recorded and all are combined with this machine's.
    #[arg(long, value_name = "SELECTION", value_parser = parse_atlas_selection)]
    pub atlas: Option<AtlasSelection>,
    /// The file holding the RIPE Atlas API key (default: $RESIDENCY_ATLAS_KEY); never printed.
    #[arg(long, value_name = "FILE", requires = "atlas")]
    pub atlas_key_file: Option<PathBuf>,
    /// The RIPE Atlas API to use (https; http only on this machine).
    #[arg(long, value_name = "URL", default_value = crate::measure::atlas::api::DEFAULT_URL, requires = "atlas")]
    pub atlas_url: String,
    /// Refuse to create measurements estimated to cost more credits than this.
    #[arg(long, value_name = "N", default_value_t = 5000, requires = "atlas")]
    pub max_credits: u64,
    /// How long to wait for the probes' results; what came by then is used.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait, requires = "atlas")]
    pub atlas_wait: Duration,
    /// Also measure every endpoint from Globalping probes chosen as FIELD=VALUE:COUNT,...
    /// (country, continent, region, state, city, asn, network, magic), e.g. country=IN:5; each
    /// probe's run is recorded and all are combined with this machine's.
    #[arg(long, value_name = "LOCATIONS", value_parser = parse_globalping_locations)]
    pub globalping: Option<GlobalpingLocations>,
    /// The file holding a Globalping token, which raises the hourly limit (default:
    /// $RESIDENCY_GLOBALPING_TOKEN; none is needed); never printed.
    #[arg(long, value_name = "FILE", requires = "globalping")]
    pub globalping_token_file: Option<PathBuf>,
    /// The Globalping API to use (https; http only on this machine).
    #[arg(long, value_name = "URL", default_value = crate::measure::globalping::DEFAULT_URL, requires = "globalping")]
    pub globalping_url: String,
    /// How long to wait for the Globalping results; what came by then is used.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_wait, requires = "globalping")]
    pub globalping_wait: Duration,
}

/// A parsed `--globalping` selection.
#[derive(Debug, Clone)]
pub struct GlobalpingLocations(pub Vec<crate::measure::globalping::Location>);

fn parse_globalping_locations(s: &str) -> Result<GlobalpingLocations, String> {
    crate::measure::globalping::parse_locations(s).map(GlobalpingLocations)
}

/// A parsed `--atlas` selection.
#[derive(Debug, Clone)]
pub struct AtlasSelection(pub Vec<crate::measure::atlas::api::ProbeRequest>);

fn parse_atlas_selection(s: &str) -> Result<AtlasSelection, String> {
    crate::measure::atlas::api::parse_selection(s).map(AtlasSelection)
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Policy files (YAML).
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// Run every DURATION (30s, 10m, 6h, 1d); the first run starts at once.
    #[arg(long, value_name = "DURATION", conflicts_with = "cron")]
    pub every: Option<String>,
    /// Run at the times of this five-field cron pattern, in UTC, e.g. "0 */6 * * *".
    #[arg(long, value_name = "PATTERN")]
    pub cron: Option<String>,
    /// Delay each run by a random time up to DURATION, so many watchers spread their queries.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<String>,
    /// Stop after this many scheduled rounds (each runs every policy once); default: never.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: Option<u64>,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub measure: MeasureArgs,
}

/// How to measure: the options `check` and `watch` share.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Ask this resolver instead of the policy's (repeatable): 8.8.8.8, 127.0.0.1:5353, [::1]:53.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    pub resolvers: Vec<SocketAddr>,
    /// Most DNS queries in flight at once.
    #[arg(long, default_value_t = check::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// How long to wait for one DNS answer, in milliseconds (overrides the policy's dns.timeout_ms).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(resolve::limits::TIMEOUT_MS))]
    pub dns_timeout_ms: Option<u64>,
    /// Measure DNS and databases only: no traceroute and no RTT probes (overrides `trace.enabled`).
    #[arg(long)]
    pub no_trace: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub declared: DeclaredArgs,
    /// Most traceroutes (and TCP RTT probes) in flight at once.
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_TRACE_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub trace_concurrency: u16,
    /// Where this check runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21); overrides the policy's `vantage`.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    pub vantage: Option<Vantage>,
    /// The name this machine's runs are recorded under, so `combine` tells vantage points
    /// apart (default local:HOSTNAME): 1 to 64 letters, digits, `.`, `_`, `-` or `:`.
    #[arg(long, value_name = "LABEL", value_parser = parse_vantage_label)]
    pub vantage_label: Option<String>,
    /// How many times to send a DNS query that got no answer (overrides the policy's dns.tries).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(wide(resolve::limits::TRIES)))]
    pub dns_tries: Option<u32>,
    /// Take over a policy's run lock when its heartbeat is older than DURATION (e.g. 5m, 30s);
    /// give every process sharing the history the same value.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_stale_after)]
    pub stale_after: Duration,
}

/// `--stale-after`: a duration of at least one second (this process then heartbeats four
/// times as often, see `lock::heartbeat_every`).
/// A limit in the type clap's range checks of narrower integers take.
fn wide<T: Copy + Into<i64>>(r: std::ops::RangeInclusive<T>) -> std::ops::RangeInclusive<i64> {
    (*r.start()).into()..=(*r.end()).into()
}

pub(crate) fn parse_stale_after(s: &str) -> Result<Duration, String> {
    let d = schedule::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}` is too short: a lock must be allowed at least 1s between heartbeats"
        ));
    }
    Ok(d)
}

/// `--vantage-label`: plain text that tables and reports can show as it is.
fn parse_vantage_label(s: &str) -> Result<String, String> {
    crate::measure::vantage::check_label(s).map_err(|e| e.to_string())
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
pub struct DiscoverArgs {
    /// Capture files: pcap, pcapng, HAR (1.1, 1.2) or Zeek conn/dns/ssl/http logs (TSV or
    /// JSON), recognised by their first bytes, not by their names.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write a draft policy of everything discovered to FILE: the names as endpoints, unnamed
    /// destinations as addresses, each with its bytes in a comment. An existing FILE is
    /// refused unless --force.
    #[arg(long, value_name = "FILE", requires_all = ["id", "allow"])]
    pub policy_out: Option<PathBuf>,
    /// The draft's policy id (a-z, 0-9, `-`).
    #[arg(long, value_name = "ID", requires = "policy_out")]
    pub id: Option<PolicyId>,
    /// The draft's allowed countries, e.g. IN,US,SG.
    #[arg(
        long,
        value_name = "CC,...",
        value_delimiter = ',',
        requires = "policy_out"
    )]
    pub allow: Vec<CountryCode>,
    /// The draft's denied countries, e.g. CN.
    #[arg(
        long,
        value_name = "CC,...",
        value_delimiter = ',',
        requires = "policy_out"
    )]
    pub deny: Vec<CountryCode>,
    /// Overwrite an existing --policy-out file.
    #[arg(long, requires = "policy_out")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CombineArgs {
    pub policy_id: PolicyId,
    /// Combine each vantage's latest run started within this long before now (30m, 1h, 2d).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_window)]
    pub window: Duration,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

/// `--window`: a duration of at least one second and at most a century.
fn parse_window(s: &str) -> Result<Duration, String> {
    let d = schedule::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}` is too short: give a window of at least 1s, e.g. 1h"
        ));
    }
    if d > Duration::from_secs(100 * 365 * 86_400) {
        return Err(format!("`{s}` is too long: give at most 100 years"));
    }
    Ok(d)
}

/// `--atlas-wait`, `--globalping-wait`: between one second and a day.
fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = schedule::parse_duration(s).map_err(|e| e.to_string())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&d) {
        return Err(format!("`{s}`: wait between 1s and 1d, e.g. 10m"));
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct LocateArgs {
    /// An IP address or a host name.
    pub target: String,
    /// Where this runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21): turns RTTs into distances.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    pub vantage: Option<Vantage>,
    /// Geolocation database (repeatable); default: the shipped one.
    #[arg(long = "geo-db", value_name = "FILE")]
    pub geo_dbs: Vec<PathBuf>,
    /// Resolver for a host name (repeatable); default: the system's.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    pub resolvers: Vec<SocketAddr>,
    /// Probe protocol for the traceroute.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Icmp)]
    pub protocol: ProtocolArg,
    /// Destination port for UDP/TCP traces and for TCP RTT probes.
    #[arg(long, default_value_t = 443, value_parser = clap::value_parser!(u16).range(wide(trace::limits::PORT)))]
    pub port: u16,
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u8).range(wide(trace::limits::MAX_HOPS)))]
    pub max_hops: u8,
    /// Rounds of probes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(wide(trace::limits::ROUNDS)))]
    pub rounds: u32,
    /// How long to wait for the replies of one round, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(trace::limits::TIMEOUT_MS))]
    pub timeout_ms: u64,
    /// Databases only: no traceroute, no RTT probes, no canaries.
    #[arg(long)]
    pub no_trace: bool,
    /// An address where nothing answers, probed to detect interception (repeatable); default:
    /// 198.18.0.1 and 100::1, or the next documentation address the target does not use.
    #[arg(long = "canary", value_name = "ADDR")]
    pub canaries: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub declared: DeclaredArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Where this runs from, as COUNTRY,LAT,LON (e.g. IN,28.61,77.21); shown in the report.
    #[arg(long, value_name = "CC,LAT,LON", value_parser = parse_vantage)]
    pub vantage: Option<Vantage>,
    /// Resolver to check (repeatable); default: the system's.
    #[arg(long = "resolver", value_name = "ADDR", value_parser = parse_resolver_arg)]
    pub resolvers: Vec<SocketAddr>,
    /// An address where nothing answers (repeatable); default: 198.18.0.1 and 100::1.
    #[arg(long = "canary", value_name = "ADDR")]
    pub canaries: Vec<std::net::IpAddr>,
    /// TCP port for the canaries' connects (repeatable): the ports your checks probe.
    #[arg(long = "port", value_name = "PORT", default_values_t = [443u16], value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,
    /// Protocol of the canaries' traceroute-style probe, as your checks trace.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Icmp)]
    pub protocol: ProtocolArg,
    /// How long a canary waits for an answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(trace::limits::TIMEOUT_MS))]
    pub timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// What operators publish about their addresses.
#[derive(Debug, Args)]
pub struct DeclaredArgs {
    /// A cloud provider's range file to use before the shipped and updated ones (repeatable):
    /// AWS ip-ranges.json, Google cloud.json, Azure ServiceTags_Public_*.json, Oracle
    /// public_ip_ranges.json, or Cloudflare's ips-v4/ips-v6 list.
    #[arg(long = "cloud-ranges", value_name = "FILE")]
    pub cloud_ranges: Vec<PathBuf>,
    /// No HTTPS HEAD to the addresses (no certificate, no CDN edge headers); overrides `http.enabled`.
    #[arg(long)]
    pub no_http: bool,
}

/// Where to ask who holds an address.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Do not ask registries (RDAP/WHOIS) who holds each address.
    #[arg(long)]
    pub no_registry: bool,
    /// RDAP base URL to ask instead of the registry IANA's bootstrap names (overrides `registry.rdap`).
    #[arg(long, value_name = "URL", value_parser = policy::parse_rdap_url)]
    pub rdap: Option<reqwest::Url>,
    /// WHOIS server to start from, HOST:PORT (overrides `registry.whois`; default whois.iana.org:43).
    #[arg(long, value_name = "HOST:PORT", value_parser = policy::parse_whois_server)]
    pub whois: Option<HostPort>,
}

impl RegistryArgs {
    pub(crate) fn overrides(&self) -> RegistryOverrides {
        RegistryOverrides {
            disabled: self.no_registry,
            rdap: self.rdap.clone(),
            whois: self.whois.clone(),
        }
    }
}

impl MeasureArgs {
    pub(crate) fn options(&self) -> MeasureOptions {
        MeasureOptions {
            resolvers: self.resolvers.clone(),
            concurrency: usize::from(self.concurrency),
            trace_concurrency: usize::from(self.trace_concurrency),
            dns_timeout: self.dns_timeout_ms.map(Duration::from_millis),
            dns_tries: self.dns_tries,
            no_trace: self.no_trace,
            vantage: self.vantage,
            vantage_label: self.vantage_label.clone(),
            registry: self.registry.overrides(),
            cloud_ranges: self.declared.cloud_ranges.clone(),
            no_http: self.declared.no_http,
            stale_after: self.stale_after,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// RIPE Atlas ping and traceroute results (NDJSON or a JSON array, as
    /// /api/v2/measurements/ID/results/ serves them; firmware 1 to 5000+), judged against the
    /// policy: one run per probe, labelled atlas:PROBE.
    Atlas(ImportAtlasArgs),
}

#[derive(Debug, Args)]
pub struct ImportAtlasArgs {
    /// Result files.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// The policy the results are judged against (YAML).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The probes' metadata (/api/v2/probes/?id__in=… saved as JSON): where each probe's host
    /// says it is. Without it no probe's RTT bounds anything.
    #[arg(long, value_name = "FILE")]
    pub probes: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub declared: DeclaredArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Every data set with its date, source and size; a warning for each older than 90 days
    /// or missing. Exit 1 when there is a warning.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Fetch fresh copies (AWS, Google, Azure, Oracle and Cloudflare ranges; IANA's RDAP
    /// bootstrap), check each before it replaces anything, and install it in the data
    /// directory ($RESIDENCY_DATA_DIR, else ~/.local/share/residency). Exit 3 when one failed.
    Update {
        /// Install copies fetched elsewhere instead: a directory holding them by their file
        /// names (aws-ip-ranges.json, gcp-cloud.json, azure-service-tags.json,
        /// oracle-public_ip_ranges.json, cloudflare-ips-v4.txt, cloudflare-ips-v6.txt,
        /// ipv4.json, ipv6.json, asn.json), or a mirror's base URL.
        #[arg(long, value_name = "DIR|URL")]
        from: Option<String>,
        /// The URL of this week's Azure ServiceTags_Public_YYYYMMDD.json (Microsoft renames it
        /// weekly; the download page names it).
        #[arg(long, value_name = "URL")]
        azure_url: Option<reqwest::Url>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
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

pub(crate) fn parse_resolver_arg(s: &str) -> Result<SocketAddr, String> {
    resolve::parse_resolver(s).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
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

impl AuditArgs {
    pub(crate) fn filter(&self) -> Result<AuditFilter, CliError> {
        window(
            self.policy.as_ref(),
            self.since.as_deref(),
            self.until.as_deref(),
        )
    }
}

impl HistoryListArgs {
    pub(crate) fn filter(&self) -> Result<RunFilter, CliError> {
        window(
            self.policy.as_ref(),
            self.since.as_deref(),
            self.until.as_deref(),
        )
    }
}

/// `--policy`, `--since` and `--until` as the history's half-open window.
fn window(
    policy: Option<&PolicyId>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<RunFilter, CliError> {
    Ok(RunFilter {
        policy_id: policy.cloned(),
        since: since.map(|s| parse_when(s, false)).transpose()?,
        until: until.map(|s| parse_when(s, true)).transpose()?,
    })
}

/// A `--since`/`--until` bound. The history's window is half-open (`since <= started_at <
/// until`), so a whole day given as `--until` ends where the next one starts.
pub(crate) fn parse_when(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, CliError> {
    crate::compare::parse_time(s, end_of_day).map_err(|_| CliError::BadDate(s.to_string()))
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
