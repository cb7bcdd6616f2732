//! A snapshot file (CONTRACT §4): parse, validate, map.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::snapshot(data);
});
