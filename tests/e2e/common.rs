//! Running the binary in a scratch folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_accessgraph")
}

/// The repository root (fixtures, examples).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `accessgraph ARGS` with quiet logs.
pub fn run(args: &[&str]) -> Output {
    run_with_env(args, &[])
}

/// Runs with extra environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command.args(args).env_remove("ACCESSGRAPH_CONFIG").env("RUST_LOG", "warn").env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code (panics on signals).
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// Parses stdout as JSON, with a helpful panic.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", stdout(output), stderr(output)))
}

/// A scratch folder with a config file whose store and sinks live inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    pub fn config(&self) -> String {
        self.path("accessgraph.toml").display().to_string()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path("events.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("event line is JSON")).collect()
    }
}

/// Copies the shipped demo config into a scratch folder, pointing at the
/// repository's fixtures, so tests never write into the checkout.
pub fn demo_scratch() -> Scratch {
    let scratch = Scratch::new();
    let examples = repo().join("config/examples");
    let demo = std::fs::read_to_string(examples.join("demo.toml")).expect("demo.toml");
    let fixtures = repo().join("fixtures/demo");
    let mut text = String::new();
    for line in demo.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("url") && line.contains("sqlite") {
            text.push_str("url = \"sqlite://demo.db\"\n");
        } else if trimmed.starts_with("path") && line.contains("fixtures/demo/") {
            let file = line.rsplit('/').next().unwrap_or_default().trim_end_matches('"');
            text.push_str(&format!("path = {:?}\n", fixtures.join(file).display().to_string()));
        } else if trimmed.starts_with("path") && line.contains(".jsonl") {
            text.push_str("path = \"events.jsonl\"\n");
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    for name in ["agents.toml", "policy.cedar"] {
        std::fs::copy(examples.join(name), scratch.path(name)).expect("copy example");
    }
    scratch.write("accessgraph.toml", &text);
    scratch
}

/// Writes a snapshot source file.
pub fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write json");
}

/// Standard base64 with padding (to look for encoded secrets).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `METHOD /path` of a request, for messages.
pub fn describe(request: &wiremock::Request) -> String {
    format!("{} {}", request.method, request.url.path())
}

/// A source that only reads: every request a GET. Returns how many there were.
pub fn assert_gets_only(what: &str, requests: &[wiremock::Request]) -> usize {
    let writes: Vec<String> = requests.iter().filter(|r| r.method.as_str() != "GET").map(describe).collect();
    assert!(writes.is_empty(), "{what} must only read, but sent: {writes:?}");
    requests.len()
}

/// GitHub reads only: GETs, plus the App's installation-token exchange
/// (`POST /app/installations/{id}/access_tokens`) and GraphQL queries
/// (`POST /graphql` whose document holds no `mutation`).
pub fn assert_github_reads_only(requests: &[wiremock::Request]) -> usize {
    for request in requests {
        let method = request.method.as_str();
        let path = request.url.path();
        if method == "GET" {
            continue;
        }
        let token_exchange = path
            .strip_prefix("/app/installations/")
            .and_then(|rest| rest.strip_suffix("/access_tokens"))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        if method == "POST" && token_exchange {
            continue;
        }
        if method == "POST" && path.ends_with("/graphql") {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let query = body["query"].as_str().unwrap_or_else(|| panic!("a GraphQL POST without a query: {body}"));
            let mutates = query.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == "mutation");
            assert!(!mutates, "a GraphQL mutation was sent to GitHub: {query}");
            continue;
        }
        panic!("the GitHub source must only read, but sent {}", describe(request));
    }
    requests.len()
}

/// AWS reads only: every request a Query-protocol POST whose `Action` is a
/// read (`Get*`, `List*`, `GenerateCredentialReport`) or `AssumeRole`.
/// Returns the actions seen, in order.
pub fn assert_aws_reads_only(requests: &[wiremock::Request]) -> Vec<String> {
    let mut actions = Vec::new();
    for request in requests {
        assert_eq!(request.method.as_str(), "POST", "AWS Query protocol is POST: {}", describe(request));
        let body = String::from_utf8_lossy(&request.body);
        let action = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or_else(|| panic!("an AWS request without an Action: {body}"))
            .to_string();
        let read = action.starts_with("Get")
            || action.starts_with("List")
            || action == "GenerateCredentialReport"
            || action == "AssumeRole";
        assert!(read, "the AWS source must only read, but called {action}");
        actions.push(action);
    }
    actions
}

/// A small seeded PRNG (SplitMix64) for the crash and soak harnesses: the
/// same seed replays the same kill points and the same injected faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The seed of a harness: `ENV` when set (to replay a failure), else `default`.
pub fn seed_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A port nothing listens on right now, for a daemon under test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `GET path` on the daemon at 127.0.0.1:`port`, with the API token when
/// given: (status, body), or None when nothing answers.
pub fn api_get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}
