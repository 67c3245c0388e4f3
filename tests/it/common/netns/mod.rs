//! Network lab for integration tests: a client (the vantage point), a chain of routers and server
//! hosts, each in its own network namespace, joined by veth pairs or by delay links that hold
//! every packet a set time, so ping, traceroute and round-trip-time physics see real hops and
//! real latency.
//!
//! Owns everything about the lab's network: namespace and interface names (unique per process
//! and lab, so parallel tests never collide), addresses and static routes, per-link delays (two
//! TUN devices and a forwarder thread per direction, because this kernel has no `netem`), a
//! firewall that drops everything for servers that must stay silent, running commands and knotd
//! inside a namespace, and removing all of it on drop, also when a test panics.
//!
//! Traffic never leaves the lab: the root namespace gets no address, route or firewall rule. TUN
//! devices are created there only for an instant, down and unaddressed, before they are moved
//! into their namespaces.
//!
//! Addressing. Routers and servers hold the addresses the test gives (documentation ranges, so a
//! test can map them to countries). Link `k` is numbered by its position: its upstream end is
//! `10.200.k.1` (`fd00:200:k::1`), its downstream end is the router's own hop address, or
//! `10.200.k.2` (`fd00:200:k::2`) for a server, whose given addresses sit on its loopback. Both
//! ends are point-to-point (`peer`) addresses. Routers answer from the address of the interface
//! a probe came in on, which is their hop address, so traceroute shows exactly the given hops.
//! The client is `10.200.0.1` (`fd00:200:0::1`).
//!
//! Needs root (namespaces, TUN, raw ICMP for ping), `ip` (iproute2) and, for servers that drop
//! everything, `nft` (nftables). Tests that build a lab are `#[ignore = "needs root: ..."]`
//! (`cargo test -- --include-ignored` as root runs them, as CI does); [`Lab::require`] fails
//! such a test when it is run without root, so a lab test never passes without its lab.
//!
//! Use:
//!
//! ```text
//! let lab = Lab::require(LabBuilder::new()
//!     .router("r1", &["192.0.2.1"], Duration::ZERO) // a test maps it to "IN"
//!     .router("r2", &["198.51.100.129"], Duration::from_millis(10)) // and this to "CN"
//!     .server(Server::new("a", &["203.0.113.10"]).delay(Duration::from_millis(5)))
//!     .server(Server::new("drop", &["203.0.113.66"]).dropping()));
//! let knot = lab.spawn_knot("a", "203.0.113.10".parse()?, &[zone]);
//! let out = lab.residency(dir, false).args(["check", ...]).output();
//! assert!(lab.rtt_floor("203.0.113.10".parse()?) == Duration::from_millis(30));
//! ```

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tun_rs::{DeviceBuilder, InterruptEvent, SyncDevice};

use super::cmd::Residency;
use super::dns::{KnotPlacement, KnotServer, Zone};

mod cmds;
mod link;
mod plan;

use cmds::*;
use link::*;
use plan::*;

/// Every namespace of every lab starts with this, then the pid of the test process.
const NS_PREFIX: &str = "rsd-";

/// The client's name, for [`Lab::exec`] and friends.
pub const CLIENT: &str = "client";

/// Addresses the lab tests give routers and servers: documentation ranges that the tests'
/// databases map to countries (192.0.2.0/25 "IN", 198.51.100.128/25 "CN", 203.0.113.0/24 ...).
pub mod addrs {
    pub const R1: &str = "192.0.2.1";
    pub const R1_V6: &str = "2001:db8:1::1";
    pub const R2: &str = "198.51.100.129";
    pub const R2_V6: &str = "2001:db8:2::1";
    pub const A: &str = "203.0.113.10";
    pub const A_V6: &str = "2001:db8:a::10";
    pub const NEAR: &str = "203.0.113.20";
    pub const FAR: &str = "198.51.100.20";
    pub const DROP: &str = "203.0.113.66";
}

