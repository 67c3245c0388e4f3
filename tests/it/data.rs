//! `data status` and `data update`: fresh copies are checked before they replace anything,
//! written where runs find them, and then used; a corrupt copy leaves the old one in place.
//! The copies are the corpus's real provider files, offered from a directory (`--from DIR`)
//! and from a mirror on loopback (`--from URL`).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::registry::{HttpServer, Reply};
use crate::common::{self, cmd::Residency};

/// A directory of fresh copies under the names `data update` knows, from the corpus.
fn copies(dir: &Path) -> PathBuf {
    let src = dir.join("copies");
    std::fs::create_dir_all(&src).expect("mkdir");
    for (name, part) in common::PROVIDER_FILES {
        std::fs::write(src.join(name), common::corpus_text(part)).expect("write copy");
    }
    std::fs::copy(
        common::corpus("cloud/oracle-public_ip_ranges.json"),
        src.join("oracle-public_ip_ranges.json"),
    )
    .expect("copy");
    // IANA's bootstrap files: the shipped ones stand in for fresh copies.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["ipv4.json", "ipv6.json", "asn.json"] {
        std::fs::copy(root.join("data/rdap").join(name), src.join(name)).expect("copy");
    }
    src
}

fn residency(dir: &Path, args: &[&str]) -> Output {
    Residency::new(dir).args(args).output()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn outcomes(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc.as_array()
        .expect("a list")
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or_default().to_string(),
                u["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn update_from_a_directory_installs_checked_copies_that_runs_then_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = json(&residency(
        dir.path(),
        &["data", "status", "--format", "json"],
    ));
    let state = |doc: &serde_json::Value, name: &str| {
        doc.as_array()
            .expect("sets")
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{name} not listed: {doc}"))
    };
    assert_eq!(state(&before, "cloud/aws-ip-ranges.json"), "shipped");
    assert_eq!(state(&before, "cloud/gcp-cloud.json"), "missing");
    for name in [
        "geo-whois-asn-country.mmdb",
        "rdap/ipv4.json",
        "airports.csv",
        "countries.json",
        "cloud-regions.csv",
    ] {
        assert_eq!(state(&before, name), "shipped");
    }

    let src = copies(dir.path());
    let out = residency(
        dir.path(),
        &[
            "data",
            "update",
            "--from",
            src.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let done = outcomes(&json(&out));
    assert_eq!(done.len(), 9, "{done:?}");
    assert!(done.iter().all(|(_, o)| o == "updated"), "{done:?}");

    let after = json(&residency(
        dir.path(),
        &["data", "status", "--format", "json"],
    ));
    assert_eq!(state(&after, "cloud/gcp-cloud.json"), "updated");
    assert_eq!(state(&after, "rdap/asn.json"), "updated");
    let installed = dir.path().join("data/residency/cloud/gcp-cloud.json");
    assert!(installed.is_file(), "written into the data directory");

    // A run now uses the updated Google file: an asia-south1 prefix is Mumbai.
    let gcp: serde_json::Value =
        serde_json::from_str(&common::corpus_text("cloud/upstream-gz/gcp.json.gz")).expect("json");
    let prefix = gcp["prefixes"]
        .as_array()
        .expect("prefixes")
        .iter()
        .find(|p| p["scope"] == "asia-south1" && p["ipv4Prefix"].is_string())
        .and_then(|p| p["ipv4Prefix"].as_str())
        .expect("a Mumbai prefix")
        .to_string();
    let ip = prefix.split('/').next().expect("address");
    let out = residency(
        dir.path(),
        &[
            "locate",
            ip,
            "--no-trace",
            "--no-registry",
            "--resolver",
            "127.0.0.1:9",
            "--format",
            "json",
        ],
    );
    let doc = json(&out);
    let e = doc["addresses"][0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["source"] == "gcp-cloud-ranges")
        .cloned()
        .unwrap_or_else(|| panic!("no Google evidence: {doc}"));
    assert_eq!(e["city"], "Mumbai");
    assert!(
        e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("updated copy")),
        "{e}"
    );
}

#[test]
fn a_corrupt_or_truncated_copy_leaves_the_old_data_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = copies(dir.path());
    let src_text = src.to_str().expect("utf-8").to_string();
    let out = residency(dir.path(), &["data", "update", "--from", &src_text]);
    assert_eq!(out.status.code(), Some(0));
    let installed = dir.path().join("data/residency/cloud/aws-ip-ranges.json");
    let good = std::fs::read(&installed).expect("installed");

    // Truncated mid-file, then a file that parses but is a fraction of the whole.
    let full = std::fs::read(src.join("aws-ip-ranges.json")).expect("copy");
    std::fs::write(src.join("aws-ip-ranges.json"), &full[..full.len() / 2]).expect("truncate");
    std::fs::write(src.join("gcp-cloud.json"), r#"{"creationTime":"2026-12-01T00:00:00","prefixes":[{"ipv4Prefix":"192.0.2.0/24","scope":"asia-south1"}]}"#).expect("write");
    std::fs::write(src.join("asn.json"), "<html>rate limited</html>").expect("write");
    let out = residency(
        dir.path(),
        &["data", "update", "--from", &src_text, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(3), "a failed file is exit 3");
    let done = outcomes(&json(&out));
    for name in [
        "cloud/aws-ip-ranges.json",
        "cloud/gcp-cloud.json",
        "rdap/asn.json",
    ] {
        assert!(
            done.contains(&(name.to_string(), "failed".to_string())),
            "{name}: {done:?}"
        );
    }
    assert!(
        done.contains(&(
            "cloud/azure-service-tags.json".to_string(),
            "updated".to_string()
        )),
        "{done:?}"
    );
    assert_eq!(
        std::fs::read(&installed).expect("still there"),
        good,
        "the old copy is kept whole"
    );
    let detail = String::from_utf8_lossy(&out.stdout);
    assert!(
        detail.contains("not JSON at line") && detail.contains("the copy in use is kept"),
        "{detail}"
    );
    assert!(detail.contains("at least 500"), "{detail}");
}

#[test]
fn update_from_a_mirror_url_downloads_each_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = copies(dir.path());
    let files: Vec<(String, String)> = std::fs::read_dir(&src)
        .expect("copies")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            (
                format!("/mirror/{name}"),
                std::fs::read_to_string(&path).expect("read"),
            )
        })
        .collect();
    let server = HttpServer::start(move |request| {
        match files.iter().find(|(path, _)| *path == request.path) {
            Some((_, body)) => Reply {
                status: 200,
                headers: Vec::new(),
                body: body.clone(),
            },
            None => Reply::status(404),
        }
    });
    let base = format!("{}mirror", server.base_url());
    let out = residency(
        dir.path(),
        &["data", "update", "--from", &base, "--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let done = outcomes(&json(&out));
    assert!(done.iter().all(|(_, o)| o == "updated"), "{done:?}");
    assert_eq!(server.requests(), 9);
}
