//! What one captured frame says: its IP and transport layers (`etherparse`, tolerant of frames
//! cut short by the snaplen; PPPoE sessions unwrapped here), and the names carried in its payload: DNS answers (`hickory-proto`),
//! the TLS ClientHello's server name (`tls-parser`) and the HTTP `Host` header (`httparse`).

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::RData;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

use super::packets::Link;

/// The transport of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Other(u8),
}

impl Proto {
    pub(crate) fn name(self) -> String {
        match self {
            Proto::Tcp => "tcp".into(),
            Proto::Udp => "udp".into(),
            Proto::Other(1) => "icmp".into(),
            Proto::Other(58) => "icmpv6".into(),
            Proto::Other(n) => format!("ip{n}"),
        }
    }
}

/// The layers of one IP packet that discovery reads.
#[derive(Debug)]
pub(crate) struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub sport: u16,
    pub dport: u16,
    /// Length at the IP layer, from the IP header (so frames cut by the snaplen count in full).
    pub ip_len: u64,
    /// TCP only: SYN, ACK and the sequence number.
    pub syn: bool,
    pub ack: bool,
    pub seq: u32,
    /// Transport payload as captured (may be cut short).
    pub payload: &'a [u8],
}

/// The IP packet inside a frame of `link`, or `None` for frames that carry no IP (ARP, LLDP).
pub(crate) fn packet(link: Link, data: &[u8]) -> Option<Packet<'_>> {
    let sliced = match link {
        Link::Ethernet => LaxSlicedPacket::from_ethernet(data).ok()?,
        Link::RawIp => LaxSlicedPacket::from_ip(data).ok()?,
        Link::LinuxSll => {
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(16..)?)
        }
        Link::LinuxSll2 => {
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(20..)?)
        }
        Link::Null | Link::Loop => LaxSlicedPacket::from_ip(data.get(4..)?).ok()?,
        Link::Other(_) => return None,
    };
    let sliced = match sliced.net {
        None => pppoe(&sliced)?,
        Some(_) => sliced,
    };
    let (src, dst, ip_len, number) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                u64::from(h.total_len()),
                v4.payload_ip_number().0,
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                u64::from(h.payload_length()) + 40,
                v6.payload().ip_number.0,
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let mut p = Packet {
        src,
        dst,
        proto: Proto::Other(number),
        sport: 0,
        dport: 0,
        ip_len,
        syn: false,
        ack: false,
        seq: 0,
        payload: &[],
    };
    match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            p.proto = Proto::Tcp;
            p.sport = tcp.source_port();
            p.dport = tcp.destination_port();
            p.syn = tcp.syn();
            p.ack = tcp.ack();
            p.seq = tcp.sequence_number();
            p.payload = tcp.payload();
        }
        Some(TransportSlice::Udp(udp)) => {
            p.proto = Proto::Udp;
            p.sport = udp.source_port();
            p.dport = udp.destination_port();
            p.payload = udp.payload();
        }
        // A TCP or UDP header cut short by the snaplen still names the transport.
        _ if number == 6 => p.proto = Proto::Tcp,
        _ if number == 17 => p.proto = Proto::Udp,
        _ => {}
    }
    Some(p)
}

/// The IP packet inside a PPPoE session frame (a DSL line's traffic captured at the access
/// point), which `etherparse` leaves as an unknown ether type: 6 bytes of PPPoE header, then
/// the 2-byte PPP protocol (RFC 2516, RFC 1661).
fn pppoe<'a>(outer: &LaxSlicedPacket<'a>) -> Option<LaxSlicedPacket<'a>> {
    const PPPOE_SESSION: u16 = 0x8864;
    let (ether_type, payload) = match outer.link_exts.last() {
        Some(ext) => ext.payload().map(|p| (p.ether_type, p.payload))?,
        None => outer
            .link
            .as_ref()?
            .ether_payload()
            .map(|p| (p.ether_type, p.payload))?,
    };
    if ether_type.0 != PPPOE_SESSION {
        return None;
    }
    match payload.get(6..8)? {
        [0x00, 0x21] | [0x00, 0x57] => LaxSlicedPacket::from_ip(payload.get(8..)?).ok(),
        _ => None,
    }
}

/// A DNS response seen in the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsSeen {
    pub name: String,
    pub rtype: String,
    /// Addresses and CNAME targets, in answer order.
    pub answers: Vec<String>,
    /// Every address answered, with the names that led to it (the question, then the chain).
    pub addresses: Vec<(IpAddr, Vec<String>)>,
}

