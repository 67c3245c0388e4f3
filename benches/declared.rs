//! `cargo bench --bench declared`: longest-prefix lookups in the cloud providers' ranges, side
//! by side with a lookup in a MaxMind database (the shipped one, through the `maxminddb`
//! reader every geolocation tool uses) in the same run, on the same addresses.
//!
//! The ranges are AWS's shipped file and the corpus's complete Google, Azure, Oracle and
//! Cloudflare files (`../shared/corpus/cloud/upstream-gz/`, read here, never copied): about
//! 68,000 distinct prefixes. The addresses are `DECLARED_BENCH_N` (default 1,000,000), half drawn inside
//! listed prefixes and half anywhere in IPv4 and IPv6, from a fixed seed. Nothing is sent
//! anywhere: this only reads files. Median of 3 passes.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use residency::sources::declared::geofeed::Geofeed;
use residency::sources::declared::{CloudRanges, RangeSet, load_cloud_ranges};
use residency::sources::geo::{Locate, default_database};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench declared: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A small fixed-seed generator (xorshift64*), so every run asks the same addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn run() -> Result<(), String> {
    let n: usize = std::env::var("DECLARED_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let load = Instant::now();
    let mut ranges = load_cloud_ranges(None, &[]).map_err(|e| e.to_string())?;
    // AWS's file is the shipped one, already loaded.
    for (name, part) in common::PROVIDER_FILES
        .into_iter()
        .filter(|(name, _)| *name != "aws-ip-ranges.json")
    {
        let text = common::corpus_text(part);
        ranges.push(RangeSet::parse(name, "corpus", &text).map_err(|e| e.to_string())?);
    }
    let oracle = std::fs::read_to_string(common::corpus("cloud/oracle-public_ip_ranges.json"))
        .map_err(|e| format!("oracle file: {e}"))?;
    ranges.push(RangeSet::parse("oracle", "corpus", &oracle).map_err(|e| e.to_string())?);
    let loaded = load.elapsed();
    let prefixes: usize = ranges
        .sets()
        .iter()
        .map(|s| s.counts().0 + s.counts().1)
        .sum();

    // Half the addresses inside listed prefixes (found by asking random ones until they hit),
    // half anywhere.
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut addrs: Vec<IpAddr> = Vec::with_capacity(n);
    let random = |rng: &mut Rng| -> IpAddr {
        if rng.next().is_multiple_of(4) {
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(rng.next()) << 64) | u128::from(rng.next()),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
        }
    };
    let mut inside = 0;
    while addrs.len() < n {
        let ip = random(&mut rng);
        let hit = ranges.sets().iter().any(|s| s.lookup(ip).is_some());
        if hit && inside < n / 2 {
            inside += 1;
            addrs.push(ip);
        } else if !hit && addrs.len() - inside < n - n / 2 {
            addrs.push(ip);
        }
        if addrs.len() < n && inside < n / 2 && addrs.len() - inside >= n - n / 2 {
            // Only hits are wanted now: draw near AWS's 3.0.0.0/8 and 52.0.0.0/8 to find them sooner.
            let ip = IpAddr::V4(Ipv4Addr::from(
                0x0300_0000 | (rng.next() as u32 & 0x00ff_ffff),
            ));
            if ranges.sets().iter().any(|s| s.lookup(ip).is_some()) {
                inside += 1;
                addrs.push(ip);
            }
        }
    }

    let db = default_database().map_err(|e| e.to_string())?;
    let time = |f: &dyn Fn(IpAddr) -> usize| -> Duration {
        let mut passes: Vec<Duration> = (0..3)
            .map(|_| {
                let start = Instant::now();
                let mut sink = 0usize;
                for ip in &addrs {
                    sink = sink.wrapping_add(f(*ip));
                }
                std::hint::black_box(sink);
                start.elapsed()
            })
            .collect();
        passes.sort();
        passes[1]
    };
    let lpm = time(&|ip| {
        ranges
            .sets()
            .iter()
            .filter(|s| s.lookup(ip).is_some())
            .count()
    });
    let evidence = time(&|ip| CloudRanges::evidence(&ranges, ip).detail.len());
    let mmdb = time(&|ip| db.locate(ip).detail.len());
    let per = |d: Duration| d.as_secs_f64() * 1e9 / n as f64;
    // Reading the corpus's largest geofeed (Linode's, about 4,000 rows), median of 5.
    let linode = std::fs::read_to_string(common::corpus("geofeed/linode-geofeed.txt"))
        .map_err(|e| format!("linode feed: {e}"))?;
    let mut reads: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(Geofeed::parse("linode", None, &linode).len());
            start.elapsed()
        })
        .collect();
    reads.sort();
    let rows = Geofeed::parse("linode", None, &linode).len();
    println!(
        "cloud ranges: {prefixes} prefixes in {} files, loaded in {:.0} ms",
        ranges.sets().len(),
        loaded.as_secs_f64() * 1e3
    );
    println!("{n} addresses, {inside} inside a listed prefix; median of 3 passes:");
    println!("| lookup | per address |");
    println!("|---|---:|");
    println!(
        "| longest-prefix match in every provider's set (`RangeSet::lookup`) | {:.0} ns |",
        per(lpm)
    );
    println!(
        "| the whole evidence, detail text included (`CloudRanges::evidence`) | {:.0} ns |",
        per(evidence)
    );
    println!(
        "| peer: the shipped MaxMind database, evidence included (`maxminddb`) | {:.0} ns |",
        per(mmdb)
    );
    println!(
        "geofeed: {} bytes, {rows} rows read in {:.1} ms ({:.0} ns a row)",
        linode.len(),
        reads[2].as_secs_f64() * 1e3,
        reads[2].as_secs_f64() * 1e9 / rows.max(1) as f64
    );
    Ok(())
}
