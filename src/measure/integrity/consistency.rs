//! Per-target consistency: a reply that arrives sooner than the path allows is not the target's.
//!
//! Owns the rule and its margin. Packets to an address pass every router before it, so the
//! address cannot answer sooner than the slowest of those routers did (taking each router's
//! best reply over the rounds, which is its RTT with the least queueing and ICMP slow path).
//! A transparent proxy or an ICMP responder on the first router answers "for" the target in a
//! fraction of a millisecond, while the second router already takes tens: such a sample is
//! discarded, with the numbers.
//!
//! The margin allows for jitter and for the ICMP slow path of routers (their time-exceeded
//! replies are generated in software and can be a little late): a reply counts as sooner only
//! when it beats the router by more than 1 ms and by more than a fifth of the router's RTT.
//! The margin stays strict, because a proxy's reply wrongly kept makes the bound too tight;
//! what keeps the slow path from raising false alarms is the best reply over many rounds. One
//! 2019 Atlas traceroute of the corpus has hop 5 at 6.24 ms and K-root at 4.23 ms; over both of
//! the probe's traceroutes hop 5's best is 4.10 ms, no alarm (see `atlas::recorded`).

use std::net::IpAddr;

use super::PathFloor;
use crate::measure::trace::Hop;

/// The least a reply must beat a router by to count as impossible.
pub const MARGIN_MIN_MS: f64 = 1.0;

/// ... and the share of the router's RTT it must beat it by.
pub const MARGIN_SHARE: f64 = 0.2;

/// The jitter margin for a path floor of `floor_ms`.
pub fn margin_ms(floor_ms: f64) -> f64 {
    (floor_ms * MARGIN_SHARE).max(MARGIN_MIN_MS)
}

/// Whether `rtt_ms` is sooner than a path of `floor_ms` allows, beyond the margin.
pub fn sooner_than(rtt_ms: f64, floor_ms: f64) -> bool {
    rtt_ms + margin_ms(floor_ms) < floor_ms
}

/// The slowest best reply of a router on the path to `target` (hops that are not the target
/// itself), with where it came from.
pub fn path_floor(target: IpAddr, hops: &[Hop]) -> Option<PathFloor> {
    hops.iter()
        .filter(|h| h.addr.is_some_and(|a| a != target))
        .filter_map(|h| h.best_rtt_ms.map(|rtt| (h, rtt)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(h, rtt)| PathFloor {
            rtt_ms: rtt,
            from: format!(
                "hop {} ({})",
                h.ttl,
                h.addr.map(|a| a.to_string()).unwrap_or_default()
            ),
        })
}

/// The farthest router before `target` that answered a trace: its TTL and address.
pub fn last_router(target: IpAddr, hops: &[Hop]) -> Option<(u8, IpAddr)> {
    hops.iter()
        .filter(|h| h.received > 0)
        .filter_map(|h| h.addr.filter(|a| *a != target).map(|a| (h.ttl, a)))
        .max_by_key(|(ttl, _)| *ttl)
}

/// Why a reply that arrived with IP TTL `ttl` cannot have come from `target`, if it cannot:
/// the TTL puts its sender no farther than `router`, which the trace saw before the target.
pub fn too_near(target: IpAddr, what: &str, ttl: u8, router: (u8, IpAddr)) -> Option<String> {
    let hops = super::ttl::hops_away(ttl);
    (hops <= router.0).then(|| {
        format!(
            "{what} arrived with IP TTL {ttl}, so it was sent {hops} hop(s) away, but hop {} \
             ({}) answered the trace from farther on the path to {target}: the reply did not \
             come from {target}",
            router.0, router.1
        )
    })
}

/// Why a sample of `rtt_ms` by `method` cannot have come from `target`, if it cannot.
pub fn impossible_reply(
    target: IpAddr,
    method: &str,
    rtt_ms: f64,
    floor: &PathFloor,
) -> Option<String> {
    sooner_than(rtt_ms, floor.rtt_ms).then(|| {
        format!(
            "{method} answered in {rtt_ms:.2} ms, sooner than {} at {:.2} ms on the path to {target} \
             (beyond a {:.2} ms margin): the reply did not come from {target}",
            floor.from,
            floor.rtt_ms,
            margin_ms(floor.rtt_ms)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, addr: &str, rtt: Option<f64>) -> Hop {
        Hop {
            ttl,
            addr: Some(addr.parse().expect("address")),
            other_addrs: Vec::new(),
            sent: 1,
            received: u32::from(rtt.is_some()),
            best_rtt_ms: rtt,
            avg_rtt_ms: rtt,
        }
    }

    #[test]
    fn the_slowest_router_before_the_target_is_the_floor() {
        let target: IpAddr = "203.0.113.200".parse().expect("address");
        let hops = [
            hop(1, "192.0.2.1", Some(0.05)),
            hop(2, "198.51.100.129", Some(60.2)),
            hop(3, "203.0.113.200", Some(0.04)),
        ];
        let floor = path_floor(target, &hops).expect("a floor");
        assert_eq!(floor.rtt_ms, 60.2);
        assert_eq!(floor.from, "hop 2 (198.51.100.129)");
        let why = impossible_reply(target, "tcp_connect:443", 0.05, &floor).expect("impossible");
        assert!(why.contains("0.05 ms") && why.contains("60.20 ms"), "{why}");
        assert!(path_floor(target, &hops[2..]).is_none());
        assert_eq!(
            last_router(target, &hops),
            Some((2, "198.51.100.129".parse().expect("ip")))
        );
        // A SYN-ACK made on the first router (TTL 64, one hop) against r2 at hop 2.
        let why = too_near(
            target,
            "its SYN-ACK",
            64,
            (2, "198.51.100.129".parse().expect("ip")),
        )
        .expect("too near");
        assert!(
            why.contains("IP TTL 64") && why.contains("1 hop(s)"),
            "{why}"
        );
        // The server's own (TTL 62: three hops) is where it should be.
        assert!(
            too_near(
                target,
                "its SYN-ACK",
                62,
                (2, "198.51.100.129".parse().expect("ip"))
            )
            .is_none()
        );
    }

    #[test]
    fn jitter_within_the_margin_is_not_an_alarm() {
        // A target 0.5 ms "faster" than a 2 ms router: ICMP slow path, not interception.
        assert!(!sooner_than(1.5, 2.0));
        // 40 ms against a 60 ms router is beyond 20 %: impossible.
        assert!(sooner_than(40.0, 60.0));
        assert!(!sooner_than(50.0, 60.0));
        assert!(!sooner_than(61.0, 60.0));
    }
}
