//! `jsonl`: one JSON event per line, appended to a file (the default sink).

use super::{Sink, SinkError, TicketEvent};
use async_trait::async_trait;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

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

    fn io_error(&self, error: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path.display().to_string(), message: error.to_string() }
    }

    /// Whether the file's tail already holds this event: a crash between the
    /// write and the outbox acknowledgement must not write it twice.
    async fn already_written(&self, event_id: &str) -> Result<bool, SinkError> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Ok(false);
        };
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let len = file.metadata().await.map_err(|e| self.io_error(e))?.len();
        let tail = len.min(64 * 1024);
        file.seek(std::io::SeekFrom::Start(len - tail)).await.map_err(|e| self.io_error(e))?;
        let mut buffer = Vec::with_capacity(tail as usize);
        file.read_to_end(&mut buffer).await.map_err(|e| self.io_error(e))?;
        let needle = format!("\"event_id\":\"{event_id}\"");
        Ok(String::from_utf8_lossy(&buffer).lines().any(|line| line.contains(&needle)))
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &TicketEvent) -> Result<(), SinkError> {
        if self.already_written(&event.event_id).await? {
            return Ok(());
        }
        let mut line = serde_json::to_string(event)
            .map_err(|e| SinkError::Io { path: self.path.display().to_string(), message: e.to_string() })?;
        line.push('\n');
        if let Some(parent) = self.path.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent).await.map_err(|e| self.io_error(e))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| self.io_error(e))?;
        file.write_all(line.as_bytes()).await.map_err(|e| self.io_error(e))?;
        file.sync_data().await.map_err(|e| self.io_error(e))?;
        Ok(())
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
}
