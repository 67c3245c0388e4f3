//! When `residency watch` runs its checks: the schedule (a fixed interval or a cron pattern),
//! its jitter, and waiting for the next fire time or for a shutdown signal.
//!
//! Owns time, and the watch loop over it ([`run_watch`]). What one run does (lock, measure, record, alert) is [`crate::run`], the path
//! `check` takes too, so a watched run and a single `check` write identical history.
//!
//! Durations are parsed with `humantime` (maintained, the de facto format `30s`, `10m`, `6h`,
//! `1d`, and compound `1h 30m`); cron patterns with `croner` (maintained, standard five-field
//! patterns such as `0 */6 * * *`, evaluated in UTC like every other time in the history).

use std::ops::ControlFlow;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

use crate::policy::Policy;

/// Everything wrong with a schedule; each message shows a valid one.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not a duration: write e.g. 30s, 10m, 6h or 1d ({1})")]
    BadDuration(String, String),
    #[error("the interval must be at least one second, not `{0}`")]
    TooShort(String),
    #[error(
        "`{0}` is not a cron pattern ({1}): write five fields, minute hour day month weekday, e.g. \"0 */6 * * *\""
    )]
    BadCron(String, String),
    #[error("cron pattern `{0}` never fires again: write one that matches a future time")]
    NeverFires(String),
    #[error("give exactly one schedule: --every DURATION or --cron PATTERN")]
    Missing,
}

/// When to run.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often; the first run starts at once.
    Every(Duration),
    /// At each time matching the (UTC) pattern.
    Cron(Box<Cron>),
}

/// `30s`, `10m`, `6h`, `1d`, `1h 30m` → a duration.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    humantime::parse_duration(text.trim())
        .map_err(|e| ScheduleError::BadDuration(text.to_string(), e.to_string()))
}

impl Schedule {
    /// From the command line's `--every` / `--cron` (exactly one of them).
    pub fn from_args(every: Option<&str>, cron: Option<&str>) -> Result<Schedule, ScheduleError> {
        match (every, cron) {
            (Some(every), None) => {
                let d = parse_duration(every)?;
                if d < Duration::from_secs(1) {
                    return Err(ScheduleError::TooShort(every.to_string()));
                }
                Ok(Schedule::Every(d))
            }
            (None, Some(pattern)) => {
                let cron = Cron::from_str(pattern.trim())
                    .map_err(|e| ScheduleError::BadCron(pattern.to_string(), e.to_string()))?;
                let schedule = Schedule::Cron(Box::new(cron));
                // Refuse at start a pattern that can never fire (e.g. 30 February).
                schedule
                    .next_after(Utc::now(), None)
                    .ok_or_else(|| ScheduleError::NeverFires(pattern.to_string()))?;
                Ok(schedule)
            }
            _ => Err(ScheduleError::Missing),
        }
    }

    /// The next fire time after `now`, given the previous fire time (`None` before the first).
    /// An interval fires at once first, then every interval after the previous fire time; when
    /// a run overran, the next one starts right away rather than piling up missed ones.
    pub fn next_after(
        &self,
        now: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => match previous {
                None => Some(now),
                Some(prev) => {
                    let next = prev + chrono::Duration::from_std(*d).ok()?;
                    Some(next.max(now))
                }
            },
            Schedule::Cron(cron) => cron.find_next_occurrence(&now, false).ok(),
        }
    }
}

/// A random delay in `[0, max)`, so that many watchers on one schedule do not all query the
/// same resolvers in the same second. Not cryptographic: std's per-instance random hash keys
/// are plenty for spreading load and avoid a dependency.
pub fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(millis);
    Duration::from_millis(h.finish() % millis)
}

/// What happened in a watch, for the caller to show: each run's end, and the watch's.
// One event per run, handed over and dropped: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum WatchEvent<'a> {
    /// A run of `policy` ended: recorded, skipped (another holder), or failed (and recorded
    /// as a failed run, unless `unrecorded` says why it could not be).
    Ran {
        policy: &'a Policy,
        outcome: Result<super::Outcome, super::RunError>,
        unrecorded: Option<crate::history::HistoryError>,
    },
    /// A shutdown signal stopped the watch between runs: no run is in progress, no lock held.
    Stopped,
}

/// A watch's bounds: when to run, how much to jitter, how many rounds at most.
#[derive(Debug, Clone)]
pub struct Watch {
    pub schedule: Schedule,
    /// The cron pattern as written, for messages.
    pub cron: Option<String>,
    pub jitter: Duration,
    pub max_runs: Option<u64>,
}

