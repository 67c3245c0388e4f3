//! RDAP answers are JSON from a server we do not control: any body must be read into a record
//! or refused with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let url = reqwest::Url::parse("https://rdap.example/ip/192.0.2.1").expect("a fixed URL");
    if let Ok(record) = residency::sources::registry::parse_rdap_ip_answer(&url, &body) {
        let _ = serde_json::to_string(&record);
    }
});
