//! GitHub REST pages (NUL-separated bodies, the client's order) → decode → map.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::github_org(data);
});
