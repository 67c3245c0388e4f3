//! `cargo bench --bench discover`: reading a large capture as a stream, side by side with
//! `tshark -q -z conv,ip` and `tcpdump -nr` on the same file: wall time, throughput and peak
//! memory (GNU time), median of 3.
//!
//! The capture is made here from real frames: every Ethernet frame of the corpus's phone
//! captures (`../shared/corpus/pcap/ndpi/`), written over and over into one legacy pcap of
//! `DISCOVER_BENCH_MB` megabytes (default 1024), each round with the third octet of every public
//! IPv4 address shifted, so the file holds about 256 times the corpus's destinations rather than
//! one small set repeated. Nothing is sent anywhere: this only reads files.
//!
//! Needs `tshark`, `tcpdump` and GNU time (`/usr/bin/time`); a missing one is an error, never a
//! skip.

#[path = "util.rs"]
mod util;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use pcap_parser::{PcapBlockOwned, PcapError};
use util::{find_in_path, median, run_bounded};

const RUNS: usize = 3;
const DEADLINE: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench discover: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let time = PathBuf::from("/usr/bin/time");
    let tshark = find_in_path("tshark");
    let tcpdump = find_in_path("tcpdump");
    let (Some(tshark), Some(tcpdump), true) = (tshark, tcpdump, time.is_file()) else {
        return Err(
            "needs tshark, tcpdump and GNU time: apt-get install tshark tcpdump time".into(),
        );
    };
    let mb: u64 = std::env::var("DISCOVER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = scratch.path().join("big.pcap");
    let (frames, bytes) = write_capture(&file, mb * 1_000_000)?;
    println!(
        "capture: {} frames, {:.0} MB (legacy pcap, Ethernet)",
        frames,
        bytes as f64 / 1e6
    );
    let tools: [(&str, Vec<String>); 3] = [
        (
            "residency discover --format json",
            vec![
                env!("CARGO_BIN_EXE_residency").into(),
                "discover".into(),
                "--format".into(),
                "json".into(),
                file.display().to_string(),
            ],
        ),
        (
            "tshark -q -z conv,ip",
            vec![
                tshark.display().to_string(),
                "-n".into(),
                "-q".into(),
                "-z".into(),
                "conv,ip".into(),
                "-r".into(),
                file.display().to_string(),
            ],
        ),
        (
            "tcpdump -nr",
            vec![
                tcpdump.display().to_string(),
                "-n".into(),
                "-r".into(),
                file.display().to_string(),
            ],
        ),
    ];
    println!("\n| tool | wall s | MB/s | peak RSS MB |\n|---|---:|---:|---:|");
    for (name, argv) in tools {
        let mut walls = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..RUNS {
            let (wall, kb) = timed(&time, &argv, scratch.path())?;
            walls.push(wall);
            rss.push(kb);
        }
        let wall = median(&walls);
        println!(
            "| {name} | {wall:.2} | {:.0} | {:.0} |",
            bytes as f64 / 1e6 / wall,
            median(&rss) as f64 / 1024.0
        );
    }
    Ok(())
}

/// Runs `argv` under GNU time; its wall seconds and peak RSS (KB).
fn timed(time: &Path, argv: &[String], work: &Path) -> Result<(f64, u64), String> {
    let report = work.join("time.txt");
    let mut cmd = Command::new(time);
    cmd.arg("-f").arg("%e %M").arg("-o").arg(&report).args(argv);
    let out = work.join("out.txt");
    let err = work.join("err.txt");
    let done = run_bounded(cmd, &out, &err, DEADLINE)?
        .ok_or_else(|| format!("{} did not finish in {DEADLINE:?}", argv[0]))?;
    if !done.status.success() {
        return Err(format!(
            "{} failed: {}",
            argv[0],
            std::fs::read_to_string(&err).unwrap_or_default()
        ));
    }
    let text = std::fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let last = text.lines().last().unwrap_or_default();
    let mut f = last.split_whitespace();
    let wall = f
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("GNU time: no wall time")?;
    let kb = f
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("GNU time: no RSS")?;
    Ok((wall, kb))
}

/// The Ethernet frames of the corpus's phone captures.
fn corpus_frames() -> Result<Vec<Vec<u8>>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcap/ndpi");
    let mut frames = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let file = File::open(&path).map_err(|e| e.to_string())?;
        let mut reader = pcap_parser::create_reader(1 << 20, file).map_err(|e| format!("{e:?}"))?;
        let mut ethernet = false;
        loop {
            match reader.next() {
                Ok((n, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => ethernet = h.network.0 == 1,
                        PcapBlockOwned::Legacy(b) if ethernet => frames.push(b.data.to_vec()),
                        _ => {}
                    }
                    reader.consume(n);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => reader.refill().map_err(|e| format!("{e:?}"))?,
                Err(e) => return Err(format!("{}: {e:?}", path.display())),
            }
        }
    }
    if frames.is_empty() {
        return Err(format!("no Ethernet frames in {}", dir.display()));
    }
    Ok(frames)
}

/// Writes frames round after round until `target` bytes; returns (frames, bytes written).
fn write_capture(path: &Path, target: u64) -> Result<(u64, u64), String> {
    let frames = corpus_frames()?;
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&262_144u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&header).map_err(|e| e.to_string())?;
    let (mut written, mut count, mut round) = (24u64, 0u64, 0u32);
    let mut second = 1_700_000_000u32;
    'rounds: loop {
        for frame in &frames {
            if written >= target {
                break 'rounds;
            }
            let mut f = frame.clone();
            shift_public_ipv4(&mut f, round);
            let mut record = Vec::with_capacity(16);
            record.extend_from_slice(&second.to_le_bytes());
            record.extend_from_slice(&((count % 1_000_000) as u32).to_le_bytes());
            record.extend_from_slice(&(f.len() as u32).to_le_bytes());
            record.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.write_all(&record).map_err(|e| e.to_string())?;
            out.write_all(&f).map_err(|e| e.to_string())?;
            written += 16 + f.len() as u64;
            count += 1;
            if count % 1_000_000 == 0 {
                second += 1;
            }
        }
        round += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok((count, written))
}

/// Shifts the third octet of each public IPv4 address of an Ethernet/IPv4 frame by `round`.
fn shift_public_ipv4(frame: &mut [u8], round: u32) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    for at in [26usize, 30] {
        let first = frame[at];
        let second = frame[at + 1];
        let private = first == 10
            || first == 127
            || (first == 192 && second == 168)
            || (first == 172 && (16..32).contains(&second))
            || (first == 169 && second == 254)
            || first >= 224;
        if !private {
            frame[at + 2] = frame[at + 2].wrapping_add(round as u8);
        }
    }
}
