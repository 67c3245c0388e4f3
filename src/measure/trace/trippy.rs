//! The real tracer: trippy-core on raw sockets, one blocking trace per address.
//!
//! Owns turning [`TraceSettings`] into a trippy-core tracer, running a bounded number of rounds
//! on tokio's blocking pool, and reading trippy's per-TTL state into a [`TracePath`]. Also owns
//! keeping concurrent traces apart: each gets its own ICMP identifier, and each UDP or TCP trace
//! its own window of sequence numbers (which are the source ports of its probes).
//!
//! trippy-core's API is marked unstable, so it is pinned to an exact version in Cargo.toml.

use std::cell::Cell;
use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use trippy_core::{
    Builder, CompletionReason, MAX_TTL, Port, PortDirection, PrivilegeMode,
    Protocol as TrippyProtocol, State,
};

use super::privilege::check_privilege;
use super::{Hop, Protocol, RttSample, Trace, TraceError, TracePath, TraceSettings, TraceStatus};

/// How long a round goes on after the last reply once the target has answered, so replies to
/// probes still in flight are counted. trippy's default is 100 ms, which made it most of a
/// trace's cost (measured in the lab: 153 ms for a 20 ms path); routers' replies to lower
/// TTLs normally arrive before the target's, and later rounds catch a straggler.
const GRACE: Duration = Duration::from_millis(30);

/// How long the tracer waits for a reply before sending its next probe. trippy's 10 ms default
/// paced probes 10 ms apart whenever no reply was waiting.
const READ_TIMEOUT: Duration = Duration::from_millis(2);

/// Most probes in flight whose TTL has not been answered yet (trippy's default).
const MAX_INFLIGHT: u8 = 24;

/// Sequence numbers handed out to traces: from the classic traceroute base port up to the
/// highest start trippy accepts (`u16::MAX` less two rounds of 512). For UDP and TCP the
/// sequence number *is* the source port.
const SEQUENCE_FIRST: u16 = 33434;
const SEQUENCE_END: u16 = u16::MAX - 1024;

/// Spare sequence numbers per round beyond one per TTL: TCP re-issues a probe on the next
/// sequence when its source port is taken.
const SEQUENCE_SLACK_PER_ROUND: u32 = 8;

/// trippy takes any reply whose sequence number is within this many of its round's first one
/// as its own (`MAX_SEQUENCE_PER_ROUND`), so live windows keep this gap after their last number.
const SEQUENCE_GUARD: u32 = 512;

/// Longest a UDP or TCP trace waits for a free sequence window before sharing one.
const MAX_WINDOW_WAIT: Duration = Duration::from_secs(60);

/// Traces with trippy-core. Needs raw sockets (root or `CAP_NET_RAW`); without them every trace
/// is `NotMeasured` with the reason and how to grant the privilege.
///
/// How [`TraceSettings`] are applied: `rounds` rounds (trippy's `max_rounds`), each sending one
/// probe per TTL up to `max_hops` (fewer once the target's TTL is known) and ending when the
/// target has answered and no reply came for 30 ms, or at `round_timeout` whatever happened
/// (trippy's `max_round_duration`; also the TCP connect timeout). The next round starts at once,
/// so a trace takes at most about `rounds × round_timeout`. At most 24 TTLs are probed ahead
/// of the last one that answered. UDP and TCP probes go to the fixed `port`.
///
/// What comes back: per TTL, the address that answered most often (others in `other_addrs`),
/// probes sent and answered, best and average RTT. `reached` when the target itself answered
/// in some round: an echo reply (ICMP), port unreachable from the target (UDP), or SYN-ACK *or*
/// RST (TCP: trippy counts a refused connection as the target answering). TTLs past the
/// target are dropped. When nothing answered at any TTL the path has no hops.
#[derive(Debug, Clone)]
pub struct TrippyTracer {
    settings: TraceSettings,
    /// The privilege check made once at construction; traces without it are not attempted.
    privilege: Result<(), TraceError>,
}

impl TrippyTracer {
    /// A tracer with these settings. Checks raw-socket privilege now, once.
    pub fn new(settings: TraceSettings) -> TrippyTracer {
        TrippyTracer {
            settings,
            privilege: check_privilege(),
        }
    }

    pub fn settings(&self) -> TraceSettings {
        self.settings
    }

