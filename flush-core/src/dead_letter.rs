//! The dead-letter file: events the server rejected one by one, with its reason, kept beside the spool.
//!
//! `{spool dir}/dead-letter.jsonl`, one JSON object per line:
//! `{"dead_lettered_at": RFC 3339, "status": 400, "reason": "...", "event": {the event as it was sent}}`.
//! It is appended to and synced per entry (rejections are rare), and never read by flush-core: it is for humans and
//! tools. In memory-only mode there is no file; rejected events are only counted.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The dead-letter file's name inside the spool directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";

/// Appends rejected events to the dead-letter file.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    path: Option<PathBuf>,
}

impl DeadLetters {
    pub(crate) fn new(dir: Option<&Path>) -> Self {
        Self {
            path: dir.map(|dir| dir.join(DEAD_LETTER_FILE)),
        }
    }

    /// Writes one rejected event with the server's reason.
    ///
    /// # Errors
    /// The I/O error; the caller still counts the event as dead-lettered (it must not block the events behind it).
    pub(crate) fn write(&self, record: &[u8], status: u16, reason: &str) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let line = entry(record, status, reason);
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(&line)?;
        file.sync_data()
    }
}

fn entry(record: &[u8], status: u16, reason: &str) -> Vec<u8> {
    let now = jiff::Timestamp::now();
    let head = serde_json::json!({ "dead_lettered_at": format!("{now:.3}"), "status": status, "reason": reason });
    let mut line = serde_json::to_vec(&head).unwrap_or_default();
    line.pop(); // The closing brace: the event follows.
    line.extend_from_slice(b",\"event\":");
    if serde_json::from_slice::<serde::de::IgnoredAny>(record).is_ok() {
        line.extend_from_slice(record);
    } else {
        let text = serde_json::Value::String(String::from_utf8_lossy(record).into_owned());
        line.extend_from_slice(text.to_string().as_bytes());
    }
    line.extend_from_slice(b"}\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rejected_event_is_one_json_line_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let dead_letters = DeadLetters::new(Some(dir.path()));
        dead_letters
            .write(
                br#"{"uuid":"u1","event":"bad"}"#,
                400,
                "HTTP 400: bad timestamp",
            )
            .unwrap();
        dead_letters
            .write(b"not json", 413, "HTTP 413: too large")
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"]["uuid"], "u1");
        assert_eq!(lines[0]["status"], 400);
        assert_eq!(lines[0]["reason"], "HTTP 400: bad timestamp");
        assert_eq!(lines[1]["event"], "not json");
    }

    #[test]
    fn memory_only_mode_writes_nothing() {
        DeadLetters::new(None).write(b"{}", 400, "x").unwrap();
    }
}
