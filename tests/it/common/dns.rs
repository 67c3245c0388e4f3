//! Lab DNS for integration tests: a real Knot DNS server (`knotd`) on loopback with zones and
//! EDNS-Client-Subnet answers written by the test, plus a server that never answers and a port
//! nothing listens on.
//!
//! Owns everything about running those servers: temp config and zone files, a free port, waiting
//! until every zone answers, and killing knotd on drop. Only loopback addresses are used, except
//! by [`KnotServer::start_in`], which the network lab (`netns.rs`) uses to run knotd at a server
//! address inside a namespace it created.
//!
//! knotd is required, not optional: without it the tests fail with the command that installs it
//! (`apt-get install knot knot-module-geoip`), so a missing package never looks like a pass.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const INSTALL_HINT: &str = "install Knot DNS: `apt-get install knot knot-module-geoip`";

/// Where Debian's knot-module-geoip puts the module; knotd loads every module in its module
/// directory by itself, so this path is only used to explain a failure.
const GEOIP_MODULE: &str = "/usr/lib/x86_64-linux-gnu/knot/modules-3.2/geoip.so";

/// How long knotd may take to load its zones before the test fails.
const STARTUP_DEADLINE: Duration = Duration::from_secs(15);

/// A zone to serve: its origin and record lines in zone-file syntax, relative to the origin.
///
/// SOA (negative-answer TTL 60) and NS records at the apex are added, and `$TTL 300` is the
/// default TTL, so tests write only the records they are about.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: String,
    pub records: String,
}

impl Zone {
    pub fn new(origin: &str, records: &str) -> Zone {
        Zone {
            origin: absolute(origin),
            records: records.to_string(),
        }
    }
}

/// One EDNS-Client-Subnet rule: clients in `subnet` asking for `name` get these addresses.
#[derive(Debug, Clone)]
pub struct GeoRule {
    pub name: String,
    pub subnet: String,
    pub a: Vec<String>,
    pub aaaa: Vec<String>,
}

/// Client-subnet-dependent answers, served by knot's `mod-geoip` in `mode: subnet`.
///
/// A client outside every rule gets the zone's own records, so give each name default records
/// in its zone too. Answers from a rule carry `ttl`.
#[derive(Debug, Clone)]
pub struct GeoConfig {
    pub ttl: u32,
    pub rules: Vec<GeoRule>,
}

impl GeoConfig {
    pub fn new(ttl: u32) -> GeoConfig {
        GeoConfig {
            ttl,
            rules: Vec::new(),
        }
    }

    /// Adds a rule; `a` and `aaaa` are address literals.
    pub fn rule(mut self, name: &str, subnet: &str, a: &[&str], aaaa: &[&str]) -> GeoConfig {
        self.rules.push(GeoRule {
            name: absolute(name),
            subnet: subnet.to_string(),
            a: a.iter().map(|s| s.to_string()).collect(),
            aaaa: aaaa.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// The module's response file (knot 3.2 syntax: `- net:` entries under each name).
    fn to_file(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if !names.contains(&rule.name.as_str()) {
                names.push(&rule.name);
            }
        }
        for name in names {
            let _ = writeln!(out, "{}:", name.trim_end_matches('.'));
            for rule in self.rules.iter().filter(|r| r.name == name) {
                let _ = writeln!(out, "  - net: {}", rule.subnet);
                if !rule.a.is_empty() {
                    let _ = writeln!(out, "    A: [ {} ]", rule.a.join(", "));
                }
                if !rule.aaaa.is_empty() {
                    let _ = writeln!(out, "    AAAA: [ {} ]", rule.aaaa.join(", "));
                }
            }
        }
        out
    }

    fn covers_zone(&self, origin: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.name == origin || r.name.ends_with(&format!(".{origin}")))
    }
}

/// Where knotd listens when it does not run on loopback: the given addresses (UDP and TCP), with
/// its command line prefixed by `prefix` (e.g. `ip netns exec NS`), and its readiness checked by
/// `kdig` run with the same prefix, since the test process cannot reach a namespace's addresses.
#[derive(Debug, Clone)]
pub struct KnotPlacement {
    pub listen: Vec<SocketAddr>,
    pub prefix: Vec<String>,
    /// The server's NSID (RFC 5001), sent to queries that ask for it; `None`: none.
    pub nsid: Option<String>,
}

/// A running knotd serving the given zones on loopback; killed on drop.
pub struct KnotServer {
    child: Child,
    addr: SocketAddr,
    addr_v6: Option<SocketAddr>,
    log: PathBuf,
    // Declared last so the files outlive the process that reads them.
    dir: tempfile::TempDir,
}

impl KnotServer {
    /// Starts knotd and waits until every zone answers its SOA. Panics with knotd's log (and what
    /// to install) if it cannot start.
    pub fn start(zones: &[Zone], geo: Option<&GeoConfig>) -> KnotServer {
        let knotd = find_knotd();
        let mut last_failure = String::new();
        // A freshly released port can be grabbed by another process before knotd binds it, so
        // a failed start is tried again on a new port (bounded).
        for _ in 0..3 {
            match try_start(&knotd, zones, geo) {
                Ok(server) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        let geo_hint = if geo.is_some() && !Path::new(GEOIP_MODULE).exists() {
            format!(" ({GEOIP_MODULE} is missing: {INSTALL_HINT})")
        } else {
            String::new()
        };
        panic!("knotd did not start{geo_hint}: {last_failure}");
    }

    /// Starts knotd listening on `placement.listen` (e.g. port 53 of a server address in a lab
    /// namespace) under `placement.prefix`, and waits until every zone answers its SOA there.
    /// Panics with knotd's log if it cannot start; needs `kdig` (`apt-get install knot-dnsutils`).
    pub fn start_in(
        placement: &KnotPlacement,
        zones: &[Zone],
        geo: Option<&GeoConfig>,
    ) -> KnotServer {
        assert!(
            !placement.listen.is_empty(),
            "knotd needs at least one listen address"
        );
        // Readiness is checked with kdig; without it knotd would only seem not to answer.
        assert!(
            Command::new("kdig")
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "kdig not found: apt-get install knot-dnsutils"
        );
        let knotd = find_knotd();
        try_start_at(&knotd, zones, geo, placement)
            .unwrap_or_else(|failure| panic!("knotd did not start: {failure}"))
    }

    /// The IPv4 loopback address knotd answers on (UDP and TCP); with [`KnotServer::start_in`],
    /// the first listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same port on `::1`, when this machine has IPv6 loopback; with
    /// [`KnotServer::start_in`], the first IPv6 listen address, if any.
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.addr_v6
    }

    /// knotd's log so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The directory holding the config and zone files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        // Our own child, by handle: never a broad kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn try_start(knotd: &Path, zones: &[Zone], geo: Option<&GeoConfig>) -> Result<KnotServer, String> {
    let v6 = ipv6_loopback_available();
    let port = free_port(v6)?;
    let mut listen = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)];
    if v6 {
        listen.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port));
    }
    let placement = KnotPlacement {
        listen,
        prefix: Vec::new(),
        nsid: None,
    };
    try_start_at(knotd, zones, geo, &placement)
}

