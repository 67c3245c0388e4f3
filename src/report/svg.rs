//! Charts and the world map of a report, drawn as standalone SVG text.
//!
//! Owns the drawing only: every number comes from the report context ([`super::context`]), and
//! the country shapes from [`Countries::shipped`] (the same Natural Earth data physics uses).
//! The SVG is self-contained (no scripts, no external references, no web fonts), so it can be
//! inlined in HTML and handed to the PDF typesetter unchanged. Every piece of text put into it
//! goes through [`xml_escape`]; host names come from policies and are not trusted to be tame.
//!
//! Long histories are bucketed: at most [`MAX_COLUMNS`] columns, each the mean (for shares) or
//! the worst (for verdicts) of the runs it covers, so a year of 6-hourly runs draws in the same
//! size as a week.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::compare::{Span, Timeline};
use crate::model::{CountryCode, Verdict};
use crate::sources::physics::Countries;

/// Most columns a chart over time draws.
pub const MAX_COLUMNS: usize = 180;
/// Most endpoint rows the per-endpoint chart draws (the ones with most non-compliant runs).
pub const MAX_ENDPOINT_ROWS: usize = 30;
/// Countries drawn by name in the share chart; the rest are summed as "other".
const TOP_COUNTRIES: usize = 7;

const WIDTH: f64 = 760.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const FONT: &str = "font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"11\"";

/// Colours of the verdicts; the same in every chart and in the default templates' CSS.
pub fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "#2e7d32",
        Verdict::Inconclusive => "#f9a825",
        Verdict::Violation => "#c62828",
    }
}

const PALETTE: [&str; 8] = [
    "#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#4e342e", "#ad1457", "#558b2f", "#9e9e9e",
];
const UNLOCATED: &str = "#cfd8dc";

/// Text made safe for SVG/XML character data and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even as references.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn open(out: &mut String, height: f64, label: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\" {FONT}>",
        xml_escape(label)
    );
    let _ = write!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, s: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" fill=\"#333333\">{}</text>",
        xml_escape(s)
    );
}

/// Runs `0..n` split into at most `MAX_COLUMNS` consecutive, nearly equal buckets.
fn buckets(n: usize) -> Vec<std::ops::Range<usize>> {
    let b = n.min(MAX_COLUMNS);
    (0..b).map(|i| (i * n / b)..((i + 1) * n / b)).collect()
}

/// The date part of an RFC 3339 time.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

fn run_count(t: &Timeline) -> usize {
    t.points.iter().map(|p| p.runs.len()).sum()
}

fn x_axis(out: &mut String, t: &Timeline, y: f64) {
    if let (Some(first), Some(last)) = (t.points.first(), t.points.last()) {
        text(out, LEFT, y, "start", day(&first.at));
        if t.points.len() > 1 {
            text(out, WIDTH - RIGHT, y, "end", day(&last.at));
        }
        let n = run_count(t);
        let runs = if n == 1 { "run" } else { "runs" };
        text(
            out,
            (LEFT + WIDTH - RIGHT) / 2.0,
            y,
            "middle",
            &format!("{n} {runs}"),
        );
    }
}

fn y_axis(out: &mut String, top: f64, height: f64) {
    for (frac, label) in [(0.0, "100%"), (0.5, "50%"), (1.0, "0%")] {
        let y = top + height * frac;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e0e0e0\"/>",
            WIDTH - RIGHT
        );
        text(out, LEFT - 4.0, y + 4.0, "end", label);
    }
}

