//! Plain-text tables for the terminal: one run in full, or a list of runs.

use std::fmt::Write;

use crate::check::{RunDocument, rfc3339};
use crate::model::Verdict;

/// Where a run was stored, shown under it so the reader can quote the anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub run_id: i64,
    pub seq: i64,
    pub hash: String,
    pub database: String,
}

fn shout(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "COMPLIANT",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::Violation => "VIOLATION",
    }
}

/// Renders one run: the policy, the verdict, then every endpoint with its addresses and reasons.
pub fn run(doc: &RunDocument, stored: Option<&Stored>) -> String {
    let mut out = String::new();
    let title = doc.policy.title.as_deref().unwrap_or("");
    let _ = writeln!(out, "Policy   {}  {}", doc.policy.id, title);
    if let Some(vendor) = &doc.policy.vendor {
        let _ = writeln!(out, "Vendor   {vendor}");
    }
    let allow: Vec<String> = doc.policy.allow.iter().map(ToString::to_string).collect();
    let deny: Vec<String> = doc.policy.deny.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "Allowed  {}{}",
        allow.join(", "),
        if deny.is_empty() {
            String::new()
        } else {
            format!("   Denied {}", deny.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "Checked  {} to {}",
        rfc3339::format(&doc.started_at),
        rfc3339::format(&doc.finished_at)
    );
    let _ = writeln!(
        out,
        "Asked    resolvers {}; client subnets {}; {} repeat(s); {} queries",
        if doc.resolvers.is_empty() {
            "none".to_string()
        } else {
            doc.resolvers.join(", ")
        },
        if doc.client_subnets.is_empty() {
            "none".to_string()
        } else {
            doc.client_subnets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        doc.repeat,
        doc.summary.queries
    );
    let _ = writeln!(out, "Sources  {}", doc.sources.join(", "));
    let s = &doc.summary;
    let _ = writeln!(
        out,
        "Verdict  {}  ({} endpoints: {} compliant, {} inconclusive, {} violation; {} distinct addresses)",
        shout(doc.verdict),
        s.endpoints,
        s.compliant,
        s.inconclusive,
        s.violation,
        s.addresses
    );
    for e in &doc.endpoints {
        let purpose = e
            .purpose
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let _ = writeln!(out, "\n{:<13} {}{}", shout(e.verdict), e.host, purpose);
        for r in &e.reasons {
            let _ = writeln!(out, "    {r}");
        }
        let chains: std::collections::BTreeSet<String> = e
            .resolutions
            .iter()
            .filter(|r| !r.cname_chain.is_empty())
            .map(|r| {
                let mut chain = vec![r.cname_chain[0].name.clone()];
                chain.extend(r.cname_chain.iter().map(|l| l.target.clone()));
                chain.join(" -> ")
            })
            .collect();
        for chain in chains {
            let _ = writeln!(out, "    CNAME {chain}");
        }
        for a in &e.addresses {
            let country = match (&a.country, a.countries.len()) {
                (Some(c), _) => c.to_string(),
                (None, 0) => "??".to_string(),
                (None, _) => a
                    .countries
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            let _ = writeln!(
                out,
                "    {:<40} {:<6} {}",
                a.ip.to_string(),
                country,
                a.verdict
            );
            for r in &a.reasons {
                let _ = writeln!(out, "        {r}");
            }
        }
    }
    if let Some(stored) = stored {
        let _ = writeln!(
            out,
            "\nRecorded as run {} (seq {} of {}) in {}\nRun hash {}",
            stored.run_id, stored.seq, doc.policy.id, stored.database, stored.hash
        );
    }
    out
}
