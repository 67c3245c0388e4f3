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
            if let Some(anycast) = want.anycast
                && a["anycast"] != anycast
            {
                wrong.push(format!(
                    "{host} {ip}: anycast {}, expected {anycast}",
                    a["anycast"]
                ));
            }
            if let Some(sites) = &want.sites {
                let got: Vec<Value> = a["sites"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s["country"].clone())
                    .collect();
                let expected: Vec<Value> = sites
                    .iter()
                    .map(|c| c.map_or(Value::Null, |c| Value::String(c.to_string())))
                    .collect();
                if got != expected {
                    wrong.push(format!("{host} {ip}: sites {got:?}, expected {expected:?}"));
                }
            }
            if let Some(common) = &want.intersection {
                let expected: Vec<String> = common.iter().map(ToString::to_string).collect();
                let got: Vec<String> = a["intersection"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                if got != expected {
                    wrong.push(format!(
                        "{host} {ip}: disks overlap in {got:?}, expected {expected:?}"
                    ));
                }
            }
            let decided: Vec<String> = a["decided_by"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            for d in &want.decided_by {
                if !decided.iter().any(|s| s.contains(d.as_str())) {
                    wrong.push(format!("{host} {ip}: decided_by has no {d:?}: {decided:?}"));
                }
            }
            for (label, sites) in &want.catchments {
                let got: Option<Vec<u64>> = a["measured_from"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["vantage"] == label.as_str())
                    .map(|m| {
                        m["sites"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|n| n.as_u64().map(|n| n + 1))
                            .collect()
                    });
                let expected: Vec<u64> = sites.iter().map(|&n| n as u64).collect();
                if got.as_ref() != Some(&expected) {
                    wrong.push(format!(
                        "{host} {ip}: from {label} reaches sites {got:?}, expected {expected:?}"
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

/// Each vantage's run in its own world, checked against what it must conclude alone, then
/// combined as `residency combine` does.
fn combined(
    vantages: Vec<scenario::VantageScenario>,
    policy: &residency::policy::Policy,
    wrong: &mut Vec<String>,
) -> Result<residency::record::RunDocument, String> {
    use residency::combine::{VantageRun, combine};
    use residency::history::{RunId, Seq};
    let mut runs = Vec::new();
    for (n, v) in vantages.into_iter().enumerate() {
        let mut policy = policy.clone();
        policy.vantage = Some(v.vantage);
        let doc = scenario::check_from(&Arc::new(v.world), &policy, &v.label)?;
        if doc.verdict.as_str() != v.alone {
            wrong.push(format!(
                "from {} alone: verdict {}, expected {} (reasons: {:?})",
                v.label,
                doc.verdict,
                v.alone,
                doc.endpoints
                    .iter()
                    .flat_map(|e| &e.addresses)
                    .flat_map(|a| &a.reasons)
                    .collect::<Vec<_>>()
            ));
        }
        let n = i64::try_from(n).map_err(|e| e.to_string())? + 1;
        runs.push(VantageRun {
            run_id: RunId(n),
            seq: Seq(n),
            hash: format!("scenario-run-{n}"),
            started_at: doc.started_at,
            document: doc,
        });
    }
    let now = chrono::Utc::now();
    let window = residency::record::Window {
        duration: "1h".into(),
        seconds: 3600,
        since: now - chrono::Duration::hours(1),
        until: now,
    };
    combine(&runs, window).ok_or_else(|| "nothing to combine".to_string())
}

fn run(path: &Path) -> Result<(), String> {
    let (
        Scenario {
            world,
            vantages,
            expect,
            ..
        },
        policy,
    ) = scenario::load(path)?;
    let mut wrong = Vec::new();
    let doc = if vantages.is_empty() {
        scenario::check(&Arc::new(world), &policy)?
    } else {
        combined(vantages, &policy, &mut wrong)?
    };
    let doc = serde_json::to_value(&doc).map_err(|e| e.to_string())?;
    wrong.extend(mismatches(&doc, &expect));
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

mod unmeasured {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, SocketAddr};

    use proptest::prelude::*;
    use residency::measure::resolve::{Outcome, RecordType};

    use super::*;
    use crate::common::scenario::{
        Database, DnsRecord, GeoRecord, HandshakeRecord, HopRecord, TraceRecord, World,
    };

    const COUNTRIES: [&str; 4] = ["IN", "SG", "CN", "US"];

    /// A world with one server behind a router, seen through two resolvers, in which any part
    /// of the measurement may be missing.
    #[allow(clippy::too_many_arguments)]
    fn world(
        second_resolver: Outcome,
        claimed: Option<usize>,
        traced: bool,
        reached: bool,
        handshake: Option<f64>,
        unprivileged: bool,
    ) -> World {
        let server: IpAddr = "203.0.113.10".parse().expect("address");
        let resolver_b: SocketAddr = "192.0.2.54:53".parse().expect("address");
        let mut records = BTreeMap::new();
        if let Some(c) = claimed {
            records.insert(
                "203.0.113.0/24".parse().expect("prefix"),
                GeoRecord::Country(COUNTRIES[c].parse().expect("country")),
            );
        }
        let mut traces = BTreeMap::new();
        if traced {
            let mut hops = vec![HopRecord {
                addr: Some("192.0.2.1".parse().expect("address")),
                rtt_ms: Some(0.3),
            }];
            hops.push(HopRecord {
                addr: reached.then_some(server),
                rtt_ms: Some(45.0),
            });
            traces.insert(server, TraceRecord { hops, reached });
        }
        World {
            dns: vec![DnsRecord {
                host: "api.vendor.test".into(),
                record_type: RecordType::A,
                subnet: None,
                outcome: None,
                cname: Vec::new(),
                addresses: vec![server],
                rtt_ms: None,
            }],
            silent: if second_resolver == Outcome::Timeout {
                vec![resolver_b]
            } else {
                Vec::new()
            },
            traces,
            handshakes: handshake
                .map(|rtt_ms| {
                    BTreeMap::from([(
                        server,
                        HandshakeRecord {
                            rtt_ms,
                            reply_ttl: None,
                        },
                    )])
                })
                .unwrap_or_default(),
            unprivileged,
            databases: vec![Database {
                name: "lab.mmdb".into(),
                records,
            }],
            ..World::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// With probing on, an address nothing demonstrably answered from is never compliant,
        /// and neither is an endpoint one of whose queries got no answer: whatever the
        /// databases say and whichever countries are allowed.
        #[test]
        fn unmeasured_never_yields_compliant(
            timeout in any::<bool>(),
            claimed in prop::option::of(0usize..COUNTRIES.len()),
            allowed in prop::sample::subsequence(COUNTRIES.to_vec(), 1..=COUNTRIES.len()),
            traced in any::<bool>(),
            reached in any::<bool>(),
            handshake in prop::option::of(2.0f64..120.0),
            unprivileged in any::<bool>(),
        ) {
            let second = if timeout { Outcome::Timeout } else { Outcome::Answer };
            let world = world(second, claimed, traced, reached, handshake, unprivileged);
            let text = format!(
                "id: unmeasured\nresolvers: [\"192.0.2.53:53\", \"192.0.2.54:53\"]\nrepeat: 1\n\
                 allow: [{}]\nvantage: {{ country: IN, lat: 21.15, lon: 79.09 }}\n\
                 registry: {{ enabled: false }}\nendpoints:\n  - host: api.vendor.test\n",
                allowed.join(", ")
            );
            let policy = residency::policy::parse(&text, Path::new("unmeasured.yaml"))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let doc = scenario::check(&Arc::new(world), &policy).map_err(TestCaseError::fail)?;
            let endpoint = &doc.endpoints[0];
            let answered = (traced && reached && !unprivileged) || handshake.is_some();
            if timeout || !answered {
                prop_assert_ne!(
                    endpoint.verdict,
                    residency::model::Verdict::Compliant,
                    "timeout {}, answered {}: {:?}",
                    timeout,
                    answered,
                    endpoint.reasons
                );
            }
            // And where the endpoint is compliant, every address was measured and placed.
            if endpoint.verdict == residency::model::Verdict::Compliant {
                prop_assert!(endpoint.addresses.iter().all(|a| a.country.is_some()));
            }
        }
    }
}