/// Stacked layers over the columns: `layers[k][col]` are fractions summing to at most 1.
fn stacked(
    out: &mut String,
    layers: &[(String, &str, Vec<f64>)],
    columns: usize,
    top: f64,
    height: f64,
) {
    let plot = WIDTH - LEFT - RIGHT;
    let step = plot / columns.max(1) as f64;
    let mut base = vec![0.0; columns];
    for (name, colour, values) in layers {
        if values.iter().all(|v| *v <= 0.0) {
            continue;
        }
        let mut pts = String::new();
        // Upper edge left to right, as steps, then the lower edge back.
        for (i, v) in values.iter().enumerate() {
            let y = top + height * (1.0 - (base[i] + v).min(1.0));
            let _ = write!(
                pts,
                "{:.1},{y:.1} {:.1},{y:.1} ",
                LEFT + step * i as f64,
                LEFT + step * (i + 1) as f64
            );
        }
        for i in (0..columns).rev() {
            let y = top + height * (1.0 - base[i].min(1.0));
            let _ = write!(
                pts,
                "{:.1},{y:.1} {:.1},{y:.1} ",
                LEFT + step * (i + 1) as f64,
                LEFT + step * i as f64
            );
        }
        let _ = write!(
            out,
            "<polygon points=\"{}\" fill=\"{colour}\"><title>{}</title></polygon>",
            pts.trim_end(),
            xml_escape(name)
        );
        for (b, v) in base.iter_mut().zip(values) {
            *b += v;
        }
    }
}

fn legend(out: &mut String, items: &[(String, &str)], y: f64) {
    let mut x = LEFT;
    for (name, colour) in items {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>",
            y - 9.0
        );
        text(out, x + 14.0, y, "start", name);
        x += 24.0 + 7.0 * name.chars().count().min(24) as f64;
    }
}

fn empty(out: &mut String, height: f64) -> String {
    text(out, WIDTH / 2.0, height / 2.0, "middle", "no runs");
    out.push_str("</svg>");
    std::mem::take(out)
}

/// Bytes the device sent per country, one bar each, coloured by what the policy says of the
/// country (allowed, denied, other, unlocated).
pub fn capture_chart(rows: &[super::context::CaptureBytes]) -> String {
    let bar = 18.0;
    let height = 24.0 + bar * rows.len().max(1) as f64;
    let mut out = String::new();
    open(&mut out, height, "bytes sent by the device, per country");
    if rows.is_empty() {
        text(
            &mut out,
            WIDTH / 2.0,
            height / 2.0,
            "middle",
            "no bytes sent",
        );
        out.push_str("</svg>");
        return out;
    }
    let label = 150.0;
    let span = WIDTH - label - RIGHT - 120.0;
    let max = rows.iter().map(|r| r.bytes).max().unwrap_or(1).max(1) as f64;
    for (i, r) in rows.iter().enumerate() {
        let y = 12.0 + bar * i as f64;
        let colour = match r.status {
            "allowed" => verdict_colour(Verdict::Compliant),
            "denied" => verdict_colour(Verdict::Violation),
            "other" => "#ef6c00",
            _ => UNLOCATED,
        };
        let name = match (&r.code, &r.name) {
            (Some(c), Some(n)) => format!("{c} {n}"),
            (Some(c), None) => c.to_string(),
            _ => "unlocated".to_string(),
        };
        let short: String = name.chars().take(22).collect();
        text(&mut out, label - 6.0, y + bar * 0.7, "end", &short);
        let w = (r.bytes as f64 / max * span).max(1.0);
        let _ = write!(
            out,
            "<rect x=\"{label}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
            bar - 4.0
        );
        text(
            &mut out,
            label + w + 6.0,
            y + bar * 0.7,
            "start",
            &format!("{} B ({:.1}%, {})", r.bytes, r.share, r.status),
        );
    }
    out.push_str("</svg>");
    out
}

