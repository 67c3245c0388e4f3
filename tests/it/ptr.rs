//! Reverse DNS against a real authoritative server (knotd on loopback): PTR names for IPv4 and
//! IPv6 addresses, the NXDOMAIN of an address without a PTR, the location hints read from the
//! names that came back, and RTT physics refuting a hint that is too far away.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::dns::{KnotServer, Zone};
use residency::measure::resolve::{
    DnsResolver, Outcome, Query, RecordType, Resolve, ResolveSettings, reverse_name,
};
use residency::model::{Confidence, SourceKind};
use residency::sources::physics::{ClaimCheck, RttBound, Vantage, check_point_claim};
use residency::sources::ptr::{HintRule, hints_from_name, ptr_evidence};

const V4_ZONE: &str = "2.0.192.in-addr.arpa.";
const V6_ZONE: &str = "8.b.d.0.1.0.0.2.ip6.arpa.";

/// The record name of `ip` relative to the zone `origin` it falls in.
fn relative(ip: &str, origin: &str) -> String {
    let full = reverse_name(ip.parse().expect("address literal"));
    full.strip_suffix(&format!(".{origin}"))
        .unwrap_or_else(|| panic!("{full} is not under {origin}"))
        .to_string()
}

fn reverse_lab() -> KnotServer {
    let v4 = "10 120 PTR ae-1.r01.bom01.example.net.\n\
              11 PTR xe-0-0-1.cr1.fra1.example.net.\n\
              11 PTR Frankfurt-Edge.Example.NET.\n\
              12 PTR host-192-0-2-12.static.example.net.\n";
    let v6 = format!(
        "{} 90 PTR et-0-0-0.pe1.sin2.example.net.\n",
        relative("2001:db8::1", V6_ZONE)
    );
    KnotServer::start(&[Zone::new(V4_ZONE, v4), Zone::new(V6_ZONE, &v6)], None)
}

fn quick() -> DnsResolver {
    DnsResolver::new(ResolveSettings {
        timeout: Duration::from_millis(1500),
        tries: 2,
    })
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address literal")
}

