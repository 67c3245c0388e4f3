//! Registry evidence: who holds an address block and where that holder is registered, from
//! the Regional Internet Registries over RDAP, with WHOIS as the fallback.
//!
//! Owns choosing the registry (IANA's bootstrap files, shipped in `data/rdap/`), asking it
//! (RDAP over HTTPS, WHOIS over TCP port 43), retrying and bounding those requests, the disk
//! cache of answers, and turning an answer into one [`Evidence`] plus a [`RegistryRecord`] a
//! report can quote.
//!
//! **What this evidence means.** The country in a registry record is where the *holder of the
//! block is registered* (its legal address), not where the machine answering on the address
//! is: a US cloud provider's block announced from Mumbai is registered in the US. Registry
//! evidence therefore always carries [`Confidence::Low`]; it tells who is accountable for an
//! address and what they declare, and it corroborates or contradicts other sources.
//!
//! Failures are evidence too: an address no registry answered for yields `country: None` and
//! the reasons in `detail`, never an `Err`, so a report shows that the registries were asked.

mod answer;
mod bootstrap;
mod cache;
mod rdap;
mod whois;

pub use whois::WHOIS_PORT;

pub(crate) use rdap::read_bounded;

/// Whether `url` points at this machine (where `http://` and no proxy are right).
pub fn is_loopback_url(url: &Url) -> bool {
    rdap::is_loopback(url)
}

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use reqwest::Url;
use serde::{Deserialize, Serialize};

pub use bootstrap::Bootstrap;
pub use cache::{CacheEntry, CacheSource, DiskCache, default_cache_dir};

use crate::model::{Confidence, CountryCode, Evidence, SourceKind};
use crate::sources::declared::geofeed::Geofeed;

/// Reads an RDAP `ip/` answer `body`, as served from `url`, into a record, exactly as a
/// lookup does: for answers held already (a corpus, an archive) and for fuzzing.
pub fn parse_rdap_ip_answer(url: &Url, body: &str) -> Result<RegistryRecord, String> {
    let answer = rdap::RdapAnswer {
        url: url.clone(),
        body: body.to_string(),
    };
    rdap::parse_ip_answer(&answer, Utc::now(), false)
}

/// Reads a port-43 WHOIS answer `body` from `server` (`host:port`) into a record, exactly as a
/// lookup does, and the referral it names, if any.
pub fn parse_whois_answer(
    server: &str,
    body: &str,
) -> (Result<RegistryRecord, String>, Option<String>) {
    let answer = whois::WhoisAnswer {
        server: server.to_string(),
        chain: vec![server.to_string()],
        body: body.to_string(),
    };
    (
        whois::parse_whois_answer(&answer, Utc::now(), false),
        whois::referral(body),
    )
}

/// The default time an answer is kept: registry records change rarely, a day is fresh enough.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The WHOIS server asked first when no other is configured: IANA's, which refers every
/// address to the registry that holds it.
pub const DEFAULT_WHOIS_SERVER: &str = "whois.iana.org:43";

/// How registry lookups are made. [`Default`] is right for real use; tests override the
/// servers (loopback) and shorten the timeouts.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// RDAP base URL used for every query instead of the bootstrap's answer, e.g.
    /// `http://127.0.0.1:8080/` or a local RDAP mirror. `http://` is accepted here.
    pub rdap_base: Option<Url>,
    /// Per-request timeout (connect and whole answer) for RDAP.
    pub rdap_timeout: Duration,
    /// RDAP requests per lookup, counting the first (429, 5xx and transport errors retry).
    pub rdap_tries: u32,
    /// First backoff between RDAP tries; doubles each try, up to `rdap_max_backoff`.
    pub rdap_backoff: Duration,
    pub rdap_max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more gets this.
    pub retry_after_cap: Duration,
    /// Ask WHOIS when RDAP gives no answer.
    pub whois_fallback: bool,
    /// First WHOIS server, `host` or `host:port`.
    pub whois_server: String,
    pub whois_connect_timeout: Duration,
    /// One deadline for a WHOIS lookup, referrals included.
    pub whois_deadline: Duration,
    /// Largest WHOIS answer read; past it reading stops and the answer is not used.
    pub whois_max_bytes: usize,
    /// Referrals followed after the first server.
    pub whois_max_referrals: u32,
    /// Also ask RDAP for the `autnum` record of the origin AS an IP record names (ARIN's
    /// `arin_originas0_originautnums`). Cached per AS, so a block's neighbours share it.
    pub rdap_origin_autnum: bool,
    /// Cache directory; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub cache_ttl: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            rdap_base: None,
            rdap_timeout: Duration::from_secs(10),
            rdap_tries: 4,
            rdap_backoff: Duration::from_millis(500),
            rdap_max_backoff: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(30),
            whois_fallback: true,
            whois_server: DEFAULT_WHOIS_SERVER.to_string(),
            whois_connect_timeout: Duration::from_secs(5),
            whois_deadline: Duration::from_secs(15),
            whois_max_bytes: 256 * 1024,
            whois_max_referrals: 3,
            rdap_origin_autnum: true,
            cache_dir: default_cache_dir(),
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }
}

