//! Lenient views of a stored run document: only the fields compared here (the policy's
//! claims; each endpoint's host and verdict; each address's ip, country, verdict and path hop
//! countries), so runs recorded by older releases stay comparable.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::model::Verdict;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DocView {
    #[serde(default)]
    pub(crate) policy: PolicyView,
    #[serde(default)]
    pub(crate) endpoints: Vec<EndpointView>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PolicyView {
    #[serde(default)]
    pub(crate) claims: Vec<ClaimView>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ClaimView {
    pub(crate) date: NaiveDate,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) statement: String,
    #[serde(default)]
    pub(crate) locations: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EndpointView {
    pub(crate) host: String,
    pub(crate) verdict: Verdict,
    #[serde(default)]
    pub(crate) addresses: Vec<AddressView>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddressView {
    pub(crate) ip: String,
    #[serde(default)]
    pub(crate) country: Option<String>,
    pub(crate) verdict: Verdict,
    #[serde(default)]
    pub(crate) path: Option<PathView>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PathView {
    #[serde(default)]
    pub(crate) hops: Vec<HopView>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HopView {
    #[serde(default)]
    pub(crate) country: Option<String>,
}

impl DocView {
    /// Countries of every located hop of every traced path in the run.
    pub(crate) fn transit(&self) -> BTreeSet<String> {
        self.endpoints
            .iter()
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.path.as_ref())
            .flat_map(|p| &p.hops)
            .filter_map(|h| h.country.clone())
            .collect()
    }
}
