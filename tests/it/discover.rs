//! `residency discover` on captures nobody here made: the phone and app captures of the real
//! corpus (nDPI's, JA4's, Zeek's and gopacket's), held against tshark reading the same files.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use residency::measure::capture::{self, Discovery, NameSource};

use crate::common::{self, cmd::Residency};

/// Every pcap and pcapng file of the corpus.
fn corpus_captures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["pcap/ndpi", "pcap/ja4", "pcap/zeek", "pcap/gopacket"] {
        let dir = common::corpus(dir);
        for entry in std::fs::read_dir(&dir)
            .expect("readable corpus folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "only {} captures found", files.len());
    files
}

/// The (server address, name) pairs tshark reads from ClientHellos (over TCP, and in QUIC
/// Initials, which tshark decrypts too) and HTTP requests of
/// `file`: what discovery must find too.
fn tshark_pairs(file: &Path) -> BTreeSet<(IpAddr, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args([
            "-Y",
            "tls.handshake.type == 1 || http.request",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tls.handshake.extensions_server_name",
            "-e",
            "http.host",
        ])
        .output()
        .expect("tshark runs (apt-get install tshark, as the README's test command does)");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pairs = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        // Tunnelled packets list every IP layer; the innermost is the server.
        let ip = [f[0], f[1]]
            .iter()
            .filter_map(|s| s.rsplit(',').next())
            .find_map(|s| s.parse::<IpAddr>().ok());
        let name = [f[2], f[3]]
            .iter()
            .map(|s| s.split(',').next().unwrap_or_default())
            .find(|s| !s.is_empty())
            .map(host);
        // A server on the device's own network is not a destination (see the module doc of
        // `measure::capture`), and a bare address in `Host` names nothing.
        if let (Some(ip), Some(name)) = (ip, name)
            && name.parse::<IpAddr>().is_err()
            && !capture::is_local(ip)
        {
            pairs.insert((ip, name));
        }
    }
    pairs
}

/// A `Host` as a name: without its port, lowercase.
fn host(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => {
            name.to_string()
        }
        _ => h,
    }
}

