//! WHOIS (RFC 3912) over TCP port 43: the fallback when RDAP gives no answer.
//!
//! Owns the protocol (send the query and CRLF, read until the server closes), its bounds (a
//! connect timeout, one deadline for the whole chain of referrals, a maximum answer size past
//! which reading stops), following referrals (`ReferralServer:`, `refer:`, `whois:`) and
//! reading the handful of fields that locate a holder from the formats the five RIRs use.
//!
//! The `whois-rust` crate can be pointed at a `host:port`, but its time budget is per
//! connection (a chain of referrals can take several), and its referral rules are written
//! for domain names; the protocol is a dozen lines, so it is done here with tokio directly.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{RegistryConfig, RegistryRecord, parse_country};

/// The well-known WHOIS port.
pub const WHOIS_PORT: u16 = 43;

/// A WHOIS answer and the servers that led to it.
#[derive(Debug, Clone)]
pub(crate) struct WhoisAnswer {
    /// `host:port` of the server that gave the final answer.
    pub server: String,
    /// Every server asked, in order (the last one is `server`).
    pub chain: Vec<String>,
    pub body: String,
}

/// Why WHOIS gave no usable answer, in words for the evidence detail.
#[derive(Debug, Clone)]
pub(crate) struct WhoisFailure {
    /// `whois:<host>` of the server that failed.
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub(crate) struct WhoisClient {
    server: String,
    connect_timeout: Duration,
    deadline: Duration,
    max_bytes: usize,
    max_referrals: u32,
}

impl WhoisClient {
    pub fn new(config: &RegistryConfig) -> WhoisClient {
        WhoisClient {
            server: config.whois_server.clone(),
            connect_timeout: config.whois_connect_timeout,
            deadline: config.whois_deadline,
            max_bytes: config.whois_max_bytes,
            max_referrals: config.whois_max_referrals,
        }
    }

    /// Ask the first server about `ip` and follow referrals; the whole chain shares one
    /// deadline, so a server that accepts and never answers costs at most that long.
    pub async fn query_ip(&self, ip: IpAddr) -> Result<WhoisAnswer, WhoisFailure> {
        let mut current = self.server.clone();
        let outcome = tokio::time::timeout(self.deadline, self.follow(ip, &mut current)).await;
        match outcome {
            Ok(result) => result,
            Err(_) => Err(WhoisFailure {
                source: source_name(&current),
                reason: format!(
                    "no complete answer from {current} within the {:.1} s deadline",
                    self.deadline.as_secs_f64()
                ),
            }),
        }
    }

    async fn follow(&self, ip: IpAddr, current: &mut String) -> Result<WhoisAnswer, WhoisFailure> {
        let mut chain: Vec<String> = Vec::new();
        let mut server = self.server.clone();
        loop {
            current.clone_from(&server);
            let fail = |reason: String| WhoisFailure {
                source: source_name(&server),
                reason,
            };
            let (text, truncated) = self
                .exchange(&server, &query_for(&server, ip))
                .await
                .map_err(fail)?;
            if truncated {
                return Err(fail(format!(
                    "answer exceeded {} KiB; reading stopped and the answer was not used",
                    self.max_bytes / 1024
                )));
            }
            chain.push(server.clone());
            match referral(&text) {
                Some(next) if !chain.iter().any(|s| same_server(s, &next)) => {
                    if is_local(&next) && !is_local(&server) {
                        return Err(fail(format!(
                            "{server} refers to {next}, a local address; not followed (a public \
                             server must not steer connections into this network)"
                        )));
                    }
                    if chain.len() > self.max_referrals as usize {
                        return Err(fail(format!(
                            "more than {} referrals ({} then {next}); not followed further",
                            self.max_referrals,
                            chain.join(" → ")
                        )));
                    }
                    server = next;
                }
                // No referral, or one back to a server already asked: this is the answer.
                _ => {
                    return Ok(WhoisAnswer {
                        server,
                        chain,
                        body: text,
                    });
                }
            }
        }
    }

    /// One query, one answer: returns the text and whether reading stopped at the bound.
    async fn exchange(&self, server: &str, query: &str) -> Result<(String, bool), String> {
        let (host, port) = split_server(server);
        let connect = TcpStream::connect((host.as_str(), port));
        let mut stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("cannot connect to {server}: {e}")),
            Err(_) => {
                return Err(format!(
                    "cannot connect to {server} within {:.1} s",
                    self.connect_timeout.as_secs_f64()
                ));
            }
        };
        stream
            .write_all(format!("{query}\r\n").as_bytes())
            .await
            .map_err(|e| format!("cannot send the query to {server}: {e}"))?;
        let mut body = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("answer from {server} cut off: {e}"))?;
            if n == 0 {
                break;
            }
            if body.len() + n > self.max_bytes {
                return Ok((String::from_utf8_lossy(&body).into_owned(), true));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        // Registries answer in ASCII or UTF-8, a few in Latin-1: keep what can be read.
        Ok((String::from_utf8_lossy(&body).into_owned(), false))
    }
}

