//! The traceroute stage on loopback: trippy-core traces with ICMP, UDP and TCP to 127.0.0.1 and
//! ::1, TCP connect RTTs, concurrent traces through `trace_all`, and a trace made without
//! raw-socket privilege (this binary re-run as `nobody`).
//!
//! Loopback only: every probe here goes to 127.0.0.0/8 or ::1. Tests that need raw sockets are
//! `#[ignore]`d with that reason; included without the privilege they fail and say so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use residency::measure::trace::{
    PRIVILEGE_HINT, Protocol, Trace, TracePath, TraceSettings, TraceStatus, TrippyTracer,
    check_privilege, tcp_connect_rtt, trace_all,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCALHOST6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// Fails a test that was asked to run (it is `#[ignore]`d otherwise) without raw sockets.
fn require_privilege() {
    if let Err(err) = check_privilege() {
        panic!("needs root or CAP_NET_RAW: {err}");
    }
}

/// Few hops and short rounds: loopback answers at TTL 1 within microseconds.
fn settings(protocol: Protocol, port: u16) -> TraceSettings {
    TraceSettings {
        protocol,
        port,
        max_hops: 5,
        rounds: 3,
        round_timeout: Duration::from_millis(500),
    }
}

/// A port nothing listens on: bound, read, released.
fn closed_tcp_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("local addr").port()
}

fn closed_udp_port() -> u16 {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    socket.local_addr().expect("local addr").port()
}

fn has_ipv6_loopback() -> bool {
    UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// The target answered at TTL 1, every probe there came back, in well under a millisecond or so.
fn assert_one_hop_reached(path: &TracePath, target: IpAddr, rounds: u32) {
    assert_eq!(path.status, TraceStatus::Measured, "{path:#?}");
    assert!(path.reached, "{path:#?}");
    assert_eq!(path.target, target);
    assert_eq!(path.hops.len(), 1, "{path:#?}");
    let hop = &path.hops[0];
    assert_eq!(hop.ttl, 1);
    assert_eq!(hop.addr, Some(target));
    assert!(hop.other_addrs.is_empty(), "{hop:?}");
    assert_eq!(hop.sent, rounds, "one probe per round at TTL 1: {hop:?}");
    assert_eq!(hop.received, rounds, "{hop:?}");
    let best = hop.best_rtt_ms.expect("best rtt");
    let avg = hop.avg_rtt_ms.expect("avg rtt");
    assert!(best > 0.0 && best <= avg, "{hop:?}");
    // Loopback round trips are tens of microseconds; 50 ms leaves room for a loaded CI box.
    assert!(avg < 50.0, "{hop:?}");
    let rtt = path.target_rtt();
    assert_eq!(
        (rtt.method.as_str(), rtt.sent, rtt.received),
        ("trace", rounds, rounds)
    );
    assert_eq!(rtt.min_rtt_ms, Some(best));
}

#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn icmp_trace_to_127_0_0_1_is_one_hop_reached() {
    require_privilege();
    let tracer = TrippyTracer::new(settings(Protocol::Icmp, 0));
    let started = Instant::now();
    let path = tracer.trace(LOCALHOST).await;
    eprintln!("icmp 127.0.0.1: {:?} in {:?}", path.hops, started.elapsed());
    assert_one_hop_reached(&path, LOCALHOST, 3);
    assert_eq!((path.protocol, path.port), (Protocol::Icmp, None));
}

#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn ipv6_loopback_traces_reach_in_one_hop_with_every_protocol() {
    require_privilege();
    assert!(
        has_ipv6_loopback(),
        "no IPv6 loopback (::1) on this machine: enable IPv6 on lo"
    );
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).expect("bind");
    let tcp_port = listener.local_addr().expect("addr").port();
    let udp_port = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port();
    for (protocol, port) in [
        (Protocol::Icmp, 0),
        (Protocol::Udp, udp_port),
        (Protocol::Tcp, tcp_port),
    ] {
        let path = TrippyTracer::new(settings(protocol, port))
            .trace(LOCALHOST6)
            .await;
        eprintln!("{protocol:?} ::1: {:?}", path.hops);
        assert_one_hop_reached(&path, LOCALHOST6, 3);
    }
}

