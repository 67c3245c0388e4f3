//! Discovery: what a device actually contacted, read from its own traffic. Owns reading
//! captures (pcap and pcapng as a stream: `packets.rs`; what each frame says: `dissect.rs`), and
//! tallying them into destinations: every remote address the device exchanged packets with, the
//! names it knew that address by (and where each name came from), its ports, flows, packets and
//! bytes in each direction, and when it was first and last seen.
//!
//! # Which side is the device
//!
//! Private, link-local, CGNAT and loopback addresses (and IPv6 ULA and link-local) are local;
//! the device is the local side of a flow with one local and one public end. Traffic between two
//! local addresses is the LAN, not a destination (its DNS answers are still read: a home router
//! is usually the resolver). When both ends are public (a capture on a server, or a VPN exit),
//! the device is the side that opened the flow: the TCP SYN's sender, or the sender of a UDP
//! flow's first packet. Multicast and broadcast are never destinations.
//!
//! # Names
//!
//! A destination's names come from DNS answers anywhere in the capture (the question and every
//! CNAME on the way to the address), the TLS ClientHello's server name (over TCP, or inside a
//! QUIC Initial: `quic.rs`) and the HTTP `Host` of the connections to it. Each name keeps its source. Encrypted DNS (DoT on port 853, DoH to a
//! known resolver) and ClientHellos offering ECH are flagged, so hidden names are visible as
//! hidden.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

mod dissect;
mod har;
mod packets;
mod quic;
mod zeek;

use dissect::{Opening, Packet, Proto};

/// The formats discovery reads, recognised by content rather than by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
    /// HTTP Archive 1.1 or 1.2 (a browser's or proxy's export). Its byte counts are the HTTP
    /// message sizes the browser reported, not IP-layer bytes.
    Har,
    /// Zeek logs (conn, dns, ssl, http), tab-separated or JSON lines. Bytes are `conn.log`'s
    /// `orig_ip_bytes`/`resp_ip_bytes`: the IP layer.
    ZeekTsv,
    ZeekJson,
}

/// Where a destination's name was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    Dns,
    TlsSni,
    HttpHost,
    /// The ClientHello inside a QUIC Initial, decrypted with its public initial keys.
    QuicSni,
    /// A HAR entry's `request.url`, with its `serverIPAddress`.
    Har,
    /// A Zeek log: `ssl.server_name`, `http.host` or `dns.answers`.
    Zeek,
}

impl NameSource {
    /// The name used in JSON, tables and draft policies.
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dns => "dns",
            NameSource::TlsSni => "tls_sni",
            NameSource::HttpHost => "http_host",
            NameSource::QuicSni => "quic_sni",
            NameSource::Har => "har",
            NameSource::Zeek => "zeek",
        }
    }
}

impl Hidden {
    pub fn as_str(self) -> &'static str {
        match self {
            Hidden::Dot => "dot",
            Hidden::Doh => "doh",
            Hidden::Ech => "ech",
        }
    }
}

/// How a destination hid names from the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hidden {
    /// DNS over TLS (port 853): the names asked are encrypted.
    Dot,
    /// DNS over HTTPS to a known public resolver.
    Doh,
    /// Encrypted Client Hello: the server name seen is only the outer, public one.
    Ech,
}

/// Something in a file that could not be read as it should, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Byte offset in the file (for captures) or line number (for text logs).
    pub at: u64,
    pub unit: &'static str,
    pub what: String,
}

impl Problem {
    pub(crate) fn at(offset: u64, what: impl Into<String>) -> Problem {
        Problem {
            at: offset,
            unit: "byte",
            what: what.into(),
        }
    }

    pub(crate) fn line(number: u64, what: impl Into<String>) -> Problem {
        Problem {
            at: number,
            unit: "line",
            what: what.into(),
        }
    }
}

/// The earliest and the latest of the times seen.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl Span {
    pub(crate) fn see(&mut self, at: DateTime<Utc>) {
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }
}

