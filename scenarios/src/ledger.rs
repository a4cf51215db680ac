//! The ledger: the ground truth an app-under-test process writes about itself, which survives a SIGKILL.
//!
//! # Format
//!
//! One JSON object per line, tagged by `kind` ([`LedgerLine`]). Each process writes its own ledger file, opened in
//! append mode, and every line is handed to the kernel with a single unbuffered `write` before the app goes on, so
//! a SIGKILL can lose at most the line being written (a torn last line, which the reader skips) and never a line
//! that describes something that already happened.
//!
//! # Ordering rules the verdict relies on
//!
//! - A `record` line is written **before** the event is handed to `record()`. A kill between the two leaves a
//!   ledger entry for an event the library never saw; it is after the last checkpoint, so it falls in the loss
//!   window, which is the honest classification.
//! - A `checkpoint` line is written **after** `checkpoint()` returned, and covers every `record` line before it in
//!   the same file.
//! - The `exit` line is written only on a clean exit, after `shutdown`, with the library's final counters.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The property name the app puts the ledger id under in every event it records.
pub const LEDGER_ID_PROPERTY: &str = "ledger_id";

/// The property name that marks a poison event (the fault plan of the poison scenario rejects batches carrying it).
pub const POISON_PROPERTY: &str = "poison";

/// One line of a ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerLine {
    /// The process started.
    Start {
        /// The process id.
        pid: u32,
        /// The mode it runs in (`chat`, `service`, ...).
        mode: String,
        /// Wall-clock milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// An event is about to be handed to `record()`; `id` is its `ledger_id` property (or, for session helper
    /// events, `<event name>:<session id>`).
    Record {
        /// The match key of the event on the server.
        id: String,
        /// Whether the event carries the poison marker (the server is expected to reject it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        poison: bool,
    },
    /// `checkpoint()` returned: every `record` line before this one is in the spool.
    Checkpoint {
        /// How many `record` lines of this file it covers.
        records: u64,
    },
    /// The app entered a phase (chat mode: `busy` while streaming, `idle` at a prompt).
    Phase {
        /// The phase entered.
        phase: Phase,
        /// Wall-clock milliseconds since the Unix epoch.
        at_ms: u64,
        /// The fake server's request counter of the sink's route sampled at the boundary, when the app probes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ingest_requests: Option<u64>,
    },
    /// The app is about to call `shutdown` (the start of the CLI exit budget).
    ShutdownBegin {
        /// Wall-clock milliseconds since the Unix epoch.
        at_ms: u64,
        /// The shutdown deadline it passes, in milliseconds.
        deadline_ms: u64,
    },
    /// A clean exit: the library's final counters and the app's own measurements.
    Exit(Box<ExitReport>),
}

/// What a phase marker says the app is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Streaming a response: the library must not send.
    Busy,
    /// Waiting at a prompt: the library may send.
    Idle,
}

/// The final report of a process that exited cleanly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitReport {
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The library's counters after shutdown.
    pub stats: AppStats,
    /// How long `shutdown` took, in milliseconds, measured inside the process from the call to its return (in
    /// `cli-baseline` mode: the plain deadline wait that stands in for it).
    pub shutdown_ms: u64,
    /// The same, in microseconds (the deadline check of the CLI scenario needs better than millisecond precision).
    #[serde(default)]
    pub shutdown_us: Option<u64>,
    /// How long past its deadline `shutdown` waited for the queue to reach the spool (the library's
    /// `Stats::shutdown_store_overrun`), microseconds.
    #[serde(default)]
    pub store_overrun_us: Option<u64>,
    /// `record()` latencies in nanoseconds, as `(value, count)` pairs of a histogram.
    #[serde(default)]
    pub record_ns: Vec<(u64, u64)>,
    /// Peak resident set size of the process (`VmHWM`), in KiB.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
    /// Resident set size after the client was built and before recording started, in KiB.
    #[serde(default)]
    pub baseline_rss_kib: Option<u64>,
    /// Overhead measurements (overhead mode only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overhead: Vec<OverheadSample>,
}