#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn tcp_trace_to_a_listening_port_is_one_hop_reached() {
    require_privilege();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let path = TrippyTracer::new(settings(Protocol::Tcp, port))
        .trace(LOCALHOST)
        .await;
    assert_one_hop_reached(&path, LOCALHOST, 3);
    assert_eq!((path.protocol, path.port), (Protocol::Tcp, Some(port)));
}

/// trippy counts a RST from the target (`TcpRefused`) as the target answering, as it is: the
/// host is there and replied. So a TCP trace to a closed port is reached.
#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn tcp_trace_to_a_closed_port_is_reached_by_the_rst() {
    require_privilege();
    let port = closed_tcp_port();
    let path = TrippyTracer::new(settings(Protocol::Tcp, port))
        .trace(LOCALHOST)
        .await;
    assert_one_hop_reached(&path, LOCALHOST, 3);
}

/// The target's "port unreachable" is its answer to a UDP probe.
#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn udp_trace_to_a_closed_port_is_reached_by_port_unreachable() {
    require_privilege();
    let port = closed_udp_port();
    let path = TrippyTracer::new(settings(Protocol::Udp, port))
        .trace(LOCALHOST)
        .await;
    assert_one_hop_reached(&path, LOCALHOST, 3);
    assert_eq!((path.protocol, path.port), (Protocol::Udp, Some(port)));
}

/// A bound UDP socket that never replies swallows the probes: the kernel sends no port
/// unreachable, so nothing answers at any TTL. The trace is measured, not reached, bounded by
/// rounds × round timeout. trippy's state lists TTLs only up to one past the last that answered,
/// so when none did the path has no hops at all.
#[tokio::test]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn udp_trace_to_a_silent_listener_is_not_reached() {
    require_privilege();
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let settings = TraceSettings {
        rounds: 2,
        round_timeout: Duration::from_millis(300),
        ..settings(Protocol::Udp, port)
    };
    let started = Instant::now();
    let path = TrippyTracer::new(settings).trace(LOCALHOST).await;
    let took = started.elapsed();
    eprintln!("silent udp: {path:?} in {took:?}");
    assert_eq!(path.status, TraceStatus::Measured, "{path:#?}");
    assert!(!path.reached, "{path:#?}");
    assert!(path.hops.is_empty(), "{path:#?}");
    assert_eq!(path.target_rtt().received, 0);
    assert!(
        took < Duration::from_secs(3),
        "bounded by 2 rounds of 300 ms: {took:?}"
    );
}

#[tokio::test]
async fn tcp_connect_rtt_to_a_listening_port_counts_every_probe() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sample = tcp_connect_rtt(addr, 5, Duration::from_secs(1)).await;
    eprintln!("tcp_connect listening: {sample:?}");
    assert_eq!(sample.method, format!("tcp_connect:{}", addr.port()));
    assert_eq!((sample.sent, sample.received), (5, 5));
    let min = sample.min_rtt_ms.expect("rtt");
    assert!(min > 0.0 && min < 50.0, "{sample:?}");
}

/// A RST is the target answering after one round trip: counted as received.
#[tokio::test]
async fn tcp_connect_rtt_to_a_closed_port_counts_the_rst() {
    let addr = SocketAddr::new(LOCALHOST, closed_tcp_port());
    let sample = tcp_connect_rtt(addr, 3, Duration::from_secs(1)).await;
    eprintln!("tcp_connect closed: {sample:?}");
    assert_eq!((sample.sent, sample.received), (3, 3));
    assert!(sample.min_rtt_ms.is_some_and(|ms| ms < 50.0), "{sample:?}");
}