    /// Whether traces can be made; the error says what to do otherwise.
    pub fn privilege(&self) -> Result<(), &TraceError> {
        self.privilege.as_ref().map(|_| ())
    }
}

impl Trace for TrippyTracer {
    async fn handshake(&self, target: SocketAddr, probes: u32, timeout: Duration) -> RttSample {
        super::tcp_connect_rtt(target, probes, timeout).await
    }

    async fn trace(&self, target: IpAddr) -> TracePath {
        let settings = self.settings;
        if let Err(err) = &self.privilege {
            return not_measured(target, &settings, err.to_string());
        }
        if let Err(err) = validate(&settings) {
            return not_measured(target, &settings, err.to_string());
        }
        // trippy's run blocks its thread for the whole trace (it polls its sockets).
        match tokio::task::spawn_blocking(move || run_trace(target, &settings)).await {
            Ok(path) => path,
            Err(err) => not_measured(
                target,
                &settings,
                format!("the trace thread failed ({err}): a bug, please report it"),
            ),
        }
    }
}

/// Settings trippy would reject or that would trace forever.
pub(super) fn validate(settings: &TraceSettings) -> Result<(), TraceError> {
    let bad = |reason: String| Err(TraceError::Settings(reason));
    if settings.max_hops == 0 || settings.max_hops > MAX_TTL {
        return bad(format!(
            "max_hops is {}: use 1 to {MAX_TTL}",
            settings.max_hops
        ));
    }
    if settings.rounds == 0 {
        return bad("rounds is 0: use at least 1".to_string());
    }
    if settings.protocol != Protocol::Icmp && settings.port == 0 {
        return bad("port is 0: UDP and TCP traces need a destination port".to_string());
    }
    Ok(())
}

/// A path that was not measured, with why.
fn not_measured(target: IpAddr, settings: &TraceSettings, reason: String) -> TracePath {
    TracePath {
        target,
        protocol: settings.protocol,
        port: port_of(settings),
        status: TraceStatus::NotMeasured(reason),
        reached: false,
        hops: Vec::new(),
    }
}

fn port_of(settings: &TraceSettings) -> Option<u16> {
    match settings.protocol {
        Protocol::Icmp => None,
        Protocol::Udp | Protocol::Tcp => Some(settings.port),
    }
}

/// Runs one trace to completion on the current thread. Bounded: `rounds` rounds of at most
/// `round_timeout` each (trippy ends a round at its maximum duration whatever happened).
fn run_trace(target: IpAddr, settings: &TraceSettings) -> TracePath {
    let (protocol, port_direction) = match settings.protocol {
        Protocol::Icmp => (TrippyProtocol::Icmp, PortDirection::None),
        // Fixed destination port so firewalls that let the service through let probes through;
        // the source port varies with the sequence number.
        Protocol::Udp => (
            TrippyProtocol::Udp,
            PortDirection::FixedDest(Port(settings.port)),
        ),
        Protocol::Tcp => (
            TrippyProtocol::Tcp,
            PortDirection::FixedDest(Port(settings.port)),
        ),
    };
    // ICMP replies are told apart by the trace identifier; UDP and TCP ones need their own
    // source ports (see `SequenceWindow`).
    let window = match settings.protocol {
        Protocol::Icmp => None,
        Protocol::Udp | Protocol::Tcp => Some(SequenceWindow::allocate(
            settings
                .rounds
                .saturating_mul(u32::from(settings.max_hops) + SEQUENCE_SLACK_PER_ROUND),
            settings
                .round_timeout
                .saturating_mul(settings.rounds)
                .min(MAX_WINDOW_WAIT),
        )),
    };
    let trace_id = TraceId::allocate();
    let built = Builder::new(target)
        .privilege_mode(PrivilegeMode::Privileged)
        .protocol(protocol)
        .port_direction(port_direction)
        .trace_identifier(trace_id.0)
        .initial_sequence(window.as_ref().map_or(SEQUENCE_FIRST, |w| w.start))
        .max_ttl(settings.max_hops)
        .max_inflight(MAX_INFLIGHT.min(settings.max_hops))
        .max_rounds(Some(usize::try_from(settings.rounds).unwrap_or(usize::MAX)))
        // Rounds follow each other at once: the round count, not a clock, bounds the trace.
        .min_round_duration(Duration::ZERO)
        .max_round_duration(settings.round_timeout)
        .tcp_connect_timeout(settings.round_timeout)
        .grace_duration(GRACE.min(settings.round_timeout))
        .read_timeout(READ_TIMEOUT)
        .build();
    let tracer = match built {
        Ok(tracer) => tracer,
        Err(err) => return not_measured(target, settings, format!("cannot trace: {err}")),
    };
    // The lowest TTL at which the target answered in any round (trippy reports it as the
    // round's largest TTL when the round ended because the target was found).
    let target_ttl: Cell<Option<u8>> = Cell::new(None);
    let run = tracer.run_with(|round| {
        if round.reason == CompletionReason::TargetFound {
            let ttl = round.largest_ttl.0;
            target_ttl.set(Some(target_ttl.get().map_or(ttl, |t| t.min(ttl))));
        }
    });
    // Only now may another trace reuse the identifier and the ports.
    drop((window, trace_id));
    if let Err(err) = run {
        return not_measured(target, settings, format!("trace failed: {err}"));
    }
    let state = tracer.snapshot();
    let target_ttl = target_ttl.get();
    TracePath {
        target,
        protocol: settings.protocol,
        port: port_of(settings),
        status: TraceStatus::Measured,
        reached: target_ttl.is_some(),
        hops: trim_after_target(hops_from_state(&state), target_ttl),
    }
}

