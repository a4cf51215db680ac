//! The batch log behind `--data-dir`: every stored batch, durable before its acknowledgement.
//!
//! # Format
//! The directory holds two files:
//! - `batches.jsonl`: one record per stored batch, in store order. A record is one line, a JSON object followed by
//!   `\n`:
//!   ```text
//!   {"request_id": u64, "protocol": "otlp_logs", "route": "/v1/logs", "received_at": RFC 3339,
//!    "upstream": "200", "resources": [{attributes}, ...], "shared": [{"properties": {...}, "parent": index or null}, ...],
//!    "duplicates": u64, "events": [event, ...]}
//!   ```
//!   `events` are the batch's events that were new when it was stored, in request order; `duplicates` counts the
//!   others (their keys were already stored), so replaying the log through the same dedupe reproduces the captured
//!   events, their `seq` numbers and the event counts exactly. An event is the JSON of an
//!   [`crate::IncomingEvent`] whose `resource` and `shared` are indexes into the record's `resources` and `shared`
//!   tables: what several events share (an OTLP resource, a scope, a metric) is written once per record, so a
//!   record grows with the request, never with the product of a resource's size and its record count. A `shared`
//!   entry's `parent` is an earlier entry. `upstream` is what the upstream answered the request (proxy mode, as the
//!   request log says it). `upstream`, `resources`, `shared` and `duplicates` may be absent (not forwarded, empty,
//!   empty, 0).
//!   JSON strings never contain a raw newline, so a `\n` ends a record and nothing else.
//! - `lock`: held with an exclusive advisory lock (`flock`) while a server uses the directory; the kernel releases it
//!   when the holder dies, even by `SIGKILL`.
//!
//! # Durability
//! A record is written with one `write_all` and then `fdatasync`ed before the store applies it in memory and before
//! the response is sent. `POST /_fake/reset` truncates the log (and syncs) under the same lock.
//!
//! # Reading back
//! The server keeps in memory only where each record starts and how long it is ([`Location`]); a reader of
//! captured events reads the record again (`pread`, [`BatchLog::read_at`]) and decodes it. A record that no longer
//! decodes there is [`Error::CorruptRecord`].
//!
//! # Recovery
//! A process killed mid-append leaves a torn tail: a last line without its `\n`, or a last line that does not
//! decode. Appends are serialized and each is synced before the next, so only the last line can be torn: recovery
//! keeps every record before it, copies the torn bytes to `batches.jsonl.torn-at-<offset>` (synced, so nothing is
//! lost, whatever they were), truncates them away and logs a warning. A bad line followed by any other line is
//! corruption (or a file that is not a batch log), reported as [`Error::CorruptLog`] with the file left as it was.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::event::{IncomingEvent, Protocol, SharedProperties};

/// One stored batch as read back from the log, its shared parts rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchRecord {
    pub(crate) request_id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) route: String,
    pub(crate) received_at: String,
    /// Proxy mode: what the upstream answered the request.
    pub(crate) upstream: Option<String>,
    /// The events that were new when the batch was stored.
    pub(crate) events: Vec<IncomingEvent>,
    /// How many events of the batch were duplicates when it was stored.
    pub(crate) duplicates: u64,
}

/// Where a record is in the log: its first byte and its length without the `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// One stored batch as it is written, borrowing the events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRecordRef<'a> {
    pub(crate) request_id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) route: &'a str,
    pub(crate) received_at: &'a str,
    /// Proxy mode: what the upstream answered the request.
    pub(crate) upstream: Option<&'a str>,
    /// The events that are new.
    pub(crate) events: &'a [IncomingEvent],
    /// How many events of the batch are duplicates (not written).
    pub(crate) duplicates: u64,
}

/// A record's line as written.
#[derive(Serialize)]
struct LineOut<'a> {
    request_id: u64,
    protocol: Protocol,
    route: &'a str,
    received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shared: Vec<SharedOut<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    duplicates: u64,
    events: Vec<EventOut<'a>>,
}

#[derive(Serialize)]
struct SharedOut<'a> {
    properties: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<usize>,
}

