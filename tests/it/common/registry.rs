//! Lab registries for the registry tests: a real HTTP/1.1 server answering RDAP queries and
//! real WHOIS servers on TCP, all on loopback ports chosen by the OS.
//!
//! Owns the servers' threads, their request counters and the records they serve for the
//! documentation ranges: 192.0.2.0/24 → an IN holder, 198.51.100.0/24 → CN, 2001:db8::/32 →
//! SG. Every server stops (and its thread is joined) on drop; every socket has a timeout, so
//! no test can hang on a server.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server thread waits on one client at most.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Accept-loop poll interval; the loop checks the stop flag between polls.
const POLL: Duration = Duration::from_millis(5);

/// One request as the handler sees it.
pub struct Request {
    pub path: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The body, as long as its `Content-Length` says (empty without one).
    pub body: String,
    /// 1-based number of this request on this server.
    pub count: usize,
    /// `http://127.0.0.1:port/`, for `self` links.
    pub base: String,
    /// The request's header lines as sent, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(body: String) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/rdap+json".into())],
            body,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

/// Stops and joins a server thread on drop.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accept connections until stopped, giving each to `serve` on the accepting thread.
fn run(listener: TcpListener, mut serve: impl FnMut(TcpStream) + Send + 'static) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                    serve(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(_) => std::thread::sleep(POLL),
            }
        }
    });
    Running {
        stop,
        thread: Some(thread),
    }
}

fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

/// A minimal HTTP/1.1 server: reads the request head, answers with `handler`'s reply and
/// closes the connection.
pub struct HttpServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
    _running: Running,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + 'static) -> HttpServer {
        let listener = loopback_listener();
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let base = format!("http://{addr}/");
        let running = run(listener, move |mut stream| {
            let Some((method, path, body, headers)) = read_request(&mut stream) else {
                return;
            };
            let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if method == "POST" {
                seen.lock().expect("bodies").push(body.clone());
            }
            let reply = handler(&Request {
                path,
                method,
                body,
                count,
                base: base.clone(),
                headers,
            });
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                reply.body.len()
            );
            for (name, value) in &reply.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(reply.body.as_bytes());
            let _ = stream.flush();
        });
        HttpServer {
            addr,
            requests,
            bodies,
            _running: running,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The bodies of the POST requests received so far, in order.
    pub fn posts(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Header lines, names lower-cased.
type Headers = Vec<(String, String)>;

/// The method, path, body and headers of a request, after reading its whole head and its
/// `Content-Length` bytes of body (both bounded).
fn read_request(stream: &mut TcpStream) -> Option<(String, String, String, Headers)> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut byte).ok()?;
        if n == 0 || data.len() > 64 * 1024 {
            return None;
        }
        data.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1024 * 1024);
    while data.len() < head_end + length {
        let n = stream.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&byte[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
    Some((method, path, body, headers))
}

/// An RDAP server for the documentation ranges; any other address is 404.
pub fn rdap_server() -> HttpServer {
    HttpServer::start(|request| match rdap_answer(request) {
        Some(body) => Reply::json(body),
        None => Reply::status(404),
    })
}

/// The RDAP `ip network` answer for `GET /ip/{addr}`, or `None` outside the lab ranges.
pub fn rdap_answer(request: &Request) -> Option<String> {
    if request.path == "/autnum/64500" {
        let value = serde_json::json!({
            "objectClassName": "autnum",
            "handle": "AS64500",
            "startAutnum": 64500,
            "endAutnum": 64500,
            "name": "EXAMPLE-BJ-AS",
            "entities": [entity("EXBJ", "registrant", "Example Beijing Co", "CN")],
            "links": [{ "rel": "self", "href": format!("{}autnum/64500", request.base) }],
        });
        return Some(value.to_string());
    }
    let ip: IpAddr = request.path.strip_prefix("/ip/")?.parse().ok()?;
    let base = &request.base;
    let value = match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [192, 0, 2] => serde_json::json!({
            "rdapConformance": ["rdap_level_0"],
            "objectClassName": "ip network",
            "handle": "NET-192-0-2-0-1",
            "startAddress": "192.0.2.0",
            "endAddress": "192.0.2.255",
            "ipVersion": "v4",
            "name": "TEST-NET-1",
            "type": "ASSIGNED PA",
            "country": "IN",
            "entities": [
                entity("ORG-EM1", "registrant", "Example Mumbai Pvt Ltd", "IN"),
                entity("ABUSE-1", "abuse", "Abuse desk", "IN"),
            ],
            "links": [{ "rel": "self", "href": format!("{base}ip/192.0.2.0"), "value": format!("{base}ip/{ip}") }],
        }),
        // ARIN style: no `country` on the network, the registrant's address has it.
        IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100] => serde_json::json!({
            "objectClassName": "ip network",
            "handle": "NET-198-51-100-0-1",
            "startAddress": "198.51.100.0",
            "endAddress": "198.51.100.255",
            "name": "TEST-NET-2",
            "entities": [{
                "objectClassName": "entity",
                "handle": "TECH-1",
                "roles": ["technical"],
                "entities": [entity("EXBJ", "registrant", "Example Beijing Co", "CN")],
            }],
            "arin_originas0_originautnums": [64500],
            "links": [{ "rel": "self", "href": format!("{base}ip/198.51.100.0") }],
        }),
        // APNIC style: no registrant entity, the holder is in the `description` remark.
        IpAddr::V6(v6) if v6.segments()[..2] == [0x2001, 0x0db8] => serde_json::json!({
            "objectClassName": "ip network",
            "handle": "2001:db8::/32",
            "startAddress": "2001:db8::",
            "endAddress": "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "name": "DOC-V6",
            "country": "SG",
            "remarks": [{ "title": "description", "description": ["Example Singapore Pte Ltd", "Singapore"] }],
            "entities": [
                entity("IRT-EXSG", "abuse", "IRT-EXSG-SG", "SG"),
                entity("EXSG-AP", "administrative", "Network Operations", "SG"),
            ],
            "links": [{ "rel": "self", "href": format!("{base}ip/2001:db8::") }],
        }),
        _ => return None,
    };
    Some(value.to_string())
}