/// The DNS response in `payload`, if it is one.
pub(crate) fn dns_response(payload: &[u8]) -> Option<DnsSeen> {
    let message = Message::from_vec(payload).ok()?;
    if message.metadata.message_type != MessageType::Response {
        return None;
    }
    let query = message.queries.first()?;
    let name = trim_dot(&query.name.to_ascii());
    let mut chain = vec![name.clone()];
    let mut seen = DnsSeen {
        name,
        rtype: query.query_type.to_string(),
        answers: Vec::new(),
        addresses: Vec::new(),
    };
    for record in &message.answers {
        match &record.data {
            RData::A(a) => {
                seen.answers.push(a.0.to_string());
                seen.addresses.push((IpAddr::V4(a.0), chain.clone()));
            }
            RData::AAAA(a) => {
                seen.answers.push(a.0.to_string());
                seen.addresses.push((IpAddr::V6(a.0), chain.clone()));
            }
            RData::CNAME(target) => {
                let target = trim_dot(&target.0.to_ascii());
                seen.answers.push(target.clone());
                if !chain.contains(&target) {
                    chain.push(target);
                }
            }
            _ => {}
        }
    }
    Some(seen)
}

fn trim_dot(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// What the first bytes a client sent on a TCP connection say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A TLS ClientHello: its server name (none for a ClientHello without one), and whether it
    /// offers Encrypted Client Hello (then the name is only the outer, public one).
    Tls { sni: Option<String>, ech: bool },
    /// An HTTP request and its `Host` (without a port).
    Http { host: Option<String> },
    /// Not enough bytes yet.
    More,
    /// Neither: nothing to learn from this connection.
    Other,
}

/// ECH's extension code point (draft-ietf-tls-esni).
const ECH_EXTENSION: u16 = 0xfe0d;

/// Reads the start of a client's byte stream.
pub(crate) fn opening(stream: &[u8]) -> Opening {
    match stream.first() {
        None => Opening::More,
        Some(0x16) => tls_opening(stream),
        Some(b'A'..=b'Z') => http_opening(stream),
        Some(_) => Opening::Other,
    }
}

fn tls_opening(stream: &[u8]) -> Opening {
    if stream.len() < 5 {
        return Opening::More;
    }
    let record = 5 + usize::from(u16::from_be_bytes([stream[3], stream[4]]));
    if stream.len() < record {
        return Opening::More;
    }
    match tls_parser::parse_tls_plaintext(&stream[..record]) {
        Ok((_, plain)) => plain
            .msg
            .iter()
            .find_map(|m| match m {
                TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) => {
                    Some(hello_names(hello.ext))
                }
                _ => None,
            })
            .unwrap_or(Opening::Other),
        // A ClientHello split over several records is rare; it is not reassembled.
        Err(_) => Opening::Other,
    }
}

/// The server name and ECH offer in a ClientHello's extensions (also for QUIC's).
pub(crate) fn hello_names(extensions: Option<&[u8]>) -> Opening {
    let Some(Ok((_, extensions))) = extensions.map(tls_parser::parse_tls_extensions) else {
        return Opening::Tls {
            sni: None,
            ech: false,
        };
    };
    let mut sni = None;
    let mut ech = false;
    for e in extensions {
        match e {
            TlsExtension::SNI(names) => {
                sni = names
                    .first()
                    .and_then(|(_, n)| std::str::from_utf8(n).ok())
                    .map(trim_dot);
            }
            TlsExtension::Unknown(kind, _) if kind.0 == ECH_EXTENSION => ech = true,
            _ => {}
        }
    }
    Opening::Tls { sni, ech }
}

fn http_opening(stream: &[u8]) -> Opening {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(stream) {
        Ok(httparse::Status::Complete(_)) => {
            let host = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(host_without_port);
            Opening::Http { host }
        }
        Ok(httparse::Status::Partial) => Opening::More,
        Err(_) => Opening::Other,
    }
}

/// `example.com:8080` → `example.com`; `[2001:db8::1]:80` → `2001:db8::1`.
pub(crate) fn host_without_port(host: &str) -> String {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_ascii_lowercase();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => {
            name.to_ascii_lowercase()
        }
        _ => host.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_hosts_lose_their_port_and_case() {
        let get = b"GET / HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            opening(get),
            Opening::Http {
                host: Some("example.com".into())
            }
        );
        assert_eq!(opening(b"GET / HTTP/1.1\r\nHo"), Opening::More);
        assert_eq!(host_without_port("[2001:db8::1]:80"), "2001:db8::1");
        assert_eq!(host_without_port("192.0.2.7"), "192.0.2.7");
        assert_eq!(opening(b"\x00\x01binary"), Opening::Other);
    }

    #[test]
    fn a_short_tls_record_waits_for_more() {
        assert_eq!(
            opening(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
            Opening::More
        );
    }
}
