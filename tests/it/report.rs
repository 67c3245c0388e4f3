//! `residency report` end to end: histories written through `History::append` with run
//! documents parsed as `check::RunDocument`, reports rendered by the real binary, then looked at
//! the way a person would: the HTML in headless Chromium (screenshot, DOM, console), the PDF
//! through poppler (`pdftoppm` pages, `pdftotext` text, `pdfinfo` metadata), the Markdown
//! against a snapshot. Hostile measured text (markup, typst code, backslashes, direction
//! overrides, a 10 KB name) must come out as text everywhere.
//!
//! Needs `chromium` and `poppler-utils` (in the README's test command); a missing tool fails the
//! test with the package to install, never a silent pass.
//!
//! The snapshot `tests/fixtures/report-run.md` is rewritten by running with `RESIDENCY_BLESS=1`.

use crate::common;
use crate::common::cmd::Residency;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Duration, Utc};
use common::rundoc::{Addr, Endpoint, append, document};
use residency::history::{History, RunId};
use residency::model::Verdict;
use residency::report::context::{self, Options, Selection};
use residency::report::render::{self, OutputFormat};

const POLICY: &str = "lab-vendor";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T06:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .expect("valid literal")
}

/// Hostile text as a vendor's DNS or registry could serve it.
const SCRIPT: &str =
    "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">";
const TYPST: &str = "x\"] #import \"/etc/passwd\" #read(\"/etc/passwd\") \\ ] ) } $ // *bold*";
const RLO: &str = "evil\u{202E}moc.elgoog";

fn long_name() -> String {
    let label = "a".repeat(63);
    let mut name = String::new();
    while name.len() < 10_240 {
        name.push_str(&label);
        name.push('.');
    }
    name.push_str("example");
    name
}

struct Lab {
    dir: tempfile::TempDir,
    runs: Vec<RunId>,
    /// The history: an SQLite file in `dir`, or a `postgres://` URL.
    db: PathBuf,
    _postgres: Option<common::pg::Postgres>,
}

