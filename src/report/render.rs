//! Running report templates: the output format, the default templates, and the sandbox users'
//! templates run in.
//!
//! Owns how a [`ReportContext`] becomes bytes. HTML and Markdown templates are minijinja
//! (`*.html.j2`, `*.md.j2`); PDF templates are typst (`*.typ`) typeset in-process by
//! [`super::pdf`]. The defaults live in `reports/` and are embedded in the binary.
//!
//! # Safety
//!
//! - HTML: every value is HTML-escaped on output unless a template marks it `|safe`; the
//!   context's only pre-escaped values are the SVG charts (`charts.*`), drawn by
//!   [`super::svg`] with every text escaped. `|tojson` escapes `<`, `>`, `&` and `'`, so it can
//!   sit inside `<script type="application/json">`.
//! - Markdown: every value has Markdown's and HTML's special characters backslash-escaped and
//!   its line breaks turned into spaces, so a value can neither open a link, an inline tag nor a
//!   new block.
//! - PDF: values never become typst source. The context is handed to the template as a JSON
//!   file it reads with `json(...)`, so a hostile string is a string value, shown as text.
//! - Sandbox: templates see the context and nothing else. minijinja is built without its debug
//!   function; neither engine is given a function that reads files, the environment or the
//!   network. Includes, imports and images resolve only to plain file names in the template's
//!   own directory (no `/`, no `..`, no hidden files, no symlink leading out); typst packages
//!   are refused.
//! - Control and bidirectional-override characters are already made visible in the context
//!   (see [`super::context::visible_controls`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior, Value};

use super::ReportError;
use super::context::{ReportContext, ReportKind};

/// What a report is written as, from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Html,
    Markdown,
    Pdf,
}

impl OutputFormat {
    /// `.html`/`.htm`, `.md`/`.markdown` or `.pdf`.
    pub fn from_path(path: &Path) -> Result<OutputFormat, ReportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("html" | "htm") => Ok(OutputFormat::Html),
            Some("md" | "markdown") => Ok(OutputFormat::Markdown),
            Some("pdf") => Ok(OutputFormat::Pdf),
            _ => Err(ReportError::UnknownFormat(path.to_path_buf())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Html => "HTML",
            OutputFormat::Markdown => "Markdown",
            OutputFormat::Pdf => "PDF",
        }
    }

    fn template_kind(self) -> &'static str {
        match self {
            OutputFormat::Html => "minijinja `.html.j2`",
            OutputFormat::Markdown => "minijinja `.md.j2`",
            OutputFormat::Pdf => "typst `.typ`",
        }
    }

    fn of_template(name: &str) -> Option<OutputFormat> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".html.j2") || lower.ends_with(".html") || lower.ends_with(".htm") {
            Some(OutputFormat::Html)
        } else if lower.ends_with(".md.j2") || lower.ends_with(".md") {
            Some(OutputFormat::Markdown)
        } else if lower.ends_with(".typ") {
            Some(OutputFormat::Pdf)
        } else {
            None
        }
    }
}

/// The default templates, embedded so the binary reports from any directory.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html.j2",
        include_str!("../../reports/layout.html.j2"),
    ),
    ("run.html.j2", include_str!("../../reports/run.html.j2")),
    (
        "period.html.j2",
        include_str!("../../reports/period.html.j2"),
    ),
    ("report.md.j2", include_str!("../../reports/report.md.j2")),
    ("common.typ", include_str!("../../reports/common.typ")),
    ("run.typ", include_str!("../../reports/run.typ")),
    ("period.typ", include_str!("../../reports/period.typ")),
];

/// The default template's name for a report kind and format.
pub fn default_template(kind: ReportKind, format: OutputFormat) -> &'static str {
    match (kind, format) {
        (ReportKind::Run, OutputFormat::Html) => "run.html.j2",
        (ReportKind::Period, OutputFormat::Html) => "period.html.j2",
        (_, OutputFormat::Markdown) => "report.md.j2",
        (ReportKind::Run, OutputFormat::Pdf) => "run.typ",
        (ReportKind::Period, OutputFormat::Pdf) => "period.typ",
    }
}

/// Where a template and the files it includes come from.
#[derive(Debug, Clone)]
pub enum TemplateDir {
    /// The embedded defaults.
    Embedded,
    /// A user's template directory (canonical path).
    Dir(PathBuf),
}

