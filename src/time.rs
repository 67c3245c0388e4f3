//! One place that writes timestamps. Every form is RFC 3339 in UTC with `Z`; they differ in
//! precision, each for a reason, and each is kept exactly because hashes and stored text
//! depend on it:
//!
//! - [`rfc3339`] (milliseconds): inside run documents, which are hashed as written;
//! - [`stored`] (microseconds, fixed width): the history's columns, where text order must be
//!   time order, and everything that shows them so they can be compared by hand;
//! - [`seconds`]: when a report was generated, a human's clock reading.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// The stored (and hashed) form of a timestamp: exactly six fractional digits, e.g.
/// `2025-03-01T09:30:00.000000Z`. Fixed width, so text order is time order, which lets SQLite
/// sort and filter the column as text; years outside 0000-9999 would break that and are refused.
pub fn stored(t: DateTime<Utc>) -> Result<String, String> {
    if !(0..=9999).contains(&t.year()) {
        return Err(format!("timestamp {t} is outside the years 0000-9999"));
    }
    Ok(micros(&t))
}

/// The stored form without the range check, for showing a timestamp read back from the history.
pub fn micros(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Serialises as [`micros`]: a timestamp shown exactly as the history stores it.
pub fn serialize_micros<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&micros(t))
}

/// Serialises as [`micros`], or null.
pub fn serialize_opt_micros<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&micros(t)),
        None => s.serialize_none(),
    }
}

/// Whole seconds, for a reader's clock (a report's generation time).
pub fn seconds(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Timestamps of run documents: millisecond precision, stable text for hashing and reports.
/// Used as `#[serde(with = "crate::time::rfc3339")]`.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_has_its_fixed_precision() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T09:30:00.123456789Z")
            .expect("timestamp")
            .with_timezone(&Utc);
        assert_eq!(rfc3339::format(&t), "2025-03-01T09:30:00.123Z");
        assert_eq!(stored(t).as_deref(), Ok("2025-03-01T09:30:00.123456Z"));
        assert_eq!(seconds(&t), "2025-03-01T09:30:00Z");
    }
}