/// Every TTL trippy recorded, in order.
fn hops_from_state(state: &State) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    for hop in state.hops() {
        let counts: Vec<(IpAddr, usize)> = hop
            .addrs_with_counts()
            .map(|(addr, count)| (*addr, *count))
            .collect();
        let (addr, other_addrs) = pick_addrs(&counts);
        // A TTL inside the recorded range that no probe was sent at has ttl 0 in trippy's
        // state; its place in the list says which TTL it is.
        let ttl = match hop.ttl() {
            0 => hops.last().map_or(1, |h: &Hop| h.ttl.saturating_add(1)),
            ttl => ttl,
        };
        let received = count_u32(hop.total_recv());
        hops.push(Hop {
            ttl,
            addr,
            other_addrs,
            sent: count_u32(hop.total_sent()),
            received,
            best_rtt_ms: hop.best_ms(),
            avg_rtt_ms: (received > 0).then(|| hop.avg_ms()),
        });
    }
    hops
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The most frequent address (the first seen among equals) and the others in the order seen.
pub(super) fn pick_addrs(counts: &[(IpAddr, usize)]) -> (Option<IpAddr>, Vec<IpAddr>) {
    let mut best: Option<(IpAddr, usize)> = None;
    for &(addr, count) in counts {
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((addr, count));
        }
    }
    let addr = best.map(|(addr, _)| addr);
    let others = counts
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| Some(*a) != addr)
        .collect();
    (addr, others)
}

/// Drops TTLs beyond the target: probes sent past it (before its reply came back) are answered
/// by the target too and are not further hops.
pub(super) fn trim_after_target(mut hops: Vec<Hop>, target_ttl: Option<u8>) -> Vec<Hop> {
    if let Some(target_ttl) = target_ttl {
        hops.retain(|hop| hop.ttl <= target_ttl);
    }
    hops
}

/// The ICMP identifier of one live trace, released when the trace ends.
///
/// trippy keeps only replies carrying its identifier (or 0, which UDP/TCP replies carry), and a
/// raw ICMP socket sees every ICMP packet on the host, so concurrent traces need distinct
/// non-zero identifiers. Within this process live identifiers never repeat. Across processes
/// they are random, so two concurrent traces from two processes share one with probability
/// 1/65535. (trippy's CLI uses pid + n, which collided within a second here when three test
/// processes ran at once: their pids, and so their ranges, were 9 apart.)
struct TraceId(u16);

fn live_trace_ids() -> &'static Mutex<HashSet<u16>> {
    static LIVE: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

impl TraceId {
    fn allocate() -> TraceId {
        let mut live = live_trace_ids().lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: with fewer than 65,535 live traces a free identifier turns up at once; the
        // bound only stops a pathological run from spinning.
        let mut id = random_u16();
        for _ in 0..64 {
            // 0 means "no identifier" to trippy: it would accept every other tracer's replies.
            if id != 0 && !live.contains(&id) {
                break;
            }
            id = random_u16();
        }
        let id = id.max(1);
        live.insert(id);
        TraceId(id)
    }
}

