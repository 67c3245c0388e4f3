//! Delay links: two TUN devices and a forwarder thread per direction holding every packet a
//! set time, because this kernel has no `netem`.

use super::*;

/// A delay link's forwarder gives up after this long even if nobody stops it, so a leaked lab
/// cannot keep threads alive forever.
pub(super) const FORWARDER_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Packets a delay link holds per direction; more are dropped, like a full router queue, so a
/// flood cannot grow memory without bound.
const MAX_QUEUED: usize = 4096;

/// How long an idle forwarder waits for a packet before looking at its stop flag again (it is
/// also woken at once by [`InterruptEvent`] on stop).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Below this, a forwarder sleeps until the next packet is due instead of polling, because the
/// poll timeout is rounded up to whole milliseconds and would add up to 1 ms per hop.
const SPIN_THRESHOLD: Duration = Duration::from_millis(2);

/// A link that delays every packet by a fixed time each way: two TUN devices, one in each
/// namespace, and one forwarder thread per direction reading from one device and writing to the
/// other once the packet is due. Stopped and removed on drop.
pub(super) struct DelayLink {
    stop: Arc<AtomicBool>,
    wake: Arc<InterruptEvent>,
    threads: Vec<JoinHandle<()>>,
}

impl DelayLink {
    /// `names` are the interface names wanted inside `namespaces` (same order); `temp` are
    /// names unique in the root namespace, for the instant the devices live there.
    pub(super) fn start(
        delay: Duration,
        namespaces: [&str; 2],
        names: [&str; 2],
        temp: [&str; 2],
    ) -> DelayLink {
        let devices: Vec<Arc<SyncDevice>> = namespaces
            .iter()
            .zip(names)
            .zip(temp)
            .map(|((ns, name), temp)| {
                let device = DeviceBuilder::new()
                    .name(temp)
                    .with(|b| {
                        // Raw IP packets, no 4-byte packet-information header.
                        b.packet_information(false);
                    })
                    // Down until it is inside its namespace: nothing may use it in the root one.
                    .enable(false)
                    .build_sync()
                    .unwrap_or_else(|e| panic!("cannot create TUN device {temp}: {e}"));
                // The open fd keeps working after the device moves to another namespace.
                run("ip", ["link", "set", temp, "netns", ns]);
                ip(ns, ["link", "set", temp, "name", name]);
                Arc::new(device)
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(
            InterruptEvent::new().unwrap_or_else(|e| panic!("cannot create an event: {e}")),
        );
        let threads = [(0, 1), (1, 0)]
            .into_iter()
            .map(|(from, to)| {
                let (from, to) = (devices[from].clone(), devices[to].clone());
                let (stop, wake) = (stop.clone(), wake.clone());
                std::thread::spawn(move || forward(&from, &to, delay, &stop, &wake))
            })
            .collect();
        DelayLink {
            stop,
            wake,
            threads,
        }
    }
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.trigger();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Moves packets from `from` to `to`, each `delay` after it was read. The delay is the same for
/// every packet, so due times only grow and a FIFO queue is already in due order.
pub(super) fn forward(
    from: &SyncDevice,
    to: &SyncDevice,
    delay: Duration,
    stop: &AtomicBool,
    wake: &InterruptEvent,
) {
    raise_priority();
    let deadline = Instant::now() + FORWARDER_LIFETIME;
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, packet)) = queue.pop_front() {
                // A failed write is a lost packet, as on a real link.
                let _ = to.send(&packet);
            }
        }
        let wait = match queue.front() {
            Some((due, _)) => due.saturating_duration_since(now),
            None => IDLE_WAIT,
        };
        if !queue.is_empty() && wait < SPIN_THRESHOLD {
            std::thread::sleep(wait);
            continue;
        }
        let wait = if queue.is_empty() {
            wait
        } else {
            wait - Duration::from_millis(1)
        };
        match from.recv_intr_timeout(&mut buf, wake, Some(wait)) {
            Ok(len) => {
                if queue.len() < MAX_QUEUED {
                    queue.push_back((Instant::now() + delay, buf[..len].to_vec()));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                ) => {}
            // Not expected; pause so a persistent error cannot spin a core.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Puts the calling forwarder thread in the real-time FIFO class (priority 1, via `chrt` on its
/// thread id, so no unsafe code), so that builds and parallel tests on a small machine do not
/// add tens of milliseconds to a link's delay. It never spins, so it cannot starve anything;
/// where this fails the lab still works, only with more jitter.
pub(super) fn raise_priority() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    let Some(tid) = link.file_name().and_then(OsStr::to_str).map(str::to_string) else {
        return;
    };
    let _ = Command::new("chrt")
        .args(["-f", "-p", "1", &tid])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
