//! One run of one policy, the path `check` and `watch` share: take the policy's lock, measure,
//! record the run, release the lock, then alert.
//!
//! Owns that orchestration and nothing it orchestrates: the lock is [`crate::run::lock`]'s, the
//! measurement [`crate::check`]'s, the record [`crate::history`]'s, the alert's content and
//! delivery [`crate::run::alert`]'s. It also owns what a run is built from (a [`Prepared`] policy
//! with the [`MeasureOptions`] of the command line applied), shutdown signals, and delivering
//! an alert and recording the delivery, for a new run or again later ([`resend_alerts`]).
//!
//! Nothing here prints: what the user should hear about (a takeover, no traceroute, an alert
//! not delivered) is handed to the caller as a [`Notice`], whose text is the message to show.

pub mod alert;
pub mod import;
pub mod lock;
pub mod remote;
pub mod schedule;

use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use self::alert::{
    AlertEvent, AlertPolicy, DeliveryError, DeliverySettings, PreviousRun, RunRecord,
};
use self::lock::{Acquired, Holder};
use crate::check::capture::CapturedTraffic;
use crate::check::{self, CheckSettings};
use crate::history::{self, History, NewRun, RunFilter, Stored};
use crate::history::{RunId, Seq};
use crate::measure::integrity::Canaries;
use crate::measure::resolve::{self, DnsResolver};
use crate::measure::trace::{TraceSettings, TrippyTracer};
use crate::measure::vantage::MeasuredFrom;
use crate::model::HostPort;
use crate::policy::PolicyId;
use crate::policy::{self, Policy, RegistryPolicy};
use crate::record::RunDocument;
use crate::sources::declared;
use crate::sources::geo::{self, Geolocator};
use crate::sources::physics::Vantage;
use crate::sources::registry::{Registry, RegistryConfig, RegistryError};

/// Everything that stops a run before it has a verdict; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cloud range file {0}")]
    CloudRanges(#[from] declared::RangeError),
    #[error(transparent)]
    Import(#[from] import::ImportError),
    #[error(transparent)]
    Atlas(#[from] crate::measure::atlas::api::AtlasApiError),
    #[error(transparent)]
    Globalping(#[from] crate::measure::globalping::GlobalpingError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// How to measure, from the command line: each set field overrides the policy's setting.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOptions {
    /// Resolvers to ask instead of the policy's; empty: the policy's (or the system's).
    pub resolvers: Vec<SocketAddr>,
    /// Most DNS queries in flight at once.
    pub concurrency: usize,
    /// Most traceroutes (and TCP RTT probes) in flight at once.
    pub trace_concurrency: usize,
    pub dns_timeout: Option<Duration>,
    pub dns_tries: Option<u32>,
    /// No traceroute and no RTT probes, whatever the policy says.
    pub no_trace: bool,
    pub vantage: Option<Vantage>,
    /// The label this machine's runs are recorded under (`--vantage-label`); default
    /// `local:HOSTNAME`.
    pub vantage_label: Option<String>,
    pub registry: RegistryOverrides,
    /// Cloud range files to use before the policy's and the shipped ones.
    pub cloud_ranges: Vec<PathBuf>,
    /// No HTTP(S) probes, whatever the policy says.
    pub no_http: bool,
    /// A lock whose heartbeat is older than this is taken over (see [`crate::run::lock`]); this
    /// process's own heartbeat is frequent enough for the same limit ([`lock::heartbeat_every`]).
    pub stale_after: Duration,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            resolvers: Vec::new(),
            concurrency: usize::from(check::DEFAULT_CONCURRENCY),
            trace_concurrency: usize::from(check::DEFAULT_TRACE_CONCURRENCY),
            dns_timeout: None,
            dns_tries: None,
            no_trace: false,
            vantage: None,
            vantage_label: None,
            registry: RegistryOverrides::default(),
            cloud_ranges: Vec::new(),
            no_http: false,
            stale_after: lock::STALE_AFTER,
        }
    }
}

/// Where to ask who holds an address, over the policy's `registry:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOverrides {
    /// Do not ask registries at all.
    pub disabled: bool,
    /// RDAP base URL to ask instead of the one IANA's bootstrap names.
    pub rdap: Option<reqwest::Url>,
    /// WHOIS server to start from.
    pub whois: Option<HostPort>,
}

