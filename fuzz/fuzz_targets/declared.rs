//! What operators publish comes from servers we do not control: any geofeed, cloud range file
//! or HTTP response head must be read, or refused with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use residency::sources::declared::RangeSet;
use residency::sources::declared::geofeed::Geofeed;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let feed = Geofeed::parse("fuzz.csv", None, &text);
    for ip in ["192.0.2.1", "2001:db8::1", "0.0.0.0"] {
        let ip = ip.parse().expect("a fixed address");
        let _ = feed.evidence(ip, Some(&[]));
        let _ = feed.evidence(ip, None);
    }
    for name in ["ranges.json", "cloudflare-ips-v4.txt"] {
        if let Ok(set) = RangeSet::parse(name, "fuzz", &text) {
            let _ = set.lookup("192.0.2.1".parse().expect("a fixed address"));
            let _ = set.regions();
        }
    }
});