fn try_start_at(
    knotd: &Path,
    zones: &[Zone],
    geo: Option<&GeoConfig>,
    placement: &KnotPlacement,
) -> Result<KnotServer, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let addr = placement.listen[0];
    let addr_v6 = placement.listen.iter().copied().find(SocketAddr::is_ipv6);

    let d = dir.path();
    // knot's syntax for an address and port is `ADDR@PORT`, without brackets for IPv6.
    let listen: Vec<String> = placement
        .listen
        .iter()
        .map(|a| format!("\"{}@{}\"", a.ip(), a.port()))
        .collect();
    let mut conf = format!(
        "server:\n    rundir: \"{rundir}\"\n    listen: [ {listen} ]\n    edns-client-subnet: on\n    \
         udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n    storage: \"{rundir}\"\n\
         template:\n  - id: default\n    storage: \"{rundir}\"\n",
        rundir = d.display(),
        listen = listen.join(", "),
    );
    if let Some(nsid) = &placement.nsid {
        conf = conf.replacen("server:\n", &format!("server:\n    nsid: \"{nsid}\"\n"), 1);
    }
    if let Some(geo) = geo {
        let geo_file = d.join("geo.conf");
        std::fs::write(&geo_file, geo.to_file())
            .map_err(|e| format!("cannot write geo.conf: {e}"))?;
        let _ = write!(
            conf,
            "mod-geoip:\n  - id: lab\n    config-file: \"{}\"\n    ttl: {}\n    mode: subnet\n",
            geo_file.display(),
            geo.ttl
        );
    }
    conf.push_str("zone:\n");
    for (i, zone) in zones.iter().enumerate() {
        let file = format!("zone{i}.zone");
        std::fs::write(d.join(&file), zone_file(zone))
            .map_err(|e| format!("cannot write {file}: {e}"))?;
        let _ = write!(
            conf,
            "  - domain: \"{}\"\n    file: \"{file}\"\n",
            zone.origin
        );
        if geo.is_some_and(|g| g.covers_zone(&zone.origin)) {
            conf.push_str("    module: mod-geoip/lab\n");
        }
    }
    let conf_path = d.join("knot.conf");
    std::fs::write(&conf_path, &conf).map_err(|e| format!("cannot write knot.conf: {e}"))?;

    let log = d.join("knotd.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create the log: {e}"))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("cannot share the log: {e}"))?;
    let mut command = match placement.prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(knotd);
            command
        }
        None => Command::new(knotd),
    };
    let child = command
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}; {INSTALL_HINT}", knotd.display()))?;
    let mut server = KnotServer {
        child,
        addr,
        addr_v6,
        log,
        dir,
    };

    let deadline = Instant::now() + STARTUP_DEADLINE;
    let mut pending: Vec<&Zone> = zones.iter().collect();
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "knotd exited ({status}); config:\n{conf}\nlog:\n{}",
                server.log()
            ));
        }
        pending.retain(|zone| {
            if placement.prefix.is_empty() {
                !soa_answers(addr, &zone.origin)
            } else {
                !soa_answers_via(&placement.prefix, addr, &zone.origin)
            }
        });
        if pending.is_empty() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "zones {:?} did not answer within {STARTUP_DEADLINE:?}; config:\n{conf}\nlog:\n{}",
        pending
            .iter()
            .map(|z| z.origin.as_str())
            .collect::<Vec<_>>(),
        server.log()
    ))
}

