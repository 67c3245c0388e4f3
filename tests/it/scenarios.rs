//! The fast tier of verdict tests: each `tests/scenarios/*.yaml` is a world (names, paths,
//! handshakes, databases, middleboxes) played through the real `check` pipeline by in-process
//! fakes (`common::scenario`), and the verdicts and reasons it must give. They run in
//! milliseconds, without root or servers; the lab tests they mirror are the second tier.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::common::scenario::{self, Expect, Scenario};

/// Every reason of `v` (and of its addresses), one per line.
fn reasons(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// What `doc` gets wrong against `expect`, one line each.
fn mismatches(doc: &Value, expect: &Expect) -> Vec<String> {
    let mut wrong = Vec::new();
    if text(&doc["verdict"]) != expect.verdict {
        wrong.push(format!(
            "run verdict is {}, expected {}",
            doc["verdict"], expect.verdict
        ));
    }
    let endpoints = doc["endpoints"].as_array().cloned().unwrap_or_default();
    for want in &expect.endpoints {
        let Some(got) = endpoints.iter().find(|e| e["host"] == want.host.as_str()) else {
            wrong.push(format!("no endpoint {}", want.host));
            continue;
        };
        let host = &want.host;
        if text(&got["verdict"]) != want.verdict {
            wrong.push(format!(
                "{host}: verdict {}, expected {} (reasons: {:?})",
                got["verdict"],
                want.verdict,
                reasons(got)
            ));
        }
        let said = reasons(got);
        for r in &want.reasons {
            if !said.iter().any(|s| s.contains(r.as_str())) {
                wrong.push(format!(
                    "{host}: no reason contains {r:?}; reasons: {said:?}"
                ));
            }
        }
        let addresses = got["addresses"].as_array().cloned().unwrap_or_default();
        if let Some(ips) = &want.ips {
            let judged: Vec<String> = addresses.iter().map(|a| text(&a["ip"])).collect();
            let wanted: Vec<String> = ips.iter().map(ToString::to_string).collect();
            if judged != wanted {
                wrong.push(format!("{host}: judged {judged:?}, expected {wanted:?}"));
            }
        }
        for want in &want.addresses {
            let ip = want.ip.to_string();
            let Some(a) = addresses.iter().find(|a| a["ip"] == ip.as_str()) else {
                wrong.push(format!("{host}: no address {ip}"));
                continue;
            };
            if text(&a["verdict"]) != want.verdict {
                wrong.push(format!(
                    "{host} {ip}: verdict {}, expected {} (reasons: {:?})",
                    a["verdict"],
                    want.verdict,
                    reasons(a)
                ));
            }
            if let Some(country) = &want.country {
                let expected = country.map_or(Value::Null, |c| Value::String(c.to_string()));
                if a["country"] != expected {
                    wrong.push(format!(
                        "{host} {ip}: country {}, expected {expected}",
                        a["country"]
                    ));
                }
            }
            let said = reasons(a);
            for r in &want.reasons {
                if !said.iter().any(|s| s.contains(r.as_str())) {
                    wrong.push(format!(
                        "{host} {ip}: no reason contains {r:?}; reasons: {said:?}"
                    ));
                }
            }
            for r in &want.not_reasons {
                if let Some(s) = said.iter().find(|s| s.contains(r.as_str())) {
                    wrong.push(format!("{host} {ip}: reason {s:?} should not be there"));
                }
            }
            if let Some(refuted) = &want.refuted {
                let got: Vec<String> = a["evidence"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| !e["refuted"].is_null())
                    .map(|e| text(&e["country"]))
                    .collect();
                let expected: Vec<String> = refuted.iter().map(ToString::to_string).collect();
                if got != expected {
                    wrong.push(format!(
                        "{host} {ip}: refuted claims {got:?}, expected {expected:?}"
                    ));
                }
            }
            if let Some(untrusted) = &want.untrusted {
                let got: Vec<String> = a["rtt"]["samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| !s["untrusted"].is_null())
                    .map(|s| text(&s["method"]))
                    .collect();
                if &got != untrusted {
                    wrong.push(format!(
                        "{host} {ip}: discarded samples {got:?}, expected {untrusted:?}"
                    ));
                }
            }
        }
    }
    for (method, status) in &expect.integrity {
        let got = &doc["integrity"][method]["status"];
        if text(got) != *status {
            wrong.push(format!(
                "integrity.{method} is {got}, expected {status}: {}",
                doc["integrity"][method]
            ));
        }
    }
    let resolvers: Vec<String> = doc["integrity"]["resolvers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| text(&r["status"]))
        .collect();
    if !expect.resolvers.is_empty() && resolvers != expect.resolvers {
        wrong.push(format!(
            "resolver checks {resolvers:?}, expected {:?}: {}",
            expect.resolvers, doc["integrity"]["resolvers"]
        ));
    }
    wrong
}

fn run(path: &Path) -> Result<(), String> {
    let (Scenario { world, expect, .. }, policy) = scenario::load(path)?;
    let doc = scenario::check(&Arc::new(world), &policy)?;
    let doc = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
    let wrong = mismatches(&doc, &expect);
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}:\n  {}\n--- run document ---\n{doc:#}",
        path.display(),
        wrong.join("\n  ")
    ))
}

#[test]
fn the_fast_tier_covers_at_least_fifteen_situations() {
    let files = scenario::files();
    assert!(
        files.len() >= 15,
        "tests/scenarios holds {} scenarios; the fast tier promises at least 15",
        files.len()
    );
}

#[test]
fn every_scenario_gives_its_expected_verdicts_and_reasons() {
    let files = scenario::files();
    assert!(!files.is_empty(), "no scenario in tests/scenarios");
    let failures: Vec<String> = files.iter().filter_map(|f| run(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_scenario_whose_expectations_are_wrong_fails_with_each_mismatch_named() {
    // The harness itself must be able to fail: the transit scenario, expected wrongly.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/transit-through-cn.yaml");
    let (
        Scenario {
            world, mut expect, ..
        },
        policy,
    ) = scenario::load(&path).expect("the transit scenario loads");
    let doc = scenario::check(&Arc::new(world), &policy).expect("it runs");
    let doc = serde_json::to_value(&doc).expect("the document serialises");
    assert!(mismatches(&doc, &expect).is_empty());
    expect.verdict = "compliant".into();
    let address = &mut expect.endpoints[0].addresses[0];
    address.country = Some(Some("US".parse().expect("a country")));
    address.reasons.push("a reason nobody gives".into());
    expect.integrity.insert("tcp".into(), "intercepted".into());
    let wrong = mismatches(&doc, &expect);
    assert_eq!(wrong.len(), 4, "{wrong:#?}");
    assert!(
        wrong[0].contains("run verdict is \"violation\", expected compliant"),
        "{wrong:#?}"
    );
    assert!(
        wrong.iter().any(|w| w.contains("a reason nobody gives")),
        "{wrong:#?}"
    );
}
