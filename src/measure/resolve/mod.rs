//! Resolution: asks DNS resolvers for an endpoint's addresses and records everything they said.
//!
//! Owns the measurement of names: every query (resolver × client subnet × record type × repeat)
//! yields one [`Resolution`], whatever happened. NXDOMAIN, NODATA, SERVFAIL, REFUSED and timeouts
//! are observations recorded here and judged later; only a broken configuration is an error.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

mod dns;
mod servers;

pub use dns::DnsResolver;
pub use servers::{
    ResolveError, parse_resolver, resolvers_from_file, resolvers_from_resolv_conf, system_resolvers,
};

/// The bounds of DNS query settings, the same for the policy's `dns:` section and the command
/// line's options: both read them from here.
pub mod limits {
    use std::ops::RangeInclusive;

    pub const TIMEOUT_MS: RangeInclusive<u64> = 1..=60_000;
    pub const TRIES: RangeInclusive<u32> = 1..=10;
}

/// Which record a query asked for: an address family, or the names of an address (PTR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Reverse DNS: the names an address's operator gave it (`in-addr.arpa` / `ip6.arpa`).
    #[serde(rename = "PTR")]
    Ptr,
}

/// One question to one resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The host name as written in the policy (absolute or not; resolved as absolute). For
    /// [`RecordType::Ptr`], an IP address literal, whose reverse name is asked for (see
    /// [`reverse_name`]), or a name already under `in-addr.arpa` / `ip6.arpa`.
    pub host: String,
    pub record_type: RecordType,
    pub resolver: SocketAddr,
    /// Sent as an EDNS Client Subnet option (RFC 7871) when set.
    pub client_subnet: Option<IpNetwork>,
    /// 1-based repeat number, so rotation across repeats can be seen.
    pub attempt: u32,
}

/// How the query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// NOERROR with at least one address of the asked type (for PTR: at least one name).
    Answer,
    /// NOERROR but no address (or PTR name) of the asked type (possibly after a CNAME chain).
    NoData,
    NxDomain,
    ServFail,
    Refused,
    /// Any other response code; the `rcode` field says which.
    OtherRcode,
    /// No answer within the configured timeout and retries.
    Timeout,
    /// The query could not be sent or the answer could not be read; `error` says why.
    Error,
}

/// One link of a CNAME chain, in the order the resolver followed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnameLink {
    pub name: String,
    pub target: String,
    pub ttl: u32,
}

/// Transport the final answer came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

/// Everything one query observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The resolver's socket address, e.g. `127.0.0.1:53` or `[::1]:5353`.
    pub resolver: String,
    pub client_subnet: Option<IpNetwork>,
    /// Scope prefix length the server answered with (RFC 7871 §7.2), when ECS was sent and echoed.
    pub scope_prefix: Option<u8>,
    pub record_type: RecordType,
    pub attempt: u32,
    pub outcome: Outcome,
    /// Response code as the server sent it (e.g. `NOERROR`, `NXDOMAIN`); `None` when no response.
    pub rcode: Option<String>,
    pub cname_chain: Vec<CnameLink>,
    pub addresses: Vec<IpAddr>,
    /// PTR answers only: the target names, in answer order, lower case without the trailing
    /// dot (`ae-1.r01.bom01.example.net`). Absent from JSON when empty, so address queries
    /// serialise as they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Smallest TTL among the address (or PTR) records of the answer.
    pub ttl: Option<u32>,
    pub transport: Option<Transport>,
    pub elapsed_ms: u64,
    /// What went wrong, for `Timeout` and `Error` outcomes.
    pub error: Option<String>,
    /// Round-trip time of the try that was answered (sub-millisecond; `elapsed_ms` also counts
    /// earlier tries), compared with the path to the resolver (see `integrity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The server's NSID (RFC 5001), asked for on every query: text when printable, else hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsid: Option<String>,
    /// Why this answer is not used (it came from an interceptor, not the resolver), when so.
    /// An untrusted answer stays in the document but none of its addresses is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
}

