//! PDF reports, typeset in-process by typst (cargo feature `pdf`).
//!
//! Owns the typst [`World`] a report template runs in: its files, its one font family, and
//! nothing else. The template (`reports/run.typ`, `reports/period.typ`, or a user's `.typ`)
//! reads the report context as JSON from the virtual file [`CONTEXT_PATH`]
//! (`#let ctx = json("/residency/context.json")`). Measured text therefore only ever reaches
//! typst as string values inside that data, never as source to parse, which is why no escaping
//! of typst markup is needed and a hostile `#import` or `]` is shown as text.
//!
//! The sandbox: files resolve only to the virtual context and to plain file names in the
//! template's own directory ([`TemplateDir::read`]); package imports (`@preview/...`) are
//! refused, so nothing is fetched; fonts are the embedded DejaVu Sans (regular and bold,
//! `data/fonts/`, Bitstream Vera licence), so the output does not depend on the machine.

use std::collections::HashMap;
use std::sync::Mutex;

use typst::diag::{FileError, FileResult, PackageError, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{DiagSpanKind, FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;

use super::ReportError;
use super::context::ReportContext;
use super::render::TemplateDir;

/// Where a PDF template finds the report context.
pub const CONTEXT_PATH: &str = "/residency/context.json";

const FONT_FILES: [&[u8]; 2] = [
    include_bytes!("../../data/fonts/DejaVuSans.ttf"),
    include_bytes!("../../data/fonts/DejaVuSans-Bold.ttf"),
];

struct ReportWorld {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    main: FileId,
    context_id: FileId,
    context: Bytes,
    dir: TemplateDir,
    today: Option<Datetime>,
    sources: Mutex<HashMap<FileId, Source>>,
}

fn file_id(path: &str) -> Result<FileId, String> {
    VirtualPath::new(path)
        .map(|v| FileId::new(RootedPath::new(VirtualRoot::Project, v)))
        .map_err(|e| format!("{path}: {e:?}"))
}

impl ReportWorld {
    fn bytes(&self, id: FileId) -> FileResult<Vec<u8>> {
        let rooted = id.get();
        if !matches!(rooted.root(), VirtualRoot::Project) {
            return Err(FileError::Package(PackageError::Other(Some(
                "packages are not available to report templates: copy what you need next to the template"
                    .into(),
            ))));
        }
        let name = rooted.vpath().get_without_slash();
        match self.dir.read(name) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(FileError::NotFound(name.into())),
            Err(why) => Err(FileError::Other(Some(why.into()))),
        }
    }
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.book
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if let Ok(cache) = self.sources.lock()
            && let Some(source) = cache.get(&id)
        {
            return Ok(source.clone());
        }
        let bytes = self.bytes(id)?;
        let text = String::from_utf8(bytes).map_err(|_| FileError::InvalidUtf8)?;
        let source = Source::new(id, text);
        if let Ok(mut cache) = self.sources.lock() {
            cache.insert(id, source.clone());
        }
        Ok(source)
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.context_id {
            return Ok(self.context.clone());
        }
        self.bytes(id).map(Bytes::new)
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        self.today
    }
}

fn diagnostic(world: &ReportWorld, name: &str, d: &SourceDiagnostic) -> ReportError {
    let (file, line) = match d.span.get() {
        DiagSpanKind::Detached => (name.to_string(), 0),
        DiagSpanKind::Number { id, .. } | DiagSpanKind::Range { id, .. } => {
            let file = id.get().vpath().get_without_slash().to_string();
            let line = world
                .range(d.span)
                .and_then(|r| {
                    world
                        .source(id)
                        .ok()
                        .and_then(|s| s.lines().byte_to_line(r.start))
                })
                .map_or(0, |l| l + 1);
            (file, line)
        }
    };
    let mut detail = d.message.to_string();
    for hint in &d.hints {
        detail.push_str("; hint: ");
        detail.push_str(&hint.v);
    }
    ReportError::Template { file, line, detail }
}

/// Typesets the report with the template `name` from `dir`.
pub fn render(
    value: &serde_json::Value,
    ctx: &ReportContext,
    dir: TemplateDir,
    name: &str,
) -> Result<Vec<u8>, ReportError> {
    let bad = |detail: String| ReportError::Template {
        file: name.to_string(),
        line: 0,
        detail,
    };
    let main = file_id(&format!("/{name}")).map_err(bad)?;
    let context_id = file_id(CONTEXT_PATH).map_err(bad)?;
    let json = serde_json::to_vec(value).map_err(|e| ReportError::Json(e.to_string()))?;
    let fonts: Vec<Font> = FONT_FILES
        .iter()
        .flat_map(|data| Font::iter(Bytes::new(*data)))
        .collect();
    let today = chrono::DateTime::parse_from_rfc3339(&ctx.generated_at)
        .ok()
        .and_then(|t| {
            use chrono::Datelike;
            Datetime::from_ymd(t.year(), t.month() as u8, t.day() as u8)
        });
    let world = ReportWorld {
        library: LazyHash::new(Library::default()),
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
        main,
        context_id,
        context: Bytes::new(json),
        dir,
        today,
        sources: Mutex::new(HashMap::new()),
    };
    let compiled = typst::compile::<PagedDocument>(&world);
    // typst memoises layout across compilations; a report is made once, so keeping the cache
    // would only grow a long-lived process (`watch`, a library user) and flatter benchmarks.
    typst::comemo::evict(0);
    for w in &compiled.warnings {
        tracing::debug!("typst warning: {}", w.message);
    }
    let document = compiled.output.map_err(|errors| match errors.first() {
        Some(d) => diagnostic(&world, name, d),
        None => bad("typst failed without a diagnostic".into()),
    })?;
    typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default()).map_err(|errors| {
        match errors.first() {
            Some(d) => diagnostic(&world, name, d),
            None => bad("PDF export failed without a diagnostic".into()),
        }
    })
}
