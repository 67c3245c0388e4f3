//! Reply TTLs: how many hops away the sender of a reply really was.
//!
//! Owns watching the IP TTL of every TCP and UDP packet this host receives while a run
//! measures, on raw IPv4 sockets (which get a copy of each packet; the kernel still delivers
//! it). A sender starts a packet at TTL 64, 128, 255 (or 32) and every router on the way takes
//! one off, so the TTL that arrives says how far away the sender was. A SYN-ACK "from the
//! target" that a proxy on the first router made arrives with TTL 64: one hop, nearer than
//! routers the trace saw on the path to the target, so not the target's.
//!
//! IPv6 raw sockets do not show the header (the hop limit needs ancillary data): IPv6 replies
//! have no recorded TTL, and the rule does not apply to them. Without raw sockets nothing is
//! watched.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How long one read waits before the watcher looks at its stop flag (and counts an idle
/// moment).
const POLL: Duration = Duration::from_millis(20);

/// A watcher stops by itself after this long, whatever happens to its owner.
const LIFETIME: Duration = Duration::from_secs(3600);

/// Distinct TTLs kept per sender: a path changes rarely; more would only be noise or a flood.
const MAX_TTLS: usize = 8;

/// Senders remembered at most (bounded memory under any load).
const MAX_SENDERS: usize = 100_000;

/// TCP flags of a reply the watcher records.
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Which packets: TCP handshake replies (SYN-ACK, RST) or UDP datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tcp,
    Udp,
}

/// The TTLs seen per sender (address, source port).
#[derive(Debug, Default)]
struct Seen(HashMap<(Kind, Ipv4Addr, u16), BTreeSet<u8>>);

/// How long [`TtlWatcher::settle`] waits at most for the readers to catch up.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// Watches reply TTLs until dropped.
pub struct TtlWatcher {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    /// Per reader: how many times it found its socket empty. A reader whose count moved on
    /// after a moment has read everything that arrived before that moment.
    idle: Vec<Arc<AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

impl TtlWatcher {
    /// Starts watching TCP and UDP replies; `Err` (with the system's words) without raw-socket
    /// privilege.
    pub fn start() -> Result<TtlWatcher, String> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut idle = Vec::new();
        for (protocol, kind) in [(Protocol::TCP, Kind::Tcp), (Protocol::UDP, Kind::Udp)] {
            let socket = Socket::new(Domain::IPV4, Type::RAW, Some(protocol))
                .map_err(|e| format!("raw IPv4 socket: {e}"))?;
            socket
                .set_read_timeout(Some(POLL))
                .map_err(|e| format!("raw IPv4 socket timeout: {e}"))?;
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            let empty = Arc::new(AtomicU64::new(0));
            idle.push(Arc::clone(&empty));
            threads.push(std::thread::spawn(move || {
                watch(socket, kind, &seen, &stop, &empty)
            }));
        }
        Ok(TtlWatcher {
            seen,
            stop,
            idle,
            threads,
        })
    }

    /// Waits (at most a second) until every reader has read what arrived before this call,
    /// so that the replies of probes just made are counted. Call before [`TtlWatcher::ttls`].
    pub fn settle(&self) {
        let before: Vec<u64> = self
            .idle
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect();
        let deadline = Instant::now() + SETTLE_LIMIT;
        while Instant::now() < deadline {
            let caught_up = self
                .idle
                .iter()
                .zip(&before)
                .all(|(c, b)| c.load(Ordering::Acquire) > *b);
            if caught_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The TTLs that arrived from `ip`'s `port` (TCP: SYN-ACK and RST only), smallest first.
    pub fn ttls(&self, kind: Kind, ip: IpAddr, port: u16) -> Vec<u8> {
        let IpAddr::V4(v4) = ip else {
            return Vec::new();
        };
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.0
            .get(&(kind, v4, port))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

impl Drop for TtlWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn watch(mut socket: Socket, kind: Kind, seen: &Mutex<Seen>, stop: &AtomicBool, idle: &AtomicU64) {
    let started = Instant::now();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
        let Ok(n) = socket.read(&mut buf) else {
            // The read timed out: nothing was waiting, everything before is read.
            idle.fetch_add(1, Ordering::Release);
            continue;
        };
        if let Some((sender, port, ttl)) = parse(kind, buf.get(..n).unwrap_or_default()) {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.0.len() >= MAX_SENDERS && !seen.0.contains_key(&(kind, sender, port)) {
                continue;
            }
            let ttls = seen.0.entry((kind, sender, port)).or_default();
            if ttls.len() < MAX_TTLS {
                ttls.insert(ttl);
            }
        }
    }
}

/// The sender, its source port and the IP TTL of one IPv4 packet (for TCP only SYN-ACK and
/// RST segments, the replies to a connect).
fn parse(kind: Kind, packet: &[u8]) -> Option<(Ipv4Addr, u16, u8)> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header = usize::from(first & 0x0f) * 4;
    let ttl = *packet.get(8)?;
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let port = u16::from_be_bytes([*packet.get(header)?, *packet.get(header + 1)?]);
    if kind == Kind::Tcp {
        let flags = *packet.get(header + 13)?;
        let syn_ack = flags & (SYN | ACK) == SYN | ACK;
        if !syn_ack && flags & RST == 0 {
            return None;
        }
    }
    Some((src, port, ttl))
}

/// How many hops away a sender was whose packet arrived with `ttl`: from the nearest common
/// initial TTL at or above it (32, 64, 128, 255). A sender more than 32 hops away that starts
/// at 64 looks nearer than it is, which can only make a reply look intercepted (and so unused),
/// never make an intercepted one look honest.
pub fn hops_away(ttl: u8) -> u8 {
    let initial: u8 = [32u8, 64, 128, 255]
        .into_iter()
        .find(|i| *i >= ttl)
        .unwrap_or(255);
    initial - ttl + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ttl: u8, src: [u8; 4], sport: u16, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[8] = ttl;
        p[9] = 6;
        p[12..16].copy_from_slice(&src);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[33] = flags;
        p
    }

    #[test]
    fn handshake_replies_are_read_and_other_segments_ignored() {
        let syn_ack = packet(62, [203, 0, 113, 200], 443, SYN | ACK);
        assert_eq!(
            parse(Kind::Tcp, &syn_ack),
            Some((Ipv4Addr::new(203, 0, 113, 200), 443, 62))
        );
        assert!(parse(Kind::Tcp, &packet(62, [203, 0, 113, 200], 443, RST)).is_some());
        assert!(parse(Kind::Tcp, &packet(62, [203, 0, 113, 200], 443, ACK)).is_none());
        assert!(parse(Kind::Udp, &packet(62, [203, 0, 113, 53], 53, 0)).is_some());
        assert!(parse(Kind::Tcp, &syn_ack[..10]).is_none());
        assert!(parse(Kind::Tcp, &[0x60; 40]).is_none());
    }

    #[test]
    fn hops_count_from_the_nearest_initial_ttl() {
        assert_eq!(hops_away(64), 1);
        assert_eq!(hops_away(62), 3);
        assert_eq!(hops_away(116), 13);
        assert_eq!(hops_away(255), 1);
        assert_eq!(hops_away(30), 3);
    }
}
