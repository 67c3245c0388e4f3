//! Policy files: what a vendor claims and what the checker must verify.
//!
//! Owns reading, strict parsing and validation of the YAML policy. Parsing is strict (unknown
//! keys are errors, so a typo never silently weakens a check) and validation reports every
//! problem at once, each with file, line and column, so a regulator fixes a file in one pass.

//!
//! The top-level keys are validated here; each optional section validates itself in
//! `sections.rs`, the alerts' own types are in `alerts.rs`.

pub mod alerts;
pub mod draft;
mod sections;

pub use sections::{HttpPolicy, RegistryPolicy, TracePolicy, parse_rdap_url, parse_whois_server};

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use self::alerts::AlertPolicy;
use self::sections::{
    RawAlerts, RawDns, RawGeo, RawHttp, RawIntegrity, RawRegistry, RawRequire, RawTrace,
    RawTransit, RawVantage,
};
use crate::measure::resolve::ResolveSettings;
use crate::model::{Confidence, CountryCode};
use crate::sources::physics::Vantage;

/// Repeats above this are almost certainly a typo and would hammer the resolvers.
const MAX_REPEAT: u32 = 100;

/// A problem at one place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Why a policy file cannot be used. Each message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read policy file: {source} (check the path and its permissions)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl PolicyError {
    fn at(path: &Path, problems: Vec<Problem>) -> PolicyError {
        PolicyError::Invalid {
            path: path.to_path_buf(),
            problems,
        }
    }
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            if p.line == 0 {
                format!("{}: {}", path.display(), p.message)
            } else {
                format!("{}:{}:{}: {}", path.display(), p.line, p.column, p.message)
            }
        })
        .collect();
    lines.join("\n")
}

/// A policy identifier: `[a-z0-9-]+`, the key of a policy's runs in the history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PolicyId(String);

impl PolicyId {
    pub fn parse(s: &str) -> Result<PolicyId, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(PolicyId(s.to_string()))
        } else {
            Err(format!(
                "`id: {s}` must be 1 to 64 characters of a-z, 0-9 and `-` (e.g. `xiaomi-india`)"
            ))
        }
    }

    /// A literal id in a unit test.
    #[cfg(test)]
    pub(crate) fn test(s: &str) -> PolicyId {
        PolicyId::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An id as a history stored it. Not checked again: `check` records only parsed ids, and
    /// `history verify` shows an id edited since (the hash covers it).
    pub(crate) fn from_stored(s: String) -> PolicyId {
        PolicyId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read back from recorded run documents as written: like [`PolicyId::from_stored`].
impl<'de> Deserialize<'de> for PolicyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PolicyId, D::Error> {
        String::deserialize(d).map(PolicyId::from_stored)
    }
}

impl std::str::FromStr for PolicyId {
    type Err = String;

    fn from_str(s: &str) -> Result<PolicyId, String> {
        PolicyId::parse(s)
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to measure for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Target {
    /// A DNS name, resolved through every resolver.
    Host(String),
    /// A literal address, located directly.
    Ip(IpAddr),
}

/// One vendor endpoint from the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// As written in the policy.
    pub host: String,
    pub target: Target,
    pub purpose: Option<String>,
}

/// A dated statement by the vendor, kept for reports and before/after comparisons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    #[serde(deserialize_with = "date_from_yaml")]
    pub date: NaiveDate,
    #[serde(default)]
    pub source: Option<String>,
    pub statement: String,
    #[serde(default)]
    pub locations: Vec<CountryCode>,
}

/// A validated policy, ready to be checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub id: PolicyId,
    pub title: Option<String>,
    pub vendor: Option<String>,
    pub claims: Vec<Claim>,
    pub allow: BTreeSet<CountryCode>,
    pub deny: BTreeSet<CountryCode>,
    pub endpoints: Vec<Endpoint>,
    /// `None`: use the system's resolvers (resolv.conf).
    pub resolvers: Option<Vec<SocketAddr>>,
    pub client_subnets: Vec<IpNetwork>,
    pub repeat: u32,
    /// `None`: use the shipped database.
    pub geo_databases: Option<Vec<PathBuf>>,
    /// The user's own cloud range files (`geo.cloud_ranges`), asked before the shipped ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_ranges: Vec<PathBuf>,
    /// RFC 8805 geofeeds the policy lists (`geo.geofeeds`): `https://` URLs or file paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geofeeds: Vec<String>,
    #[serde(skip)]
    pub dns: ResolveSettings,
    /// Whether to trace every address, and how.
    pub trace: TracePolicy,
    /// Whether to send one HTTPS HEAD to every address, and how.
    #[serde(default)]
    pub http: HttpPolicy,
    /// Countries a path must not cross: a hop located in one is a violation.
    pub transit_deny: BTreeSet<CountryCode>,
    /// Where the check runs from; without it, RTTs cannot be turned into distances.
    pub vantage: Option<Vantage>,
    /// The weakest evidence a verdict may rest on; below it, `inconclusive`.
    pub min_confidence: Confidence,
    /// Whether and where to ask registries who holds each address.
    pub registry: RegistryPolicy,
    /// Where to report verdict changes; `None`: nowhere.
    pub alerts: Option<AlertPolicy>,
    /// `integrity.canaries`: addresses where nothing answers, probed to detect interception;
    /// `None`: the defaults (see `integrity::DEFAULT_CANARIES`), `Some([])`: none.
    pub canaries: Option<Vec<IpAddr>>,
    /// The file this policy was read from.
    pub source: PathBuf,
}