/// The library's counters, as the app copied them from `stats()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStats {
    /// Events handed to `record()` by this process.
    pub recorded: u64,
    /// Events this process found in the spool at start, left by an earlier process.
    pub recovered: u64,
    /// Events the server acknowledged.
    pub acknowledged: u64,
    /// Events dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Events the server rejected one by one, moved to the dead-letter file.
    pub dead_lettered: u64,
    /// Spool events another process sharing the directory acknowledged or dropped.
    #[serde(default)]
    pub settled_elsewhere: u64,
    /// Events still pending (memory and spool).
    pub pending: u64,
    /// How many of the app's periodic samples of `stats()` saw the circuit breaker open or half-open.
    #[serde(default)]
    pub breaker_opened: Option<u64>,
}

impl AppStats {
    /// The sum of all drop reasons.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Whether flush-core's identity
    /// `recorded + recovered = acknowledged + dropped + dead_lettered + settled_elsewhere + pending` holds.
    #[must_use]
    pub fn identity_balances(&self) -> bool {
        self.recorded + self.recovered
            == self.acknowledged
                + self.dropped_total()
                + self.dead_lettered
                + self.settled_elsewhere
                + self.pending
    }
}

/// One overhead measurement: the same CPU-bound workload with and without telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadSample {
    /// The server condition (`healthy`, `slow`, `down`).
    pub server: String,
    /// Units of work, one event per unit with telemetry on.
    pub units: u64,
    /// Best-of-rounds nanoseconds per unit without telemetry.
    pub bare_ns_per_unit: f64,
    /// Best-of-rounds nanoseconds per unit with telemetry.
    pub telemetry_ns_per_unit: f64,
}

impl OverheadSample {
    /// Time with telemetry divided by time without.
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.bare_ns_per_unit > 0.0 {
            self.telemetry_ns_per_unit / self.bare_ns_per_unit
        } else {
            f64::NAN
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (the clock shared by the harness and the apps).
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Appends lines to a ledger file, each with one unbuffered write.
#[derive(Debug)]
pub struct LedgerWriter {
    file: File,
    records: u64,
}

impl LedgerWriter {
    /// Opens (creating if needed) the ledger file in append mode.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening ledger {}", path.display()))?;
        Ok(Self { file, records: 0 })
    }

    /// Writes one line; it has reached the kernel when this returns.
    ///
    /// # Errors
    /// When the write fails.
    pub fn write(&mut self, line: &LedgerLine) -> anyhow::Result<()> {
        if matches!(line, LedgerLine::Record { .. }) {
            self.records += 1;
        }
        let mut text = serde_json::to_string(line).context("serializing a ledger line")?;
        text.push('\n');
        // Invariant: one `write_all` of one complete line, no buffering, so a kill tears at most this line.
        self.file
            .write_all(text.as_bytes())
            .context("writing the ledger")
    }

    /// Writes a `checkpoint` line covering every `record` line written so far.
    ///
    /// # Errors
    /// When the write fails.
    pub fn checkpoint(&mut self) -> anyhow::Result<()> {
        let records = self.records;
        self.write(&LedgerLine::Checkpoint { records })
    }
}

/// A ledger as read back by the harness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// The complete lines, in order.
    pub lines: Vec<LedgerLine>,
    /// Whether the last line was torn (the process was killed while writing it) and skipped.
    pub torn_tail: bool,
}

