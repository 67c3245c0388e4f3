//! Plain-text tables for the terminal, every one: a run in full, `locate`, `doctor` and the
//! comparisons (`diff`, `timeline`, `claims`) here; the history's listings (runs, events,
//! failures, alert deliveries) in [`history`], the data sets' in [`data`], a combined run's
//! vantages and sites in [`combined`].

mod combined;
mod data;
mod history;

use std::fmt::Write;

use crate::check::doctor::DoctorReport;
use crate::check::locate::LocateReport;
use crate::compare::{AddressState, ClaimStatus, Claims, Diff, Per, RunRefInfo, Timeline};
use crate::history::RunId;
use crate::history::Stored;
use crate::measure::integrity::{Integrity, MethodStatus, ResolverStatus};
use crate::model::Verdict;
use crate::record::RunDocument;
use crate::sources::evidence::{PathEvidence, RttEvidence};
use crate::sources::registry::RegistryRecord;
use crate::time::rfc3339;

pub use data::{data_sets, data_updates};
pub use history::{alert_deliveries, events, failures, runs};

/// Who holds the address's block, as the registry said.
fn registry_line(out: &mut String, r: &RegistryRecord, pad: &str) {
    let _ = writeln!(
        out,
        "{pad}registry ({}): {} ({}) {} {}{}",
        r.source,
        r.holder.as_deref().unwrap_or("holder unknown"),
        r.country
            .map_or_else(|| "??".to_string(), |c| c.to_string()),
        r.handle.as_deref().unwrap_or(""),
        r.range.as_deref().unwrap_or(""),
        r.url
            .as_deref()
            .map(|u| format!(" <{u}>"))
            .unwrap_or_default()
    );
}

/// The traced path and the RTT bound of one address, indented by `pad`.
pub fn measurements(
    out: &mut String,
    path: Option<&PathEvidence>,
    rtt: Option<&RttEvidence>,
    pad: &str,
) {
    if let Some(path) = path {
        match path.not_measured() {
            Some(why) => {
                let _ = writeln!(out, "{pad}path: not measured ({why})");
            }
            None => {
                let _ = writeln!(
                    out,
                    "{pad}path ({}{}): {}",
                    path.protocol,
                    path.port.map(|p| format!(" port {p}")).unwrap_or_default(),
                    match (path.reached, &path.untrusted) {
                        (true, None) => "reached".to_string(),
                        (true, Some(why)) => format!("a reply for the target, UNTRUSTED: {why}"),
                        (false, _) => "target did not answer".to_string(),
                    }
                );
                for h in &path.hops {
                    let addr = h
                        .hop
                        .addr
                        .map_or_else(|| "*".to_string(), |a| a.to_string());
                    let rtt = h
                        .hop
                        .best_rtt_ms
                        .map(|r| format!("{r:.1} ms"))
                        .unwrap_or_default();
                    let country = h
                        .country
                        .map_or_else(|| "??".to_string(), |c| c.to_string());
                    let _ = writeln!(
                        out,
                        "{pad}  {:>2}  {addr:<39} {country:<3} {rtt}",
                        h.hop.ttl
                    );
                }
            }
        }
    }
    if let Some(rtt) = rtt {
        let methods: Vec<String> = rtt
            .samples
            .iter()
            .map(|s| format!("{} {}/{}", s.method, s.received, s.sent))
            .collect();
        let min = rtt
            .min_rtt_ms
            .map_or_else(|| "none".to_string(), |m| format!("{m:.2} ms"));
        let _ = writeln!(out, "{pad}rtt: min {min} ({})", methods.join(", "));
        for s in &rtt.samples {
            if let Some(why) = &s.untrusted {
                let _ = writeln!(out, "{pad}     UNTRUSTED {}: {why}", s.method);
            }
        }
        if let (Some(km), Some(v)) = (rtt.max_km, &rtt.vantage) {
            let within: Vec<String> = rtt
                .reachable
                .iter()
                .map(|r| r.country.to_string())
                .collect();
            let _ = writeln!(
                out,
                "{pad}     at most {km:.0} km from the vantage point ({v}): {}",
                within.join(", ")
            );
        }
        if let Some(note) = &rtt.note {
            let _ = writeln!(out, "{pad}     {note}");
        }
    }
}

