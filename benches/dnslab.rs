//! The benches' DNS lab: a 1,000-name zone on a knotd on 127.0.0.1, a country database for its
//! addresses, and a policy over every name, with probing and registries off (loopback only).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::common::dns::{KnotServer, Zone};
use crate::common::mmdb::write_country_db;

pub const ENDPOINTS: usize = 1_000;
/// Resolutions of every name per run.
pub const REPEAT: usize = 3;
/// The lab policy's id.
pub const POLICY_ID: &str = "bench-1000";

/// The lab: a 1,000-name zone on knotd, a country database for its addresses, a policy.
pub struct Lab {
    knot: KnotServer,
    pub dir: tempfile::TempDir,
    pub policy: PathBuf,
    pub queries: PathBuf,
}

/// The two IPv4 addresses and one IPv6 address of `h{i}`, spread over the three
/// documentation ranges so every endpoint gets addresses in two different countries.
fn addresses(i: usize) -> ([String; 2], String) {
    const V4: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];
    let host = i % 250 + 1;
    let a = format!("{}.{host}", V4[i % 3]);
    let b = format!("{}.{}", V4[(i + 1) % 3], host + 1);
    ([a, b], format!("2001:db8::{i:x}"))
}

impl Lab {
    pub fn start() -> Result<Lab, String> {
        let mut records = String::new();
        for i in 0..ENDPOINTS {
            let ([a, b], aaaa) = addresses(i);
            let _ = writeln!(
                records,
                "h{i} 300 A {a}\nh{i} 300 A {b}\nh{i} 300 AAAA {aaaa}"
            );
        }
        let knot = KnotServer::start(&[Zone::new("bench.test.", &records)], None);
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mmdb = dir.path().join("lab.mmdb");
        write_country_db(
            &mmdb,
            &[
                ("192.0.2.0/24", "IN"),
                ("198.51.100.0/24", "SG"),
                ("203.0.113.0/24", "US"),
                ("2001:db8::/32", "IN"),
            ],
        );

        let mut policy = format!(
            "id: {POLICY_ID}\nallow: [IN, US, SG]\ndeny: [CN]\nresolvers: [\"{}\"]\n\
             repeat: {REPEAT}\ndns: {{ timeout_ms: 2000, tries: 2 }}\ntrace: {{ enabled: false }}\nregistry: {{ enabled: false }}\ngeo:\n  databases: [{}]\n\
             endpoints:\n",
            knot.addr(),
            mmdb.display()
        );
        let mut queries = String::new();
        for i in 0..ENDPOINTS {
            let _ = writeln!(policy, "  - host: h{i}.bench.test");
        }
        for _ in 0..REPEAT {
            for i in 0..ENDPOINTS {
                let _ = writeln!(queries, "h{i}.bench.test A\nh{i}.bench.test AAAA");
            }
        }
        let policy_path = dir.path().join("bench-1000.yaml");
        let queries_path = dir.path().join("queries.txt");
        std::fs::write(&policy_path, policy).map_err(|e| format!("write policy: {e}"))?;
        std::fs::write(&queries_path, queries).map_err(|e| format!("write queries: {e}"))?;
        Ok(Lab {
            knot,
            dir,
            policy: policy_path,
            queries: queries_path,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.knot.addr()
    }
}