/// Node names become part of interface names (`to-NAME`), which Linux caps at 15 bytes.
const MAX_NAME: usize = 12;

const INSTALL_HINT: &str =
    "apt-get install iproute2 nftables iputils-ping traceroute knot-dnsutils";

static LABS: AtomicUsize = AtomicUsize::new(0);
static TUNS: AtomicUsize = AtomicUsize::new(0);

/// Why the lab cannot run here (see [`Lab::require`]).
#[derive(Debug, Clone)]
pub struct Skip {
    pub reason: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// One router of the chain.
#[derive(Debug, Clone)]
struct RouterSpec {
    name: String,
    v4: Ipv4Addr,
    v6: Option<Ipv6Addr>,
    delay: Duration,
}

/// A server host: its addresses, the router it hangs off, its link's delay and whether it drops
/// everything that arrives.
#[derive(Debug, Clone)]
pub struct Server {
    name: String,
    addrs: Vec<IpAddr>,
    behind: Option<String>,
    delay: Duration,
    drop_all: bool,
    tcp_only: bool,
}

impl Server {
    /// A server holding `addrs` (address literals, IPv4 or IPv6) on its loopback, behind the last
    /// router over a plain link, answering normally.
    pub fn new(name: &str, addrs: &[&str]) -> Server {
        Server {
            name: name.to_string(),
            addrs: addrs.iter().map(|a| parse_addr(a)).collect(),
            behind: None,
            delay: Duration::ZERO,
            drop_all: false,
            tcp_only: false,
        }
    }

    /// Drops every ICMP and UDP packet arriving at the server (IPv4 and IPv6) but lets TCP in,
    /// like a web server behind a firewall: traceroute gets no answer from it, a TCP connect
    /// to a listening port does.
    pub fn tcp_only(mut self) -> Server {
        self.tcp_only = true;
        self
    }

    /// Hangs the server off this router instead of the last one.
    pub fn behind(mut self, router: &str) -> Server {
        self.behind = Some(router.to_string());
        self
    }

    /// One-way delay of the server's link, added in each direction (RTT grows by twice this).
    pub fn delay(mut self, one_way: Duration) -> Server {
        self.delay = one_way;
        self
    }

    /// Drops every packet arriving at the server (nftables, IPv4 and IPv6), so probes and
    /// queries get no answer at all; routers before it still answer traceroute.
    pub fn dropping(mut self) -> Server {
        self.drop_all = true;
        self
    }
}

/// The topology to build: routers in chain order from the client, then servers.
#[derive(Debug, Clone, Default)]
pub struct LabBuilder {
    routers: Vec<RouterSpec>,
    servers: Vec<Server>,
    client_default_route: bool,
}

impl LabBuilder {
    pub fn new() -> LabBuilder {
        LabBuilder::default()
    }

    /// Appends a router to the chain. `addrs` are its hop addresses: one IPv4 and optionally
    /// one IPv6 literal. `delay` is the one-way delay of the link from the previous node (the
    /// client, for the first router) to this one.
    pub fn router(mut self, name: &str, addrs: &[&str], delay: Duration) -> LabBuilder {
        let parsed: Vec<IpAddr> = addrs.iter().map(|a| parse_addr(a)).collect();
        let v4: Vec<Ipv4Addr> = parsed
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6: Vec<Ipv6Addr> = parsed
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v6) => Some(*v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        assert!(
            v4.len() == 1 && v6.len() <= 1,
            "router {name} needs one IPv4 and at most one IPv6 hop address, got {addrs:?}"
        );
        self.routers.push(RouterSpec {
            name: name.to_string(),
            v4: v4[0],
            v6: v6.first().copied(),
            delay,
        });
        self
    }

    pub fn server(mut self, server: Server) -> LabBuilder {
        self.servers.push(server);
        self
    }