impl RegistryOverrides {
    /// The registry client for these overrides over the policy's `registry:` section, or `None`
    /// when registries are not to be asked.
    pub fn registry(&self, policy: &RegistryPolicy) -> Result<Option<Arc<Registry>>, RunError> {
        if self.disabled || policy.disabled {
            return Ok(None);
        }
        let mut config = RegistryConfig {
            // A scheduled check of many addresses cannot wait 40 s on one slow registry.
            rdap_timeout: Duration::from_secs(5),
            rdap_tries: 3,
            whois_deadline: Duration::from_secs(10),
            ..RegistryConfig::default()
        };
        if let Some(base) = self.rdap.as_ref().or(policy.rdap.as_ref()) {
            config.rdap_base = Some(base.clone());
        }
        if let Some(whois) = self.whois.as_ref().or(policy.whois.as_ref()) {
            config.whois_server = whois.to_string();
        }
        Ok(Some(Arc::new(Registry::new(config)?)))
    }
}

/// Something the user should hear about that does not stop the run. `Display` is the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The policy's lock was held by a holder considered gone, and was taken over.
    TookOver {
        policy: PolicyId,
        previous: String,
        reason: String,
    },
    /// Traceroute is not possible in this process (no raw-socket privilege); told once.
    NoTraceroute(String),
    /// No alert could be decided: the previous run could not be read.
    NoPreviousRun {
        policy: PolicyId,
        run_id: RunId,
        error: String,
    },
    /// The alert was sent (or given up on) but the delivery could not be recorded.
    DeliveryNotRecorded { run_id: RunId, error: String },
    /// The webhook did not take the alert.
    NotDelivered {
        policy: PolicyId,
        run_id: RunId,
        event: AlertEvent,
        error: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::TookOver {
                policy,
                previous,
                reason,
            } => write!(
                f,
                "note: policy {policy} was locked by {previous}, which is gone ({reason}); took \
                 the lock over (recorded in the history's events table)"
            ),
            Notice::NoTraceroute(e) => write!(
                f,
                "warning: traceroute is not possible here ({e}); paths are recorded as not \
                 measured, RTTs come from TCP connects, and verdicts that need a path are \
                 inconclusive"
            ),
            Notice::NoPreviousRun {
                policy,
                run_id,
                error,
            } => write!(
                f,
                "warning: no alert for run #{run_id} of {policy}: cannot read its previous run: \
                 {error}"
            ),
            Notice::DeliveryNotRecorded { run_id, error } => write!(
                f,
                "warning: cannot record the alert delivery of run #{run_id}: {error}"
            ),
            Notice::NotDelivered {
                policy,
                run_id,
                event,
                error,
            } => write!(
                f,
                "warning: the {} alert for run #{run_id} of {policy} was not delivered to its \
                 webhook: {error}; the run is recorded and its verdict stands",
                event.as_str()
            ),
        }
    }
}

/// A policy with everything a run needs, all of it checked before anything is measured.
pub struct Prepared {
    policy: Policy,
    geo: Geolocator,
    resolvers: Vec<SocketAddr>,
    capture: Option<Arc<CapturedTraffic>>,
}

impl Prepared {
    /// Judges `traffic` in this policy's runs too: its destinations join the endpoints, and
    /// the run document gains a `capture` section.
    pub fn with_capture(mut self, traffic: Arc<CapturedTraffic>) -> Prepared {
        self.policy = traffic.with_destinations(self.policy);
        self.capture = Some(traffic);
        self
    }

    /// The policy with the command line's overrides applied.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Applies `options` to `policy` and opens what its runs need (databases, resolvers).
pub fn prepare(mut policy: Policy, options: &MeasureOptions) -> Result<Prepared, RunError> {
    if options.no_trace {
        policy.trace.enabled = false;
    }
    if options.no_http {
        policy.http.enabled = false;
    }
    if let Some(v) = options.vantage {
        policy.vantage = Some(v);
    }
    let mut geo = match &policy.geo_databases {
        None => Geolocator::shipped()?,
        Some(paths) => Geolocator::open(paths)?,
    };
    let mut own = policy.cloud_ranges.clone();
    own.extend(options.cloud_ranges.iter().cloned());
    let cloud =
        declared::load_cloud_ranges(crate::sources::data::default_data_dir().as_deref(), &own)?;
    geo.push(Box::new(cloud));
    let resolvers = if !options.resolvers.is_empty() {
        options.resolvers.clone()
    } else if let Some(r) = &policy.resolvers {
        r.clone()
    } else {
        resolve::system_resolvers()?
    };
    Ok(Prepared {
        policy,
        geo,
        resolvers,
        capture: None,
    })
}

/// What one run of one policy came to.
pub enum Outcome {
    Recorded(Box<RunDocument>, Stored),
    /// Another live process holds the policy's lock: nothing was measured or written.
    Skipped {
        holder: String,
        heartbeat_at: String,
    },
    /// A shutdown signal arrived while measuring: the run was abandoned, nothing written.
    Interrupted,
}

/// Turns true when SIGINT or SIGTERM arrives.
pub fn shutdown_signal(runtime: &tokio::runtime::Runtime) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    runtime.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                // Without a SIGTERM handler the default (exit) still applies; wait on SIGINT.
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The listener is gone, so no signal can arrive any more.
        std::future::pending::<()>().await;
    }
}

