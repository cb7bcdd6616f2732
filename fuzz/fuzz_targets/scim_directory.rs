//! SCIM ListResponse pages and group bodies (NUL-separated) → decode → map.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::scim_directory(data);
});
