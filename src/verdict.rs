//! Verdicts: judging measured evidence against a policy's allowed and denied countries.
//!
//! Owns the rules, and only the rules: given what the sources said about an address (or what
//! the resolvers said about an endpoint), decide `compliant`, `violation` or `inconclusive` and
//! say why in words a regulator can quote. Anything not measured can never come out compliant.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::model::{CountryCode, Evidence, Verdict};
use crate::resolve::{Outcome, Resolution};

/// The countries a policy allows and denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules<'a> {
    pub allow: &'a BTreeSet<CountryCode>,
    pub deny: &'a BTreeSet<CountryCode>,
}

/// The judgement of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressJudgement {
    /// The country every source agrees on; `None` when nothing located it or sources disagree.
    pub country: Option<CountryCode>,
    /// Every country any source named, so disagreement is visible.
    pub countries: BTreeSet<CountryCode>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Judges one address from its evidence.
///
/// Sources that disagree within the allowed set still make a compliant address (every answer is
/// allowed); sources that disagree across the allow/deny line make it inconclusive, because the
/// databases alone cannot say which side is right.
pub fn judge_address(ip: IpAddr, evidence: &[Evidence], rules: &Rules<'_>) -> AddressJudgement {
    let mut by_country: BTreeMap<CountryCode, Vec<&str>> = BTreeMap::new();
    for e in evidence {
        if let Some(c) = e.country {
            by_country.entry(c).or_default().push(e.source.as_str());
        }
    }
    let countries: BTreeSet<CountryCode> = by_country.keys().copied().collect();
    let said = |c: &CountryCode| format!("{c} (per {})", by_country[c].join(", "));

    if countries.is_empty() {
        let asked = if evidence.is_empty() {
            "no location source was consulted".to_string()
        } else {
            let names: Vec<&str> = evidence.iter().map(|e| e.source.as_str()).collect();
            format!("no source located it (asked: {})", names.join(", "))
        };
        return AddressJudgement {
            country: None,
            countries,
            verdict: Verdict::Inconclusive,
            reasons: vec![format!("{ip}: {asked}; its country is unknown")],
        };
    }

    let denied: Vec<&CountryCode> = countries
        .iter()
        .filter(|c| rules.deny.contains(c))
        .collect();
    let outside: Vec<&CountryCode> = countries
        .iter()
        .filter(|c| !rules.allow.contains(c) && !rules.deny.contains(c))
        .collect();
    let allowed: Vec<&CountryCode> = countries
        .iter()
        .filter(|c| rules.allow.contains(c) && !rules.deny.contains(c))
        .collect();
    let country = if countries.len() == 1 {
        countries.iter().next().copied()
    } else {
        None
    };
    let list = |cs: &[&CountryCode]| cs.iter().map(|c| said(c)).collect::<Vec<_>>().join("; ");

    let (verdict, mut reasons) = if allowed.is_empty() {
        let mut reasons = Vec::new();
        if !denied.is_empty() {
            reasons.push(format!(
                "{ip} is located in a denied country: {}",
                list(&denied)
            ));
        }
        if !outside.is_empty() {
            reasons.push(format!(
                "{ip} is located outside the allowed countries: {}",
                list(&outside)
            ));
        }
        (Verdict::Violation, reasons)
    } else if denied.is_empty() && outside.is_empty() {
        let reason = if allowed.len() == 1 {
            format!("{ip} is located in allowed country {}", list(&allowed))
        } else {
            format!(
                "{ip}: sources disagree, but every answer is an allowed country: {}",
                list(&allowed)
            )
        };
        (Verdict::Compliant, vec![reason])
    } else {
        let mut other: Vec<&CountryCode> = denied.clone();
        other.extend(outside.iter().copied());
        (
            Verdict::Inconclusive,
            vec![format!(
                "{ip}: sources disagree across the policy line: allowed {} versus not allowed {}; databases alone cannot settle it",
                list(&allowed),
                list(&other)
            )],
        )
    };
    let unknown: Vec<&str> = evidence
        .iter()
        .filter(|e| e.country.is_none())
        .map(|e| e.source.as_str())
        .collect();
    if !unknown.is_empty() && verdict != Verdict::Violation {
        reasons.push(format!("no answer from: {}", unknown.join(", ")));
    }
    AddressJudgement {
        country,
        countries,
        verdict,
        reasons,
    }
}