/// A registry that cannot be set up. Messages say what to change.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "RDAP bootstrap file {file} is unusable ({reason}); replace it with IANA's file of the \
         same name (see data/README.md)"
    )]
    Bootstrap { file: String, reason: String },
    #[error("cannot set up the HTTP client for RDAP: {0}; check the TLS setup of this system")]
    HttpClient(String),
    #[error("RDAP base URL {0}; use an http:// or https:// URL such as https://rdap.db.ripe.net/")]
    BadBase(String),
}

/// What a registry record says about an address block, for reports to quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// `rdap:<host>` or `whois:<host>`: who answered.
    pub source: String,
    /// The registrant's name (RDAP vcard `fn`; WHOIS `OrgName`/`org-name`/`owner`/`descr`).
    pub holder: Option<String>,
    /// Where the holder is registered, when the record gives an ISO 3166-1 code.
    pub country: Option<CountryCode>,
    /// The country as the record wrote it (e.g. `EU` or a name, which are not codes).
    pub country_raw: Option<String>,
    /// The registry's handle for the network, e.g. `NET-192-0-2-0-1`.
    pub handle: Option<String>,
    /// The network range, e.g. `192.0.2.0 - 192.0.2.255`.
    pub range: Option<String>,
    /// The network's name, e.g. `EXAMPLE-NET`.
    pub name: Option<String>,
    /// The record's own address: its RDAP `self` link, or `whois://host:port`.
    pub url: Option<String>,
    /// The AS announcing the block, when the record names it.
    pub origin_asn: Option<u32>,
    /// That AS's own RDAP record, when it was looked up (RDAP answers only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin_as: Option<OriginAs>,
    /// The block as CIDR prefixes: RDAP's `cidr0_cidrs` when given, else the range's.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cidrs: Vec<IpNetwork>,
    /// Where the holder publishes its RFC 8805 geofeed for the block (RFC 9632): RDAP's `geo`
    /// link, WHOIS `geofeed:`, or a `Geofeed https://…` remark.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub geofeed: Option<String>,
    pub retrieved_at: DateTime<Utc>,
    /// Served from the disk cache rather than asked now.
    pub cached: bool,
}

/// The RDAP `autnum` record of the AS that announces a block: who operates the routing,
/// which is often not the block's holder (a customer's block announced by its provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginAs {
    pub asn: u32,
    /// The registry's handle, e.g. `AS64500`.
    pub handle: Option<String>,
    /// The AS name, e.g. `EXAMPLE-AS`.
    pub name: Option<String>,
    pub holder: Option<String>,
    pub country: Option<CountryCode>,
    pub url: Option<String>,
}

/// Asks the registries about addresses. Cheap to share behind `&`; lookups may run
/// concurrently.
#[derive(Debug, Clone)]
pub struct Registry {
    bootstrap: Bootstrap,
    rdap_base: Option<Url>,
    rdap: rdap::RdapClient,
    whois: whois::WhoisClient,
    whois_fallback: bool,
    origin_autnum: bool,
    cache: Option<DiskCache>,
    /// Geofeeds fetched during this registry's life, one fetch per URL.
    feeds: Arc<Mutex<HashMap<String, FeedCell>>>,
}

/// One geofeed URL's fetch, shared by every address that points to it.
type FeedCell = Arc<tokio::sync::OnceCell<Result<Arc<Geofeed>, String>>>;

/// The largest geofeed read: a large operator's whole feed is a few MiB.
pub const MAX_GEOFEED_BYTES: usize = 16 * 1024 * 1024;