/// The vantage point's integrity: one line per method, then each resolver's provenance.
pub fn integrity(out: &mut String, integrity: &Integrity, pad: &str) {
    let canaries: Vec<String> = integrity.canaries.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "{pad}Integrity  canaries {}",
        if canaries.is_empty() {
            "none".to_string()
        } else {
            canaries.join(", ")
        }
    );
    for (name, status) in [
        ("tcp", &integrity.tcp),
        ("dns", &integrity.dns),
        ("icmp", &integrity.icmp),
    ] {
        let line = match status {
            MethodStatus::Intercepted { .. } => {
                status.summary().replacen("intercepted", "INTERCEPTED", 1)
            }
            _ => status.summary(),
        };
        let _ = writeln!(out, "{pad}  {name:<5} {line}");
    }
    for r in &integrity.resolvers {
        let status = match r.status {
            ResolverStatus::Clean => "clean",
            ResolverStatus::Intercepted => "INTERCEPTED",
            ResolverStatus::Untested => "untested",
        };
        let nsid = if r.nsids.is_empty() {
            String::new()
        } else {
            format!(" [NSID {}]", r.nsids.join(", "))
        };
        let _ = writeln!(
            out,
            "{pad}  resolver {}: {status}{nsid}: {}",
            r.resolver, r.reason
        );
    }
}

/// `residency doctor`'s report.
pub fn doctor(report: &DoctorReport) -> String {
    let mut out = String::new();
    let vantage = report
        .vantage
        .map_or_else(|| "none declared".to_string(), |v| v.to_string());
    let _ = writeln!(out, "Vantage    {vantage}");
    let _ = writeln!(
        out,
        "Privilege  {}",
        if report.privilege.raw_sockets {
            "raw sockets: yes (traceroute and ICMP canaries possible)".to_string()
        } else {
            format!(
                "raw sockets: NO ({})",
                report.privilege.detail.as_deref().unwrap_or("refused")
            )
        }
    );
    let _ = writeln!(
        out,
        "Clock      {} UTC: {}",
        rfc3339::format(&report.clock.utc),
        report.clock.note
    );
    integrity(&mut out, &report.integrity, "");
    for r in &report.resolutions {
        let _ = writeln!(
            out,
            "  asked {} (PTR of its own address, try {}): {}{} in {}",
            r.resolver,
            r.attempt,
            r.rcode.as_deref().unwrap_or("no answer"),
            r.nsid
                .as_ref()
                .map(|n| format!(", NSID {n}"))
                .unwrap_or_default(),
            r.rtt_ms.map_or_else(
                || format!("{} ms", r.elapsed_ms),
                |ms| format!("{ms:.2} ms")
            )
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        if report.clean() {
            "Every method is clean from this vantage point."
        } else {
            "Not every method is clean: measurements by an intercepted or untested method do not count as evidence from here."
        }
    );
    out
}

fn shout(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "COMPLIANT",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::Violation => "VIOLATION",
    }
}

