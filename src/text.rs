//! Hostile text made visible: one rule for the terminal, logs, JSON and the reports.
//!
//! PTR names, CNAME targets and RDAP/WHOIS fields are written by whoever runs those servers,
//! which may be the vendor under audit. Printed raw, `ESC[1A ESC[2K` erases the line above
//! (the VIOLATION line), U+202E reverses what follows, and zero-width characters hide in a
//! name that looks innocent. Every character that is invisible or changes how the text around
//! it is shown becomes a visible `⟦U+XXXX⟧` (in JSON text, a `\uXXXX` escape, which keeps the
//! data exact). Newlines and tabs stay: they are the layout of our own output.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Is this character invisible, a terminal control, or able to reorder the text around it?
///
/// C0 controls but newline and tab (ESC included), DEL and the C1 controls, the bidirectional
/// formatting characters (ALM, LRM/RLM, LRE..RLO, LRI..PDI), and zero-width and invisible
/// characters (ZWSP..RLM, word joiner and the invisible operators, BOM).
pub fn hidden(c: char) -> bool {
    let u = c as u32;
    (u < 0x20 && c != '\n' && c != '\t')
        || (0x7f..=0x9f).contains(&u)
        || matches!(
            u,
            0x061C
                | 0x180E
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x2069
                | 0xFEFF
        )
}

/// Bytes as lowercase hex, two digits each (hashes, binary NSIDs).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `text` with every [`hidden`] character replaced by `⟦U+XXXX⟧`; borrowed when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    replace_hidden(text, |u| format!("⟦U+{u:04X}⟧"))
}

/// JSON text with every [`hidden`] character written as a `\uXXXX` escape. serde_json already
/// escapes C0 controls; DEL, C1, bidi and zero-width characters it writes raw, and a terminal
/// showing `--format json` would obey them. Outside strings JSON text holds none of these, so
/// the escaped text parses to exactly the same value.
pub fn json_visible(json: &str) -> Cow<'_, str> {
    replace_hidden(json, |u| format!("\\u{u:04x}"))
}

/// `text` with each hidden character replaced by what `shown` makes of its code point (all of
/// them are in the Basic Multilingual Plane, so four hex digits always suffice).
fn replace_hidden(text: &str, shown: impl Fn(u32) -> String) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&shown(c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Set once a write to stdout finds it closed: the reader (`| head -1`) wants no more.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout was found closed. The binary then ends quietly with status 0, as `ripgrep`
/// and other filters do, and a `watch` stops after the run it is in.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `parts` to stdout unless it was found closed. A closed stdout is not an error worth
/// a panic or a message; any other write error is not either, since there is nowhere to say it.
fn write_stdout(parts: &[&[u8]]) {
    if stdout_closed() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = parts
        .iter()
        .try_for_each(|part| stdout.write_all(part))
        .and_then(|()| stdout.flush());
    if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes `text` to stdout made [`visible`].
pub fn print_out(text: &str) {
    write_stdout(&[visible(text).as_bytes()]);
}

/// Writes JSON text (and a newline) to stdout with [`json_visible`].
pub fn print_json(json: &str) {
    write_stdout(&[json_visible(json).as_bytes(), b"\n"]);
}

/// Writes `text` to stderr made [`visible`].
pub fn print_err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(visible(text).as_bytes());
}

/// A log sink for `tracing_subscriber::fmt().with_writer(...)`: each event is collected whole
/// and written to stderr made [`visible`], so a hostile field value cannot act on the
/// terminal. Used with `with_ansi(false)`, since the sink would make the logger's own colours
/// visible too.
#[derive(Debug, Default)]
pub struct VisibleStderr(Vec<u8>);

impl Write for VisibleStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.0.is_empty() {
            print_err(&String::from_utf8_lossy(&self.0));
            self.0.clear();
        }
        Ok(())
    }
}

impl Drop for VisibleStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `fmt().with_writer(text::visible_stderr)`.
pub fn visible_stderr() -> VisibleStderr {
    VisibleStderr::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_bidi_and_zero_width_characters_but_not_layout() {
        let hostile = "ok\x1b[1A\x1b[2K\u{202E}gnp.exe\u{200B}\u{9b}\x7f\r";
        assert_eq!(
            visible(hostile),
            "ok⟦U+001B⟧[1A⟦U+001B⟧[2K⟦U+202E⟧gnp.exe⟦U+200B⟧⟦U+009B⟧⟦U+007F⟧⟦U+000D⟧"
        );
        assert_eq!(visible("tab\tnew\nline é 中"), "tab\tnew\nline é 中");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_keep_the_value() {
        let value = serde_json::json!({ "holder": "Vendor\u{202E}\u{9b}\x1b[31m" });
        let text = serde_json::to_string(&value).expect("serialises");
        let safe = json_visible(&text);
        assert!(!safe.chars().any(hidden), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }
}
