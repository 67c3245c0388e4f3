//! RDAP over HTTP(S) (RFC 9082 queries, RFC 9083 answers): one `ip/{addr}` query to the
//! registry the bootstrap names (or to an override), retried when the server says it is
//! overloaded, and the few fields of the answer that locate the holder.
//!
//! Owns the HTTP side (timeouts, redirects between registries, size bound, retry policy with
//! `Retry-After`) and our own serde types for the fields used: an RDAP network object is large
//! and registries extend it freely, so only what a report quotes is read and the rest ignored.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use ipnetwork::IpNetwork;

use super::{OriginAs, RegistryConfig, RegistryError, RegistryRecord, parse_country};
use crate::model::CountryCode;

/// Largest RDAP answer read; a network object with its entities is a few tens of KiB, so
/// anything near this is not an answer we can use.
const MAX_RDAP_BYTES: usize = 1024 * 1024;

/// What an RDAP query accepts (RFC 9083 §4 media type, and plain JSON from older servers).
const RDAP_ACCEPT: &str = "application/rdap+json, application/json";

/// Redirects followed: a registry sends transferred blocks to another registry (one hop);
/// more than a few is a loop.
const MAX_REDIRECTS: usize = 5;

/// The body of a successful answer and where it finally came from (after redirects).
#[derive(Debug, Clone)]
pub(crate) struct RdapAnswer {
    pub url: Url,
    pub body: String,
}

/// Why an RDAP query gave no usable answer, in words for the evidence detail.
#[derive(Debug, Clone)]
pub(crate) struct RdapFailure {
    /// Where the query went (`rdap:<host>`), when a server was chosen at all.
    pub source: Option<String>,
    pub reason: String,
}

/// Sends RDAP queries with retries.
#[derive(Debug, Clone)]
pub(crate) struct RdapClient {
    http: reqwest::Client,
    tries: u32,
    backoff: Duration,
    max_backoff: Duration,
    retry_after_cap: Duration,
}

