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

/// One event to append: its id and its line (ending in a newline).
struct Line {
    event_id: String,
    text: String,
}

impl Line {
    fn of(path: &Path, event: &TicketEvent) -> Result<Line, SinkError> {
        let mut text = serde_json::to_string(event)
            .map_err(|e| SinkError::Io { path: path.display().to_string(), message: e.to_string() })?;
        text.push('\n');
        Ok(Line { event_id: event.event_id.clone(), text })
    }
}

/// The `event_id` of each line of `tail` (a line cut at the start of the
/// tail may give a fragment; it matches no id of a whole line written after).
fn written_ids(tail: &str) -> std::collections::HashSet<&str> {
    const KEY: &str = "\"event_id\":\"";
    tail.lines()
        .filter_map(|line| {
            let start = line.find(KEY)? + KEY.len();
            let len = line[start..].find('"')?;
            Some(&line[start..start + len])
        })
        .collect()
}

/// Appends each of `lines` whose event the file's tail does not already
/// hold, in order, with one write and one flush, under an exclusive lock on
/// the file.
///
/// The check and the append are one step for every process sharing the
/// file: replicas draining one outbox, or a replica re-delivering rows
/// whose acknowledgement was rolled back (a crash between the write and the
/// commit). The tail read covers the lines of a whole batch, which a
/// replayed batch wrote last. It runs on a blocking thread to completion
/// even when the caller's future is dropped, and the lock makes the next
/// writer wait for it, so a cancelled delivery can never race its own retry.
fn append_once(path: &Path, lines: &[Line]) -> Result<(), SinkError> {
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
    let batch: u64 = lines.iter().map(|line| line.text.len() as u64).sum();
    let tail = len.min(TAIL_BYTES + batch);
    file.seek(std::io::SeekFrom::Start(len - tail)).map_err(|e| io_error(path, e))?;
    let mut buffer = Vec::with_capacity(tail as usize);
    file.read_to_end(&mut buffer).map_err(|e| io_error(path, e))?;
    let tail = String::from_utf8_lossy(&buffer);
    // A last line without its newline is a write a kill tore: it does not
    // count as written, and what follows starts on a line of its own.
    let torn = !tail.is_empty() && !tail.ends_with('\n');
    let whole = if torn { tail.rfind('\n').map_or("", |end| &tail[..=end]) } else { &tail[..] };
    let written = written_ids(whole);
    let mut out = String::with_capacity(batch as usize + 1);
    if torn {
        out.push('\n');
    }
    for line in lines {
        if !written.contains(line.event_id.as_str()) {
            out.push_str(&line.text);
        }
    }
    if out.is_empty() || out == "\n" {
        return Ok(());
    }
    file.write_all(out.as_bytes()).map_err(|e| io_error(path, e))?;
    file.sync_data().map_err(|e| io_error(path, e))?;
    // The lock is released when `file` closes.
    Ok(())
}

impl JsonlSink {
    async fn append(&self, lines: Vec<Line>) -> Result<(), SinkError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || append_once(&path, &lines))
            .await
            .map_err(|e| SinkError::Io { path: self.path.display().to_string(), message: e.to_string() })?
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        self.append(vec![Line::of(&self.path, event)?]).await
    }

    /// One lock, one write and one flush for the whole run: filing 211k
    /// events one flush each took 2:24 of a first scan at 100k people.
    /// All or nothing: a failed write is retried whole, and the tail check
    /// skips whatever part of it reached the file.
    async fn deliver_all(&self, events: &[&TicketEvent]) -> (usize, Option<SinkError>) {
        let lines = match events.iter().map(|event| Line::of(&self.path, event)).collect::<Result<Vec<_>, _>>() {
            Ok(lines) => lines,
            Err(error) => return (0, Some(error)),
        };
        match self.append(lines).await {
            Ok(()) => (events.len(), None),
            Err(error) => (0, Some(error)),
        }
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

    /// A sink on `events.jsonl` in a fresh directory (kept while it lives).
    fn fresh_sink() -> (tempfile::TempDir, PathBuf, JsonlSink) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let sink = JsonlSink::new("jsonl", path.clone());
        (dir, path, sink)
    }

    fn ids(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).expect("read");
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line")["event_id"].to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_run_of_events_is_one_append_and_a_replay_writes_only_what_is_missing() {
        let (_dir, path, sink) = fresh_sink();
        // Long enough that a run's lines outgrow the tail searched for one event.
        let events: Vec<TicketEvent> = (1..=300).map(|i| event(&i.to_string())).collect();
        let first: Vec<&TicketEvent> = events[..200].iter().collect();
        assert_eq!(sink.deliver_all(&first).await.into_pair(), (200, None));
        assert!(std::fs::metadata(&path).expect("file").len() > TAIL_BYTES, "the run is longer than the tail");
        // A replay of the whole run (its acknowledgement was lost) and then
        // a run overlapping it: only the new events are written, in order.
        assert_eq!(sink.deliver_all(&first).await.into_pair(), (200, None));
        let all: Vec<&TicketEvent> = events.iter().collect();
        assert_eq!(sink.deliver_all(&all[150..]).await.into_pair(), (150, None));
        let wanted: Vec<String> = (1..=300).map(|i| format!("\"{i}\"")).collect();
        assert_eq!(ids(&path), wanted);
        assert_eq!(sink.deliver_all(&[]).await.into_pair(), (0, None));
    }

    #[tokio::test]
    async fn a_torn_last_line_is_not_taken_for_its_event() {
        let (_dir, path, sink) = fresh_sink();
        sink.deliver(&event("1")).await.expect("first");
        // A kill in the middle of writing event 2: its id made it, the rest not.
        let whole = serde_json::to_string(&event("2")).expect("json");
        let cut = whole.find("\"event_id\":\"2\"").expect("id") + 20;
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut file, &whole.as_bytes()[..cut]).expect("torn write");
        let two = event("2");
        assert_eq!(sink.deliver_all(&[&two]).await.into_pair(), (1, None));
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1].len(), cut, "the torn write stays on its own line");
        let last: serde_json::Value = serde_json::from_str(lines[2]).expect("event 2 whole");
        assert_eq!(last["event_id"], "2");
    }

    #[tokio::test]
    async fn a_failed_append_delivers_none_of_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be: the open fails.
        let path = dir.path().join("events.jsonl");
        std::fs::create_dir(&path).expect("dir");
        let sink = JsonlSink::new("jsonl", path);
        let events = [event("1"), event("2")];
        let (delivered, error) = sink.deliver_all(&[&events[0], &events[1]]).await;
        assert_eq!(delivered, 0);
        assert!(matches!(error, Some(SinkError::Io { .. })), "{error:?}");
    }

    /// The outcome of `deliver_all` in a comparable form.
    trait IntoPair {
        fn into_pair(self) -> (usize, Option<String>);
    }

    impl IntoPair for (usize, Option<SinkError>) {
        fn into_pair(self) -> (usize, Option<String>) {
            (self.0, self.1.map(|e| e.to_string()))
        }
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
