//! RDAP over HTTP(S) (RFC 9082 queries): one `ip/{addr}` query to the registry the bootstrap
//! names (or to an override), retried when the server says it is overloaded; the answer is
//! read by [`super::answer`].
//!
//! Owns the HTTP side: timeouts, redirects between registries (only to https, or on this
//! machine), size bound, retry policy with `Retry-After`, and the same for the documents a
//! record points to (a geofeed).

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, Url};

pub(crate) use super::answer::{error_body, parse_autnum_answer, parse_ip_answer, range_cidrs};
use super::{RegistryConfig, RegistryError};

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
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<String, String> {
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
