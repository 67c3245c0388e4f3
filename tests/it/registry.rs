//! Registry evidence (RDAP and WHOIS) against real servers on loopback started by the test
//! (`common/registry.rs`): parsing, retries, fallback, bounds, referrals and the disk cache.
//! Nothing here sends a packet anywhere but 127.0.0.1; the real registries are never asked.

use crate::common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::registry::{
    HttpServer, Reply, WhoisBehaviour, WhoisServer, arin_answer, rdap_answer, rdap_server,
    ripe_answer,
};
use reqwest::Url;
use residency::model::{Confidence, CountryCode, SourceKind};
use residency::sources::registry::{Bootstrap, CacheSource, Registry, RegistryConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cc(s: &str) -> Option<CountryCode> {
    Some(s.parse().expect("test country code"))
}

/// Settings for the lab: RDAP at `rdap`, short timeouts and backoffs, no cache, and WHOIS
/// off unless a test turns it on (so nothing can reach the default public WHOIS server).
pub(crate) fn config(rdap: &HttpServer) -> RegistryConfig {
    RegistryConfig {
        rdap_base: Some(Url::parse(&rdap.base_url()).expect("base url")),
        rdap_timeout: Duration::from_secs(2),
        rdap_tries: 3,
        rdap_backoff: Duration::from_millis(20),
        rdap_max_backoff: Duration::from_millis(200),
        retry_after_cap: Duration::from_millis(300),
        whois_fallback: false,
        whois_server: "127.0.0.1:1".into(),
        whois_connect_timeout: Duration::from_secs(1),
        whois_deadline: Duration::from_secs(1),
        whois_max_bytes: 256 * 1024,
        whois_max_referrals: 3,
        rdap_origin_autnum: true,
        cache_dir: None,
        cache_ttl: Duration::from_secs(24 * 60 * 60),
    }
}

fn with_whois(mut config: RegistryConfig, whois: &WhoisServer) -> RegistryConfig {
    config.whois_fallback = true;
    config.whois_server = whois.server();
    config
}

fn with_cache(mut config: RegistryConfig, dir: &Path) -> RegistryConfig {
    config.cache_dir = Some(dir.to_path_buf());
    config
}

fn registry(config: RegistryConfig) -> Registry {
    Registry::new(config).expect("registry")
}

/// An RDAP server that always answers 404, so lookups go to WHOIS.
fn rdap_404() -> HttpServer {
    HttpServer::start(|_| Reply::status(404))
}

#[tokio::test]
async fn rdap_success_parses_the_record_and_records_its_url() {
    let rdap = rdap_server();
    let registry = registry(config(&rdap));
    let host = format!(
        "rdap:{}",
        rdap.base_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
    );

    let (evidence, record) = registry.lookup(ip("192.0.2.10")).await;
    let record = record.expect("a record");
    assert_eq!(evidence.kind, SourceKind::Registry);
    assert_eq!(evidence.confidence, Confidence::Low);
    assert_eq!(evidence.country, cc("IN"));
    assert_eq!(evidence.source, host);
    assert_eq!(record.holder.as_deref(), Some("Example Mumbai Pvt Ltd"));
    assert_eq!(record.handle.as_deref(), Some("NET-192-0-2-0-1"));
    assert_eq!(record.name.as_deref(), Some("TEST-NET-1"));
    assert_eq!(record.range.as_deref(), Some("192.0.2.0 - 192.0.2.255"));
    assert_eq!(record.url, Some(format!("{}ip/192.0.2.0", rdap.base_url())));
    assert!(!record.cached);
    for part in [
        "Example Mumbai Pvt Ltd",
        "NET-192-0-2-0-1",
        "192.0.2.0 - 192.0.2.255",
        "ip/192.0.2.0",
        "not where the machine is",
    ] {
        assert!(
            evidence.detail.contains(part),
            "{part} missing from {}",
            evidence.detail
        );
    }

    // ARIN style: country only in the registrant's vCard, nested under another entity.
    let (evidence, record) = registry.lookup(ip("198.51.100.7")).await;
    let record = record.expect("a record");
    assert_eq!(evidence.country, cc("CN"));
    assert_eq!(record.holder.as_deref(), Some("Example Beijing Co"));
    assert_eq!(record.origin_asn, Some(64500));
    // The origin AS named by the record is looked up as an autnum.
    let origin = record.origin_as.expect("origin AS record");
    assert_eq!(origin.name.as_deref(), Some("EXAMPLE-BJ-AS"));
    assert_eq!(origin.country, cc("CN"));
    assert_eq!(origin.url, Some(format!("{}autnum/64500", rdap.base_url())));
    assert!(
        evidence
            .detail
            .contains("origin AS64500 (EXAMPLE-BJ-AS, Example Beijing Co, CN)"),
        "{}",
        evidence.detail
    );

    let (evidence, record) = registry.lookup(ip("2001:db8::1")).await;
    assert_eq!(evidence.country, cc("SG"));
    assert_eq!(
        record.and_then(|r| r.holder).as_deref(),
        Some("Example Singapore Pte Ltd")
    );
    assert_eq!(rdap.requests(), 4, "three ip queries and one autnum");
}

#[tokio::test]
async fn rdap_429_twice_is_retried_after_the_capped_retry_after() {
    let rdap = HttpServer::start(|request| {
        if request.count <= 2 {
            Reply {
                status: 429,
                // Asks for 2 s; the lab caps Retry-After at 300 ms.
                headers: vec![("Retry-After".into(), "2".into())],
                body: String::new(),
            }
        } else {
            rdap_answer(request).map_or(Reply::status(404), Reply::json)
        }
    });
    let registry = registry(config(&rdap));

    let started = Instant::now();
    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    let elapsed = started.elapsed();
    assert_eq!(evidence.country, cc("IN"), "{}", evidence.detail);
    assert!(record.is_some());
    assert_eq!(rdap.requests(), 3, "two 429s and the answer");
    // Two waits of the capped Retry-After (300 ms), not the 20/40 ms backoff nor 2 s each.
    assert!(
        elapsed >= Duration::from_millis(550),
        "waited only {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "waited {elapsed:?}");
}

#[tokio::test]
async fn rdap_500_always_is_retried_a_bounded_number_of_times_then_whois_answers() {
    let rdap = HttpServer::start(|_| Reply::status(500));
    let whois = WhoisServer::start(WhoisBehaviour::Answer(Box::new(|q| arin_answer(q, None))));
    let registry = registry(with_whois(config(&rdap), &whois));

    let started = Instant::now();
    let (evidence, record) = registry.lookup(ip("198.51.100.7")).await;
    assert_eq!(rdap.requests(), 3, "rdap_tries");
    // Backoff of 20 ms then 40 ms between the three tries.
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert_eq!(whois.connections(), 1);
    assert_eq!(whois.queries(), vec!["198.51.100.7".to_string()]);
    assert_eq!(evidence.source, format!("whois:{}", whois.server()));
    assert_eq!(evidence.kind, SourceKind::Registry);
    assert_eq!(evidence.country, cc("CN"));
    assert!(
        evidence.detail.contains("gave up after 3 tries: HTTP 500"),
        "{}",
        evidence.detail
    );
    let record = record.expect("a WHOIS record");
    assert_eq!(record.holder.as_deref(), Some("Example Beijing Co"));
    assert_eq!(record.handle.as_deref(), Some("NET-198-51-100-0-1"));
    assert_eq!(
        record.range.as_deref(),
        Some("198.51.100.0 - 198.51.100.255")
    );
    assert_eq!(record.name.as_deref(), Some("TEST-NET-2"));
    assert_eq!(record.origin_asn, Some(64500));
}

#[tokio::test]
async fn rdap_redirect_to_another_registry_is_followed_and_named() {
    let holder = rdap_server();
    let target = holder.base_url();
    let referrer = HttpServer::start(move |request| Reply {
        status: 301,
        headers: vec![(
            "Location".into(),
            format!("{target}{}", request.path.trim_start_matches('/')),
        )],
        body: String::new(),
    });
    let registry = registry(config(&referrer));

    let (evidence, record) = registry.lookup(ip("2001:db8::1")).await;
    assert_eq!((referrer.requests(), holder.requests()), (1, 1));
    let expected = format!(
        "rdap:{}",
        holder
            .base_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
    );
    assert_eq!(evidence.source, expected);
    assert_eq!(evidence.country, cc("SG"));
    assert!(record.is_some());
}

#[tokio::test]
async fn silent_rdap_server_is_bounded_by_timeout_and_tries() {
    // Accepts and never answers: each try ends at rdap_timeout.
    let silent = WhoisServer::start(WhoisBehaviour::Silent);
    let mut config = config(&rdap_404());
    config.rdap_base = Some(Url::parse(&format!("http://{}/", silent.server())).expect("url"));
    config.rdap_timeout = Duration::from_millis(300);
    config.rdap_tries = 2;
    let registry = registry(config);

    let started = Instant::now();
    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    assert!(record.is_none());
    assert_eq!(evidence.country, None);
    assert!(
        evidence.detail.contains("gave up after 2 tries: timed out"),
        "{}",
        evidence.detail
    );
    assert_eq!(silent.connections(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_country_that_is_not_a_code_gives_no_country_and_says_why() {
    let rdap = HttpServer::start(|request| {
        let mut body: serde_json::Value =
            serde_json::from_str(&rdap_answer(request).unwrap_or_default()).unwrap_or_default();
        body["country"] = "EU".into();
        Reply::json(body.to_string())
    });
    let registry = registry(config(&rdap));
    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    assert_eq!(evidence.country, None);
    assert!(
        evidence
            .detail
            .contains("country `EU` is not an ISO 3166-1 code")
    );
    let record = record.expect("record kept");
    assert_eq!(record.country_raw.as_deref(), Some("EU"));
    assert_eq!(record.holder.as_deref(), Some("Example Mumbai Pvt Ltd"));
}

#[tokio::test]
async fn silent_whois_server_is_bounded_by_the_deadline_and_recorded_as_failed() {
    let rdap = rdap_404();
    let whois = WhoisServer::start(WhoisBehaviour::Silent);
    let registry = registry(with_whois(config(&rdap), &whois));

    let started = Instant::now();
    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    let elapsed = started.elapsed();
    assert!(record.is_none());
    assert_eq!(evidence.country, None);
    assert_eq!(evidence.kind, SourceKind::Registry);
    assert!(evidence.detail.contains("deadline"), "{}", evidence.detail);
    assert!(evidence.detail.contains("HTTP 404"), "{}", evidence.detail);
    assert_eq!(whois.connections(), 1);
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up after {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn flooding_whois_server_is_cut_off_at_the_size_bound() {
    let rdap = rdap_404();
    let whois = WhoisServer::start(WhoisBehaviour::Flood(10 * 1024 * 1024));
    let registry = registry(with_whois(config(&rdap), &whois));

    let started = Instant::now();
    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    assert!(record.is_none());
    assert_eq!(evidence.country, None);
    assert!(
        evidence.detail.contains("exceeded 256 KiB"),
        "{}",
        evidence.detail
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn whois_referral_is_followed_to_the_server_that_holds_the_record() {
    let rdap = rdap_404();
    let ripe = WhoisServer::start(WhoisBehaviour::Answer(Box::new(ripe_answer)));
    let ripe_server = ripe.server();
    let arin = WhoisServer::start(WhoisBehaviour::Answer(Box::new(move |q| {
        arin_answer(q, Some(&ripe_server))
    })));
    let registry = registry(with_whois(config(&rdap), &arin));

    let (evidence, record) = registry.lookup(ip("192.0.2.1")).await;
    assert_eq!(arin.connections(), 1);
    assert_eq!(ripe.connections(), 1);
    assert_eq!(evidence.source, format!("whois:{}", ripe.server()));
    assert_eq!(evidence.country, cc("IN"));
    let record = record.expect("the referred record");
    assert_eq!(record.holder.as_deref(), Some("Example Mumbai Pvt Ltd"));
    assert_eq!(record.name.as_deref(), Some("EXAMPLE-MUMBAI-NET"));
    assert_eq!(record.range.as_deref(), Some("192.0.2.0 - 192.0.2.255"));
    assert_eq!(record.origin_asn, Some(64501));
    assert_eq!(record.url, Some(format!("whois://{}", ripe.server())));
}

#[tokio::test]
async fn whois_referral_loop_stops_with_the_last_answer() {
    let rdap = rdap_404();
    // A refers to B and B back to A: the loop is noticed at B and B's answer used.
    let a_addr = Arc::new(OnceLock::<String>::new());
    let b = {
        let a_addr = a_addr.clone();
        WhoisServer::start(WhoisBehaviour::Answer(Box::new(move |q| {
            arin_answer(q, a_addr.get().map(String::as_str))
        })))
    };
    let b_server = b.server();
    let a = WhoisServer::start(WhoisBehaviour::Answer(Box::new(move |q| {
        arin_answer(q, Some(&b_server))
    })));
    a_addr.set(a.server()).expect("set once");
    let registry = registry(with_whois(config(&rdap), &a));

    let (evidence, record) = registry.lookup(ip("198.51.100.7")).await;
    assert_eq!((a.connections(), b.connections()), (1, 1));
    assert_eq!(evidence.source, format!("whois:{}", b.server()));
    assert_eq!(evidence.country, cc("CN"));
    assert!(record.is_some());
}

#[tokio::test]
async fn whois_referral_to_a_dead_server_is_failed_evidence() {
    let rdap = rdap_404();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let whois = WhoisServer::start(WhoisBehaviour::Answer(Box::new(|q| {
        arin_answer(q, Some("127.0.0.1:1"))
    })));
    let registry = registry(with_whois(config(&rdap), &whois));
    let (evidence, record) = registry.lookup(ip("198.51.100.7")).await;
    assert!(record.is_none());
    assert_eq!(evidence.country, None);
    assert_eq!(evidence.source, "whois:127.0.0.1:1");
    assert!(
        evidence.detail.contains("cannot connect"),
        "{}",
        evidence.detail
    );
}

#[tokio::test]
async fn cache_serves_repeats_from_disk_refetches_expired_entries_and_clears() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rdap = rdap_server();
    let registry = registry(with_cache(config(&rdap), dir.path()));
    let address = ip("192.0.2.1");

    let (first, _) = registry.lookup(address).await;
    assert_eq!(rdap.requests(), 1);
    assert!(!first.detail.contains("cached"));

    let (second, record) = registry.lookup(address).await;
    assert_eq!(rdap.requests(), 1, "served from disk");
    let record = record.expect("cached record");
    assert!(record.cached);
    assert_eq!(second.country, cc("IN"));
    let stamp = record.retrieved_at.format("%Y-%m-%dT%H:%MZ").to_string();
    assert!(
        second
            .detail
            .contains(&format!("cached, retrieved {stamp}")),
        "{}",
        second.detail
    );

    // Age the entry past the TTL by rewriting its retrieval time.
    let cache = registry.cache().expect("cache on");
    let path = cache.path(CacheSource::Rdap, "ip/192.0.2.1");
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("entry file")).expect("json");
    let old = chrono::Utc::now() - chrono::Duration::hours(25);
    entry["retrieved_at"] = serde_json::Value::String(old.to_rfc3339());
    std::fs::write(&path, entry.to_string()).expect("rewrite entry");
    let (third, record) = registry.lookup(address).await;
    assert_eq!(rdap.requests(), 2, "expired entry refetched");
    assert!(!record.expect("record").cached);
    assert!(!third.detail.contains("cached"));

    // Clearing WHOIS leaves RDAP's answers; clearing RDAP removes them.
    registry
        .clear_cache(CacheSource::Whois)
        .expect("clear whois");
    registry.lookup(address).await;
    assert_eq!(rdap.requests(), 2);
    registry.clear_cache(CacheSource::Rdap).expect("clear rdap");
    assert!(!path.exists());
    registry.lookup(address).await;
    assert_eq!(rdap.requests(), 3, "refetched after clear");
}

#[tokio::test]
async fn origin_as_record_is_cached_once_for_the_whole_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rdap = rdap_server();
    let registry = registry(with_cache(config(&rdap), dir.path()));

    let (_, first) = registry.lookup(ip("198.51.100.7")).await;
    let (_, second) = registry.lookup(ip("198.51.100.8")).await;
    assert_eq!(rdap.requests(), 3, "ip/.7, autnum/64500, ip/.8");
    let names = |r: Option<residency::sources::registry::RegistryRecord>| {
        r.and_then(|r| r.origin_as).and_then(|o| o.name)
    };
    assert_eq!(names(first).as_deref(), Some("EXAMPLE-BJ-AS"));
    assert_eq!(names(second).as_deref(), Some("EXAMPLE-BJ-AS"));
}

#[tokio::test]
async fn whois_answers_are_cached_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rdap = rdap_404();
    let whois = WhoisServer::start(WhoisBehaviour::Answer(Box::new(|q| arin_answer(q, None))));
    let registry = registry(with_cache(with_whois(config(&rdap), &whois), dir.path()));

    registry.lookup(ip("198.51.100.7")).await;
    let (evidence, record) = registry.lookup(ip("198.51.100.7")).await;
    assert_eq!(whois.connections(), 1, "second answer from disk");
    assert!(record.expect("record").cached);
    assert_eq!(evidence.country, cc("CN"));
    assert!(evidence.detail.contains("cached, retrieved"));
    // RDAP failures are not cached: it was asked both times.
    assert_eq!(rdap.requests(), 2);
}

#[tokio::test]
async fn address_outside_every_registry_is_failed_evidence() {
    // No override: the shipped bootstrap has no registry for private space, so nothing is
    // sent anywhere.
    let rdap = rdap_server();
    let mut config = config(&rdap);
    config.rdap_base = None;
    let registry = registry(config);
    let (evidence, record) = registry.lookup(ip("10.0.0.1")).await;
    assert!(record.is_none());
    assert_eq!(evidence.country, None);
    assert!(
        evidence.detail.contains("no registry holds 10.0.0.1"),
        "{}",
        evidence.detail
    );
    assert_eq!(rdap.requests(), 0);
}

#[test]
fn shipped_bootstrap_picks_the_registry_for_ipv4_ipv6_and_asn() {
    let bootstrap = Bootstrap::shipped().expect("shipped bootstrap");
    let base = |s: &str| {
        bootstrap
            .rdap_base_for_ip(ip(s))
            .map(|u| u.to_string())
            .unwrap_or_default()
    };
    assert_eq!(base("193.0.6.139"), "https://rdap.db.ripe.net/");
    assert_eq!(base("8.8.8.8"), "https://rdap.arin.net/registry/");
    assert_eq!(base("1.1.1.1"), "https://rdap.apnic.net/");
    assert_eq!(base("200.160.0.1"), "https://rdap.lacnic.net/rdap/");
    assert_eq!(base("41.0.0.1"), "https://rdap.afrinic.net/rdap/");
    assert_eq!(base("10.0.0.1"), "");
    assert_eq!(base("2001:67c:2e8::1"), "https://rdap.db.ripe.net/");
    assert_eq!(base("2c0f:f000::1"), "https://rdap.afrinic.net/rdap/");
    assert_eq!(base("2800::1"), "https://rdap.lacnic.net/rdap/");
    let asn = |n: u32| {
        bootstrap
            .rdap_base_for_asn(n)
            .map(|u| u.to_string())
            .unwrap_or_default()
    };
    assert_eq!(asn(3333), "https://rdap.db.ripe.net/");
    assert_eq!(asn(15169), "https://rdap.arin.net/registry/");
    assert_eq!(asn(4608), "https://rdap.apnic.net/");
    assert_eq!(asn(4_200_000_000), "");
    assert_eq!(
        bootstrap.publications,
        [
            "2019-06-07T19:00:02Z".to_string(),
            "2024-11-01T22:00:01Z".to_string(),
            "2025-01-17T20:00:02Z".to_string()
        ]
    );
}

/// The pipeline runs lookups on tokio's multi-threaded runtime: the future must be `Send`
/// and the registry shareable. Checked at compile time; nothing is sent.
#[test]
fn lookups_can_run_on_other_threads() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Registry>();
    let rdap = rdap_404();
    let registry = registry(config(&rdap));
    let future = registry.lookup(ip("192.0.2.1"));
    assert_send(&future);
    drop(future);
    assert_eq!(rdap.requests(), 0);
}