impl Lab {
    /// Three runs six hours apart: compliant, then api moves to CN (violation), then a
    /// hostile endpoint appears; every address of the last run carries hostile text.
    fn new(hostile: bool) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("history.sqlite");
        Lab::fill(dir, db, None, hostile)
    }

    /// The same runs in a fresh PostgreSQL database.
    fn with_postgres() -> Lab {
        let server = common::pg::Postgres::start().unwrap_or_else(|e| panic!("{e}"));
        let url = server
            .create_database("history")
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        Lab::fill(dir, PathBuf::from(url), Some(server), false)
    }

    fn fill(
        dir: tempfile::TempDir,
        db: PathBuf,
        postgres: Option<common::pg::Postgres>,
        hostile: bool,
    ) -> Lab {
        let mut history =
            History::open(&db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
        let web = || {
            Endpoint::new(
                "www.lab.test",
                vec![Addr::new("203.0.113.5", Some("US"), Verdict::Compliant)],
            )
        };
        let api_in = Endpoint::new(
            "api.lab.test",
            vec![Addr::new("192.0.2.10", Some("IN"), Verdict::Compliant)],
        );
        let api_cn = Endpoint::new(
            "api.lab.test",
            vec![Addr::new("198.51.100.7", Some("CN"), Verdict::Violation)],
        );
        let mut runs = Vec::new();
        runs.push(append(&mut history, &document(POLICY, t0(), &[api_in, web()])).id);
        runs.push(
            append(
                &mut history,
                &document(POLICY, t0() + Duration::hours(6), &[api_cn.clone(), web()]),
            )
            .id,
        );
        let mut last = vec![api_cn, web()];
        if hostile {
            let mut addr = Addr::new("192.0.2.66", None, Verdict::Inconclusive);
            addr.names = vec![SCRIPT.to_string(), long_name(), RLO.to_string()];
            addr.holder = Some(format!("{TYPST} C:\\Windows\\ {SCRIPT}"));
            let mut e = Endpoint::new("cdn.lab.test", vec![addr]);
            e.cnames = vec![
                TYPST.to_string(),
                "</script><script>alert(1)</script>".to_string(),
            ];
            last.push(e);
        }
        runs.push(
            append(
                &mut history,
                &document(POLICY, t0() + Duration::hours(12), &last),
            )
            .id,
        );
        Lab {
            dir,
            runs,
            db,
            _postgres: postgres,
        }
    }

    fn db(&self) -> PathBuf {
        self.db.clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn residency(&self, args: &[&str]) -> Output {
        Residency::new(self.dir.path())
            .db(self.db())
            .args(args)
            .output()
    }

    /// `residency report POLICY ARGS... --out FILE`, which must succeed.
    fn report(&self, file: &str, args: &[&str]) -> PathBuf {
        let out = self.path(file);
        let mut all = vec!["report", POLICY, "--out", out.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let o = self.residency(&all);
        assert_eq!(o.status.code(), Some(0), "report {file}: {}", text(&o));
        // To look at what the tests made: RESIDENCY_REPORT_KEEP=DIR keeps a copy of each report.
        if let Some(keep) = std::env::var_os("RESIDENCY_REPORT_KEEP") {
            let _ = std::fs::copy(&out, Path::new(&keep).join(file));
        }
        out
    }
}

/// Writes `body` to the template file `template`, renders with it to `out` and checks the
/// report is refused (exit 3) with `expect` in the message and no file left behind.
fn assert_template_refused(lab: &Lab, template: &Path, body: &str, out: &str, expect: &str) {
    std::fs::write(template, body).expect("write");
    let out = lab.path(out);
    let o = lab.residency(&[
        "report",
        POLICY,
        "--out",
        out.to_str().expect("utf-8"),
        "--template",
        template.to_str().expect("utf-8"),
    ]);
    let name = template.display();
    assert_eq!(o.status.code(), Some(3), "{name}: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(expect),
        "{name}: {}",
        text(&o)
    );
    assert!(
        !out.exists(),
        "{name}: a failed report must not leave a file"
    );
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "`{name}` is needed: apt-get install {package}");
    Command::new(name)
}

/// Headless Chromium on a local file: the DOM after scripts ran, and the console log.
fn chromium(args: &[&str], page: &Path) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", page.display());
    tool("chromium", "chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(&url)
        .output()
        .expect("run chromium")
}

fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("SyntaxError"))
        .collect()
}

#[test]
fn html_report_renders_in_chromium_with_charts_map_and_no_console_errors() {
    let lab = Lab::new(false);
    let html = lab.report("run.html", &[]);
    let shot = lab.path("run.png");
    let o = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400",
        ],
        &html,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(console_errors(&stderr).is_empty(), "console: {stderr}");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {stderr}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    let dom = chromium(&["--dump-dom"], &html);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<title>Lab vendor used from India — run"),
        "{}",
        &dom[..dom.len().min(400)]
    );
    // Three charts over time and the map, drawn as inline SVG.
    assert_eq!(dom.matches("<svg").count(), 4, "charts");
    assert!(dom.contains("aria-label=\"where the addresses were located\""));
    assert!(
        dom.contains("<circle"),
        "a located address is marked on the map"
    );
    for verdict in ["violation", "compliant"] {
        assert!(
            dom.contains(&format!("class=\"verdict {verdict}\"")),
            "{verdict}"
        );
    }
    assert!(dom.contains("198.51.100.7") && dom.contains("CN China"));
}

