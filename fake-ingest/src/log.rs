//! The batch log behind `--data-dir`: every stored batch, durable before its acknowledgement.
//!
//! # Format
//! The directory holds two files:
//! - `batches.jsonl`: one record per stored batch, in store order. A record is one line: a JSON object
//!   `{"request_id": u64, "protocol": "ingest", "route": "/ingest", "received_at": RFC 3339, "events": [IncomingEvent...]}`
//!   followed by `\n`. The events are the whole batch as decoded, duplicates included, so replaying the log through
//!   the same dedupe reproduces the captured events, their `seq` numbers and the event counts exactly. JSON strings
//!   never contain a raw newline, so a `\n` ends a record and nothing else.
//! - `lock`: held with an exclusive advisory lock (`flock`) while a server uses the directory; the kernel releases it
//!   when the holder dies, even by `SIGKILL`.
//!
//! # Durability
//! A record is written with one `write_all` and then `fdatasync`ed before the store applies it in memory and before
//! the response is sent. `POST /_fake/reset` truncates the log (and syncs) under the same lock.
//!
//! # Recovery
//! A process killed mid-append leaves a torn tail: a last line without its `\n`, or trailing lines that do not
//! decode. Recovery keeps every decodable record before the first bad one, requires everything after it to be bad
//! too (only a tail can be torn), truncates the tail away and logs a warning. A bad record followed by a good one
//! is corruption, reported as [`Error::CorruptLog`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{IncomingEvent, Protocol};

/// One stored batch as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BatchRecord {
    pub(crate) request_id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) route: String,
    pub(crate) received_at: String,
    pub(crate) events: Vec<IncomingEvent>,
}

/// One stored batch as it is written: the same shape as [`BatchRecord`], borrowing the events.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct BatchRecordRef<'a> {
    pub(crate) request_id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) route: &'a str,
    pub(crate) received_at: &'a str,
    pub(crate) events: &'a [IncomingEvent],
}

/// The open log: appends go to the end.
#[derive(Debug)]
pub(crate) struct BatchLog {
    path: PathBuf,
    file: File,
    /// The length of the valid log: where the next record goes.
    len: u64,
    /// Held for the lifetime of the log; the lock is released when it is closed.
    _lock: File,
}

impl BatchLog {
    /// Opens (creating if needed) the log in `dir`, locks it, and returns it with the records to replay.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<BatchRecord>), Error> {
        std::fs::create_dir_all(dir).map_err(io_error(dir, "cannot create the directory"))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path, "cannot open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::DataDirLocked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::DataDir {
                    path: lock_path,
                    what: "cannot lock",
                    source,
                });
            }
        }
        let path = dir.join("batches.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(&path, "cannot open the batch log"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_error(&path, "cannot read the batch log"))?;
        let (records, valid_len) = decode(&path, &bytes)?;
        if valid_len < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                torn_bytes = bytes.len() - valid_len,
                "the batch log ends with a torn record (a crash mid-append); truncating it away"
            );
            file.set_len(valid_len as u64)
                .map_err(io_error(&path, "cannot truncate the torn tail"))?;
            file.sync_all()
                .map_err(io_error(&path, "cannot sync the batch log"))?;
        }
        let len = valid_len as u64;
        file.seek(SeekFrom::Start(len))
            .map_err(io_error(&path, "cannot seek the batch log"))?;
        Ok((
            Self {
                path,
                file,
                len,
                _lock: lock,
            },
            records,
        ))
    }

    /// Appends one record and syncs it to disk; on failure the log is rolled back to its previous length.
    pub(crate) fn append(&mut self, record: &BatchRecordRef<'_>) -> Result<(), Error> {
        let mut line = serde_json::to_vec(record).map_err(|source| Error::DataDir {
            path: self.path.clone(),
            what: "cannot encode a record",
            source: source.into(),
        })?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Best effort: put the end of the log back where it was, so a later append does not follow garbage.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(Error::DataDir {
                path: self.path.clone(),
                what: "cannot append to the batch log",
                source,
            });
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Empties the log durably.
    pub(crate) fn truncate(&mut self) -> Result<(), Error> {
        let result = self
            .file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)))
            .and_then(|_| self.file.sync_all());
        result.map_err(|source| Error::DataDir {
            path: self.path.clone(),
            what: "cannot truncate the batch log",
            source,
        })?;
        self.len = 0;
        Ok(())
    }
}

/// Builds the `map_err` closure of an I/O step on `path`.
fn io_error(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::DataDir { path, what, source }
}

/// Decodes the records of a log; returns them and the length of the valid prefix.
fn decode(path: &Path, bytes: &[u8]) -> Result<(Vec<BatchRecord>, usize), Error> {
    let mut records = Vec::new();
    let mut valid_len = 0;
    let mut first_bad: Option<(usize, serde_json::Error)> = None;
    let mut offset = 0;
    for (line_index, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        offset += line.len();
        if !line.ends_with(b"\n") {
            // A last line without its newline is torn, even if it happens to parse.
            break;
        }
        match serde_json::from_slice::<BatchRecord>(line) {
            Ok(record) => {
                if let Some((line, source)) = first_bad {
                    return Err(Error::CorruptLog {
                        path: path.to_owned(),
                        line,
                        source,
                    });
                }
                records.push(record);
                valid_len = offset;
            }
            Err(source) => {
                if first_bad.is_none() {
                    first_bad = Some((line_index + 1, source));
                }
            }
        }
    }
    Ok((records, valid_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(request_id: u64) -> BatchRecord {
        BatchRecord {
            request_id,
            protocol: Protocol::Ingest,
            route: "/ingest".to_owned(),
            received_at: "2026-11-23T10:55:10Z".to_owned(),
            events: Vec::new(),
        }
    }

    #[test]
    fn any_truncation_recovers_a_prefix_of_whole_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let (mut log, replayed) = BatchLog::open(dir.path()).expect("opens");
            assert!(replayed.is_empty());
            for id in 1..=3 {
                let record = record(id);
                let borrowed = BatchRecordRef {
                    request_id: record.request_id,
                    protocol: record.protocol,
                    route: &record.route,
                    received_at: &record.received_at,
                    events: &record.events,
                };
                log.append(&borrowed).expect("appends");
            }
        }
        let full = std::fs::read(dir.path().join("batches.jsonl")).expect("reads");
        for cut in 0..full.len() {
            let (records, valid_len) =
                decode(Path::new("x"), &full[..cut]).expect("a torn tail is not corruption");
            assert!(full[..valid_len].ends_with(b"\n") || valid_len == 0);
            let ids: Vec<u64> = records.iter().map(|r| r.request_id).collect();
            assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_bad_record_before_a_good_one_is_corruption() {
        let good = serde_json::to_string(&record(1)).expect("encodes");
        let text = format!("{{oops\n{good}\n");
        let error = decode(Path::new("x"), text.as_bytes()).expect_err("corrupt");
        assert!(
            matches!(error, Error::CorruptLog { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_second_open_of_a_locked_directory_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _first = BatchLog::open(dir.path()).expect("opens");
        let second = BatchLog::open(dir.path()).expect_err("locked");
        assert!(matches!(second, Error::DataDirLocked { .. }), "{second}");
    }
}