/// A tracer for these settings, and why it cannot trace if it cannot. Without raw-socket
/// privilege it still works: every path is recorded as not measured, with how to grant it.
pub fn tracer_for(settings: TraceSettings) -> (TrippyTracer, Option<Notice>) {
    let tracer = TrippyTracer::new(settings);
    let notice = tracer
        .privilege()
        .err()
        .map(|e| Notice::NoTraceroute(e.to_string()));
    (tracer, notice)
}

fn progress_bar(label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} queries ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}

/// Runs policies one at a time into one history, as this process (the lock holder).
pub struct Runner {
    history: History,
    me: Holder,
    options: MeasureOptions,
    stop: watch::Receiver<bool>,
    /// Whether [`Notice::NoTraceroute`] was already given: once per process is enough.
    warned: bool,
}

impl Runner {
    /// `stop` turns true on a shutdown signal ([`shutdown_signal`]): a run in progress is then
    /// abandoned with nothing written.
    pub fn new(history: History, options: MeasureOptions, stop: watch::Receiver<bool>) -> Runner {
        Runner {
            history,
            me: Holder::current(),
            options,
            stop,
            warned: false,
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// This process, as it appears in locks and audit rows.
    pub fn holder(&self) -> &Holder {
        &self.me
    }

    /// Whether a shutdown signal has arrived.
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves when a shutdown signal arrives.
    pub async fn stopped(&mut self) {
        stopped(&mut self.stop).await
    }

    /// One run of one policy: lock, measure, record, release, alert. The lock is released
    /// whatever happened, so a failed run never blocks the next.
    pub async fn run_one(
        &mut self,
        p: &Prepared,
        notify: &mut impl FnMut(Notice),
    ) -> Result<Outcome, RunError> {
        let id = &p.policy.id;
        match lock::acquire(&mut self.history, id, &self.me, self.options.stale_after)? {
            Acquired::Held {
                holder,
                heartbeat_at,
            } => {
                return Ok(Outcome::Skipped {
                    holder,
                    heartbeat_at,
                });
            }
            Acquired::TookOver { previous, reason } => notify(Notice::TookOver {
                policy: id.clone(),
                previous,
                reason,
            }),
            Acquired::Free => {}
        }
        let result = self.measure_and_record(p, notify).await;
        let released = lock::release(&mut self.history, id, &self.me);
        let outcome = result?;
        released?;
        // After the lock is released: a slow webhook never holds up another process's run.
        if let (Some(alerts), Outcome::Recorded(doc, stored)) = (&p.policy.alerts, &outcome) {
            send_alert(alerts, &mut self.history, doc, stored, notify).await;
        }
        Ok(outcome)
    }

    async fn measure_and_record(
        &mut self,
        p: &Prepared,
        notify: &mut impl FnMut(Notice),
    ) -> Result<Outcome, RunError> {
        let policy = &p.policy;
        let m = &self.options;
        let mut dns = policy.dns;
        if let Some(timeout) = m.dns_timeout {
            dns.timeout = timeout;
        }
        if let Some(tries) = m.dns_tries {
            dns.tries = tries;
        }
        let settings = CheckSettings {
            resolvers: p.resolvers.clone(),
            concurrency: m.concurrency,
            trace_concurrency: m.trace_concurrency,
            dns,
            capture: p.capture.clone(),
            measured_from: MeasuredFrom::local(m.vantage_label.as_deref()),
        };
        let resolver = Arc::new(DnsResolver::new(dns));
        let tracer = if policy.trace.enabled {
            let (tracer, notice) = tracer_for(policy.trace.settings);
            if let Some(notice) = notice
                && !self.warned
            {
                notify(notice);
                self.warned = true;
            }
            Some(Arc::new(tracer))
        } else {
            None
        };
        let registry = m.registry.registry(&policy.registry)?;
        let beat_every = lock::heartbeat_every(m.stale_after);
        let bar = progress_bar(policy.id.as_str());
        let instruments = check::Instruments {
            resolver,
            tracer,
            surveyor: Canaries,
            registry,
        };
        let run = check::check_policy(policy, &settings, instruments, &p.geo, &bar);
        tokio::pin!(run);
        let mut beat =
            tokio::time::interval_at(tokio::time::Instant::now() + beat_every, beat_every);
        let doc = loop {
            tokio::select! {
                doc = &mut run => break doc,
                _ = beat.tick() => {
                    // Keeps a long run's lock from looking stale to other processes.
                    if !lock::heartbeat(&mut self.history, &policy.id, &self.me)? {
                        tracing::warn!(policy = %policy.id, "the run lock was taken over while this run was measuring");
                    }
                }
                _ = stopped(&mut self.stop) => {
                    bar.finish_and_clear();
                    return Ok(Outcome::Interrupted);
                }
            }
        };
        bar.finish_and_clear();
        // Recording is one transaction and not cancellable from here: never half-written.
        let stored = record(&mut self.history, &doc)?;
        let stored = Stored {
            run_id: stored.id,
            seq: stored.seq,
            hash: stored.hash,
            database: self.history.path().display().to_string(),
        };
        Ok(Outcome::Recorded(Box::new(doc), stored))
    }
}

fn record(history: &mut History, doc: &RunDocument) -> Result<history::StoredRun, RunError> {
    let run = NewRun {
        policy_id: doc.policy.id.clone(),
        started_at: doc.started_at,
        finished_at: doc.finished_at,
        verdict: doc.verdict,
        document: serde_json::to_value(doc)?,
    };
    Ok(history.append(run)?)
}

/// The run of the same policy just before the run `(run_id, seq)`, if any.
fn previous_run(
    history: &History,
    policy: &PolicyId,
    run_id: RunId,
    seq: Seq,
) -> Result<Option<PreviousRun>, history::HistoryError> {
    let filter = RunFilter {
        policy_id: Some(policy.clone()),
        ..RunFilter::default()
    };
    Ok(history
        .list(&filter)?
        .into_iter()
        .filter(|r| r.id != run_id && r.seq < seq)
        .max_by_key(|r| r.seq)
        .map(|r| PreviousRun {
            run_id: r.id,
            verdict: r.verdict,
        }))
}

/// Compares the recorded run with the policy's previous one and POSTs an alert if its verdict
/// changed in a way the policy asks about. Never fails the run: problems are notices.
async fn send_alert(
    alerts: &AlertPolicy,
    history: &mut History,
    doc: &RunDocument,
    stored: &Stored,
    notify: &mut impl FnMut(Notice),
) {
    let policy = &doc.policy.id;
    let previous = match previous_run(history, policy, stored.run_id, stored.seq) {
        Ok(previous) => previous,
        Err(e) => {
            notify(Notice::NoPreviousRun {
                policy: policy.clone(),
                run_id: stored.run_id,
                error: e.to_string(),
            });
            return;
        }
    };
    let record = RunRecord {
        run_id: stored.run_id,
        seq: stored.seq,
        hash: stored.hash.clone(),
    };
    let Some(alert) = alert::alert_for(alerts, doc, &record, previous.as_ref()) else {
        return;
    };
    if let Err(e) = deliver_and_record(&alerts.webhook, &alert, history, notify).await {
        notify(Notice::NotDelivered {
            policy: policy.clone(),
            run_id: stored.run_id,
            event: alert.event,
            error: e.to_string(),
        });
    }
}

/// POSTs `alert` and appends the outcome to `alert_deliveries`: the try it was delivered on, or
/// why not. A delivery that cannot be recorded is a notice, not a failure: it did happen.
async fn deliver_and_record(
    webhook: &str,
    alert: &alert::Alert,
    history: &mut History,
    notify: &mut impl FnMut(Notice),
) -> Result<u32, DeliveryError> {
    let result = alert::deliver(webhook, alert, DeliverySettings::default()).await;
    let (delivered, detail) = match &result {
        Ok(tries) => (true, format!("delivered on try {tries}")),
        Err(e) => (false, e.to_string()),
    };
    if let Err(e) = history.record_alert(
        alert.run_id,
        &alert.policy,
        alert.event.as_str(),
        delivered,
        &detail,
    ) {
        notify(Notice::DeliveryNotRecorded {
            run_id: alert.run_id,
            error: e.to_string(),
        });
    }
    result
}

/// Why an undelivered alert was not sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// Sent again and still not delivered; recorded in `alert_deliveries`.
    #[error("not delivered: {0}")]
    NotDelivered(#[from] DeliveryError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error(
        "run #{run_id} of {policy} is gone from the history: its {event} alert cannot be rebuilt; \
         run `residency history verify`"
    )]
    NoRun {
        run_id: RunId,
        policy: PolicyId,
        event: AlertEvent,
    },
    #[error(
        "run #{run_id} cannot be read back as a run document ({detail}); its alert cannot be rebuilt"
    )]
    Unreadable { run_id: RunId, detail: String },
    #[error(
        "cannot read the policy file {} recorded in run #{run_id} ({detail}): give the policy \
         file of {policy}, `residency alerts resend POLICY.yaml`",
        file.display()
    )]
    NoPolicyFile {
        run_id: RunId,
        policy: PolicyId,
        file: PathBuf,
        detail: String,
    },
    #[error(
        "policy {policy} ({}) has no `alerts.webhook` any more: add it back to resend the {event} \
         alert of run #{run_id}",
        file.display()
    )]
    NoWebhook {
        run_id: RunId,
        policy: PolicyId,
        event: AlertEvent,
        file: PathBuf,
    },
    #[error(
        "run #{run_id} of {policy} no longer makes a {event} alert (its previous run's verdict \
         does not lead to it): the history disagrees with its own delivery record; run \
         `residency history verify`"
    )]
    Changed {
        run_id: RunId,
        policy: PolicyId,
        event: AlertEvent,
    },
}

