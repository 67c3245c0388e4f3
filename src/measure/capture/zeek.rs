//! Zeek logs from a network tap: `conn` (flows with IP-layer bytes), `dns` (answers), `ssl` and
//! `quic` (server names) and `http` (hosts), tab-separated with `#fields` headers or as JSON
//! lines. Other logs (x509, known_services, ...) are recognised and passed over.
//!
//! TSV follows Zeek's header: `#separator` (escaped, `\x09`), `#set_separator`,
//! `#unset_field` (`-`) and `#empty_field` (`(empty)`). Timestamps are epoch seconds in TSV and
//! ISO 8601 in JSON.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::dissect::{self, Proto};
use super::{DnsRecord, FlowRecord, LogRead, NameSource, Problem, Tally};

/// One record, field by field, whichever encoding it came in.
struct Row<'a> {
    fields: HashMap<&'a str, Field<'a>>,
}

enum Field<'a> {
    Text(&'a str),
    Owned(String),
    List(Vec<String>),
}

impl Row<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        match self.fields.get(name)? {
            Field::Text(t) => Some(t),
            Field::Owned(t) => Some(t.as_str()),
            Field::List(_) => None,
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        match self.fields.get(name) {
            Some(Field::List(l)) => l.clone(),
            Some(Field::Text(t)) => vec![t.to_string()],
            Some(Field::Owned(t)) => vec![t.clone()],
            None => Vec::new(),
        }
    }

    fn ip(&self, name: &str) -> Option<IpAddr> {
        self.text(name)?.parse().ok()
    }

    fn count(&self, name: &str) -> u64 {
        self.text(name).and_then(|t| t.parse().ok()).unwrap_or(0)
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        let ts = self.text("ts")?;
        if let Ok(t) = DateTime::parse_from_rfc3339(ts) {
            return Some(t.with_timezone(&Utc));
        }
        let secs: f64 = ts.parse().ok()?;
        DateTime::from_timestamp_micros((secs * 1e6) as i64)
    }
}

/// Which log a record belongs to, from `_path`/`#path` or, failing that, its fields.
fn kind<'a>(path: Option<&'a str>, row: &Row<'_>) -> &'a str {
    if let Some(p) = path {
        return p;
    }
    if row.fields.contains_key("orig_ip_bytes") || row.fields.contains_key("conn_state") {
        "conn"
    } else if row.fields.contains_key("query") {
        "dns"
    } else if row.fields.contains_key("server_name") {
        "ssl"
    } else if row.fields.contains_key("host") && row.fields.contains_key("method") {
        "http"
    } else {
        ""
    }
}

pub(crate) fn read(input: impl BufRead, json: bool, tally: &mut Tally) -> LogRead {
    let mut read = LogRead::default();
    let mut header = TsvHeader::default();
    let mut headless = 0u64;
    for (i, line) in input.split(b'\n').enumerate() {
        let number = i as u64 + 1;
        let Ok(line) = line else {
            read.problems.push(Problem::line(number, "cannot read on"));
            break;
        };
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if json {
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
                read.problems
                    .push(Problem::line(number, "not a JSON object; skipped"));
                continue;
            };
            let path = map.get("_path").and_then(Value::as_str).map(str::to_string);
            let row = json_row(&map);
            record(&row, kind(path.as_deref(), &row), tally, &mut read);
        } else if let Some(directive) = line.strip_prefix('#') {
            header.directive(directive);
        } else if header.fields.is_empty() {
            headless += 1;
            if headless == 1 {
                read.problems.push(Problem::line(
                    number,
                    "a record before any #fields line: this log has lost its header; \
                           records are skipped until one",
                ));
            }
        } else {
            let row = header.row(line);
            let path = header.path.clone();
            record(&row, kind(path.as_deref(), &row), tally, &mut read);
        }
    }
    if headless > 1 {
        read.problems.push(Problem::line(
            0,
            format!("{headless} records without a #fields header were skipped"),
        ));
    }
    read
}

fn json_row(map: &serde_json::Map<String, Value>) -> Row<'_> {
    let fields = map
        .iter()
        .filter_map(|(k, v)| {
            let f = match v {
                Value::String(s) => Field::Text(s.as_str()),
                Value::Array(a) => Field::List(
                    a.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .collect(),
                ),
                Value::Null => return None,
                // Numbers and flags, as their JSON text.
                other => Field::Owned(other.to_string()),
            };
            Some((k.as_str(), f))
        })
        .collect();
    Row { fields }
}

#[derive(Default)]
struct TsvHeader {
    separator: Option<String>,
    set_separator: Option<String>,
    unset: Option<String>,
    empty: Option<String>,
    path: Option<String>,
    fields: Vec<String>,
}