#[tokio::test]
async fn tcp_connect_rtt_with_no_probes_measures_nothing() {
    let addr = SocketAddr::new(LOCALHOST, closed_tcp_port());
    let sample = tcp_connect_rtt(addr, 0, Duration::from_secs(1)).await;
    assert_eq!(
        (sample.sent, sample.received, sample.min_rtt_ms),
        (0, 0, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn trace_all_twenty_loopback_addresses_four_at_a_time_in_order() {
    require_privilege();
    let targets: Vec<IpAddr> = (1..=20)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    let tracer = Arc::new(TrippyTracer::new(settings(Protocol::Icmp, 0)));
    let started = Instant::now();
    let paths = trace_all(tracer, targets.clone(), 4).await;
    eprintln!(
        "trace_all 20 × icmp, concurrency 4: {:?}",
        started.elapsed()
    );
    assert_eq!(paths.len(), 20);
    for (path, target) in paths.iter().zip(&targets) {
        assert_one_hop_reached(path, *target, 3);
    }
}

/// Concurrent UDP and TCP traces to the *same* address and port: only distinct source-port
/// windows keep each trace's replies its own (trippy matches them by destination only). Every
/// probe must be answered once, to its own trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root or CAP_NET_RAW: raw sockets (cargo test -- --include-ignored, as root)"]
async fn concurrent_traces_to_one_address_and_port_keep_their_replies_apart() {
    require_privilege();
    let udp_port = closed_udp_port();
    let tcp_port = closed_tcp_port();
    for (protocol, port) in [(Protocol::Udp, udp_port), (Protocol::Tcp, tcp_port)] {
        let tracer = Arc::new(TrippyTracer::new(settings(protocol, port)));
        let paths = trace_all(tracer, vec![LOCALHOST; 8], 8).await;
        for path in &paths {
            assert_one_hop_reached(path, LOCALHOST, 3);
        }
    }
}

/// Without raw sockets a trace is `NotMeasured` with how to grant them, at once, without a
/// panic. Proved by re-running this test binary as `nobody` (no capabilities).
#[test]
fn unprivileged_trace_is_not_measured_with_the_setcap_hint() {
    if check_privilege().is_err() {
        // Already unprivileged: the child's checks can run right here.
        unprivileged_child_body();
        return;
    }
    if !effective_uid_is_root() {
        // Privileged by a file capability (setcap): a child of this binary would get it again,
        // and switching user needs root.
        panic!(
            "privileged by a file capability without being root: this binary cannot be re-run \
             without privilege; run the tests as root or without the capability"
        );
    }
    let exe = std::env::current_exe().expect("test binary path");
    let test_args = [
        "--exact",
        "trace::unprivileged_trace_is_not_measured_with_the_setcap_hint",
        "--nocapture",
    ];
    let mut command = if which("setpriv") {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]);
        c.arg(&exe);
        c
    } else if which("runuser") {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&exe);
        c
    } else {
        panic!("neither setpriv nor runuser to drop privilege: apt-get install util-linux");
    };
    let output = command
        .args(test_args)
        .output()
        .expect("run the test binary as nobody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(output.status.success(), "child failed: {:?}", output.status);
    assert!(stdout.contains("1 passed"), "the child test ran");
    assert!(stdout.contains("CHILD-RESULT not_measured"), "{stdout}");
    assert!(!stderr.contains("panicked") && !stdout.contains("panicked"));
}

/// From `/proc/self/status` (`Uid: real effective saved fs`): no unsafe `geteuid` needed.
fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The unprivileged half: run directly when this process has no raw sockets, else in a child
/// re-run of this same test as `nobody`.
fn unprivileged_child_body() {
    let err = check_privilege().expect_err("no raw-socket privilege here");
    assert!(
        err.to_string().contains("sudo setcap cap_net_raw+ep"),
        "{err}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (protocol, target) in [
        (Protocol::Icmp, LOCALHOST),
        (Protocol::Udp, LOCALHOST),
        (Protocol::Tcp, LOCALHOST6),
    ] {
        let tracer = TrippyTracer::new(settings(protocol, 443));
        let started = Instant::now();
        let path = runtime.block_on(tracer.trace(target));
        let took = started.elapsed();
        assert_eq!(
            path.status,
            TraceStatus::NotMeasured(PRIVILEGE_HINT.to_string()),
            "{path:?}"
        );
        assert!(PRIVILEGE_HINT.contains("run as root"));
        assert!(!path.reached && path.hops.is_empty());
        assert!(
            took < Duration::from_millis(100),
            "immediate, no retries: {took:?}"
        );
        println!("CHILD-RESULT not_measured {protocol:?} {target} in {took:?}");
    }
}
