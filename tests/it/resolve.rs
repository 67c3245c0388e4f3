//! The DNS resolution stage against a real authoritative server (knotd on loopback): every
//! outcome a measurement can have, recorded with the values the server actually sent.

use crate::common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::dns::{GeoConfig, KnotServer, SilentServer, TruncatingServer, Zone, closed_port};
use residency::measure::resolve::{
    CnameLink, DnsResolver, Outcome, Query, RecordType, Resolution, Resolve, ResolveSettings,
    Transport,
};

const ORIGIN: &str = "lab.test.";

/// Records of the lab zone. TTLs differ per name so a test can tell whose TTL it got.
fn lab_records() -> String {
    let mut records = String::from(
        "www 120 A 192.0.2.10\n\
         www 120 A 192.0.2.11\n\
         www 90 AAAA 2001:db8::10\n\
         v4only 300 A 192.0.2.20\n\
         alias 60 CNAME hop\n\
         hop 45 CNAME www\n\
         geo 300 A 192.0.2.1\n\
         geo 300 AAAA 2001:db8::1\n",
    );
    // 100 A records: about 1.6 kB of answer, over the 1232-byte EDNS buffer we advertise.
    for i in 1..=100 {
        records.push_str(&format!("big 30 A 198.51.100.{i}\n"));
    }
    records
}

fn lab() -> KnotServer {
    KnotServer::start(&[Zone::new(ORIGIN, &lab_records())], None)
}

fn geo_lab() -> KnotServer {
    let geo = GeoConfig::new(25)
        .rule("geo.lab.test", "198.51.100.0/24", &["203.0.113.1"], &[])
        .rule("geo.lab.test", "203.0.113.0/24", &["203.0.113.2"], &[])
        .rule("geo.lab.test", "2001:db8:100::/48", &[], &["2001:db8::100"]);
    KnotServer::start(&[Zone::new(ORIGIN, &lab_records())], Some(&geo))
}

fn quick() -> DnsResolver {
    DnsResolver::new(ResolveSettings {
        timeout: Duration::from_millis(1500),
        tries: 2,
    })
}

fn query(host: &str, record_type: RecordType, resolver: SocketAddr) -> Query {
    Query {
        host: host.to_string(),
        record_type,
        resolver,
        client_subnet: None,
        attempt: 1,
    }
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter()
        .map(|s| s.parse().expect("address literal"))
        .collect()
}

fn got(resolution: &Resolution) -> BTreeSet<IpAddr> {
    resolution.addresses.iter().copied().collect()
}