impl RdapClient {
    pub fn new(config: &RegistryConfig) -> Result<RdapClient, RegistryError> {
        let mut builder = reqwest::Client::builder();
        // A proxy from the environment must not carry requests meant for this machine (a
        // local mirror or a test server): they would leave it.
        if config.rdap_base.as_ref().is_some_and(is_loopback) {
            builder = builder.no_proxy();
        }
        let http = builder
            .user_agent(concat!("residency/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.rdap_timeout)
            .timeout(config.rdap_timeout)
            // A redirect may move a query between registries, never off https (or off this
            // machine, for a local mirror): a geofeed behind https must not lead to http.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if attempt.url().scheme() == "https" || is_loopback(attempt.url()) {
                    attempt.follow()
                } else {
                    let to = attempt.url().to_string();
                    attempt.error(format!("redirected off https, to {to}"))
                }
            }))
            .build()
            .map_err(|e| RegistryError::HttpClient(e.to_string()))?;
        Ok(RdapClient {
            http,
            tries: config.rdap_tries.max(1),
            backoff: config.rdap_backoff,
            max_backoff: config.rdap_max_backoff,
            retry_after_cap: config.retry_after_cap,
        })
    }

    /// `GET {base}ip/{addr}`, retrying 429, 5xx and transport errors with exponential
    /// backoff (or the server's `Retry-After`, capped) up to the configured number of tries.
    pub async fn query_ip(&self, base: &Url, ip: IpAddr) -> Result<RdapAnswer, RdapFailure> {
        self.query(base, &format!("ip/{ip}")).await
    }

    /// `GET {base}autnum/{asn}`, with the same retries.
    pub async fn query_autnum(&self, base: &Url, asn: u32) -> Result<RdapAnswer, RdapFailure> {
        self.query(base, &format!("autnum/{asn}")).await
    }

    async fn query(&self, base: &Url, path: &str) -> Result<RdapAnswer, RdapFailure> {
        let url = base.join(path).map_err(|e| RdapFailure {
            source: Some(source_name(base)),
            reason: format!("cannot build the query URL from {base}: {e}"),
        })?;
        self.get(&url, RDAP_ACCEPT, MAX_RDAP_BYTES).await
    }

    /// `GET url` with the same timeouts, redirects and retries as a query, reading at most
    /// `max_bytes`: for the other documents a registry record points to (a geofeed).
    pub async fn get(
        &self,
        url: &Url,
        accept: &str,
        max_bytes: usize,
    ) -> Result<RdapAnswer, RdapFailure> {
        let source = Some(source_name(url));
        let mut last = String::new();
        for attempt in 1..=self.tries {
            let outcome = self.try_once(url, accept, max_bytes).await;
            let wait = match outcome {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Fatal(reason) => return Err(RdapFailure { source, reason }),
                Attempt::Retry { reason, after } => {
                    last = reason;
                    after
                }
            };
            if attempt == self.tries {
                break;
            }
            let backoff = self
                .backoff
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(self.max_backoff);
            let delay = wait.map_or(backoff, |w| w.min(self.retry_after_cap));
            tracing::debug!(%url, attempt, ?delay, reason = %last, "retrying RDAP query");
            tokio::time::sleep(delay).await;
        }
        Err(RdapFailure {
            source,
            reason: format!("gave up after {} tries: {last}", self.tries),
        })
    }

    async fn try_once(&self, url: &Url, accept: &str, max_bytes: usize) -> Attempt {
        let response = match self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
        {
            Ok(response) => response,
            // Refused connections and timeouts are often momentary on a busy registry.
            Err(e) => {
                return Attempt::Retry {
                    reason: describe_transport_error(&e),
                    after: None,
                };
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let after = retry_after(response.headers());
            return Attempt::Retry {
                reason: format!("HTTP {status}"),
                after,
            };
        }
        if !status.is_success() {
            // The error object, if any, says why (RFC 9083 §6), e.g. a malformed query.
            let said = read_bounded(response, MAX_RDAP_BYTES)
                .await
                .ok()
                .and_then(|body| error_body(&body))
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            if status == StatusCode::NOT_FOUND {
                return Attempt::Fatal(format!(
                    "HTTP 404: the registry has no record for this address{said}"
                ));
            }
            return Attempt::Fatal(format!("HTTP {status}{said}"));
        }
        let final_url = response.url().clone();
        match read_bounded(response, max_bytes).await {
            Ok(body) => Attempt::Done(RdapAnswer {
                url: final_url,
                body,
            }),
            Err(reason) => Attempt::Fatal(reason),
        }
    }
}

enum Attempt {
    Done(RdapAnswer),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Fatal(String),
}

/// Read the body up to `max_bytes`, chunk by chunk, so a huge answer is cut off rather than
/// buffered.
async fn read_bounded(mut response: reqwest::Response, max_bytes: usize) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_bytes {
                    return Err(format!(
                        "answer larger than {} KiB; not read",
                        max_bytes / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("answer cut off: {}", describe_transport_error(&e))),
        }
    }
    String::from_utf8(body).map_err(|_| "answer is not UTF-8 text".to_string())
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else if e.is_redirect() {
        format!("too many redirects: {e}")
    } else {
        e.to_string()
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&Utc).signed_duration_since(Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// `rdap:<host>` (with `:port` when one is given, so loopback test servers are told apart).
pub(crate) fn source_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("unknown");
    match url.port() {
        Some(port) => format!("rdap:{host}:{port}"),
        None => format!("rdap:{host}"),
    }
}

/// A base URL with a trailing `/` so `join("ip/..")` appends instead of replacing the last
/// path segment (`https://rdap.arin.net/registry` would otherwise lose `registry`).
pub(crate) fn normalise_base(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

// --- The answer: RFC 9083 §5.4 (IP network) and §5.1 (entity), only the fields used. ---

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpNetworkObject {
    object_class_name: Option<String>,
    handle: Option<String>,
    start_address: Option<String>,
    end_address: Option<String>,
    name: Option<String>,
    country: Option<String>,
    #[serde(default)]
    entities: Vec<Entity>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    remarks: Vec<Remark>,
    /// ARIN's extension listing the origin ASes announcing the block.
    #[serde(default, rename = "arin_originas0_originautnums")]
    origin_autnums: Vec<u32>,
    /// The `cidr0` extension: the block as CIDRs (several when the range is not one prefix,
    /// e.g. three for Microsoft's 13.64.0.0 - 13.107.255.255).
    #[serde(default, rename = "cidr0_cidrs")]
    cidrs: Vec<Cidr0>,
    #[serde(flatten)]
    error: ErrorFields,
}

/// The fields of an RDAP error (RFC 9083 §6), which some servers send with `200 OK`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorFields {
    /// A number at most registries, a string (`"400"`) at APNIC.
    error_code: Option<serde_json::Value>,
    title: Option<String>,
    #[serde(default)]
    description: Vec<String>,
}

