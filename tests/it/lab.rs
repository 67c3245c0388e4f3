//! Self-test of the network lab (`tests/it/common/netns.rs`): from the client namespace, real ping,
//! traceroute and DNS through the router chain must show the configured hops and delays, and a
//! dropping server must stay silent. Needs root: every test is `#[ignore]`d with that reason.
//!
//! The topology, as a residency test would use it:
//!
//! ```text
//! client ──0 ms── r1 (192.0.2.1, "IN") ──10 ms── r2 (198.51.100.129, "CN") ─┬─5 ms── a    203.0.113.10
//!                  └──0.5 ms── near 203.0.113.20                             ├─60 ms── far  198.51.100.20
//!                                                                            └─0 ms── drop 203.0.113.66 (drops all)
//! ```

use crate::common;

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use common::dns::Zone;
use common::netns::addrs::{A, A_V6, DROP, FAR, NEAR, R1, R1_V6, R2, R2_V6};
use common::netns::{CLIENT, Lab, LabBuilder, Server};

/// Scheduling on a loaded 2-core machine (forwarder threads, parallel tests, builds) adds time
/// to an RTT but can never remove any: RTTs must lie in [floor, floor + SLACK).
const SLACK: Duration = Duration::from_millis(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(literal: &str) -> IpAddr {
    literal.parse().expect("an address literal")
}

fn topology() -> LabBuilder {
    LabBuilder::new()
        .router("r1", &[R1, R1_V6], Duration::ZERO)
        .router("r2", &[R2, R2_V6], ms(10))
        .server(Server::new("a", &[A, A_V6]).delay(ms(5)))
        .server(
            Server::new("near", &[NEAR])
                .behind("r1")
                .delay(Duration::from_micros(500)),
        )
        .server(Server::new("far", &[FAR]).delay(ms(60)))
        .server(Server::new("drop", &[DROP]).dropping())
}

/// `traceroute -n -I` from the client: one entry per hop, `None` for a hop that did not answer.
fn traceroute(lab: &Lab, target: IpAddr, max_hops: u32) -> (Vec<Option<IpAddr>>, String) {
    let family = if target.is_ipv4() { "-4" } else { "-6" };
    let output = lab
        .exec(
            CLIENT,
            "traceroute",
            [
                family.to_string(),
                "-n".to_string(),
                "-I".to_string(),
                "-q".to_string(),
                "1".to_string(),
                "-w".to_string(),
                "1".to_string(),
                "-m".to_string(),
                max_hops.to_string(),
                target.to_string(),
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run traceroute (apt-get install traceroute)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "traceroute failed (apt-get install traceroute):\n{text}"
    );
    // Lines look like ` 1  192.0.2.1  0.061 ms` or ` 3  *`; the header line has no hop number.
    let hops = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.next()?.parse::<u32>().ok()?;
            Some(words.next().and_then(|w| w.parse::<IpAddr>().ok()))
        })
        .collect();
    (hops, text)
}

