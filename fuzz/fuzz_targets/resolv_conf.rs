//! `/etc/resolv.conf` (or a `--resolvers-file`) may hold anything: it must give resolvers or an
//! error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = residency::measure::resolve::resolvers_from_resolv_conf(data, "fuzz.conf") {
        assert!(e.to_string().contains("fuzz.conf"), "{e}");
    }
});