impl ErrorFields {
    /// The error in words, when this is an error object.
    fn describe(&self) -> Option<String> {
        let code = match self.error_code.as_ref()? {
            serde_json::Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        let mut text = format!("the registry answered error {code}");
        let said: Vec<&str> = self
            .title
            .iter()
            .map(String::as_str)
            .chain(self.description.iter().map(String::as_str))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !said.is_empty() {
            text.push_str(": ");
            text.push_str(&said.join(" "));
        }
        Some(text)
    }
}

#[derive(Debug, Deserialize)]
struct Cidr0 {
    v4prefix: Option<String>,
    v6prefix: Option<String>,
    length: Option<u8>,
}

impl Cidr0 {
    fn network(&self) -> Option<IpNetwork> {
        let prefix: IpAddr = self
            .v4prefix
            .as_ref()
            .or(self.v6prefix.as_ref())?
            .parse()
            .ok()?;
        IpNetwork::new(prefix, self.length?).ok()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    handle: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// jCard (RFC 7095): `["vcard", [[name, params, type, value], ...]]`. RIPE and JPNIC list
    /// most entities by handle only, without one.
    vcard_array: Option<serde_json::Value>,
    #[serde(default)]
    entities: Vec<Entity>,
}

/// RFC 9083 §4.3; APNIC puts the WHOIS `descr:` lines here, titled `description`, RIPE
/// without a title.
#[derive(Debug, Deserialize)]
struct Remark {
    title: Option<String>,
    #[serde(default)]
    description: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Link {
    rel: Option<String>,
    href: Option<String>,
    /// The media type; a geofeed link (RFC 9632 §5, RDAP `geofeed1`) is `application/geofeed+csv`.
    #[serde(rename = "type")]
    media_type: Option<String>,
}

/// An RDAP object of another class than asked for is not an answer (RFC 9083 §4.8); a missing
/// class name is tolerated, as some servers leave it out.
fn expect_class(found: Option<&str>, wanted: &str) -> Result<(), String> {
    match found {
        Some(class) if class != wanted => {
            Err(format!("answer is a `{class}` object, not an `{wanted}`"))
        }
        _ => Ok(()),
    }
}

/// What an error answer's body says, when it is an RDAP error object.
pub(crate) fn error_body(body: &str) -> Option<String> {
    serde_json::from_str::<ErrorFields>(body).ok()?.describe()
}

/// Turn an `ip/` answer into a record. An answer without an IP network object is an error.
pub(crate) fn parse_ip_answer(
    answer: &RdapAnswer,
    retrieved_at: DateTime<Utc>,
    cached: bool,
) -> Result<RegistryRecord, String> {
    let object: IpNetworkObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP IP network object: {e}"))?;
    if let Some(error) = object.error.describe() {
        return Err(error);
    }
    expect_class(object.object_class_name.as_deref(), "ip network")?;
    if object.object_class_name.is_none()
        && object.handle.is_none()
        && object.start_address.is_none()
    {
        return Err(
            "answer has no IP network object (no objectClassName, handle or start address)".into(),
        );
    }
    let registrant = find_registrant(&object.entities);
    let named = holder_entity(&object.entities);
    // Who holds the block: the registrant's name; else the description the registry copies
    // from WHOIS `descr:` (APNIC titles it, RIPE does not), which is what WHOIS shows as the
    // holder; else the best-named other entity (AFRINIC lists its organisation without roles).
    let holder = holder_name(registrant, named, &object.remarks);
    // The network's own country; ARIN leaves it out, so fall back to the holder's address.
    let (country, country_raw) = match object.country.clone() {
        Some(raw) => (parse_country(Some(&raw)), Some(raw)),
        None => match entity_country(registrant, &object.entities) {
            Some((code, raw)) => (Some(code), Some(raw)),
            None => (None, None),
        },
    };
    let self_link = self_link(&object.links);
    let range = match (&object.start_address, &object.end_address) {
        (Some(start), Some(end)) => Some(format!("{start} - {end}")),
        _ => None,
    };
    let mut cidrs: Vec<IpNetwork> = object.cidrs.iter().filter_map(Cidr0::network).collect();
    if cidrs.is_empty()
        && let (Some(start), Some(end)) = (&object.start_address, &object.end_address)
        && let (Some(start), Some(end)) = (rdap_address(start), rdap_address(end))
    {
        cidrs = range_cidrs(start, end);
    }
    Ok(RegistryRecord {
        source: source_name(&answer.url),
        holder,
        country,
        country_raw,
        handle: object.handle,
        range,
        name: object.name,
        url: Some(self_link.unwrap_or_else(|| answer.url.to_string())),
        origin_asn: object.origin_autnums.first().copied(),
        origin_as: None,
        cidrs,
        geofeed: geofeed_link(&object.links).or_else(|| geofeed_remark(&object.remarks)),
        retrieved_at,
        cached,
    })
}

/// An RDAP `startAddress`/`endAddress` as registries really write them: plain, with a
/// `/32` suffix (RIPE in 2015), or with zero-padded octets (`074.125.000.000`, ARIN in 2015).
fn rdap_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text.split_once('/').map_or(text, |(addr, _)| addr);
    text.parse().ok().or_else(|| {
        let octets: Vec<u8> = text
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        let octets: [u8; 4] = octets.try_into().ok()?;
        Some(IpAddr::from(octets))
    })
}

/// The fewest CIDR prefixes that exactly cover `start..=end` (empty when the two are of
/// different families or out of order). Bounded: a range that needs more than 256 prefixes is
/// not a registry block, and what was found by then is kept.
pub(crate) fn range_cidrs(start: IpAddr, end: IpAddr) -> Vec<IpNetwork> {
    let (bits, mut lo, hi) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (32, u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (128, u128::from(a), u128::from(b)),
        _ => return Vec::new(),
    };
    // The last offset of a block with `k` host bits.
    let span = |k: u32| {
        if k >= 128 {
            u128::MAX
        } else {
            (1u128 << k) - 1
        }
    };
    let mut out = Vec::new();
    while lo <= hi && out.len() < 256 {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut k = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        while k > 0 && span(k) > hi - lo {
            k -= 1;
        }
        let addr = if bits == 32 {
            IpAddr::from(std::net::Ipv4Addr::from(lo as u32))
        } else {
            IpAddr::from(std::net::Ipv6Addr::from(lo))
        };
        if let Ok(net) = IpNetwork::new(addr, (bits - k) as u8) {
            out.push(net);
        }
        match (lo + span(k)).checked_add(1) {
            Some(next) => lo = next,
            None => break,
        }
    }
    out
}

/// RFC 9632 §5: the `geo` link to the network's geofeed (RIPE NCC's `geofeed1` RDAP extension).
fn geofeed_link(links: &[Link]) -> Option<String> {
    links
        .iter()
        .find(|l| {
            l.rel
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("geo"))
                || l.media_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("application/geofeed+csv"))
        })
        .and_then(|l| l.href.clone())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
}

