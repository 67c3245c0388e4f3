//! What a command-line user expects beyond the commands: shell completions and man pages,
//! generated from the same clap definitions that parse, and accepted by the real tools.

use std::process::Command;

use crate::common::cmd::Residency;

#[test]
fn bash_accepts_the_completion_script_and_completes_subcommands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Residency::new(dir.path())
        .args(["completions", "bash"])
        .output();
    assert!(out.status.success(), "{out:?}");
    let script = dir.path().join("residency.bash");
    std::fs::write(&script, &out.stdout).expect("write script");
    // Load it into a real bash, then ask it what `residency ch<TAB>` completes to.
    let probe = format!(
        "source {}; COMP_WORDS=(residency ch); COMP_CWORD=1; COMP_LINE='residency ch'; \
         COMP_POINT=${{#COMP_LINE}}; _residency residency ch residency; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let bash = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("bash runs (apt-get install bash)");
    let words = String::from_utf8_lossy(&bash.stdout);
    assert!(bash.status.success(), "{bash:?}");
    let words: Vec<&str> = words.lines().collect();
    assert!(words.contains(&"check"), "{words:?}");
    assert!(!words.contains(&"watch"), "{words:?}");
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["zsh", "fish"] {
        let out = Residency::new(dir.path())
            .args(["completions", shell])
            .output();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in [
            "check",
            "watch",
            "history",
            "report",
            "timeline",
            "completions",
            "man",
        ] {
            assert!(script.contains(sub), "{shell} script lacks {sub}");
        }
    }
    let bad = Residency::new(dir.path())
        .args(["completions", "tcsh"])
        .output();
    assert_eq!(bad.status.code(), Some(3), "a usage error: {bad:?}");
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_groff_renders_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("man1");
    let out = Residency::new(dir.path())
        .args(["man", "--dir"])
        .arg(&pages)
        .output();
    assert!(out.status.success(), "{out:?}");
    for page in [
        "residency.1",
        "residency-check.1",
        "residency-history.1",
        "residency-history-verify.1",
    ] {
        let path = pages.join(page);
        assert!(path.exists(), "{page} missing: {out:?}");
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-cbou"])
            .arg(&path)
            .output()
            .expect("groff runs (apt-get install groff-base)");
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(rendered.status.success(), "{page}: {rendered:?}");
        assert!(text.contains("SYNOPSIS"), "{page}:\n{text}");
    }
    let check = std::fs::read_to_string(pages.join("residency-check.1")).expect("check page");
    assert!(check.contains("format"), "the check page lists its options");
}
