//! `diff`: what changed between two runs of a policy.

use super::*;

/// An address as a diff shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressState {
    pub ip: String,
    pub country: Option<String>,
    /// Null only for a hand-made document that gives the address no verdict.
    pub verdict: Option<Verdict>,
}

/// An endpoint present in only one of the two runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointState {
    pub host: String,
    pub verdict: Verdict,
    pub addresses: Vec<AddressState>,
}

/// An address present in both runs whose country or verdict changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressChange {
    pub ip: String,
    pub country: Option<Change<Option<String>>>,
    pub verdict: Option<Change<Option<Verdict>>>,
}

/// An endpoint present in both runs, with what changed (only endpoints that changed are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointDiff {
    pub host: String,
    pub verdict: Option<Change<Verdict>>,
    pub addresses_added: Vec<AddressState>,
    pub addresses_removed: Vec<AddressState>,
    pub addresses_changed: Vec<AddressChange>,
}

/// What changed from one run of a policy to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub policy_id: PolicyId,
    pub from: RunRefInfo,
    pub to: RunRefInfo,
    /// The run verdict, when it changed.
    pub verdict: Option<Change<Verdict>>,
    pub endpoints_added: Vec<EndpointState>,
    pub endpoints_removed: Vec<EndpointState>,
    pub endpoints_changed: Vec<EndpointDiff>,
    /// Countries of path hops in `to` but not in `from`, and the reverse.
    pub transit_added: Vec<String>,
    pub transit_removed: Vec<String>,
}

impl Diff {
    /// True when nothing compared here changed.
    pub fn is_empty(&self) -> bool {
        self.verdict.is_none()
            && self.endpoints_added.is_empty()
            && self.endpoints_removed.is_empty()
            && self.endpoints_changed.is_empty()
            && self.transit_added.is_empty()
            && self.transit_removed.is_empty()
    }
}

pub(crate) fn state(a: &AddressView) -> AddressState {
    AddressState {
        ip: a.ip.clone(),
        country: a.country.clone(),
        verdict: a.verdict(),
    }
}

pub(crate) fn endpoint_state(e: &EndpointView) -> EndpointState {
    EndpointState {
        host: e.host.clone(),
        verdict: e.verdict,
        addresses: e.addresses.iter().map(state).collect(),
    }
}

pub(crate) fn diff_endpoint(from: &EndpointView, to: &EndpointView) -> EndpointDiff {
    let old: BTreeMap<&str, &AddressView> =
        from.addresses.iter().map(|a| (a.ip.as_str(), a)).collect();
    let new: BTreeMap<&str, &AddressView> =
        to.addresses.iter().map(|a| (a.ip.as_str(), a)).collect();
    let mut d = EndpointDiff {
        host: to.host.clone(),
        verdict: change(&from.verdict, &to.verdict),
        addresses_added: Vec::new(),
        addresses_removed: Vec::new(),
        addresses_changed: Vec::new(),
    };
    // Document order of the newer run, so the list reads like `show` does.
    for a in &to.addresses {
        match old.get(a.ip.as_str()) {
            None => d.addresses_added.push(state(a)),
            Some(before) => {
                let country = change(&before.country, &a.country);
                let verdict = change(&before.verdict(), &a.verdict());
                if country.is_some() || verdict.is_some() {
                    d.addresses_changed.push(AddressChange {
                        ip: a.ip.clone(),
                        country,
                        verdict,
                    });
                }
            }
        }
    }
    d.addresses_removed = from
        .addresses
        .iter()
        .filter(|a| !new.contains_key(a.ip.as_str()))
        .map(state)
        .collect();
    d
}

pub(crate) fn diff_documents(
    policy: &PolicyId,
    from: (&RunSummary, &RunView),
    to: (&RunSummary, &RunView),
) -> Diff {
    let (from_run, from_doc) = from;
    let (to_run, to_doc) = to;
    let old: BTreeMap<&str, &EndpointView> = from_doc
        .endpoints
        .iter()
        .map(|e| (e.host.as_str(), e))
        .collect();
    let new: BTreeMap<&str, &EndpointView> = to_doc
        .endpoints
        .iter()
        .map(|e| (e.host.as_str(), e))
        .collect();
    let mut endpoints_added = Vec::new();
    let mut endpoints_changed = Vec::new();
    for e in &to_doc.endpoints {
        match old.get(e.host.as_str()) {
            None => endpoints_added.push(endpoint_state(e)),
            Some(before) => {
                let d = diff_endpoint(before, e);
                if d.verdict.is_some()
                    || !d.addresses_added.is_empty()
                    || !d.addresses_removed.is_empty()
                    || !d.addresses_changed.is_empty()
                {
                    endpoints_changed.push(d);
                }
            }
        }
    }
    let endpoints_removed = from_doc
        .endpoints
        .iter()
        .filter(|e| !new.contains_key(e.host.as_str()))
        .map(endpoint_state)
        .collect();
    let (old_transit, new_transit) = (from_doc.transit(), to_doc.transit());
    Diff {
        policy_id: policy.clone(),
        from: from_run.into(),
        to: to_run.into(),
        verdict: change(&from_run.verdict, &to_run.verdict),
        endpoints_added,
        endpoints_removed,
        endpoints_changed,
        transit_added: new_transit.difference(&old_transit).cloned().collect(),
        transit_removed: old_transit.difference(&new_transit).cloned().collect(),
    }
}

/// Compares the runs `from` and `to` pick out of `policy`'s history.
pub fn diff(
    history: &History,
    db: &Path,
    policy: &PolicyId,
    from: RunRef,
    to: RunRef,
) -> Result<Diff, CompareError> {
    let runs = runs_of(history, db, policy, None, None)?;
    let a = pick(&runs, policy, db, from, history)?;
    let b = pick(&runs, policy, db, to, history)?;
    let (da, db_) = (document(history, db, a.id)?, document(history, db, b.id)?);
    Ok(diff_documents(policy, (&a, &da), (&b, &db_)))
}