fn date_from_yaml<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(d)?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a date: write it as YYYY-MM-DD, e.g. 2014-10-27"
        ))
    })
}

// ---- raw, as written in YAML ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    vendor: Option<String>,
    #[serde(default)]
    claims: Vec<Spanned<Claim>>,
    allow: Spanned<Vec<Spanned<CountryCode>>>,
    #[serde(default)]
    deny: Vec<Spanned<CountryCode>>,
    endpoints: Spanned<Vec<Spanned<RawEndpoint>>>,
    #[serde(default)]
    resolvers: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    client_subnets: Vec<Spanned<String>>,
    #[serde(default)]
    repeat: Option<Spanned<u32>>,
    #[serde(default)]
    geo: Option<RawGeo>,
    #[serde(default)]
    dns: Option<RawDns>,
    #[serde(default)]
    trace: Option<RawTrace>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    transit: Option<RawTransit>,
    #[serde(default)]
    vantage: Option<Spanned<RawVantage>>,
    #[serde(default)]
    require: Option<RawRequire>,
    #[serde(default)]
    registry: Option<RawRegistry>,
    #[serde(default)]
    alerts: Option<Spanned<RawAlerts>>,
    #[serde(default)]
    integrity: Option<RawIntegrity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    host: Spanned<String>,
    #[serde(default)]
    purpose: Option<String>,
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates policy text; `path` is used in messages and to resolve relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        PolicyError::at(
            path,
            vec![Problem {
                line,
                column,
                message: yaml_message(&e),
            }],
        )
    })?;
    validate(raw, path)
}

/// The first line of saphyr's rendered error, without its own location prefix: we print
/// `file:line:column:` ourselves so every problem has the same, editor-clickable shape.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_position, message)) => message,
        None => first,
    };
    let hint = if first.contains("unknown field") {
        " (check the spelling; see the policy format in README.md)"
    } else {
        ""
    };
    format!("{first}{hint}")
}

pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn add<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.0.push(Problem {
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        });
    }
}

