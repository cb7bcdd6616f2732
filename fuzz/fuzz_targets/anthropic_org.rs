//! Anthropic admin API cursor pages (NUL-separated) → decode → map.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::anthropic_org(data);
});