/// The most distinct geofeeds one registry (one run) fetches and holds.
pub const MAX_GEOFEEDS: usize = 64;

impl Registry {
    /// A registry client using the shipped bootstrap files.
    pub fn new(config: RegistryConfig) -> Result<Registry, RegistryError> {
        let data_dir = crate::sources::data::default_data_dir();
        Registry::with_bootstrap(config, Bootstrap::current(data_dir.as_deref())?)
    }

    pub fn with_bootstrap(
        config: RegistryConfig,
        bootstrap: Bootstrap,
    ) -> Result<Registry, RegistryError> {
        let rdap_base = match &config.rdap_base {
            Some(base) => {
                Some(rdap::normalise_base(base.as_str()).map_err(RegistryError::BadBase)?)
            }
            None => None,
        };
        Ok(Registry {
            bootstrap,
            rdap_base,
            rdap: rdap::RdapClient::new(&config)?,
            whois: whois::WhoisClient::new(&config),
            whois_fallback: config.whois_fallback,
            origin_autnum: config.rdap_origin_autnum,
            cache: config
                .cache_dir
                .map(|dir| DiskCache::new(dir, config.cache_ttl)),
            feeds: Arc::default(),
        })
    }

    /// The disk cache, when enabled.
    pub fn cache(&self) -> Option<&DiskCache> {
        self.cache.as_ref()
    }

    /// Remove every cached answer of one source (no-op without a cache).
    pub fn clear_cache(&self, source: CacheSource) -> std::io::Result<()> {
        match &self.cache {
            Some(cache) => cache.clear(source),
            None => Ok(()),
        }
    }

    /// One piece of evidence for `ip`, and the record it came from when there was one.
    /// RDAP first; WHOIS when RDAP gives no usable record (and the fallback is on).
    pub async fn lookup(&self, ip: IpAddr) -> (Evidence, Option<RegistryRecord>) {
        let rdap_failure = match self.lookup_rdap(ip).await {
            Ok(mut record) => {
                let mut note = None;
                if let Some(asn) = record.origin_asn.filter(|_| self.origin_autnum) {
                    match self.lookup_autnum(asn).await {
                        Ok(origin) => record.origin_as = Some(origin),
                        Err(reason) => {
                            note = Some(format!("origin AS{asn} not looked up: {reason}"))
                        }
                    }
                }
                return (record_evidence(&record, note.as_deref()), Some(record));
            }
            Err(failure) => failure,
        };
        if !self.whois_fallback {
            return (
                failure_evidence(&rdap_failure.0, &rdap_failure.1, None),
                None,
            );
        }
        let note = format!("{} failed: {}", rdap_failure.0, rdap_failure.1);
        match self.lookup_whois(ip).await {
            Ok(record) => (record_evidence(&record, Some(&note)), Some(record)),
            Err((source, reason)) => (failure_evidence(&source, &reason, Some(&note)), None),
        }
    }

    /// RDAP alone: the record, or `(source, reason)`.
    async fn lookup_rdap(&self, ip: IpAddr) -> Result<RegistryRecord, (String, String)> {
        let key = format!("ip/{ip}");
        if let Some(entry) = self.cached(CacheSource::Rdap, &key) {
            let answer = Url::parse(&entry.server).map(|url| rdap::RdapAnswer {
                url,
                body: entry.body,
            });
            if let Ok(answer) = answer
                && let Ok(record) = rdap::parse_ip_answer(&answer, entry.retrieved_at, true)
            {
                return Ok(record);
            }
            // An entry that no longer parses is refetched below.
        }
        let base = match (&self.rdap_base, self.bootstrap.rdap_base_for_ip(ip)) {
            (Some(base), _) | (None, Some(base)) => base,
            (None, None) => {
                return Err((
                    "rdap".to_string(),
                    format!(
                        "no registry holds {ip} in IANA's RDAP bootstrap (published {}): \
                         special-purpose or unallocated address",
                        self.bootstrap.publications[usize::from(ip.is_ipv6())]
                    ),
                ));
            }
        };
        let answer = self.rdap.query_ip(base, ip).await.map_err(|failure| {
            let source = failure.source.unwrap_or_else(|| rdap::source_name(base));
            (source, failure.reason)
        })?;
        let retrieved_at = Utc::now();
        let record = rdap::parse_ip_answer(&answer, retrieved_at, false)
            .map_err(|reason| (rdap::source_name(&answer.url), reason))?;
        self.store(
            CacheSource::Rdap,
            CacheEntry {
                key,
                server: answer.url.to_string(),
                retrieved_at,
                body: answer.body,
            },
        );
        Ok(record)
    }

