//! Who measured: this machine, a RIPE Atlas probe or a Globalping probe, under a label that
//! stays the same from run to run, and how its location came to be known.
//!
//! The coordinates themselves are a [`crate::sources::physics::Vantage`] (physics needs them);
//! this is the identity that `combine` groups runs by, and what a report names beside a disk.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of vantage point made a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VantageKind {
    /// The machine `residency check` ran on.
    Local,
    /// A RIPE Atlas probe, through the Atlas API or an imported result file.
    Atlas,
    /// A Globalping probe.
    Globalping,
}

impl VantageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VantageKind::Local => "local",
            VantageKind::Atlas => "atlas",
            VantageKind::Globalping => "globalping",
        }
    }
}

impl fmt::Display for VantageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the vantage point's location is known, which is what an RTT bound from it is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    /// Stated by whoever runs the machine: the user's `--vantage`, an Atlas probe's host.
    Declared,
    /// Voted from geolocation databases (Globalping's probes): as good as the databases.
    Voted,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Declared => "declared",
            LocationKind::Voted => "voted",
        }
    }
}

/// The identity of the vantage point a run was measured from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredFrom {
    pub kind: VantageKind,
    /// Stable across runs, unique per vantage point: `local:HOSTNAME` (or `--vantage-label`),
    /// `atlas:PROBE`, `globalping:PROBE`.
    pub label: String,
    /// The probe's id, for Atlas and Globalping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The network the vantage point measures from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// How the coordinates in the run's `vantage` are known; absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationKind>,
    /// The city the probe's host or the vote names, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// Why a vantage label is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a vantage label: use 1 to 64 letters, digits, `.`, `_`, `-` or `:` (e.g. delhi-1)"
)]
pub struct LabelError(pub String);

/// The longest label: it is shown in tables and map legends.
const MAX_LABEL: usize = 64;

/// Checks a label given by the user; labels end up in tables, logs and reports.
pub fn check_label(label: &str) -> Result<String, LabelError> {
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    ok.then(|| label.to_string())
        .ok_or_else(|| LabelError(crate::text::visible(label).into_owned()))
}

impl MeasuredFrom {
    /// This machine: `label` when given (checked by [`check_label`]), else `local:HOSTNAME`.
    pub fn local(label: Option<&str>) -> MeasuredFrom {
        let label = label.map_or_else(
            || format!("local:{}", hostname().unwrap_or_else(|| "unnamed".into())),
            str::to_string,
        );
        MeasuredFrom {
            kind: VantageKind::Local,
            label,
            probe: None,
            asn: None,
            location: None,
            city: None,
        }
    }

    /// What a run recorded before vantage identities existed is taken to be: this machine,
    /// under one label for all such runs.
    pub fn legacy() -> MeasuredFrom {
        MeasuredFrom::local(Some("local"))
    }
}

/// The kernel's host name, when it is a usable label (Linux; elsewhere `None`).
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    check_label(name.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_plain_text() {
        assert_eq!(check_label("delhi-1"), Ok("delhi-1".into()));
        assert_eq!(check_label("atlas:6001"), Ok("atlas:6001".into()));
        for bad in ["", "a b", "x\u{1b}[31m", &"a".repeat(65), "ümlaut"] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
        let err = check_label("\u{1b}[2J").expect_err("an escape is refused");
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
    }

    #[test]
    fn a_local_vantage_is_named_after_the_host_unless_labelled() {
        assert_eq!(MeasuredFrom::local(Some("chennai")).label, "chennai");
        assert!(MeasuredFrom::local(None).label.starts_with("local:"));
        assert_eq!(MeasuredFrom::legacy().kind, VantageKind::Local);
    }
}