/// ARIN answers a bare address with every covering network, least specific first; `n + `
/// asks for the network record only (its documented query syntax). Others take the address.
fn query_for(server: &str, ip: IpAddr) -> String {
    let (host, _) = split_server(server);
    if host.eq_ignore_ascii_case("whois.arin.net") {
        format!("n + {ip}")
    } else {
        ip.to_string()
    }
}

/// `host`, `host:port`, `a.b.c.d:port`, `[v6]:port` or a bare IPv6 address.
fn split_server(server: &str) -> (String, u16) {
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return (addr.ip().to_string(), addr.port());
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return (ip.to_string(), WHOIS_PORT);
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host.to_string(), port),
            Err(_) => (server.to_string(), WHOIS_PORT),
        },
        _ => (server.to_string(), WHOIS_PORT),
    }
}

/// A literal loopback, private or link-local address (names are not resolved here).
fn is_local(server: &str) -> bool {
    let (host, _) = split_server(server);
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.is_unique_local() || ip.is_unicast_link_local()
        }
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn same_server(a: &str, b: &str) -> bool {
    let (ha, pa) = split_server(a);
    let (hb, pb) = split_server(b);
    ha.eq_ignore_ascii_case(&hb) && pa == pb
}

/// `whois:<host>`, with `:port` when it is not 43.
pub(crate) fn source_name(server: &str) -> String {
    let (host, port) = split_server(server);
    if port == WHOIS_PORT {
        format!("whois:{host}")
    } else if host.contains(':') {
        format!("whois:[{host}]:{port}")
    } else {
        format!("whois:{host}:{port}")
    }
}

/// `key: value` lines of an answer, comments (`%`, `#`) and blank values skipped; keys are
/// lower-cased because ARIN writes `OrgName` where RIPE writes `org-name`.
fn fields(text: &str) -> impl Iterator<Item = (String, &str)> {
    text.lines().filter_map(|line| {
        let line = line.trim_end();
        if line.starts_with('%') || line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        let value = value.trim();
        if key.is_empty() || key.contains(' ') || value.is_empty() {
            return None;
        }
        Some((key.to_ascii_lowercase(), value))
    })
}

/// The next server to ask, if the answer points to one: ARIN's `ReferralServer:
/// whois://host:port`, IANA's `refer:` (and `whois:` in its inetnum blocks).
pub(crate) fn referral(text: &str) -> Option<String> {
    for (key, value) in fields(text) {
        let target = match key.as_str() {
            "referralserver" => match value.strip_prefix("whois://") {
                Some(rest) => rest.trim_end_matches('/'),
                // rwhois:// and http(s):// speak other protocols.
                None => continue,
            },
            "refer" | "whois" => value,
            _ => continue,
        };
        if !target.is_empty() && !target.contains(char::is_whitespace) {
            return Some(target.to_string());
        }
    }
    None
}

/// The first value of the first key present, in order of preference.
fn first_of(text: &str, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|wanted| {
        fields(text)
            .find(|(key, _)| key == wanted)
            .map(|(_, value)| value.to_string())
    })
}

/// Read a record from a RIPE/APNIC/AFRINIC (`inetnum:`, `netname:`, `org-name:`, `descr:`),
/// ARIN (`NetRange:`, `CIDR:`, `NetName:`, `NetHandle:`, `OrgName:`) or LACNIC (`inetnum:`,
/// `owner:`, `ownerid:`) answer. The first block is the most specific in all of them.
pub(crate) fn parse_whois_answer(
    answer: &WhoisAnswer,
    retrieved_at: DateTime<Utc>,
    cached: bool,
) -> Result<RegistryRecord, String> {
    let text = answer.body.as_str();
    let country_raw = first_of(text, &["country"]);
    let holder = first_of(
        text,
        &["orgname", "org-name", "owner", "organization", "descr"],
    );
    let range = first_of(text, &["inetnum", "inet6num", "netrange", "cidr"]);
    let name = first_of(text, &["netname"]);
    let handle = first_of(text, &["nethandle", "ownerid"]);
    let origin_asn = first_of(text, &["origin", "originas", "aut-num"]).and_then(|v| {
        let digits = v.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        digits.split_whitespace().next()?.parse().ok()
    });
    // Only the network's own object may name its geofeed: the block (between blank lines)
    // that holds the range, not an organisation or a less specific network further down.
    let unix = text.replace("\r\n", "\n");
    let block = range
        .as_deref()
        .and_then(|r| unix.split("\n\n").find(|b| b.contains(r)))
        .unwrap_or_default();
    let geofeed = first_of(block, &["geofeed"])
        .filter(|url| url.starts_with("https://"))
        .or_else(|| {
            fields(block)
                .filter(|(key, _)| key == "remarks")
                .find_map(|(_, value)| super::geofeed_in_remark(value))
        });
    if country_raw.is_none() && range.is_none() && holder.is_none() && name.is_none() {
        return Err(format!(
            "answer from {} has no country, range, holder or network name ({} bytes): not a \
             network record",
            answer.server,
            text.len()
        ));
    }
    let cidrs = range.as_deref().map(range_cidrs).unwrap_or_default();
    Ok(RegistryRecord {
        source: source_name(&answer.server),
        holder,
        country: parse_country(country_raw.as_deref()),
        country_raw,
        handle,
        range,
        name,
        url: Some(format!("whois://{}", answer.server)),
        origin_asn,
        origin_as: None,
        cidrs,
        geofeed,
        retrieved_at,
        cached,
    })
}

