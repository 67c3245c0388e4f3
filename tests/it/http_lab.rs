//! The HTTPS probe in a lab: a real TLS server (Python's `ssl`, a certificate made by
//! `openssl` for the run) in a server namespace 5 ms away, sending the edge headers CDNs send.
//! The vantage point is declared in Delhi. Needs root: `#[ignore]`d with that reason.
//!
//! ```text
//! client ── r1 ── r2 ──5 ms── edge     203.0.113.40 delhi.vendor.test  → cf-ray …-DEL
//!                                          203.0.113.41 frankfurt.vendor.test → x-amz-cf-pop FRA56-P1
//!                           └─0 ms── silent 203.0.113.50 accepts TCP, never says a word
//! ```
//!
//! An edge in Delhi is possible in ~10 ms and is located there; Frankfurt, 5,800 km away, is
//! refuted by the same RTT; a server that never answers is cut off at the policy's deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::cmd::path_str;
use common::dns::{KnotServer, Zone};
use common::mmdb::write_country_db;
use common::netns::addrs::{R1, R2};
use common::netns::{Lab, LabBuilder, Server};
use serde_json::Value;

const EDGE: &str = "203.0.113.40";
const EDGE_FRA: &str = "203.0.113.41";
const SILENT: &str = "203.0.113.50";
const VANTAGE: &str = "vantage: { country: IN, lat: 28.61, lon: 77.21 }";

/// The lab server: answers `HEAD` over TLS with the header its Host asks for, or (`silent`)
/// accepts connections and never sends anything.
const SERVER_PY: &str = r#"
import socket, ssl, sys, threading, time
cert, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 443))
srv.listen(64)
print("ready", flush=True)
def handle(c):
    try:
        if mode == "silent":
            time.sleep(60)
            return
        s = ctx.wrap_socket(c, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return
            data += chunk
        host = ""
        for line in data.decode("latin-1").split("\r\n"):
            if line.lower().startswith("host:"):
                host = line[5:].strip()
        edge = "cf-ray: 8d1f0a2b3c4d5e6f-DEL" if host.startswith("delhi") else "x-amz-cf-pop: FRA56-P1"
        s.sendall(("HTTP/1.1 200 OK\r\nServer: lab\r\n" + edge + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode())
        s.close()
    except Exception:
        pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// A process killed (and reaped) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server in `node` and waits (bounded) for it to listen.
fn serve(lab: &Lab, node: &str, dir: &Path, mode: &str) -> Running {
    let mut child = lab
        .exec(
            node,
            "python3",
            [
                dir.join("server.py"),
                dir.join("cert.pem"),
                dir.join("key.pem"),
            ],
        )
        .arg(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 (apt-get install python3)");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the lab HTTPS server starts");
    assert_eq!(line.trim(), "ready", "{line}");
    running
}

/// A lab root CA and a server certificate it signs for both names (the policy trusts the CA
/// through `http.roots`, as an organisation trusts its own).
fn certificate(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=Lab Root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=delhi.vendor.test/O=Lab Edge",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:delhi.vendor.test,DNS:frankfurt.vendor.test\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    .expect("write extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "cert.pem",
        "-extfile",
        "leaf.ext",
    ]);
}

struct World {
    lab: Lab,
    _knot: KnotServer,
    _servers: Vec<Running>,
    dir: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        let lab = Lab::require(
            LabBuilder::new()
                .router("r1", &[R1], Duration::ZERO)
                .router("r2", &[R2], Duration::ZERO)
                .server(Server::new("edge", &[EDGE, EDGE_FRA]).delay(Duration::from_millis(5)))
                .server(Server::new("silent", &[SILENT])),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("server.py"), SERVER_PY).expect("write server");
        certificate(dir.path());
        let servers = vec![
            serve(&lab, "edge", dir.path(), "edge"),
            serve(&lab, "silent", dir.path(), "silent"),
        ];
        let zone = Zone::new(
            "vendor.test.",
            &format!("delhi A {EDGE}\nfrankfurt A {EDGE_FRA}\nquiet A {SILENT}\n"),
        );
        let knot = lab.spawn_knot("edge", EDGE.parse().expect("ip"), &[zone]);
        write_country_db(&dir.path().join("lab.mmdb"), &[("192.0.2.0/25", "IN")]);
        World {
            lab,
            _knot: knot,
            _servers: servers,
            dir,
        }
    }

    fn policy(&self, name: &str, body: &str) -> PathBuf {
        let text = format!(
            "id: {name}\nallow: [IN]\ndeny: [DE]\nresolvers: [\"{EDGE}\"]\nrepeat: 1\n{VANTAGE}\n\
             dns: {{ timeout_ms: 1000, tries: 2 }}\ntrace: {{ rounds: 2, timeout_ms: 500, max_hops: 4 }}\n\
             http: {{ timeout_ms: 1500, roots: [ca.pem] }}\nregistry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n{body}",
            self.dir.path().join("lab.mmdb").display()
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    fn check(&self, policy: &Path, extra: &[&str]) -> (i32, Value, Duration) {
        let started = Instant::now();
        let out = self
            .lab
            .residency(self.dir.path(), false)
            .args(["check", "--format", "json"])
            .args(extra)
            .arg(path_str(policy))
            .output();
        let took = started.elapsed();
        let doc = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), doc, took)
    }
}

