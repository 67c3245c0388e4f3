//! One address as several vantage points measured it, judged once: the evidence of every
//! vantage together, physics from all their RTT disks at once (multilateration), and when two
//! disks cannot overlap, the address's sites one by one (iGreedy), each placed by its own disk.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::check::{located_hops, require_confidence};
use crate::judge::fusion::{Reach, fuse};
use crate::judge::verdict::{Rules, fold, judge_address, judge_transit};
use crate::model::{Confidence, CountryCode, Evidence, SourceKind, Verdict};
use crate::record::{AddressResult, PolicySnapshot, Site, VantageMeasurement};
use crate::sources::physics::multilateration::{Disk, greedy_sites, intersect};
use crate::sources::physics::{Countries, format_km, format_ms, great_circle_km};

/// One vantage's result for the address.
pub(super) struct Seen<'a> {
    pub label: &'a str,
    pub result: &'a AddressResult,
}

impl Seen<'_> {
    /// The vantage's disk, when it measured a trusted RTT from a declared point.
    fn disk(&self) -> Option<Disk> {
        let rtt = self.result.rtt.as_ref()?;
        let (_, max_km, vantage) = (rtt.min_rtt_ms?, rtt.max_km?, rtt.vantage?);
        Some(Disk {
            center: vantage.point(),
            radius_km: max_km,
        })
    }

    fn describe(&self) -> String {
        match self
            .result
            .rtt
            .as_ref()
            .and_then(|r| r.min_rtt_ms.zip(r.max_km))
        {
            Some((ms, km)) => format!(
                "{} ({} ms, within {} km)",
                self.label,
                format_ms(ms),
                format_km(km)
            ),
            None => self.label.to_string(),
        }
    }
}

/// The policy's rules, as the snapshot in the runs states them.
pub(super) struct Judge<'a> {
    pub rules: Rules<'a>,
    pub snapshot: &'a PolicySnapshot,
    pub transit_deny: &'a BTreeSet<CountryCode>,
}

