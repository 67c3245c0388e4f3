//! The optional sections of a policy (`dns`, `trace`, `transit`, `vantage`, `geo`, `require`,
//! `registry`, `alerts`, `integrity`): each as written, and each validating itself into the
//! settings it stands for, reporting its problems at their line and column.

use crate::measure::http::HttpSettings;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::alerts::{AlertEvent, AlertPolicy};
use super::{Problems, resolve_data_path};
use crate::measure::resolve::{ResolveSettings, limits as resolve_limits};
use crate::measure::trace::{Protocol, TraceSettings, limits as trace_limits};
use crate::model::{Confidence, CountryCode, HostPort};
use crate::sources::physics::Vantage;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntegrity {
    #[serde(default)]
    pub(crate) canaries: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    pub(crate) webhook: Spanned<String>,
    #[serde(default)]
    pub(crate) on: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) rdap: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) whois: Option<Spanned<String>>,
}

/// The policy's `registry:` section, checked when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RegistryPolicy {
    /// Off only when the policy says `enabled: false`.
    pub disabled: bool,
    /// RDAP base URL to ask instead of the one IANA's bootstrap names.
    #[serde(serialize_with = "as_text")]
    pub rdap: Option<reqwest::Url>,
    /// WHOIS server to start from instead of IANA's.
    pub whois: Option<HostPort>,
}

fn as_text<S: serde::Serializer>(url: &Option<reqwest::Url>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.collect_str(url),
        None => s.serialize_none(),
    }
}

/// `text` as an `http://` or `https://` URL with a host, the only kind a policy points at.
fn http_url(text: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// An RDAP base URL: `http://` or `https://` with a host (`registry.rdap`, `--rdap`).
pub fn parse_rdap_url(text: &str) -> Result<reqwest::Url, String> {
    http_url(text)
        .ok_or_else(|| format!("`{text}` must be an http(s):// URL, e.g. https://rdap.apnic.net/"))
}

/// A WHOIS server: `HOST[:PORT]`, port 43 by default (`registry.whois`, `--whois`).
pub fn parse_whois_server(text: &str) -> Result<HostPort, String> {
    HostPort::parse(text, crate::sources::registry::WHOIS_PORT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequire {
    #[serde(default)]
    pub(crate) min_confidence: Option<Confidence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVantage {
    pub(crate) country: CountryCode,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrace {
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) protocol: Option<Protocol>,
    #[serde(default)]
    pub(crate) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(crate) max_hops: Option<Spanned<u8>>,
    #[serde(default)]
    pub(crate) rounds: Option<Spanned<u32>>,
    #[serde(default)]
    pub(crate) timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) ports: Option<Spanned<Vec<Spanned<u16>>>>,
    #[serde(default)]
    pub(crate) timeout_ms: Option<Spanned<u64>>,
    /// PEM files of root certificates to trust beside the web's (an organisation's own CA).
    #[serde(default)]
    pub(crate) roots: Vec<Spanned<String>>,
}

/// The policy's `http:` section: one HTTPS HEAD per address and name when probing is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpPolicy {
    /// On unless the policy says `enabled: false` (and only while probing is on at all).
    pub enabled: bool,
    pub ports: Vec<u16>,
    pub timeout_ms: u64,
    /// The root certificate files trusted beside the web's roots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<PathBuf>,
    /// Their certificates (DER), read when the policy is.
    #[serde(skip)]
    pub root_certs: Vec<Vec<u8>>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        let settings = HttpSettings::default();
        HttpPolicy {
            enabled: true,
            ports: settings.ports,
            timeout_ms: settings.timeout.as_millis() as u64,
            roots: Vec::new(),
            root_certs: Vec::new(),
        }
    }
}

impl HttpPolicy {
    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            ports: self.ports.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            roots: self.root_certs.clone(),
        }
    }
}

/// Bounds of `http.timeout_ms`: long enough for a far server's handshake, short enough that
/// a silent one does not hold a run.
pub const HTTP_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=30_000;

