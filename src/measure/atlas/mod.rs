//! RIPE Atlas results: ping and traceroute measurements made from Atlas probes, as the Atlas
//! API serves them (a JSON array) or as NDJSON (one result a line), from firmware 0 to 5000+.
//!
//! Owns reading every field the format has into our own types: old firmware's numbers as
//! strings (`"avg": "58.042"`) and `addr` for `dst_addr`, per-packet `result[]` that only
//! newer firmware has, traceroute replies that timed out (`{"x": "*"}`), the hop-255 sentinel,
//! hop-level `error`, and per-reply `err` (ICMP unreachable codes), `late`, `ittl`, `mtu`,
//! `icmpext` (MPLS labels, RFC 4950) and IPv6 option sizes. Nothing here names a country:
//! a probe's declared place and what the RTTs allow are for the vantage and physics code.
//!
//! A file that is not Atlas results (an HTML error page saved by a browser) or a line that is
//! cut off is reported with where it is; what parsed is still used.
//!
//! [`api`] asks the Atlas API for measurements, [`probes`] reads the probes' metadata (where
//! their hosts say they are), and [`recorded`] plays one probe's results back as this crate's
//! own measurements.

pub mod api;
pub mod probes;
pub mod recorded;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

/// One result: what one probe measured once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtlasResult {
    pub msm_id: Option<u64>,
    pub prb_id: Option<u64>,
    /// The probe's firmware version (0 for the oldest results, which lack the field).
    pub fw: u64,
    /// Seconds since the epoch.
    pub timestamp: Option<i64>,
    /// The probe's public address, as Atlas saw it.
    pub from: Option<IpAddr>,
    /// The probe's own (often private) address.
    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    pub dst_name: Option<String>,
    pub af: Option<u8>,
    pub kind: AtlasKind,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AtlasKind {
    Ping(AtlasPing),
    Traceroute(AtlasTraceroute),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtlasPing {
    pub sent: Option<u64>,
    pub rcvd: Option<u64>,
    /// The smallest RTT, in milliseconds (`min`; -1 in the file when nothing came back).
    pub min_ms: Option<f64>,
    /// Each packet's RTT, when the firmware lists them; `None` for one that timed out.
    pub rtts: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtlasTraceroute {
    pub proto: Option<String>,
    pub paris_id: Option<u64>,
    pub hops: Vec<AtlasHop>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtlasHop {
    /// The hop number; 255 is the sentinel firmware writes when it gave up.
    pub hop: u32,
    /// A hop-level error (e.g. "connect failed: Network is unreachable").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub replies: Vec<AtlasReply>,
}

impl AtlasHop {
    /// The 255 sentinel, not a real hop.
    pub fn is_sentinel(&self) -> bool {
        self.hop == 255
    }
}

/// One reply to one probe packet, or a timeout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtlasReply {
    /// Who answered; `None` for a timeout (`{"x": "*"}`).
    pub from: Option<IpAddr>,
    pub rtt_ms: Option<f64>,
    /// The reply's IP TTL as received.
    pub ttl: Option<u64>,
    pub size: Option<u64>,
    /// ICMP unreachable code letter or number (`N`, `H`, `A`, `P`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    /// How many packets late this reply arrived, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
    /// The TTL the quoted packet had when it reached the hop ("inner TTL").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ittl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u64>,
    /// MPLS labels from the ICMP extension (RFC 4950), outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mpls: Vec<u32>,
}

impl AtlasReply {
    pub fn timed_out(&self) -> bool {
        self.from.is_none() && self.rtt_ms.is_none()
    }
}

/// What could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtlasProblem {
    /// 1-based line (NDJSON) or 1-based position in the array.
    pub at: String,
    pub what: String,
}

impl fmt::Display for AtlasProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// Every result in `text` (a JSON array, one JSON object, or NDJSON), and what could not be
/// read. Never fails: a file with nothing usable gives no results and says why.
pub fn read_results(text: &str) -> (Vec<AtlasResult>, Vec<AtlasProblem>) {
    let text = text.trim_start_matches('\u{feff}');
    let start = text.trim_start();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if start.starts_with('<') {
        problems.push(AtlasProblem {
            at: "line 1".into(),
            what: "this is HTML (a saved web page or an error page), not Atlas results: fetch \
                   the results as JSON (…/measurements/ID/results/?format=json)"
                .into(),
        });
        return (out, problems);
    }
    if start.starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(text) {
            Ok(values) => {
                for (i, v) in values.iter().enumerate() {
                    match result(v) {
                        Ok(r) => out.push(r),
                        Err(what) => problems.push(AtlasProblem {
                            at: format!("result {}", i + 1),
                            what,
                        }),
                    }
                }
                return (out, problems);
            }
            Err(e) if e.is_eof() => {
                problems.push(AtlasProblem {
                    at: format!("line {}", e.line()),
                    what: "the array is cut off; results before the cut are not kept: fetch \
                           the file again"
                        .into(),
                });
                return (out, problems);
            }
            // Not one array: perhaps NDJSON whose lines are arrays; read it line by line.
            Err(_) => {}
        }
    }
    // One result written over several lines (pretty-printed), not NDJSON.
    if start.starts_with('{')
        && text.trim().lines().nth(1).is_some()
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        match result(&v) {
            Ok(r) => out.push(r),
            Err(what) => problems.push(AtlasProblem {
                at: "line 1".into(),
                what,
            }),
        }
        return (out, problems);
    }
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Array(values)) => {
                for v in &values {
                    match result(v) {
                        Ok(r) => out.push(r),
                        Err(what) => problems.push(AtlasProblem {
                            at: at.clone(),
                            what,
                        }),
                    }
                }
            }
            Ok(v) => match result(&v) {
                Ok(r) => out.push(r),
                Err(what) => problems.push(AtlasProblem { at, what }),
            },
            Err(e) => problems.push(AtlasProblem {
                at,
                what: if e.is_eof() {
                    "the line is cut off (truncated download?): skipped".into()
                } else {
                    format!("not JSON ({e}): skipped")
                },
            }),
        }
    }
    (out, problems)
}