/// Share of endpoints compliant / inconclusive / violation per run, with a ribbon of the run
/// verdict (the worst in each column) on top.
pub fn compliance_chart(t: &Timeline) -> String {
    let height = 190.0;
    let mut out = String::new();
    open(&mut out, height, "compliance over time");
    if t.points.is_empty() {
        return empty(&mut out, height);
    }
    let cols = buckets(t.points.len());
    let mut layers: Vec<(String, &str, Vec<f64>)> = [
        Verdict::Compliant,
        Verdict::Inconclusive,
        Verdict::Violation,
    ]
    .iter()
    .map(|v| (v.as_str().to_string(), verdict_colour(*v), Vec::new()))
    .collect();
    let mut ribbon = Vec::with_capacity(cols.len());
    for range in &cols {
        let mut sums = [0.0; 3];
        let mut worst = Verdict::Compliant;
        for p in &t.points[range.clone()] {
            worst = worst.max(p.verdict);
            let e = &p.endpoints;
            let n = (e.compliant + e.inconclusive + e.violation).max(1) as f64;
            sums[0] += e.compliant as f64 / n;
            sums[1] += e.inconclusive as f64 / n;
            sums[2] += e.violation as f64 / n;
        }
        let len = range.len().max(1) as f64;
        for (k, layer) in layers.iter_mut().enumerate() {
            layer.2.push(sums[k] / len);
        }
        ribbon.push(worst);
    }
    let plot = WIDTH - LEFT - RIGHT;
    let step = plot / cols.len() as f64;
    text(&mut out, LEFT, 14.0, "start", "run verdict");
    // Run-length encoded so a year of one verdict is one rectangle.
    let mut i = 0;
    while i < ribbon.len() {
        let mut j = i;
        while j + 1 < ribbon.len() && ribbon[j + 1] == ribbon[i] {
            j += 1;
        }
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"20\" width=\"{:.1}\" height=\"12\" fill=\"{}\"/>",
            LEFT + step * i as f64,
            step * (j + 1 - i) as f64,
            verdict_colour(ribbon[i])
        );
        i = j + 1;
    }
    y_axis(&mut out, 44.0, 110.0);
    stacked(&mut out, &layers, cols.len(), 44.0, 110.0);
    x_axis(&mut out, t, 168.0);
    legend(
        &mut out,
        &layers
            .iter()
            .map(|(n, c, _)| (format!("{n} endpoints"), *c))
            .collect::<Vec<_>>(),
        185.0,
    );
    out.push_str("</svg>");
    out
}

/// One row per endpoint (those with most non-compliant points first, at most
/// [`MAX_ENDPOINT_ROWS`]), its verdict spans drawn along the timeline's points.
pub fn endpoint_chart(t: &Timeline) -> String {
    let mut tracks: Vec<(&str, usize, &[Span])> = t
        .endpoints
        .iter()
        .map(|e| {
            let bad = e
                .spans
                .iter()
                .filter(|s| s.verdict != Verdict::Compliant)
                .map(|s| s.last + 1 - s.first)
                .sum();
            (e.host.as_str(), bad, e.spans.as_slice())
        })
        .collect();
    tracks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let hidden = tracks.len().saturating_sub(MAX_ENDPOINT_ROWS);
    tracks.truncate(MAX_ENDPOINT_ROWS);
    let row = 14.0;
    let label_width = 200.0;
    let top = 8.0;
    let height = top + row * tracks.len() as f64 + 40.0;
    let mut out = String::new();
    open(&mut out, height, "endpoint verdicts over time");
    if t.points.is_empty() {
        return empty(&mut out, height);
    }
    let left = label_width + 8.0;
    let step = (WIDTH - left - RIGHT) / t.points.len() as f64;
    for (r, (host, _, spans)) in tracks.iter().enumerate() {
        let y = top + row * r as f64;
        let shown: String = if host.chars().count() > 32 {
            let head: String = host.chars().take(31).collect();
            format!("{head}…")
        } else {
            (*host).to_string()
        };
        let _ = write!(
            out,
            "<text x=\"{label_width:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333333\">{}<title>{}</title></text>",
            y + 10.0,
            xml_escape(&shown),
            xml_escape(host)
        );
        let _ = write!(
            out,
            "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#eeeeee\"/>",
            y + 1.0,
            WIDTH - left - RIGHT,
            row - 2.0
        );
        for s in spans.iter() {
            // At least a third of a pixel, so a single bad run among a year stays visible.
            let _ = write!(
                out,
                "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\"/>",
                left + step * s.first as f64,
                y + 1.0,
                (step * (s.last + 1 - s.first) as f64).max(0.34),
                row - 2.0,
                verdict_colour(s.verdict)
            );
        }
    }
    let base = top + row * tracks.len() as f64;
    if let (Some(first), Some(last)) = (t.points.first(), t.points.last()) {
        text(&mut out, left, base + 14.0, "start", day(&first.at));
        text(&mut out, WIDTH - RIGHT, base + 14.0, "end", day(&last.at));
    }
    let note = if hidden > 0 {
        format!(
            "{hidden} more endpoints not drawn (fewer non-compliant runs); grey: not in that run"
        )
    } else {
        "grey: endpoint not in that run".to_string()
    };
    text(&mut out, left, base + 30.0, "start", &note);
    out.push_str("</svg>");
    out
}

