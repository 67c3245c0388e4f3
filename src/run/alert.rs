//! Verdict-change alerts: a webhook told when a policy's verdict changes between runs.
//!
//! Owns which change is worth an alert ([`classify`]), the JSON event sent, and its delivery:
//! a POST with reqwest (rustls), retried with exponential backoff, bounded in tries and in total
//! time. Delivery never fails a check: the caller prints a failed delivery as a warning and the
//! exit code stays the verdict's.
//!
//! A policy's first run has no previous verdict to change from, so it raises no alert.

use std::time::Duration;

use serde::Serialize;

use crate::history::{RunId, Seq};
use crate::model::Verdict;
use crate::policy::PolicyId;
pub use crate::policy::alerts::{AlertEvent, AlertPolicy};
use crate::record::RunDocument;
use crate::time::rfc3339;

/// The change from `previous` to `current`, if any. No previous run: no change, no alert.
pub fn classify(previous: Option<Verdict>, current: Verdict) -> Option<AlertEvent> {
    let previous = previous?;
    if previous == current {
        return None;
    }
    Some(match current {
        Verdict::Violation => AlertEvent::Violation,
        Verdict::Inconclusive => AlertEvent::Inconclusive,
        Verdict::Compliant => AlertEvent::Recovered,
    })
}

/// The previous run a new run is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousRun {
    pub run_id: RunId,
    pub verdict: Verdict,
}

/// Where the new run was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: RunId,
    pub seq: Seq,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointVerdict {
    pub host: String,
    pub verdict: Verdict,
}

/// The JSON body POSTed to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub event: AlertEvent,
    pub policy: PolicyId,
    pub run_id: RunId,
    pub seq: Seq,
    pub hash: String,
    pub verdict: Verdict,
    pub previous_verdict: Verdict,
    pub previous_run_id: RunId,
    pub started_at: String,
    pub endpoints: Vec<EndpointVerdict>,
}

/// The alert for this run, if its verdict changed in a way `policy.on` asks about.
pub fn alert_for(
    policy: &AlertPolicy,
    doc: &RunDocument,
    run: &RunRecord,
    previous: Option<&PreviousRun>,
) -> Option<Alert> {
    let previous = previous?;
    let event = classify(Some(previous.verdict), doc.verdict)?;
    if !policy.on.contains(&event) {
        return None;
    }
    Some(Alert {
        event,
        policy: doc.policy.id.clone(),
        run_id: run.run_id,
        seq: run.seq,
        hash: run.hash.clone(),
        verdict: doc.verdict,
        previous_verdict: previous.verdict,
        previous_run_id: previous.run_id,
        started_at: rfc3339::format(&doc.started_at),
        endpoints: doc
            .endpoints
            .iter()
            .map(|e| EndpointVerdict {
                host: e.host.clone(),
                verdict: e.verdict,
            })
            .collect(),
    })
}

/// How hard to try delivering one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    pub tries: u32,
    /// Wait before the second try; doubled before each further one.
    pub first_backoff: Duration,
    /// Per request (connect and answer).
    pub request_timeout: Duration,
    /// All tries and waits together.
    pub total: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            tries: 3,
            first_backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(3),
            total: Duration::from_secs(10),
        }
    }
}

/// Why an alert was not delivered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("gave up after {tries} tries: {last}")]
    GaveUp { tries: u32, last: String },
    #[error("the webhook refused the alert with HTTP {0}; not retried")]
    Refused(u16),
    #[error("gave up after {0:?} (the total time allowed for one alert): {1}")]
    Deadline(Duration, String),
}

/// POSTs `alert` to `webhook`; `Ok(tries)` once it answers 2xx. 5xx, 408, 429 and network
/// errors are retried with exponential backoff; other 4xx are not. Bounded by `settings.total`.
pub async fn deliver(
    webhook: &str,
    alert: &Alert,
    settings: DeliverySettings,
) -> Result<u32, DeliveryError> {
    let url = reqwest::Url::parse(webhook).map_err(|e| DeliveryError::Client(e.to_string()))?;
    let mut builder = reqwest::Client::builder();
    if is_loopback(&url) {
        // A proxy from the environment must not carry requests meant for this machine.
        builder = builder.no_proxy();
    }
    let client = builder
        .user_agent(concat!("residency/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.request_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliveryError::Client(e.to_string()))?;
    let last = std::sync::Mutex::new(String::from("no try was made"));
    let attempts = async {
        let mut backoff = settings.first_backoff;
        let tries = settings.tries.max(1);
        for attempt in 1..=tries {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            let failure = match client.post(url.clone()).json(alert).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(attempt),
                Ok(resp) => {
                    let status = resp.status();
                    let retry = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retry {
                        return Err(DeliveryError::Refused(status.as_u16()));
                    }
                    format!("HTTP {}", status.as_u16())
                }
                Err(e) => without_url(&e),
            };
            if let Ok(mut l) = last.lock() {
                *l = failure;
            }
        }
        Err(DeliveryError::GaveUp {
            tries,
            last: last.lock().map(|l| l.clone()).unwrap_or_default(),
        })
    };
    match tokio::time::timeout(settings.total, attempts).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Deadline(
            settings.total,
            last.lock().map(|l| l.clone()).unwrap_or_default(),
        )),
    }
}

/// reqwest's message and its cause, without the URL (which may carry a secret token).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_classified() {
        use Verdict::*;
        assert_eq!(classify(None, Violation), None);
        assert_eq!(classify(Some(Compliant), Compliant), None);
        assert_eq!(classify(Some(Violation), Violation), None);
        assert_eq!(
            classify(Some(Compliant), Violation),
            Some(AlertEvent::Violation)
        );
        assert_eq!(
            classify(Some(Inconclusive), Violation),
            Some(AlertEvent::Violation)
        );
        assert_eq!(
            classify(Some(Violation), Compliant),
            Some(AlertEvent::Recovered)
        );
        assert_eq!(
            classify(Some(Inconclusive), Compliant),
            Some(AlertEvent::Recovered)
        );
        assert_eq!(
            classify(Some(Compliant), Inconclusive),
            Some(AlertEvent::Inconclusive)
        );
    }

    #[test]
    fn events_parse_by_name() {
        for e in AlertEvent::ALL {
            assert_eq!(AlertEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(AlertEvent::parse("changed"), None);
    }
}