/// The problems of the first file read, as shown.
fn problems_of(d: &Discovery) -> Vec<String> {
    d.captures[0]
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn found_pairs(d: &Discovery) -> BTreeSet<(IpAddr, String)> {
    d.destinations
        .iter()
        .flat_map(|dest| {
            dest.named_by
                .iter()
                .filter(|n| {
                    matches!(
                        n.source,
                        NameSource::TlsSni | NameSource::HttpHost | NameSource::QuicSni
                    )
                })
                .map(move |n| (dest.ip, n.name.clone()))
        })
        .collect()
}

#[test]
fn every_server_name_tshark_reads_in_the_corpus_is_found() {
    let mut compared = 0;
    let mut missing = Vec::new();
    for file in corpus_captures() {
        let expected = tshark_pairs(&file);
        let found = found_pairs(&capture::discover(std::slice::from_ref(&file)).expect("reads"));
        for pair in expected.difference(&found) {
            missing.push(format!("{}: {} {}", file.display(), pair.0, pair.1));
        }
        compared += expected.len();
    }
    // 155 pairs in the corpus as of its MANIFEST; fewer means files went missing.
    assert!(compared >= 150, "only {compared} pairs compared");
    assert!(
        missing.is_empty(),
        "{} of {compared} pairs missed: {missing:#?}",
        missing.len()
    );
}

#[test]
fn the_xiaomi_capture_lists_its_servers_with_ip_layer_bytes_and_vlan() {
    let file = common::corpus("pcap/ndpi/xiaomi.pcap");
    let d = capture::discover(std::slice::from_ref(&file)).expect("reads");
    let by_ip = |ip: &str| {
        d.destinations
            .iter()
            .find(|x| x.ip.to_string() == ip)
            .unwrap_or_else(|| panic!("{ip} not found in {:#?}", d.destinations))
    };
    // nDPI (results/xiaomi.pcap.out) counts 8 frames of 2,061 bytes and 7 of 1,063 for this
    // flow; less 14 bytes of Ethernet header a frame, that is the IP layer.
    let aws = by_ip("18.193.233.122");
    assert_eq!((aws.packets_sent, aws.bytes_sent), (8, 2061 - 8 * 14));
    assert_eq!(
        (aws.packets_received, aws.bytes_received),
        (7, 1063 - 7 * 14)
    );
    assert_eq!(aws.ports, ["tcp/5222"]);
    // Inside an 802.1Q VLAN, and only ever sent to the device.
    let vlan = by_ip("47.241.7.88");
    assert_eq!((vlan.packets_sent, vlan.packets_received), (0, 1));
    // The HTTP Host there is the address itself: no name.
    assert!(by_ip("203.107.1.65").names.is_empty());
    assert_eq!(d.destinations.len(), 6);
    assert_eq!(d.destinations.iter().map(|x| x.flows).sum::<u64>(), 7);
}

#[test]
fn dns_answers_name_the_addresses_with_their_cname_chain() {
    // tshark: captive.apple.com → captive-cidr.origin-apple.com.akadns.net →
    // captive-cdn.origin-apple.com.akadns.net → captive.g.aaplimg.com → 17.253.53.201, .208
    let d = capture::discover(&[common::corpus("pcap/ndpi/android.pcap")]).expect("reads");
    let record = d
        .dns
        .iter()
        .find(|r| r.name == "captive.apple.com" && r.rtype == "A")
        .unwrap_or_else(|| panic!("no answer for captive.apple.com: {:#?}", d.dns));
    assert_eq!(
        record.answers,
        [
            "captive-cidr.origin-apple.com.akadns.net",
            "captive-cdn.origin-apple.com.akadns.net",
            "captive.g.aaplimg.com",
            "17.253.53.201",
            "17.253.53.208"
        ]
    );
    // The pcapng whose name says pcap, with its resolver on another network.
    let d = capture::discover(&[common::corpus("pcap/ndpi/dns.pcap")]).expect("reads");
    assert_eq!(d.captures[0].format, capture::CaptureFormat::Pcapng);
    let whatsapp = d
        .dns
        .iter()
        .find(|r| r.name == "e7.whatsapp.net")
        .unwrap_or_else(|| panic!("{:#?}", d.dns));
    assert_eq!(whatsapp.answers.len(), 8);
    assert_eq!(whatsapp.resolver.to_string(), "82.178.158.181");
}

#[test]
fn discover_prints_json_and_names_what_it_could_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = std::fs::read(common::corpus("pcap/ja4/tls-sni.pcapng")).expect("read");
    // Cut in the middle of a block: everything before it still counts, and the cut is named.
    let cut = dir.path().join("cut.pcapng");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let o = Residency::new(dir.path())
        .args(["discover", "--format", "json"])
        .arg(&cut)
        .output();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        json["destinations"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(json["captures"][0]["format"], "pcapng");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("cut.pcapng: byte ") && stderr.contains("truncated"),
        "{stderr}"
    );

    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"not a capture").expect("write");
    let o = Residency::new(dir.path())
        .arg("discover")
        .arg(&empty)
        .output();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("the file is empty"));
    let o = Residency::new(dir.path())
        .arg("discover")
        .arg(&text)
        .output();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a capture"));
}

#[test]
fn a_bad_block_length_and_records_past_the_snaplen_are_named_with_their_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // pcapng: the second block (the interface description, at byte 28 after a 28-byte section
    // header in this file) claims a length that is not a multiple of 4.
    let mut ng = std::fs::read(common::corpus("pcap/ja4/tls-sni.pcapng")).expect("read");
    let shb_len = u32::from_le_bytes(ng[4..8].try_into().expect("4 bytes")) as usize;
    ng[shb_len + 4..shb_len + 8].copy_from_slice(&13u32.to_le_bytes());
    let bad = dir.path().join("bad-length.pcapng");
    std::fs::write(&bad, &ng).expect("write");
    let d = capture::discover(std::slice::from_ref(&bad)).expect("reads what it can");
    let problems = problems_of(&d);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("byte {shb_len}: "))),
        "{problems:?}"
    );

    // Legacy pcap: a snaplen of 64 in the file header, with full-size records after it.
    let mut pcap = std::fs::read(common::corpus("pcap/ndpi/xiaomi.pcap")).expect("read");
    pcap[16..20].copy_from_slice(&64u32.to_le_bytes());
    let long = dir.path().join("long-records.pcap");
    std::fs::write(&long, &pcap).expect("write");
    let d = capture::discover(std::slice::from_ref(&long)).expect("reads");
    let problems = problems_of(&d);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("longer than the capture's snaplen")),
        "{problems:?}"
    );
    // Read as recorded: the same destinations as the original.
    assert_eq!(d.destinations.len(), 6);
}