fn zone_file(zone: &Zone) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ 3600 SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n\
         @ 3600 NS ns.invalid.\n{records}\n",
        origin = zone.origin,
        records = zone.records
    )
}

/// True when `addr` answers an SOA question for `origin` authoritatively.
fn soa_answers(addr: SocketAddr, origin: &str) -> bool {
    let Ok(name) = Name::from_ascii(origin) else {
        return false;
    };
    let mut query = Message::query();
    query.add_query(Query::query(name, RecordType::SOA));
    let Ok(bytes) = query.to_vec() else {
        return false;
    };
    let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    if socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
        || socket.send_to(&bytes, addr).is_err()
    {
        return false;
    }
    let mut buf = [0u8; 4096];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => Message::from_vec(&buf[..len]).is_ok_and(|answer| {
            answer.metadata.id == query.metadata.id
                && answer.metadata.response_code == ResponseCode::NoError
                && answer.metadata.authoritative
                && !answer.answers.is_empty()
        }),
        Err(_) => false,
    }
}

/// Like [`soa_answers`], for an address only reachable under `prefix` (inside a namespace): asks
/// with `kdig` run under the same prefix.
fn soa_answers_via(prefix: &[String], addr: SocketAddr, origin: &str) -> bool {
    let Some((program, args)) = prefix.split_first() else {
        return false;
    };
    let output = Command::new(program)
        .args(args)
        .arg("kdig")
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+timeout=1", "+retry=0", "+norecurse", "SOA", origin])
        .stdin(Stdio::null())
        .output();
    let Ok(output) = output else {
        return false;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    // kdig's header lines, e.g. `status: NOERROR` and `;; Flags: qr aa; QUERY: 1; ANSWER: 1`.
    output.status.success()
        && text.contains("status: NOERROR")
        && text.contains(" aa")
        && !text.contains("ANSWER: 0")
}

fn find_knotd() -> PathBuf {
    if let Some(path) = std::env::var_os("KNOTD") {
        return PathBuf::from(path);
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_dirs)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("knotd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("knotd not found in PATH or /usr/sbin: {INSTALL_HINT}"))
}

fn ipv6_loopback_available() -> bool {
    UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// A port free for UDP and TCP on 127.0.0.1 (and ::1 when `v6`), found by binding port 0 and
/// releasing it.
fn free_port(v6: bool) -> Result<u16, String> {
    for _ in 0..20 {
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        let tcp_ok = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        let v6_ok = !v6
            || (UdpSocket::bind((Ipv6Addr::LOCALHOST, port)).is_ok()
                && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok());
        if tcp_ok && v6_ok {
            return Ok(port);
        }
    }
    Err("no free loopback port found in 20 tries".to_string())
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A UDP socket on 127.0.0.1 that reads queries and never answers; counts what it received.
pub struct SilentServer {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let socket =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket on 127.0.0.1");
        let addr = socket
            .local_addr()
            .expect("the silent socket has an address");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set a read timeout");
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: stops on drop, and in any case after ten minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut buf = [0u8; 4096];
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                if socket.recv_from(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        SilentServer {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many datagrams arrived so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP server on 127.0.0.1 that answers every query with an empty, truncated (TC) response,
/// with nothing listening on the same TCP port: a client's TCP fallback is refused.
///
/// knotd cannot be made to fail TCP while serving UDP, so this one failure path is scripted.
pub struct TruncatingServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TruncatingServer {
    pub fn start() -> TruncatingServer {
        let socket =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket on 127.0.0.1");
        let addr = socket.local_addr().expect("the socket has an address");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set a read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: stops on drop, and in any case after ten minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut buf = [0u8; 4096];
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let mut answer = Message::response(query.metadata.id, OpCode::Query);
                answer.metadata.recursion_desired = query.metadata.recursion_desired;
                answer.metadata.truncation = true;
                answer.queries = query.queries.clone();
                // Only ever back to the loopback sender of the query.
                if from.ip().is_loopback()
                    && let Ok(bytes) = answer.to_vec()
                {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        TruncatingServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TruncatingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback UDP/TCP address nothing listens on (bound to port 0, then released).
pub fn closed_port() -> SocketAddr {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket on 127.0.0.1");
    socket.local_addr().expect("the socket has an address")
}
