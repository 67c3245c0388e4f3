//! The digest of a run that the history indexes beside its document: each endpoint's verdict and
//! how many distinct addresses were located in which country.
//!
//! A year of 6-hourly runs over 1,000 endpoints is gigabytes of documents; a timeline that had to
//! re-read them all would take minutes. The history therefore stores this digest when it records
//! a run (in the same transaction), and `timeline` reads only digests. A digest is *derived*: it
//! is computed from the document by [`RunDigest::of_document`] and nothing else, so it can always
//! be rebuilt, and `history verify` recomputes it to show the index was not edited.
//!
//! Documents are read through the one lenient view ([`crate::record::view`]), so runs recorded
//! by older releases digest the same way, and no reader of the history is stricter than this
//! index.
//!
//! # Address shares
//!
//! Each distinct address counts once however many endpoints returned it (it is one server). An
//! address is *located* when its `country` is known; a located sighting wins over an unlocated
//! one of the same ip. Unlocated addresses are counted separately so a falling share is never
//! mistaken for a move.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::Verdict;
use crate::record::view::RunView;

/// What the history indexes about one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunDigest {
    /// Verdict per endpoint host. A host listed twice keeps its worst verdict.
    pub endpoints: BTreeMap<String, Verdict>,
    /// Distinct located addresses per country code.
    pub countries: BTreeMap<String, u32>,
    /// Distinct addresses without a known country.
    pub unlocated: u32,
}

impl RunDigest {
    /// The digest of a run document; an error (with serde's description) when the document lacks
    /// the fields every release has written (`endpoints[].host`, `.verdict`, `.addresses[].ip`).
    pub fn of_document(document: &Value) -> Result<RunDigest, String> {
        RunDigest::of_text(&document.to_string())
    }

    /// [`RunDigest::of_document`] straight from JSON text, without building the whole value: how
    /// `history verify` re-derives digests of a year of documents in reasonable time.
    pub fn of_text(document: &str) -> Result<RunDigest, String> {
        RunView::from_text(document).map(|view| RunDigest::of_view(&view))
    }

    fn of_view(doc: &RunView) -> RunDigest {
        let mut digest = RunDigest::default();
        let mut seen: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for e in &doc.endpoints {
            digest
                .endpoints
                .entry(e.host.clone())
                .and_modify(|v| *v = (*v).max(e.verdict))
                .or_insert(e.verdict);
            for a in &e.addresses {
                let slot = seen.entry(a.ip.as_str()).or_insert(None);
                if slot.is_none() {
                    *slot = a.country.as_deref();
                }
            }
        }
        for country in seen.values() {
            match country {
                Some(c) => *digest.countries.entry((*c).to_string()).or_default() += 1,
                None => digest.unlocated += 1,
            }
        }
        digest
    }

    /// Distinct addresses with a known country.
    pub fn located(&self) -> u32 {
        self.countries.values().sum()
    }
}

/// The `(countries, unlocated, error)` columns of a run's `run_digests` row.
pub(crate) fn digest_columns(digest: &Result<RunDigest, String>) -> (String, u32, Option<&str>) {
    match digest {
        Ok(d) => (
            serde_json::to_string(&d.countries).unwrap_or_else(|_| "{}".into()),
            d.unlocated,
            None,
        ),
        Err(e) => ("{}".to_string(), 0, Some(e.as_str())),
    }
}

/// The `endpoint_changes` rows `(host, verdict)` of a run whose endpoints were `before` in the
/// policy's previous runs: endpoints whose verdict differs, and dropped ones (verdict `None`).
pub(crate) fn changed_endpoints<'a>(
    before: &'a BTreeMap<String, Verdict>,
    digest: &'a RunDigest,
) -> Vec<(&'a str, Option<&'static str>)> {
    let mut out: Vec<(&str, Option<&'static str>)> = digest
        .endpoints
        .iter()
        .filter(|(host, verdict)| before.get(*host) != Some(*verdict))
        .map(|(host, verdict)| (host.as_str(), Some(verdict.as_str())))
        .collect();
    out.extend(
        before
            .keys()
            .filter(|h| !digest.endpoints.contains_key(*h))
            .map(|h| (h.as_str(), None)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_address_counts_once_and_located_wins() {
        let doc = json!({"endpoints": [
            {"host": "a", "verdict": "compliant", "addresses": [
                {"ip": "192.0.2.1", "country": null}, {"ip": "192.0.2.2", "country": "IN"}]},
            {"host": "b", "verdict": "violation", "addresses": [
                {"ip": "192.0.2.1", "country": "SG"}, {"ip": "192.0.2.2", "country": "IN"},
                {"ip": "192.0.2.3"}]},
            {"host": "a", "verdict": "inconclusive", "addresses": []}
        ]});
        let d = RunDigest::of_document(&doc).expect("digest");
        assert_eq!(RunDigest::of_text(&doc.to_string()), Ok(d.clone()));
        assert_eq!(
            d.endpoints,
            BTreeMap::from([
                ("a".to_string(), Verdict::Inconclusive),
                ("b".to_string(), Verdict::Violation)
            ])
        );
        assert_eq!(
            d.countries,
            BTreeMap::from([("IN".to_string(), 1), ("SG".to_string(), 1)])
        );
        assert_eq!((d.located(), d.unlocated), (2, 1));
    }

    #[test]
    fn a_document_without_verdicts_is_an_error() {
        let err =
            RunDigest::of_document(&json!({"endpoints": [{"host": "a"}]})).expect_err("no verdict");
        assert!(err.contains("verdict"), "{err}");
    }
}