/// What became of one undelivered alert in [`resend_alerts`].
#[derive(Debug)]
pub struct Resent {
    pub run_id: RunId,
    pub policy: PolicyId,
    pub event: AlertEvent,
    /// The try it was delivered on; or [`ResendError::NotDelivered`] (tried, and recorded);
    /// or another error, when it could not be tried at all (nothing recorded).
    pub result: Result<u32, ResendError>,
}

/// Delivers again every alert whose latest delivery was not delivered (of `policy_id` only, if
/// given), oldest first, and appends each outcome to `alert_deliveries`.
///
/// The alert is rebuilt from the recorded run and the run before it, exactly as it was first
/// built. The webhook is the policy's current one: from `policies` when one has the run's policy
/// id, otherwise from the policy file the run recorded (a webhook is not kept in the history,
/// since its URL often carries a secret).
pub async fn resend_alerts(
    history: &mut History,
    policies: &[Policy],
    policy_id: Option<&PolicyId>,
    notify: &mut impl FnMut(Notice),
) -> Result<Vec<Resent>, history::HistoryError> {
    let pending = history.undelivered_alerts(policy_id)?;
    let mut out = Vec::with_capacity(pending.len());
    for row in pending {
        let result = resend_one(history, policies, &row, notify).await;
        out.push(Resent {
            run_id: row.run_id,
            policy: row.policy_id,
            event: row.event,
            result,
        });
    }
    Ok(out)
}

