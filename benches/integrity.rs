//! `cargo bench --bench integrity`: what the interception checks cost a run, in the lab of
//! `tests/it/interception.rs` (real namespaces, a 30 ms link, knotd, a TCP server):
//!
//! ```text
//! client ── r1 ──30 ms── r2 ─┬─ srv 203.0.113.200 (TCP 443 only)
//!  (default route via r1)    └─ dns 203.0.113.53  (knotd)
//! ```
//!
//! The same policy (one name and one literal address) is checked with the canaries (the
//! default) and without (`integrity: { canaries: [] }`), on a clean network, where every canary
//! waits for its timeout (the worst case), and through a transparent TCP proxy on r1. Rows for
//! the lab's short timeouts and for the policy defaults. `residency check` wall time, median of
//! 5. There is no peer tool: nothing else looks for interception before it measures.
//!
//! Traffic stays inside the lab. Needs root and the lab's packages (`knot`, `knot-dnsutils`,
//! `iproute2`, `nftables`); a missing one is an error, never a skip.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "util.rs"]
mod util;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use common::dns::Zone;
use common::mmdb::write_country_db;
use common::netns::addrs::{R1, R2};
use common::netns::{CLIENT, Lab, LabBuilder, Server};
use util::{median, run_bounded};

const SRV: &str = "203.0.113.200";
const DNS: &str = "203.0.113.53";
const RUNS: usize = 5;
const DEADLINE: Duration = Duration::from_secs(60);

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench integrity failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<(), String> {
    let lab = Lab::try_start(
        LabBuilder::new()
            .router("r1", &[R1], Duration::ZERO)
            .router("r2", &[R2], Duration::from_millis(30))
            .server(Server::new("srv", &[SRV]).tcp_only())
            .server(Server::new("dns", &[DNS]))
            .client_default_route(),
    )
    .map_err(|skip| skip.reason)?;
    let _knot = lab.spawn_knot(
        "dns",
        addr(DNS),
        &[Zone::new("vendor.test.", &format!("api A {SRV}\n"))],
    );
    let _server = lab.listen_tcp("srv", SocketAddr::new(addr(SRV), 443));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mmdb = dir.path().join("lab.mmdb");
    write_country_db(&mmdb, &[("0.0.0.0/1", "IN"), ("128.0.0.0/1", "IN")]);

    let settings = [
        (
            "lab (rounds 2, 500 ms; DNS 1000 ms × 1)",
            "dns: { timeout_ms: 1000, tries: 1 }\ntrace: { rounds: 2, timeout_ms: 500, max_hops: 6 }\n",
        ),
        ("policy defaults (rounds 3, 1000 ms; DNS 2000 ms × 2)", ""),
    ];
    let mut rows = Vec::new();
    let mut _proxy = None;
    for proxied in [false, true] {
        if proxied {
            _proxy = Some(lab.listen_tcp("r1", SocketAddr::new(addr("0.0.0.0"), 443)));
            lab.nft(
                "r1",
                "add table ip rsdproxy; \
                 add chain ip rsdproxy pre { type nat hook prerouting priority -100; }; \
                 add rule ip rsdproxy pre tcp dport 443 redirect",
            );
        }
        for (label, body) in settings {
            for canaries in [true, false] {
                let policy = dir.path().join("p.yaml");
                std::fs::write(
                    &policy,
                    format!(
                        "id: cost\nallow: [IN]\nresolvers: [\"{DNS}\"]\nrepeat: 1\n{body}\
                         registry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n\
                         vantage: {{ country: IN, lat: 21.15, lon: 79.09 }}\n{}\
                         endpoints:\n  - host: api.vendor.test\n  - host: {SRV}\n",
                        mmdb.display(),
                        if canaries {
                            ""
                        } else {
                            "integrity: { canaries: [] }\n"
                        }
                    ),
                )
                .map_err(|e| e.to_string())?;
                let mut times = Vec::new();
                for _ in 0..RUNS {
                    times.push(check(&lab, &policy, dir.path())?);
                }
                rows.push(format!(
                    "| {} | {label} | {} | {:.2} |",
                    if proxied { "TCP proxy on r1" } else { "clean" },
                    if canaries { "on (default)" } else { "off" },
                    median(&times)
                ));
            }
        }
    }
    println!("| network | settings | canaries | `residency check` wall (s) |");
    println!("|---|---|---|---:|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

/// One `residency check` in the client namespace; its wall time in seconds.
fn check(lab: &Lab, policy: &Path, dir: &Path) -> Result<f64, String> {
    let mut cmd = lab.exec(
        CLIENT,
        env!("CARGO_BIN_EXE_residency"),
        [
            "check",
            "--format",
            "json",
            "--db",
            dir.join("h.sqlite").to_str().unwrap_or("h.sqlite"),
            policy.to_str().unwrap_or("p.yaml"),
        ],
    );
    cmd.env_remove("RESIDENCY_LOG");
    let finished = run_bounded(cmd, &dir.join("out.json"), &dir.join("err.txt"), DEADLINE)?
        .ok_or("a check outlived its deadline")?;
    // 0, 1 and 2 are verdicts; 3 is an error worth stopping for.
    if finished.status.code().is_none_or(|c| c > 2) {
        return Err(format!(
            "check failed: {}",
            std::fs::read_to_string(dir.join("err.txt")).unwrap_or_default()
        ));
    }
    Ok(finished.elapsed.as_secs_f64())
}