#[tokio::test]
async fn ipv4_ptr_names_are_recorded_lower_case_without_the_dot() {
    let knot = reverse_lab();
    let resolver = quick();

    let one = resolver.reverse(knot.addr(), ip("192.0.2.10")).await;
    assert_eq!(one.outcome, Outcome::Answer, "{one:?}\n{}", knot.log());
    assert_eq!(one.record_type, RecordType::Ptr);
    assert_eq!(one.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(one.names, ["ae-1.r01.bom01.example.net"]);
    assert!(one.addresses.is_empty());
    assert_eq!(one.ttl, Some(120));

    // Two PTRs for one address: both kept, whatever case the zone wrote them in.
    let two = resolver.reverse(knot.addr(), ip("192.0.2.11")).await;
    assert_eq!(two.outcome, Outcome::Answer, "{two:?}");
    let mut names = two.names.clone();
    names.sort();
    assert_eq!(
        names,
        [
            "frankfurt-edge.example.net",
            "xe-0-0-1.cr1.fra1.example.net"
        ]
    );
    assert_eq!(two.ttl, Some(300));

    // The same question through the generic query, with the reverse name written out.
    let spelled = resolver
        .resolve(&Query {
            host: "10.2.0.192.in-addr.arpa".into(),
            record_type: RecordType::Ptr,
            resolver: knot.addr(),
            client_subnet: None,
            attempt: 1,
        })
        .await;
    assert_eq!(spelled.names, one.names);
}

#[tokio::test]
async fn ipv6_ptr_names_come_from_ip6_arpa() {
    let knot = reverse_lab();
    let answer = quick().reverse(knot.addr(), ip("2001:db8::1")).await;
    assert_eq!(
        answer.outcome,
        Outcome::Answer,
        "{answer:?}\n{}",
        knot.log()
    );
    assert_eq!(answer.names, ["et-0-0-0.pe1.sin2.example.net"]);
    assert_eq!(answer.ttl, Some(90));

    // Over IPv6 loopback too, where this machine has it.
    if let Some(v6) = knot.addr_v6() {
        let again = quick().reverse(v6, ip("2001:db8::1")).await;
        assert_eq!(again.names, answer.names, "{again:?}");
        assert_eq!(again.resolver, v6.to_string());
    }
}

#[tokio::test]
async fn an_address_without_ptr_is_nxdomain_with_no_names() {
    let knot = reverse_lab();
    let resolver = quick();
    for missing in ["192.0.2.99", "2001:db8::99"] {
        let answer = resolver.reverse(knot.addr(), ip(missing)).await;
        assert_eq!(answer.outcome, Outcome::NxDomain, "{missing}: {answer:?}");
        assert_eq!(answer.rcode.as_deref(), Some("NXDOMAIN"));
        assert!(answer.names.is_empty());
        let json = serde_json::to_value(&answer).expect("serialises");
        assert!(json.get("names").is_none(), "{json}");
    }
}

/// A port nothing answers on is a `Timeout` outcome, not a panic or an error return.
#[tokio::test]
async fn an_unanswered_ptr_query_is_an_outcome() {
    let silent = common::dns::SilentServer::start();
    let resolver = DnsResolver::new(ResolveSettings {
        timeout: Duration::from_millis(200),
        tries: 1,
    });
    let addr: SocketAddr = silent.addr();
    let answer = resolver.reverse(addr, ip("192.0.2.10")).await;
    assert_eq!(answer.outcome, Outcome::Timeout, "{answer:?}");
    assert!(answer.names.is_empty());
}

/// From a knotd PTR answer to evidence: the names the server gave are read for hints, and the
/// evidence carries the hint's country, city and point.
#[tokio::test]
async fn ptr_answers_become_located_evidence() {
    let knot = reverse_lab();
    let resolver = quick();

    let bom = ip("192.0.2.10");
    let answer = resolver.reverse(knot.addr(), bom).await;
    let evidence = ptr_evidence(bom, &answer.names);
    assert_eq!(evidence.len(), 1, "{answer:?} -> {evidence:?}");
    let e = &evidence[0];
    assert_eq!(e.kind, SourceKind::PtrHint);
    assert_eq!(e.source, "ptr");
    assert_eq!(e.confidence, Confidence::Low);
    assert_eq!(e.country.map(|c| c.to_string()).as_deref(), Some("IN"));
    assert_eq!(e.city.as_deref(), Some("Mumbai"));
    assert_eq!(
        e.detail,
        "PTR ae-1.r01.bom01.example.net: \"bom\" = Mumbai, IN (IATA)"
    );

    // Two names, both pointing at Frankfurt, by airport code and by city name.
    let fra = ip("192.0.2.11");
    let answer = resolver.reverse(knot.addr(), fra).await;
    let evidence = ptr_evidence(fra, &answer.names);
    assert_eq!(evidence.len(), 2, "{evidence:?}");
    assert!(
        evidence
            .iter()
            .all(|e| e.country.map(|c| c.to_string()).as_deref() == Some("DE")),
        "{evidence:?}"
    );

    // IPv6: Singapore.
    let sin = ip("2001:db8::1");
    let answer = resolver.reverse(knot.addr(), sin).await;
    let evidence = ptr_evidence(sin, &answer.names);
    assert_eq!(
        evidence
            .iter()
            .map(|e| e.country.map(|c| c.to_string()))
            .collect::<Vec<_>>(),
        [Some("SG".to_string())]
    );

    // A name without a place, and an address without a PTR: no evidence.
    for quiet in ["192.0.2.12", "192.0.2.99"] {
        let answer = resolver.reverse(knot.addr(), ip(quiet)).await;
        assert!(
            ptr_evidence(ip(quiet), &answer.names).is_empty(),
            "{answer:?}"
        );
    }
}

/// A hint is a point, so RTT physics refutes it like any database point: a hop 1 ms from a
/// Delhi vantage cannot be in Beijing (about 3,800 km away; 1 ms allows 150 km), and a hop
/// 20 ms away may well be in Mumbai (about 1,150 km; 20 ms allows 2,050 km).
#[test]
fn physics_refutes_a_far_hint_and_allows_a_near_one() {
    let delhi = Vantage::new("IN".parse().expect("country"), 28.61, 77.21).expect("vantage");

    let pek = hints_from_name("ae-3.r02.pek01.example.net");
    assert_eq!(pek.len(), 1, "{pek:?}");
    assert_eq!(
        (pek[0].place.as_str(), pek[0].rule),
        ("Beijing", HintRule::Iata)
    );
    let one_ms = RttBound::from_rtt(1.0);
    match check_point_claim(&delhi, &one_ms, &pek[0].coordinates, "PTR says Beijing") {
        ClaimCheck::Refuted {
            distance_km,
            explanation,
            ..
        } => {
            assert!(distance_km > 3_000.0, "{distance_km}");
            assert!(explanation.contains("PTR says Beijing"), "{explanation}");
        }
        other => panic!("Beijing 1 ms from Delhi should be refuted: {other:?}"),
    }

    let bom = hints_from_name("ae-1.r01.bom01.example.net");
    assert_eq!(bom.len(), 1, "{bom:?}");
    let twenty_ms = RttBound::from_rtt(20.0);
    match check_point_claim(&delhi, &twenty_ms, &bom[0].coordinates, "PTR says Mumbai") {
        ClaimCheck::Possible { distance_km } => {
            assert!((1_000.0..1_300.0).contains(&distance_km), "{distance_km}");
        }
        other => panic!("Mumbai 20 ms from Delhi should be possible: {other:?}"),
    }
    // ...but not at 1 ms either.
    assert!(check_point_claim(&delhi, &one_ms, &bom[0].coordinates, "Mumbai").is_refuted());
}
