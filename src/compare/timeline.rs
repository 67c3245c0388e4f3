//! `timeline`: how a policy's verdicts and address geography moved over time, from the run
//! index (see the module doc of [`super`]).

use super::*;

/// How a timeline folds runs into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One point per run.
    #[default]
    Run,
    /// One point per UTC day with runs; see the module doc for how a day's runs fold.
    Day,
}

/// Endpoints by verdict at one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct VerdictCounts {
    pub compliant: usize,
    pub inconclusive: usize,
    pub violation: usize,
}

/// Addresses in one country at one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryShare {
    pub count: usize,
    /// `count` / located addresses, rounded to 4 decimals.
    pub share: f64,
}

/// One point on the timeline: a run, or a day's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// The run's start time (per run), or the day `YYYY-MM-DD` (per day).
    pub at: String,
    /// The runs folded into this point, by id, oldest first.
    pub runs: Vec<RunId>,
    /// The worst verdict of those runs.
    pub verdict: Verdict,
    /// How many endpoints had each verdict (each endpoint's worst of the point's runs).
    pub endpoints: VerdictCounts,
    /// Distinct addresses with a known country, and without one (summed over a day's runs).
    pub located: usize,
    pub unlocated: usize,
    pub countries: BTreeMap<String, CountryShare>,
}

/// A stretch of consecutive points over which an endpoint kept one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub verdict: Verdict,
    /// `at` of the first and last point of the stretch.
    pub from: String,
    pub to: String,
    /// Indexes of those points in [`Timeline::points`].
    pub first: usize,
    pub last: usize,
}

/// One endpoint's verdicts over the timeline, as spans; points where the endpoint was not
/// checked fall between spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointTrack {
    pub host: String,
    pub spans: Vec<Span>,
}

/// A policy's runs over time, oldest first, and each endpoint's verdicts along them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub policy_id: PolicyId,
    pub per: Per,
    pub points: Vec<TimelinePoint>,
    /// Every endpoint seen in the window, by host.
    pub endpoints: Vec<EndpointTrack>,
}

/// Verdict codes in a state vector: 0 is "not checked", then by severity, so `max` folds.
pub(crate) const VERDICTS: [Verdict; 3] = [
    Verdict::Compliant,
    Verdict::Inconclusive,
    Verdict::Violation,
];

pub(crate) fn code(v: Verdict) -> u8 {
    match v {
        Verdict::Compliant => 1,
        Verdict::Inconclusive => 2,
        Verdict::Violation => 3,
    }
}

/// The policy's runs started in `since <= started_at < until`, folded `per` run or day.
///
/// Reads only the history's run index, never documents, so a year of runs stays fast.
pub fn timeline(
    history: &History,
    db: &Path,
    policy: &PolicyId,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    per: Per,
) -> Result<Timeline, CompareError> {
    let runs = history.indexed(&RunFilter {
        policy_id: Some(policy.clone()),
        since,
        until,
    })?;
    if runs.is_empty() {
        // An empty window is an answer; a policy with no runs at all is a mistake.
        runs_of(history, db, policy, None, None)?;
    }
    let max_seq = runs.iter().map(|r| r.run.seq).max().unwrap_or(Seq(0));
    let changes = history.endpoint_changes(policy, max_seq)?;
    let hosts: BTreeMap<&str, usize> = changes
        .iter()
        .map(|c| c.host.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, h)| (h, i))
        .collect();

    // Replay the change log in seq order; each run's endpoint verdicts are the state at its seq.
    let mut by_seq: Vec<usize> = (0..runs.len()).collect();
    by_seq.sort_by_key(|&i| runs[i].run.seq);
    let mut states: Vec<Option<Vec<u8>>> = vec![None; runs.len()];
    let mut state = vec![0u8; hosts.len()];
    let mut next = 0;
    for i in by_seq {
        let seq = runs[i].run.seq;
        while let Some(c) = changes.get(next).filter(|c| c.seq <= seq) {
            if let Some(&h) = hosts.get(c.host.as_str()) {
                state[h] = c.verdict.map_or(0, code);
            }
            next += 1;
        }
        if runs[i].error.is_none() {
            states[i] = Some(state.clone());
        }
    }

    // Fold runs (already in start order) into points.
    let key = |r: &IndexedRun| match per {
        Per::Run => time::micros(&r.run.started_at),
        Per::Day => r.run.started_at.date_naive().to_string(),
    };
    let mut points = Vec::new();
    let mut point_states: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let at = key(&runs[i]);
        let mut j = i;
        while j < runs.len() && key(&runs[j]) == at {
            j += 1;
        }
        let group = &runs[i..j];
        let mut folded = vec![0u8; hosts.len()];
        for s in states[i..j].iter().flatten() {
            for (f, v) in folded.iter_mut().zip(s) {
                *f = (*f).max(*v);
            }
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut unlocated = 0;
        for r in group {
            for (c, n) in &r.countries {
                *counts.entry(c.clone()).or_default() += *n as usize;
            }
            unlocated += r.unlocated as usize;
        }
        let located: usize = counts.values().sum();
        let mut endpoints = VerdictCounts::default();
        for v in &folded {
            match v {
                1 => endpoints.compliant += 1,
                2 => endpoints.inconclusive += 1,
                3 => endpoints.violation += 1,
                _ => {}
            }
        }
        points.push(TimelinePoint {
            at,
            runs: group.iter().map(|r| r.run.id).collect(),
            verdict: group
                .iter()
                .map(|r| r.run.verdict)
                .max()
                .unwrap_or(Verdict::Inconclusive),
            endpoints,
            located,
            unlocated,
            countries: counts
                .into_iter()
                .map(|(c, count)| {
                    let share = (count as f64 / located as f64 * 10_000.0).round() / 10_000.0;
                    (c, CountryShare { count, share })
                })
                .collect(),
        });
        point_states.push(folded);
        i = j;
    }

    let mut endpoints = Vec::with_capacity(hosts.len());
    for (host, &h) in &hosts {
        let mut spans: Vec<Span> = Vec::new();
        for (p, folded) in point_states.iter().enumerate() {
            let Some(verdict) = folded[h].checked_sub(1).map(|c| VERDICTS[usize::from(c)]) else {
                continue;
            };
            match spans.last_mut() {
                Some(span) if span.verdict == verdict && span.last + 1 == p => {
                    span.last = p;
                    span.to.clone_from(&points[p].at);
                }
                _ => spans.push(Span {
                    verdict,
                    from: points[p].at.clone(),
                    to: points[p].at.clone(),
                    first: p,
                    last: p,
                }),
            }
        }
        if !spans.is_empty() {
            endpoints.push(EndpointTrack {
                host: (*host).to_string(),
                spans,
            });
        }
    }
    Ok(Timeline {
        policy_id: policy.clone(),
        per,
        points,
        endpoints,
    })
}