impl TemplateDir {
    /// The file `name` in this directory, if it is a plain file name that stays inside it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        if !plain_name(name) {
            return Err(format!(
                "`{name}` is not a plain file name in the template's directory (no `/`, `..` or leading `.`)"
            ));
        }
        match self {
            TemplateDir::Embedded => Ok(DEFAULT_TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| text.as_bytes().to_vec())),
            TemplateDir::Dir(dir) => {
                let path = dir.join(name);
                let real = match path.canonicalize() {
                    Ok(real) => real,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                };
                if real.parent() != Some(dir.as_path()) {
                    return Err(format!(
                        "`{name}` leads out of the template's directory {}",
                        dir.display()
                    ));
                }
                std::fs::read(&real)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", real.display()))
            }
        }
    }
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Where the template for this report comes from: the user's (checked against the output
/// format) or the default.
pub fn locate_template(
    template: Option<&Path>,
    kind: ReportKind,
    format: OutputFormat,
) -> Result<(TemplateDir, String), ReportError> {
    let Some(path) = template else {
        return Ok((
            TemplateDir::Embedded,
            default_template(kind, format).to_string(),
        ));
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if OutputFormat::of_template(&name) != Some(format) {
        return Err(ReportError::TemplateFormat {
            template: path.to_path_buf(),
            format: format.as_str(),
            wanted: format.template_kind(),
        });
    }
    let real = path.canonicalize().map_err(|e| ReportError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let dir = real
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    Ok((TemplateDir::Dir(dir), name))
}

/// Renders the report: HTML, Markdown or PDF bytes.
pub fn render(
    ctx: &ReportContext,
    format: OutputFormat,
    template: Option<&Path>,
) -> Result<Vec<u8>, ReportError> {
    let (dir, name) = locate_template(template, ctx.kind, format)?;
    let value = ctx.to_value()?;
    match format {
        OutputFormat::Html | OutputFormat::Markdown => {
            jinja(&value, format, dir, &name).map(String::into_bytes)
        }
        OutputFormat::Pdf => pdf(&value, ctx, dir, &name),
    }
}

#[cfg(feature = "pdf")]
fn pdf(
    value: &serde_json::Value,
    ctx: &ReportContext,
    dir: TemplateDir,
    name: &str,
) -> Result<Vec<u8>, ReportError> {
    super::pdf::render(value, ctx, dir, name)
}

#[cfg(not(feature = "pdf"))]
fn pdf(
    _value: &serde_json::Value,
    _ctx: &ReportContext,
    _dir: TemplateDir,
    _name: &str,
) -> Result<Vec<u8>, ReportError> {
    Err(ReportError::PdfDisabled)
}

/// Markdown and inline-HTML special characters escaped, line breaks made spaces.
pub fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '&' | '{'
            | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == "markdown") {
        if value.is_safe() {
            return out
                .write_str(value.as_str().unwrap_or_default())
                .map_err(Error::from);
        }
        let text = if value.is_none() || value.is_undefined() {
            String::new()
        } else {
            value.to_string()
        };
        return out.write_str(&markdown_escape(&text)).map_err(Error::from);
    }
    minijinja::escape_formatter(out, state, value)
}

fn template_error(e: &Error, fallback: &str) -> ReportError {
    let mut detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        detail.push_str(": ");
        detail.push_str(&inner.to_string());
        source = inner.source();
    }
    ReportError::Template {
        file: e.name().unwrap_or(fallback).to_string(),
        line: e.line().unwrap_or(0),
        detail,
    }
}

fn jinja(
    value: &serde_json::Value,
    format: OutputFormat,
    dir: TemplateDir,
    name: &str,
) -> Result<String, ReportError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| match format {
        OutputFormat::Html => AutoEscape::Html,
        _ => AutoEscape::Custom("markdown".into()),
    });
    env.set_formatter(formatter);
    // A misspelt field is an error naming the line, not an empty cell in a filed report.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| template_error(&e, name))?;
    env.set_syntax(syntax);
    env.set_loader(move |name| match dir.read(name) {
        Ok(Some(bytes)) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("template `{name}` is not UTF-8"),
            )
        }),
        Ok(None) => Ok(None),
        Err(why) => Err(Error::new(minijinja::ErrorKind::InvalidOperation, why)),
    });
    env.add_filter("short", |s: String| -> String {
        s.chars().take(12).collect()
    });
    env.add_filter("percent", |f: f64| -> String {
        format!("{:.1}%", f * 100.0)
    });
    env.add_filter("day", |s: String| -> String {
        s.chars().take(10).collect()
    });
    env.add_filter("minute", |s: String| -> String {
        // 2026-11-27T06:00:00.000000Z → 2026-11-27 06:00Z
        let date: String = s.chars().take(10).collect();
        let time: String = s.chars().skip(11).take(5).collect();
        if time.is_empty() {
            date
        } else {
            format!("{date} {time}Z")
        }
    });
    let template = env
        .get_template(name)
        .map_err(|e| template_error(&e, name))?;
    let mut ctx = Value::from(minijinja::value::Serde(value));
    if format == OutputFormat::Html {
        // The charts are SVG drawn (and escaped) by `svg`; only they go out unescaped.
        let charts: BTreeMap<String, Value> = value
            .get("charts")
            .and_then(|c| c.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            Value::from_safe_string(v.as_str().unwrap_or_default().to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        ctx = minijinja::context! { charts => Value::from(charts), ..ctx };
    }
    template.render(ctx).map_err(|e| template_error(&e, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_extensions() {
        assert_eq!(
            OutputFormat::from_path(Path::new("r.HTML")).ok(),
            Some(OutputFormat::Html)
        );
        assert_eq!(
            OutputFormat::from_path(Path::new("r.pdf")).ok(),
            Some(OutputFormat::Pdf)
        );
        assert!(OutputFormat::from_path(Path::new("r.docx")).is_err());
        assert_eq!(
            OutputFormat::of_template("mine.md.j2"),
            Some(OutputFormat::Markdown)
        );
        assert_eq!(
            OutputFormat::of_template("mine.typ"),
            Some(OutputFormat::Pdf)
        );
    }

    #[test]
    fn template_names_stay_in_their_directory() {
        for bad in [
            "../x.html.j2",
            "/etc/passwd",
            "a/b",
            ".hidden",
            "",
            "..",
            "a\\b",
        ] {
            assert!(TemplateDir::Embedded.read(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            TemplateDir::Embedded.read("run.html.j2"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn markdown_escaping_leaves_no_markup() {
        assert_eq!(
            markdown_escape("[x](javascript:1) <b>\n# h|*_`"),
            "\\[x\\](javascript:1) \\<b\\> \\# h\\|\\*\\_\\`"
        );
    }
}
