//! Measurements made elsewhere arrive as files and API answers we do not control: any RIPE
//! Atlas result or probe file, and any Globalping answer, must be read or refused with a
//! reason, never a panic, and played back as a probe's trace without one either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use residency::measure::atlas::probes::read_probes;
use residency::measure::atlas::read_results;
use residency::measure::atlas::recorded::{RecordedTracer, resolutions, trace_path};
use residency::measure::atlas::AtlasKind;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (results, _) = read_results(&text);
    for r in &results {
        if let (AtlasKind::Traceroute(t), Some(dst)) = (&r.kind, r.dst_addr) {
            let path = trace_path(t, dst);
            let _ = path.target_rtt();
        }
        if let Some(probe) = r.prb_id {
            let _ = RecordedTracer::new(probe, "fuzz", &results).targets();
            let _ = resolutions(probe, "fuzz", "example.com", &results);
        }
    }
    let _ = read_probes(&text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let mut probes = Vec::new();
        let _ = residency::measure::globalping::read_measurement(&value, &mut probes);
    }
});
