//! Round-trip-time physics: how far away an address can possibly be.
//!
//! Owns the speed-of-light bound and the geometry behind it: great-circle distance, the
//! maximum distance a minimum RTT allows from the vantage point, and which countries lie
//! within that distance (from the shipped country shapes, `shapes.rs`).
//! It judges single claims ("this address is in US", "the database says Mumbai") against one
//! measured minimum RTT; combining claims into a verdict is `verdict`'s job.
//!
//! Points are `(latitude, longitude)` in degrees throughout, as in [`great_circle_km`].

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Coordinates, CountryCode};

/// Mean Earth radius (IUGG), in km. The sphere is off from the ellipsoid by at most about
/// 0.5 %, far below what the RTT bound can resolve.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Distance each millisecond of round-trip time allows, in km.
///
/// Light in optical fibre travels at about c / 1.47 ≈ 204 km per ms, which we round down to
/// 2/3 c = 200 km per ms one way; a round trip covers the distance twice, so each ms of RTT
/// allows at most 100 km between the vantage point and the address. Rounding down makes
/// the bound larger, i.e. more lenient (nothing can go faster, and real paths are longer
/// than great circles).
pub const KM_PER_MS_RTT: f64 = 100.0;

/// Slack added to every RTT bound, in km.
///
/// It covers the vantage point's own position uncertainty (a city-level coordinate for a
/// machine somewhere in a metro area), coordinate rounding, and the generalisation of the
/// country shapes (1:50m coasts and borders can be off by a few km). It is only ever added:
/// queueing, processing and indirect routing make a measured RTT *larger* than the
/// light-speed minimum, never smaller, so they only make the bound more lenient and need no
/// slack in the other direction.
pub const SLACK_KM: f64 = 50.0;

/// How far outside its declared country a vantage point may be before it is rejected, in km:
/// coast and border generalisation at 1:50m, and a vantage point on a small island that the
/// shapes leave out.
pub const VANTAGE_TOLERANCE_KM: f64 = 50.0;

/// Great-circle distance between two `(latitude, longitude)` points in degrees, in km
/// (haversine on a sphere of radius [`EARTH_RADIUS_KM`]).
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// What the speed of light allows for an address, seen from the vantage point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reach {
    pub min_rtt_ms: f64,
    /// The farthest the address can be from the vantage point.
    pub max_km: f64,
    /// Every country with territory within `max_km` of the vantage point.
    pub countries: BTreeSet<CountryCode>,
    /// Set when the bound comes from named vantage points (`combine`): the phrase that says
    /// where, after the address ("lies where the RTT disks from a and b overlap"); `countries`
    /// are then those where every disk overlaps (multilateration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}

/// The farthest an address can be from the vantage point, given the minimum RTT to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttBound {
    pub min_rtt_ms: f64,
    /// `min_rtt_ms × KM_PER_MS_RTT + SLACK_KM`.
    pub max_km: f64,
}

impl RttBound {
    /// The bound for a measured minimum RTT in ms. A negative or non-finite RTT is a
    /// measurement bug, not a measurement: it bounds nothing (`max_km` is infinite), so it can
    /// never refute a claim.
    pub fn from_rtt(min_rtt_ms: f64) -> RttBound {
        let max_km = if min_rtt_ms.is_finite() && min_rtt_ms >= 0.0 {
            min_rtt_ms * KM_PER_MS_RTT + SLACK_KM
        } else {
            f64::INFINITY
        };
        RttBound { min_rtt_ms, max_km }
    }
}

/// Where RTTs are measured from: a machine whose location the user declares.
///
/// Deserialising validates it (see [`Vantage::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VantageFields")]
pub struct Vantage {
    pub country: CountryCode,
    pub latitude: f64,
    pub longitude: f64,
    /// How far the point may be from where the vantage really is, in km, beyond what
    /// [`SLACK_KM`] covers: 0 for a declared point, [`VOTED_UNCERTAINTY_KM`] for one voted from
    /// geolocation databases. Every bound from this vantage grows by it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uncertainty_km: f64,
}