/// Share of distinct addresses per country over time (unlocated ones shown apart), the most
/// common countries by name and the rest as "other".
pub fn country_chart(t: &Timeline) -> String {
    let height = 200.0;
    let mut out = String::new();
    open(&mut out, height, "addresses by country over time");
    if t.points.is_empty() {
        return empty(&mut out, height);
    }
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &t.points {
        for (c, s) in &p.countries {
            *totals.entry(c.as_str()).or_default() += s.count;
        }
    }
    let mut ranked: Vec<(&str, usize)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<&str> = ranked.iter().take(TOP_COUNTRIES).map(|(c, _)| *c).collect();
    let cols = buckets(t.points.len());
    let mut layers: Vec<(String, &str, Vec<f64>)> = top
        .iter()
        .enumerate()
        .map(|(i, c)| ((*c).to_string(), PALETTE[i], Vec::new()))
        .collect();
    layers.push(("other".into(), PALETTE[7], Vec::new()));
    layers.push(("unlocated".into(), UNLOCATED, Vec::new()));
    for range in &cols {
        let mut sums = vec![0.0; layers.len()];
        for p in &t.points[range.clone()] {
            let all = (p.located + p.unlocated).max(1) as f64;
            for (c, s) in &p.countries {
                let k = top.iter().position(|t| t == c).unwrap_or(top.len());
                sums[k] += s.count as f64 / all;
            }
            sums[top.len() + 1] += p.unlocated as f64 / all;
        }
        let len = range.len().max(1) as f64;
        for (k, layer) in layers.iter_mut().enumerate() {
            layer.2.push(sums[k] / len);
        }
    }
    y_axis(&mut out, 10.0, 140.0);
    stacked(&mut out, &layers, cols.len(), 10.0, 140.0);
    x_axis(&mut out, t, 166.0);
    let items: Vec<(String, &str)> = layers
        .iter()
        .filter(|(_, _, v)| v.iter().any(|x| *x > 0.0))
        .map(|(n, c, _)| (n.clone(), *c))
        .collect();
    legend(&mut out, &items, 188.0);
    out.push_str("</svg>");
    out
}

/// One country's place on the map: how many addresses were located there and the worst
/// verdict among them.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPoint {
    pub country: CountryCode,
    pub addresses: usize,
    pub verdict: Verdict,
}

const MAP_HEIGHT: f64 = 340.0;
const MAP_TOP_LAT: f64 = 84.0;
const MAP_SCALE: f64 = WIDTH / 360.0;

fn project(lon: f64, lat: f64) -> (f64, f64) {
    ((lon + 180.0) * MAP_SCALE, (MAP_TOP_LAT - lat) * MAP_SCALE)
}