fn entity(handle: &str, role: &str, name: &str, cc: &str) -> serde_json::Value {
    serde_json::json!({
        "objectClassName": "entity",
        "handle": handle,
        "roles": [role],
        "vcardArray": ["vcard", [
            ["version", {}, "text", "4.0"],
            ["fn", {}, "text", name],
            ["kind", {}, "text", "org"],
            ["adr", { "cc": cc, "label": "somewhere" }, "text", ["", "", "", "", "", "", ""]],
        ]],
    })
}

/// What a WHOIS server does with a connection.
pub enum WhoisBehaviour {
    /// Reads the query line and writes `answer(query)`, then closes.
    Answer(Box<dyn Fn(&str) -> String + Send>),
    /// Accepts and holds the connection open without answering until the server stops.
    Silent,
    /// Reads the query and writes this many bytes of garbage (stopping when the client goes).
    Flood(usize),
}

pub struct WhoisServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    queries: Arc<Mutex<Vec<String>>>,
    _running: Running,
}

impl WhoisServer {
    pub fn start(behaviour: WhoisBehaviour) -> WhoisServer {
        let listener = loopback_listener();
        let addr = listener.local_addr().expect("local address");
        let connections = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (counter, seen) = (connections.clone(), queries.clone());
        let mut held: Vec<TcpStream> = Vec::new();
        let running = run(listener, move |mut stream| {
            counter.fetch_add(1, Ordering::SeqCst);
            if let WhoisBehaviour::Silent = behaviour {
                held.push(stream);
                return;
            }
            let query = read_query_line(&mut stream).unwrap_or_default();
            if let Ok(mut seen) = seen.lock() {
                seen.push(query.clone());
            }
            match &behaviour {
                WhoisBehaviour::Answer(answer) => {
                    let _ = stream.write_all(answer(&query).as_bytes());
                }
                WhoisBehaviour::Flood(total) => {
                    let garbage = [b'\xfe'; 64 * 1024];
                    let started = Instant::now();
                    let mut sent = 0;
                    while sent < *total && started.elapsed() < IO_TIMEOUT {
                        match stream.write(&garbage) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => sent += n,
                        }
                    }
                }
                WhoisBehaviour::Silent => {}
            }
        });
        WhoisServer {
            addr,
            connections,
            queries,
            _running: running,
        }
    }

    /// `127.0.0.1:port`, as `RegistryConfig::whois_server` takes it.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }
}

fn read_query_line(stream: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 1024 {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&line).trim().to_string())
}

/// A RIPE-style answer (as RIPE, APNIC and AFRINIC write them) for the IN range.
pub fn ripe_answer(query: &str) -> String {
    format!(
        "% This is the RIPE Database query service.\n\
         % Information related to '192.0.2.0 - 192.0.2.255'\n\
         \n\
         inetnum:        192.0.2.0 - 192.0.2.255\n\
         netname:        EXAMPLE-MUMBAI-NET\n\
         descr:          Example Mumbai network\n\
         country:        IN\n\
         org:            ORG-EM1-RIPE\n\
         status:         ASSIGNED PA\n\
         source:         RIPE\n\
         \n\
         organisation:   ORG-EM1-RIPE\n\
         org-name:       Example Mumbai Pvt Ltd\n\
         country:        IN\n\
         \n\
         route:          192.0.2.0/24\n\
         origin:         AS64501\n\
         \n\
         % query was: {query}\n"
    )
}

/// An ARIN-style answer for the CN range, optionally referring to another server.
pub fn arin_answer(query: &str, referral: Option<&str>) -> String {
    let referral = referral
        .map(|server| format!("ReferralServer: whois://{server}\n"))
        .unwrap_or_default();
    format!(
        "#\n# ARIN WHOIS data and services are subject to the Terms of Use\n#\n\
         \n\
         NetRange:       198.51.100.0 - 198.51.100.255\n\
         CIDR:           198.51.100.0/24\n\
         NetName:        TEST-NET-2\n\
         NetHandle:      NET-198-51-100-0-1\n\
         Parent:         NET198 (NET-198-0-0-0-0)\n\
         NetType:        Direct Allocation\n\
         OriginAS:       AS64500\n\
         Organization:   Example Beijing Co (EXBJ)\n\
         {referral}\
         \n\
         OrgName:        Example Beijing Co\n\
         OrgId:          EXBJ\n\
         City:           Beijing\n\
         Country:        CN\n\
         \n\
         # query was: {query}\n"
    )
}