fn is_zero(km: &f64) -> bool {
    *km == 0.0
}

/// The extra radius of a vantage point placed by a vote of geolocation databases (Globalping's
/// probes): city-level database answers are often off by a metro area and sometimes by a
/// region, and a bound from a misplaced vantage is wrong, so 250 km is added to each.
pub const VOTED_UNCERTAINTY_KM: f64 = 250.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VantageFields {
    country: CountryCode,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    uncertainty_km: f64,
}

impl TryFrom<VantageFields> for Vantage {
    type Error = VantageError;

    fn try_from(f: VantageFields) -> Result<Self, Self::Error> {
        let v = Vantage::new(f.country, f.latitude, f.longitude)?;
        Ok(v.with_uncertainty(f.uncertainty_km))
    }
}

/// Why a vantage point is not acceptable; every message says what is wrong with numbers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VantageError {
    #[error("vantage latitude {0} is not between -90 and 90 degrees")]
    Latitude(f64),
    #[error("vantage longitude {0} is not between -180 and 180 degrees")]
    Longitude(f64),
    #[error(
        "vantage point ({latitude}, {longitude}) is {} km from {country}, not in it \
         (at most {} km is tolerated){hint}",
        format_km(*distance_km),
        format_km(VANTAGE_TOLERANCE_KM),
        hint = if *swapped_fits { "; with latitude and longitude swapped it would be: check their order" } else { "" }
    )]
    NotInCountry {
        country: CountryCode,
        latitude: f64,
        longitude: f64,
        distance_km: f64,
        /// The point with latitude and longitude swapped is in the country: a likely typo.
        swapped_fits: bool,
    },
    #[error("cannot check the vantage point: {0}")]
    Data(String),
}

impl Vantage {
    /// A validated vantage point.
    pub fn new(country: CountryCode, latitude: f64, longitude: f64) -> Result<Self, VantageError> {
        let v = Vantage {
            country,
            latitude,
            longitude,
            uncertainty_km: 0.0,
        };
        v.validate()?;
        Ok(v)
    }

    /// The same point, known only to within `km` more (negative or non-finite: 0).
    pub fn with_uncertainty(mut self, km: f64) -> Vantage {
        self.uncertainty_km = if km.is_finite() && km > 0.0 { km } else { 0.0 };
        self
    }

    /// `(latitude, longitude)`.
    pub fn point(&self) -> (f64, f64) {
        (self.latitude, self.longitude)
    }

