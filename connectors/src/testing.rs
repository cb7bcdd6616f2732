//! Helpers shared by the connectors' tests.

use std::path::Path;

/// A JSON fixture from `fixtures/<system>/<name>`, panicking with the path.
pub(crate) fn fixture(system: &str, name: &str) -> serde_json::Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(system).join(name);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
