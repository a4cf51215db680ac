//! The dead-letter file: events the server rejected one by one, with its reason, kept beside the spool.
//!
//! `{spool dir}/dead-letter.jsonl`, one JSON object per line, of two kinds:
//! - an event rejected on its own:
//!   `{"dead_lettered_at": RFC 3339, "status": 400, "reason": "...", "event": {the event in its stored form}}`
//!   (`status` is `null` when the sink could not encode the event, so it was never sent);
//! - a partial success (a server that stored a batch except some of its events, without saying which):
//!   `{"dead_lettered_at": RFC 3339, "status": 200, "reason": "...", "rejected": N, "batch": [the batch's events]}`.
//!
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
    pub(crate) fn write(
        &self,
        record: &[u8],
        status: Option<u16>,
        reason: &str,
    ) -> std::io::Result<()> {
        let head = serde_json::json!({ "status": status, "reason": reason });
        let mut line = head_of(head);
        line.extend_from_slice(b",\"event\":");
        push_record(&mut line, record);
        line.extend_from_slice(b"}\n");
        self.append(&line)
    }

    /// Writes the events of a batch the server stored except `rejected` of them, with the server's reason.
    ///
    /// # Errors
    /// The I/O error; the caller still counts the rejected events as dead-lettered.
    pub(crate) fn write_partial(
        &self,
        records: &[Vec<u8>],
        rejected: u64,
        reason: &str,
    ) -> std::io::Result<()> {
        let head = serde_json::json!({ "status": 200, "reason": reason, "rejected": rejected });
        let mut line = head_of(head);
        line.extend_from_slice(b",\"batch\":[");
        for (index, record) in records.iter().enumerate() {
            if index > 0 {
                line.push(b',');
            }
            push_record(&mut line, record);
        }
        line.extend_from_slice(b"]}\n");
        self.append(&line)
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(line)?;
        file.sync_data()
    }
}

/// The entry's fields with `dead_lettered_at` first, without the closing brace: the events follow.
fn head_of(fields: serde_json::Value) -> Vec<u8> {
    let now = jiff::Timestamp::now();
    let mut head = serde_json::Map::new();
    head.insert("dead_lettered_at".into(), format!("{now:.3}").into());
    if let serde_json::Value::Object(fields) = fields {
        head.extend(fields);
    }
    let mut line = serde_json::to_vec(&head).unwrap_or_default();
    line.pop();
    line
}

/// A stored record as JSON: as it is when it is JSON, else as a string.
fn push_record(line: &mut Vec<u8>, record: &[u8]) {
    if serde_json::from_slice::<serde::de::IgnoredAny>(record).is_ok() {
        line.extend_from_slice(record);
    } else {
        let text = serde_json::Value::String(String::from_utf8_lossy(record).into_owned());
        line.extend_from_slice(text.to_string().as_bytes());
    }
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
                Some(400),
                "HTTP 400: bad timestamp",
            )
            .unwrap();
        dead_letters
            .write(b"not json", None, "cannot encode")
            .unwrap();
        dead_letters
            .write_partial(
                &[br#"{"uuid":"u2"}"#.to_vec(), br#"{"uuid":"u3"}"#.to_vec()],
                1,
                "partial success: 1 rejected",
            )
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"]["uuid"], "u1");
        assert_eq!(lines[0]["status"], 400);
        assert_eq!(lines[0]["reason"], "HTTP 400: bad timestamp");
        assert_eq!(lines[1]["event"], "not json");
        assert_eq!(lines[1]["status"], serde_json::Value::Null);
        assert_eq!(lines[2]["rejected"], 1);
        assert_eq!(lines[2]["batch"][1]["uuid"], "u3");
        assert!(lines[2]["dead_lettered_at"].is_string());
    }

    #[test]
    fn memory_only_mode_writes_nothing() {
        DeadLetters::new(None).write(b"{}", Some(400), "x").unwrap();
    }
}
