//! The RIPE Atlas REST API v2, as far as measuring from probes needs it: create one-off ping and
//! traceroute measurements (`POST /api/v2/measurements/`), follow their status, fetch their
//! results and the probes' metadata, and read the credit balance.
//!
//! The key comes from a file or the environment, never from a policy or the command line, and
//! is never printed: [`AtlasKey`]'s `Debug` hides it and no error quotes a request header.
//! Every call has a timeout; a 429 is retried after its `Retry-After` (at most
//! [`MAX_TRIES`] times, each wait capped); the base URL must be https, except on loopback, where
//! tests run their own server.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};

use super::probes::{ProbeInfo, read_probes};
use super::{AtlasProblem, AtlasResult, read_results};
use crate::measure::remote_api;

/// The public API.
pub const DEFAULT_URL: &str = "https://atlas.ripe.net/";

/// The environment variable a key may come from.
pub const KEY_ENV: &str = "RESIDENCY_ATLAS_KEY";

/// Tries of one call that got 429 Too Many Requests.
pub const MAX_TRIES: u32 = 4;

/// The longest a `Retry-After` is waited for; a longer one ends the call.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most pages of probe metadata followed (the API pages by 100 or 500).
const MAX_PAGES: usize = 50;

/// Largest body read from one answer.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a call to Atlas failed; each says what to do, and none contains the key.
#[derive(Debug, thiserror::Error)]
pub enum AtlasApiError {
    #[error(
        "no RIPE Atlas API key: put one (with permission to create measurements) in a file \
         and pass --atlas-key-file FILE, or set {KEY_ENV}; a key is never read from the \
         policy or the command line"
    )]
    NoKey,
    #[error("cannot read the RIPE Atlas key file {}: {source}: check the path and its permissions", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the RIPE Atlas key file {} is empty: write the key on its first line", .0.display())]
    EmptyKey(PathBuf),
    #[error("--atlas-url {0}: use https (plain http only for a server on this machine)")]
    NotHttps(String),
    #[error("RIPE Atlas refused the request ({status}): {detail}{hint}")]
    Refused {
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error(
        "RIPE Atlas kept answering 429 Too Many Requests ({tries} tries{after}): wait and run again"
    )]
    RateLimited { tries: u32, after: String },
    #[error("cannot reach RIPE Atlas at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("RIPE Atlas answered {url} with something that is not what the API serves: {reason}")]
    Unexpected { url: String, reason: String },
    #[error(
        "this would cost about {estimate} RIPE Atlas credits, more than --max-credits {max}: \
         request fewer probes or targets, or raise --max-credits"
    )]
    TooExpensive { estimate: u64, max: u64 },
    #[error(
        "{source}; the measurements {ids:?} were created (and paid for): fetch their results \
         later from /api/v2/measurements/ID/results/ and record them with `residency import atlas`"
    )]
    AfterCreate {
        ids: Vec<u64>,
        source: Box<AtlasApiError>,
    },
}

/// An API key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AtlasKey(String);

impl std::fmt::Debug for AtlasKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtlasKey(hidden)")
    }
}

impl AtlasKey {
    /// The key from `file` (its first line), else from [`KEY_ENV`].
    pub fn load(file: Option<&Path>) -> Result<AtlasKey, AtlasApiError> {
        let text = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| AtlasApiError::KeyFile {
                        path: path.to_path_buf(),
                        source,
                    })?;
                let key = text.lines().next().unwrap_or("").trim().to_string();
                if key.is_empty() {
                    return Err(AtlasApiError::EmptyKey(path.to_path_buf()));
                }
                key
            }
            None => std::env::var(KEY_ENV)
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .ok_or(AtlasApiError::NoKey)?,
        };
        Ok(AtlasKey(text))
    }
}

/// Which probes to ask, as Atlas's `probes[]` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRequest {
    /// `country`, `asn`, `prefix`, `area` or `probes`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub requested: u32,
}

