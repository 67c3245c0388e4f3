//! The policy's `alerts:` section: where verdict changes are sent, and which changes count.
//! Sending them is [`crate::run::alert`]'s.

use std::collections::BTreeSet;

use serde::Serialize;

/// What happened to a policy's verdict, as named in the policy's `alerts.on` and in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// The verdict became `violation`.
    Violation,
    /// The verdict became `compliant` after a non-compliant run.
    Recovered,
    /// The verdict became `inconclusive`.
    Inconclusive,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 3] = [
        AlertEvent::Violation,
        AlertEvent::Recovered,
        AlertEvent::Inconclusive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Violation => "violation",
            AlertEvent::Recovered => "recovered",
            AlertEvent::Inconclusive => "inconclusive",
        }
    }

    pub fn parse(s: &str) -> Option<AlertEvent> {
        AlertEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's `alerts:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertPolicy {
    /// An http(s) URL the events are POSTed to.
    pub webhook: String,
    /// The changes to report; default `[violation, recovered]`.
    pub on: BTreeSet<AlertEvent>,
}

impl AlertPolicy {
    pub fn default_on() -> BTreeSet<AlertEvent> {
        [AlertEvent::Violation, AlertEvent::Recovered].into()
    }
}