/// Judges an endpoint from its resolutions and the verdicts of the addresses they returned.
///
/// A query that got no usable answer (timeout, SERVFAIL, REFUSED, transport error) means some
/// resolver × subnet was not measured: the addresses it would have given are unknown, so the
/// endpoint cannot be compliant. NXDOMAIN and NODATA are answers and do not count against it.
pub fn judge_endpoint(
    host: &str,
    resolutions: &[Resolution],
    addresses: &[(IpAddr, Verdict)],
) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let worst = addresses.iter().map(|(_, v)| *v).max();

    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for r in resolutions.iter().filter(|r| unmeasured(r.outcome)) {
        let what = match (&r.rcode, r.outcome) {
            (Some(rcode), _) => rcode.clone(),
            (None, Outcome::Timeout) => "timeout".to_string(),
            (None, _) => r.error.clone().unwrap_or_else(|| "error".to_string()),
        };
        *failed
            .entry(format!("{what} from {}", r.resolver))
            .or_default() += 1;
    }
    let failures = failed
        .iter()
        .map(|(what, n)| format!("{what} ({n}×)"))
        .collect::<Vec<_>>()
        .join(", ");

    let Some(worst) = worst else {
        let nx = resolutions
            .iter()
            .filter(|r| r.outcome == Outcome::NxDomain)
            .count();
        let mut reason = format!(
            "{host} resolved to no address in {} quer{}",
            resolutions.len(),
            if resolutions.len() == 1 { "y" } else { "ies" }
        );
        if nx > 0 {
            reason.push_str(&format!("; NXDOMAIN {nx}×"));
        }
        if !failures.is_empty() {
            reason.push_str(&format!("; no usable answer: {failures}"));
        }
        reasons.push(reason + ": where its data goes is unknown");
        return (Verdict::Inconclusive, reasons);
    };

    let count = |v: Verdict| addresses.iter().filter(|(_, av)| *av == v).count();
    let mut verdict = worst;
    match worst {
        Verdict::Violation if addresses.len() == 1 => {
            reasons.push("its only address violates the policy".to_string())
        }
        Verdict::Inconclusive if addresses.len() == 1 => reasons
            .push("its only address could not be placed on either side of the policy".to_string()),
        Verdict::Violation => reasons.push(format!(
            "{} of {} addresses violate the policy",
            count(Verdict::Violation),
            addresses.len()
        )),
        Verdict::Inconclusive => reasons.push(format!(
            "{} of {} addresses could not be placed on either side of the policy",
            count(Verdict::Inconclusive),
            addresses.len()
        )),
        Verdict::Compliant if addresses.len() == 1 => {
            reasons.push("its only address is in an allowed country".to_string())
        }
        Verdict::Compliant => reasons.push(format!(
            "all {} addresses are in allowed countries",
            addresses.len()
        )),
    }
    if !failures.is_empty() {
        reasons.push(format!(
            "some queries got no usable answer, so addresses may be missing: {failures}"
        ));
        if verdict == Verdict::Compliant {
            verdict = Verdict::Inconclusive;
        }
    }
    (verdict, reasons)
}

/// A query outcome that tells us nothing about the name's addresses.
fn unmeasured(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Timeout
            | Outcome::Error
            | Outcome::ServFail
            | Outcome::Refused
            | Outcome::OtherRcode
    )
}

