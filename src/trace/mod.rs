//! Traceroute and round-trip time: the measurements a vendor cannot fake.
//!
//! Owns probing the network path to an address (every hop with its RTTs) and the minimum RTT
//! to the address itself. Locating hops and judging them is not done here: hops are addresses
//! like any other and flow to `geo` and `verdict`. A trace that could not be made (no raw-socket
//! privilege, unsupported family) is a recorded [`TraceStatus::NotMeasured`], never an error.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which probes a trace sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Icmp,
    Udp,
    Tcp,
}

/// How to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSettings {
    pub protocol: Protocol,
    /// Destination port for UDP and TCP probes (fixed, so firewalls that allow the service let
    /// the probes through); ignored for ICMP.
    pub port: u16,
    /// Highest TTL probed.
    pub max_hops: u8,
    /// Rounds of probes (one probe per TTL per round); RTT statistics are over rounds.
    pub rounds: u32,
    /// How long to wait for replies of one round.
    #[serde(with = "millis")]
    pub round_timeout: Duration,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            protocol: Protocol::Icmp,
            port: 443,
            max_hops: 30,
            rounds: 3,
            round_timeout: Duration::from_millis(1000),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// One TTL of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub ttl: u8,
    /// The address that answered at this TTL; `None` when nothing answered (`*`).
    pub addr: Option<IpAddr>,
    /// Other addresses that answered at this TTL in other rounds (load balancing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_addrs: Vec<IpAddr>,
    pub sent: u32,
    pub received: u32,
    pub best_rtt_ms: Option<f64>,
    pub avg_rtt_ms: Option<f64>,
}

/// Whether the trace could be made at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum TraceStatus {
    Measured,
    /// Not measured, with why (e.g. no raw-socket privilege, and how to grant it).
    NotMeasured(String),
}

/// The path to one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePath {
    pub target: IpAddr,
    pub protocol: Protocol,
    pub port: Option<u16>,
    pub status: TraceStatus,
    /// Whether the target itself answered.
    pub reached: bool,
    /// Hops in TTL order, up to the target (or `max_hops`).
    pub hops: Vec<Hop>,
}

/// Round-trip times measured to the address itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RttSample {
    /// How: `"trace"` (the target's own replies in the trace) or `"tcp_connect:443"`.
    pub method: String,
    pub sent: u32,
    pub received: u32,
    pub min_rtt_ms: Option<f64>,
}

/// A source of paths. The real one uses trippy-core with raw sockets.
pub trait Trace: Send + Sync {
    /// Traces `target`. Never fails: what could not be measured is a `NotMeasured` status.
    fn trace(&self, target: IpAddr) -> impl std::future::Future<Output = TracePath> + Send;
}
