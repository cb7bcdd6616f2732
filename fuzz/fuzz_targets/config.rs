//! A config file (TOML), NUL, a catalog file (TOML): the real loaders on
//! text in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Both files are read with `read_to_string`: not UTF-8 is refused there.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (config, catalog) = text.split_once('\0').unwrap_or((text, ""));
    if let Err(problems) = accessgraph_config::fuzzing::config(config) {
        // Every problem renders (file, line and column come from spans).
        let _ = problems.to_string();
    }
    let (_, problems) = accessgraph_config::fuzzing::catalog(catalog);
    for problem in problems {
        let _ = problem.to_string();
    }
});