/// A number written as a number or, by old firmware, as a string.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn count(v: &Value) -> Option<u64> {
    number(v)
        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
        .map(|f| f as u64)
}

fn address(v: &Value) -> Option<IpAddr> {
    v.as_str()?.trim().parse().ok()
}

/// A non-negative RTT; Atlas writes -1 for "none".
fn rtt(v: &Value) -> Option<f64> {
    number(v).filter(|f| *f >= 0.0)
}

fn result(v: &Value) -> Result<AtlasResult, String> {
    let Some(obj) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some("ping") => AtlasKind::Ping(ping(v)),
        Some("traceroute") => AtlasKind::Traceroute(traceroute(v)?),
        Some(other) => {
            return Err(format!(
                "a `{other}` result: only ping and traceroute results are read"
            ));
        }
        None => return Err("no `type`: not an Atlas result".into()),
    };
    Ok(AtlasResult {
        msm_id: count(&v["msm_id"]),
        prb_id: count(&v["prb_id"]),
        fw: count(&v["fw"]).unwrap_or(0),
        timestamp: number(&v["timestamp"]).map(|t| t as i64),
        from: address(&v["from"]),
        src_addr: address(&v["src_addr"]),
        // Firmware 1 wrote `addr`.
        dst_addr: address(&v["dst_addr"]).or_else(|| address(&v["addr"])),
        dst_name: v["dst_name"]
            .as_str()
            .or_else(|| v["name"].as_str())
            .map(str::to_string),
        af: count(&v["af"]).and_then(|a| u8::try_from(a).ok()),
        kind,
    })
}

fn ping(v: &Value) -> AtlasPing {
    let rtts = v["result"]
        .as_array()
        .map(|packets| packets.iter().map(|p| rtt(&p["rtt"])).collect())
        .unwrap_or_default();
    AtlasPing {
        sent: count(&v["sent"]),
        rcvd: count(&v["rcvd"]),
        min_ms: rtt(&v["min"]),
        rtts,
    }
}

fn traceroute(v: &Value) -> Result<AtlasTraceroute, String> {
    let Some(hops) = v["result"].as_array() else {
        return Err("a traceroute without `result`: no hops to read".into());
    };
    let hops = hops
        .iter()
        .map(|h| AtlasHop {
            hop: count(&h["hop"])
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            error: h["error"].as_str().map(str::to_string),
            replies: h["result"]
                .as_array()
                .map(|rs| rs.iter().map(reply).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok(AtlasTraceroute {
        proto: v["proto"].as_str().map(str::to_string),
        paris_id: count(&v["paris_id"]),
        hops,
    })
}

fn reply(r: &Value) -> AtlasReply {
    let mpls = r["icmpext"]["obj"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["mpls"].as_array().into_iter().flatten())
        .filter_map(|m| count(&m["label"]).and_then(|l| u32::try_from(l).ok()))
        .collect();
    AtlasReply {
        from: address(&r["from"]),
        rtt_ms: rtt(&r["rtt"]),
        ttl: count(&r["ttl"]),
        size: count(&r["size"]),
        err: match &r["err"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
        late: count(&r["late"]),
        ittl: count(&r["ittl"]),
        mtu: count(&r["mtu"]),
        mpls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_firmware_strings_and_timeouts_are_read() {
        let text = r#"{"avg":"58.042","dst_addr":"62.2.16.12","fw":0,"min":"57.876","msm_id":1000192,"prb_id":677,"rcvd":"3","sent":"3","type":"ping"}
{"fw":4460,"type":"traceroute","dst_addr":"192.0.2.1","result":[{"hop":1,"result":[{"from":"192.168.1.1","rtt":2.5,"ttl":64,"size":96},{"x":"*"}]},{"hop":255,"result":[{"x":"*"}]}]}
{"fw":4460,"type":"ping","dst_addr":"192.0.2.1","min":-1,"sent":3,"rcvd":0,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]}"#;
        let (results, problems) = read_results(text);
        assert!(problems.is_empty(), "{problems:?}");
        let AtlasKind::Ping(p) = &results[0].kind else {
            panic!("a ping")
        };
        assert_eq!((p.sent, p.rcvd, p.min_ms), (Some(3), Some(3), Some(57.876)));
        let AtlasKind::Traceroute(t) = &results[1].kind else {
            panic!("a traceroute")
        };
        assert_eq!(t.hops[0].replies[0].rtt_ms, Some(2.5));
        assert!(t.hops[0].replies[1].timed_out());
        assert!(t.hops[1].is_sentinel());
        let AtlasKind::Ping(p) = &results[2].kind else {
            panic!("a ping")
        };
        assert_eq!(
            (p.min_ms, p.rtts.as_slice()),
            (None, &[None, None, None][..])
        );
    }

    #[test]
    fn html_and_cut_lines_are_named_and_the_rest_is_kept() {
        let (results, problems) = read_results("<!DOCTYPE html><html>rate limited</html>");
        assert!(results.is_empty());
        assert!(problems[0].what.contains("HTML"), "{problems:?}");
        let text = "{\"type\":\"ping\",\"min\":3.5,\"fw\":5000}\n{\"type\":\"ping\",\"min\":";
        let (results, problems) = read_results(text);
        assert_eq!(results.len(), 1);
        assert_eq!(problems[0].at, "line 2");
        assert!(problems[0].what.contains("cut off"), "{problems:?}");
    }
}