/// Every country's outline as an SVG path, drawn once per process: rounded to half-pixels,
/// repeated points and rings smaller than a pixel dropped, which takes the 1:50m shapes from
/// about a megabyte to a size worth inlining.
fn base_paths() -> &'static [(CountryCode, String, String)] {
    static PATHS: OnceLock<Vec<(CountryCode, String, String)>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let Ok(countries) = Countries::shipped() else {
            return Vec::new();
        };
        countries
            .codes()
            .map(|cc| {
                let mut d = String::new();
                for ring in countries.outline(cc) {
                    let past_antimeridian = ring.iter().any(|(lon, _)| *lon > 180.0);
                    ring_path(&mut d, ring, 0.0);
                    if past_antimeridian {
                        ring_path(&mut d, ring, -360.0);
                    }
                }
                let name = countries.name(cc).unwrap_or("").to_string();
                (cc, name, d)
            })
            .filter(|(_, _, d)| !d.is_empty())
            .collect()
    })
}

fn ring_path(d: &mut String, ring: &[(f64, f64)], shift: f64) {
    // Half-pixel grid, as integers, so each step is a short relative move.
    let pts: Vec<(i64, i64)> = ring
        .iter()
        .map(|(lon, lat)| {
            let (x, y) = project(lon + shift, *lat);
            ((x * 2.0).round() as i64, (y * 2.0).round() as i64)
        })
        .collect();
    let mut kept: Vec<(i64, i64)> = Vec::with_capacity(pts.len());
    for p in pts {
        if kept.last() != Some(&p) {
            kept.push(p);
        }
    }
    let (min_x, max_x) = kept
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (min_y, max_y) = kept
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if kept.len() < 4 || (max_x - min_x < 2 && max_y - min_y < 2) {
        return;
    }
    let mut prev = kept[0];
    let _ = write!(d, "M{} {}", prev.0, prev.1);
    for p in &kept[1..] {
        let _ = write!(d, "l{} {}", p.0 - prev.0, p.1 - prev.1);
        prev = *p;
    }
    d.push('z');
}

/// A vantage point on the map: a black diamond, labelled when there are several.
#[derive(Debug, Clone, PartialEq)]
pub struct MapVantage {
    pub latitude: f64,
    pub longitude: f64,
    pub label: String,
}

/// An RTT disk on the map: every point within `radius_km` of a vantage (a combined run's).
#[derive(Debug, Clone, PartialEq)]
pub struct MapDisk {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
    /// What it bounds, for the tooltip: `203.0.113.10 from delhi, 10.5 ms`.
    pub title: String,
    pub verdict: Verdict,
}

/// Most RTT disks drawn on one map: beyond that the map is a scribble, and the tables hold
/// every disk anyway.
const MAX_MAP_DISKS: usize = 24;

/// The run's vantage point, or a combined run's vantage points.
pub fn map_vantages(doc: &crate::record::RunDocument) -> Vec<MapVantage> {
    if doc.is_combined() {
        return doc
            .vantages
            .iter()
            .filter_map(|v| {
                Some(MapVantage {
                    latitude: v.latitude?,
                    longitude: v.longitude?,
                    label: v.label.clone(),
                })
            })
            .collect();
    }
    doc.vantage
        .iter()
        .map(|v| MapVantage {
            latitude: v.latitude,
            longitude: v.longitude,
            label: "vantage point".into(),
        })
        .collect()
}

/// A combined run's RTT disks, anycast addresses first (theirs are the disks that matter).
pub fn map_disks(doc: &crate::record::RunDocument) -> Vec<MapDisk> {
    let mut addresses: Vec<&crate::record::AddressResult> =
        doc.endpoints.iter().flat_map(|e| &e.addresses).collect();
    addresses.sort_by_key(|a| a.anycast != Some(true));
    addresses
        .into_iter()
        .flat_map(|a| {
            a.measured_from.iter().filter_map(move |m| {
                Some(MapDisk {
                    latitude: m.latitude?,
                    longitude: m.longitude?,
                    radius_km: m.max_km?,
                    title: format!(
                        "{} from {}: {:.2} ms, within {:.0} km",
                        a.ip,
                        m.vantage,
                        m.min_rtt_ms.unwrap_or(f64::NAN),
                        m.max_km.unwrap_or(f64::NAN)
                    ),
                    verdict: a.verdict,
                })
            })
        })
        .take(MAX_MAP_DISKS)
        .collect()
}

