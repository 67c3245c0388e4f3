//! A draft policy from what a device was seen to contact (`discover --policy-out`): every name
//! it used as an endpoint, and every destination it reached without a name as a literal
//! address, each above a comment with its bytes and how it was named, most bytes first.
//!
//! Names come from captures, so from the device and the network: each is written only if it is
//! a valid DNS name (the policy parser's own rule), quoted as a YAML string, and comments are
//! made of plain visible text. The text is parsed back as a policy before it is returned, so a
//! draft that `residency validate` would refuse is never written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use crate::model::CountryCode;
use crate::policy::{self, PolicyId, Target};

use crate::measure::capture::{Destination, Discovery};

/// Per endpoint: bytes sent and received, flows, the sources that named it, its addresses.
#[derive(Default)]
struct Seen {
    sent: u64,
    received: u64,
    flows: u64,
    sources: std::collections::BTreeSet<&'static str>,
    addresses: std::collections::BTreeSet<IpAddr>,
    ports: std::collections::BTreeSet<String>,
}

/// Why a draft could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("the captures name no destination at all: there is nothing to draft a policy from")]
    Empty,
    #[error("the drafted policy does not validate ({0}); please report this as a bug")]
    Invalid(String),
}

/// The YAML text of a draft policy `id` for the destinations in `d`.
pub fn policy_text(
    d: &Discovery,
    id: &PolicyId,
    allow: &[CountryCode],
    deny: &[CountryCode],
) -> Result<String, DraftError> {
    let mut named: BTreeMap<String, Seen> = BTreeMap::new();
    let mut unnamed: Vec<&Destination> = Vec::new();
    for dest in &d.destinations {
        let valid: Vec<_> = dest
            .named_by
            .iter()
            .filter(|n| matches!(policy::parse_target(&n.name), Ok(Target::Host(_))))
            .collect();
        if valid.is_empty() {
            unnamed.push(dest);
            continue;
        }
        for n in valid {
            let seen = named.entry(n.name.clone()).or_default();
            seen.sources.insert(n.source.as_str());
            if seen.addresses.insert(dest.ip) {
                seen.sent += dest.bytes_sent;
                seen.received += dest.bytes_received;
                seen.flows += dest.flows;
                seen.ports.extend(dest.ports.iter().cloned());
            }
        }
    }
    for n in &d.names_without_address {
        if matches!(policy::parse_target(&n.name), Ok(Target::Host(_))) {
            named
                .entry(n.name.clone())
                .or_default()
                .sources
                .insert(n.source.as_str());
        }
    }
    if named.is_empty() && unnamed.is_empty() {
        return Err(DraftError::Empty);
    }
    let files: Vec<String> = d.captures.iter().map(|c| plain(&c.file)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Drafted by `residency discover` from: {}",
        files.join(", ")
    );
    let _ = writeln!(
        out,
        "# Every endpoint below was contacted by the device; bytes are as captured (\"sent\" is"
    );
    let _ = writeln!(
        out,
        "# from the device). Review the countries, then run `residency check` on this file."
    );
    let _ = writeln!(out, "id: {id}");
    let _ = writeln!(out, "allow: [{}]", codes(allow));
    if !deny.is_empty() {
        let _ = writeln!(out, "deny: [{}]", codes(deny));
    }
    let _ = writeln!(out, "endpoints:");
    let mut endpoints: Vec<(&String, &Seen)> = named.iter().collect();
    endpoints.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then(a.0.cmp(b.0)));
    for (name, seen) in endpoints {
        let sources = seen.sources.iter().copied().collect::<Vec<_>>().join(", ");
        if seen.addresses.is_empty() {
            let _ = writeln!(out, "  # no address recorded; named by {sources}");
        } else {
            // The counts are the addresses' (names sharing an address share its counts).
            let list: Vec<String> = seen.addresses.iter().map(IpAddr::to_string).collect();
            let _ = writeln!(
                out,
                "  # at {} ({} bytes sent, {} received, {} flow(s) {}); named by {sources}",
                list.join(", "),
                seen.sent,
                seen.received,
                seen.flows,
                ports(&seen.ports),
            );
        }
        let _ = writeln!(out, "  - host: {}", quoted(name));
    }
    for dest in unnamed {
        let _ = writeln!(
            out,
            "  # unnamed: {} bytes sent, {} received, {} flow(s) {}",
            dest.bytes_sent,
            dest.bytes_received,
            dest.flows,
            ports(&dest.ports.iter().cloned().collect()),
        );
        let _ = writeln!(out, "  - host: {}", quoted(&dest.ip.to_string()));
    }
    policy::parse(&out, Path::new("draft.yaml")).map_err(|e| DraftError::Invalid(e.to_string()))?;
    Ok(out)
}

fn codes(list: &[CountryCode]) -> String {
    list.iter()
        .map(CountryCode::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn ports(p: &std::collections::BTreeSet<String>) -> String {
    if p.is_empty() {
        String::new()
    } else {
        let list: Vec<&str> = p.iter().map(String::as_str).collect();
        format!("over {}", list.join(" "))
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Text safe inside a YAML comment: one line of visible characters.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
