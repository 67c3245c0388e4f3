//! Shared helpers for the integration tests: the lab's real DNS server, `.mmdb` fixtures and the
//! network lab of namespaces, routers and delay links.
#![allow(dead_code)]

pub mod cmd;
pub mod dns;
pub mod mmdb;
pub mod netns;
pub mod pg;
pub mod registry;
pub mod rundoc;
pub mod scenario;

/// A policy id written in a test; panics on a typo in the test itself.
pub fn pid(s: &str) -> residency::policy::PolicyId {
    residency::policy::PolicyId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The real-data corpus beside the project (`../shared/corpus`, or `$RESIDENCY_CORPUS`), read at
/// test time and never copied into the repository. Its absence fails the test that needs it.
pub fn corpus(part: &str) -> std::path::PathBuf {
    let root = std::env::var_os("RESIDENCY_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
        });
    let path = root.join(part);
    assert!(
        path.exists(),
        "the real-data corpus is missing: {} (set RESIDENCY_CORPUS to where ../shared/corpus is)",
        path.display()
    );
    path
}

/// The providers' complete range files in the corpus (gzipped as published), each under the
/// name `data update` installs it by.
pub const PROVIDER_FILES: [(&str, &str); 5] = [
    ("aws-ip-ranges.json", "cloud/upstream-gz/aws.json.gz"),
    ("gcp-cloud.json", "cloud/upstream-gz/gcp.json.gz"),
    ("azure-service-tags.json", "cloud/upstream-gz/azure.json.gz"),
    (
        "cloudflare-ips-v4.txt",
        "cloud/upstream-gz/cloudflare-v4.txt.gz",
    ),
    (
        "cloudflare-ips-v6.txt",
        "cloud/upstream-gz/cloudflare-v6.txt.gz",
    ),
];

/// The text of a corpus file, unpacked with the system's `gzip` when its name ends in `.gz`.
pub fn corpus_text(part: &str) -> String {
    let path = corpus(part);
    if part.ends_with(".gz") {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("run gzip");
        assert!(out.status.success(), "gzip -dc {}", path.display());
        String::from_utf8(out.stdout).expect("UTF-8")
    } else {
        std::fs::read_to_string(&path).expect("read corpus file")
    }
}
