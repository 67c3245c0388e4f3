//! Globalping (api.globalping.io) as a source of remote vantage points: create ping and
//! traceroute measurements from probes chosen by location, wait for them, and read the results
//! into the same shapes as RIPE Atlas results, so the same recorded-run code judges them.
//!
//! Globalping places its probes by a vote of geolocation databases, not by what a host
//! declares, and gives them no stable id: a probe is known by its country, city, ASN and
//! network, and the first measurement's probes are reused for every other target (its id is
//! passed as the `locations` of the next), so every target is measured from the same probes.
//! Anonymous use is limited to about 250 tests an hour; a 429's `Retry-After` is waited for
//! (at most [`MAX_TRIES`] times), and a token (from a file or the environment, never printed)
//! raises the limit.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use super::atlas::{AtlasHop, AtlasKind, AtlasPing, AtlasReply, AtlasResult, AtlasTraceroute};
use super::remote_api;

/// The public API.
pub const DEFAULT_URL: &str = "https://api.globalping.io/";

/// Where a token may come from instead of `--globalping-token-file`.
pub const TOKEN_ENV: &str = "RESIDENCY_GLOBALPING_TOKEN";

/// Tries of one call answered 429.
pub const MAX_TRIES: u32 = 4;

const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

const MAX_BODY: usize = 32 * 1024 * 1024;

/// Why a call to Globalping failed; each says what to do, and none contains the token.
#[derive(Debug, thiserror::Error)]
pub enum GlobalpingError {
    #[error("cannot read the Globalping token file {path}: {reason}: check the path")]
    TokenFile { path: String, reason: String },
    #[error("--globalping-url {0}: use https (plain http only for a server on this machine)")]
    NotHttps(String),
    #[error("Globalping refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error(
        "Globalping kept answering 429 Too Many Requests ({MAX_TRIES} tries): anonymous use \
         allows about 250 tests an hour; wait, or pass --globalping-token-file"
    )]
    RateLimited,
    #[error("cannot reach Globalping at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("Globalping answered {url} with something that is not what the API serves: {reason}")]
    Unexpected { url: String, reason: String },
}

/// One `locations[]` entry: `country=IN:5` → `{"country": "IN", "limit": 5}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub field: String,
    pub value: Value,
    pub limit: u32,
}

/// `country=IN:5,asn=55836:2,city=Mumbai:1` (fields: country, continent, region, state,
/// city, asn, network, magic).
pub fn parse_locations(text: &str) -> Result<Vec<Location>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || {
            format!(
                "`{item}`: write each location as FIELD=VALUE:COUNT, e.g. country=IN:5,asn=55836:2 \
                 (fields: country, continent, region, state, city, asn, network, magic)"
            )
        };
        let (field, value, limit) =
            crate::measure::remote_api::selection_item(item).ok_or_else(bad)?;
        let value = match field.as_str() {
            "country" => {
                let cc: crate::model::CountryCode =
                    value.parse().map_err(|e| format!("`{item}`: {e}"))?;
                json!(cc.to_string())
            }
            "asn" => json!(
                value
                    .trim_start_matches("AS")
                    .parse::<u32>()
                    .map_err(|_| bad())?
            ),
            "continent" | "region" | "state" | "city" | "network" | "magic" => json!(value),
            _ => return Err(bad()),
        };
        out.push(Location {
            field,
            value,
            limit,
        });
    }
    if out.is_empty() {
        return Err("an empty location: e.g. country=IN:5".into());
    }
    Ok(out)
}

/// A probe as Globalping describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalpingProbe {
    /// Ours: its position in the first measurement's results, from 1.
    pub id: u64,
    pub country: Option<String>,
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub network: Option<String>,
    pub point: Option<(f64, f64)>,
}

