//! The history's own tables: recorded runs, lock events, failed runs, alert deliveries.

use crate::history::{AlertDelivery, Event, FailedRun, RunSummary};
use crate::time::rfc3339;

/// Rows under a header, or `none` when there are no rows.
fn rows<T>(items: &[T], header: String, line: impl Fn(&T) -> String, none: &str) -> String {
    let mut out = header + "\n";
    for item in items {
        out.push_str(&line(item));
        out.push('\n');
    }
    if items.is_empty() {
        out.push_str(none);
        out.push('\n');
    }
    out
}

/// `history`: recorded runs, with the first 16 hex digits of each hash.
pub fn runs(runs: &[RunSummary]) -> String {
    rows(
        runs,
        format!(
            "{:>6}  {:<24} {:>5}  {:<24}  {:<12}  HASH",
            "RUN", "POLICY", "SEQ", "STARTED", "VERDICT"
        ),
        |r| {
            format!(
                "{:>6}  {:<24} {:>5}  {:<24}  {:<12}  {}",
                r.id,
                r.policy_id,
                r.seq,
                rfc3339::format(&r.started_at),
                r.verdict.as_str(),
                r.hash.get(..16).unwrap_or(&r.hash)
            )
        },
        "(no runs)",
    )
}

/// `history events`.
pub fn events(events: &[Event]) -> String {
    rows(
        events,
        format!(
            "{:>6}  {:<24}  {:<24} {:<14} {:<24}  DETAIL",
            "EVENT", "AT", "POLICY", "KIND", "HOLDER"
        ),
        |e| {
            format!(
                "{:>6}  {:<24}  {:<24} {:<14} {:<24}  {}",
                e.id,
                rfc3339::format(&e.at),
                e.policy_id,
                e.kind.as_str(),
                e.holder,
                e.detail
            )
        },
        "(no events)",
    )
}

/// `history failures`.
pub fn failures(failures: &[FailedRun]) -> String {
    rows(
        failures,
        format!(
            "{:>6}  {:<24} {:<24}  {:<24}  {:<24}  REASON",
            "ID", "POLICY", "STARTED", "FAILED AT", "HOLDER"
        ),
        |f| {
            format!(
                "{:>6}  {:<24} {:<24}  {:<24}  {:<24}  {}",
                f.id,
                f.policy_id,
                rfc3339::format(&f.started_at),
                rfc3339::format(&f.failed_at),
                f.holder,
                f.reason
            )
        },
        "(no failed runs)",
    )
}

/// `history alerts`.
pub fn alert_deliveries(deliveries: &[AlertDelivery]) -> String {
    rows(
        deliveries,
        format!(
            "{:>6}  {:<24}  {:>6}  {:<24} {:<12}  {:<9}  DETAIL",
            "ALERT", "AT", "RUN", "POLICY", "EVENT", "DELIVERED"
        ),
        |d| {
            format!(
                "{:>6}  {:<24}  {:>6}  {:<24} {:<12}  {:<9}  {}",
                d.id,
                rfc3339::format(&d.at),
                d.run_id,
                d.policy_id,
                d.event.as_str(),
                if d.delivered { "yes" } else { "no" },
                d.detail
            )
        },
        "(no alerts)",
    )
}