    /// Gives the client a default route through the first router, as a real host has: then
    /// traffic to addresses outside the lab (interception canaries) reaches the first router,
    /// which sends it back toward the client, which drops it (it does not forward). Nothing
    /// leaves the lab either way.
    pub fn client_default_route(mut self) -> LabBuilder {
        self.client_default_route = true;
        self
    }
}

/// What a link joins and how it is addressed.
#[derive(Debug, Clone)]
struct LinkPlan {
    up: String,
    down: String,
    up_v4: Ipv4Addr,
    down_v4: Ipv4Addr,
    up_v6: Ipv6Addr,
    down_v6: Ipv6Addr,
    delay: Duration,
}

/// A running lab; everything it created is removed on drop.
pub struct Lab {
    id: String,
    /// Node name -> namespace name, in creation order.
    namespaces: Vec<(String, String)>,
    routers: Vec<RouterSpec>,
    servers: Vec<Server>,
    links: Vec<LinkPlan>,
    v6: bool,
    client_default_route: bool,
    delay_links: Vec<DelayLink>,
    /// The names TUN devices had in the root namespace, so a test can check none is left.
    tun_names: Vec<String>,
}

impl Lab {
    /// Builds the lab for a test that needs it: lab tests are `#[ignore]`d with the reason, so
    /// one that runs was asked for, and without root it fails saying why.
    pub fn require(builder: LabBuilder) -> Lab {
        Lab::try_start(builder).unwrap_or_else(|skip| panic!("{skip}"))
    }