/// The same traffic read two ways: the packets themselves, and Zeek's logs of them (its btest
/// baselines for `wikipedia.pcap`). Flows, packets and IP-layer bytes must agree exactly.
#[test]
fn the_wikipedia_capture_and_zeeks_logs_of_it_agree_on_every_destination() {
    let from_packets =
        capture::discover(&[common::corpus("pcap/zeek/wikipedia.pcap")]).expect("pcap");
    let from_logs = capture::discover(&[
        common::corpus("zeek/zeek-baseline/opt.basic-conn.log"),
        common::corpus("zeek/zeek-baseline/opt.basic-http.log"),
        common::corpus("zeek/zeek-baseline/opt.basic-dns.log"),
    ])
    .expect("logs");
    let counts = |d: &Discovery| {
        d.destinations
            .iter()
            .map(|x| {
                (
                    x.ip,
                    x.flows,
                    x.packets_sent,
                    x.packets_received,
                    x.bytes_sent,
                    x.bytes_received,
                    x.ports.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&from_packets), counts(&from_logs));
    assert_eq!(
        from_logs.captures[0].format,
        capture::CaptureFormat::ZeekTsv
    );
    // Zeek's http.log names the servers as the Host headers did.
    let named = |d: &Discovery, ip: &str, source: NameSource| {
        d.destinations
            .iter()
            .filter(|x| x.ip.to_string() == ip)
            .flat_map(|x| x.named_by.iter().filter(|n| n.source == source))
            .map(|n| n.name.clone())
            .collect::<BTreeSet<_>>()
    };
    assert!(named(&from_logs, "208.80.152.118", NameSource::Zeek).contains("bits.wikimedia.org"));
    assert!(
        named(&from_packets, "208.80.152.118", NameSource::HttpHost).contains("bits.wikimedia.org")
    );
}

#[test]
fn zeek_logs_read_the_same_as_tsv_and_as_json() {
    let pairs = |file: &str| {
        let d = capture::discover(&[common::corpus(file)]).expect("reads");
        assert!(
            d.captures[0].problems.is_empty(),
            "{:?}",
            d.captures[0].problems
        );
        found_names(&d)
    };
    let tsv = pairs("zeek/wrccdc-tsv/ssl.log");
    assert!(tsv.len() > 10, "{tsv:?}");
    assert_eq!(tsv, pairs("zeek/wrccdc-json/ssl.ndjson"));
    let dns_tsv = capture::discover(&[common::corpus("zeek/wrccdc-tsv/dns.log")]).expect("tsv");
    let dns_json =
        capture::discover(&[common::corpus("zeek/wrccdc-json/dns.ndjson")]).expect("json");
    assert_eq!(dns_tsv.dns, dns_json.dns);
    assert!(dns_tsv.dns.len() > 100);
    // Answers name addresses; they are not contacts.
    assert!(dns_json.destinations.is_empty());

    // A log that lost its header says where, and reads nothing it cannot place.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(common::corpus("zeek/wrccdc-tsv/ssl.log")).expect("read");
    let headless: String = text
        .lines()
        .filter(|l| !l.starts_with("#fields"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("ssl.log");
    std::fs::write(&file, headless).expect("write");
    let d = capture::discover(std::slice::from_ref(&file)).expect("reads");
    let problems = problems_of(&d);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("line 8: ") && p.contains("#fields")),
        "{problems:?}"
    );
    assert!(d.destinations.is_empty());
}

fn found_names(d: &Discovery) -> BTreeSet<(IpAddr, String)> {
    d.destinations
        .iter()
        .flat_map(|x| x.named_by.iter().map(move |n| (x.ip, n.name.clone())))
        .collect()
}

#[test]
fn every_har_in_the_corpus_reads_and_names_its_servers() {
    let dir = common::corpus("har");
    let mut files = Vec::new();
    for sub in std::fs::read_dir(&dir).expect("har folder").flatten() {
        for f in std::fs::read_dir(sub.path())
            .expect("har subfolder")
            .flatten()
        {
            files.push(f.path());
        }
    }
    assert!(files.len() >= 9, "{files:?}");
    for file in &files {
        let d = capture::discover(std::slice::from_ref(file)).expect("reads");
        assert_eq!(
            d.captures[0].format,
            capture::CaptureFormat::Har,
            "{}",
            file.display()
        );
        assert!(
            d.captures[0].problems.is_empty(),
            "{}: {:?}",
            file.display(),
            d.captures[0].problems
        );
        assert!(d.captures[0].packets > 0, "{}: no entries", file.display());
        assert!(
            !d.destinations.is_empty() || !d.names_without_address.is_empty(),
            "{}: nothing named",
            file.display()
        );
    }
    let chrome = capture::discover(&[common::corpus("har/mitmproxy/chrome.har")]).expect("chrome");
    assert!(found_names(&chrome).contains(&(
        "108.138.246.80".parse().expect("ip"),
        "mitmproxy.org".into()
    )));
    // HTTP/3 entries are QUIC, over UDP.
    assert!(chrome.destinations.iter().any(|x| x.ports == ["udp/443"]));
    let insomnia =
        capture::discover(&[common::corpus("har/mitmproxy/insomnia.har")]).expect("insomnia");
    assert!(
        insomnia
            .names_without_address
            .iter()
            .any(|n| n.name == "mitm.it")
    );

    // Bytes that are not UTF-8 are named by line, and the rest is still read.
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(common::corpus("har/mitmproxy/chrome.har")).expect("read");
    let at = bytes
        .windows(13)
        .position(|w| w == b"mitmproxy.org")
        .expect("a name to damage");
    bytes.insert(at + 13, 0xff);
    let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
    let damaged = scratch.path().join("damaged.har");
    std::fs::write(&damaged, &bytes).expect("write");
    let d = capture::discover(std::slice::from_ref(&damaged)).expect("reads");
    let problems = problems_of(&d);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("line {line}: ")) && p.contains("UTF-8")),
        "{problems:?}"
    );
    assert!(!d.destinations.is_empty());
}