    /// Checks the ranges, and that the point lies in, or within [`VANTAGE_TOLERANCE_KM`] of,
    /// the declared country's shape: a vantage point in the wrong place would make every
    /// bound measured from it wrong.
    pub fn validate(&self) -> Result<(), VantageError> {
        if !(-90.0..=90.0).contains(&self.latitude) {
            return Err(VantageError::Latitude(self.latitude));
        }
        if !(-180.0..=180.0).contains(&self.longitude) {
            return Err(VantageError::Longitude(self.longitude));
        }
        let countries = Countries::shipped().map_err(|e| VantageError::Data(e.to_string()))?;
        let distance_km = countries
            .distance_km(self.point(), self.country)
            .ok_or_else(|| {
                VantageError::Data(format!("no shape for {} in the shipped data", self.country))
            })?;
        if distance_km > VANTAGE_TOLERANCE_KM {
            let swapped = (self.longitude, self.latitude);
            let swapped_fits = swapped.0.abs() <= 90.0
                && countries
                    .distance_km(swapped, self.country)
                    .is_some_and(|d| d <= VANTAGE_TOLERANCE_KM);
            return Err(VantageError::NotInCountry {
                country: self.country,
                latitude: self.latitude,
                longitude: self.longitude,
                distance_km,
                swapped_fits,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Vantage {
    /// `IN, 28.61, 77.21`: how explanations name the vantage point.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {:.2}, {:.2}",
            self.country, self.latitude, self.longitude
        )
    }
}

/// The answer to "could the address be where it is claimed to be?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ClaimCheck {
    /// Physics allows it; `distance_km` is how far the claim is from the vantage point (0 if
    /// the vantage point is in the claimed country). Not proof that the claim is true.
    Possible { distance_km: f64 },
    /// The claimed place is farther than light in fibre could go and come back in the measured
    /// RTT.
    Refuted {
        distance_km: f64,
        max_km: f64,
        explanation: String,
    },
    /// Nothing could be checked (no shape for the country, unusable coordinates): says why.
    Unchecked { explanation: String },
}

impl ClaimCheck {
    pub fn is_refuted(&self) -> bool {
        matches!(self, ClaimCheck::Refuted { .. })
    }
}

/// Could an address with minimum RTT `bound` from `vantage` be in country `cc`? Refuted when
/// the nearest point of the country is farther than the bound allows.
pub fn check_country_claim(vantage: &Vantage, bound: &RttBound, cc: CountryCode) -> ClaimCheck {
    match Countries::shipped() {
        Ok(countries) => countries.check_country_claim(vantage, bound, cc),
        Err(e) => ClaimCheck::Unchecked {
            explanation: format!("cannot check {cc}: {e}"),
        },
    }
}

/// Could an address with minimum RTT `bound` from `vantage` be at `coords`? Refuted when the
/// distance less the coordinates' own accuracy radius exceeds the bound. `label` names the
/// point in the explanation, e.g. "database says Mumbai".
pub fn check_point_claim(
    vantage: &Vantage,
    bound: &RttBound,
    coords: &Coordinates,
    label: &str,
) -> ClaimCheck {
    let point = (coords.latitude, coords.longitude);
    if !(-90.0..=90.0).contains(&point.0) || !(-180.0..=180.0).contains(&point.1) {
        return ClaimCheck::Unchecked {
            explanation: format!(
                "{label}: coordinates ({}, {}) are not a point on Earth",
                point.0, point.1
            ),
        };
    }
    let distance_km = great_circle_km(vantage.point(), point);
    let accuracy_km = f64::from(coords.accuracy_km.unwrap_or(0));
    if distance_km - accuracy_km <= bound.max_km {
        return ClaimCheck::Possible { distance_km };
    }
    let place = if accuracy_km > 0.0 {
        format!(
            "{label} (accurate to {} km), at least {} km",
            format_km(accuracy_km),
            format_km(distance_km - accuracy_km)
        )
    } else {
        format!("{label}, {} km", format_km(distance_km))
    };
    ClaimCheck::Refuted {
        distance_km,
        max_km: bound.max_km,
        explanation: format!(
            "{place} from the vantage point ({vantage}); {} ms RTT allows at most {} km",
            format_ms(bound.min_rtt_ms),
            format_km(bound.max_km)
        ),
    }
}

/// A whole number of km with thousands separated by commas: `11,250`.
pub fn format_km(km: f64) -> String {
    if !km.is_finite() {
        return if km > 0.0 {
            "unlimited".into()
        } else {
            "?".into()
        };
    }
    let n = km.round().abs() as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if km.round() < 0.0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An RTT for explanations: one decimal (`20.0`), two below 0.1 ms so a small RTT does not
/// print as `0.0`.
pub(crate) fn format_ms(ms: f64) -> String {
    if ms.abs() < 0.1 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

pub mod multilateration;
mod shapes;

pub use shapes::{COUNTRIES_SIZE, Countries, CountriesError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(format_km(0.0), "0");
        assert_eq!(format_km(999.4), "999");
        assert_eq!(format_km(1150.0), "1,150");
        assert_eq!(format_km(11250.0), "11,250");
        assert_eq!(format_km(1_234_567.0), "1,234,567");
        assert_eq!(format_km(f64::INFINITY), "unlimited");
    }

    #[test]
    fn rtt_bound_is_100_km_per_ms_plus_slack() {
        assert_eq!(RttBound::from_rtt(20.0).max_km, 2050.0);
        assert_eq!(RttBound::from_rtt(0.0).max_km, SLACK_KM);
        assert!(RttBound::from_rtt(-1.0).max_km.is_infinite());
        assert!(RttBound::from_rtt(f64::NAN).max_km.is_infinite());
    }
}