#[test]
fn hostile_measured_text_is_inert_in_html() {
    let lab = Lab::new(true);
    let html = lab.report("hostile.html", &[]);
    let page = std::fs::read_to_string(&html).expect("read report");
    assert!(
        !page.contains("<script>document.title"),
        "raw markup in the report"
    );
    assert!(!page.contains("<img src=x"), "raw markup in the report");
    assert!(
        page.contains("&lt;script&gt;document.title="),
        "escaped text missing"
    );
    assert!(
        page.contains("⟦U+202E⟧"),
        "the direction override must be visible"
    );
    assert!(!page.contains('\u{202E}'));
    assert!(page.contains(&long_name()), "the 10 KB name is shown whole");
    // Exactly one script element: the provenance JSON, which no hostile value can close.
    assert_eq!(page.matches("<script").count(), 1, "script elements");

    let o = chromium(&["--dump-dom"], &html);
    let dom = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(console_errors(&stderr).is_empty(), "console: {stderr}");
    assert!(!dom.contains("pwned</title>"), "a hostile value ran");
    assert!(!dom.contains("<img"), "a hostile value became an element");
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "script elements in the DOM"
    );
    assert!(
        dom.contains("&lt;/script&gt;&lt;script&gt;alert(1)"),
        "CNAME shown as text"
    );

    let shot = lab.path("hostile.png");
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
        ],
        &html,
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 20_000)
            .unwrap_or(false)
    );
}

#[test]
fn hostile_measured_text_is_inert_in_markdown() {
    let lab = Lab::new(true);
    let md = std::fs::read_to_string(lab.report("hostile.md", &[])).expect("read");
    assert!(!md.contains("<script>"), "raw tag in Markdown");
    assert!(
        md.contains("\\<script\\>document.title"),
        "escaped text missing"
    );
    assert!(md.contains("⟦U+202E⟧"));
    assert!(
        md.contains("C:\\\\Windows\\\\"),
        "backslashes are escaped, not eaten"
    );
}

#[cfg(feature = "pdf")]
fn pdf_text(pdf: &Path) -> String {
    let o = tool("pdftotext", "poppler-utils")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(o.status.success(), "pdftotext: {}", text(&o));
    // Break opportunities (U+200B) and line breaks are layout, not content.
    String::from_utf8_lossy(&o.stdout).replace('\u{200B}', "")
}