/// Judges `ip` from every vantage's result: never fails, and says `inconclusive` whenever the
/// vantages together cannot settle it.
pub(super) fn combine_address(ip: IpAddr, seen: &[Seen<'_>], judge: &Judge<'_>) -> AddressResult {
    let shapes = Countries::shipped().ok();
    let disks: Vec<(usize, Disk)> = seen
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.disk().map(|d| (i, d)))
        .collect();
    let mut evidence = merged_evidence(seen);
    let plain: Vec<Disk> = disks.iter().map(|(_, d)| *d).collect();
    let chosen = greedy_sites(&plain);
    let mut out = if chosen.len() >= 2 {
        anycast(ip, seen, &disks, &chosen, &evidence, judge)
    } else {
        let common = match (&shapes, disks.is_empty()) {
            (Some(shapes), false) => Some(intersect(shapes, &plain)),
            _ => None,
        };
        match common {
            Some(common) if common.empty => no_common_point(ip, seen, &disks),
            Some(common) if !common.proven || common.countries.is_empty() => {
                // Disks that meet only along their edges, or only where no country's land
                // lies (at sea, on a coast the shapes leave out), prove nothing about a
                // country: a vantage may be misplaced, or the address be in more places.
                let named: Vec<String> = disks.iter().map(|(i, _)| seen[*i].describe()).collect();
                let mut result = AddressResult {
                    reasons: vec![format!(
                        "the RTT disks from {} {}: nothing is concluded from them (a vantage \
                         may be misplaced, or {ip} answer from more than one place)",
                        and_list(&named),
                        if common.proven {
                            "overlap only where no country's territory lies"
                        } else {
                            "meet, if at all, only along their edges"
                        }
                    )],
                    ..empty_result(ip)
                };
                result.anycast = Some(false);
                result.sites = Some(Vec::new());
                result.intersection = Some(Vec::new());
                result
            }
            Some(common) => {
                let countries = common.countries;
                if disks.len() >= 2 {
                    refute_outside(&mut evidence, &countries, seen, &disks);
                }
                let named: Vec<String> = disks.iter().map(|(i, _)| seen[*i].describe()).collect();
                let basis = Some(match named.as_slice() {
                    [one] => format!("lies within the RTT disk from {one}"),
                    _ => format!(
                        "lies where the RTT disks from {} overlap (multilateration, taking it \
                         for one site: no two of the disks are disjoint)",
                        and_list(&named)
                    ),
                });
                let reach = Reach {
                    min_rtt_ms: min_rtt(seen).unwrap_or(f64::INFINITY),
                    max_km: plain
                        .iter()
                        .map(|d| d.radius_km)
                        .fold(f64::INFINITY, f64::min),
                    countries: countries.clone(),
                    basis,
                };
                let mut result = judged(ip, &evidence, Some(&reach), judge);
                let site = Site {
                    country: single(&countries),
                    countries: countries.iter().copied().collect(),
                    placed_by: disks
                        .iter()
                        .map(|(i, _)| seen[*i].label.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    max_km: Some(reach.max_km),
                    vantages: disks
                        .iter()
                        .map(|(i, _)| seen[*i].label.to_string())
                        .collect(),
                    verdict: result.verdict,
                };
                result.anycast = Some(false);
                result.sites = Some(vec![site]);
                result.intersection = Some(countries.into_iter().collect());
                result
            }
            None => {
                let mut result = judged(ip, &evidence, None, judge);
                result.anycast = Some(false);
                result.sites = Some(Vec::new());
                result.intersection = Some(Vec::new());
                result.reasons.push(
                    "no vantage measured a trusted round-trip time from a declared point, so \
                     physics says nothing about where it is"
                        .into(),
                );
                result
            }
        }
    };
    out.measured_from = measurements(seen, &disks, out.sites.as_deref().unwrap_or_default());
    // Transit is about each vantage's own path: a denied country on any of them counts.
    let transits = seen.iter().filter_map(|s| {
        let path = s.result.path.as_ref()?;
        let (verdict, reasons) =
            judge_transit(judge.transit_deny, path.not_measured(), &located_hops(path))?;
        Some(Some((
            verdict,
            reasons
                .into_iter()
                .map(|r| format!("from {}: {r}", s.label))
                .collect(),
        )))
    });
    let folded = fold(
        crate::judge::verdict::AddressJudgement {
            country: out.country,
            countries: out.countries.iter().copied().collect(),
            verdict: out.verdict,
            reasons: std::mem::take(&mut out.reasons),
        },
        transits.collect::<Vec<_>>(),
    );
    out.verdict = folded.verdict;
    out.reasons = folded.reasons;
    // As for one vantage: where probes were sent and nothing answered from any vantage, the
    // address's existence and place are unconfirmed, whatever the databases say.
    let probed = seen.iter().any(|s| s.result.path.is_some());
    let answered = seen.iter().any(|s| {
        s.result
            .rtt
            .as_ref()
            .is_some_and(|r| r.min_rtt_ms.is_some())
    });
    if probed && !answered && out.verdict == Verdict::Compliant {
        out.verdict = Verdict::Inconclusive;
        out.reasons.push(format!(
            "{ip} answered no probe from any vantage: its existence and location are unconfirmed"
        ));
    }
    out.evidence = evidence;
    out
}

/// The claims and physics judged as for one vantage, with `reach` the disks' common region.
fn judged(
    ip: IpAddr,
    evidence: &[Evidence],
    reach: Option<&Reach>,
    judge: &Judge<'_>,
) -> AddressResult {
    let fused = fuse(evidence, reach, None);
    let mut j = judge_address(ip, &fused, &judge.rules);
    if let Some((verdict, reasons)) =
        require_confidence(&fused, j.verdict, judge.snapshot.min_confidence)
    {
        j.verdict = verdict;
        j.reasons.extend(reasons);
    }
    AddressResult {
        country: j.country,
        countries: j.countries.into_iter().collect(),
        verdict: j.verdict,
        reasons: j.reasons,
        confidence: fused.confidence,
        decided_by: fused.decided_by,
        conflicts: fused.conflicts,
        ..empty_result(ip)
    }
}

/// Two disjoint disks: at least `chosen.len()` sites, each judged from its own disk alone.
fn anycast(
    ip: IpAddr,
    seen: &[Seen<'_>],
    disks: &[(usize, Disk)],
    chosen: &[usize],
    evidence: &[Evidence],
    judge: &Judge<'_>,
) -> AddressResult {
    let mut sites = Vec::with_capacity(chosen.len());
    let mut reasons = Vec::new();
    let (a, b) = (disks[chosen[0]], disks[chosen[1]]);
    reasons.push(format!(
        "anycast: the RTT disks from {} and {} cannot overlap ({} km apart), so {ip} answers \
         from at least {} places",
        seen[a.0].describe(),
        seen[b.0].describe(),
        format_km(great_circle_km(a.1.center, b.1.center)),
        chosen.len()
    ));
    for (n, &c) in chosen.iter().enumerate() {
        let (i, disk) = disks[c];
        let s = &seen[i];
        let (countries, _, verdict) = disk_verdict(s, judge);
        // A vantage reaches this site when its disk overlaps this site's disk and no other.
        let reaching: Vec<String> = disks
            .iter()
            .filter(|(_, d)| {
                !d.disjoint(&disk)
                    && chosen
                        .iter()
                        .filter(|&&o| o != c)
                        .all(|&o| d.disjoint(&disks[o].1))
            })
            .map(|(j, _)| seen[*j].label.to_string())
            .collect();
        reasons.push(format!(
            "site {}: within {} km of {} ({}): {verdict}{}",
            n + 1,
            format_km(disk.radius_km),
            s.label,
            if countries.is_empty() {
                "no country".to_string()
            } else {
                and_list(
                    &countries
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )
            },
            if reaching.is_empty() {
                String::new()
            } else {
                format!(
                    "; likely reached from {} (their disks overlap this site's alone)",
                    reaching.join(", ")
                )
            }
        ));
        sites.push(Site {
            country: single(&countries),
            countries: countries.into_iter().collect(),
            placed_by: s.label.to_string(),
            max_km: Some(disk.radius_km),
            vantages: reaching,
            verdict,
        });
    }
    let claims: BTreeSet<String> = evidence
        .iter()
        .filter(|e| e.kind != SourceKind::RttPhysics)
        .filter_map(|e| e.country.map(|c| format!("{} ({c})", e.source)))
        .collect();
    if !claims.is_empty() {
        reasons.push(format!(
            "single-site claims for an anycast address, not counted: {}",
            claims.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    reasons.push(format!(
        "only the sites these vantages reach are judged: {ip} may have more"
    ));
    // Each vantage's traffic reaches some site inside its own disk, found or not: the address
    // is compliant only if every vantage's disk holds allowed countries alone, and a violation
    // when some disk holds none.
    let mut verdict = sites
        .iter()
        .map(|s| s.verdict)
        .max()
        .unwrap_or(Verdict::Inconclusive);
    for (i, _) in disks {
        let s = &seen[*i];
        let (countries, allowed, own) = disk_verdict(s, judge);
        if own > verdict {
            reasons.push(format!(
                "the site {} reaches lies within {} km of it, where {}: {own}",
                s.label,
                format_km(
                    s.result
                        .rtt
                        .as_ref()
                        .and_then(|r| r.max_km)
                        .unwrap_or(f64::NAN)
                ),
                if allowed == 0 {
                    "no country is allowed".to_string()
                } else {
                    format!(
                        "allowed and other countries lie ({})",
                        and_list(
                            &countries
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                        )
                    )
                }
            ));
            verdict = own;
        }
    }
    let every: BTreeSet<CountryCode> = sites
        .iter()
        .flat_map(|s| s.countries.iter().copied())
        .collect();
    let one_each: Option<CountryCode> = sites
        .iter()
        .map(|s| s.country)
        .collect::<Option<BTreeSet<_>>>()
        .filter(|set| set.len() == 1)
        .and_then(|set| set.into_iter().next());
    let decided_by = vec![format!(
        "anycast sites by rtt physics from {}",
        chosen
            .iter()
            .map(|&c| seen[disks[c].0].label)
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let confidence = if sites.iter().all(|s| s.countries.len() == 1) {
        Confidence::High
    } else {
        Confidence::Medium
    };
    let mut final_verdict = verdict;
    if let Some((v, more)) = require_confidence(
        &crate::judge::fusion::Fused {
            confidence,
            decided_by: decided_by.clone(),
            ..Default::default()
        },
        verdict,
        judge.snapshot.min_confidence,
    ) {
        final_verdict = v;
        reasons.extend(more);
    }
    AddressResult {
        country: one_each,
        countries: every.into_iter().collect(),
        verdict: final_verdict,
        reasons,
        confidence,
        decided_by,
        anycast: Some(true),
        sites: Some(sites),
        intersection: Some(Vec::new()),
        ..empty_result(ip)
    }
}

/// The countries within a vantage's own disk, how many are allowed, and what that alone
/// says: compliant when all are allowed, a violation when none is, else inconclusive.
fn disk_verdict(s: &Seen<'_>, judge: &Judge<'_>) -> (BTreeSet<CountryCode>, usize, Verdict) {
    let countries: BTreeSet<CountryCode> = s
        .result
        .rtt
        .iter()
        .flat_map(|r| &r.reachable)
        .map(|r| r.country)
        .collect();
    let allowed = countries.iter().filter(|c| judge.rules.permits(c)).count();
    let verdict = if countries.is_empty() {
        Verdict::Inconclusive
    } else if allowed == countries.len() {
        Verdict::Compliant
    } else if allowed == 0 {
        Verdict::Violation
    } else {
        Verdict::Inconclusive
    };
    (countries, allowed, verdict)
}

/// Three or more disks that overlap two by two but share no point: more than one place, and
/// no two disks to tell the places apart.
fn no_common_point(ip: IpAddr, seen: &[Seen<'_>], disks: &[(usize, Disk)]) -> AddressResult {
    let named: Vec<String> = disks.iter().map(|(i, _)| seen[*i].describe()).collect();
    let mut result = AddressResult {
        verdict: Verdict::Inconclusive,
        reasons: vec![format!(
            "the RTT disks from {} overlap two by two but share no point: {ip} answers from \
             more than one place, and no two disks are disjoint, so its sites cannot be told apart",
            and_list(&named)
        )],
        ..empty_result(ip)
    };
    result.anycast = Some(true);
    result.sites = Some(Vec::new());
    result.intersection = Some(Vec::new());
    result
}

fn empty_result(ip: IpAddr) -> AddressResult {
    AddressResult {
        ip,
        country: None,
        countries: Vec::new(),
        evidence: Vec::new(),
        verdict: Verdict::Inconclusive,
        reasons: Vec::new(),
        seen: 0,
        via: Vec::new(),
        names: Vec::new(),
        registry: None,
        anycast: None,
        sites: None,
        intersection: None,
        measured_from: Vec::new(),
        confidence: Confidence::Low,
        decided_by: Vec::new(),
        conflicts: Vec::new(),
        path: None,
        rtt: None,
        http: Vec::new(),
    }
}

/// Every vantage's evidence once: the same claim from several vantages (the databases say the
/// same wherever they are asked) is kept once, refuted if any vantage's physics refuted it.
fn merged_evidence(seen: &[Seen<'_>]) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for s in seen {
        for e in &s.result.evidence {
            let same = out.iter_mut().find(|o| {
                o.source == e.source
                    && o.kind == e.kind
                    && o.country == e.country
                    && o.city == e.city
                    && o.detail == e.detail
            });
            match same {
                Some(o) => {
                    if o.refuted.is_none()
                        && let Some(why) = &e.refuted
                    {
                        o.refuted = Some(format!("from {}: {why}", s.label));
                    }
                }
                None => {
                    let mut e = e.clone();
                    if let Some(why) = e.refuted.take() {
                        e.refuted = Some(format!("from {}: {why}", s.label));
                    }
                    out.push(e);
                }
            }
        }
    }
    out
}

/// Claims of a country with no territory where the disks overlap are refuted, with the disks.
fn refute_outside(
    evidence: &mut [Evidence],
    countries: &BTreeSet<CountryCode>,
    seen: &[Seen<'_>],
    disks: &[(usize, Disk)],
) {
    let named: Vec<String> = disks.iter().map(|(i, _)| seen[*i].describe()).collect();
    for e in evidence.iter_mut().filter(|e| e.refuted.is_none()) {
        if let Some(c) = e.country
            && !countries.contains(&c)
        {
            e.refuted = Some(format!(
                "{}: {c} has no territory where the RTT disks from {} overlap (multilateration)",
                e.source,
                and_list(&named)
            ));
        }
    }
}

/// Each vantage's view, and the sites (by index) its disk may reach.
fn measurements(
    seen: &[Seen<'_>],
    disks: &[(usize, Disk)],
    sites: &[Site],
) -> Vec<VantageMeasurement> {
    seen.iter()
        .enumerate()
        .map(|(i, s)| {
            let rtt = s.result.rtt.as_ref();
            let disk = disks.iter().find(|(j, _)| *j == i).map(|(_, d)| *d);
            let reaches: Vec<usize> = match disk {
                Some(d) => sites
                    .iter()
                    .enumerate()
                    .filter(|(_, site)| {
                        site.vantages.iter().any(|v| v == s.label)
                            || site_disk(site, seen, disks).is_some_and(|sd| !sd.disjoint(&d))
                    })
                    .map(|(n, _)| n)
                    .collect(),
                None => Vec::new(),
            };
            VantageMeasurement {
                vantage: s.label.to_string(),
                verdict: s.result.verdict,
                country: s.result.country,
                min_rtt_ms: rtt.and_then(|r| r.min_rtt_ms),
                max_km: rtt.and_then(|r| r.max_km),
                latitude: rtt.and_then(|r| r.vantage).map(|v| v.latitude),
                longitude: rtt.and_then(|r| r.vantage).map(|v| v.longitude),
                sites: reaches,
            }
        })
        .collect()
}

/// The disk that placed a site (for an anycast site, its one vantage's).
fn site_disk(site: &Site, seen: &[Seen<'_>], disks: &[(usize, Disk)]) -> Option<Disk> {
    disks
        .iter()
        .find(|(i, _)| seen[*i].label == site.placed_by)
        .map(|(_, d)| *d)
}

fn min_rtt(seen: &[Seen<'_>]) -> Option<f64> {
    seen.iter()
        .filter_map(|s| s.result.rtt.as_ref()?.min_rtt_ms)
        .reduce(f64::min)
}

fn single(set: &BTreeSet<CountryCode>) -> Option<CountryCode> {
    (set.len() == 1)
        .then(|| set.iter().next().copied())
        .flatten()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