impl TsvHeader {
    fn directive(&mut self, d: &str) {
        let (key, value) = match d.split_once(['\t', ' ']) {
            Some((k, v)) => (k, v),
            None => (d, ""),
        };
        let sep = self.separator.clone().unwrap_or_else(|| "\t".into());
        match key {
            "separator" => self.separator = Some(unescape(value)),
            "set_separator" => self.set_separator = Some(value.to_string()),
            "unset_field" => self.unset = Some(value.to_string()),
            "empty_field" => self.empty = Some(value.to_string()),
            "path" => self.path = Some(value.to_string()),
            "fields" => self.fields = value.split(sep.as_str()).map(str::to_string).collect(),
            _ => {}
        }
    }

    fn row<'a>(&'a self, line: &'a str) -> Row<'a> {
        let sep = self.separator.as_deref().unwrap_or("\t");
        let set = self.set_separator.as_deref().unwrap_or(",");
        let unset = self.unset.as_deref().unwrap_or("-");
        let empty = self.empty.as_deref().unwrap_or("(empty)");
        let fields = self
            .fields
            .iter()
            .zip(line.split(sep))
            .filter(|(_, v)| *v != unset)
            .map(|(k, v)| {
                let f = if v == empty {
                    Field::List(Vec::new())
                } else if v.contains(set) {
                    Field::List(v.split(set).map(str::to_string).collect())
                } else {
                    Field::Text(v)
                };
                (k.as_str(), f)
            })
            .collect();
        Row { fields }
    }
}

/// `\x09` → a tab.
fn unescape(s: &str) -> String {
    match s
        .strip_prefix("\\x")
        .and_then(|h| u8::from_str_radix(h, 16).ok())
    {
        Some(b) => char::from(b).to_string(),
        None => s.to_string(),
    }
}

fn record(row: &Row<'_>, kind: &str, tally: &mut Tally, read: &mut LogRead) {
    read.records += 1;
    let at = row.time();
    if let Some(t) = at {
        read.span.see(t);
    }
    let resp = row.ip("id.resp_h");
    match kind {
        "conn" => {
            let (Some(orig), Some(resp)) = (row.ip("id.orig_h"), resp) else {
                return;
            };
            let proto = match row.text("proto") {
                Some("tcp") => Proto::Tcp,
                Some("udp") => Proto::Udp,
                Some("icmp") => Proto::Other(1),
                _ => Proto::Other(0),
            };
            let duration = row
                .text("duration")
                .and_then(|d| d.parse::<f64>().ok())
                .map(|d| TimeDelta::microseconds((d * 1e6) as i64));
            tally.flow_record(FlowRecord {
                orig,
                resp,
                proto,
                orig_port: row.text("id.orig_p").and_then(|p| p.parse().ok()),
                resp_port: row.text("id.resp_p").and_then(|p| p.parse().ok()),
                orig_packets: row.count("orig_pkts"),
                orig_bytes: row.count("orig_ip_bytes"),
                resp_packets: row.count("resp_pkts"),
                resp_bytes: row.count("resp_ip_bytes"),
                first: at,
                last: at.zip(duration).map(|(t, d)| t + d).or(at),
                names: Vec::new(),
            });
        }
        "dns" => {
            let (Some(query), Some(resolver)) = (row.text("query"), resp) else {
                return;
            };
            let answers = row.list("answers");
            let query = query.trim_end_matches('.').to_ascii_lowercase();
            let mut chain = vec![query.clone()];
            for a in &answers {
                match a.parse::<IpAddr>() {
                    // An answer names an address; it is not a contact with it.
                    Ok(ip) => tally
                        .dns_names
                        .entry(ip)
                        .or_default()
                        .extend(chain.iter().map(|name| (name.clone(), NameSource::Zeek))),
                    Err(_) => chain.push(a.trim_end_matches('.').to_ascii_lowercase()),
                }
            }
            tally.dns.insert(DnsRecord {
                name: query,
                rtype: row.text("qtype_name").unwrap_or("?").to_string(),
                answers,
                resolver,
            });
        }
        "ssl" | "quic" => {
            if let (Some(ip), Some(name)) = (resp, row.text("server_name")) {
                tally.name(ip, name.to_ascii_lowercase(), NameSource::Zeek);
            }
        }
        "http" => {
            if let (Some(ip), Some(host)) = (resp, row.text("host")) {
                tally.name(ip, dissect::host_without_port(host), NameSource::Zeek);
            }
        }
        _ => {}
    }
}