#[test]
fn a_drafted_policy_validates_lists_unnamed_addresses_and_is_never_overwritten_silently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let draft = dir.path().join("draft.yaml");
    let discover = |extra: &[&str]| {
        Residency::new(dir.path())
            .arg("discover")
            .arg(common::corpus("pcap/ndpi/xiaomi.pcap"))
            .arg(common::corpus("pcap/ja4/http1.pcapng"))
            .arg("--policy-out")
            .arg(&draft)
            .args([
                "--id",
                "xiaomi-draft",
                "--allow",
                "IN,US,SG",
                "--deny",
                "CN",
            ])
            .args(extra)
            .output()
    };
    let o = discover(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&draft).expect("draft written");
    assert!(
        text.contains("id: xiaomi-draft\nallow: [IN, US, SG]\ndeny: [CN]\n"),
        "{text}"
    );
    assert!(
        text.contains("  - host: \"connectivitycheck.gstatic.com\""),
        "{text}"
    );
    // Unnamed: the AWS address the Xiaomi phone sent 1,949 bytes to.
    assert!(
        text.contains("  # unnamed: 1949 bytes sent, 965 received, 1 flow(s) over tcp/5222\n  - host: \"18.193.233.122\""),
        "{text}"
    );
    let v = Residency::new(dir.path())
        .arg("validate")
        .arg(&draft)
        .output();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    let again = discover(&[]);
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&draft).expect("kept"), text);
    let forced = discover(&["--force"]);
    assert!(forced.status.success());

    let no_allow = Residency::new(dir.path())
        .arg("discover")
        .arg(common::corpus("pcap/ndpi/xiaomi.pcap"))
        .args(["--policy-out", "other.yaml", "--id", "x"])
        .output();
    assert_eq!(no_allow.status.code(), Some(3), "a usage error");
    assert!(String::from_utf8_lossy(&no_allow.stderr).contains("--allow"));
}