fn address<'a>(doc: &'a Value, host: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["host"] == host)
        .map(|e| &e["addresses"][0])
        .unwrap_or_else(|| panic!("no {host} in {doc:#}"))
}

fn edge_evidence(address: &Value) -> Value {
    address["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["kind"] == "cdn_edge")
        .cloned()
        .unwrap_or_else(|| panic!("no cdn_edge evidence: {address:#}"))
}

#[test]
#[ignore = "needs root: builds network namespaces (cargo test -- --include-ignored, as root)"]
fn an_edge_header_is_located_refuted_when_impossible_and_a_silent_server_bounded() {
    let world = World::start();
    let policy = world.policy(
        "edges",
        "endpoints:\n  - host: delhi.vendor.test\n  - host: frankfurt.vendor.test\n  - host: quiet.vendor.test\n",
    );
    let (_, doc, took) = world.check(&policy, &[]);

    // Delhi: the certificate and the edge header are recorded, the edge located in Delhi.
    let delhi = address(&doc, "delhi.vendor.test");
    let probe = &delhi["http"][0];
    assert_eq!(probe["status"], 200, "{delhi:#}");
    assert_eq!(probe["name"], "delhi.vendor.test");
    let cert = &probe["certificate"];
    assert_eq!(cert["name_matches"], true, "{cert}");
    assert!(
        cert["subject"]
            .as_str()
            .is_some_and(|s| s.contains("delhi.vendor.test")),
        "{cert}"
    );
    assert!(
        cert["untrusted"].is_null(),
        "the lab CA the policy trusts vouches for it: {cert}"
    );
    assert_eq!(cert["sha256"].as_str().map(str::len), Some(64));
    let edge = edge_evidence(delhi);
    assert_eq!(
        (edge["source"].as_str(), edge["country"].as_str()),
        (Some("cdn:cloudflare"), Some("IN")),
        "{edge}"
    );
    assert_eq!(edge["city"], "New Delhi", "{edge}");
    assert!(
        edge["refuted"].is_null(),
        "Delhi is possible from Delhi in ~10 ms: {edge}"
    );
    assert_eq!(delhi["verdict"], "compliant", "{delhi:#}");

    // Frankfurt: the header claims an edge the RTT makes impossible; refuted with the numbers.
    let fra = address(&doc, "frankfurt.vendor.test");
    let edge = edge_evidence(fra);
    assert_eq!(edge["country"], "DE", "{edge}");
    let refuted = edge["refuted"]
        .as_str()
        .unwrap_or_else(|| panic!("not refuted: {fra:#}"));
    assert!(refuted.contains("allows at most"), "{refuted}");
    assert_ne!(
        fra["verdict"], "violation",
        "a refuted claim does not decide: {fra:#}"
    );

    // The silent server: the probe is cut off at the policy's 1.5 s and says so.
    let quiet = address(&doc, "quiet.vendor.test");
    let failed = quiet["http"][0]["failed"]
        .as_str()
        .unwrap_or_else(|| panic!("{quiet:#}"));
    assert!(failed.contains("no answer within 1500 ms"), "{failed}");
    assert!(
        took < Duration::from_secs(60),
        "the whole run is bounded: {took:?}"
    );

    // The table shows each probe: what answered, the certificate, the edge header.
    let out = world
        .lab
        .residency(world.dir.path(), false)
        .args(["check", path_str(&policy)])
        .output();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("https 443 as delhi.vendor.test: HTTP 200"),
        "{table}"
    );
    assert!(table.contains("covers the name; vouched for"), "{table}");
    assert!(table.contains("cf-ray: 8d1f0a2b3c4d5e6f-DEL"), "{table}");
    assert!(
        table.contains("https 443 as quiet.vendor.test: no answer within 1500 ms"),
        "{table}"
    );

    // Without the lab CA the certificate is vouched for by nobody: what it says is recorded,
    // and no edge is located from it (a proxy in the path would present just such a one).
    let untrusting = world.policy("untrusting", "endpoints:\n  - host: delhi.vendor.test\n");
    let text = std::fs::read_to_string(&untrusting).expect("policy");
    std::fs::write(&untrusting, text.replace(", roots: [ca.pem]", "")).expect("policy");
    let (_, doc, _) = world.check(&untrusting, &[]);
    let delhi = address(&doc, "delhi.vendor.test");
    assert!(
        delhi["http"][0]["certificate"]["untrusted"].is_string(),
        "{delhi:#}"
    );
    let edge = edge_evidence(delhi);
    assert!(edge["country"].is_null(), "{edge}");
    assert!(
        edge["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not counted")),
        "{edge}"
    );

    // --no-http sends no probe at all.
    let (_, doc, _) = world.check(&policy, &["--no-http"]);
    assert!(
        address(&doc, "delhi.vendor.test")["http"].is_null(),
        "{doc:#}"
    );
}