/// RFC 9632 §3: a `remarks: Geofeed https://…` line, the form used before `geofeed:` existed.
fn geofeed_remark(remarks: &[Remark]) -> Option<String> {
    remarks
        .iter()
        .flat_map(|r| r.description.iter())
        .find_map(|line| super::geofeed_in_remark(line))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutnumObject {
    object_class_name: Option<String>,
    handle: Option<String>,
    name: Option<String>,
    country: Option<String>,
    #[serde(default)]
    entities: Vec<Entity>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    remarks: Vec<Remark>,
    #[serde(flatten)]
    error: ErrorFields,
}

/// Turn an `autnum/` answer (RFC 9083 §5.5) into the origin AS of a record.
pub(crate) fn parse_autnum_answer(answer: &RdapAnswer, asn: u32) -> Result<OriginAs, String> {
    let object: AutnumObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP autnum object: {e}"))?;
    if let Some(error) = object.error.describe() {
        return Err(error);
    }
    expect_class(object.object_class_name.as_deref(), "autnum")?;
    let registrant = find_registrant(&object.entities);
    let named = holder_entity(&object.entities);
    let country = match object.country.as_deref() {
        Some(raw) => parse_country(Some(raw)),
        None => entity_country(registrant, &object.entities).map(|(code, _)| code),
    };
    Ok(OriginAs {
        asn,
        handle: object.handle,
        name: object.name,
        holder: holder_name(registrant, named, &object.remarks),
        country,
        url: Some(self_link(&object.links).unwrap_or_else(|| answer.url.to_string())),
    })
}

/// Who holds the block: the registrant's name; else the description the registry copies from
/// WHOIS `descr:` (APNIC titles it, RIPE does not), which is what WHOIS shows as the holder;
/// else the best-named organisation or group (AFRINIC lists its organisation without roles);
/// else AFRINIC's `Remark` (its `descr:`); a person's name only as the last resort.
fn holder_name(
    registrant: Option<&Entity>,
    named: Option<&Entity>,
    remarks: &[Remark],
) -> Option<String> {
    let name = |e: &Entity| vcard_text(e, "fn");
    let person = named.is_some_and(|e| {
        vcard_text(e, "kind").is_some_and(|k| k.eq_ignore_ascii_case("individual"))
    });
    registrant
        .and_then(name)
        .or_else(|| description(remarks))
        .or_else(|| named.filter(|_| !person).and_then(name))
        .or_else(|| first_remark(remarks, |t| t.eq_ignore_ascii_case("remark")))
        .or_else(|| named.and_then(name))
}

fn self_link(links: &[Link]) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref() == Some("self"))
        .and_then(|l| l.href.clone())
}