/// What reading a log (HAR, Zeek) gave: records read, their times, problems.
#[derive(Debug, Default)]
pub(crate) struct LogRead {
    pub records: u64,
    pub span: Span,
    pub problems: Vec<Problem>,
}

impl LogRead {
    fn file(self, name: String, format: CaptureFormat) -> CaptureFile {
        CaptureFile {
            file: name,
            format,
            packets: self.records,
            start: self.span.first,
            end: self.span.last,
            problems: self.problems,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.unit, self.at, self.what)
    }
}

/// One file that was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureFile {
    pub file: String,
    pub format: CaptureFormat,
    pub packets: u64,
    #[serde(serialize_with = "crate::time::serialize_opt_micros")]
    pub start: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize_opt_micros")]
    pub end: Option<DateTime<Utc>>,
    /// What could not be read, and where; empty for a clean file.
    pub problems: Vec<Problem>,
}

/// A name and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Naming {
    pub name: String,
    pub source: NameSource,
}

/// A remote address the device exchanged packets with. "Sent" is from the device to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    pub ip: IpAddr,
    pub names: Vec<String>,
    pub name_sources: Vec<NameSource>,
    /// Every name with its source.
    pub named_by: Vec<Naming>,
    /// `tcp/443`, `udp/53`, ... on the destination's side.
    pub ports: Vec<String>,
    pub flows: u64,
    /// Flows this destination opened towards the device (inbound).
    pub flows_opened_by_remote: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    #[serde(serialize_with = "crate::time::serialize_opt_micros")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serialize_opt_micros")]
    pub last_seen: Option<DateTime<Utc>>,
    /// How names to or through this destination were hidden, if they were.
    pub hidden: Vec<Hidden>,
}

/// A DNS answer seen in the capture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub answers: Vec<String>,
    pub resolver: IpAddr,
}

/// Everything discovery found in a set of files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovery {
    pub captures: Vec<CaptureFile>,
    /// By bytes sent, most first.
    pub destinations: Vec<Destination>,
    pub dns: Vec<DnsRecord>,
    /// Names the device used with no address recorded (HAR entries without
    /// `serverIPAddress`): still endpoints to check, located by resolving them.
    pub names_without_address: Vec<Naming>,
}

/// Why discovery could not read a file at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read {}: {source}: check the path and its permissions", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a capture residency reads (pcap, pcapng, HAR or a Zeek log, by its first \
         bytes): capture with `tcpdump -w FILE` or PCAPdroid's pcap export",
        path.display()
    )]
    Unrecognised { path: PathBuf },
}

/// Reads one capture from memory: [`discover`] for bytes that are not a file (the fuzz target,
/// tests).
pub fn discover_bytes(name: &str, bytes: &[u8]) -> Discovery {
    let mut tally = Tally::default();
    let file = read_stream(name, bytes, &mut tally);
    tally.finish(vec![file])
}

/// Reads every file and tallies what the device contacted.
pub fn discover(paths: &[PathBuf]) -> Result<Discovery, CaptureError> {
    let mut tally = Tally::default();
    let mut captures = Vec::new();
    for path in paths {
        captures.push(read_file(path, &mut tally)?);
    }
    Ok(tally.finish(captures))
}

fn read_file(path: &Path, tally: &mut Tally) -> Result<CaptureFile, CaptureError> {
    use std::io::Read as _;
    let failed = |source| CaptureError::Open {
        path: path.to_path_buf(),
        source,
    };
    let open = || std::fs::File::open(path).map_err(failed);
    let mut head = Vec::with_capacity(512);
    open()?.take(512).read_to_end(&mut head).map_err(failed)?;
    let name = path.display().to_string();
    // An empty file goes to the capture reader, which says it is empty.
    let sniffed = sniff(&head).or(head.is_empty().then_some(Sniffed::Capture));
    match sniffed {
        Some(Sniffed::Capture) => {
            let file = std::io::BufReader::with_capacity(1 << 16, open()?);
            Ok(read_stream(&name, file, tally))
        }
        Some(Sniffed::Har) => {
            let bytes = std::fs::read(path).map_err(failed)?;
            Ok(har::read(&bytes, tally).file(name, CaptureFormat::Har))
        }
        Some(Sniffed::Zeek { json }) => {
            let file = std::io::BufReader::with_capacity(1 << 16, open()?);
            let format = if json {
                CaptureFormat::ZeekJson
            } else {
                CaptureFormat::ZeekTsv
            };
            Ok(zeek::read(file, json, tally).file(name, format))
        }
        None => Err(CaptureError::Unrecognised {
            path: path.to_path_buf(),
        }),
    }
}