/// The point `km` from `(lat, lon)` along `bearing` (radians), on the sphere.
fn destination(lat: f64, lon: f64, bearing: f64, km: f64) -> (f64, f64) {
    let d = km / crate::sources::physics::EARTH_RADIUS_KM;
    let (lat1, lon1) = (lat.to_radians(), lon.to_radians());
    let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos()).asin();
    let lon2 =
        lon1 + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
    let lon2 = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (lat2.to_degrees(), lon2)
}

/// A disk's outline as an SVG path: 72 points along the geodesic circle, the pen lifted where
/// the outline crosses the antimeridian (so it never streaks across the map).
fn disk_path(disk: &MapDisk) -> String {
    let mut d = String::new();
    let mut last_x: Option<f64> = None;
    for i in 0..=72 {
        let bearing = f64::from(i) * std::f64::consts::TAU / 72.0;
        let (lat, lon) = destination(disk.latitude, disk.longitude, bearing, disk.radius_km);
        let (x, y) = project(lon, lat.clamp(-MAP_TOP_LAT, MAP_TOP_LAT));
        let jump = last_x.is_none_or(|lx| (x - lx).abs() > WIDTH / 2.0);
        let _ = write!(d, "{}{x:.1} {y:.1}", if jump { "M" } else { "L" });
        last_x = Some(x);
    }
    d
}

