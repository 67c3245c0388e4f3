//! The shipped country shapes (`data/countries.json`, see `data/README.md`) and the spherical
//! geometry over them: whether a point lies in a country, how far a point is from one, and
//! which countries lie within a distance. Decoding validates the file and never panics.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{ClaimCheck, EARTH_RADIUS_KM, RttBound, Vantage, format_km, format_ms};
use crate::model::CountryCode;

/// Edges longer than this are split before distances are measured, in km. Natural Earth's
/// edges are straight in longitude/latitude while distances are measured along great circles;
/// over 10 km the two differ by metres, so splitting makes point-to-edge distances exact to
/// well under a km (long edges, such as the 49th parallel, would otherwise bulge by tens of
/// km).
const DENSIFY_KM: f64 = 10.0;

/// Segments per pruning chunk: small enough that a chunk's bounding cap is tight, large
/// enough that a country has few chunks.
const CHUNK_SEGMENTS: usize = 32;

/// Why the embedded country data could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country shape data is unusable: {0}")]
pub struct CountriesError(String);

/// A unit vector: a point on the sphere, for distances without trigonometry per segment.
type V3 = [f64; 3];

fn to_v3(lat_deg: f64, lon_deg: f64) -> V3 {
    let (lat, lon) = (lat_deg.to_radians(), lon_deg.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}

/// Angle between two unit vectors in radians (atan2 form: accurate for tiny angles too).
fn angle(a: V3, b: V3) -> f64 {
    norm(cross(a, b)).atan2(dot(a, b))
}

/// Angular distance from `p` to the short great-circle arc from `a` to `b`.
fn segment_angle(p: V3, a: V3, b: V3) -> f64 {
    let n = cross(a, b);
    let len = norm(n);
    if len < 1e-15 {
        return angle(p, a);
    }
    let n = [n[0] / len, n[1] / len, n[2] / len];
    let pn = dot(p, n);
    // The foot of the perpendicular from p onto the arc's great circle; it is on the arc when
    // it lies between a and b (on the same side of both ends, seen along the normal).
    let c = [p[0] - n[0] * pn, p[1] - n[1] * pn, p[2] - n[2] * pn];
    if norm(c) > 1e-15 && dot(cross(a, c), n) >= 0.0 && dot(cross(c, b), n) >= 0.0 {
        pn.abs().min(1.0).asin()
    } else {
        angle(p, a).min(angle(p, b))
    }
}

/// A spherical cap: every point within `radius` (radians) of `center`. The lower bound
/// `angle(p, center) - radius` on the distance from `p` to anything inside follows from the
/// triangle inequality, which is what makes pruning exact.
#[derive(Debug, Clone, Copy)]
struct Cap {
    center: V3,
    radius: f64,
}

impl Cap {
    fn around(points: &[V3]) -> Cap {
        let mut sum = [0.0; 3];
        for p in points {
            sum = [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]];
        }
        let len = norm(sum);
        let center = if len > 1e-12 {
            [sum[0] / len, sum[1] / len, sum[2] / len]
        } else {
            points.first().copied().unwrap_or([0.0, 0.0, 1.0])
        };
        let radius = points.iter().map(|&p| angle(center, p)).fold(0.0, f64::max);
        // A hair more, so rounding never makes the bound cut off a real distance.
        Cap {
            center,
            radius: radius + 1e-9,
        }
    }

    fn lower_bound(&self, p: V3) -> f64 {
        (angle(p, self.center) - self.radius).max(0.0)
    }
}

/// A ring: its vertices (longitude, latitude; longitude unwrapped, so it can run past 180) for
/// point-in-polygon tests, and the densified boundary as unit vectors for distances.
#[derive(Debug)]
struct Ring {
    lonlat: Vec<(f64, f64)>,
    dense: Vec<V3>,
    /// Caps over runs of `CHUNK_SEGMENTS` segments of `dense`: (first index, last index, cap).
    chunks: Vec<(usize, usize, Cap)>,
}

