//! Traceroute and round-trip time: the measurements a vendor cannot fake.
//!
//! Owns probing the network path to an address (every hop with its RTTs) and the minimum RTT
//! to the address itself. Locating hops and judging them is not done here: hops are addresses
//! like any other and flow to `geo` and `verdict`. A trace that could not be made (no raw-socket
//! privilege, unsupported family) is a recorded [`TraceStatus::NotMeasured`], never an error.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

mod privilege;
mod tcp;
mod trippy;

pub use privilege::check_privilege;
pub use tcp::tcp_connect_rtt;
pub use trippy::TrippyTracer;

/// The bounds of a trace's settings, the same for the policy's `trace:` section and the command
/// line's options: both read them from here.
pub mod limits {
    use std::ops::RangeInclusive;

    pub const PORT: RangeInclusive<u16> = 1..=65_535;
    pub const MAX_HOPS: RangeInclusive<u8> = 1..=64;
    pub const ROUNDS: RangeInclusive<u32> = 1..=20;
    pub const TIMEOUT_MS: RangeInclusive<u64> = 10..=60_000;
}

/// What to tell a user whose process cannot open raw sockets.
pub const PRIVILEGE_HINT: &str = "no raw-socket privilege: run as root or grant it with \
     `sudo setcap cap_net_raw+ep $(command -v residency)`";

/// Why traces cannot be made. Messages say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Raw sockets were refused (`cause` has the system's words).
    #[error("{PRIVILEGE_HINT}")]
    NoPrivilege { cause: String },
    /// Raw sockets failed for another reason than privilege.
    #[error("cannot open a raw socket ({cause}): check that the kernel supports raw ICMP sockets")]
    RawSocket { cause: String },
    /// The settings cannot make a bounded trace.
    #[error("trace settings: {0}")]
    Settings(String),
}

/// Which probes a trace sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Icmp,
    Udp,
    Tcp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Icmp => "icmp",
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        })
    }
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
    /// Why this sample did not come from the address (interception, or sooner than a router
    /// on the path to it), when so: it stays in the document and physics ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
    /// The IP TTL the replies arrived with (the largest seen), where raw sockets could watch
    /// it (IPv4 TCP connects), and how many hops away it says their sender was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_ttl: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops_away: Option<u8>,
}

impl RttSample {
    /// The sample's RTT, when it was measured and may be used.
    pub fn trusted_rtt_ms(&self) -> Option<f64> {
        self.untrusted
            .is_none()
            .then_some(self.min_rtt_ms)
            .flatten()
    }
}

/// A source of paths and round-trip times. The real one ([`TrippyTracer`]) traces with
/// trippy-core over raw sockets and times TCP handshakes with the system's connect.
pub trait Trace: Send + Sync {
    /// Traces `target`. Never fails: what could not be measured is a `NotMeasured` status.
    fn trace(&self, target: IpAddr) -> impl std::future::Future<Output = TracePath> + Send;

    /// Times `probes` TCP handshakes with `target`, each waiting at most `timeout`, as a sample
    /// with method `tcp_connect:PORT`: servers that filter trace probes must still answer on
    /// their service port. Never fails: nothing answered is a sample with no RTT.
    fn handshake(
        &self,
        target: SocketAddr,
        probes: u32,
        timeout: Duration,
    ) -> impl std::future::Future<Output = RttSample> + Send;

    /// Echo RTTs to `target` that were measured apart from its trace (a RIPE Atlas ping), as
    /// one sample; `None` (the default) when this tracer has none: ours time the target with
    /// its trace and a handshake.
    fn pings(
        &self,
        _target: IpAddr,
    ) -> impl std::future::Future<Output = Option<RttSample>> + Send {
        std::future::ready(None)
    }
}

/// Traces every target with at most `concurrency` traces in flight; paths come back in the
/// order of `targets`. Never fails: a trace task that panicked is a `NotMeasured` path.
pub async fn trace_all<T: Trace + 'static>(
    tracer: Arc<T>,
    targets: Vec<IpAddr>,
    concurrency: usize,
) -> Vec<TracePath> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (slot, target) in targets.iter().copied().enumerate() {
        let tracer = Arc::clone(&tracer);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            // Taken before the trace opens its sockets, which is what the bound is for.
            let _permit = permits.acquire_owned().await;
            (slot, tracer.trace(target).await)
        });
    }
    let mut done: Vec<Option<TracePath>> = vec![None; targets.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((slot, path)) = joined
            && let Some(place) = done.get_mut(slot)
        {
            *place = Some(path);
        }
    }
    targets
        .into_iter()
        .zip(done)
        .map(|(target, path)| {
            path.unwrap_or_else(|| TracePath {
                target,
                protocol: Protocol::default(),
                port: None,
                status: TraceStatus::NotMeasured(
                    "the trace task panicked (a bug: please report it)".to_string(),
                ),
                reached: false,
                hops: Vec::new(),
            })
        })
        .collect()
}

impl TracePath {
    /// The target's own replies in this trace as an RTT sample (method `"trace"`): the last hop
    /// when the target answered, nothing otherwise.
    pub fn target_rtt(&self) -> RttSample {
        let hop = self.hops.last().filter(|_| self.reached);
        RttSample {
            method: "trace".to_string(),
            sent: hop.map_or(0, |h| h.sent),
            received: hop.map_or(0, |h| h.received),
            min_rtt_ms: hop.and_then(|h| h.best_rtt_ms),
            untrusted: None,
            reply_ttl: None,
            hops_away: None,
        }
    }
}
