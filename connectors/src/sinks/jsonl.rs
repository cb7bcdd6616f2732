//! `jsonl`: one JSON event per line, appended to a file (the default sink).

use super::{Sink, SinkError, TicketEvent};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

/// Appends events to a file.
#[derive(Debug)]
pub struct JsonlSink {
    name: String,
    path: PathBuf,
}

impl JsonlSink {
    /// A sink writing to `path` (created when missing).
    pub fn new(name: &str, path: PathBuf) -> JsonlSink {
        JsonlSink { name: name.to_string(), path }
    }
}

/// How much of the file's end is searched for an event already written.
const TAIL_BYTES: u64 = 64 * 1024;

fn io_error(path: &Path, error: std::io::Error) -> SinkError {
    SinkError::Io { path: path.display().to_string(), message: error.to_string() }
}

/// Appends `line` unless the file's tail already holds `needle`, under an
/// exclusive lock on the file.
///
/// The check and the append are one step for every process sharing the
/// file: replicas draining one outbox, or a replica re-delivering a row
/// whose acknowledgement was rolled back (a crash between the write and the
/// commit). It runs on a blocking thread to completion even when the
/// caller's future is dropped, and the lock makes the next writer wait for
/// it, so a cancelled delivery can never race its own retry.
fn append_once(path: &Path, needle: &str, line: &[u8]) -> Result<(), SinkError> {
    use std::io::{Read, Seek, Write};
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| io_error(path, e))?;
    }
    let mut file =
        std::fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| io_error(path, e))?;
    file.lock().map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    let tail = len.min(TAIL_BYTES);
    file.seek(std::io::SeekFrom::Start(len - tail)).map_err(|e| io_error(path, e))?;
    let mut buffer = Vec::with_capacity(tail as usize);
    file.read_to_end(&mut buffer).map_err(|e| io_error(path, e))?;
    if String::from_utf8_lossy(&buffer).lines().any(|l| l.contains(needle)) {
        return Ok(());
    }
    file.write_all(line).map_err(|e| io_error(path, e))?;
    file.sync_data().map_err(|e| io_error(path, e))?;
    // The lock is released when `file` closes.
    Ok(())
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        let mut line = serde_json::to_string(event)
            .map_err(|e| SinkError::Io { path: self.path.display().to_string(), message: e.to_string() })?;
        line.push('\n');
        let needle = format!("\"event_id\":\"{}\"", event.event_id);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append_once(&path, &needle, line.as_bytes()))
            .await
            .map_err(|e| SinkError::Io { path: self.path.display().to_string(), message: e.to_string() })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::EventKind;
    use accessgraph_graph::{Finding, Severity};
    use chrono::Utc;

    fn event(id: &str) -> TicketEvent {
        let finding = Finding::new(
            "secret.stale",
            Severity::Medium,
            "s:agent:a",
            "s:api_key:k",
            "t",
            "d",
            "r",
            vec![],
            Utc::now(),
        );
        TicketEvent::new(EventKind::Opened, id.to_string(), &finding, Utc::now())
    }

    #[tokio::test]
    async fn appends_one_line_per_event_and_skips_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/events.jsonl");
        let sink = JsonlSink::new("jsonl", path.clone());
        sink.deliver(&event("1")).await.expect("first");
        sink.deliver(&event("2")).await.expect("second");
        sink.deliver(&event("1")).await.expect("replay");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "opened");
        assert_eq!(lines[0]["fingerprint"], lines[0]["finding"]["fingerprint"]);
        assert_eq!(lines[1]["event_id"], "2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_of_one_event_write_one_line() {
        // Replicas (separate sink instances) re-delivering the same row at once.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let sink = JsonlSink::new("jsonl", path.clone());
            tasks.push(tokio::spawn(async move { sink.deliver(&event("7")).await }));
        }
        for task in tasks {
            task.await.expect("join").expect("deliver");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
