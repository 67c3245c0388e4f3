//! Policies are written by people: any text must be a policy or an error naming the file and,
//! where it can, the line; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = residency::policy::parse(&text, Path::new("fuzz.yaml")) {
        assert!(e.to_string().starts_with("fuzz.yaml"), "{e}");
    }
});