/// The first line of the description remark: titled `description` (APNIC), or the untitled
/// remark RIPE makes of `descr:`.
fn description(remarks: &[Remark]) -> Option<String> {
    first_remark(remarks, |t| t.eq_ignore_ascii_case("description"))
}

/// The first meaningful line of the untitled remarks and those whose title passes `title`.
fn first_remark(remarks: &[Remark], title: impl Fn(&str) -> bool) -> Option<String> {
    remarks
        .iter()
        .filter(|r| r.title.as_deref().is_none_or(&title))
        .flat_map(|r| r.description.iter())
        .map(|line| line.trim())
        // RIPE objects often open with a rule of `=` signs.
        .find(|line| line.chars().any(char::is_alphanumeric))
        .map(str::to_string)
}

/// Every entity, depth first, nested ones included.
fn every_entity(entities: &[Entity]) -> Vec<&Entity> {
    fn walk<'a>(entities: &'a [Entity], out: &mut Vec<&'a Entity>) {
        for e in entities {
            out.push(e);
            walk(&e.entities, out);
        }
    }
    let mut out = Vec::new();
    walk(entities, &mut out);
    out
}

/// The first entity (depth first) with `role` and a name of its own: RIPE lists maintainers
/// (`ALOJALIA-MNT`) as registrants beside the organisation.
fn find_registrant(entities: &[Entity]) -> Option<&Entity> {
    every_entity(entities)
        .into_iter()
        .find(|e| e.roles.iter().any(|r| r.eq_ignore_ascii_case("registrant")) && has_name(e))
}

/// Whether the entity has a name of its own: a `fn` that is not just its handle (AFRINIC
/// writes `fn: ORG-VSA1-AFRINIC`; RIPE's bare references have no vCard at all).
fn has_name(entity: &Entity) -> bool {
    vcard_text(entity, "fn").is_some_and(|name| {
        entity
            .handle
            .as_deref()
            .is_none_or(|handle| !handle.eq_ignore_ascii_case(&name))
    })
}

/// When no registrant is named, the entity most likely to be the holder (in [`ranked`]
/// order) that has a name of its own.
fn holder_entity(entities: &[Entity]) -> Option<&Entity> {
    ranked(entities).into_iter().find(|e| has_name(e))
}

