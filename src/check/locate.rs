//! `locate`: "where is this server?" for one address or host, without any policy.
//!
//! Owns resolving the target (once per resolver and record type) and presenting every piece of
//! evidence the `check` pipeline would gather for its addresses: database claims, the path with
//! located hops, the RTT bound and the claims it refutes. Nothing is judged or recorded.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::measure::integrity::{Integrity, Survey, SurveyPlan, Surveyor};
use crate::measure::resolve::{Query, RecordType, Resolution, Resolve};
use crate::measure::trace::Trace;
use crate::model::{CountryCode, Evidence};
use crate::sources::evidence::{self, PathEvidence, ProbeSettings, ReverseDns, RttEvidence};
use crate::sources::geo::Geolocator;
use crate::sources::physics::Vantage;
use crate::sources::registry::RegistryRecord;

/// Everything known about one address of the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocatedAddress {
    pub ip: IpAddr,
    /// Reverse DNS names (their location hints are in `evidence`).
    pub names: Vec<String>,
    /// The registry record of the address's block, when a registry answered.
    pub registry: Option<RegistryRecord>,
    pub evidence: Vec<Evidence>,
    pub path: Option<PathEvidence>,
    pub rtt: Option<RttEvidence>,
    /// The HTTPS probes of the address (certificate, edge headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<crate::measure::http::HttpProbe>,
    /// Countries named by claims that physics did not refute.
    pub claimed: Vec<CountryCode>,
    /// Countries physics allows (within reach of the vantage point); empty when unknown.
    pub possible: Vec<CountryCode>,
}

/// The answer to "where is this server?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocateReport {
    pub target: String,
    pub vantage: Option<Vantage>,
    pub sources: Vec<String>,
    pub resolutions: Vec<Resolution>,
    /// What the canaries found about this vantage point (see `integrity`).
    pub integrity: Integrity,
    pub addresses: Vec<LocatedAddress>,
}

/// Locates `target` (an IP address, or a host name resolved through `resolvers`). `survey`
/// is the vantage point's survey plan (`None` when probing is off); its canaries go out while
/// the name resolves, and answers and replies they show untrusted are kept but not used.
#[allow(clippy::too_many_arguments)]
pub async fn locate_target<R: Resolve + 'static, T: Trace + 'static, S: Surveyor>(
    target: &str,
    resolvers: &[SocketAddr],
    resolver: Arc<R>,
    tracer: Option<Arc<T>>,
    surveyor: &S,
    geo: &Geolocator,
    probe: &ProbeSettings,
    survey: Option<&SurveyPlan>,
) -> LocateReport {
    let watcher = survey.and_then(|_| surveyor.watch());
    let surveyed = async {
        match survey {
            Some(plan) => surveyor.survey(plan).await,
            None => Survey::skipped("probing is off (--no-trace): no canaries were sent"),
        }
    };
    let (mut resolutions, surveyed) =
        tokio::join!(resolve_target(target, resolvers, &resolver), surveyed);
    let integrity = {
        let mut answers: Vec<&mut Resolution> = resolutions.iter_mut().collect();
        surveyed.finish(&mut answers, watcher.as_ref())
    };
    let ips: Vec<IpAddr> = match target.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let mut seen = BTreeSet::new();
            resolutions
                .iter()
                .filter(|r| r.trusted())
                .flat_map(|r| r.addresses.iter().copied())
                .filter(|ip| seen.insert(*ip))
                .collect()
        }
    };
    let reverse = resolvers
        .first()
        .filter(|server| integrity.distrust(&server.to_string()).is_none())
        .map(|server| ReverseDns {
            resolver: Arc::clone(&resolver),
            server: *server,
        });
    let facts = evidence::gather(
        &ips,
        geo,
        reverse,
        tracer,
        probe,
        &integrity,
        watcher.as_ref(),
    )
    .await;
    drop(watcher);
    report(target, probe, geo, resolutions, integrity, &ips, &facts)
}

/// One query per resolver and record type for a host name; none for an address.
async fn resolve_target<R: Resolve + 'static>(
    target: &str,
    resolvers: &[SocketAddr],
    resolver: &Arc<R>,
) -> Vec<Resolution> {
    let mut resolutions = Vec::new();
    if target.parse::<IpAddr>().is_ok() {
        return resolutions;
    }
    for server in resolvers {
        for record_type in [RecordType::A, RecordType::Aaaa] {
            let query = Query {
                host: target.to_string(),
                record_type,
                resolver: *server,
                client_subnet: None,
                attempt: 1,
            };
            resolutions.push(resolver.resolve(&query).await);
        }
    }
    resolutions
}

fn report(
    target: &str,
    probe: &ProbeSettings,
    geo: &Geolocator,
    resolutions: Vec<Resolution>,
    integrity: Integrity,
    ips: &[IpAddr],
    facts: &std::collections::BTreeMap<IpAddr, evidence::AddressEvidence>,
) -> LocateReport {
    let addresses = ips
        .iter()
        .filter_map(|ip| facts.get(ip).map(|f| (*ip, f)))
        .map(|(ip, f)| LocatedAddress {
            ip,
            names: f.names.clone(),
            registry: f.registry.clone(),
            claimed: f
                .evidence
                .iter()
                .filter(|e| e.refuted.is_none())
                .filter_map(|e| e.country)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            possible: f
                .reach
                .as_ref()
                .map(|r| r.countries.iter().copied().collect())
                .unwrap_or_default(),
            evidence: f.evidence.clone(),
            path: f.path.clone(),
            rtt: f.rtt.clone(),
            http: f.http.clone(),
        })
        .collect();
    LocateReport {
        target: target.to_string(),
        vantage: probe.vantage,
        sources: geo.source_names().into_iter().map(str::to_string).collect(),
        resolutions,
        integrity,
        addresses,
    }
}