impl GlobalpingProbe {
    /// A label that stays the same for the same probe: `globalping:IN-Mumbai-AS55836` (with
    /// `-N` when another probe of the round has the same place and network: see
    /// [`unique_labels`]).
    pub fn label(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .filter_map(|c| match c {
                    c if c.is_ascii_alphanumeric() => Some(c),
                    ' ' | '-' | '_' | '.' => Some('-'),
                    _ => None,
                })
                .take(24)
                .collect()
        };
        format!(
            "globalping:{}-{}-AS{}",
            clean(self.country.as_deref().unwrap_or("XX")),
            clean(self.city.as_deref().unwrap_or("unknown")),
            self.asn.unwrap_or(0)
        )
    }

    /// What tells two probes apart: Globalping gives them no id, so everything it says of them.
    fn key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.country, self.city, self.asn, self.network, self.point
        )
    }
}

fn probe_of(v: &Value) -> GlobalpingProbe {
    let text = |k: &str| v[k].as_str().map(str::to_string);
    let point = v["latitude"].as_f64().zip(v["longitude"].as_f64());
    GlobalpingProbe {
        id: 0,
        country: text("country"),
        city: text("city"),
        asn: v["asn"].as_u64().and_then(|n| u32::try_from(n).ok()),
        network: text("network"),
        point: point.filter(|(lat, lon)| lat.abs() <= 90.0 && lon.abs() <= 180.0),
    }
}

/// Labels for `probes`, unique within the round: a second probe with the same country, city
/// and ASN gets `-2`, a third `-3`, by id order.
pub fn unique_labels(probes: &[GlobalpingProbe]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    probes
        .iter()
        .map(|p| {
            let base = p.label();
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { base } else { format!("{base}-{n}") }
        })
        .collect()
}

/// A measurement's answer read as Atlas-shaped results, each naming its probe by id (new
/// probes are appended to `probes`).
pub fn read_measurement(
    v: &Value,
    probes: &mut Vec<GlobalpingProbe>,
) -> Result<Vec<AtlasResult>, String> {
    let kind = v["type"].as_str().ok_or("no `type`")?.to_string();
    let target_name = v["target"].as_str().map(str::to_string);
    let results = v["results"].as_array().ok_or("no `results` array")?;
    let mut out = Vec::new();
    for item in results {
        let probe = probe_of(&item["probe"]);
        let id = match probes.iter().find(|p| p.key() == probe.key()) {
            Some(p) => p.id,
            None => {
                let id = probes.len() as u64 + 1;
                probes.push(GlobalpingProbe { id, ..probe });
                id
            }
        };
        let r = &item["result"];
        if r["status"].as_str() != Some("finished") {
            continue;
        }
        let dst_addr = r["resolvedAddress"]
            .as_str()
            .and_then(|a| a.parse::<IpAddr>().ok());
        let kind = match kind.as_str() {
            "ping" => {
                let rtts: Vec<Option<f64>> = r["timings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| t["rtt"].as_f64())
                    .collect();
                AtlasKind::Ping(AtlasPing {
                    sent: r["stats"]["total"].as_u64(),
                    rcvd: r["stats"]["rcv"].as_u64(),
                    min_ms: r["stats"]["min"].as_f64(),
                    rtts,
                })
            }
            "traceroute" | "mtr" => {
                let hops = r["hops"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, h)| {
                        let from = h["resolvedAddress"].as_str().and_then(|a| a.parse().ok());
                        let replies: Vec<AtlasReply> = h["timings"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|t| AtlasReply {
                                from: t["rtt"].as_f64().and(from),
                                rtt_ms: t["rtt"].as_f64(),
                                ttl: None,
                                size: None,
                                err: None,
                                late: None,
                                ittl: None,
                                mtu: None,
                                mpls: Vec::new(),
                            })
                            .collect();
                        AtlasHop {
                            hop: u32::try_from(i + 1).unwrap_or(u32::MAX),
                            error: None,
                            replies,
                        }
                    })
                    .collect();
                AtlasKind::Traceroute(AtlasTraceroute {
                    proto: Some("ICMP".into()),
                    paris_id: None,
                    hops,
                })
            }
            other => {
                return Err(format!(
                    "measurement type `{other}` is not ping or traceroute"
                ));
            }
        };
        out.push(AtlasResult {
            msm_id: None,
            prb_id: Some(id),
            fw: 0,
            timestamp: v["updatedAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp()),
            from: None,
            src_addr: None,
            dst_addr,
            dst_name: target_name.clone(),
            af: dst_addr.map(|a| if a.is_ipv4() { 4 } else { 6 }),
            kind,
        });
    }
    Ok(out)
}

/// A client of one Globalping API.
#[derive(Clone)]
pub struct GlobalpingApi {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for GlobalpingApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalpingApi")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "hidden"))
            .finish()
    }
}

