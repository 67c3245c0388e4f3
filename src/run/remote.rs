//! `check --atlas` and `check --globalping`: after this machine's run, the same endpoints
//! measured from RIPE Atlas or Globalping probes. Owns what is asked (a ping and a traceroute of every name, resolved on each probe,
//! and of every address this machine's run found), its price (estimated before anything is
//! created; `--max-credits` refuses more), and the bounded wait for results, which arrive late
//! or never: what came by the deadline is used, and what did not is said.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::import::AtlasInput;
use crate::check::remote::RemoteProbe;
use crate::measure::atlas::AtlasResult;
use crate::measure::atlas::api::{
    AtlasApi, AtlasApiError, Definition, DefinitionKind, ProbeRequest, estimate_credits,
};
use crate::measure::globalping::{self, GlobalpingApi, GlobalpingError, Location};
use crate::measure::vantage::{LocationKind, MeasuredFrom, VantageKind};
use crate::model::CountryCode;
use crate::record::RunDocument;
use crate::sources::physics::Vantage;

/// Most definitions in one request: every endpoint's name and addresses, bounded so that one
/// policy cannot spend a fortune by accident (`--max-credits` bounds the price as well).
pub const MAX_DEFINITIONS: usize = 100;

/// What to ask of Atlas.
#[derive(Debug, Clone)]
pub struct AtlasPlan {
    pub probes: Vec<ProbeRequest>,
    pub max_credits: u64,
    /// How long to wait for results in all.
    pub wait: Duration,
}

impl AtlasPlan {
    /// How often to look: a twentieth of the wait, between 0.1 s and 10 s.
    fn poll(&self) -> Duration {
        (self.wait / 20).clamp(Duration::from_millis(100), Duration::from_secs(10))
    }
}

/// A ping and a traceroute of every endpoint's name (resolved on the probe) and of every
/// address this machine's run judged, in the document's order, at most [`MAX_DEFINITIONS`];
/// `notes` says what was left out.
pub fn definitions(doc: &RunDocument, notes: &mut Vec<String>) -> Vec<Definition> {
    let mut targets: Vec<String> = Vec::new();
    for e in &doc.endpoints {
        if !targets.contains(&e.host) {
            targets.push(e.host.clone());
        }
        for a in &e.addresses {
            let ip = a.ip.to_string();
            if !targets.contains(&ip) {
                targets.push(ip);
            }
        }
    }
    let all: Vec<Definition> = targets.iter().flat_map(|t| Definition::both(t)).collect();
    if all.len() > MAX_DEFINITIONS {
        notes.push(format!(
            "only the first {} of {} targets are measured from remote probes (at most {MAX_DEFINITIONS} \
             measurements a run); the others stay as this machine measured them",
            MAX_DEFINITIONS / 2,
            all.len() / 2
        ));
    }
    all.into_iter().take(MAX_DEFINITIONS).collect()
}