/// Renders one run: the policy, the verdict, then every endpoint with its addresses and reasons.
pub fn run_document(doc: &RunDocument, stored: Option<&Stored>) -> String {
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
    combined::vantages(&mut out, doc);
    if let Some(i) = &doc.integrity {
        integrity(&mut out, i, "");
    }
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
                "    {:<40} {:<6} {:<13} {} confidence",
                a.ip.to_string(),
                country,
                a.verdict.as_str(),
                match a.confidence {
                    crate::model::Confidence::Low => "low",
                    crate::model::Confidence::Medium => "medium",
                    crate::model::Confidence::High => "high",
                }
            );
            if !a.names.is_empty() {
                let _ = writeln!(out, "        PTR {}", a.names.join(", "));
            }
            if let Some(r) = &a.registry {
                registry_line(&mut out, r, "        ");
            }
            http_lines(&mut out, &a.http, "        ");
            if !a.decided_by.is_empty() {
                let _ = writeln!(out, "        decided by: {}", a.decided_by.join("; "));
            }
            if !a.conflicts.is_empty() {
                let _ = writeln!(out, "        conflicts: {}", a.conflicts.join(" vs "));
            }
            for r in &a.reasons {
                let _ = writeln!(out, "        {r}");
            }
            combined::address(&mut out, a, "        ");
            measurements(&mut out, a.path.as_ref(), a.rtt.as_ref(), "        ");
        }
    }
    if let Some(c) = &doc.capture {
        capture_section(&mut out, c);
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

/// One line per HTTP(S) probe: what answered, the certificate, the edge headers.
fn http_lines(out: &mut String, probes: &[crate::measure::http::HttpProbe], pad: &str) {
    for p in probes {
        let scheme = if p.tls { "https" } else { "http" };
        let asked = match &p.name {
            Some(name) => format!("{scheme} {} as {name}", p.port),
            None => format!("{scheme} {}", p.port),
        };
        if let Some(why) = &p.failed {
            let _ = writeln!(out, "{pad}{asked}: {why}");
            continue;
        }
        let mut parts = vec![match (p.status, p.elapsed_ms) {
            (Some(status), Some(ms)) => format!("HTTP {status} in {ms:.1} ms"),
            (Some(status), None) => format!("HTTP {status}"),
            _ => "answered".to_string(),
        }];
        if let Some(c) = &p.certificate {
            let trust = match &c.untrusted {
                None => "vouched for by the web's roots".to_string(),
                Some(why) => format!("not vouched for: {why}"),
            };
            let matches = if c.name_matches {
                "covers the name"
            } else {
                "does NOT cover the name"
            };
            parts.push(format!(
                "certificate {} from {} ({matches}; {trust})",
                c.subject, c.issuer
            ));
        }
        for (name, value) in &p.headers {
            parts.push(format!("{name}: {value}"));
        }
        let _ = writeln!(out, "{pad}{asked}: {}", parts.join("; "));
    }
}

/// Renders a `locate` report: every piece of evidence for every address of the target.
pub fn locate_report(report: &LocateReport) -> String {
    let mut out = String::new();
    let vantage = report
        .vantage
        .map_or_else(|| "none declared".to_string(), |v| v.to_string());
    let _ = writeln!(out, "Target   {}", report.target);
    let _ = writeln!(out, "Vantage  {vantage}");
    let _ = writeln!(out, "Sources  {}", report.sources.join(", "));
    integrity(&mut out, &report.integrity, "");
    for r in &report.resolutions {
        let addrs: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "Resolved {:?} via {}: {} {}{}",
            r.record_type,
            r.resolver,
            r.rcode.as_deref().unwrap_or("no answer"),
            addrs.join(", "),
            r.untrusted
                .as_ref()
                .map(|why| format!(" (UNTRUSTED, not used: {why})"))
                .unwrap_or_default()
        );
    }
    if report.addresses.is_empty() {
        let _ = writeln!(out, "\nNo address to locate.");
    }
    for a in &report.addresses {
        let _ = writeln!(out, "\n{}", a.ip);
        if !a.names.is_empty() {
            let _ = writeln!(out, "    PTR {}", a.names.join(", "));
        }
        if let Some(r) = &a.registry {
            registry_line(&mut out, r, "    ");
        }
        for e in &a.evidence {
            let _ = writeln!(out, "    {} [{:?} confidence]", e.detail, e.confidence);
            if let Some(why) = &e.refuted {
                let _ = writeln!(out, "        REFUTED: {why}");
            }
        }
        http_lines(&mut out, &a.http, "    ");
        measurements(&mut out, a.path.as_ref(), a.rtt.as_ref(), "    ");
        let list = |cs: &[crate::model::CountryCode]| {
            if cs.is_empty() {
                "none".to_string()
            } else {
                cs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let possible = if a.possible.is_empty() {
            "unknown (no RTT bound)".to_string()
        } else {
            list(&a.possible)
        };
        let _ = writeln!(
            out,
            "    answer: claims that stand: {}; physically possible: {possible}",
            list(&a.claimed)
        );
    }
    out
}

// ---- comparisons ------------------------------------------------------------------------

fn located_in(c: &Option<String>) -> &str {
    c.as_deref().unwrap_or("unlocated")
}

fn run_line(r: &RunRefInfo) -> String {
    format!(
        "run {} (seq {}, {}, {})",
        r.id, r.seq, r.started_at, r.verdict
    )
}

fn verdict_or_unknown(v: Option<Verdict>) -> &'static str {
    v.map_or("(no verdict)", Verdict::as_str)
}

/// What the device was captured sending, and where it went.
fn capture_section(out: &mut String, c: &crate::record::CaptureSection) {
    let _ = writeln!(out, "\nCaptured traffic");
    for f in &c.files {
        let _ = writeln!(
            out,
            "    {} ({}, {} read, sha256 {})",
            f.file, f.format, f.packets, f.sha256
        );
    }
    let total: u64 = c.bytes_sent_by_country.values().sum::<u64>() + c.bytes_sent_unlocated;
    let _ = writeln!(out, "    bytes sent by country ({total} in all):");
    let mut rows: Vec<(String, u64)> = c
        .bytes_sent_by_country
        .iter()
        .map(|(cc, n)| (cc.to_string(), *n))
        .collect();
    if c.bytes_sent_unlocated > 0 {
        rows.push(("unlocated".into(), c.bytes_sent_unlocated));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (cc, n) in rows {
        let share = if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        };
        let _ = writeln!(out, "      {cc:<10} {n:>12}  {share:5.1}%");
    }
    for d in &c.destinations {
        let _ = writeln!(
            out,
            "    {:<13} {} {} ({} bytes sent){}",
            shout(d.verdict),
            d.ip,
            d.country.map_or("??".to_string(), |c| c.to_string()),
            d.bytes_sent,
            if d.names.is_empty() {
                String::new()
            } else {
                format!(" {}", d.names.join(", "))
            }
        );
    }
}

/// `discover` for people: the files read, then one line per destination, most bytes sent first.
pub fn discovery(d: &crate::measure::capture::Discovery) -> String {
    use crate::measure::capture::CaptureFormat;
    let mut out = String::new();
    for c in &d.captures {
        let span = match (&c.start, &c.end) {
            (Some(s), Some(e)) => format!(", {} .. {}", rfc3339::format(s), rfc3339::format(e)),
            _ => String::new(),
        };
        let unit = match c.format {
            CaptureFormat::Pcap | CaptureFormat::Pcapng => "packets",
            CaptureFormat::Har => "entries",
            CaptureFormat::ZeekTsv | CaptureFormat::ZeekJson => "records",
        };
        let _ = writeln!(
            out,
            "{} ({:?}, {} {unit}{span}{})",
            c.file,
            c.format,
            c.packets,
            match c.problems.len() {
                0 => String::new(),
                n => format!(", {n} problem(s)"),
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{:<39} {:>10} {:>10} {:>6}  {:<16} NAMES",
        "DESTINATION", "SENT", "RECEIVED", "FLOWS", "PORTS"
    );
    for dest in &d.destinations {
        let mut names: Vec<String> = dest
            .named_by
            .iter()
            .map(|n| format!("{} ({})", n.name, n.source.as_str()))
            .collect();
        names.extend(
            dest.hidden
                .iter()
                .map(|h| format!("[hidden: {}]", h.as_str())),
        );
        let _ = writeln!(
            out,
            "{:<39} {:>10} {:>10} {:>6}  {:<16} {}",
            dest.ip,
            dest.bytes_sent,
            dest.bytes_received,
            dest.flows,
            dest.ports.join(","),
            if names.is_empty() {
                "(unnamed)".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{} destination(s), {} DNS answer(s); bytes at the IP layer (for HAR: HTTP message \
         sizes), \"sent\" from the device",
        d.destinations.len(),
        d.dns.len()
    );
    if !d.names_without_address.is_empty() {
        let names: Vec<&str> = d
            .names_without_address
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        let _ = writeln!(out, "names with no address recorded: {}", names.join(", "));
    }
    out
}

/// An address of a diff: `IP COUNTRY VERDICT`.
fn address_state(a: &AddressState) -> String {
    format!(
        "{} {} {}",
        a.ip,
        located_in(&a.country),
        verdict_or_unknown(a.verdict)
    )
}

/// `diff` for people.
pub fn diff(d: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy {}", d.policy_id);
    let _ = writeln!(out, "from   {}", run_line(&d.from));
    let _ = writeln!(out, "to     {}", run_line(&d.to));
    if d.is_empty() {
        let _ = writeln!(out, "no changes");
        return out;
    }
    if let Some(v) = &d.verdict {
        let _ = writeln!(out, "verdict: {} -> {}", v.from, v.to);
    }
    for e in &d.endpoints_added {
        let _ = writeln!(out, "+ endpoint {} ({})", e.host, e.verdict);
        for a in &e.addresses {
            let _ = writeln!(out, "    {}", address_state(a));
        }
    }
    for e in &d.endpoints_removed {
        let _ = writeln!(out, "- endpoint {} ({})", e.host, e.verdict);
    }
    for e in &d.endpoints_changed {
        let _ = writeln!(out, "~ endpoint {}", e.host);
        if let Some(v) = &e.verdict {
            let _ = writeln!(out, "    verdict: {} -> {}", v.from, v.to);
        }
        for a in &e.addresses_added {
            let _ = writeln!(out, "    + {}", address_state(a));
        }
        for a in &e.addresses_removed {
            let _ = writeln!(out, "    - {}", address_state(a));
        }
        for a in &e.addresses_changed {
            let mut parts = Vec::new();
            if let Some(c) = &a.country {
                parts.push(format!(
                    "country {} -> {}",
                    located_in(&c.from),
                    located_in(&c.to)
                ));
            }
            if let Some(v) = &a.verdict {
                parts.push(format!(
                    "verdict {} -> {}",
                    verdict_or_unknown(v.from),
                    verdict_or_unknown(v.to)
                ));
            }
            let _ = writeln!(out, "    ~ {} {}", a.ip, parts.join(", "));
        }
    }
    if !d.transit_added.is_empty() {
        let _ = writeln!(out, "+ transit {}", d.transit_added.join(", "));
    }
    if !d.transit_removed.is_empty() {
        let _ = writeln!(out, "- transit {}", d.transit_removed.join(", "));
    }
    out
}

/// `timeline` for people: one line per point, then each endpoint's verdict spans.
pub fn timeline(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<27}  {:>5}  {:<12}  {:<20}  COUNTRIES",
        match t.per {
            Per::Run => "STARTED",
            Per::Day => "DAY",
        },
        "RUNS",
        "VERDICT",
        "ENDPOINTS C/I/V"
    );
    for p in &t.points {
        let mut countries: Vec<String> = p
            .countries
            .iter()
            .map(|(c, s)| format!("{c} {}/{} ({:.0}%)", s.count, p.located, s.share * 100.0))
            .collect();
        if p.unlocated > 0 {
            countries.push(format!("{} unlocated", p.unlocated));
        }
        let runs = match p.runs.as_slice() {
            [one] => one.to_string(),
            many => format!("{}x", many.len()),
        };
        let e = p.endpoints;
        let _ = writeln!(
            out,
            "{:<27}  {:>5}  {:<12}  {:<20}  {}",
            p.at,
            runs,
            p.verdict.as_str(),
            format!("{}/{}/{}", e.compliant, e.inconclusive, e.violation),
            countries.join(", ")
        );
    }
    if t.points.is_empty() {
        let _ = writeln!(out, "(no runs in this window)");
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "ENDPOINT VERDICTS");
    for track in &t.endpoints {
        let spans: Vec<String> = track
            .spans
            .iter()
            .map(|s| {
                if s.first == s.last {
                    format!("{} at {}", s.verdict, s.from)
                } else {
                    format!("{} {} .. {}", s.verdict, s.from, s.to)
                }
            })
            .collect();
        let _ = writeln!(out, "{}: {}", track.host, spans.join("; "));
    }
    out
}

/// `claims` for people.
pub fn claims(c: &Claims) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy {} (claims from run {})",
        c.policy_id, c.claims_from_run
    );
    if c.claims.is_empty() {
        let _ = writeln!(out, "(the policy makes no claims)");
    }
    for claim in &c.claims {
        let _ = writeln!(out, "{}: {}", claim.date, claim.statement);
        if !claim.locations.is_empty() {
            let _ = writeln!(out, "  locations: {}", claim.locations.join(", "));
        }
        let status = match &claim.status {
            ClaimStatus::Untested => "untested: no run since the claim date".to_string(),
            ClaimStatus::Holds { since } => format!("holds since {since}"),
            ClaimStatus::Broken { on, since } => format!("broken on {on} (since {since})"),
            ClaimStatus::NeverHeld => "never held".to_string(),
        };
        let ids: Vec<String> = claim.evidence.iter().map(RunId::to_string).collect();
        let _ = writeln!(out, "  {status}; runs {}", ids.join(", "));
        let before = match claim.already_compliant {
            None => "no run before the claim date".to_string(),
            Some(true) => "already compliant before the claim date".to_string(),
            Some(false) => "not compliant before the claim date".to_string(),
        };
        let verdicts: Vec<String> = claim
            .before
            .iter()
            .map(|r| format!("{}={}", r.id, r.verdict))
            .collect();
        if verdicts.is_empty() {
            let _ = writeln!(out, "  {before}");
        } else {
            let _ = writeln!(out, "  {before} ({})", verdicts.join(", "));
        }
    }
    out
}