impl GlobalpingApi {
    /// A client of `base`; the token (optional) from `token_file` or [`TOKEN_ENV`].
    pub fn new(
        base: &str,
        token_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<GlobalpingApi, GlobalpingError> {
        let url =
            remote_api::base_url(base).ok_or_else(|| GlobalpingError::NotHttps(base.into()))?;
        let token = match token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| GlobalpingError::TokenFile {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            ),
            None => std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_string()),
        };
        if token_file.is_some() && token.as_deref().is_none_or(str::is_empty) {
            return Err(GlobalpingError::TokenFile {
                path: token_file
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                reason: "it is empty: write the token on its first line".into(),
            });
        }
        let token = token.filter(|t| !t.is_empty());
        let http =
            remote_api::client(&url, timeout).map_err(|reason| GlobalpingError::Transport {
                url: url.to_string(),
                reason,
            })?;
        Ok(GlobalpingApi {
            base: url,
            token,
            http,
        })
    }

    async fn call(&self, path: &str, body: Option<&Value>) -> Result<Value, GlobalpingError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| GlobalpingError::Unexpected {
                url: path.into(),
                reason: e.to_string(),
            })?;
        for _ in 0..MAX_TRIES {
            let mut request = match body {
                Some(b) => self.http.post(url.clone()).json(b),
                None => self.http.get(url.clone()),
            };
            if let Some(token) = &self.token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = request
                .send()
                .await
                .map_err(|e| GlobalpingError::Transport {
                    url: url.to_string(),
                    reason: e.without_url().to_string(),
                })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let after = remote_api::retry_after(response.headers());
                if after > MAX_RETRY_AFTER {
                    break;
                }
                tokio::time::sleep(after).await;
                continue;
            }
            let bytes = remote_api::read_bounded(response, MAX_BODY)
                .await
                .map_err(|reason| GlobalpingError::Transport {
                    url: url.to_string(),
                    reason,
                })?;
            let value: Option<Value> = serde_json::from_slice(&bytes).ok();
            if !status.is_success() {
                let detail = value
                    .as_ref()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{} bytes that are not an API error", bytes.len()));
                return Err(GlobalpingError::Refused {
                    status: status.as_u16(),
                    detail: crate::text::visible(&detail).chars().take(400).collect(),
                });
            }
            return value.ok_or_else(|| GlobalpingError::Unexpected {
                url: url.to_string(),
                reason: "not JSON".into(),
            });
        }
        Err(GlobalpingError::RateLimited)
    }

    /// Creates a measurement of `target` (`ping` or `traceroute`) from `locations`, or from the
    /// probes of measurement `reuse`; its id.
    pub async fn create(
        &self,
        kind: &str,
        target: &str,
        locations: &[Location],
        reuse: Option<&str>,
    ) -> Result<String, GlobalpingError> {
        let wanted = match reuse {
            Some(id) => json!(id),
            None => Value::Array(
                locations
                    .iter()
                    .map(|l| json!({ l.field.clone(): l.value, "limit": l.limit }))
                    .collect(),
            ),
        };
        let mut body = json!({
            "type": kind,
            "target": target,
            "locations": wanted,
            "measurementOptions": { "packets": 3 },
        });
        if reuse.is_none() {
            body["limit"] = json!(probes_requested(locations).max(1));
        }
        let answer = self.call("v1/measurements", Some(&body)).await?;
        answer["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| GlobalpingError::Unexpected {
                url: "v1/measurements".into(),
                reason: "no measurement id".into(),
            })
    }

    /// The measurement, waiting (polling every `poll`) until it is finished or `deadline`.
    pub async fn wait(
        &self,
        id: &str,
        deadline: Instant,
        poll: Duration,
    ) -> Result<(Value, bool), GlobalpingError> {
        loop {
            let v = self.call(&format!("v1/measurements/{id}"), None).await?;
            let finished = v["status"].as_str() == Some("finished");
            if finished || Instant::now() >= deadline {
                return Ok((v, finished));
            }
            tokio::time::sleep(poll.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

/// Probes asked for by `locations`, in all.
pub fn probes_requested(locations: &[Location]) -> u32 {
    locations.iter().map(|l| l.limit).sum()
}

/// Results per probe, by probe id.
pub fn by_probe(results: &[AtlasResult]) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for r in results {
        if let Some(id) = r.prb_id {
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_typed() {
        let l = parse_locations("country=IN:5,asn=AS55836:2,city=New Delhi:1").expect("parses");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].value, json!("IN"));
        assert_eq!(l[1].value, json!(55836));
        assert_eq!(probes_requested(&l), 8);
        for bad in [
            "country=IN",
            "country=XX:1",
            "planet=earth:1",
            "asn=x:1",
            "",
        ] {
            assert!(parse_locations(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_measurement_reads_as_atlas_shaped_results_with_stable_probe_labels() {
        let answer = json!({
            "id": "m1", "type": "traceroute", "status": "finished", "target": "api.example",
            "updatedAt": "2026-12-04T10:00:00.000Z",
            "results": [{
                "probe": {"continent": "AS", "country": "IN", "city": "New Delhi", "asn": 55836, "network": "Reliance Jio", "latitude": 28.61, "longitude": 77.21},
                "result": {"status": "finished", "resolvedAddress": "192.0.2.10", "hops": [
                    {"resolvedAddress": "10.0.0.1", "timings": [{"rtt": 1.2}, {"rtt": 1.0}]},
                    {"resolvedAddress": "*", "timings": []},
                    {"resolvedAddress": "192.0.2.10", "timings": [{"rtt": 11.5}, {"rtt": 11.1}]}
                ]}
            }, {
                "probe": {"country": "IN", "city": "Mumbai", "asn": 9829, "latitude": 19.07, "longitude": 72.87},
                "result": {"status": "failed", "rawOutput": "timeout"}
            }]
        });
        let mut probes = Vec::new();
        let results = read_measurement(&answer, &mut probes).expect("reads");
        assert_eq!(probes.len(), 2, "both probes are known, the failed one too");
        assert_eq!(results.len(), 1, "a failed test gives no result");
        assert_eq!(probes[0].label(), "globalping:IN-New-Delhi-AS55836");
        assert_eq!(probes[0].point, Some((28.61, 77.21)));
        let AtlasKind::Traceroute(t) = &results[0].kind else {
            panic!("a traceroute")
        };
        assert_eq!(t.hops.len(), 3);
        assert!(t.hops[1].replies.is_empty());
        assert_eq!(results[0].dst_addr, Some("192.0.2.10".parse().expect("ip")));
        assert_eq!(results[0].dst_name.as_deref(), Some("api.example"));
        // The same probe in the next measurement gets the same id.
        let again = read_measurement(&answer, &mut probes).expect("reads");
        assert_eq!(again[0].prb_id, results[0].prb_id);
        assert_eq!(probes.len(), 2);
    }
}
