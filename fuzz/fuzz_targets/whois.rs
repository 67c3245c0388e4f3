//! Port-43 answers are free text from a server we do not control: the record and the referral
//! must be read from any bytes without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let (record, referral) =
        residency::sources::registry::parse_whois_answer("whois.example:43", &body);
    if let Ok(record) = record {
        let _ = serde_json::to_string(&record);
    }
    let _ = referral;
});