impl Resolution {
    /// A query that ended without any response, with the reason.
    pub fn failed(query: &Query, error: impl Into<String>) -> Resolution {
        Resolution {
            error: Some(error.into()),
            ..Resolution::unanswered(query)
        }
    }

    /// The record of `query` before anything came back: no response yet, outcome `Error`
    /// until a measurement says otherwise.
    pub fn unanswered(query: &Query) -> Resolution {
        Resolution {
            resolver: query.resolver.to_string(),
            client_subnet: query.client_subnet,
            scope_prefix: None,
            record_type: query.record_type,
            attempt: query.attempt,
            outcome: Outcome::Error,
            rcode: None,
            cname_chain: Vec::new(),
            addresses: Vec::new(),
            names: Vec::new(),
            ttl: None,
            transport: None,
            elapsed_ms: 0,
            error: None,
            rtt_ms: None,
            nsid: None,
            untrusted: None,
        }
    }

    /// Whether this answer may be used as evidence of the name's addresses.
    pub fn trusted(&self) -> bool {
        self.untrusted.is_none()
    }
}

/// The name a PTR query for `ip` asks about (RFC 1035 §3.5, RFC 3596 §2.5), absolute:
/// `192.0.2.10` → `10.2.0.192.in-addr.arpa.`, `2001:db8::1` → 32 nibbles, least significant
/// first, then `ip6.arpa.`. An IPv4-mapped IPv6 address (`::ffff:192.0.2.10`) is asked as
/// the IPv4 address it carries, which is where its PTR records live.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4_reverse(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_reverse(v4.octets()),
            None => {
                let mut name = String::with_capacity(72);
                for byte in v6.octets().iter().rev() {
                    for nibble in [byte & 0x0f, byte >> 4] {
                        name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                        name.push('.');
                    }
                }
                name.push_str("ip6.arpa.");
                name
            }
        },
    }
}

fn v4_reverse([a, b, c, d]: [u8; 4]) -> String {
    format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
}

/// Timeouts and retries for every query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveSettings {
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times to send a query that timed out before recording `Timeout` (≥ 1).
    pub tries: u32,
}

impl Default for ResolveSettings {
    fn default() -> Self {
        ResolveSettings {
            timeout: Duration::from_secs(2),
            tries: 2,
        }
    }
}

/// A source of DNS measurements. The real one is [`DnsResolver`]; the pipeline is generic over
/// this trait so a later transport (DoH, DoT) is another implementation, not a fork.
pub trait Resolve: Send + Sync {
    /// Asks one question and records what happened. Never fails: failures are outcomes.
    fn resolve(&self, query: &Query) -> impl std::future::Future<Output = Resolution> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address literal")
    }

    #[test]
    fn reverse_names_follow_rfc_1035_and_3596() {
        assert_eq!(reverse_name(ip("192.0.2.10")), "10.2.0.192.in-addr.arpa.");
        assert_eq!(
            reverse_name(ip("2001:db8::1")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        // IPv4-mapped addresses are asked where their PTR records live: in-addr.arpa.
        assert_eq!(
            reverse_name(ip("::ffff:192.0.2.10")),
            "10.2.0.192.in-addr.arpa."
        );
    }

    #[test]
    fn ptr_serialises_as_ptr_and_empty_names_are_left_out() {
        assert_eq!(
            serde_json::to_string(&RecordType::Ptr).expect("serialises"),
            "\"PTR\""
        );
        let query = Query {
            host: "www.example.com".into(),
            record_type: RecordType::A,
            resolver: "127.0.0.1:53".parse().expect("socket address"),
            client_subnet: None,
            attempt: 1,
        };
        let json = serde_json::to_value(Resolution::unanswered(&query)).expect("serialises");
        assert!(json.get("names").is_none(), "{json}");
        // Older records (without `names`) still load.
        let back: Resolution = serde_json::from_value(json).expect("deserialises");
        assert!(back.names.is_empty());
    }
}
