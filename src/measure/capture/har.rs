//! HTTP Archives (HAR 1.1 and 1.2), as browsers' developer tools, mitmproxy, Charles and
//! Insomnia export them: each entry's `request.url` names a server, and its `serverIPAddress`
//! (missing in some exports, `""` in others, IPv6 without brackets in others) says which
//! address answered. Only the fields used are read, through serde.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::dissect::Proto;
use super::{FlowRecord, LogRead, NameSource, Naming, Problem, Tally};

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "startedDateTime", default)]
    started: Option<String>,
    request: Request,
    #[serde(default)]
    response: Option<Response>,
    #[serde(rename = "serverIPAddress", default)]
    server_ip: Option<String>,
    /// Total time of the request, in milliseconds.
    #[serde(default)]
    time: Option<f64>,
}

#[derive(Deserialize)]
struct Request {
    url: String,
    #[serde(rename = "httpVersion", default)]
    http_version: Option<String>,
    #[serde(rename = "headersSize", default)]
    headers_size: Option<i64>,
    #[serde(rename = "bodySize", default)]
    body_size: Option<i64>,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "headersSize", default)]
    headers_size: Option<i64>,
    #[serde(rename = "bodySize", default)]
    body_size: Option<i64>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    size: Option<i64>,
}

/// Sizes of -1 mean "unknown" in HAR; they count as nothing.
fn size(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

pub(crate) fn read(bytes: &[u8], tally: &mut Tally) -> LogRead {
    let mut read = LogRead::default();
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            read.problems.push(Problem::line(
                line as u64,
                "text that is not UTF-8, read with replacement characters",
            ));
            String::from_utf8_lossy(bytes)
        }
    };
    let har: Har = match serde_json::from_str(&text) {
        Ok(h) => h,
        Err(e) => {
            read.problems.push(Problem::line(
                e.line() as u64,
                format!("not a HAR file ({e}); nothing read from it"),
            ));
            return read;
        }
    };
    for (i, entry) in har.log.entries.into_iter().enumerate() {
        read.records += 1;
        let Ok(url) = reqwest::Url::parse(&entry.request.url) else {
            read.problems.push(Problem {
                at: i as u64,
                unit: "entry",
                what: format!(
                    "request.url `{}` is not a URL; skipped",
                    crate::text::visible(&entry.request.url)
                ),
            });
            continue;
        };
        let Some(host) = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        else {
            continue;
        };
        let started = entry
            .started
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let ended = started.map(|s| {
            s + TimeDelta::microseconds((entry.time.unwrap_or(0.0).max(0.0) * 1000.0) as i64)
        });
        for t in [started, ended].into_iter().flatten() {
            read.span.see(t);
        }
        let naming = Naming {
            name: host.clone(),
            source: NameSource::Har,
        };
        let server = entry
            .server_ip
            .as_deref()
            .map(|s| s.trim().trim_matches(['[', ']']))
            .and_then(|s| s.parse::<IpAddr>().ok())
            .or_else(|| host.parse::<IpAddr>().ok());
        let Some(server) = server else {
            if super::is_name(&host) {
                tally.names_without_address.insert(naming);
            }
            continue;
        };
        let h3 = entry
            .request
            .http_version
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("http/3") || v.eq_ignore_ascii_case("h3"));
        let response = entry.response.as_ref();
        tally.flow_record(FlowRecord {
            // A HAR does not say which address the browser had: it is the device's.
            orig: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            resp: server,
            proto: if h3 { Proto::Udp } else { Proto::Tcp },
            orig_port: None,
            resp_port: url.port_or_known_default(),
            orig_packets: 0,
            orig_bytes: size(entry.request.headers_size) + size(entry.request.body_size),
            resp_packets: 0,
            // The body as transferred; when unknown, as decoded.
            resp_bytes: response.map_or(0, |r| {
                let body = match r.body_size.filter(|n| *n >= 0) {
                    Some(_) => size(r.body_size),
                    None => size(r.content.as_ref().and_then(|c| c.size)),
                };
                size(r.headers_size) + body
            }),
            first: started,
            last: ended,
            names: if super::is_name(&host) {
                vec![naming]
            } else {
                Vec::new()
            },
        });
    }
    read
}
