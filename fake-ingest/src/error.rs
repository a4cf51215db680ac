//! [`Error`]: what can go wrong starting or running a fake-ingest server.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::faults::PlanError;

/// An error starting a server or persisting a batch. None of these is worth retrying as is: each needs a change of
/// configuration or environment first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (the message says which field).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The fault plan is invalid.
    #[error("invalid fault plan")]
    Plan(#[from] PlanError),
    /// The listen address could not be bound (in use, no permission, not a local address).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created, opened, locked, read or written.
    #[error("data directory {path}: {what}")]
    DataDir {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or server in this process) holds the data directory.
    #[error("data directory {path} is in use by another fake-ingest")]
    DataDirLocked {
        /// The lock file.
        path: PathBuf,
    },
    /// A complete record in the batch log cannot be decoded: the log is corrupt (a torn tail is repaired instead).
    #[error("batch log {path} is corrupt at line {line}")]
    CorruptLog {
        /// The log file.
        path: PathBuf,
        /// The 1-based line number of the bad record.
        line: usize,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },
    /// A record of the batch log, read back to serve the events it holds, no longer decodes (the file was changed
    /// under the running server).
    #[error("batch log {path} is corrupt at byte {offset}")]
    CorruptRecord {
        /// The log file.
        path: PathBuf,
        /// Where the record starts.
        offset: u64,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },
    /// A captured event kept in the batch log is not where its index says (the file was changed under the running
    /// server).
    #[error("captured event {index} of the record at byte {offset:?} is not in the batch log")]
    NotInLog {
        /// Where its batch's record starts, if known.
        offset: Option<u64>,
        /// Its index among the record's events.
        index: u32,
    },
    /// The background runtime thread of [`crate::Server::start_blocking`] could not be started.
    #[error("cannot start the server runtime")]
    Runtime(#[source] std::io::Error),
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