#[derive(Serialize)]
struct EventOut<'a> {
    dedupe_key: &'a str,
    has_idempotency_key: bool,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<usize>,
    properties: &'a Map<String, Value>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// A record's line as read.
#[derive(Deserialize)]
struct LineIn {
    request_id: u64,
    protocol: Protocol,
    route: String,
    received_at: String,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    resources: Vec<Map<String, Value>>,
    #[serde(default)]
    shared: Vec<SharedIn>,
    #[serde(default)]
    duplicates: u64,
    events: Vec<EventIn>,
}

#[derive(Deserialize)]
struct SharedIn {
    properties: Map<String, Value>,
    #[serde(default)]
    parent: Option<usize>,
}

#[derive(Deserialize)]
struct EventIn {
    dedupe_key: String,
    has_idempotency_key: bool,
    name: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    distinct_id: Option<String>,
    /// An index into `resources` (or, in logs written before resources were shared, the attributes themselves).
    #[serde(default)]
    resource: Option<Value>,
    #[serde(default)]
    shared: Option<usize>,
    properties: Map<String, Value>,
}

impl BatchRecordRef<'_> {
    /// The record's line, without its `\n`: each resource and shared level written once.
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut resources = Vec::new();
        let mut resource_indexes: HashMap<*const Map<String, Value>, usize> = HashMap::new();
        let mut shared = Vec::new();
        let mut shared_indexes: HashMap<*const SharedProperties, usize> = HashMap::new();
        let mut events = Vec::with_capacity(self.events.len());
        for event in self.events {
            let resource = event.resource.as_ref().map(|resource| {
                *resource_indexes
                    .entry(Arc::as_ptr(resource))
                    .or_insert_with(|| {
                        resources.push(&**resource);
                        resources.len() - 1
                    })
            });
            let shared_index = event
                .shared
                .as_ref()
                .map(|level| shared_index(level, &mut shared, &mut shared_indexes));
            events.push(EventOut {
                dedupe_key: &event.dedupe_key,
                has_idempotency_key: event.has_idempotency_key,
                name: &event.name,
                timestamp: event.timestamp.as_deref(),
                distinct_id: event.distinct_id.as_deref(),
                resource,
                shared: shared_index,
                properties: &event.properties,
            });
        }
        serde_json::to_vec(&LineOut {
            request_id: self.request_id,
            protocol: self.protocol,
            route: self.route,
            received_at: self.received_at,
            upstream: self.upstream,
            resources,
            shared,
            duplicates: self.duplicates,
            events,
        })
    }
}

/// The index of a shared level in the table, adding it (after its parents) when it is not there yet.
fn shared_index<'a>(
    level: &'a Arc<SharedProperties>,
    table: &mut Vec<SharedOut<'a>>,
    indexes: &mut HashMap<*const SharedProperties, usize>,
) -> usize {
    if let Some(index) = indexes.get(&Arc::as_ptr(level)) {
        return *index;
    }
    let parent = level
        .parent
        .as_ref()
        .map(|parent| shared_index(parent, table, indexes));
    table.push(SharedOut {
        properties: &level.properties,
        parent,
    });
    indexes.insert(Arc::as_ptr(level), table.len() - 1);
    table.len() - 1
}

