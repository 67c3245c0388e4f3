//! Operator-declared evidence from the providers' real files (`../shared/corpus/cloud/`, read
//! at test time): every file parses, known prefixes give their known region, country and city,
//! global and anycast ranges give no country, and every region the shipped and real files name
//! has a row in `data/cloud-regions.csv`.

use std::net::IpAddr;
use std::path::Path;

use crate::common;
use residency::model::{Confidence, SourceKind};
use residency::sources::declared::cloud::{self, Placed};
use residency::sources::declared::{CloudRanges, Provider, RangeSet, load_cloud_ranges};

fn parse(part: &str) -> RangeSet {
    let name = Path::new(part)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(part)
        .trim_end_matches(".gz");
    RangeSet::parse(name, "corpus", &common::corpus_text(part)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every real file of the corpus, with its provider.
const FILES: &[(&str, Provider)] = &[
    ("cloud/aws-ip-ranges.trimmed.json", Provider::Aws),
    ("cloud/upstream-gz/aws.json.gz", Provider::Aws),
    ("cloud/gcp-cloud.json", Provider::Gcp),
    ("cloud/upstream-gz/gcp.json.gz", Provider::Gcp),
    ("cloud/azure-servicetags.trimmed.json", Provider::Azure),
    ("cloud/upstream-gz/azure.json.gz", Provider::Azure),
    ("cloud/oracle-public_ip_ranges.json", Provider::Oracle),
    (
        "cloud/upstream-gz/cloudflare-v4.txt.gz",
        Provider::Cloudflare,
    ),
    (
        "cloud/upstream-gz/cloudflare-v6.txt.gz",
        Provider::Cloudflare,
    ),
];

/// The first prefix the raw JSON lists for `region` under `list`/`key`/`region_key`, found at
/// test time so nothing of the file is copied here.
fn first_prefix(
    json: &serde_json::Value,
    list: &str,
    key: &str,
    region_key: &str,
    region: &str,
) -> String {
    json[list]
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p[region_key] == region && p[key].is_string())
        .and_then(|p| p[key].as_str())
        .unwrap_or_else(|| panic!("no {region} prefix in {list}"))
        .to_string()
}

/// An address inside a prefix: its network address plus one (the network itself for a /32).
fn inside(prefix: &str) -> IpAddr {
    let net: ipnetwork::IpNetwork = prefix.parse().expect("prefix");
    match net {
        ipnetwork::IpNetwork::V4(n) if n.prefix() < 32 => {
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(n.network()) + 1))
        }
        ipnetwork::IpNetwork::V6(n) if n.prefix() < 128 => {
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(n.network()) + 1))
        }
        other => other.network(),
    }
}

#[test]
fn every_real_range_file_parses_with_its_provider_and_date() {
    for (part, provider) in FILES {
        let set = parse(part);
        assert_eq!(set.provider, *provider, "{part}");
        let (v4, v6) = set.counts();
        assert!(v4 + v6 > 0, "{part}");
        if *provider != Provider::Cloudflare {
            assert!(
                set.published.is_some(),
                "{part}: the file's own date or version"
            );
        }
    }
    let full = parse("cloud/upstream-gz/aws.json.gz");
    assert!(
        full.counts().0 > 5_000 && full.counts().1 > 2_000,
        "{:?}",
        full.counts()
    );
}