/// The world (equirectangular, 84°N to about 77°S) with allowed countries tinted green,
/// denied ones red, a circle per country where addresses were located (area by count, colour
/// by the worst verdict there), the vantage points as black diamonds and, for a combined run,
/// the RTT disks that placed its addresses.
pub fn world_map(
    points: &[MapPoint],
    allow: &[CountryCode],
    deny: &[CountryCode],
    vantages: &[MapVantage],
    disks: &[MapDisk],
) -> String {
    let mut out = String::new();
    let height = MAP_HEIGHT + 24.0;
    open(&mut out, height, "where the addresses were located");
    let _ = write!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{MAP_HEIGHT}\" fill=\"#eef4f8\"/>"
    );
    let _ = write!(
        out,
        "<g transform=\"scale(0.5)\" stroke=\"#ffffff\" stroke-width=\"0.8\" stroke-linejoin=\"round\">"
    );
    for (cc, name, d) in base_paths() {
        let fill = if deny.contains(cc) {
            "#f4c7c3"
        } else if allow.contains(cc) {
            "#cde6c5"
        } else {
            "#d9d9d9"
        };
        let _ = write!(
            out,
            "<path d=\"{d}\" fill=\"{fill}\" fill-rule=\"evenodd\"><title>{} {}</title></path>",
            cc,
            xml_escape(name)
        );
    }
    out.push_str("</g>");
    for disk in disks.iter().filter(|d| d.radius_km.is_finite()) {
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1\" stroke-dasharray=\"4 3\"><title>{}</title></path>",
            disk_path(disk),
            verdict_colour(disk.verdict),
            xml_escape(&disk.title)
        );
    }
    let countries = Countries::shipped().ok();
    let max = points.iter().map(|p| p.addresses).max().unwrap_or(1).max(1) as f64;
    let mut sorted: Vec<&MapPoint> = points.iter().collect();
    // Big circles first, so small ones stay visible on top.
    sorted.sort_by(|a, b| {
        b.addresses
            .cmp(&a.addresses)
            .then(a.country.cmp(&b.country))
    });
    for p in sorted {
        let Some((lat, lon)) = countries.and_then(|c| c.representative_point(p.country)) else {
            continue;
        };
        let (x, y) = project(lon, lat);
        let r = 4.0 + 10.0 * (p.addresses as f64 / max).sqrt();
        let _ = write!(
            out,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"#ffffff\" stroke-width=\"1\"><title>{}: {} addresses, {}</title></circle>",
            verdict_colour(p.verdict),
            p.country,
            p.addresses,
            p.verdict
        );
        text(&mut out, x, y - r - 2.0, "middle", p.country.as_str());
    }
    for v in vantages {
        let (x, y) = project(v.longitude, v.latitude);
        let _ = write!(
            out,
            "<path d=\"M{x:.1} {:.1}l5 6l-5 6l-5 -6z\" fill=\"#000000\"><title>vantage point {}</title></path>",
            y - 6.0,
            xml_escape(&v.label)
        );
        if vantages.len() > 1 {
            text(&mut out, x + 7.0, y + 4.0, "start", &v.label);
        }
    }
    legend(
        &mut out,
        &[
            ("allowed".to_string(), "#cde6c5"),
            ("denied".to_string(), "#f4c7c3"),
            ("compliant".to_string(), verdict_colour(Verdict::Compliant)),
            (
                "inconclusive".to_string(),
                verdict_colour(Verdict::Inconclusive),
            ),
            ("violation".to_string(), verdict_colour(Verdict::Violation)),
            ("vantage ◆".to_string(), "#000000"),
        ],
        MAP_HEIGHT + 17.0,
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            xml_escape("<script>&\"'\u{1}"),
            "&lt;script&gt;&amp;&quot;&#39;\u{FFFD}"
        );
    }

    #[test]
    fn a_disk_across_the_antimeridian_lifts_the_pen() {
        let disk = MapDisk {
            latitude: 0.0,
            longitude: 179.0,
            radius_km: 500.0,
            title: String::new(),
            verdict: Verdict::Compliant,
        };
        let d = disk_path(&disk);
        assert_eq!(d.matches('M').count(), 3, "{d}");
        // 500 km east of the equator at 179°E is past the antimeridian, near -176.5°.
        let (lat, lon) = destination(0.0, 179.0, std::f64::consts::FRAC_PI_2, 500.0);
        assert!(lat.abs() < 1e-9 && (lon + 176.5).abs() < 0.1, "{lat} {lon}");
    }

    #[test]
    fn buckets_cover_every_run_once() {
        for n in [1, 7, 180, 181, 1460] {
            let b = buckets(n);
            assert!(b.len() <= MAX_COLUMNS);
            assert_eq!(b.first().map(|r| r.start), Some(0));
            assert_eq!(b.last().map(|r| r.end), Some(n));
            assert!(
                b.windows(2)
                    .all(|w| w[0].end == w[1].start && !w[1].is_empty())
            );
        }
    }

    #[test]
    fn the_map_draws_every_shipped_country_it_can_and_stays_small() {
        let in_: CountryCode = "IN".parse().expect("IN");
        let svg = world_map(
            &[MapPoint {
                country: in_,
                addresses: 3,
                verdict: Verdict::Compliant,
            }],
            &[in_],
            &[],
            &[MapVantage {
                latitude: 28.6,
                longitude: 77.2,
                label: "delhi".into(),
            }],
            &[MapDisk {
                latitude: 28.6,
                longitude: 77.2,
                radius_km: 1100.0,
                title: "192.0.2.1 from delhi".into(),
                verdict: Verdict::Compliant,
            }],
        );
        assert!(svg.contains("stroke-dasharray"), "the disk is drawn");
        // Microstates smaller than a pixel are left out; every country of any size is drawn.
        assert!(base_paths().len() > 190, "{}", base_paths().len());
        assert!(svg.contains("<circle"));
        assert!(svg.len() < 600_000, "{} bytes", svg.len());
    }
}