/// `countries=IN:5,asn=55836:2` → one request per item. Kinds: `country`/`countries`,
/// `asn`, `prefix`, `area` (WW, West, North-Central, South-Central, North-East, South-East),
/// `probes` (ids joined by `;`).
pub fn parse_selection(text: &str) -> Result<Vec<ProbeRequest>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || {
            format!(
                "`{item}`: write each selection as KIND=VALUE:COUNT, e.g. countries=IN:5,asn=55836:2 \
                 (kinds: countries, asn, prefix, area, probes)"
            )
        };
        let (kind, value, requested) =
            crate::measure::remote_api::selection_item(item).ok_or_else(bad)?;
        let kind = match kind.as_str() {
            "country" | "countries" => {
                value
                    .parse::<crate::model::CountryCode>()
                    .map_err(|e| format!("`{item}`: {e}"))?;
                "country"
            }
            "asn" => {
                value
                    .trim_start_matches("AS")
                    .parse::<u32>()
                    .map_err(|_| bad())?;
                "asn"
            }
            "prefix" => {
                value.parse::<ipnetwork::IpNetwork>().map_err(|_| bad())?;
                "prefix"
            }
            "area" => "area",
            "probes" => "probes",
            _ => return Err(bad()),
        };
        let value = match kind {
            "asn" => value.trim_start_matches("AS").to_string(),
            "country" => value.to_ascii_uppercase(),
            "probes" => value.replace(';', ","),
            _ => value.to_string(),
        };
        out.push(ProbeRequest {
            kind: kind.to_string(),
            value,
            requested,
        });
    }
    if out.is_empty() {
        return Err("an empty probe selection: e.g. countries=IN:5".into());
    }
    Ok(out)
}

/// One measurement to create: a ping or a traceroute of a name (resolved on each probe) or
/// an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub kind: DefinitionKind,
    pub target: String,
    pub af: u8,
    /// The target is a name: each probe resolves it with its own resolver.
    pub resolve_on_probe: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinitionKind {
    Ping,
    Traceroute,
}

/// Packets per result, Atlas's default for both kinds.
const PACKETS: u64 = 3;

impl Definition {
    /// A name, or an address, measured both ways.
    pub fn both(target: &str) -> [Definition; 2] {
        let ip = target.parse::<IpAddr>().ok();
        let af = if ip.is_some_and(|ip| ip.is_ipv6()) {
            6
        } else {
            4
        };
        [DefinitionKind::Ping, DefinitionKind::Traceroute].map(|kind| Definition {
            kind,
            target: target.to_string(),
            af,
            resolve_on_probe: ip.is_none(),
        })
    }

    /// Credits per result of a one-off measurement: Atlas charges a ping 1 credit and a
    /// traceroute 10 credits per packet, twice for one-offs (a one-off traceroute of three
    /// packets is 60 credits per probe).
    pub fn credits_per_result(&self) -> u64 {
        let per_packet = match self.kind {
            DefinitionKind::Ping => 1,
            DefinitionKind::Traceroute => 10,
        };
        per_packet * PACKETS * 2
    }

    fn to_json(&self, description: &str) -> Value {
        let mut d = json!({
            "type": match self.kind { DefinitionKind::Ping => "ping", DefinitionKind::Traceroute => "traceroute" },
            "target": self.target,
            "af": self.af,
            "description": description,
            "packets": PACKETS,
            "resolve_on_probe": self.resolve_on_probe,
        });
        if self.kind == DefinitionKind::Traceroute {
            d["protocol"] = json!("ICMP");
        }
        d
    }
}

/// The most a request can cost: every definition from every requested probe.
pub fn estimate_credits(definitions: &[Definition], probes: &[ProbeRequest]) -> u64 {
    let probes: u64 = probes.iter().map(|p| u64::from(p.requested)).sum();
    definitions
        .iter()
        .map(|d| d.credits_per_result() * probes)
        .sum()
}

/// Where a measurement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `Specified`, `Scheduled`, `Ongoing`, `Stopped`, `Failed`, `No suitable probes`, …
    pub name: String,
    /// Probes that took part, when Atlas says.
    pub participants: Option<u64>,
}

impl Status {
    /// No more results will come.
    pub fn is_final(&self) -> bool {
        matches!(
            self.name.as_str(),
            "Stopped" | "Forced to stop" | "Failed" | "No suitable probes" | "Denied" | "Archived"
        )
    }
}