impl Drop for TraceId {
    fn drop(&mut self) {
        let mut live = live_trace_ids().lock().unwrap_or_else(|e| e.into_inner());
        live.remove(&self.0);
    }
}

/// A random number from std's per-process random SipHash keys (seeded by the OS) over a
/// counter: no extra dependency, and good enough to spread identifiers and ports.
fn random_u16() -> u16 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(RandomState::new).build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    // The low 16 bits of a SipHash output are as uniform as any.
    (hasher.finish() & 0xffff) as u16
}

/// Sequence numbers `[start, end)` reserved for one live UDP or TCP trace.
///
/// For UDP and TCP probes trippy uses the sequence number as the source port and tells its own
/// replies apart by destination address and port only, and it takes any sequence number within
/// 512 of its round's first as its own (a reply to another trace's probe completes one of its
/// own probes, or trips a debug assertion in trippy). trippy's CLI refuses several UDP/TCP
/// targets at once for this reason. Here each trace reserves the numbers it can use plus a
/// guard of 512 after them, and live windows never overlap. When the space is full (about 48
/// concurrent traces at the default settings) a trace waits for one to end, at most the time
/// of its own trace; after that it shares a window, with a warning.
struct SequenceWindow {
    start: u16,
    end: u16,
}

/// Live windows, and where the next search starts (so a window just freed is not handed out
/// again at once, while late replies to it may still arrive).
struct Windows {
    live: Vec<(u16, u16)>,
    cursor: u16,
}

fn windows() -> &'static (Mutex<Windows>, Condvar) {
    static WINDOWS: OnceLock<(Mutex<Windows>, Condvar)> = OnceLock::new();
    WINDOWS.get_or_init(|| {
        (
            Mutex::new(Windows {
                live: Vec::new(),
                // A random start, so two processes tracing at once are unlikely to use the
                // same ports (windows are only coordinated within a process).
                cursor: SEQUENCE_FIRST
                    + random_u16() % (SEQUENCE_END - SEQUENCE_FIRST - SEQUENCE_GUARD as u16),
            }),
            Condvar::new(),
        )
    })
}

