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

/// Which address family a query asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
}

/// One question to one resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The host name as written in the policy (absolute or not; resolved as absolute).
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
    /// NOERROR with at least one address of the asked type.
    Answer,
    /// NOERROR but no address of the asked type (possibly after a CNAME chain).
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
    /// Smallest TTL among the address records of the answer.
    pub ttl: Option<u32>,
    pub transport: Option<Transport>,
    pub elapsed_ms: u64,
    /// What went wrong, for `Timeout` and `Error` outcomes.
    pub error: Option<String>,
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
            ttl: None,
            transport: None,
            elapsed_ms: 0,
            error: None,
        }
    }
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