async fn resend_one(
    history: &mut History,
    policies: &[Policy],
    row: &history::AlertDelivery,
    notify: &mut impl FnMut(Notice),
) -> Result<u32, ResendError> {
    let run = history.get(row.run_id)?.ok_or_else(|| ResendError::NoRun {
        run_id: row.run_id,
        policy: row.policy_id.clone(),
        event: row.event,
    })?;
    let doc: RunDocument =
        serde_json::from_value(run.document).map_err(|e| ResendError::Unreadable {
            run_id: run.id,
            detail: e.to_string(),
        })?;
    let loaded;
    let policy = match policies.iter().find(|p| p.id == row.policy_id) {
        Some(p) => p,
        None => {
            let file = PathBuf::from(&doc.policy.file);
            loaded = policy::load(&file).map_err(|e| ResendError::NoPolicyFile {
                run_id: run.id,
                policy: row.policy_id.clone(),
                file: file.clone(),
                detail: e.to_string(),
            })?;
            &loaded
        }
    };
    let Some(alerts) = &policy.alerts else {
        return Err(ResendError::NoWebhook {
            run_id: run.id,
            policy: row.policy_id.clone(),
            event: row.event,
            file: policy.source.clone(),
        });
    };
    // The recorded row says this alert was due when the run was made; `on` may have changed
    // since, but that does not undo an alert the webhook never received.
    let all_events = AlertPolicy {
        webhook: alerts.webhook.clone(),
        on: AlertEvent::ALL.into(),
    };
    let previous = previous_run(history, &run.policy_id, run.id, run.seq)?;
    let record = RunRecord {
        run_id: run.id,
        seq: run.seq,
        hash: run.hash.clone(),
    };
    let alert = alert::alert_for(&all_events, &doc, &record, previous.as_ref())
        .filter(|a| a.event == row.event)
        .ok_or_else(|| ResendError::Changed {
            run_id: run.id,
            policy: row.policy_id.clone(),
            event: row.event,
        })?;
    Ok(deliver_and_record(&alerts.webhook, &alert, history, notify).await?)
}