#[test]
fn known_prefixes_give_their_region_country_and_city() {
    let aws_json: serde_json::Value =
        serde_json::from_str(&common::corpus_text("cloud/aws-ip-ranges.trimmed.json"))
            .expect("json");
    let azure_json: serde_json::Value =
        serde_json::from_str(&common::corpus_text("cloud/azure-servicetags.trimmed.json"))
            .expect("json");
    let gcp_json: serde_json::Value =
        serde_json::from_str(&common::corpus_text("cloud/gcp-cloud.json")).expect("json");
    let mumbai = first_prefix(&aws_json, "prefixes", "ip_prefix", "region", "ap-south-1");
    let mumbai6 = first_prefix(
        &aws_json,
        "ipv6_prefixes",
        "ipv6_prefix",
        "region",
        "ap-south-1",
    );
    let beijing = first_prefix(&aws_json, "prefixes", "ip_prefix", "region", "cn-north-1");
    let gcp_mumbai = first_prefix(&gcp_json, "prefixes", "ipv4Prefix", "scope", "asia-south1");
    let pune = azure_json["values"]
        .as_array()
        .expect("values")
        .iter()
        .find(|t| t["name"] == "AzureCloud.centralindia")
        .and_then(|t| t["properties"]["addressPrefixes"][0].as_str())
        .expect("an AzureCloud.centralindia prefix")
        .to_string();

    let ranges = CloudRanges::new(vec![
        parse("cloud/aws-ip-ranges.trimmed.json"),
        parse("cloud/azure-servicetags.trimmed.json"),
        parse("cloud/gcp-cloud.json"),
    ]);
    for (prefix, source, region, country, city) in [
        (&mumbai, "aws-ip-ranges", "ap-south-1", "IN", "Mumbai"),
        (&mumbai6, "aws-ip-ranges", "ap-south-1", "IN", "Mumbai"),
        (&beijing, "aws-ip-ranges", "cn-north-1", "CN", "Beijing"),
        (&pune, "azure-service-tags", "centralindia", "IN", "Pune"),
        (
            &gcp_mumbai,
            "gcp-cloud-ranges",
            "asia-south1",
            "IN",
            "Mumbai",
        ),
    ] {
        let e = ranges.evidence(inside(prefix));
        assert_eq!(e.source, source, "{prefix}: {}", e.detail);
        assert_eq!(e.kind, SourceKind::OperatorDeclared);
        assert_eq!(
            e.country.map(|c| c.to_string()).as_deref(),
            Some(country),
            "{prefix}: {}",
            e.detail
        );
        assert_eq!(e.city.as_deref(), Some(city), "{prefix}");
        assert_eq!(e.confidence, Confidence::Medium);
        assert!(e.coordinates.is_some(), "{prefix}");
        assert!(
            e.detail.contains(&format!("in region {region}")),
            "{}",
            e.detail
        );
    }
}

#[test]
fn global_and_anycast_ranges_name_no_country() {
    let aws_json: serde_json::Value =
        serde_json::from_str(&common::corpus_text("cloud/aws-ip-ranges.trimmed.json"))
            .expect("json");
    let global = first_prefix(&aws_json, "prefixes", "ip_prefix", "region", "GLOBAL");
    let cloudflare = common::corpus_text("cloud/upstream-gz/cloudflare-v4.txt.gz");
    let cloudflare = cloudflare
        .lines()
        .next()
        .expect("a prefix")
        .trim()
        .to_string();
    let ranges = CloudRanges::new(vec![
        parse("cloud/aws-ip-ranges.trimmed.json"),
        parse("cloud/upstream-gz/cloudflare-v4.txt.gz"),
    ]);
    for prefix in [&global, &cloudflare] {
        let e = ranges.evidence(inside(prefix));
        assert_eq!(e.country, None, "{prefix}: {}", e.detail);
        assert!(
            e.detail.contains("anycast / no fixed location"),
            "{}",
            e.detail
        );
    }
}

