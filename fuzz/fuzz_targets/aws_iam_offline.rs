//! IAM authorization-details JSON, NUL, credential report CSV → parse → map.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::aws_iam_offline(data);
});
