//! Run documents for report tests and benchmarks, built as the check pipeline's own
//! `RunDocument` type (every document is parsed into it before it is stored) and appended
//! through `History::append`, the write path `check` uses.

use chrono::{DateTime, Duration, Utc};
use residency::history::{History, NewRun, StoredRun};
use residency::model::Verdict;
use residency::record::RunDocument;
use serde_json::{Value, json};

/// One address of an endpoint: where it is, what was judged, and the measured text around it.
#[derive(Debug, Clone)]
pub struct Addr {
    pub ip: String,
    pub country: Option<&'static str>,
    pub verdict: Verdict,
    /// PTR names.
    pub names: Vec<String>,
    /// The RDAP holder.
    pub holder: Option<String>,
}

impl Addr {
    pub fn new(ip: &str, country: Option<&'static str>, verdict: Verdict) -> Addr {
        Addr {
            ip: ip.to_string(),
            country,
            verdict,
            names: Vec::new(),
            holder: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub cnames: Vec<String>,
    pub addresses: Vec<Addr>,
}

impl Endpoint {
    pub fn new(host: &str, addresses: Vec<Addr>) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            cnames: Vec::new(),
            addresses,
        }
    }

    fn verdict(&self) -> Verdict {
        self.addresses
            .iter()
            .map(|a| a.verdict)
            .max()
            .unwrap_or(Verdict::Inconclusive)
    }
}

fn address(a: &Addr) -> Value {
    let evidence = json!([{
        "source": "lab.mmdb",
        "kind": "geo_database",
        "country": a.country,
        "confidence": "low",
        "detail": match a.country { Some(c) => format!("lab.mmdb: {c}"), None => "lab.mmdb: no record".into() },
    }]);
    let mut v = json!({
        "ip": a.ip,
        "country": a.country,
        "countries": a.country.map(|c| vec![c]).unwrap_or_default(),
        "evidence": evidence,
        "verdict": a.verdict,
        "reasons": [format!("{} judged {} (per lab.mmdb)", a.ip, a.verdict)],
        "seen": 1,
        "via": ["127.0.0.1:53"],
        "names": a.names,
        "confidence": "low",
        "decided_by": ["lab.mmdb"],
        "conflicts": [],
        "path": null,
        "rtt": null,
    });
    if let Some(holder) = &a.holder {
        v["registry"] = json!({
            "source": "rdap:127.0.0.1",
            "holder": holder,
            "country": a.country,
            "country_raw": a.country,
            "handle": "NET-LAB-1",
            "range": "192.0.2.0 - 192.0.2.255",
            "name": "LAB-NET",
            "url": null,
            "origin_asn": 64500,
            "retrieved_at": "2026-01-01T00:00:00Z",
            "cached": false,
        });
    }
    v
}

fn endpoint(e: &Endpoint) -> Value {
    let mut chain = Vec::new();
    let mut name = e.host.clone();
    for target in &e.cnames {
        chain.push(json!({"name": name, "target": target, "ttl": 300}));
        name = target.clone();
    }
    let resolutions = json!([{
        "resolver": "127.0.0.1:53",
        "client_subnet": null,
        "scope_prefix": null,
        "record_type": "A",
        "attempt": 1,
        "outcome": "answer",
        "rcode": "NOERROR",
        "cname_chain": chain,
        "addresses": e.addresses.iter().map(|a| a.ip.clone()).collect::<Vec<_>>(),
        "ttl": 300,
        "transport": "udp",
        "elapsed_ms": 1,
        "error": null,
    }]);
    json!({
        "host": e.host,
        "purpose": null,
        "verdict": e.verdict(),
        "reasons": [format!("{} is {}", e.host, e.verdict())],
        "resolutions": resolutions,
        "addresses": e.addresses.iter().map(address).collect::<Vec<_>>(),
    })
}

/// A complete run document of policy `policy` (allow IN, US, SG; deny CN; vantage New Delhi),
/// checked by parsing it as a `RunDocument`.
pub fn document(policy: &str, started: DateTime<Utc>, endpoints: &[Endpoint]) -> RunDocument {
    let verdict = endpoints
        .iter()
        .map(Endpoint::verdict)
        .max()
        .unwrap_or(Verdict::Inconclusive);
    let count = |v: Verdict| endpoints.iter().filter(|e| e.verdict() == v).count();
    let mut ips: Vec<&str> = endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().map(|a| a.ip.as_str()))
        .collect();
    ips.sort_unstable();
    ips.dedup();
    let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let value = json!({
        "policy": {
            "id": policy,
            "title": "Lab vendor used from India",
            "vendor": "Lab Vendor",
            "file": "lab.yaml",
            "allow": ["IN", "US", "SG"],
            "deny": ["CN"],
            "claims": [
                {"date": "2000-01-01", "source": "https://example.org/claim", "statement": "Indian users are served from India", "locations": ["IN"]}
            ],
        },
        "started_at": fmt(started),
        "finished_at": fmt(started + Duration::seconds(3)),
        "verdict": verdict,
        "tool": {"name": "residency", "version": "0.1.0"},
        "resolvers": ["127.0.0.1:53"],
        "client_subnets": [],
        "repeat": 1,
        "vantage": {"country": "IN", "latitude": 28.61, "longitude": 77.21},
        "trace": null,
        "sources": ["lab.mmdb"],
        "summary": {
            "endpoints": endpoints.len(),
            "compliant": count(Verdict::Compliant),
            "inconclusive": count(Verdict::Inconclusive),
            "violation": count(Verdict::Violation),
            "addresses": ips.len(),
            "queries": endpoints.len(),
        },
        "endpoints": endpoints.iter().map(endpoint).collect::<Vec<_>>(),
    });
    match serde_json::from_value(value) {
        Ok(doc) => doc,
        Err(e) => panic!("test document is not a RunDocument: {e}"),
    }
}

/// Appends `doc` the way `check` records a run.
pub fn append(history: &mut History, doc: &RunDocument) -> StoredRun {
    let run = NewRun {
        policy_id: doc.policy.id.clone(),
        started_at: doc.started_at,
        finished_at: doc.finished_at,
        verdict: doc.verdict,
        document: serde_json::to_value(doc).expect("encode run document"),
    };
    match history.append(run) {
        Ok(stored) => stored,
        Err(e) => panic!("append: {e}"),
    }
}
