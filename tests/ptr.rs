//! Reverse DNS against a real authoritative server (knotd on loopback): PTR names for IPv4 and
//! IPv6 addresses, the NXDOMAIN of an address without a PTR, and the location hints read from
//! the names that came back.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::dns::{KnotServer, Zone};
use residency::resolve::{
    DnsResolver, Outcome, Query, RecordType, Resolve, ResolveSettings, reverse_name,
};

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