enum Sniffed {
    Capture,
    Har,
    Zeek { json: bool },
}

/// What a file is, from its first bytes: pcap and pcapng by magic number; a Zeek log by its
/// `#separator` header or a first JSON line with Zeek's fields; otherwise JSON is a HAR.
fn sniff(head: &[u8]) -> Option<Sniffed> {
    if packets::is_capture(head) {
        return Some(Sniffed::Capture);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &text[start..];
    // Zeek's own header, possibly after comment lines (btest baselines start with `###`).
    let has = |k: &[u8]| text.windows(k.len()).any(|w| w == k);
    if text.starts_with(b"#") && (has(b"#separator") || has(b"#fields")) {
        return Some(Sniffed::Zeek { json: false });
    }
    if text.starts_with(b"{") {
        let first_line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let zeekish = [&b"\"_path\""[..], b"\"uid\"", b"\"id.orig_h\""]
            .iter()
            .any(|k| first_line.windows(k.len()).any(|w| w == *k));
        return Some(if zeekish {
            Sniffed::Zeek { json: true }
        } else {
            Sniffed::Har
        });
    }
    None
}

fn read_stream(name: &str, file: impl std::io::Read + Send, tally: &mut Tally) -> CaptureFile {
    let mut span = Span::default();
    let mut undecoded = 0u64;
    let read = packets::read_frames(file, |frame| {
        if let Some(at) = frame.at {
            span.see(at);
        }
        if let packets::Link::Other(_) = frame.link {
            undecoded += 1;
        } else if let Some(p) = dissect::packet(frame.link, frame.data) {
            tally.packet(&p, frame.at);
        }
    });
    let mut problems = read.problems;
    if undecoded > 0 {
        problems.push(Problem::at(
            0,
            format!("{undecoded} frame(s) have a link type residency does not read; not counted"),
        ));
    }
    CaptureFile {
        file: name.to_string(),
        format: if read.pcapng {
            CaptureFormat::Pcapng
        } else {
            CaptureFormat::Pcap
        },
        packets: read.frames,
        start: span.first,
        end: span.last,
        problems,
    }
}

/// Local addresses: the device's side (see the module doc).
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Addresses that are never a destination: many receivers at once.
fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// Public resolvers that answer DNS over HTTPS on port 443, by address and by name.
const DOH_ADDRESSES: &[&str] = &[
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2620:fe::fe",
    "2620:fe::9",
];
const DOH_NAMES: &[&str] = &[
    "dns.google",
    "dns.google.com",
    "cloudflare-dns.com",
    "mozilla.cloudflare-dns.com",
    "one.one.one.one",
    "dns.quad9.net",
    "doh.opendns.com",
    "dns.nextdns.io",
    "doh.cleanbrowsing.org",
    "dns.adguard-dns.com",
];

/// The most a client's first bytes are buffered for, per connection: a ClientHello with
/// post-quantum key shares is about 2 KB, and HTTP headers rarely pass 8 KB.
const OPENING_LIMIT: usize = 16 * 1024;

/// A flow: (transport, device address, device port, remote address, remote port).
type FlowKey = (Proto, IpAddr, u16, IpAddr, u16);

#[derive(Default)]
struct Flow {
    /// The client's first bytes, while the opening is still being read.
    opening: Option<Vec<u8>>,
    /// The next TCP sequence number expected from the client.
    next_seq: Option<u32>,
    /// A QUIC ClientHello being gathered, and how many client datagrams were tried.
    quic: Option<quic::Hello>,
    tried: u8,
    done: bool,
}

/// Client datagrams of a UDP flow tried as QUIC Initials before giving up on it.
const QUIC_TRIES: u8 = 6;

#[derive(Default)]
struct Remote {
    names: BTreeSet<Naming>,
    ports: BTreeSet<(Proto, u16)>,
    flows: u64,
    inbound: u64,
    packets_sent: u64,
    packets_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    seen: Span,
    hidden: BTreeSet<Hidden>,
}

/// The running totals over every file read.
#[derive(Default)]
struct Tally {
    flows: HashMap<FlowKey, Flow>,
    remotes: HashMap<IpAddr, Remote>,
    /// Names learnt from DNS per address (applied to destinations at the end, since an answer
    /// may be captured after the connection it named, e.g. across files).
    dns_names: HashMap<IpAddr, BTreeSet<(String, NameSource)>>,
    dns: BTreeSet<DnsRecord>,
    /// Names from logs, applied at the end like DNS names.
    log_names: HashMap<IpAddr, BTreeSet<Naming>>,
    names_without_address: BTreeSet<Naming>,
}

/// One flow as a log records it.
#[derive(Debug, Clone)]
struct FlowRecord {
    orig: IpAddr,
    resp: IpAddr,
    proto: Proto,
    orig_port: Option<u16>,
    resp_port: Option<u16>,
    orig_packets: u64,
    orig_bytes: u64,
    resp_packets: u64,
    resp_bytes: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    names: Vec<Naming>,
}

impl Tally {
    fn packet(&mut self, p: &Packet<'_>, at: Option<DateTime<Utc>>) {
        if p.proto == Proto::Udp && (p.sport == 53 || p.sport == 5353) {
            self.dns_answer(p, p.payload);
        }
        if p.proto == Proto::Tcp && p.sport == 53 && p.payload.len() > 2 {
            self.dns_answer(p, &p.payload[2..]);
        }
        let Some((key, sent)) = self.orient(p) else {
            return;
        };
        let new_flow = !self.flows.contains_key(&key);
        let flow = self.flows.entry(key).or_default();
        let remote = self.remotes.entry(key.3).or_default();
        if new_flow {
            remote.flows += 1;
            if !sent {
                remote.inbound += 1;
            }
            remote.ports.insert((key.0, key.4));
            if key.4 == 853 {
                remote.hidden.insert(Hidden::Dot);
            }
            if key.0 == Proto::Tcp
                && key.4 == 443
                && DOH_ADDRESSES.iter().any(|a| a.parse() == Ok(key.3))
            {
                remote.hidden.insert(Hidden::Doh);
            }
        }
        if sent {
            remote.packets_sent += 1;
            remote.bytes_sent += p.ip_len;
        } else {
            remote.packets_received += 1;
            remote.bytes_received += p.ip_len;
        }
        if let Some(at) = at {
            remote.seen.see(at);
        }
        if sent && p.proto == Proto::Tcp && !flow.done {
            read_opening(flow, remote, p);
        }
        if sent && p.proto == Proto::Udp && !flow.done {
            read_quic(flow, remote, p);
        }
    }

    /// The flow key of `p` and whether it goes from the device (see the module doc); `None` for
    /// LAN traffic and group addresses.
    fn orient(&self, p: &Packet<'_>) -> Option<(FlowKey, bool)> {
        if is_group(p.dst) || is_group(p.src) {
            return None;
        }
        let out: FlowKey = (p.proto, p.src, p.sport, p.dst, p.dport);
        let back: FlowKey = (p.proto, p.dst, p.dport, p.src, p.sport);
        match (is_local(p.src), is_local(p.dst)) {
            (true, false) => Some((out, true)),
            (false, true) => Some((back, false)),
            (true, true) => None,
            (false, false) => {
                if self.flows.contains_key(&out) {
                    Some((out, true))
                } else if self.flows.contains_key(&back) {
                    Some((back, false))
                } else if p.proto == Proto::Tcp && p.syn && p.ack {
                    // The answer to a SYN we did not see: the other side opened it.
                    Some((back, false))
                } else {
                    Some((out, true))
                }
            }
        }
    }

    /// A flow known from a log rather than from packets (Zeek `conn.log`, a HAR entry).
    fn flow_record(&mut self, r: FlowRecord) {
        let (remote_ip, sent_by_orig) = match (is_local(r.orig), is_local(r.resp)) {
            (true, true) => return,
            (false, true) => (r.orig, false),
            _ => (r.resp, true),
        };
        if is_group(remote_ip) {
            return;
        }
        let remote = self.remotes.entry(remote_ip).or_default();
        remote.flows += 1;
        let (to_remote, from_remote) = if sent_by_orig {
            (
                (r.orig_packets, r.orig_bytes),
                (r.resp_packets, r.resp_bytes),
            )
        } else {
            remote.inbound += 1;
            (
                (r.resp_packets, r.resp_bytes),
                (r.orig_packets, r.orig_bytes),
            )
        };
        remote.packets_sent += to_remote.0;
        remote.bytes_sent += to_remote.1;
        remote.packets_received += from_remote.0;
        remote.bytes_received += from_remote.1;
        let port = if sent_by_orig {
            r.resp_port
        } else {
            r.orig_port
        };
        if let Some(port) = port {
            remote.ports.insert((r.proto, port));
            if port == 853 {
                remote.hidden.insert(Hidden::Dot);
            }
        }
        for at in [r.first, r.last].into_iter().flatten() {
            remote.seen.see(at);
        }
        remote.names.extend(r.names);
    }

    /// A name for `ip` from a log line that is not a flow (Zeek `ssl.log`, `http.log`).
    fn name(&mut self, ip: IpAddr, name: String, source: NameSource) {
        if is_name(&name) {
            self.log_names
                .entry(ip)
                .or_default()
                .insert(Naming { name, source });
        }
    }

    fn dns_answer(&mut self, p: &Packet<'_>, payload: &[u8]) {
        let Some(seen) = dissect::dns_response(payload) else {
            return;
        };
        for (ip, names) in &seen.addresses {
            self.dns_names
                .entry(*ip)
                .or_default()
                .extend(names.iter().map(|n| (n.clone(), NameSource::Dns)));
        }
        self.dns.insert(DnsRecord {
            name: seen.name,
            rtype: seen.rtype,
            answers: seen.answers,
            resolver: p.src,
        });
    }

    fn finish(mut self, captures: Vec<CaptureFile>) -> Discovery {
        for (ip, names) in std::mem::take(&mut self.log_names) {
            if let Some(remote) = self.remotes.get_mut(&ip) {
                remote.names.extend(names);
            } else if !is_local(ip) && !is_group(ip) {
                // An ssl.log line without its conn.log: the server is still a destination.
                self.remotes.entry(ip).or_default().names.extend(names);
            }
        }
        for (ip, names) in std::mem::take(&mut self.dns_names) {
            if let Some(remote) = self.remotes.get_mut(&ip) {
                remote.names.extend(
                    names
                        .into_iter()
                        .map(|(name, source)| Naming { name, source }),
                );
            }
        }
        let mut destinations: Vec<Destination> = self
            .remotes
            .into_iter()
            .map(|(ip, r)| {
                let names: BTreeSet<&str> = r.names.iter().map(|n| n.name.as_str()).collect();
                let sources: BTreeSet<NameSource> = r.names.iter().map(|n| n.source).collect();
                Destination {
                    ip,
                    names: names.into_iter().map(str::to_string).collect(),
                    name_sources: sources.into_iter().collect(),
                    ports: r
                        .ports
                        .iter()
                        .map(|(proto, port)| match proto {
                            Proto::Tcp | Proto::Udp => format!("{}/{port}", proto.name()),
                            Proto::Other(_) => proto.name(),
                        })
                        .collect(),
                    named_by: r.names.into_iter().collect(),
                    flows: r.flows,
                    flows_opened_by_remote: r.inbound,
                    packets_sent: r.packets_sent,
                    packets_received: r.packets_received,
                    bytes_sent: r.bytes_sent,
                    bytes_received: r.bytes_received,
                    first_seen: r.seen.first,
                    last_seen: r.seen.last,
                    hidden: r.hidden.into_iter().collect(),
                }
            })
            .collect();
        destinations.sort_by(|a, b| b.bytes_sent.cmp(&a.bytes_sent).then(a.ip.cmp(&b.ip)));
        Discovery {
            captures,
            destinations,
            dns: self.dns.into_iter().collect(),
            names_without_address: self.names_without_address.into_iter().collect(),
        }
    }
}

/// Whether `name` names something: not empty, and not a bare address (as `Host` and SNI may
/// carry).
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.parse::<IpAddr>().is_err()
}

