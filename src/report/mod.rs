//! Reports: turning run documents into what people read.
//!
//! Owns presentation only; every fact shown here comes from a [`RunDocument`] or a history
//! record. [`table`] draws the terminal tables; the rest renders compliance reports from
//! templates: [`context`] builds the documented context from the history, [`render`] runs the
//! templates (minijinja for HTML and Markdown, typst for PDF in [`pdf`]), [`svg`] draws the
//! charts and the map, and [`provenance`] lets a reader check a report against the history.
//!
//! [`RunDocument`]: crate::record::RunDocument

pub mod context;
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod provenance;
pub mod render;
pub mod svg;
pub mod table;

use std::path::PathBuf;

use crate::compare::CompareError;
use crate::history::HistoryError;
use crate::history::RunId;
use crate::policy::PolicyId;

/// What stops a report; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error(
        "policy `{policy}` has no run started in the period (since {}, until {}): list its runs with `residency history --policy {policy}`",
        since.as_deref().unwrap_or("the first run"),
        until.as_deref().unwrap_or("now")
    )]
    EmptyPeriod {
        policy: PolicyId,
        since: Option<String>,
        until: Option<String>,
    },
    #[error(
        "run {id} cannot be reported ({detail}); its full record is still there: `residency show {id} --format json`"
    )]
    Unreadable { id: RunId, detail: String },
    #[error(
        "cannot tell the report format from `{}`: name the output FILE.html, FILE.pdf or FILE.md",
        .0.display()
    )]
    UnknownFormat(PathBuf),
    #[error(
        "template `{}` cannot make a {format} report: use a {wanted} template (see reports/README.md)",
        template.display()
    )]
    TemplateFormat {
        template: PathBuf,
        format: &'static str,
        wanted: &'static str,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A template that does not compile or fails while rendering.
    #[error(
        "{file}:{line}: {detail}; fix the template (its context is documented in reports/README.md)"
    )]
    Template {
        file: String,
        line: usize,
        detail: String,
    },
    #[error(
        "this residency was built without PDF support (cargo feature `pdf`): rebuild with default features, or write FILE.html"
    )]
    PdfDisabled,
    #[error("cannot encode the report context: {0}")]
    Json(String),
    #[error(
        "{} carries no residency provenance marker: only reports made by `residency report` can be checked",
        .0.display()
    )]
    NoProvenance(PathBuf),
    #[error(
        "{} carries {count} different provenance markers: the report was edited or a template repeats measured text that looks like one; check the runs it names by hand with `residency show RUN_ID`",
        path.display()
    )]
    AmbiguousProvenance { path: PathBuf, count: usize },
    #[error("the provenance marker in {} is malformed: the report was edited", .0.display())]
    BadProvenance(PathBuf),
}
