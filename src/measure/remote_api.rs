//! What the clients of public measurement APIs (RIPE Atlas, Globalping) share: https only
//! (plain http only on loopback, where tests serve them), no proxy for loopback, no redirects,
//! a bounded body, one reading of `Retry-After`, and the `KIND=VALUE:COUNT` selections both
//! take on the command line.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderMap;

/// The wait a 429 asks for (`Retry-After` in seconds; 1 s when it says nothing usable).
pub(crate) fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map_or(h.eq_ignore_ascii_case("localhost"), |ip| ip.is_loopback())
    })
}

/// `text` as an API base: https, or http on loopback; ending in `/`, so paths join under it.
pub(crate) fn base_url(text: &str) -> Option<Url> {
    let mut url = Url::parse(text).ok()?;
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
        return None;
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Some(url)
}

/// A client for `base`: every call bounded by `timeout`, redirects never followed, and no
/// proxy from the environment for a server on this machine (the request would leave it).
pub(crate) fn client(base: &Url, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if is_loopback(base) {
        builder = builder.no_proxy();
    }
    builder
        .user_agent(concat!("residency/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// A body of at most `max` bytes.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One `KIND=VALUE:COUNT` item: the kind (lower case), the value and a count above 0.
pub(crate) fn selection_item(item: &str) -> Option<(String, &str, u32)> {
    let (kind, rest) = item.split_once('=')?;
    let (value, count) = rest.rsplit_once(':')?;
    let count: u32 = count.parse().ok().filter(|n| *n > 0)?;
    Some((kind.trim().to_ascii_lowercase(), value, count))
}