impl Ledger {
    /// Reads a ledger file; a missing file is an empty ledger (the process was killed before it wrote anything).
    ///
    /// # Errors
    /// When the file cannot be read, or a line other than the last does not parse.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("reading ledger {}", path.display()));
            }
        };
        Self::parse(&text).with_context(|| format!("parsing ledger {}", path.display()))
    }

    /// Parses ledger text: every complete line must parse; an unterminated last line is a torn tail and skipped.
    ///
    /// # Errors
    /// When a complete line does not parse.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut ledger = Self::default();
        let ends_with_newline = text.ends_with('\n');
        let pieces: Vec<&str> = text.split('\n').filter(|piece| !piece.is_empty()).collect();
        for (index, piece) in pieces.iter().enumerate() {
            let unterminated = index + 1 == pieces.len() && !ends_with_newline;
            match serde_json::from_str::<LedgerLine>(piece) {
                Ok(line) => ledger.lines.push(line),
                Err(_) if unterminated => ledger.torn_tail = true,
                Err(error) => return Err(error).with_context(|| format!("line {}", index + 1)),
            }
        }
        Ok(ledger)
    }

    /// The ids of the `record` lines, with whether each is covered by a later checkpoint and is poison.
    #[must_use]
    pub fn records(&self) -> Vec<RecordedEvent> {
        let mut recorded = Vec::new();
        for line in &self.lines {
            match line {
                LedgerLine::Record { id, poison } => recorded.push(RecordedEvent {
                    id: id.clone(),
                    poison: *poison,
                    checkpointed: false,
                }),
                LedgerLine::Checkpoint { records } => {
                    let covered = usize::try_from(*records)
                        .unwrap_or(usize::MAX)
                        .min(recorded.len());
                    for event in &mut recorded[..covered] {
                        event.checkpointed = true;
                    }
                }
                _ => {}
            }
        }
        recorded
    }

    /// The exit report, when the process exited cleanly.
    #[must_use]
    pub fn exit(&self) -> Option<&ExitReport> {
        self.lines.iter().find_map(|line| match line {
            LedgerLine::Exit(report) => Some(report.as_ref()),
            _ => None,
        })
    }

    /// When the process began its shutdown, and with which deadline.
    #[must_use]
    pub fn shutdown_begin(&self) -> Option<(u64, u64)> {
        self.lines.iter().find_map(|line| match line {
            LedgerLine::ShutdownBegin { at_ms, deadline_ms } => Some((*at_ms, *deadline_ms)),
            _ => None,
        })
    }

    /// The phase markers, in order.
    #[must_use]
    pub fn phases(&self) -> Vec<(Phase, u64, Option<u64>)> {
        self.lines
            .iter()
            .filter_map(|line| match line {
                LedgerLine::Phase {
                    phase,
                    at_ms,
                    ingest_requests,
                } => Some((*phase, *at_ms, *ingest_requests)),
                _ => None,
            })
            .collect()
    }
}

/// One `record` line as the verdict sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The match key.
    pub id: String,
    /// Whether the server is expected to reject it.
    pub poison: bool,
    /// Whether a checkpoint after it completed.
    pub checkpointed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_ledger_reads_back_with_checkpoints_covering_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut writer = LedgerWriter::open(&path).unwrap();
        writer
            .write(&LedgerLine::Record {
                id: "a".into(),
                poison: false,
            })
            .unwrap();
        writer
            .write(&LedgerLine::Record {
                id: "b".into(),
                poison: true,
            })
            .unwrap();
        writer.checkpoint().unwrap();
        writer
            .write(&LedgerLine::Record {
                id: "c".into(),
                poison: false,
            })
            .unwrap();

        let ledger = Ledger::read(&path).unwrap();

        let records = ledger.records();
        assert_eq!(records.len(), 3);
        assert!(records[0].checkpointed && records[1].checkpointed && !records[2].checkpointed);
        assert!(records[1].poison);
        assert!(!ledger.torn_tail);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_noted() {
        let text = "{\"kind\":\"record\",\"id\":\"a\"}\n{\"kind\":\"rec";

        let ledger = Ledger::parse(text).unwrap();

        assert_eq!(ledger.records().len(), 1);
        assert!(ledger.torn_tail);
    }

    #[test]
    fn a_garbled_line_in_the_middle_is_an_error() {
        let text =
            "{\"kind\":\"record\",\"id\":\"a\"}\nnot json\n{\"kind\":\"record\",\"id\":\"b\"}\n";

        assert!(Ledger::parse(text).is_err());
    }

    #[test]
    fn events_another_process_settled_balance_the_identity() {
        let stats = AppStats {
            recorded: 10,
            recovered: 30,
            acknowledged: 25,
            settled_elsewhere: 15,
            ..AppStats::default()
        };

        assert!(stats.identity_balances());
        assert!(
            !AppStats {
                settled_elsewhere: 0,
                ..stats
            }
            .identity_balances()
        );
    }

    #[test]
    fn a_missing_ledger_file_is_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();

        let ledger = Ledger::read(&dir.path().join("absent.jsonl")).unwrap();

        assert!(ledger.lines.is_empty());
    }

    #[test]
    fn the_accounting_identity_counts_every_drop_reason() {
        let stats = AppStats {
            recorded: 10,
            recovered: 2,
            acknowledged: 7,
            dropped: BTreeMap::from([("queue_full".to_owned(), 2), ("spool_full".to_owned(), 1)]),
            dead_lettered: 1,
            settled_elsewhere: 0,
            pending: 1,
            breaker_opened: None,
        };

        assert!(stats.identity_balances());
    }
}
