//! The house rules a reader of `src/` relies on: `lib.rs` lists the stages in pipeline order and
//! each stage imports only the stages before it (so the pipeline reads one way, without cycles),
//! and no source file grows past 900 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable source directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Which top-level modules each top-level module of `src/` names as `crate::NAME`, outside
/// comments and unit tests.
fn stage_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("a module name");
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = graph.entry(top.clone()).or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if its imports lead back to it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty path");
        for next in graph.get(last).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_stage_folders_import_each_other_without_cycles() {
    let graph = stage_imports();
    assert!(
        graph.contains_key("check") && graph.contains_key("history"),
        "{graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles between stages: {cycles:#?}"
    );
    // The check itself can see one.
    let mut with_cycle = graph.clone();
    with_cycle
        .entry("model".into())
        .or_default()
        .insert("cli".into());
    assert!(cycle_from(&with_cycle, "model").is_some());
}

/// The stage modules in the order `lib.rs` declares them, after the shared ones.
fn declared_stages() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("readable lib.rs");
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .filter(|m| !SHARED.contains(m))
        .map(str::to_string)
        .collect()
}

/// The imports of a later stage by an earlier one, each with its reason; anything else that
/// points downstream fails the test below.
const FORWARD: [(&str, &str, &str); 3] = [
    (
        "policy",
        "measure",
        "a policy section builds the settings of the stage that uses them (ResolveSettings, \
         TraceSettings) and checks the limits that stage defines, so they are written once; \
         and a draft policy is written from what discovery found",
    ),
    (
        "policy",
        "sources",
        "the declared vantage is physics' Vantage, and a WHOIS server defaults to its port",
    ),
    (
        "run",
        "history",
        "a run ends by being recorded: `run` writes through the history's API",
    ),
];

/// Modules every stage may use.
const SHARED: [&str; 3] = ["model", "text", "time"];

#[test]
fn lib_lists_the_stages_in_pipeline_order_and_each_imports_earlier_ones_or_an_allowed_later_one() {
    let stages = declared_stages();
    assert_eq!(
        stages,
        [
            "policy", "measure", "sources", "judge", "record", "check", "run", "history",
            "combine", "compare", "report", "cli"
        ]
    );
    let graph = stage_imports();
    let mut backwards = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        for dep in graph.get(stage).into_iter().flatten() {
            let earlier = stages[..i].contains(dep) || SHARED.contains(&dep.as_str());
            let allowed = FORWARD.iter().any(|(a, b, _)| a == stage && b == dep);
            if !earlier && !allowed {
                backwards.push(format!("{stage} imports crate::{dep}"));
            }
        }
    }
    // Every allowance is still needed, or it goes.
    for (a, b, why) in FORWARD {
        assert!(
            graph.get(a).is_some_and(|deps| deps.contains(b)),
            "{a} no longer imports {b} ({why}): drop the allowance"
        );
    }
    assert!(
        backwards.is_empty(),
        "imports against the pipeline: {backwards:#?}"
    );
}

#[test]
fn no_source_file_is_over_900_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        rust_files(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > 900).then(|| format!("{}: {lines} lines", f.display()))
        })
        .collect();
    assert!(files.len() > 50, "found only {} files", files.len());
    assert!(long.is_empty(), "split these: {long:#?}");
}