    /// The RDAP `autnum` record of `asn`, from the cache or the registry the bootstrap names.
    pub async fn lookup_autnum(&self, asn: u32) -> Result<OriginAs, String> {
        let key = format!("autnum/{asn}");
        if let Some(entry) = self.cached(CacheSource::Rdap, &key)
            && let Ok(url) = Url::parse(&entry.server)
            && let Ok(origin) = rdap::parse_autnum_answer(
                &rdap::RdapAnswer {
                    url,
                    body: entry.body,
                },
                asn,
            )
        {
            return Ok(origin);
        }
        let base = match (&self.rdap_base, self.bootstrap.rdap_base_for_asn(asn)) {
            (Some(base), _) | (None, Some(base)) => base,
            (None, None) => {
                return Err(format!(
                    "no registry holds AS{asn} in IANA's RDAP bootstrap (published {})",
                    self.bootstrap.publications[2]
                ));
            }
        };
        let answer = self
            .rdap
            .query_autnum(base, asn)
            .await
            .map_err(|f| f.reason)?;
        let origin = rdap::parse_autnum_answer(&answer, asn)?;
        self.store(
            CacheSource::Rdap,
            CacheEntry {
                key,
                server: answer.url.to_string(),
                retrieved_at: Utc::now(),
                body: answer.body,
            },
        );
        Ok(origin)
    }

    /// WHOIS alone: the record, or `(source, reason)`.
    async fn lookup_whois(&self, ip: IpAddr) -> Result<RegistryRecord, (String, String)> {
        let key = format!("ip/{ip}");
        if let Some(entry) = self.cached(CacheSource::Whois, &key) {
            let answer = whois::WhoisAnswer {
                chain: vec![entry.server.clone()],
                server: entry.server,
                body: entry.body,
            };
            if let Ok(record) = whois::parse_whois_answer(&answer, entry.retrieved_at, true) {
                return Ok(record);
            }
        }
        let answer = self
            .whois
            .query_ip(ip)
            .await
            .map_err(|f| (f.source, f.reason))?;
        let retrieved_at = Utc::now();
        let record = whois::parse_whois_answer(&answer, retrieved_at, false)
            .map_err(|reason| (whois::source_name(&answer.server), reason))?;
        tracing::debug!(%ip, chain = ?answer.chain, "WHOIS answered");
        self.store(
            CacheSource::Whois,
            CacheEntry {
                key,
                server: answer.server,
                retrieved_at,
                body: answer.body,
            },
        );
        Ok(record)
    }

    /// The RFC 8805 geofeed at `url`, fetched once per registry (however many addresses point
    /// to it), with the RDAP client's timeouts and retries, at most [`MAX_GEOFEED_BYTES`], and
    /// kept in the disk cache like an RDAP answer. Only `https://` is fetched (RFC 9632 §5),
    /// except from this machine (a local mirror, a test server).
    pub async fn geofeed(&self, url: &str) -> Result<Arc<Geofeed>, String> {
        let cell = {
            let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            if feeds.len() >= MAX_GEOFEEDS && !feeds.contains_key(url) {
                return Err(format!(
                    "not fetched: this run already fetched {MAX_GEOFEEDS} geofeeds, the most it \
                     holds"
                ));
            }
            Arc::clone(feeds.entry(url.to_string()).or_default())
        };
        cell.get_or_init(|| self.fetch_geofeed(url)).await.clone()
    }