/// Creates the measurements, waits for them within the plan's bound (ticking `progress`), and
/// fetches their results and the probes' metadata. `notes` gets the price and whatever did not
/// arrive in time.
pub async fn measure(
    api: &AtlasApi,
    plan: &AtlasPlan,
    definitions: &[Definition],
    description: &str,
    progress: &ProgressBar,
    notes: &mut Vec<String>,
) -> Result<AtlasInput, AtlasApiError> {
    let estimate = estimate_credits(definitions, &plan.probes);
    if estimate > plan.max_credits {
        return Err(AtlasApiError::TooExpensive {
            estimate,
            max: plan.max_credits,
        });
    }
    let balance = api.credits().await?;
    notes.push(match balance {
        Some(b) => format!("RIPE Atlas: at most {estimate} credits of the {b} in the account"),
        None => {
            format!("RIPE Atlas: at most {estimate} credits (the key may not read the balance)")
        }
    });
    let ids = api.create(definitions, &plan.probes, description).await?;
    // From here the credits are spent: a failure must name the measurements, so their results
    // can still be fetched (`import atlas`).
    let spent = |e: AtlasApiError| AtlasApiError::AfterCreate {
        ids: ids.clone(),
        source: Box::new(e),
    };
    let deadline = Instant::now() + plan.wait;
    progress.set_length(ids.len() as u64);
    progress.set_message(format!("waiting for RIPE Atlas measurements {ids:?}"));
    let mut pending: BTreeSet<u64> = ids.iter().copied().collect();
    let mut expected: Vec<(u64, Option<u64>)> = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        for id in pending.clone() {
            let status = api.status(id).await.map_err(spent)?;
            if status.is_final() {
                pending.remove(&id);
                expected.push((id, status.participants));
                progress.inc(1);
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(
                plan.poll()
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }
    for id in &pending {
        notes.push(format!(
            "RIPE Atlas measurement {id} had not finished after {}: its results so far are used",
            humantime::format_duration(plan.wait)
        ));
        expected.push((*id, None));
    }
    let mut input = AtlasInput::default();
    for (id, participants) in expected {
        // Results trickle in after a measurement stops: look again until every probe that took
        // part has reported, or the wait is over.
        let (mut results, mut problems) = api.results(id).await.map_err(spent)?;
        while let Some(want) = participants {
            let have = results
                .iter()
                .filter_map(|r| r.prb_id)
                .collect::<BTreeSet<_>>()
                .len() as u64;
            if have >= want || Instant::now() >= deadline {
                if have < want {
                    notes.push(format!(
                        "RIPE Atlas measurement {id}: {have} of {want} probes reported in time"
                    ));
                }
                break;
            }
            tokio::time::sleep(plan.poll()).await;
            (results, problems) = api.results(id).await.map_err(spent)?;
        }
        input.files.push(super::import::ReadFile {
            file: format!("RIPE Atlas measurement {id}").into(),
            results: results.len(),
            problems,
        });
        input.results.extend(results);
    }
    let probes: Vec<u64> = input
        .results
        .iter()
        .filter_map(|r| r.prb_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !probes.is_empty() {
        let (info, problems) = api.probes(&probes).await.map_err(spent)?;
        input.files.push(super::import::ReadFile {
            file: "RIPE Atlas probe metadata".into(),
            results: info.len(),
            problems,
        });
        input.probes = info;
    }
    progress.finish_and_clear();
    Ok(input)
}

/// Every target of `definitions` measured from Globalping probes chosen by `locations` (the
/// first measurement picks them, the others reuse them), waited for until `wait` is over.
/// The results name their probes by the ids in the returned probes.
pub async fn measure_globalping(
    api: &GlobalpingApi,
    locations: &[Location],
    definitions: &[Definition],
    wait: Duration,
    progress: &ProgressBar,
    notes: &mut Vec<String>,
) -> Result<(Vec<AtlasResult>, Vec<RemoteProbe>), GlobalpingError> {
    let deadline = Instant::now() + wait;
    let poll = (wait / 20).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut first: Option<String> = None;
    let mut ids = Vec::new();
    for d in definitions {
        let kind = match d.kind {
            DefinitionKind::Ping => "ping",
            DefinitionKind::Traceroute => "traceroute",
        };
        let id = api
            .create(kind, &d.target, locations, first.as_deref())
            .await?;
        first.get_or_insert_with(|| id.clone());
        ids.push(id);
    }
    progress.set_length(ids.len() as u64);
    progress.set_message("waiting for Globalping measurements");
    let mut probes = Vec::new();
    let mut results = Vec::new();
    for id in &ids {
        let (answer, finished) = api.wait(id, deadline, poll).await?;
        if !finished {
            notes.push(format!(
                "Globalping measurement {id} had not finished after {}: its results so far are used",
                humantime::format_duration(wait)
            ));
        }
        match globalping::read_measurement(&answer, &mut probes) {
            Ok(r) => results.extend(r),
            Err(why) => notes.push(format!("Globalping measurement {id}: {why}; not used")),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let labels = globalping::unique_labels(&probes);
    let remote = probes
        .iter()
        .zip(labels)
        .map(|(p, label)| {
            let vantage = match (p.country.as_deref(), p.point) {
                (Some(cc), Some((lat, lon))) => cc
                    .parse::<CountryCode>()
                    .ok()
                    .and_then(|cc| Vantage::new(cc, lat, lon).ok())
                    .map(|v| v.with_uncertainty(crate::sources::physics::VOTED_UNCERTAINTY_KM)),
                _ => None,
            };
            if vantage.is_none() {
                notes.push(format!(
                    "Globalping probe {label}: its voted place is missing or outside its country, \
                     so its RTTs bound nothing"
                ));
            }
            RemoteProbe {
                id: p.id,
                name: format!(
                    "globalping probe {}",
                    p.label().trim_start_matches("globalping:")
                ),
                measured_from: MeasuredFrom {
                    kind: VantageKind::Globalping,
                    label: p.label(),
                    probe: None,
                    asn: p.asn,
                    location: vantage.map(|_| LocationKind::Voted),
                    city: p.city.clone(),
                },
                vantage,
            }
        })
        .collect();
    Ok((results, remote))
}