#[cfg(feature = "pdf")]
fn pdf_pages(pdf: &Path, dir: &Path) -> usize {
    let prefix = dir.join("page");
    let o = tool("pdftoppm", "poppler-utils")
        .args(["-r", "50", "-png"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .expect("pdftoppm");
    assert!(o.status.success(), "pdftoppm: {}", text(&o));
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("page"))
        .filter(|e| {
            std::fs::metadata(e.path())
                .map(|m| m.len() > 1000)
                .unwrap_or(false)
        })
        .count()
}

#[cfg(feature = "pdf")]
#[test]
fn pdf_reports_have_pages_extractable_text_verdicts_and_provenance() {
    let lab = Lab::new(false);
    for (file, args, kind) in [
        ("run.pdf", vec![], "run"),
        (
            "period.pdf",
            vec!["--since", "2026-03-01", "--until", "2026-03-01"],
            "period",
        ),
    ] {
        let pdf = lab.report(file, &args);
        let pages_dir = tempfile::tempdir().expect("dir");
        let pages = pdf_pages(&pdf, pages_dir.path());
        assert!(pages >= 2, "{file}: {pages} pages");
        let words = pdf_text(&pdf);
        for needle in [
            "violation",
            "compliant",
            "api.lab.test",
            "www.lab.test",
            "Provenance",
            "China",
        ] {
            assert!(
                words.contains(needle),
                "{file} ({kind}) lacks {needle}:\n{words}"
            );
        }
        for id in &lab.runs {
            assert!(
                words.contains(&format!("\n{id}\n")) || words.contains(&format!(" {id} ")),
                "{file}: run {id}"
            );
        }
        let info = tool("pdfinfo", "poppler-utils")
            .arg(&pdf)
            .output()
            .expect("pdfinfo");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("residency-provenance:1;policy=lab-vendor;"),
            "{info}"
        );
        let o = lab.residency(&[
            "history",
            "verify",
            "--report",
            pdf.to_str().expect("utf-8"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("report provenance: OK"));
    }
}

#[cfg(feature = "pdf")]
#[test]
fn hostile_measured_text_is_inert_in_pdf() {
    let lab = Lab::new(true);
    let pdf = lab.report("hostile.pdf", &[]);
    let words = pdf_text(&pdf);
    let flat: String = words.chars().filter(|c| !c.is_whitespace()).collect();
    let flat_of = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert!(
        flat.contains(&flat_of("#import \"/etc/passwd\" #read(\"/etc/passwd\")")),
        "typst code shown as text:\n{words}"
    );
    assert!(
        flat.contains(&flat_of("<script>document.title='pwned'</script>")),
        "markup shown as text"
    );
    assert!(flat.contains(&flat_of("C:\\Windows\\")), "backslashes kept");
    assert!(
        flat.contains("evil⟦U+202E⟧moc.elgoog"),
        "direction override made visible"
    );
    assert!(flat.contains(&"a".repeat(63)), "the 10 KB name is shown");
    assert!(
        flat.contains("*bold*"),
        "markup characters are not interpreted"
    );
    let pages_dir = tempfile::tempdir().expect("dir");
    assert!(pdf_pages(&pdf, pages_dir.path()) >= 2);
}

#[test]
fn markdown_matches_the_snapshot() {
    let lab = Lab::new(false);
    let history = History::open(&lab.db()).expect("open");
    let ctx = context::build(
        &history,
        &lab.db(),
        &common::pid(POLICY),
        &Selection::Run(None),
        &Options {
            generated_at: t0() + Duration::days(1),
            verify_chain: true,
            full_verify: true,
        },
    )
    .expect("context");
    let md = render::render(&ctx, OutputFormat::Markdown, None).expect("render");
    let md = String::from_utf8(md)
        .expect("utf-8")
        .replace(
            &lab.db().display().to_string().replace('_', "\\_"),
            "HISTORY.sqlite",
        )
        .replace(&lab.db().display().to_string(), "HISTORY.sqlite");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-run.md");
    if std::env::var_os("RESIDENCY_BLESS").is_some() {
        std::fs::write(&fixture, &md).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&fixture)
        .expect("tests/fixtures/report-run.md (create it with RESIDENCY_BLESS=1)");
    assert_eq!(
        md, expected,
        "Markdown differs from the snapshot; if intended, rerun with RESIDENCY_BLESS=1 and review the diff"
    );
}

#[test]
fn user_templates_render_and_stay_in_their_sandbox() {
    let lab = Lab::new(false);
    let tpl = lab.path("tpl");
    std::fs::create_dir(&tpl).expect("mkdir");
    std::fs::write(
        tpl.join("letter.html.j2"),
        "<h1>ACME letterhead</h1>{% block body %}{% endblock %}",
    )
    .expect("write");
    std::fs::write(
        tpl.join("mine.html.j2"),
        "{% extends \"letter.html.j2\" %}{% block body %}<p>{{ policy.id }}: {{ run.verdict }} ({{ runs|length }} runs, {{ claims.claims[0].status }})</p>{% endblock %}",
    )
    .expect("write");
    let out = lab.report(
        "mine.html",
        &[
            "--template",
            tpl.join("mine.html.j2").to_str().expect("utf-8"),
        ],
    );
    let page = std::fs::read_to_string(out).expect("read");
    assert_eq!(
        page,
        "<h1>ACME letterhead</h1><p>lab-vendor: violation (1 runs, broken)</p>"
    );

    // Reaching out of the directory, a misspelt field and the wrong kind of template are
    // errors that name the file and line, with nothing written.
    std::fs::write(lab.path("secret.txt"), "secret").expect("write");
    for (name, body, expect) in [
        (
            "escape.html.j2",
            "line one\n{% include \"../secret.txt\" %}",
            "escape.html.j2:2:",
        ),
        (
            "abs.html.j2",
            "{% include \"/etc/passwd\" %}",
            "not a plain file name",
        ),
        (
            "typo.html.j2",
            "ok\n\n{{ run.verdikt.x }}",
            "typo.html.j2:3:",
        ),
    ] {
        assert_template_refused(&lab, &tpl.join(name), body, "bad.html", expect);
    }
    let o = lab.residency(&[
        "report",
        POLICY,
        "--out",
        "x.pdf",
        "--template",
        tpl.join("mine.html.j2").to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("use a typst `.typ` template"),
        "{}",
        text(&o)
    );
    let o = lab.residency(&["report", POLICY, "--out", "x.docx"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("FILE.html, FILE.pdf or FILE.md"));
}

#[cfg(feature = "pdf")]
#[test]
fn user_typst_templates_render_and_stay_in_their_sandbox() {
    let lab = Lab::new(false);
    let tpl = lab.path("tpl");
    std::fs::create_dir(&tpl).expect("mkdir");
    std::fs::write(
        tpl.join("mine.typ"),
        "#let ctx = json(\"/residency/context.json\")\n#set document(description: ctx.provenance.marker)\n#set text(font: \"DejaVu Sans\")\n= ACME letterhead\nPolicy #ctx.policy.id: #ctx.run.verdict\n",
    )
    .expect("write");
    let pdf = lab.report(
        "mine.pdf",
        &["--template", tpl.join("mine.typ").to_str().expect("utf-8")],
    );
    let words = pdf_text(&pdf);
    assert!(
        words.contains("ACME letterhead") && words.contains("Policy lab-vendor: violation"),
        "{words}"
    );
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        pdf.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    std::fs::write(lab.path("secret.txt"), "secret").expect("write");
    for (name, body, expect) in [
        ("read.typ", "ok\n#read(\"/etc/passwd\")", "read.typ:2:"),
        ("up.typ", "#read(\"../secret.txt\")", "up.typ:1:"),
        (
            "pkg.typ",
            "#import \"@preview/cetz:0.3.0\": *",
            "packages are not available",
        ),
    ] {
        assert_template_refused(&lab, &tpl.join(name), body, "bad.pdf", expect);
    }
}

#[cfg(not(feature = "pdf"))]
#[test]
fn without_the_pdf_feature_a_pdf_is_refused_with_the_fix() {
    let lab = Lab::new(false);
    let o = lab.residency(&["report", POLICY, "--out", "x.pdf"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("feature `pdf`"),
        "{}",
        text(&o)
    );
}

#[test]
fn verify_report_catches_edits_and_a_rewritten_history() {
    let lab = Lab::new(false);
    let html = lab.report("period.html", &["--since", "2026-03-01"]);
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        html.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 run(s) of lab-vendor"),
        "{}",
        text(&o)
    );

    // A run's hash changed in every place the report states it: the runs no longer match.
    let page = std::fs::read_to_string(&html).expect("read");
    let hash = History::open(&lab.db())
        .expect("open")
        .get(lab.runs[1])
        .expect("get")
        .expect("run")
        .hash;
    let forged = lab.path("forged.html");
    std::fs::write(&forged, page.replace(&hash, &"f".repeat(64))).expect("write");
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        forged.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("run {}: MISMATCH", lab.runs[1])));

    // Edited in one place only: two different markers, refused.
    let once = lab.path("once.html");
    std::fs::write(&once, page.replacen(&hash, &"e".repeat(64), 1)).expect("write");
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        once.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different provenance markers"));

    // Checked against another history that lacks these runs.
    let other = lab.path("other.sqlite");
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        html.to_str().expect("utf-8"),
        "--db",
        other.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT IN THE HISTORY"));

    let plain = lab.path("plain.html");
    std::fs::write(&plain, "<p>hello</p>").expect("write");
    let o = lab.residency(&[
        "history",
        "verify",
        "--report",
        plain.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no residency provenance marker"));
}

#[test]
fn reports_over_a_postgresql_history_render_and_verify() {
    let lab = Lab::with_postgres();
    let mut files = vec!["pg.html", "pg.md"];
    if cfg!(feature = "pdf") {
        files.push("pg.pdf");
    }
    for file in files {
        let out = lab.report(file, &["--since", "2026-03-01"]);
        let o = lab.residency(&[
            "history",
            "verify",
            "--report",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("3 run(s) of lab-vendor"),
            "{file}: {}",
            text(&o)
        );
    }
}

#[test]
fn bad_selections_are_clear_errors() {
    let lab = Lab::new(false);
    for (args, expect) in [
        (
            vec!["report", "nobody", "--out", "x.html"],
            "no runs of policy `nobody`",
        ),
        (
            vec!["report", POLICY, "--since", "2030-01-01", "--out", "x.html"],
            "no run started in the period",
        ),
        (
            vec!["report", POLICY, "--run", "999", "--out", "x.html"],
            "no run with id 999",
        ),
        (
            vec!["report", POLICY, "--run", "soon", "--out", "x.html"],
            "neither a run id nor a date",
        ),
    ] {
        let o = lab.residency(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expect),
            "{args:?}: {}",
            text(&o)
        );
    }
    // A run picked by id reports that run, with the diff from the one before it.
    let html = lab.report("second.html", &["--run", &lab.runs[1].to_string()]);
    let page = std::fs::read_to_string(html).expect("read");
    assert!(page.contains(&format!("run {} (seq 2)", lab.runs[1])));
    assert!(page.contains("new address 198.51.100.7 (CN)"), "diff shown");
    assert!(
        page.contains("compliant → violation"),
        "verdict change shown"
    );
}

/// After a verification finds the chain intact, its head is a checkpoint in the state
/// directory: the next report rehashes only the runs from there, says so, and `--full-verify`
/// rehashes all. A checkpoint the history no longer matches makes the report say the chain is
/// broken, never intact.
#[test]
fn a_report_rehashes_only_the_runs_since_its_verified_checkpoint() {
    let lab = Lab::new(false);
    let read = |p: PathBuf| std::fs::read_to_string(p).expect("report");
    let first = read(lab.report("first.md", &[]));
    assert!(
        first.contains("Every run of the chain was rehashed."),
        "{first}"
    );
    let second = read(lab.report("second.md", &[]));
    assert!(
        second.contains(
            "The runs from seq 3 on were rehashed; those before were verified in full earlier"
        ),
        "{second}"
    );
    assert!(second.contains("(chain verified intact)"), "{second}");
    let full = read(lab.report("full.md", &["--full-verify"]));
    assert!(
        full.contains("Every run of the chain was rehashed."),
        "{full}"
    );

    // The checkpoint names a hash the run at its seq does not have.
    let dir = lab.path("state/residency/checkpoints");
    let file = std::fs::read_dir(&dir)
        .expect("a checkpoint file")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("one file");
    let text = std::fs::read_to_string(&file).expect("read");
    let head = History::open(&lab.db())
        .expect("open")
        .get(lab.runs[2])
        .expect("get")
        .expect("run")
        .hash;
    assert!(text.contains(&head), "{text}");
    std::fs::write(&file, text.replace(&head, &"0".repeat(64))).expect("write");
    let html = read(lab.report("stale.html", &[]));
    assert!(
        html.contains("found BROKEN"),
        "a stale checkpoint is not intact"
    );
    // A full verification finds the history itself intact, and rewrites the checkpoint.
    let again = read(lab.report("again.html", &["--full-verify"]));
    assert!(again.contains("recomputed and found intact"));
    assert!(
        std::fs::read_to_string(&file)
            .expect("read")
            .contains(&head)
    );
}