impl Remote {
    /// Notes what a ClientHello (over TCP or in a QUIC Initial) to port `port` says about hidden
    /// names, and passes its server name on.
    fn hello(&mut self, sni: Option<String>, ech: bool, port: u16) -> Option<String> {
        if ech {
            self.hidden.insert(Hidden::Ech);
        }
        // The same resolvers answer DNS over TLS on 853: that is DoT, not DoH.
        if port != 853 && sni.as_deref().is_some_and(|n| DOH_NAMES.contains(&n)) {
            self.hidden.insert(Hidden::Doh);
        }
        sni
    }

    fn named(&mut self, name: Option<String>, source: NameSource) {
        if let Some(name) = name.filter(|n| is_name(n)) {
            self.names.insert(Naming { name, source });
        }
    }
}

/// Tries the client's first datagrams of a UDP flow as QUIC Initials, until one completes the
/// ClientHello.
fn read_quic(flow: &mut Flow, remote: &mut Remote, p: &Packet<'_>) {
    flow.tried += 1;
    if flow.tried > QUIC_TRIES {
        flow.done = true;
        flow.quic = None;
        return;
    }
    let hello = flow.quic.get_or_insert_with(quic::Hello::default);
    let Some(opening) = hello.read(p.payload) else {
        return;
    };
    if let Opening::Tls { sni, ech } = opening {
        let sni = remote.hello(sni, ech, p.dport);
        remote.named(sni, NameSource::QuicSni);
    }
    flow.done = true;
    flow.quic = None;
}