/// A client of one Atlas API.
#[derive(Debug, Clone)]
pub struct AtlasApi {
    base: Url,
    key: AtlasKey,
    http: reqwest::Client,
}

impl AtlasApi {
    /// A client of the API at `base` (default [`DEFAULT_URL`]) with `key`; `timeout` bounds
    /// every call.
    pub fn new(base: &str, key: AtlasKey, timeout: Duration) -> Result<AtlasApi, AtlasApiError> {
        let base =
            remote_api::base_url(base).ok_or_else(|| AtlasApiError::NotHttps(base.into()))?;
        let http =
            remote_api::client(&base, timeout).map_err(|reason| AtlasApiError::Transport {
                url: base.to_string(),
                reason,
            })?;
        Ok(AtlasApi { base, key, http })
    }

    fn url(&self, path: &str) -> Result<Url, AtlasApiError> {
        self.base.join(path).map_err(|e| AtlasApiError::Unexpected {
            url: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// One call, retried on 429; the body as text.
    async fn call(&self, url: &Url, body: Option<&Value>) -> Result<String, AtlasApiError> {
        let shown = || {
            let mut u = url.clone();
            u.set_query(None);
            u.to_string()
        };
        let mut last_after = String::new();
        for _ in 0..MAX_TRIES {
            let request = match body {
                Some(b) => self.http.post(url.clone()).json(b),
                None => self.http.get(url.clone()),
            };
            let response = request
                .header("Authorization", format!("Key {}", self.key.0))
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| AtlasApiError::Transport {
                    url: shown(),
                    reason: e.without_url().to_string(),
                })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let after = remote_api::retry_after(response.headers());
                last_after = format!(", last Retry-After {}s", after.as_secs());
                if after > MAX_RETRY_AFTER {
                    break;
                }
                tokio::time::sleep(after).await;
                continue;
            }
            let body = remote_api::read_bounded(response, MAX_BODY)
                .await
                .map_err(|reason| AtlasApiError::Transport {
                    url: shown(),
                    reason,
                })?;
            let text = String::from_utf8_lossy(&body).into_owned();
            if status.is_success() {
                return Ok(text);
            }
            return Err(refused(status, &text));
        }
        Err(AtlasApiError::RateLimited {
            tries: MAX_TRIES,
            after: last_after,
        })
    }

    /// Creates one-off measurements of `definitions` from `probes`; their ids, in order.
    pub async fn create(
        &self,
        definitions: &[Definition],
        probes: &[ProbeRequest],
        description: &str,
    ) -> Result<Vec<u64>, AtlasApiError> {
        let url = self.url("api/v2/measurements/")?;
        let body = json!({
            "definitions": definitions.iter().map(|d| d.to_json(description)).collect::<Vec<_>>(),
            "probes": probes,
            "is_oneoff": true,
        });
        let text = self.call(&url, Some(&body)).await?;
        let value: Value = serde_json::from_str(&text).map_err(|e| AtlasApiError::Unexpected {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let ids: Vec<u64> = value["measurements"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if ids.len() != definitions.len() {
            return Err(AtlasApiError::Unexpected {
                url: url.to_string(),
                reason: format!(
                    "asked for {} measurements, got ids {ids:?}",
                    definitions.len()
                ),
            });
        }
        Ok(ids)
    }

    /// Where measurement `id` stands.
    pub async fn status(&self, id: u64) -> Result<Status, AtlasApiError> {
        let url = self.url(&format!("api/v2/measurements/{id}/"))?;
        let text = self.call(&url, None).await?;
        let value: Value = serde_json::from_str(&text).map_err(|e| AtlasApiError::Unexpected {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let name = value["status"]["name"]
            .as_str()
            .or_else(|| value["status"].as_str())
            .unwrap_or("Unknown")
            .to_string();
        Ok(Status {
            name,
            participants: value["participant_count"]
                .as_u64()
                .or_else(|| value["probes_scheduled"].as_u64()),
        })
    }

    /// Every result of measurement `id` so far.
    pub async fn results(
        &self,
        id: u64,
    ) -> Result<(Vec<AtlasResult>, Vec<AtlasProblem>), AtlasApiError> {
        let url = self.url(&format!("api/v2/measurements/{id}/results/?format=json"))?;
        let text = self.call(&url, None).await?;
        Ok(read_results(&text))
    }

    /// The metadata of `ids` (following `next` pages, at most [`MAX_PAGES`]).
    pub async fn probes(
        &self,
        ids: &[u64],
    ) -> Result<(Vec<ProbeInfo>, Vec<AtlasProblem>), AtlasApiError> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for chunk in ids.chunks(100) {
            let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let mut url = self.url(&format!(
                "api/v2/probes/?id__in={}&format=json",
                list.join(",")
            ))?;
            for _ in 0..MAX_PAGES {
                let text = self.call(&url, None).await?;
                let (probes, more) = read_probes(&text);
                out.extend(probes);
                problems.extend(more);
                let next = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["next"].as_str().map(str::to_string));
                match next.and_then(|n| self.base.join(&n).ok()) {
                    // A `next` link must stay on the API it came from.
                    Some(n) if n.origin() == self.base.origin() => url = n,
                    _ => break,
                }
            }
        }
        Ok((out, problems))
    }

    /// The credit balance, when the key may read it (`None` when it may not).
    pub async fn credits(&self) -> Result<Option<u64>, AtlasApiError> {
        let url = self.url("api/v2/credits/")?;
        match self.call(&url, None).await {
            Ok(text) => Ok(serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["current_balance"].as_u64())),
            Err(AtlasApiError::Refused { status: 403, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a refusal says: Atlas's `error.detail` (or `title`), with a hint for the usual causes.
fn refused(status: StatusCode, text: &str) -> AtlasApiError {
    let value: Option<Value> = serde_json::from_str(text).ok();
    let detail = value
        .as_ref()
        .and_then(|v| {
            let e = &v["error"];
            e["detail"]
                .as_str()
                .or_else(|| e["title"].as_str())
                .or_else(|| v["detail"].as_str())
                .map(str::to_string)
                .or_else(|| {
                    e["errors"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x["detail"].as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
        })
        .unwrap_or_else(|| format!("{} bytes that are not an API error", text.len()));
    let detail = crate::text::visible(&detail).chars().take(400).collect();
    let hint = match status.as_u16() {
        401 => ": check the key",
        403 => {
            ": the key may lack the permission to create measurements, or the account lacks credits"
        }
        400 => ": the request was not accepted as a measurement (see the detail)",
        _ => "",
    };
    AtlasApiError::Refused {
        status: status.as_u16(),
        detail,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_typed_and_priced() {
        let s = parse_selection("countries=IN:5,asn=AS55836:2").expect("parses");
        assert_eq!(
            s,
            vec![
                ProbeRequest {
                    kind: "country".into(),
                    value: "IN".into(),
                    requested: 5
                },
                ProbeRequest {
                    kind: "asn".into(),
                    value: "55836".into(),
                    requested: 2
                },
            ]
        );
        for bad in [
            "countries=IN",
            "countries=XX:5",
            "asn=foo:2",
            "planet=earth:1",
            "",
            "countries=IN:0",
        ] {
            assert!(parse_selection(bad).is_err(), "{bad}");
        }
        let defs: Vec<Definition> = Definition::both("api.example").into_iter().collect();
        assert!(defs.iter().all(|d| d.resolve_on_probe && d.af == 4));
        assert!(
            Definition::both("2001:db8::1")
                .iter()
                .all(|d| !d.resolve_on_probe && d.af == 6)
        );
        // 7 probes × (6 for a ping + 60 for a traceroute).
        assert_eq!(estimate_credits(&defs, &s), 7 * 66);
    }

    #[test]
    fn the_key_is_never_shown() {
        let key = AtlasKey("secret-key-123".into());
        assert!(!format!("{key:?}").contains("secret"));
        let api = AtlasApi::new("http://127.0.0.1:9/", key, Duration::from_secs(1))
            .expect("loopback http");
        assert!(!format!("{api:?}").contains("secret"));
        assert!(matches!(
            AtlasApi::new(
                "http://atlas.example/",
                AtlasKey("k".into()),
                Duration::from_secs(1)
            ),
            Err(AtlasApiError::NotHttps(_))
        ));
    }
}