/// The country of the holder's address: the registrant's, else the first address with one
/// among the other entities, in [`ranked`] order (AFRINIC's organisation may give only a
/// street, its NOC the country).
fn entity_country(
    registrant: Option<&Entity>,
    entities: &[Entity],
) -> Option<(CountryCode, String)> {
    // A person's or an abuse desk's address is theirs, not the holder's.
    registrant.and_then(vcard_country).or_else(|| {
        ranked(entities)
            .into_iter()
            .filter(|e| {
                let kind = vcard_text(e, "kind").unwrap_or_default();
                let contact = e
                    .roles
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case("abuse") || r.eq_ignore_ascii_case("noc"));
                !kind.eq_ignore_ascii_case("individual") && !contact
            })
            .find_map(vcard_country)
    })
}

/// Entities in the order they are likely to speak for the holder: an organisation, then an
/// administrative contact, then a group (a maintainer), then anyone else. People and abuse
/// desks come last: their name is a contact's, not the holder's.
fn ranked(entities: &[Entity]) -> Vec<&Entity> {
    let rank = |e: &Entity| {
        let kind = vcard_text(e, "kind")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let role = |r: &str| e.roles.iter().any(|x| x.eq_ignore_ascii_case(r));
        match kind.as_str() {
            "org" => 0,
            _ if role("administrative") && kind != "individual" => 1,
            "group" => 2,
            _ if role("abuse") || role("noc") => 5,
            "individual" => 4,
            _ => 3,
        }
    };
    let mut every = every_entity(entities);
    every.sort_by_key(|e| rank(e));
    every
}

fn vcard_properties(entity: &Entity) -> impl Iterator<Item = &Vec<serde_json::Value>> {
    entity
        .vcard_array
        .as_ref()
        .and_then(|v| v.get(1))
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_array())
}

