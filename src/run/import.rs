//! `residency import atlas`: RIPE Atlas results measured elsewhere (NDJSON or JSON arrays,
//! firmware 1 to 5000+), judged against a policy and recorded as one vantage run per probe.
//!
//! Owns reading the files (every problem kept with its file and line, what parsed still used),
//! placing each probe from its metadata (a point outside the probe's declared country is not
//! used), and recording: each probe's run is chained in the policy's history like a run of this
//! machine, under the label `atlas:PROBE`, so `combine` takes it with the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Prepared, RunError, record};
use crate::check::remote::{Attribution, RemoteProbe, check_recorded};
use crate::history::{History, RunFilter, Stored};
use crate::measure::atlas::probes::{ProbeInfo, read_probes};
use crate::measure::atlas::{AtlasProblem, AtlasResult, read_results};
use crate::measure::vantage::{LocationKind, MeasuredFrom, VantageKind};
use crate::model::CountryCode;
use crate::record::RunDocument;
use crate::sources::physics::Vantage;
use crate::sources::registry::Registry;

/// What one file gave.
#[derive(Debug, Clone)]
pub struct ReadFile {
    pub file: PathBuf,
    pub results: usize,
    pub problems: Vec<AtlasProblem>,
}

/// Everything read for an import, before anything is judged.
#[derive(Debug, Clone, Default)]
pub struct AtlasInput {
    pub results: Vec<AtlasResult>,
    pub files: Vec<ReadFile>,
    pub probes: Vec<ProbeInfo>,
}

/// Why files cannot be imported; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}: check the path", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no RIPE Atlas result could be read from {files}: see the problems above, and fetch the \
         results as JSON (…/measurements/ID/results/?format=json)"
    )]
    NothingRead { files: String },
}

/// Reads every results file and the probes file, keeping each problem with its file.
pub fn read_atlas(files: &[PathBuf], probes: Option<&Path>) -> Result<AtlasInput, ImportError> {
    let mut input = AtlasInput::default();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read {
            file: file.clone(),
            source,
        })?;
        let (results, problems) = read_results(&text);
        input.files.push(ReadFile {
            file: file.clone(),
            results: results.len(),
            problems,
        });
        input.results.extend(results);
    }
    if let Some(file) = probes {
        let text = std::fs::read_to_string(file).map_err(|source| ImportError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let (probes, problems) = read_probes(&text);
        input.files.push(ReadFile {
            file: file.to_path_buf(),
            results: probes.len(),
            problems,
        });
        input.probes = probes;
    }
    if input.results.is_empty() {
        return Err(ImportError::NothingRead {
            files: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(input)
}

/// A probe as a vantage: its declared point when it lies in its declared country (the same
/// check as a user's `--vantage`), else no point, with why.
pub fn probe_vantage(id: u64, info: Option<&ProbeInfo>) -> (RemoteProbe, Option<String>) {
    let mut note = None;
    let vantage = match info {
        None => {
            note = Some(format!(
                "probe {id}: no metadata (pass --probes with /api/v2/probes/?id__in=… saved as \
                 JSON), so its RTTs bound nothing"
            ));
            None
        }
        Some(p) => match (p.country_code.as_deref(), p.point) {
            (Some(cc), Some((lat, lon))) => match cc.parse::<CountryCode>() {
                Ok(cc) => match Vantage::new(cc, lat, lon) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        note = Some(format!("probe {id}: {e}; its RTTs bound nothing"));
                        None
                    }
                },
                Err(e) => {
                    note = Some(format!("probe {id}: country {e}; its RTTs bound nothing"));
                    None
                }
            },
            _ => {
                note = Some(format!(
                    "probe {id}: no declared country or coordinates, so its RTTs bound nothing"
                ));
                None
            }
        },
    };
    let probe = RemoteProbe {
        id,
        name: format!("atlas probe {id}"),
        measured_from: MeasuredFrom {
            kind: VantageKind::Atlas,
            label: format!("atlas:{id}"),
            probe: Some(id.to_string()),
            asn: info.and_then(|p| p.asn_v4.or(p.asn_v6)),
            location: vantage.map(|_| LocationKind::Declared),
            city: None,
        },
        vantage,
    };
    (probe, note)
}

/// Which endpoint each address belongs to, from the policy's latest run measured from this
/// machine: for results measured by address rather than by name.
pub fn attribution(history: &History, prepared: &Prepared) -> Result<Attribution, RunError> {
    let filter = RunFilter {
        policy_id: Some(prepared.policy.id.clone()),
        ..RunFilter::default()
    };
    for summary in history.list(&filter)?.into_iter().rev() {
        let Some(run) = history.get(summary.id)? else {
            continue;
        };
        let Ok(doc) = serde_json::from_value::<RunDocument>(run.document) else {
            continue;
        };
        let local = doc
            .measured_from
            .as_ref()
            .is_none_or(|m| m.kind == VantageKind::Local);
        if doc.is_combined() || !local {
            continue;
        }
        let mut hosts: BTreeMap<std::net::IpAddr, Vec<String>> = BTreeMap::new();
        for e in &doc.endpoints {
            for a in &e.addresses {
                hosts.entry(a.ip).or_default().push(e.host.clone());
            }
        }
        let label = doc
            .measured_from
            .map_or_else(|| "local".into(), |m| m.label);
        return Ok(Attribution {
            hosts,
            from: format!("run {} ({label})", summary.id),
        });
    }
    Ok(Attribution::default())
}

/// Judges and records one run per probe in `input`, in probe order; `notes` gets what the user
/// should know (a probe without a usable place, results for no endpoint).
pub fn import_atlas(
    history: &mut History,
    prepared: &Prepared,
    input: &AtlasInput,
    registry: Option<Arc<Registry>>,
    runtime: &tokio::runtime::Runtime,
    notes: &mut Vec<String>,
) -> Result<Vec<(RunDocument, Stored)>, RunError> {
    let ids: BTreeSet<u64> = input.results.iter().filter_map(|r| r.prb_id).collect();
    let unassigned = input.results.iter().filter(|r| r.prb_id.is_none()).count();
    if unassigned > 0 {
        notes.push(format!(
            "{unassigned} results name no probe (prb_id) and were not used"
        ));
    }
    let probes: Vec<RemoteProbe> = ids
        .into_iter()
        .map(|id| {
            let (probe, note) = probe_vantage(id, input.probes.iter().find(|p| p.id == id));
            notes.extend(note);
            probe
        })
        .collect();
    import_remote(
        history,
        prepared,
        &input.results,
        &probes,
        registry,
        runtime,
    )
}

/// Judges and records one run per probe of `probes` (RIPE Atlas or Globalping), from the
/// results that name it.
pub fn import_remote(
    history: &mut History,
    prepared: &Prepared,
    results: &[AtlasResult],
    probes: &[RemoteProbe],
    registry: Option<Arc<Registry>>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<(RunDocument, Stored)>, RunError> {
    let attribution = attribution(history, prepared)?;
    let mut out = Vec::new();
    for probe in probes {
        let doc = runtime.block_on(check_recorded(
            &prepared.policy,
            probe,
            results,
            &attribution,
            &prepared.geo,
            registry.clone(),
        ));
        let stored = record(history, &doc)?;
        let stored = Stored {
            run_id: stored.id,
            seq: stored.seq,
            hash: stored.hash,
            database: history.path().display().to_string(),
        };
        out.push((doc, stored));
    }
    Ok(out)
}