    /// Builds the lab, or returns [`Skip`] when this process is not root. Any failure as root
    /// panics with the failing command and its output: a broken lab must fail, not skip.
    pub fn try_start(builder: LabBuilder) -> Result<Lab, Skip> {
        if !is_root() {
            return Err(Skip {
                reason: "needs root for network namespaces (run as root, as CI does)".to_string(),
            });
        }
        validate(&builder);
        sweep_stale_labs();
        let id = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::SeqCst)
        );
        let v6 = builder.routers.iter().any(|r| r.v6.is_some())
            || builder
                .servers
                .iter()
                .any(|s| s.addrs.iter().any(IpAddr::is_ipv6));
        let mut lab = Lab {
            id,
            namespaces: Vec::new(),
            links: plan_links(&builder),
            routers: builder.routers,
            servers: builder.servers,
            v6,
            client_default_route: builder.client_default_route,
            delay_links: Vec::new(),
            tun_names: Vec::new(),
        };
        // Built step by step on `lab` itself, so a panic half-way still cleans up in Drop.
        lab.build();
        Ok(lab)
    }

    /// Runs an nftables script inside a node's namespace (e.g. a transparent proxy's
    /// `redirect` on a router); panics with nft's words when it fails.
    pub fn nft(&self, node: &str, script: &str) {
        let out = self
            .exec(node, "nft", [script])
            .output()
            .unwrap_or_else(|e| panic!("cannot run nft: {e}; {INSTALL_HINT}"));
        assert!(
            out.status.success(),
            "nft failed in {} ({INSTALL_HINT}): {}\n{script}",
            self.ns(node),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A TCP listener on `addr` inside a node's namespace that accepts every connection and
    /// closes it at once: a web server, or a transparent proxy's local end. It is served by a
    /// thread of the test process that joined the namespace (setns), and stops on drop.
    pub fn listen_tcp(&self, node: &str, addr: SocketAddr) -> TcpService {
        let path = format!("/run/netns/{}", self.ns(node));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = std::sync::mpsc::channel::<Result<(), String>>();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let joined = std::fs::File::open(&path)
                .map_err(|e| format!("cannot open {path}: {e}"))
                .and_then(|ns| {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("cannot enter {path}: {e}"))
                })
                .and_then(|()| {
                    std::net::TcpListener::bind(addr)
                        .map_err(|e| format!("cannot bind {addr}: {e}"))
                })
                .and_then(|l| {
                    l.set_nonblocking(true)
                        .map(|()| l)
                        .map_err(|e| format!("cannot make the listener non-blocking: {e}"))
                });
            let listener = match joined {
                Ok(listener) => {
                    let _ = ready.send(Ok(()));
                    listener
                }
                Err(why) => {
                    let _ = ready.send(Err(why));
                    return;
                }
            };
            let deadline = Instant::now() + FORWARDER_LIFETIME;
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => drop(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        match started.recv() {
            Ok(Ok(())) => TcpService {
                stop,
                thread: Some(thread),
            },
            Ok(Err(why)) => panic!("TCP listener in {node}: {why}"),
            Err(_) => panic!("TCP listener in {node}: the thread ended before listening"),
        }
    }

    /// `residency` in the client namespace with its home in `dir` (see [`Residency`]),
    /// optionally as `nobody` with no capabilities (no raw sockets); `dir`, which holds the
    /// history, is opened to `nobody` then.
    pub fn residency(&self, dir: &Path, unprivileged: bool) -> Residency {
        let mut all: Vec<String> = self.prefix(CLIENT);
        if unprivileged {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .expect("open the temp dir to nobody");
            all.extend(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                ]
                .map(String::from),
            );
        }
        Residency::through(dir, &all)
    }

    /// The namespace name of a node (`client`, a router or a server name).
    pub fn ns(&self, node: &str) -> &str {
        self.namespaces
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, ns)| ns.as_str())
            .unwrap_or_else(|| panic!("no node {node} in this lab"))
    }

    /// `program args...` to run inside a node's namespace (via `ip netns exec`).
    pub fn exec<I, S>(&self, node: &str, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.ns(node), program])
            .args(args);
        command
    }

    /// The names the lab's TUN devices had while they were in the root namespace, for tests
    /// that check none is left there.
    pub fn tun_names(&self) -> &[String] {
        &self.tun_names
    }

    /// The command prefix that runs a program inside a node's namespace.
    pub fn prefix(&self, node: &str) -> Vec<String> {
        vec![
            "ip".to_string(),
            "netns".to_string(),
            "exec".to_string(),
            self.ns(node).to_string(),
        ]
    }

    /// A real knotd serving `zones` on port 53 of `addr` inside a node's namespace, started and
    /// answering; killed when the returned server drops.
    pub fn spawn_knot(&self, node: &str, addr: IpAddr, zones: &[Zone]) -> KnotServer {
        self.spawn_knot_named(node, addr, zones, None)
    }

    /// [`Lab::spawn_knot`] with an NSID (RFC 5001) the server names itself by.
    pub fn spawn_knot_named(
        &self,
        node: &str,
        addr: IpAddr,
        zones: &[Zone],
        nsid: Option<&str>,
    ) -> KnotServer {
        let placement = KnotPlacement {
            listen: vec![SocketAddr::new(addr, 53)],
            prefix: self.prefix(node),
            nsid: nsid.map(str::to_string),
        };
        KnotServer::start_in(&placement, zones, None)
    }

    /// The client's IPv4 address (the vantage point's source address).
    pub fn client_v4(&self) -> Ipv4Addr {
        self.links[0].up_v4
    }

    /// The client's IPv6 address; only configured when the lab has IPv6 addresses.
    pub fn client_v6(&self) -> Ipv6Addr {
        self.links[0].up_v6
    }

    /// The hop addresses traceroute from the client shows before reaching `target` (a server
    /// address), in order and in `target`'s family; a router without an IPv6 hop address shows
    /// its link address.
    pub fn hops_to(&self, target: IpAddr) -> Vec<IpAddr> {
        let server = self.server_of(target);
        let last = self.router_index(server);
        (0..=last)
            .map(|i| {
                let link = &self.links[i];
                if target.is_ipv4() {
                    IpAddr::V4(link.down_v4)
                } else {
                    IpAddr::V6(link.down_v6)
                }
            })
            .collect()
    }

    /// Twice the sum of the one-way delays on the path from the client to `target` (a server or
    /// router hop address): the least RTT physics allows, before any processing time.
    pub fn rtt_floor(&self, target: IpAddr) -> Duration {
        let one_way: Duration = if let Some(i) = self
            .routers
            .iter()
            .position(|r| IpAddr::V4(r.v4) == target || r.v6.map(IpAddr::V6) == Some(target))
        {
            self.links[..=i].iter().map(|l| l.delay).sum()
        } else {
            let server = self.server_of(target);
            let last = self.router_index(server);
            self.links[..=last]
                .iter()
                .map(|l| l.delay)
                .sum::<Duration>()
                + server.delay
        };
        one_way * 2
    }

    /// `ping -c count` from a node to `target`; the RTT of every reply.
    pub fn ping(&self, from: &str, target: IpAddr, count: u32) -> Ping {
        let output = self
            .exec(
                from,
                "ping",
                [
                    "-n".to_string(),
                    "-c".to_string(),
                    count.to_string(),
                    // Root may ping faster than once a second; 0.2 s keeps tests short.
                    "-i".to_string(),
                    "0.2".to_string(),
                    "-W".to_string(),
                    "2".to_string(),
                    target.to_string(),
                ],
            )
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ping: {e}; {INSTALL_HINT}"));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("exec of \"ping\" failed"),
            "ping is missing: {INSTALL_HINT}"
        );
        let rtts = text
            .lines()
            .filter(|line| line.contains(" bytes from "))
            .filter_map(|line| line.split("time=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter_map(|ms| ms.parse::<f64>().ok())
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .collect();
        Ping {
            sent: count,
            rtts,
            output: format!("{text}{stderr}"),
        }
    }

    fn server_of(&self, target: IpAddr) -> &Server {
        self.servers
            .iter()
            .find(|s| s.addrs.contains(&target))
            .unwrap_or_else(|| panic!("no server holds {target} in this lab"))
    }

    /// Index of the router a server hangs off.
    fn router_index(&self, server: &Server) -> usize {
        match &server.behind {
            Some(name) => self
                .routers
                .iter()
                .position(|r| &r.name == name)
                .unwrap_or_else(|| {
                    panic!("server {} is behind unknown router {name}", server.name)
                }),
            None => self.routers.len() - 1,
        }
    }

    fn build(&mut self) {
        let nodes: Vec<String> = std::iter::once(CLIENT.to_string())
            .chain(self.routers.iter().map(|r| r.name.clone()))
            .chain(self.servers.iter().map(|s| s.name.clone()))
            .collect();
        for node in nodes {
            let ns = format!("{}-{node}", self.id);
            run("ip", ["netns", "add", &ns]);
            self.namespaces.push((node, ns.clone()));
            ip(&ns, ["link", "set", "lo", "up"]);
            // ICMP errors (time exceeded, port unreachable) are rate-limited per destination
            // by default, which would turn fast traceroute probes into `*`.
            sysctl(&ns, "net.ipv4.icmp_ratelimit", "0");
            if self.v6 {
                sysctl(&ns, "net.ipv6.icmp.ratelimit", "0");
            }
        }
        for router in self.routers.clone() {
            let ns = self.ns(&router.name).to_string();
            sysctl(&ns, "net.ipv4.ip_forward", "1");
            // Answer from the hop address of the interface the probe came in on.
            sysctl(&ns, "net.ipv4.icmp_errors_use_inbound_ifaddr", "1");
            if self.v6 {
                sysctl(&ns, "net.ipv6.conf.all.forwarding", "1");
            }
        }
        for link in self.links.clone() {
            self.add_link(&link);
        }
        self.add_routes();
        for server in self.servers.clone() {
            let ns = self.ns(&server.name).to_string();
            for addr in &server.addrs {
                add_addr(&ns, "lo", *addr, None);
            }
            if server.drop_all {
                self.nft(
                    &server.name,
                    "add table inet rsdlab; \
                     add chain inet rsdlab input \
                     { type filter hook input priority 0; policy drop; }",
                );
            } else if server.tcp_only {
                self.nft(
                    &server.name,
                    "add table inet rsdlab; \
                     add chain inet rsdlab input \
                     { type filter hook input priority 0; policy accept; }; \
                     add rule inet rsdlab input meta l4proto { icmp, ipv6-icmp, udp } drop",
                );
            }
        }
    }

    /// Creates one link: a veth pair when it has no delay, else two TUN devices and a delay
    /// forwarder; then addresses both ends point-to-point and brings them up.
    fn add_link(&mut self, link: &LinkPlan) {
        let up_ns = self.ns(&link.up).to_string();
        let down_ns = self.ns(&link.down).to_string();
        let up_dev = format!("to-{}", link.down);
        let down_dev = format!("to-{}", link.up);
        if link.delay.is_zero() {
            // Created directly inside both namespaces: the root namespace never sees it.
            run(
                "ip",
                [
                    "link", "add", &up_dev, "netns", &up_ns, "type", "veth", "peer", "name",
                    &down_dev, "netns", &down_ns,
                ],
            );
        } else {
            let temp_names = [0, 1].map(|_| {
                format!(
                    "rsd{}t{}",
                    std::process::id(),
                    TUNS.fetch_add(1, Ordering::SeqCst)
                )
            });
            self.tun_names.extend(temp_names.iter().cloned());
            let delay_link = DelayLink::start(
                link.delay,
                [&up_ns, &down_ns],
                [&up_dev, &down_dev],
                [&temp_names[0], &temp_names[1]],
            );
            self.delay_links.push(delay_link);
        }
        add_addr(
            &up_ns,
            &up_dev,
            IpAddr::V4(link.up_v4),
            Some(IpAddr::V4(link.down_v4)),
        );
        add_addr(
            &down_ns,
            &down_dev,
            IpAddr::V4(link.down_v4),
            Some(IpAddr::V4(link.up_v4)),
        );
        if self.v6 {
            add_addr(
                &up_ns,
                &up_dev,
                IpAddr::V6(link.up_v6),
                Some(IpAddr::V6(link.down_v6)),
            );
            add_addr(
                &down_ns,
                &down_dev,
                IpAddr::V6(link.down_v6),
                Some(IpAddr::V6(link.up_v6)),
            );
        }
        ip(&up_ns, ["link", "set", &up_dev, "up"]);
        ip(&down_ns, ["link", "set", &down_dev, "up"]);
        if self.v6 {
            // IPv6 `peer` addresses get a route to the local address, not to the peer (unlike
            // IPv4), so the peer is made on-link by hand before it serves as a gateway.
            for (ns, dev, peer) in [
                (&up_ns, &up_dev, link.down_v6),
                (&down_ns, &down_dev, link.up_v6),
            ] {
                ip(
                    ns,
                    ["-6", "route", "replace", &format!("{peer}/128"), "dev", dev],
                );
            }
        }
    }

    /// Static routes: the client sends every lab address to the first router; each router
    /// sends what lies behind it downstream and everything else upstream (toward the client,
    /// which has no default route, so nothing can loop); servers send everything upstream.
    fn add_routes(&self) {
        let families: &[bool] = if self.v6 { &[false, true] } else { &[false] };
        let first = &self.links[0];
        let client_ns = self.ns(CLIENT).to_string();
        if self.client_default_route {
            for &v6 in families {
                default_route(&client_ns, gateway(first, v6, false));
            }
        }
        for router in &self.routers[1..] {
            for addr in router_addrs(router) {
                route(&client_ns, addr, gateway(first, addr.is_ipv6(), false));
            }
        }
        for server in &self.servers {
            for addr in &server.addrs {
                route(&client_ns, *addr, gateway(first, addr.is_ipv6(), false));
            }
        }
        for (i, router) in self.routers.iter().enumerate() {
            let ns = self.ns(&router.name).to_string();
            let up = &self.links[i];
            for &v6 in families {
                default_route(&ns, gateway(up, v6, true));
            }
            // Routers further down the chain, reached through the next router (the next one
            // itself is the peer of a point-to-point address and needs no route).
            if let Some(next) = self.links.get(i + 1).filter(|_| i + 1 < self.routers.len()) {
                for far in &self.routers[i + 2..] {
                    for addr in router_addrs(far) {
                        route(&ns, addr, gateway(next, addr.is_ipv6(), false));
                    }
                }
            }
            for (s, server) in self.servers.iter().enumerate() {
                let at = self.router_index(server);
                let via = if at == i {
                    &self.links[self.routers.len() + s]
                } else if at > i {
                    &self.links[i + 1]
                } else {
                    continue;
                };
                for addr in &server.addrs {
                    route(&ns, *addr, gateway(via, addr.is_ipv6(), false));
                }
            }
        }
        for (s, server) in self.servers.iter().enumerate() {
            let ns = self.ns(&server.name).to_string();
            let up = &self.links[self.routers.len() + s];
            for &v6 in families {
                default_route(&ns, gateway(up, v6, true));
            }
        }
    }
}