/// The block of a WHOIS range as prefixes: `a - b` (RPSL, ARIN `NetRange`), one or several
/// comma-separated CIDRs (ARIN `CIDR:`), or LACNIC's truncated `200.57.128/19`.
fn range_cidrs(range: &str) -> Vec<IpNetwork> {
    if let Some((start, end)) = range.split_once(" - ")
        && let (Ok(start), Ok(end)) = (start.trim().parse(), end.trim().parse())
    {
        return super::rdap::range_cidrs(start, end);
    }
    range
        .split(',')
        .filter_map(|cidr| {
            let cidr = cidr.trim();
            cidr.parse().ok().or_else(|| {
                // `200.57.128/19`: the missing octets are zeros.
                let (addr, len) = cidr.split_once('/')?;
                let mut octets: Vec<&str> = addr.split('.').collect();
                if addr.contains(':') || octets.len() >= 4 {
                    return None;
                }
                octets.resize(4, "0");
                format!("{}/{len}", octets.join(".")).parse().ok()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_split_into_host_and_port() {
        assert_eq!(
            split_server("whois.arin.net"),
            ("whois.arin.net".into(), 43)
        );
        assert_eq!(split_server("127.0.0.1:4343"), ("127.0.0.1".into(), 4343));
        assert_eq!(split_server("[::1]:4343"), ("::1".into(), 4343));
        assert_eq!(split_server("::1"), ("::1".into(), 43));
        assert_eq!(source_name("whois.ripe.net:43"), "whois:whois.ripe.net");
        assert_eq!(source_name("[::1]:4343"), "whois:[::1]:4343");
    }

    #[test]
    fn local_addresses_are_recognised() {
        assert!(is_local("127.0.0.1:4343"));
        assert!(is_local("10.1.2.3"));
        assert!(is_local("[::1]:43"));
        assert!(is_local("localhost:43"));
        assert!(!is_local("whois.ripe.net"));
        assert!(!is_local("193.0.6.135:43"));
    }

    #[test]
    fn a_geofeed_is_taken_only_from_the_network_object() {
        let answer = |body: &str| WhoisAnswer {
            server: "whois.example:43".into(),
            chain: vec!["whois.example:43".into()],
            body: body.into(),
        };
        let body = "inetnum: 192.0.2.0 - 192.0.2.255\r\nnetname: LAB\r\ngeofeed: https://lab.example/feed.csv\r\n\r\norganisation: ORG-X\r\ngeofeed: https://other.example/feed.csv\r\n";
        let record = parse_whois_answer(&answer(body), Utc::now(), false).expect("record");
        assert_eq!(
            record.geofeed.as_deref(),
            Some("https://lab.example/feed.csv")
        );
        let cidrs: Vec<String> = record.cidrs.iter().map(|c| c.to_string()).collect();
        assert_eq!(cidrs, ["192.0.2.0/24"]);
        let body = "inetnum: 192.0.2.0 - 192.0.2.255\nnetname: LAB\n\norganisation: ORG-X\ngeofeed: https://other.example/feed.csv\n";
        let record = parse_whois_answer(&answer(body), Utc::now(), false).expect("record");
        assert_eq!(
            record.geofeed, None,
            "another object's feed does not speak for the network"
        );
        let body = "inetnum: 200.57.128/19\nremarks: Geofeed https://lab.example/g.csv\n";
        let record = parse_whois_answer(&answer(body), Utc::now(), false).expect("record");
        assert_eq!(record.geofeed.as_deref(), Some("https://lab.example/g.csv"));
        assert_eq!(
            record.cidrs.first().map(|c| c.to_string()).as_deref(),
            Some("200.57.128.0/19")
        );
    }

    #[test]
    fn referrals_are_found_in_each_style() {
        assert_eq!(
            referral("ReferralServer:  whois://127.0.0.1:4343\n").as_deref(),
            Some("127.0.0.1:4343")
        );
        assert_eq!(
            referral("ReferralServer: rwhois://rwhois.example.net:4321\n"),
            None
        );
        assert_eq!(
            referral("% IANA WHOIS server\nrefer:        whois.ripe.net\n").as_deref(),
            Some("whois.ripe.net")
        );
        assert_eq!(referral("netname: X\n"), None);
    }
}
