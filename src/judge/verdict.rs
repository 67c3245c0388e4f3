//! Verdicts: judging measured evidence against a policy's allowed and denied countries.
//!
//! Owns the rules, and only the rules: given what the sources said about an address (or what
//! the resolvers said about an endpoint), decide `compliant`, `violation` or `inconclusive` and
//! say why in words a regulator can quote. Anything not measured can never come out compliant.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::judge::fusion::Fused;
use crate::measure::resolve::{Outcome, Resolution};
use crate::model::{CountryCode, Verdict};

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

impl Rules<'_> {
    /// Allowed and not denied (deny always wins).
    pub fn permits(&self, c: &CountryCode) -> bool {
        self.allow.contains(c) && !self.deny.contains(c)
    }
}

pub use crate::sources::physics::Reach;

fn join(cs: &BTreeSet<CountryCode>) -> String {
    cs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges one address from its fused location (see `fusion`): what physics allows and which
/// countries the unrefuted sources name.
///
/// Physics decides alone when every country within reach is allowed (compliant) or none is
/// (violation); otherwise the unrefuted claims decide.
pub fn judge_address(ip: IpAddr, fused: &Fused, rules: &Rules<'_>) -> AddressJudgement {
    let mut j = judge_claims(ip, fused, rules);
    let refuted: Vec<String> = fused
        .refuted
        .iter()
        .map(|why| format!("refuted by RTT physics: {why}"))
        .collect();
    let Some(reach) = &fused.reach else {
        j.reasons.extend(refuted);
        return j;
    };
    let head = match &reach.basis {
        Some(basis) => format!("physics: {ip} {basis}"),
        None => format!(
            "physics: a {:.1} ms round trip puts {ip} within {:.0} km of the vantage point",
            reach.min_rtt_ms, reach.max_km
        ),
    };
    let allowed: BTreeSet<CountryCode> = reach
        .countries
        .iter()
        .filter(|c| rules.permits(c))
        .copied()
        .collect();
    if !reach.countries.is_empty() && allowed.len() == reach.countries.len() {
        j.verdict = Verdict::Compliant;
        j.reasons = vec![format!(
            "{head}, where every country is allowed: {}",
            join(&reach.countries)
        )];
        if reach.countries.len() == 1 {
            j.country = reach.countries.iter().next().copied();
        }
    } else if allowed.is_empty() {
        j.verdict = Verdict::Violation;
        j.reasons = vec![format!(
            "{head}, where no country is allowed (only {})",
            join(&reach.countries)
        )];
        if reach.countries.len() == 1 {
            j.country = reach.countries.iter().next().copied();
        }
    } else if j.countries.is_empty() {
        j.verdict = Verdict::Inconclusive;
        j.reasons = vec![format!(
            "{head}, where allowed and not-allowed countries both lie ({}), and no unrefuted source places it",
            join(&reach.countries)
        )];
    } else {
        j.reasons.push(format!(
            "{head}; countries within reach: {}",
            join(&reach.countries)
        ));
    }
    j.reasons.extend(refuted);
    j
}

/// Judges an address from its unrefuted claims alone.
///
/// Sources that disagree within the allowed set still make a compliant address (every answer is
/// allowed); sources that disagree across the allow/deny line make it inconclusive, because the
/// databases alone cannot say which side is right.
fn judge_claims(ip: IpAddr, fused: &Fused, rules: &Rules<'_>) -> AddressJudgement {
    let by_country = &fused.claims;
    let countries: BTreeSet<CountryCode> = by_country.keys().copied().collect();
    let said = |c: &CountryCode| format!("{c} (per {})", by_country[c].join(", "));

    if countries.is_empty() {
        let asked = if fused.asked.is_empty() {
            "no location source was consulted".to_string()
        } else if !fused.refuted.is_empty() {
            "every source's claim was refuted".to_string()
        } else {
            format!("no source located it (asked: {})", fused.asked.join(", "))
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
    if !fused.silent.is_empty() && verdict != Verdict::Violation {
        reasons.push(format!("no answer from: {}", fused.silent.join(", ")));
    }
    AddressJudgement {
        country,
        countries,
        verdict,
        reasons,
    }
}

/// One hop of a measured path, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedHop {
    pub ttl: u8,
    pub addr: Option<IpAddr>,
    pub country: Option<CountryCode>,
    /// Which sources placed it there, for the reason text.
    pub sources: String,
}

/// Judges the path to an address against `transit.deny`. `None` when the policy has no transit
/// rule. `not_measured` carries why there is no path (e.g. no raw-socket privilege).
pub fn judge_transit(
    transit_deny: &BTreeSet<CountryCode>,
    not_measured: Option<&str>,
    hops: &[LocatedHop],
) -> Option<(Verdict, Vec<String>)> {
    if transit_deny.is_empty() {
        return None;
    }
    if let Some(why) = not_measured {
        return Some((
            Verdict::Inconclusive,
            vec![format!(
                "the policy forbids transit through {}, but the path was not measured: {why}",
                join(transit_deny)
            )],
        ));
    }
    let crossings: Vec<String> = hops
        .iter()
        .filter_map(|h| {
            let c = h.country.filter(|c| transit_deny.contains(c))?;
            let addr = h.addr.map(|a| a.to_string()).unwrap_or_default();
            Some(format!("hop {} ({addr}) in {c} (per {})", h.ttl, h.sources))
        })
        .collect();
    if !crossings.is_empty() {
        return Some((
            Verdict::Violation,
            vec![format!(
                "the path crosses a transit-denied country: {}",
                crossings.join("; ")
            )],
        ));
    }
    let silent = hops.iter().filter(|h| h.addr.is_none()).count();
    let unplaced = hops
        .iter()
        .filter(|h| h.addr.is_some() && h.country.is_none())
        .count();
    let mut reason = format!(
        "no hop of {} is located in a transit-denied country ({})",
        hops.len(),
        join(transit_deny)
    );
    if silent + unplaced > 0 {
        reason.push_str(&format!(
            "; {silent} hop(s) did not answer and {unplaced} could not be located"
        ));
    }
    Some((Verdict::Compliant, vec![reason]))
}

/// An address that answered none of the probes sent to it cannot be confirmed anywhere:
/// inconclusive. `probes` names what was sent (`traceroute`, `TCP connect`); where nothing
/// could be sent there is nothing to say here (the missing measurement is judged elsewhere).
pub fn judge_reachability(
    ip: IpAddr,
    probes: &[&str],
    reached: bool,
    rtt_measured: bool,
) -> Option<(Verdict, Vec<String>)> {
    (!probes.is_empty() && !reached && !rtt_measured).then(|| {
        (
            Verdict::Inconclusive,
            vec![format!(
                "{ip} answered no probe ({}): its existence and location are unconfirmed",
                probes.join(" and ")
            )],
        )
    })
}

/// Folds further judgements into an address judgement: the worst verdict, every reason.
pub fn fold(
    mut j: AddressJudgement,
    more: impl IntoIterator<Item = Option<(Verdict, Vec<String>)>>,
) -> AddressJudgement {
    for (verdict, reasons) in more.into_iter().flatten() {
        j.verdict = j.verdict.max(verdict);
        j.reasons.extend(reasons);
    }
    j
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
    for r in resolutions
        .iter()
        .filter(|r| unmeasured(r.outcome) || !r.trusted())
    {
        let what = match (&r.rcode, r.outcome) {
            _ if !r.trusted() => "untrusted answer".to_string(),
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
        if let Some(why) = resolutions.iter().find_map(|r| r.untrusted.as_ref()) {
            reasons.push(format!(
                "{host}'s addresses came only from untrusted answers, which are not used: {why}"
            ));
        }
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
    if let Some(why) = resolutions.iter().find_map(|r| r.untrusted.as_ref()) {
        reasons.push(format!("untrusted answers are not used: {why}"));
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
    use crate::measure::resolve::RecordType;
    use crate::model::{Confidence, Evidence, SourceKind};

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
            refuted: None,
        }
    }

    fn judge(evidence: &[Evidence]) -> AddressJudgement {
        judge_with(evidence, None)
    }

    fn judge_with(evidence: &[Evidence], reach: Option<&Reach>) -> AddressJudgement {
        let allow = [cc("IN"), cc("US"), cc("SG")].into_iter().collect();
        let deny = [cc("CN")].into_iter().collect();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let fused = crate::judge::fusion::fuse(evidence, reach, None);
        judge_address(
            ip,
            &fused,
            &Rules {
                allow: &allow,
                deny: &deny,
            },
        )
    }

    fn reach(countries: &[&str]) -> Reach {
        Reach {
            min_rtt_ms: 2.0,
            max_km: 250.0,
            countries: countries.iter().map(|c| cc(c)).collect(),
            basis: None,
        }
    }

    fn refuted(mut e: Evidence, why: &str) -> Evidence {
        e.refuted = Some(why.to_string());
        e
    }

    #[test]
    fn physics_overrules_refuted_claims() {
        // The database says SG (allowed) but the RTT only reaches CN and IN: SG is refuted,
        // and the only allowed country within reach is IN, so the surviving claims decide.
        let sg = refuted(
            ev("db", Some("SG")),
            "SG is 4,000 km away; 2 ms allows 250 km",
        );
        let j = judge_with(std::slice::from_ref(&sg), Some(&reach(&["IN", "CN"])));
        assert_eq!(j.verdict, Verdict::Inconclusive, "{:?}", j.reasons);
        assert!(
            j.reasons
                .iter()
                .any(|r| r.contains("refuted by RTT physics: SG is 4,000 km")),
            "{:?}",
            j.reasons
        );

        // Only allowed countries within reach: compliant whatever the (refuted) claim said.
        let cn = refuted(ev("db", Some("CN")), "CN is far");
        let j = judge_with(&[cn], Some(&reach(&["IN"])));
        assert_eq!((j.verdict, j.country), (Verdict::Compliant, Some(cc("IN"))));
        assert!(
            j.reasons[0].contains("every country is allowed: IN"),
            "{:?}",
            j.reasons
        );

        // No allowed country within reach: violation, even though the database said SG.
        let j = judge_with(&[sg], Some(&reach(&["CN"])));
        assert_eq!((j.verdict, j.country), (Verdict::Violation, Some(cc("CN"))));
        assert!(
            j.reasons[0].contains("no country is allowed (only CN)"),
            "{:?}",
            j.reasons
        );

        // Mixed reach with a surviving claim: the claim decides.
        let j = judge_with(&[ev("db", Some("IN"))], Some(&reach(&["IN", "CN"])));
        assert_eq!(j.verdict, Verdict::Compliant);
        assert!(
            j.reasons
                .iter()
                .any(|r| r.contains("countries within reach: CN, IN")),
            "{:?}",
            j.reasons
        );
    }

    #[test]
    fn transit_rules() {
        let deny: BTreeSet<CountryCode> = [cc("CN")].into_iter().collect();
        let hop = |ttl: u8, addr: Option<&str>, c: Option<&str>| LocatedHop {
            ttl,
            addr: addr.map(|a| a.parse().expect("ip")),
            country: c.map(cc),
            sources: "lab.mmdb".into(),
        };
        assert_eq!(judge_transit(&BTreeSet::new(), None, &[]), None);
        let path = [
            hop(1, Some("192.0.2.1"), Some("IN")),
            hop(2, Some("198.51.100.129"), Some("CN")),
            hop(3, None, None),
        ];
        let (v, reasons) = judge_transit(&deny, None, &path).expect("judged");
        assert_eq!(v, Verdict::Violation);
        assert!(
            reasons[0].contains("hop 2 (198.51.100.129) in CN (per lab.mmdb)"),
            "{reasons:?}"
        );
        let (v, reasons) =
            judge_transit(&deny, None, &[path[0].clone(), path[2].clone()]).expect("judged");
        assert_eq!(v, Verdict::Compliant);
        assert!(
            reasons[0].contains("1 hop(s) did not answer"),
            "{reasons:?}"
        );
        let (v, reasons) =
            judge_transit(&deny, Some("no raw-socket privilege"), &[]).expect("judged");
        assert_eq!(v, Verdict::Inconclusive);
        assert!(
            reasons[0].contains("not measured: no raw-socket privilege"),
            "{reasons:?}"
        );
    }

    #[test]
    fn an_address_that_answers_nothing_is_inconclusive() {
        let ip: IpAddr = "203.0.113.66".parse().expect("ip");
        let j = fold(
            judge(&[ev("db", Some("IN"))]),
            [judge_reachability(
                ip,
                &["traceroute", "TCP connect"],
                false,
                false,
            )],
        );
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert!(
            j.reasons[1].contains("answered no probe (traceroute and TCP connect)"),
            "{:?}",
            j.reasons
        );
        assert_eq!(
            judge_reachability(ip, &["traceroute", "TCP connect"], false, true),
            None,
            "a TCP RTT is an answer"
        );
        // Without privilege only the handshakes go out; their silence is still silence.
        let (verdict, reasons) =
            judge_reachability(ip, &["TCP connect"], false, false).expect("judged");
        assert_eq!(verdict, Verdict::Inconclusive);
        assert!(
            reasons[0].contains("answered no probe (TCP connect)"),
            "{reasons:?}"
        );
        assert_eq!(
            judge_reachability(ip, &[], false, false),
            None,
            "nothing sent: nothing to say"
        );
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
            names: vec![],
            ttl: None,
            transport: None,
            elapsed_ms: 0,
            error: None,
            rtt_ms: None,
            nsid: None,
            untrusted: None,
        }
    }

    #[test]
    fn untrusted_answers_count_as_no_usable_answer() {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut jacked = res(Outcome::Answer, Some("NOERROR"));
        jacked.untrusted = Some("DNS is intercepted from this vantage point".into());
        // Only untrusted answers: no address was judged, and the reasons say why.
        let (v, why) = judge_endpoint("api.example", std::slice::from_ref(&jacked), &[]);
        assert_eq!(v, Verdict::Inconclusive);
        let why = why.join("\n");
        assert!(why.contains("untrusted answer"), "{why}");
        assert!(why.contains("came only from untrusted answers"), "{why}");
        // A trusted answer beside an untrusted one cannot be compliant: addresses may be missing.
        let both = [res(Outcome::Answer, Some("NOERROR")), jacked];
        let (v, _) = judge_endpoint("api.example", &both, &[(ip, Verdict::Compliant)]);
        assert_eq!(v, Verdict::Inconclusive);
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
