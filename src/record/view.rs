//! The lenient view of a recorded run document: the one reading of a stored document shared by
//! the history's index (`history::digest`), by `verify` (which re-derives that index), and by the
//! comparisons `diff`, `timeline` and `claims` (and through them the history parts of reports).
//!
//! A history must stay readable for as long as it is kept, including runs recorded by older
//! releases and documents written by hand, so the view reads only the fields it is asked about,
//! and in two grades:
//!
//! - **Required** (the failure of one of these means the run cannot be indexed): each endpoint's
//!   `host` and `verdict`, and each address's `ip`. Every release has written them. Each address
//!   may also carry a `country`.
//! - **Lenient**, read only by the comparisons: the policy's claims, each address's verdict and
//!   its path's hop countries. A lenient field that is missing takes its default. One that is
//!   present but malformed does not stop the run from being indexed or verified. It is kept as
//!   an error, and [`RunView::problems`] names it, so a comparison can refuse that run with the
//!   reason instead of guessing.
//!
//! So no reader is ever stricter than the index: a run that `history verify` accepts can always
//! be opened by the comparisons, which then report exactly what in it they cannot use.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::model::Verdict;

/// A field read only when asked for. Deserialising keeps its JSON text (any value is accepted),
/// so the index, which never asks, pays no more than for skipping it; a malformed value shows
/// as an error when it is read. Absent means the type's default.
pub struct Lenient<T> {
    raw: Option<Box<RawValue>>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient {
            raw: None,
            kind: PhantomData,
        }
    }
}

impl<'de, T> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lenient {
            raw: Some(Box::<RawValue>::deserialize(d)?),
            kind: PhantomData,
        })
    }
}

impl<T: DeserializeOwned + Default> Lenient<T> {
    /// The value, or why it cannot be read.
    pub fn get(&self) -> Result<T, String> {
        match &self.raw {
            None => Ok(T::default()),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| e.to_string()),
        }
    }
}

impl<T> fmt::Debug for Lenient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            None => f.write_str("absent"),
            Some(raw) => f.write_str(raw.get()),
        }
    }
}

/// A stored run document, as far as the index and the comparisons read it.
#[derive(Debug, Default, Deserialize)]
pub struct RunView {
    #[serde(default)]
    policy: Lenient<PolicyView>,
    #[serde(default)]
    pub endpoints: Vec<EndpointView>,
}

#[derive(Debug, Default, Deserialize)]
struct PolicyView {
    #[serde(default)]
    claims: Vec<ClaimView>,
}

/// A dated claim of the vendor, as the policy stated it when the run was made.
#[derive(Debug, Clone, Deserialize)]
pub struct ClaimView {
    pub date: NaiveDate,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub statement: String,
    #[serde(default)]
    pub locations: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct EndpointView {
    pub host: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub addresses: Vec<AddressView>,
}

#[derive(Debug, Deserialize)]
pub struct AddressView {
    pub ip: String,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    verdict: Lenient<Option<Verdict>>,
    #[serde(default)]
    path: Lenient<Option<PathView>>,
}

#[derive(Debug, Default, Deserialize)]
struct PathView {
    #[serde(default)]
    hops: Vec<HopView>,
}

#[derive(Debug, Default, Deserialize)]
struct HopView {
    #[serde(default)]
    country: Option<String>,
}

impl RunView {
    /// The view of a document's JSON text; an error (serde's description) only when a required
    /// field is missing or malformed.
    pub fn from_text(text: &str) -> Result<RunView, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The policy's dated claims (none when the snapshot has none, or when they cannot be read:
    /// see [`RunView::problems`]).
    pub fn claims(&self) -> Vec<ClaimView> {
        self.policy.get().map(|p| p.claims).unwrap_or_default()
    }

    /// Countries of every located hop of every traced path in the run.
    pub fn transit(&self) -> BTreeSet<String> {
        self.endpoints
            .iter()
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.path.get().ok().flatten())
            .flat_map(|p| p.hops)
            .filter_map(|h| h.country)
            .collect()
    }

    /// Every lenient field that is present but cannot be read, naming where it is: what a
    /// comparison must refuse rather than read as absent.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.policy.get() {
            out.push(format!("policy: {e}"));
        }
        for e in &self.endpoints {
            for a in &e.addresses {
                let at = || {
                    format!(
                        "endpoint {} address {}",
                        crate::text::visible(&e.host),
                        crate::text::visible(&a.ip)
                    )
                };
                if let Err(why) = a.verdict.get() {
                    out.push(format!("{}: verdict: {why}", at()));
                }
                if let Err(why) = a.path.get() {
                    out.push(format!("{}: path: {why}", at()));
                }
            }
        }
        out
    }
}

impl AddressView {
    /// The address's own verdict; `None` when the document does not give one (or gives one that
    /// [`RunView::problems`] reports).
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict.get().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_required_and_the_rest_is_lenient() {
        assert!(RunView::from_text(r#"{"endpoints": [{"host": "a"}]}"#).is_err());
        assert!(RunView::from_text(r#"{"endpoints": [{"verdict": "compliant"}]}"#).is_err());
        let odd = r#"{"policy": "not an object", "endpoints": [{"host": "a",
            "verdict": "violation", "addresses": [{"ip": "192.0.2.1",
            "verdict": "maybe", "path": {"hops": 3}}, {"ip": "192.0.2.2",
            "path": {"hops": [{"country": "CN"}, {}]}}]}]}"#;
        let view = RunView::from_text(odd).expect("indexable despite the odd fields");
        assert!(view.claims().is_empty());
        assert_eq!(view.endpoints[0].addresses[0].verdict(), None);
        assert_eq!(view.transit(), BTreeSet::from(["CN".to_string()]));
        let problems = view.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("policy: "), "{problems:?}");
        assert!(
            problems[1].starts_with("endpoint a address 192.0.2.1: verdict: "),
            "{problems:?}"
        );
        assert!(problems[2].contains(": path: "), "{problems:?}");
    }

    #[test]
    fn absent_lenient_fields_are_defaults_not_problems() {
        let view = RunView::from_text(
            r#"{"endpoints": [{"host": "a", "verdict": "compliant",
                "addresses": [{"ip": "192.0.2.1", "verdict": "compliant"}]}]}"#,
        )
        .expect("view");
        assert!(view.problems().is_empty());
        assert_eq!(
            view.endpoints[0].addresses[0].verdict(),
            Some(Verdict::Compliant)
        );
        assert!(view.transit().is_empty());
    }
}
