//! A capture comes from a device we do not control and may be cut or damaged anywhere: the
//! pcap/pcapng reader, every layer decoder and the DNS, TLS, HTTP and QUIC readers must take any
//! bytes without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let found = residency::measure::capture::discover_bytes("fuzz.pcap", data);
    let _ = serde_json::to_string(&found);
});