/// Buffers the client's first bytes of a TCP connection, in sequence order, until they name
/// the server (TLS or HTTP) or prove they never will.
fn read_opening(flow: &mut Flow, remote: &mut Remote, p: &Packet<'_>) {
    if p.syn {
        flow.next_seq = Some(p.seq.wrapping_add(1));
        return;
    }
    if p.payload.is_empty() {
        return;
    }
    match flow.next_seq {
        // A retransmission of bytes already read.
        Some(next) if p.seq != next && p.seq.wrapping_sub(next) > u32::MAX / 2 => return,
        // A gap: bytes missing from the capture; the opening cannot be read in order.
        Some(next) if p.seq != next => {
            flow.done = true;
            flow.opening = None;
            return;
        }
        _ => {}
    }
    flow.next_seq = Some(p.seq.wrapping_add(p.payload.len() as u32));
    let buffer = flow.opening.get_or_insert_with(Vec::new);
    let room = OPENING_LIMIT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&p.payload[..p.payload.len().min(room)]);
    match dissect::opening(buffer) {
        Opening::More if buffer.len() < OPENING_LIMIT => return,
        Opening::Tls { sni, ech } => {
            let sni = remote.hello(sni, ech, p.dport);
            remote.named(sni, NameSource::TlsSni);
        }
        Opening::Http { host } => remote.named(host, NameSource::HttpHost),
        Opening::More | Opening::Other => {}
    }
    flow.done = true;
    flow.opening = None;
}