impl LineIn {
    /// The record with its shared parts rebuilt (one `Arc` per table entry); an index out of range is an error.
    fn into_record(self) -> Result<BatchRecord, serde_json::Error> {
        use serde::de::Error as _;
        let resources: Vec<Arc<Map<String, Value>>> =
            self.resources.into_iter().map(Arc::new).collect();
        let mut shared: Vec<Arc<SharedProperties>> = Vec::with_capacity(self.shared.len());
        for (index, level) in self.shared.into_iter().enumerate() {
            let parent = match level.parent {
                None => None,
                Some(parent) if parent < index => Some(Arc::clone(&shared[parent])),
                Some(parent) => {
                    return Err(serde_json::Error::custom(format!(
                        "shared[{index}] has parent {parent}, which is not an earlier entry"
                    )));
                }
            };
            shared.push(Arc::new(SharedProperties {
                properties: level.properties,
                parent,
            }));
        }
        let events = self
            .events
            .into_iter()
            .enumerate()
            .map(|(index, event)| {
                let resource = match event.resource {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(attributes)) => Some(Arc::new(attributes)),
                    Some(Value::Number(number)) => Some(
                        number
                            .as_u64()
                            .and_then(|at| resources.get(usize::try_from(at).ok()?))
                            .cloned()
                            .ok_or_else(|| {
                                serde_json::Error::custom(format!(
                                    "events[{index}].resource {number} is not an index of resources"
                                ))
                            })?,
                    ),
                    Some(other) => {
                        return Err(serde_json::Error::custom(format!(
                            "events[{index}].resource must be an index or an object, not {other}"
                        )));
                    }
                };
                let shared = match event.shared {
                    None => None,
                    Some(at) => Some(shared.get(at).cloned().ok_or_else(|| {
                        serde_json::Error::custom(format!(
                            "events[{index}].shared {at} is not an index of shared"
                        ))
                    })?),
                };
                Ok(IncomingEvent {
                    dedupe_key: event.dedupe_key,
                    has_idempotency_key: event.has_idempotency_key,
                    name: event.name,
                    timestamp: event.timestamp,
                    distinct_id: event.distinct_id,
                    resource,
                    shared,
                    properties: event.properties,
                })
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        Ok(BatchRecord {
            request_id: self.request_id,
            protocol: self.protocol,
            route: self.route,
            received_at: self.received_at,
            upstream: self.upstream,
            events,
            duplicates: self.duplicates,
        })
    }
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
    /// Opens (creating if needed) the log in `dir`, locks it, and hands each record to replay to `replay`, in order,
    /// with its location (one record at a time: replay holds no more than one record in memory).
    pub(crate) fn open(
        dir: &Path,
        replay: impl FnMut(BatchRecord, Location),
    ) -> Result<Self, Error> {
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
        let total_len = file
            .metadata()
            .map_err(io_error(&path, "cannot read the batch log"))?
            .len();
        let valid_len = decode(&path, BufReader::new(&file), replay)?;
        if valid_len < total_len {
            let kept = keep_torn_tail(dir, &file, valid_len)?;
            tracing::warn!(
                path = %path.display(),
                torn_bytes = total_len - valid_len,
                kept = %kept.display(),
                "the batch log ends with a torn record (a crash mid-append); truncating it away"
            );
            file.set_len(valid_len)
                .map_err(io_error(&path, "cannot truncate the torn tail"))?;
            file.sync_all()
                .map_err(io_error(&path, "cannot sync the batch log"))?;
        }
        let len = valid_len;
        file.seek(SeekFrom::Start(len))
            .map_err(io_error(&path, "cannot seek the batch log"))?;
        Ok(Self {
            path,
            file,
            len,
            _lock: lock,
        })
    }

    /// Reads back the record at `location` (as [`BatchLog::append`] returned it or replay reported it).
    ///
    /// # Errors
    /// [`Error::DataDir`] when it cannot be read, [`Error::CorruptRecord`] when it does not decode.
    pub(crate) fn read_at(&self, location: Location) -> Result<BatchRecord, Error> {
        let len = usize::try_from(location.len).map_err(|_| Error::DataDir {
            path: self.path.clone(),
            what: "a record is longer than this platform can read",
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        })?;
        let mut line = vec![0; len];
        self.file
            .read_exact_at(&mut line, location.offset)
            .map_err(io_error(&self.path, "cannot read a record back"))?;
        serde_json::from_slice::<LineIn>(&line)
            .and_then(LineIn::into_record)
            .map_err(|source| Error::CorruptRecord {
                path: self.path.clone(),
                offset: location.offset,
                source,
            })
    }

    /// Appends one record and syncs it to disk, and returns where it is; on failure the log is rolled back to its
    /// previous length.
    pub(crate) fn append(&mut self, record: &BatchRecordRef<'_>) -> Result<Location, Error> {
        let mut line = record.encode().map_err(|source| Error::DataDir {
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
        let location = Location {
            offset: self.len,
            len: line.len() as u64 - 1,
        };
        self.len += line.len() as u64;
        Ok(location)
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

/// Reads the records of the log in `dir` without locking or repairing it (for `fake-ingest export` on a stopped
/// server's directory), handing each to `replay` in order: a torn tail is left out, as on open.
pub(crate) fn read(dir: &Path, replay: impl FnMut(BatchRecord, Location)) -> Result<(), Error> {
    let path = dir.join("batches.jsonl");
    let file = File::open(&path).map_err(io_error(&path, "cannot read the batch log"))?;
    decode(&path, BufReader::new(file), replay)?;
    Ok(())
}

/// Copies the bytes of the log from `valid_len` on (its torn tail) to `batches.jsonl.torn-at-<valid_len>` in `dir`,
/// synced, and returns that file's path.
fn keep_torn_tail(dir: &Path, log: &File, valid_len: u64) -> Result<PathBuf, Error> {
    let path = dir.join(format!("batches.jsonl.torn-at-{valid_len}"));
    let mut tail = Vec::new();
    let mut reader = log;
    reader
        .seek(SeekFrom::Start(valid_len))
        .and_then(|_| std::io::Read::read_to_end(&mut reader, &mut tail))
        .map_err(io_error(
            &path,
            "cannot read the torn tail of the batch log",
        ))?;
    let mut copy = File::create(&path).map_err(io_error(&path, "cannot keep the torn tail"))?;
    copy.write_all(&tail)
        .and_then(|()| copy.sync_all())
        .map_err(io_error(&path, "cannot keep the torn tail"))?;
    Ok(path)
}

/// Builds the `map_err` closure of an I/O step on `path`.
fn io_error(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::DataDir { path, what, source }
}

/// Decodes the records of a log, one line at a time, handing each to `replay` with its location; returns the
/// length of the valid prefix.
fn decode(
    path: &Path,
    mut reader: impl BufRead,
    mut replay: impl FnMut(BatchRecord, Location),
) -> Result<u64, Error> {
    let mut valid_len = 0;
    let mut bad_line: Option<(usize, serde_json::Error)> = None;
    let mut offset = 0;
    let mut line = Vec::new();
    for line_number in 1.. {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(io_error(path, "cannot read the batch log"))?;
        if read == 0 {
            break;
        }
        if let Some((line, source)) = bad_line {
            // Only the last line can be torn: a bad line followed by another is corruption.
            return Err(Error::CorruptLog {
                path: path.to_owned(),
                line,
                source,
            });
        }
        if !line.ends_with(b"\n") {
            // A last line without its newline: torn, even if it happens to parse.
            break;
        }
        let location = Location {
            offset,
            len: line.len() as u64 - 1,
        };
        offset += line.len() as u64;
        match serde_json::from_slice::<LineIn>(&line).and_then(LineIn::into_record) {
            Ok(record) => {
                replay(record, location);
                valid_len = offset;
            }
            Err(source) => bad_line = Some((line_number, source)),
        }
    }
    Ok(valid_len)
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
            // Every other record as if forwarded in proxy mode, so the round trips cover both.
            upstream: request_id.is_multiple_of(2).then(|| "200".to_owned()),
            events: Vec::new(),
            duplicates: 0,
        }
    }

    /// Every record of `bytes` and the length of the valid prefix.
    fn decode_all(bytes: &[u8]) -> Result<(Vec<BatchRecord>, usize), Error> {
        let mut records = Vec::new();
        let valid_len = decode(Path::new("x"), bytes, |record, _| records.push(record))?;
        Ok((records, valid_len as usize))
    }

    fn borrowed(record: &BatchRecord) -> BatchRecordRef<'_> {
        BatchRecordRef {
            request_id: record.request_id,
            protocol: record.protocol,
            route: &record.route,
            received_at: &record.received_at,
            upstream: record.upstream.as_deref(),
            events: &record.events,
            duplicates: record.duplicates,
        }
    }

    #[test]
    fn any_truncation_recovers_a_prefix_of_whole_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut replayed = 0;
            let mut log = BatchLog::open(dir.path(), |_, _| replayed += 1).expect("opens");
            assert_eq!(replayed, 0);
            for id in 1..=3 {
                let record = record(id);
                log.append(&borrowed(&record)).expect("appends");
            }
        }
        let full = std::fs::read(dir.path().join("batches.jsonl")).expect("reads");
        for cut in 0..full.len() {
            let (records, valid_len) =
                decode_all(&full[..cut]).expect("a torn tail is not corruption");
            assert!(full[..valid_len].ends_with(b"\n") || valid_len == 0);
            let ids: Vec<u64> = records.iter().map(|r| r.request_id).collect();
            assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_record_reads_back_at_the_location_its_append_and_its_replay_report() {
        let dir = tempfile::tempdir().expect("temp dir");
        let written: Vec<BatchRecord> = (1..=3).map(record).collect();
        let appended: Vec<Location> = {
            let mut log = BatchLog::open(dir.path(), |_, _| {}).expect("opens");
            written
                .iter()
                .map(|record| log.append(&borrowed(record)).expect("appends"))
                .collect()
        };
        let mut replayed = Vec::new();
        let log = BatchLog::open(dir.path(), |record, location| {
            replayed.push((record, location));
        })
        .expect("reopens");
        for ((record, location), (written, appended)) in
            replayed.iter().zip(written.iter().zip(&appended))
        {
            assert_eq!((record, location), (written, appended));
            assert_eq!(&log.read_at(*location).expect("reads back"), written);
        }
        let error = log
            .read_at(Location {
                offset: appended[1].offset + 1,
                len: appended[1].len - 1,
            })
            .expect_err("not a record");
        assert!(matches!(error, Error::CorruptRecord { .. }), "{error}");
    }

    #[test]
    fn a_bad_record_before_a_good_one_is_corruption() {
        let good =
            String::from_utf8(borrowed(&record(1)).encode().expect("encodes")).expect("UTF-8");
        let text = format!("{{oops\n{good}\n");
        let error = decode_all(text.as_bytes()).expect_err("corrupt");
        assert!(
            matches!(error, Error::CorruptLog { line: 1, .. }),
            "{error}"
        );
    }

    /// A log of `records` records followed by `tail`.
    fn log_with_tail(dir: &Path, records: u64, tail: &[u8]) -> Vec<u8> {
        {
            let mut log = BatchLog::open(dir, |_, _| {}).expect("opens");
            for id in 1..=records {
                log.append(&borrowed(&record(id))).expect("appends");
            }
        }
        let path = dir.join("batches.jsonl");
        let mut bytes = std::fs::read(&path).expect("reads");
        bytes.extend_from_slice(tail);
        std::fs::write(&path, &bytes).expect("writes");
        bytes
    }

    #[test]
    fn a_torn_tail_is_kept_beside_the_log_and_cut_from_it() {
        for tail in [&b"{\"request_id\": 3, \"prot"[..], b"{not a record}\n"] {
            let dir = tempfile::tempdir().expect("temp dir");
            let bytes = log_with_tail(dir.path(), 2, tail);
            let valid_len = bytes.len() - tail.len();

            let mut replayed = 0;
            drop(BatchLog::open(dir.path(), |_, _| replayed += 1).expect("recovers"));

            assert_eq!(replayed, 2);
            let log = std::fs::read(dir.path().join("batches.jsonl")).expect("reads");
            assert_eq!(log, bytes[..valid_len]);
            let kept = dir
                .path()
                .join(format!("batches.jsonl.torn-at-{valid_len}"));
            assert_eq!(std::fs::read(kept).expect("the tail is kept"), tail);
        }
    }

    #[test]
    fn a_bad_line_followed_by_any_other_is_corruption_and_the_file_is_left_as_it_was() {
        for tail in [&b"{x}\n{y}\n"[..], b"{x}\n{torn"] {
            let dir = tempfile::tempdir().expect("temp dir");
            let bytes = log_with_tail(dir.path(), 1, tail);

            let error = BatchLog::open(dir.path(), |_, _| {}).expect_err("corrupt");

            assert!(
                matches!(error, Error::CorruptLog { line: 2, .. }),
                "{error}"
            );
            let log = std::fs::read(dir.path().join("batches.jsonl")).expect("reads");
            assert_eq!(log, bytes);
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("lists")
                .map(|entry| entry.expect("an entry").file_name())
                .collect();
            assert_eq!(names.len(), 2, "{names:?}");
        }
    }

    #[test]
    fn a_second_open_of_a_locked_directory_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _first = BatchLog::open(dir.path(), |_, _| {}).expect("opens");
        let second = BatchLog::open(dir.path(), |_, _| {}).expect_err("locked");
        assert!(matches!(second, Error::DataDirLocked { .. }), "{second}");
    }

    fn event(
        key: &str,
        resource: &Arc<Map<String, Value>>,
        shared: &Arc<SharedProperties>,
    ) -> IncomingEvent {
        IncomingEvent {
            dedupe_key: key.to_owned(),
            has_idempotency_key: true,
            name: "log".to_owned(),
            timestamp: None,
            distinct_id: None,
            resource: Some(Arc::clone(resource)),
            shared: Some(Arc::clone(shared)),
            properties: Map::new(),
        }
    }

    #[test]
    fn shared_parts_are_written_once_per_record_and_read_back_shared() {
        let big = "x".repeat(1000);
        let resource = Arc::new(Map::from_iter([(
            "service.name".to_owned(),
            Value::String(big.clone()),
        )]));
        let scope = Arc::new(SharedProperties {
            properties: Map::from_iter([(
                "otel.scope.name".to_owned(),
                Value::String(big.clone()),
            )]),
            parent: None,
        });
        let metric = Arc::new(SharedProperties {
            properties: Map::from_iter([("otel.unit".to_owned(), Value::String(big.clone()))]),
            parent: Some(Arc::clone(&scope)),
        });
        let mut written = record(1);
        written.events = (0..100)
            .map(|i| {
                event(
                    &format!("k{i}"),
                    &resource,
                    if i % 2 == 0 { &scope } else { &metric },
                )
            })
            .collect();
        written.duplicates = 7;
        let line = borrowed(&written).encode().expect("encodes");
        assert!(
            line.len() < 4 * big.len() + 100 * 120,
            "{} bytes",
            line.len()
        );

        let mut text = line;
        text.push(b'\n');
        let (records, _) = decode_all(&text).expect("decodes");
        let read = &records[0];
        assert_eq!(read, &written);
        let first = read.events[0].resource.as_ref().expect("a resource");
        let last = read.events[99].resource.as_ref().expect("a resource");
        assert!(Arc::ptr_eq(first, last), "one resource, shared again");
        assert_eq!(
            read.events[1].property("otel.scope.name"),
            Some(&Value::String(big))
        );
    }

    #[test]
    fn an_index_out_of_range_is_corruption_and_a_resource_object_is_read_inline() {
        let bad = r#"{"request_id":1,"protocol":"otlp_logs","route":"/v1/logs","received_at":"t","events":[{"dedupe_key":"k","has_idempotency_key":true,"name":"n","resource":3,"properties":{}}]}"#;
        let good = r#"{"request_id":2,"protocol":"otlp_logs","route":"/v1/logs","received_at":"t","events":[{"dedupe_key":"k","has_idempotency_key":true,"name":"n","resource":{"a":1},"properties":{}}]}"#;
        let error = decode_all(format!("{bad}\n{good}\n").as_bytes()).expect_err("corrupt");
        assert!(
            error_chain_contains(&error, "is not an index of resources"),
            "{error}"
        );
        let (records, _) = decode_all(format!("{good}\n").as_bytes()).expect("valid");
        assert_eq!(
            records[0].events[0].resource.as_deref(),
            Some(&Map::from_iter([("a".to_owned(), Value::from(1))]))
        );
    }

    fn error_chain_contains(error: &Error, text: &str) -> bool {
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(cause) = source {
            if cause.to_string().contains(text) {
                return true;
            }
            source = cause.source();
        }
        false
    }
}
