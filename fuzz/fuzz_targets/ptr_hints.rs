//! Reverse-DNS names are written by whoever runs the address: any text at all. Hints and the
//! evidence made of them must come out of any name without a panic, and name only known places.
#![no_main]

use libfuzzer_sys::fuzz_target;
use residency::sources::ptr::{hints_from_name, ptr_evidence};

fuzz_target!(|data: &[u8]| {
    // A DNS name is at most 255 bytes; longer inputs (the corpus seeds are whole files) are cut.
    let name = String::from_utf8_lossy(&data[..data.len().min(255)]);
    for hint in hints_from_name(&name) {
        let _ = format!("{hint:?}");
    }
    let ip = std::net::IpAddr::from([192, 0, 2, 1]);
    for evidence in ptr_evidence(ip, &[name.into_owned()]) {
        assert!(
            evidence.country.is_some(),
            "a hint evidence names its country"
        );
    }
});