/// `check --capture` judges what the Xiaomi phone contacted in the same run as the policy's
/// own endpoints, offline: probing and registries off, the only resolver a closed loopback port,
/// so every address is placed by the shipped database.
#[test]
fn check_with_a_capture_judges_the_cn_destination_a_violation_and_counts_its_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("xiaomi.yaml");
    std::fs::write(
        &policy,
        "id: xiaomi-india\nallow: [IN]\ndeny: [CN]\nendpoints:\n  - host: 8.8.8.8\n",
    )
    .expect("write");
    let capture = common::corpus("pcap/ndpi/xiaomi.pcap");
    let o = Residency::new(dir.path())
        .arg("check")
        .arg(&policy)
        .arg("--capture")
        .arg(&capture)
        .args([
            "--no-trace",
            "--no-registry",
            "--resolver",
            "127.0.0.1:9",
            "--format",
            "json",
        ])
        .output();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let section = &doc["capture"];
    let sha = {
        use sha2::Digest;
        let bytes = std::fs::read(&capture).expect("read");
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(section["files"][0]["sha256"], sha.as_str());
    assert_eq!(section["files"][0]["format"], "pcap");
    let alibaba = section["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .find(|d| d["ip"] == "203.107.1.65")
        .expect("the Alibaba address");
    assert_eq!(alibaba["country"], "CN");
    assert_eq!(alibaba["verdict"], "violation");
    assert_eq!(alibaba["bytes_sent"], 488);
    assert_eq!(section["bytes_sent_by_country"]["CN"], 488);
    let total: u64 = section["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .filter_map(|d| d["bytes_sent"].as_u64())
        .sum();
    let by_country: u64 = section["bytes_sent_by_country"]
        .as_object()
        .expect("map")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(
        total,
        by_country + section["bytes_sent_unlocated"].as_u64().expect("n")
    );
    // Each captured destination is an endpoint of the run, and counts in its verdict.
    let hosts: Vec<&str> = doc["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["host"].as_str())
        .collect();
    assert!(
        hosts.contains(&"8.8.8.8") && hosts.contains(&"203.107.1.65"),
        "{hosts:?}"
    );
    assert_eq!(doc["verdict"], "violation");
    // Recorded, hash-chained, and verifiable like any run.
    let v = Residency::new(dir.path())
        .args(["history", "verify"])
        .output();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // Reports show the bytes per country, as a table and a chart.
    for out in ["r.md", "r.html", "r.pdf"] {
        let o = Residency::new(dir.path())
            .args(["report", "xiaomi-india", "--out", out])
            .output();
        assert!(
            o.status.success(),
            "{out}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let md = std::fs::read_to_string(dir.path().join("r.md")).expect("md");
    assert!(md.contains("## What the device sent, by country"), "{md}");
    assert!(md.contains("| CN China | denied | 488 |"), "{md}");
    assert!(md.contains(&sha), "{md}");
    let html = std::fs::read_to_string(dir.path().join("r.html")).expect("html");
    assert!(html.contains("<section id=\"capture\">"));
    assert!(
        html.contains("bytes sent by the device, per country"),
        "the chart"
    );
    let text = Command::new("pdftotext")
        .arg(dir.path().join("r.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext (apt-get install poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("What the device sent, by country"), "{text}");
    assert!(text.contains("488"), "{text}");
}

/// Names hidden from the capture are reported as hidden, with the destination still counted.
#[test]
fn dot_doh_and_ech_are_flagged_as_hiding_names() {
    let hidden = |file: &str| {
        let d = capture::discover(&[common::corpus(file)]).expect("reads");
        d.destinations
            .iter()
            .filter(|x| !x.hidden.is_empty())
            .map(|x| {
                let flags: Vec<String> = x
                    .hidden
                    .iter()
                    .map(|h| {
                        serde_json::to_value(h)
                            .expect("json")
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                (x.ip.to_string(), flags.join(","), x.bytes_sent > 0)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hidden("pcap/ndpi/tls_ech.pcapng"),
        [("2606:4700::6812:1e4e".to_string(), "ech".to_string(), true)]
    );
    let dot = hidden("pcap/ndpi/googledns_android10.pcap");
    assert!(
        dot.contains(&("8.8.8.8".into(), "dot".into(), true)),
        "{dot:?}"
    );
    assert_eq!(
        hidden("pcap/ndpi/dns_doh.pcap"),
        [("104.16.248.249".to_string(), "doh".to_string(), true)]
    );
}

/// Names in a capture are the device's and the network's words: printed, their control
/// characters are made visible, never sent to the terminal. (httparse already refuses a `Host`
/// with control characters; a Zeek log carries whatever the server name was.)
#[test]
fn hostile_names_in_a_capture_are_printed_visibly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ssl.ndjson");
    std::fs::write(
        &file,
        "{\"_path\":\"ssl\",\"uid\":\"C1\",\"id.orig_h\":\"10.0.0.2\",\"id.resp_h\":\"198.51.100.7\",\"id.resp_p\":443,\"server_name\":\"evil\\u001b[2Jname.example\"}\n",
    )
    .expect("write");
    for format in ["table", "json"] {
        let o = Residency::new(dir.path())
            .args(["discover", "--format", format])
            .arg(&file)
            .output();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            !out.contains('\x1b'),
            "{format}: a raw escape reached the output: {out:?}"
        );
        assert!(out.contains("name.example"), "{format}: {out}");
        // The table shows it as ⟦U+001B⟧; JSON keeps its `\u001b` escape.
        let shown = if format == "json" {
            "\\u001b"
        } else {
            "U+001B"
        };
        assert!(
            out.contains(shown),
            "{format}: the escape is not shown: {out}"
        );
    }
}
