//! `claims`: whether each dated vendor claim has held since it was announced (the rule is in
//! the module doc of [`super`]).

use super::*;

/// Whether a claim held after its date; see the module doc for the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ClaimStatus {
    Untested,
    Holds { since: String },
    Broken { on: String, since: String },
    NeverHeld,
}

/// A run id, date and verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunVerdict {
    pub id: RunId,
    pub started_at: String,
    pub verdict: Verdict,
}

/// One claim, judged against the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimReport {
    pub date: NaiveDate,
    pub statement: String,
    pub source: Option<String>,
    pub locations: Vec<String>,
    #[serde(flatten)]
    pub status: ClaimStatus,
    /// The runs that show the status.
    pub evidence: Vec<RunId>,
    /// The last run before the claim date was compliant; `null` with no run before it.
    pub already_compliant: Option<bool>,
    pub before: Vec<RunVerdict>,
    pub after: Vec<RunVerdict>,
}

/// Every claim of a policy (from its latest run's snapshot), judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub policy_id: PolicyId,
    /// The run whose policy snapshot the claims come from.
    pub claims_from_run: RunId,
    pub claims: Vec<ClaimReport>,
}

pub(crate) fn run_verdict(r: &RunSummary) -> RunVerdict {
    RunVerdict {
        id: r.id,
        started_at: time::micros(&r.started_at),
        verdict: r.verdict,
    }
}

pub(crate) fn judge_claim(claim: &ClaimView, runs: &[RunSummary]) -> ClaimReport {
    let start = claim
        .date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let (before, after): (Vec<&RunSummary>, Vec<&RunSummary>) =
        runs.iter().partition(|r| r.started_at < start);
    let compliant = |r: &&RunSummary| r.verdict == Verdict::Compliant;
    let last_compliant = after.iter().rposition(compliant);
    let (status, evidence): (ClaimStatus, Vec<&RunSummary>) = match (after.last(), last_compliant) {
        (None, _) => (ClaimStatus::Untested, Vec::new()),
        (Some(_), None) => (ClaimStatus::NeverHeld, after.clone()),
        (Some(latest), Some(i)) if i + 1 == after.len() => {
            // Walk back to the start of the final compliant streak.
            let streak_start = after
                .iter()
                .rposition(|r| !compliant(r))
                .map_or(0, |j| j + 1);
            let streak = after[streak_start..].to_vec();
            let since = streak.first().copied().unwrap_or(latest);
            (
                ClaimStatus::Holds {
                    since: time::micros(&since.started_at),
                },
                streak,
            )
        }
        (Some(latest), Some(i)) => {
            let broken = after[i + 1..].to_vec();
            let since = broken.first().copied().unwrap_or(latest);
            (
                ClaimStatus::Broken {
                    on: time::micros(&latest.started_at),
                    since: time::micros(&since.started_at),
                },
                broken,
            )
        }
    };
    ClaimReport {
        date: claim.date,
        statement: claim.statement.clone(),
        source: claim.source.clone(),
        locations: claim.locations.clone(),
        status,
        evidence: evidence.iter().map(|r| r.id).collect(),
        already_compliant: before.last().map(|r| r.verdict == Verdict::Compliant),
        before: before.iter().copied().map(run_verdict).collect(),
        after: after.iter().copied().map(run_verdict).collect(),
    }
}

/// Judges every claim in the latest run's policy snapshot against all of the policy's runs.
pub fn claims(history: &History, db: &Path, policy: &PolicyId) -> Result<Claims, CompareError> {
    let runs = runs_of(history, db, policy, None, None)?;
    let latest = runs
        .iter()
        .max_by_key(|r| (r.started_at, r.id))
        .ok_or_else(|| CompareError::UnknownPolicy {
            policy: policy.clone(),
            db: db.to_path_buf(),
        })?;
    let doc = document(history, db, latest.id)?;
    Ok(Claims {
        policy_id: policy.clone(),
        claims_from_run: latest.id,
        claims: doc.claims().iter().map(|c| judge_claim(c, &runs)).collect(),
    })
}