impl RawHttp {
    pub(crate) fn validate(
        raw: Option<&RawHttp>,
        policy_path: &Path,
        problems: &mut Problems,
    ) -> HttpPolicy {
        let mut policy = HttpPolicy::default();
        let Some(raw) = raw else {
            return policy;
        };
        policy.enabled = raw.enabled.unwrap_or(true);
        if let Some(ports) = &raw.ports {
            if ports.value.is_empty() {
                problems.add(
                    ports,
                    "`http.ports` is empty: list ports such as [443] or set `http.enabled: false`",
                );
            }
            for port in &ports.value {
                if port.value == 0 {
                    problems.add(port, "`http.ports` holds 0, which is no port");
                }
            }
            policy.ports = ports
                .value
                .iter()
                .map(|p| p.value)
                .filter(|p| *p != 0)
                .collect();
            policy.ports.dedup();
        }
        if let Some(t) = in_limits(
            &raw.timeout_ms,
            HTTP_TIMEOUT_MS,
            "http.timeout_ms",
            problems,
        ) {
            policy.timeout_ms = t;
        }
        for root in &raw.roots {
            let path = resolve_data_path(policy_path, &root.value);
            match crate::measure::http::read_roots(&path) {
                Ok(certs) => policy.root_certs.extend(certs),
                Err(e) => {
                    problems.add(root, format!("`http.roots`: {e}; give PEM CA certificates"))
                }
            }
            policy.roots.push(path);
        }
        policy
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransit {
    #[serde(default)]
    pub(crate) deny: Vec<Spanned<CountryCode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGeo {
    #[serde(default)]
    pub(crate) databases: Option<Spanned<Vec<Spanned<String>>>>,
    /// A user's own copies of cloud providers' range files, asked before the shipped ones.
    #[serde(default)]
    pub(crate) cloud_ranges: Vec<Spanned<String>>,
    /// RFC 8805 geofeeds to ask for every address: `https://` URLs or files.
    #[serde(default)]
    pub(crate) geofeeds: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    #[serde(default)]
    pub(crate) timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub(crate) tries: Option<Spanned<u32>>,
}

impl RawDns {
    /// The `dns:` section, within the limits the command line also enforces.
    pub(crate) fn validate(raw: Option<&RawDns>, problems: &mut Problems) -> ResolveSettings {
        let mut dns = ResolveSettings::default();
        let Some(raw) = raw else {
            return dns;
        };
        if let Some(t) = in_limits(
            &raw.timeout_ms,
            resolve_limits::TIMEOUT_MS,
            "dns.timeout_ms",
            problems,
        ) {
            dns.timeout = Duration::from_millis(t);
        }
        if let Some(t) = in_limits(&raw.tries, resolve_limits::TRIES, "dns.tries", problems) {
            dns.tries = t;
        }
        dns
    }
}

impl RawTransit {
    /// The `transit:` section's denied countries; they need traces to be checked.
    pub(crate) fn validate(
        &self,
        trace: &TracePolicy,
        problems: &mut Problems,
    ) -> BTreeSet<CountryCode> {
        if !trace.enabled
            && let Some(first) = self.deny.first()
        {
            problems.add(
                first,
                "`transit.deny` needs traces, but `trace.enabled` is false: enable tracing or remove `transit`",
            );
        }
        self.deny.iter().map(|c| c.value).collect()
    }
}

impl RawVantage {
    /// The `vantage:` point, checked against the country's shape.
    pub(crate) fn validate(raw: &Spanned<RawVantage>, problems: &mut Problems) -> Option<Vantage> {
        Vantage::new(raw.value.country, raw.value.lat, raw.value.lon)
            .map_err(|e| problems.add(raw, format!("`vantage`: {e}")))
            .ok()
    }
}

impl RawGeo {
    /// The `geo.geofeeds`: `https://` URLs as given (`http://` only to this machine, for a
    /// local mirror), files resolved like the databases' and required to exist.
    pub(crate) fn geofeeds(&self, policy: &Path, problems: &mut Problems) -> Vec<String> {
        let mut out = Vec::new();
        for feed in &self.geofeeds {
            let text = feed.value.trim();
            if text.starts_with("https://") {
                out.push(text.to_string());
            } else if text.starts_with("http://") {
                let local = reqwest::Url::parse(text)
                    .is_ok_and(|u| crate::sources::registry::is_loopback_url(&u));
                if local {
                    out.push(text.to_string());
                } else {
                    problems.add(feed, format!("geofeed `{text}` is http://; RFC 9632 requires https:// (plain http is accepted only from this machine)"));
                }
            } else {
                let path = resolve_data_path(policy, text);
                if !path.is_file() {
                    problems.add(feed, format!("geofeed file {} does not exist: give an https:// URL or an existing file", path.display()));
                }
                out.push(path.display().to_string());
            }
        }
        out
    }

    /// The `geo.cloud_ranges` paths, relative ones resolved like the databases'.
    pub(crate) fn cloud_ranges(&self, policy: &Path) -> Vec<PathBuf> {
        self.cloud_ranges
            .iter()
            .map(|f| resolve_data_path(policy, &f.value))
            .collect()
    }

    /// The `geo.databases` paths, relative ones resolved (see [`resolve_data_path`]).
    pub(crate) fn validate(&self, policy: &Path, problems: &mut Problems) -> Option<Vec<PathBuf>> {
        let dbs = self.databases.as_ref()?;
        if dbs.value.is_empty() {
            problems.add(dbs, "`geo.databases` is empty: list .mmdb files or remove the key to use the shipped database");
        }
        Some(
            dbs.value
                .iter()
                .map(|d| resolve_data_path(policy, &d.value))
                .collect(),
        )
    }
}

impl RawRequire {
    /// `require.min_confidence`, low (no demand) by default.
    pub(crate) fn validate(raw: Option<&RawRequire>) -> Confidence {
        raw.and_then(|r| r.min_confidence)
            .unwrap_or(Confidence::Low)
    }
}

impl RawRegistry {
    /// The `registry:` section, its servers checked when read.
    pub(crate) fn validate(raw: Option<&RawRegistry>, problems: &mut Problems) -> RegistryPolicy {
        let Some(raw) = raw else {
            return RegistryPolicy::default();
        };
        RegistryPolicy {
            disabled: raw.enabled == Some(false),
            rdap: raw.rdap.as_ref().and_then(|rdap| {
                parse_rdap_url(&rdap.value)
                    .map_err(|e| problems.add(rdap, format!("`registry.rdap`: {e}")))
                    .ok()
            }),
            whois: raw.whois.as_ref().and_then(|whois| {
                parse_whois_server(&whois.value)
                    .map_err(|e| problems.add(whois, format!("`registry.whois`: {e}")))
                    .ok()
            }),
        }
    }
}

impl RawIntegrity {
    /// `integrity.canaries`, when the policy chooses its own.
    pub(crate) fn validate(&self, problems: &mut Problems) -> Option<Vec<IpAddr>> {
        let list = self.canaries.as_ref()?;
        Some(
            list.iter()
                .filter_map(|c| {
                    c.value
                        .trim()
                        .parse::<IpAddr>()
                        .map_err(|_| {
                            problems.add(
                                c,
                                format!(
                                    "`integrity.canaries`: `{}` is not an IP address: give addresses \
                                     where nothing can answer, e.g. 198.18.0.1 or 100::1",
                                    c.value
                                ),
                            )
                        })
                        .ok()
                })
                .collect(),
        )
    }
}

impl RawAlerts {
    /// The `alerts:` section: an http(s) webhook and the events that call it.
    pub(crate) fn validate(raw: &Spanned<RawAlerts>, problems: &mut Problems) -> AlertPolicy {
        let webhook = &raw.value.webhook;
        if http_url(&webhook.value).is_none() {
            problems.add(
                webhook,
                format!(
                    "`alerts.webhook: {}` must be an http(s):// URL, e.g. https://hooks.example.com/residency",
                    webhook.value
                ),
            );
        }
        let on = match &raw.value.on {
            None => AlertPolicy::default_on(),
            Some(list) => {
                if list.value.is_empty() {
                    problems.add(
                        list,
                        "`alerts.on` is empty: list events (violation, recovered, inconclusive) or remove the key for [violation, recovered]",
                    );
                }
                list.value
                    .iter()
                    .filter_map(|e| {
                        AlertEvent::parse(e.value.trim())
                            .ok_or_else(|| {
                                problems.add(
                                    e,
                                    format!(
                                        "`{}` is not an alert event: use violation, recovered or inconclusive",
                                        e.value
                                    ),
                                )
                            })
                            .ok()
                    })
                    .collect()
            }
        };
        AlertPolicy {
            webhook: webhook.value.clone(),
            on,
        }
    }
}

/// The policy's `trace:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TracePolicy {
    /// Off only when the policy says `enabled: false`: paths are evidence by default.
    pub enabled: bool,
    pub settings: TraceSettings,
}

impl RawTrace {
    /// The `trace:` section; tracing is on when the section is absent.
    pub(crate) fn validate(raw: Option<&RawTrace>, problems: &mut Problems) -> TracePolicy {
        let mut settings = TraceSettings::default();
        let Some(raw) = raw else {
            return TracePolicy {
                enabled: true,
                settings,
            };
        };
        if let Some(p) = raw.protocol {
            settings.protocol = p;
        }
        if let Some(port) = in_limits(&raw.port, trace_limits::PORT, "trace.port", problems) {
            settings.port = port;
        }
        if let Some(h) = in_limits(
            &raw.max_hops,
            trace_limits::MAX_HOPS,
            "trace.max_hops",
            problems,
        ) {
            settings.max_hops = h;
        }
        if let Some(r) = in_limits(&raw.rounds, trace_limits::ROUNDS, "trace.rounds", problems) {
            settings.rounds = r;
        }
        if let Some(t) = in_limits(
            &raw.timeout_ms,
            trace_limits::TIMEOUT_MS,
            "trace.timeout_ms",
            problems,
        ) {
            settings.round_timeout = Duration::from_millis(t);
        }
        TracePolicy {
            enabled: raw.enabled.unwrap_or(true),
            settings,
        }
    }
}

/// The value of an optional number field when it is within `limits`; otherwise a problem
/// naming the field and the bounds (the same bounds the command line enforces).
fn in_limits<T: Copy + PartialOrd + fmt::Display>(
    field: &Option<Spanned<T>>,
    limits: std::ops::RangeInclusive<T>,
    name: &str,
    problems: &mut Problems,
) -> Option<T> {
    let field = field.as_ref()?;
    if limits.contains(&field.value) {
        return Some(field.value);
    }
    problems.add(
        field,
        format!(
            "`{name}` must be between {} and {}",
            limits.start(),
            limits.end()
        ),
    );
    None
}
