//! An IAM credential report CSV.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accessgraph_connectors::fuzzing::aws_iam_report(data);
});