/// The verdict of a run: the worst of its endpoints. A run with no endpoints cannot happen
/// (validation refuses it), but if it did it would be inconclusive, not compliant.
pub fn judge_run(endpoints: impl IntoIterator<Item = Verdict>) -> Verdict {
    endpoints.into_iter().max().unwrap_or(Verdict::Inconclusive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Confidence, SourceKind};
    use crate::resolve::RecordType;

    fn cc(s: &str) -> CountryCode {
        s.parse().expect("test country code")
    }

    fn ev(source: &str, country: Option<&str>) -> Evidence {
        Evidence {
            source: source.into(),
            kind: SourceKind::GeoDatabase,
            country: country.map(cc),
            confidence: Confidence::Low,
            detail: String::new(),
            city: None,
            coordinates: None,
        }
    }

    fn judge(evidence: &[Evidence]) -> AddressJudgement {
        let allow = [cc("IN"), cc("US"), cc("SG")].into_iter().collect();
        let deny = [cc("CN")].into_iter().collect();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        judge_address(
            ip,
            evidence,
            &Rules {
                allow: &allow,
                deny: &deny,
            },
        )
    }

    #[test]
    fn address_rules() {
        let j = judge(&[ev("a", Some("IN"))]);
        assert_eq!((j.verdict, j.country), (Verdict::Compliant, Some(cc("IN"))));

        let j = judge(&[ev("a", Some("CN"))]);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.reasons[0].contains("denied country: CN (per a)"),
            "{:?}",
            j.reasons
        );

        let j = judge(&[ev("a", Some("FR"))]);
        assert_eq!(j.verdict, Verdict::Violation);
        assert!(
            j.reasons[0].contains("outside the allowed"),
            "{:?}",
            j.reasons
        );

        let j = judge(&[ev("a", None)]);
        assert_eq!((j.verdict, j.country), (Verdict::Inconclusive, None));
        assert_eq!(judge(&[]).verdict, Verdict::Inconclusive);

        let j = judge(&[ev("a", Some("IN")), ev("b", Some("CN"))]);
        assert_eq!((j.verdict, j.country), (Verdict::Inconclusive, None));
        assert_eq!(j.countries.len(), 2);
        assert!(
            j.reasons[0].contains("allowed IN (per a) versus not allowed CN (per b)"),
            "{:?}",
            j.reasons
        );

        let j = judge(&[ev("a", Some("IN")), ev("b", Some("SG"))]);
        assert_eq!(j.verdict, Verdict::Compliant);

        let j = judge(&[ev("a", Some("CN")), ev("b", Some("RU"))]);
        assert_eq!(j.verdict, Verdict::Violation);
    }

    fn res(outcome: Outcome, rcode: Option<&str>) -> Resolution {
        Resolution {
            resolver: "127.0.0.1:53".into(),
            client_subnet: None,
            scope_prefix: None,
            record_type: RecordType::A,
            attempt: 1,
            outcome,
            rcode: rcode.map(str::to_string),
            cname_chain: vec![],
            addresses: vec![],
            ttl: None,
            transport: None,
            elapsed_ms: 0,
            error: None,
        }
    }

    #[test]
    fn endpoint_rules() {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let ok = [res(Outcome::Answer, Some("NOERROR"))];
        assert_eq!(
            judge_endpoint("h", &ok, &[(ip, Verdict::Compliant)]).0,
            Verdict::Compliant
        );
        assert_eq!(
            judge_endpoint(
                "h",
                &ok,
                &[(ip, Verdict::Compliant), (ip, Verdict::Violation)]
            )
            .0,
            Verdict::Violation
        );

        let nx = [res(Outcome::NxDomain, Some("NXDOMAIN"))];
        let (v, reasons) = judge_endpoint("h", &nx, &[]);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(reasons[0].contains("NXDOMAIN 1×"), "{reasons:?}");

        let partly = [
            res(Outcome::Answer, Some("NOERROR")),
            res(Outcome::Timeout, None),
        ];
        let (v, reasons) = judge_endpoint("h", &partly, &[(ip, Verdict::Compliant)]);
        assert_eq!(
            v,
            Verdict::Inconclusive,
            "a timed-out query keeps it from compliant"
        );
        assert!(
            reasons[1].contains("timeout from 127.0.0.1:53 (1×)"),
            "{reasons:?}"
        );

        let nodata_aaaa = [
            res(Outcome::Answer, Some("NOERROR")),
            res(Outcome::NoData, Some("NOERROR")),
        ];
        assert_eq!(
            judge_endpoint("h", &nodata_aaaa, &[(ip, Verdict::Compliant)]).0,
            Verdict::Compliant
        );
    }

    #[test]
    fn run_is_the_worst_endpoint() {
        assert_eq!(
            judge_run([Verdict::Compliant, Verdict::Inconclusive]),
            Verdict::Inconclusive
        );
        assert_eq!(judge_run([]), Verdict::Inconclusive);
    }
}