#[test]
fn every_region_of_the_shipped_and_real_files_has_a_row() {
    let table = cloud::regions().expect("the shipped region table parses");
    let shipped = load_cloud_ranges(None, &[]).expect("the shipped ranges load");
    assert!(!shipped.sets().is_empty(), "AWS's file is shipped");
    let mut sets: Vec<RangeSet> = shipped.sets().to_vec();
    sets.extend(FILES.iter().map(|(part, _)| parse(part)));
    let mut missing = Vec::new();
    for set in &sets {
        for region in set.regions() {
            if !table.contains_key(&(set.provider.key().to_string(), region.clone())) {
                missing.push(format!("{} {region} ({})", set.provider.key(), set.origin));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "regions without a row in data/cloud-regions.csv:\n{}",
        missing.join("\n")
    );
    // Rows left without a place are the providers' own silence, said so in the evidence.
    let declared = cloud::Declared {
        region: Some("me-west-1".into()),
        ..Default::default()
    };
    assert_eq!(
        cloud::place(Provider::Aws, &declared),
        Placed::Unplaced("me-west-1".into())
    );
}

#[test]
fn a_user_copy_is_asked_before_the_shipped_one_and_bad_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A user's own file lists a prefix the shipped one does not know, in another region.
    let own = dir.path().join("ip-ranges.json");
    std::fs::write(
        &own,
        r#"{"createDate":"2026-12-01-00-00-00","prefixes":[{"ip_prefix":"192.0.2.0/24","region":"ap-south-2","service":"EC2","network_border_group":"ap-south-2"}],"ipv6_prefixes":[]}"#,
    )
    .expect("write");
    let ranges = load_cloud_ranges(None, std::slice::from_ref(&own)).expect("loads");
    let e = ranges.evidence("192.0.2.7".parse().expect("ip"));
    assert_eq!(e.city.as_deref(), Some("Hyderabad"), "{}", e.detail);
    assert!(
        e.detail.contains("2026-12-01"),
        "the file's own date: {}",
        e.detail
    );
    assert!(
        e.detail.contains(&own.display().to_string()),
        "{}",
        e.detail
    );

    // An update in the data directory is preferred over the shipped copy.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("cloud")).expect("mkdir");
    std::fs::copy(&own, data.join("cloud/aws-ip-ranges.json")).expect("copy");
    let ranges = load_cloud_ranges(Some(&data), &[]).expect("loads");
    let aws: Vec<&RangeSet> = ranges
        .sets()
        .iter()
        .filter(|s| s.provider == Provider::Aws)
        .collect();
    assert_eq!(aws.len(), 1);
    assert!(aws[0].origin.contains("updated copy"), "{}", aws[0].origin);

    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\n  \"createDate\": \"x\",\n  \"prefixes\": [\n").expect("write");
    let e = load_cloud_ranges(None, std::slice::from_ref(&bad)).expect_err("truncated JSON");
    let text = e.to_string();
    assert!(
        text.contains("broken.json") && text.contains("line 4"),
        "{text}"
    );
}

/// Every real geofeed of the corpus: read without failing, the malformed rows (mnm.com's
/// seven-column row) reported with their line and skipped, and known rows located.
#[test]
fn every_real_geofeed_is_read_and_its_malformed_rows_reported() {
    use residency::sources::declared::geofeed::Geofeed;
    let dir = common::corpus("geofeed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("geofeed dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let mut total = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read feed");
        let feed = Geofeed::parse(&path.display().to_string(), None, &text);
        let rows = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count();
        // Every data row is either read or reported (a repeat is both).
        assert!(
            feed.len() + feed.problems.len() >= rows,
            "{}: {} + {:?} < {rows}",
            path.display(),
            feed.len(),
            feed.problems
        );
        assert!(!feed.is_empty(), "{}", path.display());
        total += feed.len();
    }
    assert!(total > 1_000, "{total}");

    let mnm = common::corpus("geofeed/mnmcom-geofeeds.csv");
    let text = std::fs::read_to_string(&mnm).expect("read");
    let feed = Geofeed::parse("mnm", None, &text);
    let bad_line = text
        .lines()
        .position(|l| l.starts_with("92.61.63.54/32,"))
        .expect("the malformed row")
        + 1;
    assert!(
        feed.problems
            .iter()
            .any(|p| p.line == bad_line && p.what.contains("7 columns")),
        "{:?}",
        feed.problems
    );
    // Six-column rows (a trailing comma) are read; the malformed host is not listed, its /24 is.
    let e = feed
        .evidence("92.61.63.41".parse().expect("ip"), None)
        .expect("listed");
    assert_eq!(
        (e.country.map(|c| c.to_string()), e.city.as_deref()),
        (Some("AT".into()), Some("Wien"))
    );
    let e = feed
        .evidence("92.61.63.54".parse().expect("ip"), None)
        .expect("the /24");
    assert!(e.detail.contains("92.61.63.0/24"), "{}", e.detail);

    let india = common::corpus("geofeed/as149794-india-geofeed.csv");
    let feed = Geofeed::parse(
        "as149794",
        None,
        &std::fs::read_to_string(&india).expect("read"),
    );
    let e = feed
        .evidence("103.176.189.10".parse().expect("ip"), None)
        .expect("listed");
    assert_eq!(e.city.as_deref(), Some("Bengaluru"));
    assert_eq!(e.country.map(|c| c.to_string()).as_deref(), Some("IN"));
    let e = feed
        .evidence("122.99.126.1".parse().expect("ip"), None)
        .expect("the empty row");
    assert_eq!(e.country, None, "an all-empty row is not a location");
}