fn validate(raw: RawPolicy, path: &Path) -> Result<Policy, PolicyError> {
    let mut problems = Problems(Vec::new());

    let id = PolicyId::parse(&raw.id.value)
        .map_err(|m| problems.add(&raw.id, m))
        .ok();

    let allow: BTreeSet<CountryCode> = raw.allow.value.iter().map(|c| c.value).collect();
    if allow.is_empty() {
        problems.add(
            &raw.allow,
            "`allow` is empty: every located address would be a violation; list the countries where the data may be",
        );
    }
    for denied in &raw.deny {
        if allow.contains(&denied.value) {
            problems.add(
                denied,
                format!(
                    "{} is in both `allow` and `deny`: a country cannot be both; remove it from one list",
                    denied.value
                ),
            );
        }
    }
    let deny: BTreeSet<CountryCode> = raw.deny.iter().map(|c| c.value).collect();

    if raw.endpoints.value.is_empty() {
        problems.add(
            &raw.endpoints,
            "`endpoints` is empty: list at least one `- host: NAME or IP`",
        );
    }
    let mut seen = HashSet::new();
    let mut endpoints = Vec::new();
    for ep in &raw.endpoints.value {
        let host = ep.value.host.value.trim().to_string();
        match parse_target(&host) {
            Ok(target) => {
                if !seen.insert(host.to_ascii_lowercase()) {
                    problems.add(
                        &ep.value.host,
                        format!("endpoint `{host}` is listed twice; remove one"),
                    );
                }
                endpoints.push(Endpoint {
                    host,
                    target,
                    purpose: ep.value.purpose.clone(),
                });
            }
            Err(m) => problems.add(&ep.value.host, m),
        }
    }

    let resolvers = raw.resolvers.as_ref().map(|list| {
        if list.is_empty() {
            problems.0.push(Problem {
                line: 0,
                column: 0,
                message:
                    "`resolvers` is empty: list resolvers or remove the key to use the system's"
                        .into(),
            });
        }
        list.iter()
            .filter_map(|r| {
                crate::measure::resolve::parse_resolver(&r.value)
                    .map_err(|e| problems.add(r, e.to_string()))
                    .ok()
            })
            .collect::<Vec<_>>()
    });

    let mut client_subnets = Vec::new();
    for s in &raw.client_subnets {
        match parse_subnet(&s.value) {
            Ok(net) => client_subnets.push(net),
            Err(m) => problems.add(s, m),
        }
    }

    let repeat = match &raw.repeat {
        None => 3,
        Some(r) if (1..=MAX_REPEAT).contains(&r.value) => r.value,
        Some(r) => {
            problems.add(
                r,
                format!("`repeat: {}` must be between 1 and {MAX_REPEAT}", r.value),
            );
            3
        }
    };

    let geo_databases = raw
        .geo
        .as_ref()
        .and_then(|g| g.validate(path, &mut problems));
    let cloud_ranges = raw
        .geo
        .as_ref()
        .map(|g| g.cloud_ranges(path))
        .unwrap_or_default();
    let geofeeds = raw
        .geo
        .as_ref()
        .map(|g| g.geofeeds(path, &mut problems))
        .unwrap_or_default();

    let dns = RawDns::validate(raw.dns.as_ref(), &mut problems);
    let trace = RawTrace::validate(raw.trace.as_ref(), &mut problems);
    let http = RawHttp::validate(raw.http.as_ref(), path, &mut problems);
    let transit_deny = raw
        .transit
        .as_ref()
        .map(|t| t.validate(&trace, &mut problems))
        .unwrap_or_default();
    let vantage = raw
        .vantage
        .as_ref()
        .and_then(|v| RawVantage::validate(v, &mut problems));

    let registry = RawRegistry::validate(raw.registry.as_ref(), &mut problems);
    let alerts = raw
        .alerts
        .as_ref()
        .map(|a| RawAlerts::validate(a, &mut problems));
    let canaries = raw
        .integrity
        .as_ref()
        .and_then(|i| i.validate(&mut problems));

    let claims = raw.claims.into_iter().map(|c| c.value).collect();

    match id {
        Some(id) if problems.0.is_empty() => Ok(Policy {
            id,
            title: raw.title,
            vendor: raw.vendor,
            claims,
            allow,
            deny,
            endpoints,
            resolvers,
            client_subnets,
            repeat,
            geo_databases,
            cloud_ranges,
            geofeeds,
            dns,
            trace,
            http,
            transit_deny,
            vantage,
            registry,
            min_confidence: RawRequire::validate(raw.require.as_ref()),
            alerts,
            canaries,
            source: path.to_path_buf(),
        }),
        _ => {
            problems.0.sort_by_key(|p| (p.line, p.column));
            Err(PolicyError::at(path, problems.0))
        }
    }
}

/// A relative database path is taken from the current directory when it exists there (the
/// layout the README's commands use), otherwise from the policy file's directory.
pub(crate) fn resolve_data_path(policy: &Path, value: &str) -> PathBuf {
    let p = PathBuf::from(value);
    if p.is_absolute() || p.exists() {
        return p;
    }
    match policy.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p,
    }
}

pub(crate) fn parse_target(host: &str) -> Result<Target, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "`{host}` is neither an IP address nor a valid DNS name (labels of a-z, 0-9, `-`, at most 63 characters each)"
        ));
    }
    Ok(Target::Host(host.to_string()))
}