    async fn fetch_geofeed(&self, url: &str) -> Result<Arc<Geofeed>, String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && rdap::is_loopback(&parsed))
        {
            return Err(format!(
                "`{url}` is not https://, which RFC 9632 requires of a geofeed: not fetched"
            ));
        }
        let key = format!("geofeed/{url}");
        if let Some(entry) = self.cached(CacheSource::Geofeed, &key) {
            let when = format!("{} (cached)", crate::time::seconds(&entry.retrieved_at));
            return Ok(Arc::new(Geofeed::parse(url, Some(when), &entry.body)));
        }
        let answer = self
            .rdap
            .get(
                &parsed,
                "text/csv, application/geofeed+csv, text/plain",
                MAX_GEOFEED_BYTES,
            )
            .await
            .map_err(|f| f.reason)?;
        let retrieved_at = Utc::now();
        let feed = Geofeed::parse(url, Some(crate::time::seconds(&retrieved_at)), &answer.body);
        if feed.is_empty() {
            return Err(format!(
                "{url} has no usable geofeed row ({} rows skipped{})",
                feed.problems.len(),
                feed.problems
                    .first()
                    .map(|p| format!(", first: {p}"))
                    .unwrap_or_default()
            ));
        }
        self.store(
            CacheSource::Geofeed,
            CacheEntry {
                key,
                server: answer.url.to_string(),
                retrieved_at,
                body: answer.body,
            },
        );
        Ok(Arc::new(feed))
    }

    fn cached(&self, source: CacheSource, key: &str) -> Option<CacheEntry> {
        self.cache.as_ref()?.get(source, key)
    }

    fn store(&self, source: CacheSource, entry: CacheEntry) {
        if let Some(cache) = &self.cache {
            cache.put(source, &entry);
        }
    }
}

/// A country code from a record, or `None` when it wrote something else (`EU`, a name).
pub(crate) fn parse_country(text: Option<&str>) -> Option<CountryCode> {
    text?.trim().parse().ok()
}

/// The URL of a `Geofeed https://…` remark (RFC 9632 §3), the form registries without a
/// `geofeed:` attribute use; only `https://` counts, as the RFC requires.
pub(crate) fn geofeed_in_remark(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if !first.eq_ignore_ascii_case("geofeed") && !first.eq_ignore_ascii_case("geofeed:") {
        return None;
    }
    let url = words.next()?;
    (url.starts_with("https://") && words.next().is_none()).then(|| url.to_string())
}

/// What registry evidence always says about itself, so no reader mistakes it for a location.
const MEANING: &str = "registration country of the holder, not where the machine is";

fn record_evidence(record: &RegistryRecord, note: Option<&str>) -> Evidence {
    let mut parts = Vec::new();
    let holder = record.holder.as_deref().unwrap_or("unnamed holder");
    match (&record.country, &record.country_raw) {
        (Some(country), _) => parts.push(format!("holder {holder} ({country})")),
        (None, Some(raw)) => parts.push(format!(
            "holder {holder}; country `{raw}` is not an ISO 3166-1 code"
        )),
        (None, None) => parts.push(format!("holder {holder}; the record names no country")),
    }
    if let Some(handle) = &record.handle {
        parts.push(format!("handle {handle}"));
    }
    if let Some(name) = &record.name {
        parts.push(format!("network {name}"));
    }
    if let Some(range) = &record.range {
        parts.push(format!("range {range}"));
    }
    match (&record.origin_as, record.origin_asn) {
        (Some(origin), _) => {
            let about: Vec<String> = [
                origin.name.clone(),
                origin.holder.clone(),
                origin.country.map(|c| c.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if about.is_empty() {
                parts.push(format!("origin AS{}", origin.asn));
            } else {
                parts.push(format!("origin AS{} ({})", origin.asn, about.join(", ")));
            }
        }
        (None, Some(asn)) => parts.push(format!("origin AS{asn}")),
        (None, None) => {}
    }
    if let Some(url) = &record.url {
        parts.push(url.clone());
    }
    if record.cached {
        parts.push(format!(
            "cached, retrieved {}",
            record.retrieved_at.format("%Y-%m-%dT%H:%MZ")
        ));
    }
    let mut detail = format!("{}; {MEANING}", parts.join(", "));
    if let Some(note) = note {
        detail.push_str(&format!(" ({note})"));
    }
    Evidence {
        source: record.source.clone(),
        kind: SourceKind::Registry,
        country: record.country,
        confidence: Confidence::Low,
        detail,
        city: None,
        coordinates: None,
        refuted: None,
    }
}

fn failure_evidence(source: &str, reason: &str, note: Option<&str>) -> Evidence {
    let detail = match note {
        Some(note) => format!("no registry record: {note}; {source} failed: {reason}"),
        None => format!("no registry record: {source} failed: {reason}"),
    };
    Evidence {
        source: source.to_string(),
        kind: SourceKind::Registry,
        country: None,
        confidence: Confidence::Low,
        detail,
        city: None,
        coordinates: None,
        refuted: None,
    }
}