/// A listener started by [`Lab::listen_tcp`]; stops (and closes its socket) on drop.
pub struct TcpService {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for TcpService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Many addresses at once, for benchmarks: one `ip -batch` per namespace instead of one `ip`
/// process per address and route.
impl Lab {
    /// Adds `addrs` to the loopback of server `server`, with the same /32 (/128) routes toward
    /// them that [`Lab::try_start`] gives a server's own addresses, as one `ip -batch` per
    /// namespace (1,000 addresses take well under a second). Afterwards they count as the
    /// server's addresses for [`Lab::hops_to`] and [`Lab::rtt_floor`].
    pub fn add_server_addrs(&mut self, server: &str, addrs: &[IpAddr]) {
        let s = self
            .servers
            .iter()
            .position(|sv| sv.name == server)
            .unwrap_or_else(|| panic!("no server {server} in this lab"));
        assert!(
            self.v6 || addrs.iter().all(IpAddr::is_ipv4),
            "this lab has no IPv6: give the server an IPv6 address at build time to add more"
        );
        let at = self.router_index(&self.servers[s]);
        let route_lines = |via_link: &LinkPlan| -> Vec<String> {
            addrs
                .iter()
                .map(|a| {
                    format!(
                        "route add {a}/{} via {}",
                        prefix_len(*a),
                        gateway(via_link, a.is_ipv6(), false)
                    )
                })
                .collect()
        };
        let lo: Vec<String> = addrs
            .iter()
            .map(|a| {
                let nodad = if a.is_ipv6() { " nodad" } else { "" };
                format!("address add {a}/{} dev lo{nodad}", prefix_len(*a))
            })
            .collect();
        ip_batch(self.ns(server), &lo);
        ip_batch(self.ns(CLIENT), &route_lines(&self.links[0]));
        for i in 0..self.routers.len() {
            let via = if at == i {
                &self.links[self.routers.len() + s]
            } else if at > i {
                &self.links[i + 1]
            } else {
                continue;
            };
            ip_batch(self.ns(&self.routers[i].name), &route_lines(via));
        }
        self.servers[s].addrs.extend_from_slice(addrs);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Forwarders first, so no thread writes to a device that is going away; dropping a
        // DelayLink closes its TUN fds, which deletes the devices.
        self.delay_links.clear();
        for (_, ns) in self.namespaces.iter().rev() {
            // Deleting a namespace removes its veths, addresses, routes and firewall with it.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The result of [`Lab::ping`].
#[derive(Debug, Clone)]
pub struct Ping {
    pub sent: u32,
    /// One RTT per reply, in order.
    pub rtts: Vec<Duration>,
    /// ping's whole output, for assertion messages.
    pub output: String,
}

impl Ping {
    pub fn min(&self) -> Option<Duration> {
        self.rtts.iter().min().copied()
    }

    pub fn max(&self) -> Option<Duration> {
        self.rtts.iter().max().copied()
    }
}
