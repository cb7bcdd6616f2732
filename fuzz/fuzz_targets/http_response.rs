//! Response headers (Link, Retry-After, rate limits), NUL, an error body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::http_response(data);
});