impl Ring {
    fn new(lonlat: Vec<(f64, f64)>) -> Ring {
        let mut dense = Vec::with_capacity(lonlat.len());
        for pair in lonlat.windows(2) {
            let ((lon0, lat0), (lon1, lat1)) = (pair[0], pair[1]);
            // Length of the edge as drawn (straight in lon/lat); 0 for an edge along a pole.
            let mid_cos = ((lat0 + lat1) / 2.0).to_radians().cos();
            let deg = ((lat1 - lat0).powi(2) + ((lon1 - lon0) * mid_cos).powi(2)).sqrt();
            let km = deg.to_radians() * EARTH_RADIUS_KM;
            let steps = (km / DENSIFY_KM).ceil().max(1.0) as usize;
            for i in 0..steps {
                let t = i as f64 / steps as f64;
                dense.push(to_v3(lat0 + (lat1 - lat0) * t, lon0 + (lon1 - lon0) * t));
            }
        }
        if let Some(&(lon, lat)) = lonlat.last() {
            dense.push(to_v3(lat, lon));
        }
        let mut chunks = Vec::new();
        let mut start = 0;
        while start + 1 < dense.len() {
            let end = (start + CHUNK_SEGMENTS).min(dense.len() - 1);
            chunks.push((start, end, Cap::around(&dense[start..=end])));
            start = end;
        }
        Ring {
            lonlat,
            dense,
            chunks,
        }
    }

    /// Even-odd crossing test at planar `(lon, lat)`.
    fn crossings(&self, lon: f64, lat: f64) -> bool {
        let mut inside = false;
        for pair in self.lonlat.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if (y0 > lat) != (y1 > lat) && lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0) {
                inside = !inside;
            }
        }
        inside
    }
}

#[derive(Debug)]
struct Polygon {
    /// Outer ring first, then holes.
    rings: Vec<Ring>,
    /// Planar box of the outer ring: (west, south, east, north), east possibly past 180.
    bbox: (f64, f64, f64, f64),
    cap: Cap,
}

impl Polygon {
    fn contains(&self, lat: f64, lon: f64) -> bool {
        // Rings are unwrapped to start in [-180, 180) and may run past 180, so a point also
        // has to be tried one turn east.
        [lon, lon + 360.0].iter().any(|&x| {
            let (w, s, e, n) = self.bbox;
            (w..=e).contains(&x)
                && (s..=n).contains(&lat)
                && self
                    .rings
                    .iter()
                    .fold(false, |inside, r| inside ^ r.crossings(x, lat))
        })
    }

    /// Smallest angle from `p` to the boundary, if less than `best` (else `best`).
    fn boundary_angle(&self, p: V3, mut best: f64) -> f64 {
        if self.cap.lower_bound(p) >= best {
            return best;
        }
        for ring in &self.rings {
            for &(start, end, cap) in &ring.chunks {
                if cap.lower_bound(p) >= best {
                    continue;
                }
                for i in start..end {
                    best = best.min(segment_angle(p, ring.dense[i], ring.dense[i + 1]));
                }
            }
        }
        best
    }
}

#[derive(Debug)]
struct Country {
    code: CountryCode,
    name: String,
    /// (west, south, east, north) in degrees; west > east when it crosses the antimeridian.
    bbox: [f64; 4],
    /// (latitude, longitude).
    point: (f64, f64),
    polygons: Vec<Polygon>,
    cap: Cap,
    /// Rough area in square degrees scaled by cos(latitude): only to prefer the more
    /// specific of two overlapping codes (GF over FR).
    area: f64,
}

impl Country {
    fn contains(&self, lat: f64, lon: f64) -> bool {
        self.polygons.iter().any(|p| p.contains(lat, lon))
    }

    /// Distance in radians, 0 if inside; `None` if it is certainly not below `limit`.
    fn angle_within(&self, lat: f64, lon: f64, p: V3, limit: f64) -> Option<f64> {
        if self.cap.lower_bound(p) > limit {
            return None;
        }
        if self.contains(lat, lon) {
            return Some(0.0);
        }
        // Start just above the limit so pruning works and a miss is recognisable.
        let start = limit.next_up();
        let best = self
            .polygons
            .iter()
            .fold(start, |best, poly| poly.boundary_angle(p, best));
        (best <= limit).then_some(best)
    }
}

/// The shipped country shapes (Natural Earth 1:50m, see `data/README.md`), with
/// point-in-country and point-to-country distance queries.
#[derive(Debug)]
pub struct Countries {
    countries: Vec<Country>,
    index: HashMap<CountryCode, usize>,
}

/// The embedded data file.
const SHIPPED_JSON: &str = include_str!("../../../data/countries.json");

/// The shipped shapes' size in bytes, for `data status`.
pub const COUNTRIES_SIZE: usize = SHIPPED_JSON.len();