/// A geofeed linked from a real RDAP answer (RIPE NCC's 193.0.0.0 - 193.0.7.255, with a
/// `links[rel="geo"]` added at test time, as RIPE's `geofeed1` extension writes it), served
/// over HTTP on loopback, read through `locate`: rows inside the network locate the address,
/// a row wider than the network is ignored with the reason, and the feed is fetched once.
#[test]
fn a_geofeed_linked_from_rdap_locates_inside_its_network_only() {
    use crate::common::cmd::Residency;
    use crate::common::registry::{HttpServer, Reply};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let answer = std::fs::read_to_string(common::corpus(
        "rdap/rdap_client/ip_network_ripe_193_0_0_0.json",
    ))
    .expect("the RIPE answer");
    let feed = "# lab geofeed\n193.0.0.0/22,NL,NL-NH,Amsterdam,\n193.0.4.0/24,DE,DE-HE,Frankfurt am Main,\n193.0.0.0/16,US,US-CA,San Jose,\n";
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&fetches);
    let server = HttpServer::start(move |request| {
        if request.path == "/feeds/ripe.csv" {
            counted.fetch_add(1, Ordering::SeqCst);
            return Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "text/csv".into())],
                body: feed.to_string(),
            };
        }
        if request.path.starts_with("/ip/193.0.") {
            let mut json: serde_json::Value = serde_json::from_str(&answer).expect("json");
            json["links"]
                .as_array_mut()
                .expect("links")
                .push(serde_json::json!({
                    "value": format!("{}ip/193.0.0.0", request.base),
                    "rel": "geo",
                    "type": "application/geofeed+csv",
                    "href": format!("{}feeds/ripe.csv", request.base),
                }));
            return Reply::json(json.to_string());
        }
        Reply::status(404)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let base = server.base_url();
    let run = |target: &str| -> serde_json::Value {
        let out = Residency::new(dir.path())
            .args([
                "locate",
                target,
                "--no-trace",
                "--rdap",
                &base,
                "--whois",
                "127.0.0.1:9",
            ])
            .args(["--resolver", "127.0.0.1:9", "--format", "json"])
            .output();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let geofeed = |doc: &serde_json::Value| -> serde_json::Value {
        doc["addresses"][0]["evidence"]
            .as_array()
            .expect("evidence")
            .iter()
            .find(|e| {
                e["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("geofeed:"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no geofeed evidence: {doc}"))
    };

    let doc = run("193.0.0.1");
    assert_eq!(
        doc["addresses"][0]["registry"]["geofeed"],
        format!("{base}feeds/ripe.csv")
    );
    let e = geofeed(&doc);
    assert_eq!(e["kind"], "operator_declared");
    assert_eq!(
        (e["country"].as_str(), e["city"].as_str()),
        (Some("NL"), Some("Amsterdam")),
        "{e}"
    );
    assert_eq!(e["confidence"], "medium");
    assert!(
        e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("line 2") && d.contains("retrieved")),
        "{e}"
    );

    let e = geofeed(&run("193.0.4.9"));
    assert_eq!(e["country"], "DE", "{e}");

    // 193.0.9.1: the registry (this answer) says the network is 193.0.0.0/21; the feed's only
    // row for it is the wider 193.0.0.0/16, which this network's holder cannot speak for.
    let e = geofeed(&run("193.0.9.1"));
    assert!(e["country"].is_null(), "{e}");
    let detail = e["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("not inside") && detail.contains("RFC 9632"),
        "{detail}"
    );

    // Each run fetched the feed at most once, and the cache served the later runs.
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the feed is cached on disk"
    );
}