fn assert_rtt(lab: &Lab, target: IpAddr) {
    let floor = lab.rtt_floor(target);
    let ping = lab.ping(CLIENT, target, 3);
    assert_eq!(
        ping.rtts.len(),
        3,
        "{target}: expected 3 replies\n{}",
        ping.output
    );
    let (min, max) = (
        ping.min().unwrap_or_default(),
        ping.max().unwrap_or_default(),
    );
    // Printed so test logs show how close the lab comes to its configuration.
    eprintln!("{target}: floor {floor:?}, RTTs {:?}", ping.rtts);
    assert!(
        min >= floor && max < floor + SLACK,
        "{target}: RTTs {:?} should lie in [{floor:?}, {:?})\n{}",
        ping.rtts,
        floor + SLACK,
        ping.output
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn ping_rtts_match_the_configured_link_delays() {
    let lab = common::netns::Lab::require(topology());
    // The floors the topology promises, so a wrong sum in the helper fails here too.
    assert_eq!(lab.rtt_floor(addr(A)), ms(30));
    assert_eq!(lab.rtt_floor(addr(NEAR)), ms(1));
    assert_eq!(lab.rtt_floor(addr(FAR)), ms(140));
    assert_eq!(lab.rtt_floor(addr(R2)), ms(20));
    for target in [A, A_V6, NEAR, FAR, R1, R2, R2_V6] {
        assert_rtt(&lab, addr(target));
    }
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_20_ms_link_each_way_gives_a_40_ms_round_trip() {
    let lab = common::netns::Lab::require(
        LabBuilder::new()
            .router("r1", &[R1], Duration::ZERO)
            .router("r2", &[R2], ms(20))
            .server(Server::new("a", &[A])),
    );
    assert_eq!(lab.rtt_floor(addr(A)), ms(40));
    assert_rtt(&lab, addr(A));
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn traceroute_shows_the_routers_in_order() {
    let lab = common::netns::Lab::require(topology());
    for target in [A, A_V6, NEAR, FAR] {
        let target = addr(target);
        let (hops, text) = traceroute(&lab, target, 8);
        let mut expected: Vec<Option<IpAddr>> = lab.hops_to(target).into_iter().map(Some).collect();
        expected.push(Some(target));
        assert_eq!(hops, expected, "traceroute to {target}:\n{text}");
    }
    // The path the helper reports is the one configured: r1 in 192.0.2.0/25, then r2.
    assert_eq!(lab.hops_to(addr(A)), vec![addr(R1), addr(R2)]);
    assert_eq!(lab.hops_to(addr(A_V6)), vec![addr(R1_V6), addr(R2_V6)]);
    assert_eq!(lab.hops_to(addr(NEAR)), vec![addr(R1)]);
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn the_dropping_server_never_answers_but_its_routers_do() {
    let lab = common::netns::Lab::require(topology());
    let ping = lab.ping(CLIENT, addr(DROP), 3);
    assert!(
        ping.rtts.is_empty(),
        "{DROP} drops everything yet answered:\n{}",
        ping.output
    );
    let (hops, text) = traceroute(&lab, addr(DROP), 4);
    assert_eq!(
        hops,
        vec![Some(addr(R1)), Some(addr(R2)), None, None],
        "traceroute to {DROP}:\n{text}"
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn knotd_in_a_server_namespace_answers_the_client_after_the_path_rtt() {
    let lab = common::netns::Lab::require(topology());
    let zone = Zone::new("vendor.test.", &format!("www A {A}\nwww AAAA {A_V6}"));
    let knot = lab.spawn_knot("a", addr(A), &[zone]);
    let output = lab
        .exec(
            CLIENT,
            "kdig",
            [
                &format!("@{A}"),
                "+timeout=2",
                "+retry=0",
                "www.vendor.test.",
                "A",
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run kdig (apt-get install knot-dnsutils)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && text.contains("status: NOERROR"),
        "kdig failed:\n{text}{}\nknotd log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        knot.log()
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("www.vendor.test.") && l.trim_end().ends_with(A)),
        "no A record {A} in:\n{text}"
    );
    // `;; From 203.0.113.10@53(UDP) in 30.4 ms`: the answer crossed the delayed path.
    let took = text
        .lines()
        .find(|l| l.starts_with(";; From "))
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse::<f64>().ok())
        .map(|t| Duration::from_secs_f64(t / 1000.0))
        .unwrap_or_else(|| panic!("no query time in:\n{text}"));
    let floor = lab.rtt_floor(addr(A));
    assert!(
        took >= floor && took < floor + SLACK,
        "query took {took:?}, expected [{floor:?}, {:?})\n{text}",
        floor + SLACK
    );
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_lab_removes_its_namespaces_and_devices_even_when_the_test_panics() {
    let names: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let tuns: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let lab = common::netns::Lab::require(topology());
        let mut seen = names.lock().unwrap_or_else(|e| e.into_inner());
        for node in [CLIENT, "r1", "r2", "a", "near", "far", "drop"] {
            seen.push(lab.ns(node).to_string());
        }
        tuns.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(lab.tun_names().iter().cloned());
        drop(seen);
        panic!("deliberate panic: the lab must still clean up");
    });
    let names = names.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(!names.is_empty(), "the lab did not start: {result:?}");
    assert!(result.is_err(), "the closure should have panicked");
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in &names {
        assert!(
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "namespace {name} survived the lab:\n{listed}"
        );
    }
    // TUN devices pass through the root namespace under their creation names; none of this
    // lab's may be left there (other tests' labs may be starting at the same time).
    let tuns = tuns.into_inner().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        tuns.len(),
        8,
        "four delay links, two TUN devices each: {tuns:?}"
    );
    for tun in &tuns {
        let shown = std::process::Command::new("ip")
            .args(["link", "show", "dev", tun])
            .output()
            .expect("run ip link show");
        assert!(
            !shown.status.success(),
            "TUN device {tun} was left in the root namespace"
        );
    }
}