fn parse_subnet(s: &str) -> Result<IpNetwork, String> {
    let net: IpNetwork = s.trim().parse().map_err(|_| {
        format!("client subnet `{s}` is not a network: write it as ADDRESS/PREFIX, e.g. 117.192.0.0/16 or 2001:db8:1::/48")
    })?;
    if !s.contains('/') {
        return Err(format!(
            "client subnet `{s}` has no prefix length: write e.g. `{s}/24` (ECS sends a network, not a host)"
        ));
    }
    let canonical = IpNetwork::new(net.network(), net.prefix())
        .map_err(|e| format!("client subnet `{s}`: {e}"))?;
    if canonical != net {
        return Err(format!(
            "client subnet `{s}` has host bits set: did you mean `{canonical}`?"
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::trace::{Protocol, TraceSettings};
    use crate::policy::alerts::AlertEvent;

    const GOOD: &str = r#"
id: xiaomi-india
title: Xiaomi services used from India
vendor: Xiaomi
claims:
  - date: 2014-10-27
    source: https://example.org/announcement
    statement: Indian users' data is served from India, US and Singapore
    locations: [IN, US, SG]
allow: [IN, US, SG]
deny: [CN]
endpoints:
  - host: api.account.xiaomi.com
    purpose: account
  - host: 203.0.113.7
resolvers: [8.8.8.8, "1.1.1.1:53", "[2001:db8::53]:5353"]
client_subnets: [117.192.0.0/16, 2001:db8:1::/48]
repeat: 3
geo:
  databases: [data/geo-whois-asn-country.mmdb]
"#;

    fn parse_str(text: &str) -> Result<Policy, PolicyError> {
        parse(text, Path::new("policies/test.yaml"))
    }

    #[test]
    fn the_documented_example_parses() {
        let p = parse_str(GOOD).expect("the issue's example policy must parse");
        assert_eq!(p.id.as_str(), "xiaomi-india");
        assert_eq!(p.allow.len(), 3);
        assert!(p.deny.contains(&"CN".parse().expect("CN")));
        assert_eq!(
            p.endpoints[1].target,
            Target::Ip("203.0.113.7".parse().expect("ip"))
        );
        let resolvers = p.resolvers.expect("resolvers");
        assert_eq!(resolvers[0], "8.8.8.8:53".parse().expect("addr"));
        assert_eq!(resolvers[2], "[2001:db8::53]:5353".parse().expect("addr"));
        assert_eq!(p.client_subnets.len(), 2);
        assert_eq!(
            p.claims[0].date,
            NaiveDate::from_ymd_opt(2014, 10, 27).expect("date")
        );
        assert_eq!(p.repeat, 3);
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse_str(text) {
            Err(PolicyError::Invalid { problems, .. }) => problems,
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_position() {
        let p = problems("id: a\nallow: [IN]\nendpoints:\n  - host: a.example\n    purpse: x\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 5, "{p:?}");
        assert!(p[0].message.contains("purpse"), "{p:?}");
    }

    #[test]
    fn a_bad_country_code_points_at_its_line() {
        let p = problems("id: a\nallow: [IN, UK]\nendpoints:\n  - host: a.example\n");
        assert_eq!(p[0].line, 2, "{p:?}");
        assert!(p[0].message.contains("UK"), "{p:?}");
    }

    #[test]
    fn every_semantic_mistake_is_reported_at_once() {
        let text = "id: Bad_Id\nallow: [IN, CN]\ndeny: [CN]\nendpoints: []\nclient_subnets: [10.1.2.3/8, 300.0.0.0/8]\nresolvers: [not-an-ip]\nrepeat: 0\n";
        let p = problems(text);
        let all: String = p
            .iter()
            .map(|p| format!("{}:{} {}\n", p.line, p.column, p.message))
            .collect();
        for needle in [
            "id: Bad_Id",
            "both `allow` and `deny`",
            "`endpoints` is empty",
            "host bits",
            "300.0.0.0/8",
            "not-an-ip",
            "repeat: 0",
        ] {
            assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
        }
        assert!(
            p.iter().all(|p| p.line > 0),
            "every problem has a line: {all}"
        );
    }

    #[test]
    fn error_display_names_file_line_and_column() {
        let err = parse_str("id: a\nallow: [IN]\ndeny: [IN]\nendpoints:\n  - host: a.example\n")
            .expect_err("deny ∩ allow");
        let text = err.to_string();
        assert!(text.starts_with("policies/test.yaml:3:"), "{text}");
    }

    #[test]
    fn trace_and_transit_sections() {
        let p = parse_str(
            "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\ntransit:\n  deny: [CN]\ntrace: { protocol: tcp, port: 8443, max_hops: 20, rounds: 2, timeout_ms: 500 }\n",
        )
        .expect("valid trace section");
        assert!(p.trace.enabled);
        assert_eq!(p.trace.settings.protocol, Protocol::Tcp);
        assert_eq!(
            (
                p.trace.settings.port,
                p.trace.settings.max_hops,
                p.trace.settings.rounds
            ),
            (8443, 20, 2)
        );
        assert_eq!(p.trace.settings.round_timeout, Duration::from_millis(500));
        assert!(p.transit_deny.contains(&"CN".parse().expect("CN")));

        let defaults =
            parse_str("id: a\nallow: [IN]\nendpoints:\n  - host: a.example\n").expect("valid");
        assert!(defaults.trace.enabled && defaults.transit_deny.is_empty());
        assert_eq!(defaults.trace.settings, TraceSettings::default());

        let p = problems(
            "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\ntransit: { deny: [CN] }\ntrace: { enabled: false, max_hops: 0 }\n",
        );
        let text: Vec<String> = p
            .iter()
            .map(|p| format!("{}:{} {}", p.line, p.column, p.message))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("5:") && t.contains("needs traces")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("6:") && t.contains("max_hops")),
            "{text:?}"
        );

        let p = problems(
            "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\ntrace: { protocol: sctp }\n",
        );
        assert!(p[0].message.contains("sctp"), "{p:?}");
    }

    #[test]
    fn require_min_confidence() {
        let p = parse_str("id: a\nallow: [IN]\nendpoints:\n  - host: a.example\nrequire: { min_confidence: medium }\n")
            .expect("valid");
        assert_eq!(p.min_confidence, Confidence::Medium);
        let d = parse_str("id: a\nallow: [IN]\nendpoints:\n  - host: a.example\n").expect("valid");
        assert_eq!(d.min_confidence, Confidence::Low);
        let p = problems(
            "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\nrequire: { min_confidence: strong }\n",
        );
        assert_eq!(p[0].line, 5, "{p:?}");
        assert!(p[0].message.contains("strong"), "{p:?}");
    }

    #[test]
    fn alerts_section() {
        let base = "id: a\nallow: [IN]\nendpoints:\n  - host: a.example\n";
        let p = parse_str(&format!(
            "{base}alerts: {{ webhook: https://hooks.example.com/x, on: [inconclusive] }}\n"
        ))
        .expect("valid alerts");
        let a = p.alerts.expect("alerts");
        assert_eq!(a.webhook, "https://hooks.example.com/x");
        assert_eq!(a.on, [AlertEvent::Inconclusive].into());
        let p = parse_str(&format!("{base}alerts:\n  webhook: http://127.0.0.1:9/\n"))
            .expect("valid alerts");
        assert_eq!(p.alerts.expect("alerts").on, AlertPolicy::default_on());
        assert!(parse_str(base).expect("valid").alerts.is_none());

        let p = problems(&format!(
            "{base}alerts:\n  webhook: ftp://x.example/\n  on: [violation, changed]\n"
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!((p[0].line, p[0].column), (6, 12), "{p:?}");
        assert!(p[0].message.contains("ftp://"), "{p:?}");
        assert_eq!(p[1].line, 7, "{p:?}");
        assert!(p[1].message.contains("changed"), "{p:?}");

        let p = problems(&format!(
            "{base}alerts: {{ webhook: https://x.example/, onn: [] }}\n"
        ));
        assert_eq!(p[0].line, 5, "{p:?}");
        assert!(p[0].message.contains("onn"), "{p:?}");
    }

    #[test]
    fn hosts_are_checked() {
        assert!(parse_target("api.account.xiaomi.com").is_ok());
        assert!(parse_target("bad host").is_err());
        assert!(parse_target("-x.example").is_err());
    }
}