/// A text property of the jCard, e.g. `fn` (the formatted name).
fn vcard_text(entity: &Entity, name: &str) -> Option<String> {
    vcard_properties(entity)
        .find(|p| p.first().and_then(|n| n.as_str()) == Some(name))
        .and_then(|p| p.get(3))
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The country of the jCard's `adr` property, and the text it was read from. Registries put
/// it in one of three places: the `cc` parameter (RFC 8605), the structured value's last
/// (7th) slot, as a code (LACNIC) or a name (AFRINIC), or only the last line of the `label`
/// parameter (ARIN: `…\n98052\nUnited States`; APNIC: `Chiyoda-ku, Tokyo 101-0047,Japan`).
fn vcard_country(entity: &Entity) -> Option<(CountryCode, String)> {
    vcard_properties(entity)
        .filter(|p| p.first().and_then(|n| n.as_str()) == Some("adr"))
        .find_map(|p| {
            let params = p.get(1);
            let param = |key: &str| params.and_then(|v| v.get(key)).and_then(|v| v.as_str());
            let slot = p
                .get(3)
                .and_then(|v| v.as_array())
                .and_then(|parts| parts.get(6))
                .and_then(|v| v.as_str());
            let read = |text: &str| {
                let text = text.trim();
                let code = parse_country(Some(text)).or_else(|| CountryCode::from_name(text))?;
                Some((code, text.to_string()))
            };
            param("cc")
                .and_then(read)
                .or_else(|| slot.and_then(read))
                .or_else(|| param("label").and_then(label_country))
        })
}

/// The country named by the last line of an address label, or by its last comma-separated
/// part. Some registries write the line breaks as a literal `\n`.
fn label_country(label: &str) -> Option<(CountryCode, String)> {
    let lines: Vec<&str> = label
        .split('\n')
        .flat_map(|line| line.split("\\n"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let last = *lines.last()?;
    let parts: Vec<&str> = last.split(',').map(str::trim).collect();
    // "Kowloon, Hong Kong, China" is HK: the last two parts are tried before the last alone.
    let two = (parts.len() >= 3).then(|| parts[parts.len() - 2..].join(", "));
    let tail = parts.last().copied().unwrap_or(last);
    // A US address ends in its state, and one state shares its name with a country.
    let tail = (parts.len() == 1 || !tail.eq_ignore_ascii_case("georgia")).then_some(tail);
    std::iter::once(last.to_string())
        .chain(two)
        .chain(tail.map(str::to_string))
        .find_map(|text| Some((CountryCode::from_name(&text)?, text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(RETRY_AFTER, value);
        }
        map
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let soon = (Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = retry_after(&headers(&soon)).unwrap_or_default();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let cidrs = |a: &str, b: &str| -> Vec<String> {
            let (a, b) = (a.parse().expect("start"), b.parse().expect("end"));
            range_cidrs(a, b).iter().map(|n| n.to_string()).collect()
        };
        assert_eq!(cidrs("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            cidrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("192.0.2.0", "192.0.2.255"), ["192.0.2.0/24"]);
        assert_eq!(cidrs("192.0.2.7", "192.0.2.7"), ["192.0.2.7/32"]);
        assert_eq!(
            cidrs("192.0.2.255", "192.0.3.0"),
            ["192.0.2.255/32", "192.0.3.0/32"]
        );
        assert_eq!(
            cidrs("255.255.255.254", "255.255.255.255"),
            ["255.255.255.254/31"]
        );
        assert!(cidrs("192.0.2.9", "192.0.2.1").is_empty(), "out of order");
        assert!(cidrs("192.0.2.1", "2001:db8::1").is_empty(), "two families");
        assert_eq!(rdap_address("074.125.000.000"), "74.125.0.0".parse().ok());
        assert_eq!(rdap_address("62.239.237.0/32"), "62.239.237.0".parse().ok());
    }

    #[test]
    fn the_address_country_slot_holds_a_code_or_a_name() {
        let entity = |adr: serde_json::Value| -> Entity {
            serde_json::from_value(serde_json::json!({
                "handle": "X", "roles": ["registrant"],
                "vcardArray": ["vcard", [["fn", {}, "text", "Holder"], ["adr", {}, "text", adr]]]
            }))
            .expect("entity")
        };
        let lacnic = entity(serde_json::json!([
            "", "", "Calle 1", "Rosario", "SF", "2000", "AR"
        ]));
        assert_eq!(
            vcard_country(&lacnic)
                .map(|(c, _)| c.to_string())
                .as_deref(),
            Some("AR")
        );
        let afrinic = entity(serde_json::json!([
            "MTN",
            "Heron Place",
            "",
            "",
            "",
            "Cape Town",
            "South Africa"
        ]));
        assert_eq!(
            vcard_country(&afrinic)
                .map(|(c, _)| c.to_string())
                .as_deref(),
            Some("ZA")
        );
        let nothing = entity(serde_json::json!([
            "216 14th Avenue",
            "Fairland",
            "Johannesburg 2196",
            "",
            "",
            "",
            ""
        ]));
        assert_eq!(vcard_country(&nothing), None);
    }

    #[test]
    fn address_labels_end_in_a_country_name() {
        let country = |l: &str| label_country(l).map(|(c, raw)| format!("{c} {raw}"));
        assert_eq!(
            country("1 Main St\nRedmond\nWA\n98052\nUnited States").as_deref(),
            Some("US United States")
        );
        assert_eq!(
            country("Urbannet\n3-6-2\nChiyoda-ku, Tokyo 101-0047,Japan").as_deref(),
            Some("JP Japan")
        );
        assert_eq!(
            country("Amsterdam\nThe Netherlands\n").as_deref(),
            Some("NL The Netherlands")
        );
        assert_eq!(
            country("London GB"),
            None,
            "a code after a city is not read as a name"
        );
        assert_eq!(
            country("Kowloon, Hong Kong, China").as_deref(),
            Some("HK Hong Kong, China")
        );
        assert_eq!(
            country("1 Peachtree St\nAtlanta, Georgia"),
            None,
            "a US state, not the country"
        );
        assert_eq!(country("Tbilisi\nGeorgia").as_deref(), Some("GE Georgia"));
        assert_eq!(country("QLD 4101"), None);
        assert_eq!(country(""), None);
    }

    #[test]
    fn base_urls_keep_their_path() {
        let base = normalise_base("https://rdap.arin.net/registry").map(|u| u.to_string());
        assert_eq!(base.as_deref(), Ok("https://rdap.arin.net/registry/"));
        assert!(normalise_base("ftp://example.net/").is_err());
        let url = Url::parse("http://127.0.0.1:8080/").ok();
        assert!(url.as_ref().is_some_and(is_loopback));
        assert_eq!(
            url.as_ref().map(source_name).as_deref(),
            Some("rdap:127.0.0.1:8080")
        );
    }
}