/// Runs every policy at each fire time of `watch` until a shutdown signal, `max_runs` rounds,
/// or `event` answering `Break` (nobody is reading any more). A run that fails is recorded as a
/// failed run and the watch goes on; the same problems found before the first run stop it.
pub fn run_watch(
    runner: &mut super::Runner,
    runtime: &tokio::runtime::Runtime,
    policies: &[Policy],
    options: &super::MeasureOptions,
    watch: &Watch,
    notify: &mut impl FnMut(super::Notice),
    event: &mut impl FnMut(WatchEvent<'_>) -> ControlFlow<()>,
) -> Result<(), ScheduleError> {
    let mut previous = None;
    let mut rounds = 0u64;
    while watch.max_runs.is_none_or(|max| rounds < max) {
        let now = Utc::now();
        let next = watch
            .schedule
            .next_after(now, previous)
            .ok_or_else(|| ScheduleError::NeverFires(watch.cron.clone().unwrap_or_default()))?;
        let wait = (next - now).to_std().unwrap_or_default() + jitter(watch.jitter);
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
        for policy in policies {
            let started = Utc::now();
            let outcome = match super::prepare(policy.clone(), options) {
                Ok(p) => runtime.block_on(runner.run_one(&p, notify)),
                Err(e) => Err(e),
            };
            let failure = match &outcome {
                Ok(super::Outcome::Interrupted) => {
                    Some("abandoned: a shutdown signal arrived while measuring".to_string())
                }
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            let holder = runner.holder().to_string();
            let unrecorded = failure.and_then(|reason| {
                runner
                    .history_mut()
                    .record_failure(&policy.id, started, &holder, &reason)
                    .err()
            });
            let flow = event(WatchEvent::Ran {
                policy,
                outcome,
                unrecorded,
            });
            if runner.is_stopped() {
                // The watch ends either way: there is nothing left to stop.
                let _ = event(WatchEvent::Stopped);
                return Ok(());
            }
            if flow.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn cron_next_fire_times() -> Result<(), ScheduleError> {
        let s = Schedule::from_args(None, Some("0 */6 * * *"))?;
        let mut t = at("2026-11-27T05:59:59Z");
        let mut fires = Vec::new();
        for _ in 0..4 {
            let next = s.next_after(t, Some(t)).ok_or(ScheduleError::Missing)?;
            fires.push(next.to_rfc3339());
            t = next;
        }
        assert_eq!(
            fires,
            [
                "2026-11-27T06:00:00+00:00",
                "2026-11-27T12:00:00+00:00",
                "2026-11-27T18:00:00+00:00",
                "2026-11-28T00:00:00+00:00"
            ]
        );
        let weekly = Schedule::from_args(None, Some("30 2 * * 1"))?;
        assert_eq!(
            weekly.next_after(at("2026-11-27T00:00:00Z"), None),
            Some(at("2026-11-30T02:30:00Z")),
            "the Monday after Friday 27 November"
        );
        Ok(())
    }

    #[test]
    fn intervals_and_bad_schedules() -> Result<(), ScheduleError> {
        assert_eq!(parse_duration("6h")?, Duration::from_secs(6 * 3600));
        assert_eq!(parse_duration("1d")?, Duration::from_secs(86400));
        assert_eq!(parse_duration("10m")?, Duration::from_secs(600));
        let every = Schedule::from_args(Some("30s"), None)?;
        let t0 = at("2026-11-27T00:00:00Z");
        assert_eq!(every.next_after(t0, None), Some(t0));
        assert_eq!(
            every.next_after(t0, Some(t0)),
            Some(at("2026-11-27T00:00:30Z"))
        );
        // Overran: start now, do not replay missed fires.
        let late = at("2026-11-27T00:05:00Z");
        assert_eq!(every.next_after(late, Some(t0)), Some(late));
        assert!(matches!(
            Schedule::from_args(Some("6 hours-ish"), None),
            Err(ScheduleError::BadDuration(..))
        ));
        assert!(matches!(
            Schedule::from_args(Some("10ms"), None),
            Err(ScheduleError::TooShort(_))
        ));
        assert!(matches!(
            Schedule::from_args(None, Some("61 * * * *")),
            Err(ScheduleError::BadCron(..))
        ));
        assert!(matches!(
            Schedule::from_args(None, None),
            Err(ScheduleError::Missing)
        ));
        assert!(jitter(Duration::from_secs(600)) < Duration::from_secs(600));
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        Ok(())
    }
}
