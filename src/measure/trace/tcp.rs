//! Round-trip time by TCP connect: a privilege-free RTT to an address itself.
//!
//! Owns timing the TCP handshake. The kernel answers a SYN with SYN-ACK (open port) or RST
//! (closed port) after one round trip, so the time `connect` takes is one RTT plus local
//! overhead; the minimum over several probes is the number the physics bound wants.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::RttSample;

/// Minimum TCP connect time to `target` over `probes` sequential connects, each given at most
/// `timeout`. Needs no privilege. Method `"tcp_connect:PORT"`.
///
/// A refused connection (RST) counts as received: the RST came back from the target after one
/// round trip, so it times the path as well as a SYN-ACK does. A timeout or any other error
/// (unreachable network, no route) is sent but not received.
pub async fn tcp_connect_rtt(target: SocketAddr, probes: u32, timeout: Duration) -> RttSample {
    let mut received = 0;
    let mut min: Option<Duration> = None;
    // Sequential on purpose: parallel handshakes would queue behind each other and inflate RTTs.
    for _ in 0..probes {
        let started = Instant::now();
        let answered = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
            // Dropping the stream closes it at once; only the handshake was wanted.
            Ok(Ok(_stream)) => true,
            Ok(Err(err)) => err.kind() == std::io::ErrorKind::ConnectionRefused,
            Err(_elapsed) => false,
        };
        let elapsed = started.elapsed();
        if answered {
            received += 1;
            min = Some(min.map_or(elapsed, |m| m.min(elapsed)));
        }
    }
    RttSample {
        method: format!("tcp_connect:{}", target.port()),
        sent: probes,
        received,
        min_rtt_ms: min.map(|d| d.as_secs_f64() * 1000.0),
        untrusted: None,
        reply_ttl: None,
        hops_away: None,
    }
}
