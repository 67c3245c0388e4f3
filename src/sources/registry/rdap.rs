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

use super::{OriginAs, RegistryConfig, RegistryError, RegistryRecord, parse_country};

/// Largest RDAP answer read; a network object with its entities is a few tens of KiB, so
/// anything near this is not an answer we can use.
const MAX_RDAP_BYTES: usize = 1024 * 1024;

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
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
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
        let source = Some(source_name(&url));
        let mut last = String::new();
        for attempt in 1..=self.tries {
            let outcome = self.try_once(&url).await;
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

    async fn try_once(&self, url: &Url) -> Attempt {
        let response = match self
            .http
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/rdap+json, application/json",
            )
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
        if status == StatusCode::NOT_FOUND {
            return Attempt::Fatal("HTTP 404: the registry has no record for this address".into());
        }
        if !status.is_success() {
            return Attempt::Fatal(format!("HTTP {status}"));
        }
        let final_url = response.url().clone();
        match read_bounded(response).await {
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

/// Read the body up to [`MAX_RDAP_BYTES`], chunk by chunk, so a huge answer is cut off
/// rather than buffered.
async fn read_bounded(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RDAP_BYTES {
                    return Err(format!(
                        "answer larger than {} KiB; not read",
                        MAX_RDAP_BYTES / 1024
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

fn is_loopback(url: &Url) -> bool {
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
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entity {
    #[serde(default)]
    roles: Vec<String>,
    /// jCard (RFC 7095): `["vcard", [[name, params, type, value], ...]]`.
    vcard_array: Option<serde_json::Value>,
    #[serde(default)]
    entities: Vec<Entity>,
}

/// RFC 9083 §4.3; APNIC puts the WHOIS `descr:` lines here, titled `description`.
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

/// Turn an `ip/` answer into a record. An answer without an IP network object is an error.
pub(crate) fn parse_ip_answer(
    answer: &RdapAnswer,
    retrieved_at: DateTime<Utc>,
    cached: bool,
) -> Result<RegistryRecord, String> {
    let object: IpNetworkObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP IP network object: {e}"))?;
    expect_class(object.object_class_name.as_deref(), "ip network")?;
    let registrant = find_role(&object.entities, "registrant");
    // APNIC often lists no registrant entity; the block's description names the holder.
    let holder = registrant
        .and_then(|e| vcard_text(e, "fn"))
        .or_else(|| description(&object.remarks));
    // The network's own country; ARIN leaves it out, so fall back to the registrant's
    // address, where jCard puts the ISO code in the `cc` parameter.
    let country_text = object
        .country
        .clone()
        .or_else(|| registrant.and_then(vcard_country));
    let self_link = self_link(&object.links);
    let range = match (&object.start_address, &object.end_address) {
        (Some(start), Some(end)) => Some(format!("{start} - {end}")),
        _ => None,
    };
    let country = parse_country(country_text.as_deref());
    Ok(RegistryRecord {
        source: source_name(&answer.url),
        holder,
        country,
        country_raw: country_text,
        handle: object.handle,
        range,
        name: object.name,
        url: Some(self_link.unwrap_or_else(|| answer.url.to_string())),
        origin_asn: object.origin_autnums.first().copied(),
        origin_as: None,
        retrieved_at,
        cached,
    })
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
}

/// Turn an `autnum/` answer (RFC 9083 §5.5) into the origin AS of a record.
pub(crate) fn parse_autnum_answer(answer: &RdapAnswer, asn: u32) -> Result<OriginAs, String> {
    let object: AutnumObject = serde_json::from_str(&answer.body)
        .map_err(|e| format!("answer is not an RDAP autnum object: {e}"))?;
    expect_class(object.object_class_name.as_deref(), "autnum")?;
    let registrant = find_role(&object.entities, "registrant");
    let country_text = object
        .country
        .clone()
        .or_else(|| registrant.and_then(vcard_country));
    Ok(OriginAs {
        asn,
        handle: object.handle,
        name: object.name,
        holder: registrant
            .and_then(|e| vcard_text(e, "fn"))
            .or_else(|| description(&object.remarks)),
        country: parse_country(country_text.as_deref()),
        url: Some(self_link(&object.links).unwrap_or_else(|| answer.url.to_string())),
    })
}

fn self_link(links: &[Link]) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref() == Some("self"))
        .and_then(|l| l.href.clone())
}

/// The first line of the remark titled `description`.
fn description(remarks: &[Remark]) -> Option<String> {
    remarks
        .iter()
        .filter(|r| {
            r.title
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("description"))
        })
        .flat_map(|r| r.description.iter())
        .map(|line| line.trim())
        .find(|line| !line.is_empty())
        .map(str::to_string)
}

/// The first entity (depth first, nested ones included) with `role`.
fn find_role<'a>(entities: &'a [Entity], role: &str) -> Option<&'a Entity> {
    for entity in entities {
        if entity.roles.iter().any(|r| r.eq_ignore_ascii_case(role)) {
            return Some(entity);
        }
        if let Some(found) = find_role(&entity.entities, role) {
            return Some(found);
        }
    }
    None
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

/// The `cc` parameter of the jCard's `adr` property (RFC 8605).
fn vcard_country(entity: &Entity) -> Option<String> {
    vcard_properties(entity)
        .find(|p| p.first().and_then(|n| n.as_str()) == Some("adr"))
        .and_then(|p| p.get(1))
        .and_then(|params| params.get("cc"))
        .and_then(|cc| cc.as_str())
        .map(str::to_string)
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
