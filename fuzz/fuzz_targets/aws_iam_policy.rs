//! IAM policy documents (JSON or URL-encoded; NUL, then a boundary) → parse → evaluate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::aws_iam_policy(data);
});
