//! `discover` on a capture this test makes itself. tcpdump runs on the lab's client (every
//! interface, so Linux "cooked" framing) while the client does the following:
//! - asks knotd for `www.lab.test`, a CNAME to `api.lab.test`;
//! - opens TLS to `api.lab.test` (SNI) with openssl's `s_server`;
//! - fetches HTTP from Python's `http.server` with `Host: web.lab.test`;
//! - opens a TCP flow that names nothing.
//!
//! The names and sources must come out exactly. Every destination's packets and IP-layer bytes
//! in each direction must equal what tshark counts in the same file. Needs root (the lab),
//! knot, tcpdump, tshark, openssl, curl and python3.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use residency::measure::capture::{self, NameSource};

use crate::common::dns::Zone;
use crate::common::netns::{CLIENT, Lab, LabBuilder, Server};

const DNS: &str = "203.0.113.10";
const WEB: &str = "203.0.113.11";
const TLS: &str = "203.0.113.12";
const QUIET: &str = "203.0.113.13";

/// A background process in the lab, killed (its `ip netns exec` wrapper and the program)
/// when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits until something accepts TCP on `addr` inside the client's view of the lab.
fn wait_for_port(lab: &Lab, addr: SocketAddr) {
    let start = Instant::now();
    loop {
        let probe = lab
            .exec(
                CLIENT,
                "bash",
                [
                    "-c",
                    &format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port()),
                ],
            )
            .stderr(Stdio::null())
            .status()
            .expect("bash");
        if probe.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{addr} never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn a_capture_made_in_the_lab_gives_its_names_and_exact_byte_counts() {
    let lab = Lab::require(
        LabBuilder::new()
            .router("r1", &["192.0.2.1"], Duration::ZERO)
            .router("r2", &["198.51.100.129"], Duration::ZERO)
            .server(Server::new("srv", &[DNS, WEB, TLS, QUIET])),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _knot = lab.spawn_knot(
        "srv",
        DNS.parse().expect("ip"),
        &[Zone::new(
            "lab.test",
            &format!("www 60 IN CNAME api\napi 60 IN A {TLS}\nweb 60 IN A {WEB}\n"),
        )],
    );
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=api.lab.test",
            "-keyout",
        ])
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem")));
    let _tls = Running(
        lab.exec("srv", "openssl", ["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("{TLS}:443"))
            .arg("-cert")
            .arg(d.join("cert.pem"))
            .arg("-key")
            .arg(d.join("key.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server"),
    );
    let _web = Running(
        lab.exec("srv", "python3", ["-m", "http.server", "80", "--bind", WEB])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server"),
    );
    let _quiet = lab.listen_tcp("srv", SocketAddr::new(QUIET.parse().expect("ip"), 9000));
    wait_for_port(&lab, SocketAddr::new(TLS.parse().expect("ip"), 443));
    wait_for_port(&lab, SocketAddr::new(WEB.parse().expect("ip"), 80));

    let pcap = d.join("client.pcap");
    let mut tcpdump = lab
        .exec(
            CLIENT,
            "tcpdump",
            ["-i", "any", "-n", "-U", "--immediate-mode", "-w"],
        )
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut lines = BufReader::new(tcpdump.stderr.take().expect("stderr")).lines();
    let listening = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("listening on")));
    assert!(listening.is_some(), "tcpdump did not start");

    run(&mut lab.exec(
        CLIENT,
        "kdig",
        [
            "+retry=0",
            "+timeout=2",
            &format!("@{DNS}"),
            "www.lab.test",
            "A",
        ],
    ));
    run(&mut lab.exec(
        CLIENT,
        "curl",
        [
            "-sk",
            "--max-time",
            "5",
            "--resolve",
            &format!("api.lab.test:443:{TLS}"),
            "https://api.lab.test/",
        ],
    ));
    run(&mut lab.exec(
        CLIENT,
        "curl",
        [
            "-s",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-H",
            "Host: web.lab.test",
            &format!("http://{WEB}/"),
        ],
    ));
    run(&mut lab.exec(
        CLIENT,
        "bash",
        ["-c", &format!("exec 3<>/dev/tcp/{QUIET}/9000; echo hi >&3")],
    ));
    std::thread::sleep(Duration::from_millis(500));
    // SIGINT: tcpdump writes what it holds and exits.
    // `ip netns exec` execs tcpdump itself, so the child is tcpdump.
    run(Command::new("kill").args(["-INT", &tcpdump.id().to_string()]));
    let status = tcpdump.wait().expect("tcpdump exits");
    assert!(status.success(), "tcpdump: {status:?}");

    let found = capture::discover(std::slice::from_ref(&pcap)).expect("reads the lab capture");
    assert!(
        found.captures[0].problems.is_empty(),
        "{:?}",
        found.captures[0].problems
    );
    let names = |ip: &str| {
        found
            .destinations
            .iter()
            .find(|x| x.ip.to_string() == ip)
            .unwrap_or_else(|| panic!("{ip} missing: {:#?}", found.destinations))
            .named_by
            .iter()
            .map(|n| (n.name.as_str(), n.source))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(TLS),
        [
            ("api.lab.test", NameSource::Dns),
            ("api.lab.test", NameSource::TlsSni),
            ("www.lab.test", NameSource::Dns)
        ]
    );
    assert_eq!(names(WEB), [("web.lab.test", NameSource::HttpHost)]);
    assert!(names(QUIET).is_empty());
    assert!(names(DNS).is_empty());
    let dns = found
        .dns
        .iter()
        .find(|r| r.name == "www.lab.test")
        .expect("the answer");
    assert_eq!(dns.answers, ["api.lab.test", TLS]);

    // tshark's count of the same file: (source, destination) -> (packets, IP-layer bytes).
    let out = run(Command::new("tshark").args(["-n", "-r"]).arg(&pcap).args([
        "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.len",
    ]));
    let client: IpAddr = lab.client_v4().into();
    let mut expected = std::collections::BTreeMap::<IpAddr, [u64; 4]>::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(src), Some(dst), Some(len)) = (
            f.first().and_then(|s| s.parse::<IpAddr>().ok()),
            f.get(1).and_then(|s| s.parse::<IpAddr>().ok()),
            f.get(2).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if src == client {
            let e = expected.entry(dst).or_default();
            e[0] += 1;
            e[1] += len;
        } else if dst == client {
            let e = expected.entry(src).or_default();
            e[2] += 1;
            e[3] += len;
        }
    }
    let counted: std::collections::BTreeMap<IpAddr, [u64; 4]> = found
        .destinations
        .iter()
        .map(|x| {
            (
                x.ip,
                [
                    x.packets_sent,
                    x.bytes_sent,
                    x.packets_received,
                    x.bytes_received,
                ],
            )
        })
        .collect();
    assert_eq!(counted, expected);
    for ip in [DNS, WEB, TLS, QUIET] {
        assert!(
            counted.contains_key(&ip.parse::<IpAddr>().expect("ip")),
            "{ip} not counted"
        );
    }
}