#[derive(Deserialize)]
struct RawFile {
    format: u32,
    unit: f64,
    countries: Vec<RawCountry>,
}

#[derive(Deserialize)]
struct RawCountry {
    code: String,
    name: String,
    bbox: [f64; 4],
    point: [f64; 2],
    polygons: Vec<Vec<Vec<i64>>>,
}

impl Countries {
    /// The shapes embedded in the binary, parsed once. An error means the embedded file is
    /// corrupt (a build problem; a test checks it parses).
    pub fn shipped() -> Result<&'static Countries, CountriesError> {
        static SHIPPED: OnceLock<Result<Countries, CountriesError>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| Countries::from_json(SHIPPED_JSON))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses data in the format of `data/countries.json` (see `data/tools/countries.py`).
    pub fn from_json(json: &str) -> Result<Countries, CountriesError> {
        let raw: RawFile = serde_json::from_str(json).map_err(|e| CountriesError(e.to_string()))?;
        if raw.format != 1 {
            return Err(CountriesError(format!(
                "format {} (this build reads format 1)",
                raw.format
            )));
        }
        if !(raw.unit > 0.0 && raw.unit.is_finite()) {
            return Err(CountriesError(format!("unit {} is not positive", raw.unit)));
        }
        let mut countries = Vec::with_capacity(raw.countries.len());
        let mut index = HashMap::new();
        for rc in raw.countries {
            let code: CountryCode = rc
                .code
                .parse()
                .map_err(|e| CountriesError(format!("{e}")))?;
            let country = build_country(code, rc, raw.unit)?;
            if index.insert(code, countries.len()).is_some() {
                return Err(CountriesError(format!("{code} appears twice")));
            }
            countries.push(country);
        }
        Ok(Countries { countries, index })
    }

    fn get(&self, cc: CountryCode) -> Option<&Country> {
        self.index.get(&cc).map(|&i| &self.countries[i])
    }

    /// Every code with a shape, in code order.
    pub fn codes(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.countries.iter().map(|c| c.code)
    }

    /// English name, e.g. "India".
    pub fn name(&self, cc: CountryCode) -> Option<&str> {
        self.get(cc).map(|c| c.name.as_str())
    }

    /// A `(latitude, longitude)` inside the country's largest polygon.
    pub fn representative_point(&self, cc: CountryCode) -> Option<(f64, f64)> {
        self.get(cc).map(|c| c.point)
    }

    /// `[west, south, east, north]` in degrees; west > east when the box crosses the
    /// antimeridian (as in GeoJSON).
    pub fn bbox(&self, cc: CountryCode) -> Option<[f64; 4]> {
        self.get(cc).map(|c| c.bbox)
    }

    /// The country's rings as `(longitude, latitude)` vertices, each polygon's outer ring
    /// first and then its holes, for drawing maps. Longitudes are unwrapped: a ring that crosses
    /// the antimeridian runs past 180 rather than jumping back to -180.
    pub fn outline(&self, cc: CountryCode) -> Vec<&[(f64, f64)]> {
        self.get(cc)
            .map(|c| {
                c.polygons
                    .iter()
                    .flat_map(|p| p.rings.iter().map(|r| r.lonlat.as_slice()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of polygons (islands, exclaves) in the country's shape.
    pub fn polygon_count(&self, cc: CountryCode) -> Option<usize> {
        self.get(cc).map(|c| c.polygons.len())
    }

    /// Is the `(latitude, longitude)` point inside the country (holes, such as Lesotho in
    /// South Africa, are outside)? False for a code without a shape.
    pub fn contains(&self, cc: CountryCode, point: (f64, f64)) -> bool {
        let (lat, lon) = normalise(point);
        self.get(cc).is_some_and(|c| c.contains(lat, lon))
    }

    /// 0 if the point is inside the country, else the great-circle distance in km to its
    /// nearest boundary point. `None` for a code without a shape.
    pub fn distance_km(&self, point: (f64, f64), cc: CountryCode) -> Option<f64> {
        let (lat, lon) = normalise(point);
        let p = to_v3(lat, lon);
        self.get(cc)
            .and_then(|c| c.angle_within(lat, lon, p, std::f64::consts::PI))
            .map(|a| a * EARTH_RADIUS_KM)
    }

    /// Is some point of the country within `km` of the point (0 inside it)? False for a code
    /// without a shape. Prunes like [`Countries::within`], for one country.
    pub fn is_within(&self, cc: CountryCode, point: (f64, f64), km: f64) -> bool {
        let (lat, lon) = normalise(point);
        let limit = (km / EARTH_RADIUS_KM).min(std::f64::consts::PI);
        self.get(cc)
            .is_some_and(|c| c.angle_within(lat, lon, to_v3(lat, lon), limit).is_some())
    }

    /// Every country whose nearest point is within `km` of the point, nearest first (ties by
    /// code).
    ///
    /// Called for every address of a run, so it prunes: a country, each of its polygons and
    /// each run of 32 boundary segments carries a bounding cap (centre and angular radius),
    /// and anything whose cap is farther than `km` (or than the best distance found so far)
    /// is skipped. Caps rather than longitude/latitude boxes because a cap gives an exact lower
    /// bound on great-circle distance by the triangle inequality, also across the antimeridian
    /// and near the poles, where a box does not; the boxes are used for point-in-polygon.
    pub fn within(&self, point: (f64, f64), km: f64) -> Vec<(CountryCode, f64)> {
        let (lat, lon) = normalise(point);
        let p = to_v3(lat, lon);
        let limit = (km / EARTH_RADIUS_KM).min(std::f64::consts::PI);
        let mut out: Vec<(CountryCode, f64)> = self
            .countries
            .iter()
            .filter_map(|c| {
                c.angle_within(lat, lon, p, limit)
                    .map(|a| (c.code, a * EARTH_RADIUS_KM))
            })
            .collect();
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The country the point is in; where codes overlap (French Guiana is in `FR` and `GF`)
    /// the smaller, more specific one. `None` at sea or on a coast the 1:50m shapes leave out.
    pub fn locate_point(&self, point: (f64, f64)) -> Option<CountryCode> {
        let (lat, lon) = normalise(point);
        self.countries
            .iter()
            .filter(|c| c.contains(lat, lon))
            .min_by(|a, b| a.area.total_cmp(&b.area))
            .map(|c| c.code)
    }

    /// [`check_country_claim`] against these shapes.
    pub fn check_country_claim(
        &self,
        vantage: &Vantage,
        bound: &RttBound,
        cc: CountryCode,
    ) -> ClaimCheck {
        let Some(distance_km) = self.distance_km(vantage.point(), cc) else {
            return ClaimCheck::Unchecked {
                explanation: format!("no shape for {cc} in the shipped country data"),
            };
        };
        if distance_km <= bound.max_km {
            return ClaimCheck::Possible { distance_km };
        }
        ClaimCheck::Refuted {
            distance_km,
            max_km: bound.max_km,
            explanation: format!(
                "{cc} is at least {} km from the vantage point ({vantage}); {} ms RTT allows at most {} km",
                format_km(distance_km.floor()),
                format_ms(bound.min_rtt_ms),
                format_km(bound.max_km)
            ),
        }
    }
}

/// Longitude into [-180, 180), latitude clamped: callers may pass 180 or a wrapped value.
fn normalise((lat, lon): (f64, f64)) -> (f64, f64) {
    (
        lat.clamp(-90.0, 90.0),
        (lon + 180.0).rem_euclid(360.0) - 180.0,
    )
}

fn build_country(code: CountryCode, rc: RawCountry, unit: f64) -> Result<Country, CountriesError> {
    if rc.polygons.is_empty() {
        return Err(CountriesError(format!("{code} has no polygons")));
    }
    let mut polygons = Vec::with_capacity(rc.polygons.len());
    let mut area = 0.0;
    for raw_poly in rc.polygons {
        let mut rings = Vec::with_capacity(raw_poly.len());
        for flat in raw_poly {
            rings.push(Ring::new(decode_ring(code, &flat, unit)?));
        }
        let Some(outer) = rings.first() else {
            return Err(CountriesError(format!(
                "{code} has a polygon without rings"
            )));
        };
        let mut bbox = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(x, y) in &outer.lonlat {
            bbox = (bbox.0.min(x), bbox.1.min(y), bbox.2.max(x), bbox.3.max(y));
        }
        area += planar_area(&outer.lonlat) * ((bbox.1 + bbox.3) / 2.0).to_radians().cos();
        // Holes lie inside the outer ring, so its cap holds the whole boundary.
        let cap = Cap::around(&outer.dense);
        polygons.push(Polygon { rings, bbox, cap });
    }
    let centers: Vec<V3> = polygons.iter().map(|p| p.cap.center).collect();
    let mut cap = Cap::around(&centers);
    // Widen to hold every polygon's cap (triangle inequality).
    cap.radius = polygons
        .iter()
        .map(|p| angle(cap.center, p.cap.center) + p.cap.radius)
        .fold(0.0, f64::max)
        + 1e-9;
    Ok(Country {
        code,
        name: rc.name,
        bbox: rc.bbox,
        point: (rc.point[1], rc.point[0]),
        polygons,
        cap,
        area,
    })
}

/// `[lon0, lat0, dlon1, dlat1, ...]` in `unit` degrees → closed ring of (lon, lat).
fn decode_ring(
    code: CountryCode,
    flat: &[i64],
    unit: f64,
) -> Result<Vec<(f64, f64)>, CountriesError> {
    if flat.len() < 8 || !flat.len().is_multiple_of(2) {
        return Err(CountriesError(format!(
            "{code} has a ring of {} numbers (need an even number, at least 4 points)",
            flat.len()
        )));
    }
    let (mut x, mut y) = (0i64, 0i64);
    let mut ring = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        x += pair[0];
        y += pair[1];
        ring.push((x as f64 * unit, y as f64 * unit));
    }
    if ring.first() != ring.last() {
        return Err(CountriesError(format!(
            "{code} has a ring that is not closed"
        )));
    }
    if ring
        .iter()
        .any(|&(lon, lat)| !(-90.0..=90.0).contains(&lat) || !(-180.0..=540.0).contains(&lon))
    {
        return Err(CountriesError(format!("{code} has a vertex off the globe")));
    }
    Ok(ring)
}

/// Shoelace area of a closed ring in square degrees.
fn planar_area(ring: &[(f64, f64)]) -> f64 {
    ring.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        .abs()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::physics::great_circle_km;

    fn cc(s: &str) -> CountryCode {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn segment_distance_uses_the_edge_not_only_its_ends() {
        // A meridian segment from 0°N to 10°N at 0°E; a point at 5°N, 1°E is 1° of longitude
        // (at 5°N) from the segment's middle, far nearer than from either end.
        let a = to_v3(0.0, 0.0);
        let b = to_v3(10.0, 0.0);
        let p = to_v3(5.0, 1.0);
        let km = segment_angle(p, a, b) * EARTH_RADIUS_KM;
        let expected = great_circle_km((5.0, 0.0), (5.0, 1.0));
        assert!((km - expected).abs() < 0.5, "{km} vs {expected}");
        // Beyond the end, the nearest point is the end.
        let q = to_v3(12.0, 0.0);
        let km = segment_angle(q, a, b) * EARTH_RADIUS_KM;
        assert!((km - great_circle_km((12.0, 0.0), (10.0, 0.0))).abs() < 0.01);
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        assert!(Countries::from_json("").is_err());
        assert!(Countries::from_json(r#"{"format":2,"unit":1e-4,"countries":[]}"#).is_err());
        let unclosed = r#"{"format":1,"unit":1,"countries":[{"code":"IN","name":"India",
            "bbox":[0,0,1,1],"point":[0.5,0.5],"polygons":[[[0,0,1,0,0,1,-1,0]]]}]}"#;
        let err = Countries::from_json(unclosed).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("not closed")));
        let bad_code = r#"{"format":1,"unit":1,"countries":[{"code":"UK","name":"x",
            "bbox":[0,0,1,1],"point":[0.5,0.5],"polygons":[[[0,0,1,0,0,1,-1,-1]]]}]}"#;
        assert!(Countries::from_json(bad_code).is_err());
    }

    #[test]
    fn tiny_synthetic_square_contains_and_measures() {
        let json = r#"{"format":1,"unit":1,"countries":[{"code":"IN","name":"Square",
            "bbox":[0,0,1,1],"point":[0.5,0.5],"polygons":[[[0,0,1,0,0,1,-1,0,0,-1]]]}]}"#;
        let c = Countries::from_json(json).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.contains(cc("IN"), (0.5, 0.5)));
        assert!(!c.contains(cc("IN"), (1.5, 0.5)));
        let d = c.distance_km((0.5, 2.0), cc("IN")).unwrap_or(f64::NAN);
        let expected = great_circle_km((0.5, 2.0), (0.5, 1.0));
        assert!((d - expected).abs() < 0.5, "{d} vs {expected}");
    }
}