#[tokio::test]
async fn a_and_aaaa_answers_carry_addresses_and_ttl() {
    let knot = lab();
    let resolver = quick();

    let a = resolver
        .resolve(&query("www.lab.test", RecordType::A, knot.addr()))
        .await;
    assert_eq!(a.outcome, Outcome::Answer, "{a:?}\n{}", knot.log());
    assert_eq!(a.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(got(&a), ips(&["192.0.2.10", "192.0.2.11"]));
    assert_eq!(a.ttl, Some(120));
    assert_eq!(a.transport, Some(Transport::Udp));
    assert_eq!(a.record_type, RecordType::A);
    assert_eq!(a.resolver, knot.addr().to_string());
    assert!(a.cname_chain.is_empty());
    assert_eq!((a.scope_prefix, a.error.as_deref()), (None, None));

    let aaaa = resolver
        .resolve(&query("www.lab.test.", RecordType::Aaaa, knot.addr()))
        .await;
    assert_eq!(aaaa.outcome, Outcome::Answer, "{aaaa:?}");
    assert_eq!(got(&aaaa), ips(&["2001:db8::10"]));
    assert_eq!(aaaa.ttl, Some(90));
    assert_eq!(aaaa.record_type, RecordType::Aaaa);
}

#[tokio::test]
async fn every_repeat_is_its_own_measurement() {
    let knot = lab();
    let resolver = quick();
    for attempt in 1..=3 {
        let mut q = query("www.lab.test", RecordType::A, knot.addr());
        q.attempt = attempt;
        let r = resolver.resolve(&q).await;
        assert_eq!(r.attempt, attempt);
        assert_eq!(r.outcome, Outcome::Answer, "attempt {attempt}: {r:?}");
        assert_eq!(got(&r), ips(&["192.0.2.10", "192.0.2.11"]));
        // Straight from the authoritative server, never a cached (decremented) TTL.
        assert_eq!(r.ttl, Some(120));
    }
}

#[tokio::test]
async fn repeats_each_send_a_datagram() {
    // The silent server counts datagrams: with 1 try per query, 3 repeats must be 3 packets.
    let silent = SilentServer::start();
    let resolver = DnsResolver::new(ResolveSettings {
        timeout: Duration::from_millis(200),
        tries: 1,
    });
    for attempt in 1..=3 {
        let mut q = query("www.lab.test", RecordType::A, silent.addr());
        q.attempt = attempt;
        assert_eq!(resolver.resolve(&q).await.outcome, Outcome::Timeout);
    }
    assert_eq!(wait_for_count(&silent, 3), 3);
}

#[tokio::test]
async fn cname_chain_is_recorded_in_order_with_final_addresses() {
    let knot = lab();
    let r = quick()
        .resolve(&query("alias.lab.test", RecordType::A, knot.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::Answer, "{r:?}");
    assert_eq!(
        r.cname_chain,
        vec![
            CnameLink {
                name: "alias.lab.test".into(),
                target: "hop.lab.test".into(),
                ttl: 60,
            },
            CnameLink {
                name: "hop.lab.test".into(),
                target: "www.lab.test".into(),
                ttl: 45,
            },
        ]
    );
    assert_eq!(got(&r), ips(&["192.0.2.10", "192.0.2.11"]));
    // The TTL is the address records' own, not the chain's.
    assert_eq!(r.ttl, Some(120));
}

#[tokio::test]
async fn missing_name_is_nxdomain() {
    let knot = lab();
    let r = quick()
        .resolve(&query("nope.lab.test", RecordType::A, knot.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::NxDomain, "{r:?}");
    assert_eq!(r.rcode.as_deref(), Some("NXDOMAIN"));
    assert!(r.addresses.is_empty());
    assert_eq!(r.ttl, None);
    assert_eq!(r.transport, Some(Transport::Udp));
}

#[tokio::test]
async fn name_without_the_asked_type_is_nodata() {
    let knot = lab();
    let r = quick()
        .resolve(&query("v4only.lab.test", RecordType::Aaaa, knot.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::NoData, "{r:?}");
    assert_eq!(r.rcode.as_deref(), Some("NOERROR"));
    assert!(r.addresses.is_empty());
    assert_eq!(r.ttl, None);
}

#[tokio::test]
async fn zone_the_server_does_not_serve_is_refused() {
    let knot = lab();
    let r = quick()
        .resolve(&query("www.elsewhere.test", RecordType::A, knot.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{r:?}");
    assert_eq!(r.rcode.as_deref(), Some("REFUSED"));
    assert!(r.addresses.is_empty());
}

#[tokio::test]
async fn silent_server_times_out_after_all_tries() {
    let silent = SilentServer::start();
    let settings = ResolveSettings {
        timeout: Duration::from_millis(300),
        tries: 2,
    };
    let started = Instant::now();
    let r = DnsResolver::new(settings)
        .resolve(&query("www.lab.test", RecordType::A, silent.addr()))
        .await;
    let took = started.elapsed();

    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert_eq!((r.rcode.as_deref(), r.transport, r.ttl), (None, None, None));
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("2 tries")),
        "{r:?}"
    );
    let budget = settings.timeout * settings.tries;
    assert!(
        took >= budget - Duration::from_millis(50),
        "gave up early: {took:?}"
    );
    assert!(
        took < budget + Duration::from_millis(700),
        "took too long: {took:?}"
    );
    assert!(
        r.elapsed_ms >= 550 && r.elapsed_ms < 1300,
        "elapsed_ms {}",
        r.elapsed_ms
    );
    // Each try was a real datagram.
    assert_eq!(wait_for_count(&silent, 2), 2);
}

#[tokio::test]
async fn closed_port_is_a_recorded_failure_not_a_panic() {
    let settings = ResolveSettings {
        timeout: Duration::from_millis(200),
        tries: 2,
    };
    let started = Instant::now();
    let r = DnsResolver::new(settings)
        .resolve(&query("www.lab.test", RecordType::A, closed_port()))
        .await;
    assert!(started.elapsed() < Duration::from_millis(1200));
    // Queries go out from an unconnected UDP socket, which never sees the ICMP "port
    // unreachable": to us a closed port looks exactly like a silent server.
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some("no answer after 2 tries of 200 ms each")
    );
    assert!(r.addresses.is_empty() && r.rcode.is_none(), "{r:?}");
}

#[tokio::test]
async fn client_subnets_get_their_own_answers_and_scope() {
    let knot = geo_lab();
    let resolver = quick();
    let ask = |subnet: Option<&str>, record_type: RecordType| {
        let mut q = query("geo.lab.test", record_type, knot.addr());
        q.client_subnet = subnet.map(|s| s.parse().expect("subnet literal"));
        q
    };

    let first = resolver
        .resolve(&ask(Some("198.51.100.0/24"), RecordType::A))
        .await;
    assert_eq!(first.outcome, Outcome::Answer, "{first:?}\n{}", knot.log());
    assert_eq!(got(&first), ips(&["203.0.113.1"]));
    assert_eq!(first.ttl, Some(25));
    assert_eq!(first.scope_prefix, Some(24));
    assert_eq!(
        first.client_subnet,
        Some("198.51.100.0/24".parse().expect("subnet literal"))
    );

    // Host bits beyond the prefix are cleared before sending (RFC 7871 §6).
    let second = resolver
        .resolve(&ask(Some("203.0.113.77/24"), RecordType::A))
        .await;
    assert_eq!(got(&second), ips(&["203.0.113.2"]), "{second:?}");
    assert_eq!(second.scope_prefix, Some(24));

    let v6 = resolver
        .resolve(&ask(Some("2001:db8:100::/48"), RecordType::Aaaa))
        .await;
    assert_eq!(got(&v6), ips(&["2001:db8::100"]), "{v6:?}");
    assert_eq!(v6.scope_prefix, Some(48));

    // Without ECS the server sees only 127.0.0.1, which no rule covers: the zone's default.
    let plain = resolver.resolve(&ask(None, RecordType::A)).await;
    assert_eq!(got(&plain), ips(&["192.0.2.1"]), "{plain:?}");
    assert_eq!(plain.ttl, Some(300));
    assert_eq!(plain.scope_prefix, None);
}

#[tokio::test]
async fn truncated_answer_is_retried_over_tcp() {
    let knot = lab();
    let r = quick()
        .resolve(&query("big.lab.test", RecordType::A, knot.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::Answer, "{r:?}\n{}", knot.log());
    assert_eq!(r.transport, Some(Transport::Tcp));
    let expected: BTreeSet<IpAddr> = (1..=100u8)
        .map(|i| IpAddr::from([198, 51, 100, i]))
        .collect();
    assert_eq!(got(&r), expected);
    assert_eq!(r.addresses.len(), 100);
    assert_eq!(r.ttl, Some(30));
}

#[tokio::test]
async fn truncated_answer_without_tcp_is_an_error_not_a_partial_answer() {
    let server = TruncatingServer::start();
    let r = quick()
        .resolve(&query("big.lab.test", RecordType::A, server.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.starts_with("UDP answer was truncated; over TCP: ")),
        "{r:?}"
    );
    assert!(
        r.addresses.is_empty() && r.transport.is_none() && r.rcode.is_none(),
        "{r:?}"
    );
}

#[tokio::test]
async fn ipv6_loopback_resolver_is_reached() {
    let knot = lab();
    let Some(addr) = knot.addr_v6() else {
        eprintln!("skipping: this machine has no ::1");
        return;
    };
    let r = quick()
        .resolve(&query("www.lab.test", RecordType::Aaaa, addr))
        .await;
    assert_eq!(r.outcome, Outcome::Answer, "{r:?}");
    assert_eq!(r.resolver, format!("[::1]:{}", addr.port()));
    assert_eq!(got(&r), ips(&["2001:db8::10"]));
}

#[tokio::test]
async fn invalid_host_is_an_error_outcome() {
    let silent = SilentServer::start();
    let r = quick()
        .resolve(&query("bad..name", RecordType::A, silent.addr()))
        .await;
    assert_eq!(r.outcome, Outcome::Error, "{r:?}");
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("bad..name")),
        "{r:?}"
    );
    // Nothing was sent for a name that cannot be encoded.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(silent.received(), 0);
}

/// Waits (bounded) for the silent server to have counted `want` datagrams; returns the count.
fn wait_for_count(silent: &SilentServer, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    while silent.received() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give a stray extra datagram the chance to show up too.
    std::thread::sleep(Duration::from_millis(100));
    silent.received()
}
