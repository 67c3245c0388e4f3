//! `history verify --report FILE` reads the provenance markers out of any file a user hands it
//! (an edited report, a PDF, anything): finding and parsing them must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use residency::report::provenance::{Marker, find_markers};

fuzz_target!(|data: &[u8]| {
    for text in find_markers(data) {
        let _ = Marker::parse(&text);
    }
    let _ = Marker::parse(&String::from_utf8_lossy(data));
});
