//! The README's promises that a test can hold it to: CI runs exactly its test command, and the
//! commands it shows exist.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// The lines of the README's first shell block that are commands, not comments.
fn readme_commands() -> Vec<String> {
    let readme = read("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README opens with a ```sh block");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_opens_with_the_two_commands_and_ci_runs_the_test_one() {
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(
        commands[0],
        "cargo run --release -- check policies/example.yaml"
    );
    assert!(
        commands[1].ends_with("cargo test --locked -- --include-ignored"),
        "{}",
        commands[1]
    );
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == commands[1]),
        ".ci/run must run exactly the README's test command: {}",
        commands[1]
    );
}