impl SequenceWindow {
    /// Reserves `used` sequence numbers plus the guard, waiting at most `wait` for room.
    fn allocate(used: u32, wait: Duration) -> SequenceWindow {
        let space = u32::from(SEQUENCE_END - SEQUENCE_FIRST);
        let len =
            u16::try_from(used.saturating_add(SEQUENCE_GUARD).clamp(1, space)).unwrap_or(u16::MAX);
        let (lock, freed) = windows();
        let deadline = Instant::now() + wait;
        // A poisoned lock only means another trace panicked while holding it; the list is
        // still consistent (every change is a single push or remove).
        let mut windows = lock.lock().unwrap_or_else(|e| e.into_inner());
        let start = loop {
            if let Some(start) = free_start(&windows.live, windows.cursor, len) {
                break start;
            }
            let now = Instant::now();
            if now >= deadline {
                // Once a process: the cause (too many traces at once) is the same for all.
                static WARNED: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(
                        "no free sequence window of {len} after {wait:?}: concurrent UDP/TCP \
                         traces to one address and port may take each other's replies (lower \
                         --trace-concurrency); said once"
                    );
                }
                break if u32::from(windows.cursor) + u32::from(len) > u32::from(SEQUENCE_END) {
                    SEQUENCE_FIRST
                } else {
                    windows.cursor
                };
            }
            windows = freed
                .wait_timeout(windows, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        let end = start + len;
        windows.live.push((start, end));
        windows.cursor = end;
        SequenceWindow { start, end }
    }
}

impl Drop for SequenceWindow {
    fn drop(&mut self) {
        let (lock, freed) = windows();
        let mut windows = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = windows
            .live
            .iter()
            .position(|&w| w == (self.start, self.end))
        {
            windows.live.swap_remove(i);
        }
        freed.notify_all();
    }
}

/// The first start at or after `cursor` (wrapping once to the beginning of the space) where
/// `len` sequence numbers overlap no live window.
fn free_start(live: &[(u16, u16)], cursor: u16, len: u16) -> Option<u16> {
    let fits = |start: u16| u32::from(start) + u32::from(len) <= u32::from(SEQUENCE_END);
    let mut candidate = if fits(cursor) { cursor } else { SEQUENCE_FIRST };
    let mut wrapped = candidate == SEQUENCE_FIRST;
    // Each step jumps past one live window, so two passes over them are enough.
    for _ in 0..=(2 * live.len() + 2) {
        let end = candidate + len;
        match live.iter().find(|&&(s, e)| s < end && candidate < e) {
            None => return Some(candidate),
            Some(&(_, e)) if fits(e) => candidate = e,
            Some(_) if !wrapped => {
                candidate = SEQUENCE_FIRST;
                wrapped = true;
            }
            Some(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8) -> Hop {
        Hop {
            ttl,
            addr: None,
            other_addrs: Vec::new(),
            sent: 1,
            received: 0,
            best_rtt_ms: None,
            avg_rtt_ms: None,
        }
    }

    #[test]
    fn most_frequent_address_wins_and_ties_go_to_the_first_seen() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let c: IpAddr = "192.0.2.3".parse().expect("ip");
        assert_eq!(pick_addrs(&[(a, 1), (b, 3), (c, 1)]), (Some(b), vec![a, c]));
        assert_eq!(pick_addrs(&[(a, 2), (b, 2)]), (Some(a), vec![b]));
        assert_eq!(pick_addrs(&[]), (None, vec![]));
    }

    #[test]
    fn hops_past_the_target_are_trimmed_only_when_it_answered() {
        let hops: Vec<Hop> = (1..=5).map(hop).collect();
        let ttls = |h: Vec<Hop>| h.iter().map(|h| h.ttl).collect::<Vec<_>>();
        assert_eq!(ttls(trim_after_target(hops.clone(), Some(2))), vec![1, 2]);
        assert_eq!(ttls(trim_after_target(hops, None)), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn settings_that_would_not_end_or_that_trippy_rejects_are_refused() {
        let ok = TraceSettings::default();
        assert!(validate(&ok).is_ok());
        for bad in [
            TraceSettings { rounds: 0, ..ok },
            TraceSettings { max_hops: 0, ..ok },
            TraceSettings {
                max_hops: 255,
                ..ok
            },
            TraceSettings {
                protocol: Protocol::Tcp,
                port: 0,
                ..ok
            },
        ] {
            let err = validate(&bad).expect_err("refused");
            assert!(err.to_string().contains("use") || err.to_string().contains("need"));
        }
    }

    #[test]
    fn live_trace_ids_are_never_zero_and_never_repeat() {
        let ids: Vec<TraceId> = (0..5_000).map(|_| TraceId::allocate()).collect();
        let distinct: HashSet<u16> = ids.iter().map(|id| id.0).collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(!distinct.contains(&0));
        drop(ids);
        assert!(live_trace_ids().lock().expect("lock").is_empty());
    }

    #[test]
    fn live_sequence_windows_do_not_overlap() {
        let live = [(33434, 33534), (33600, 33700)];
        assert_eq!(free_start(&live, 33434, 50), Some(33534));
        assert_eq!(free_start(&live, 33434, 100), Some(33700));
        // Past the end of the space the search wraps to the beginning.
        assert_eq!(free_start(&[], SEQUENCE_END - 10, 50), Some(SEQUENCE_FIRST));
        let full = [(SEQUENCE_FIRST, SEQUENCE_END)];
        assert_eq!(free_start(&full, SEQUENCE_FIRST, 1), None);

        let windows: Vec<SequenceWindow> = (0..40)
            .map(|_| SequenceWindow::allocate(93, Duration::ZERO))
            .collect();
        for (i, a) in windows.iter().enumerate() {
            assert!(a.end <= SEQUENCE_END && a.start >= SEQUENCE_FIRST);
            assert_eq!(u32::from(a.end - a.start), 93 + SEQUENCE_GUARD);
            for b in &windows[i + 1..] {
                assert!(a.end <= b.start || b.end <= a.start, "overlap");
            }
        }
        drop(windows);

        // The whole space taken: a trace waits for it, then shares rather than block forever.
        let all = SequenceWindow::allocate(u32::MAX, Duration::ZERO);
        let started = Instant::now();
        let shared = SequenceWindow::allocate(10, Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(shared);
        // A window that ends wakes a waiting trace at once.
        let waiter = std::thread::spawn(|| {
            let started = Instant::now();
            let w = SequenceWindow::allocate(10, Duration::from_secs(10));
            (started.elapsed(), w.start)
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(all);
        let (waited, _) = waiter.join().expect("waiter");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