/// Geofeeds the policy lists, a file and a URL on loopback, decide addresses no other source
/// places: one in an allowed country (compliant), one in another (violation).
#[test]
fn geofeeds_listed_in_the_policy_locate_every_address_they_hold() {
    use crate::common::cmd::Residency;
    use crate::common::registry::{HttpServer, Reply};

    let server = HttpServer::start(|request| match request.path.as_str() {
        "/feed2.csv" => Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/csv".into())],
            body: "# second feed\n198.51.100.0/24,SG,SG-01,Singapore,\n".into(),
        },
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("feed.csv"),
        "192.0.2.0/24,IN,IN-MH,Mumbai,\n",
    )
    .expect("feed");
    let base = server.base_url();
    let policy = dir.path().join("feeds.yaml");
    std::fs::write(
        &policy,
        format!(
            "id: feeds\nallow: [IN]\nendpoints:\n  - host: 192.0.2.10\n  - host: 198.51.100.7\n\
             resolvers: [\"127.0.0.1:9\"]\nrepeat: 1\ndns: {{ timeout_ms: 200, tries: 1 }}\n\
             trace: {{ enabled: false }}\nregistry: {{ enabled: true, rdap: \"{base}\", whois: \"127.0.0.1:9\" }}\n\
             geo:\n  geofeeds: [feed.csv, \"{base}feed2.csv\"]\n"
        ),
    )
    .expect("policy");
    let out = Residency::new(dir.path())
        .args(["check", "--format", "json"])
        .arg(&policy)
        .output();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let address = |host: &str| {
        doc["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["host"] == host)
            .map(|e| e["addresses"][0].clone())
            .unwrap_or_else(|| panic!("{host}: {doc:#}"))
    };
    let mumbai = address("192.0.2.10");
    assert_eq!(mumbai["verdict"], "compliant", "{mumbai:#}");
    assert_eq!(mumbai["country"], "IN");
    let from_feed = mumbai["decided_by"].as_array().expect("decided_by");
    assert!(
        from_feed.iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.starts_with("geofeed:") && d.ends_with("feed.csv"))),
        "{mumbai:#}"
    );
    let singapore = address("198.51.100.7");
    assert_eq!(singapore["verdict"], "violation", "{singapore:#}");
    // The shipped database says AU here; both sides are outside the allowed set, and the
    // reason names the feed.
    let why = singapore["reasons"].to_string();
    assert!(
        why.contains("SG (per geofeed:") && why.contains("feed2.csv"),
        "{singapore:#}"
    );
    assert_eq!(out.status.code(), Some(2));

    // A plain-http feed elsewhere is refused when the policy is read, with its position.
    std::fs::write(&policy, "id: bad\nallow: [IN]\nendpoints:\n  - host: 192.0.2.10\ngeo:\n  geofeeds: [\"http://feeds.example.net/geo.csv\"]\n").expect("policy");
    let out = Residency::new(dir.path())
        .args(["validate"])
        .arg(&policy)
        .output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("feeds.yaml:6:") && err.contains("RFC 9632 requires https://"),
        "{err}"
    );
}
