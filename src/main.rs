//! The `accessgraph` executable: everything lives in `accessgraph-daemon`.

fn main() -> std::process::ExitCode {
    accessgraph_daemon::cli::main()
}
