//! The spool's error type: one enum, each variant documented with whether the caller should retry.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in a spool operation.
///
/// Expected conditions are not errors: a torn tail found during recovery, a corrupt record, a full size budget or an
/// expired record are counted in [`SpoolStats`](super::SpoolStats). Every error leaves the spool consistent: a failed
/// [`append`](super::Spool::append) kept none of its batch, a failed [`ack`](super::SpoolReader::ack) acknowledged
/// nothing (the records are handed out again after a restart).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The file system is full (`ENOSPC`) or the user's disk quota is exhausted (`EDQUOT`).
    ///
    /// Retry: yes, later; the spool frees space itself only within `max_total_bytes` (by dropping its oldest data), so
    /// space must come from elsewhere. Nothing of the failed call was kept.
    #[error("no space left for the spool at {path}")]
    DiskFull {
        /// The file or directory being written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The operating system refused access (`EACCES`/`EPERM`) to the spool directory or one of its files.
    ///
    /// Retry: no, not until the permissions are fixed; the spool is unusable for this process.
    #[error("permission denied on {path}")]
    PermissionDenied {
        /// The file or directory that could not be accessed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The spool directory does not exist any more (it was deleted while the spool was open).
    ///
    /// Retry: yes; the next [`append`](super::Spool::append) re-creates the directory. Events that were in the deleted
    /// directory are gone; they are counted in [`SpoolStats::corrupt_records`](super::SpoolStats::corrupt_records).
    #[error("spool directory {path} is missing")]
    DirectoryMissing {
        /// The spool directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The spool directory is on a read-only file system (`EROFS`).
    ///
    /// Retry: no, not until the file system is writable again; records that were already spooled can still be read.
    #[error("spool directory {path} is on a read-only file system")]
    ReadOnly {
        /// The file or directory being written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The spool path exists and is not a directory.
    ///
    /// Retry: no; the configuration is wrong.
    #[error("spool path {path} is not a directory")]
    NotADirectory {
        /// The configured spool path.
        path: PathBuf,
    },
    /// A record of the batch is larger than `max_record_bytes`; nothing of the batch was written.
    ///
    /// Retry: not with the same record (it will never fit); the batch without it can be appended.
    #[error("record {index} of the batch is {len} bytes, more than the limit of {max} bytes")]
    RecordTooLarge {
        /// The index of the offending record in the batch.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The configured `max_record_bytes`.
        max: u32,
    },
    /// The configuration is invalid.
    ///
    /// Retry: no; fix the configuration.
    #[error("invalid spool configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// The position passed to [`ack`](super::SpoolReader::ack) was handed out by another reader.
    ///
    /// Retry: no; positions are only valid with the reader that handed them out (the records are handed out again by
    /// the new reader, at least once).
    #[error("the position was handed out by another spool reader")]
    ForeignPosition,
    /// Any other input/output error.
    ///
    /// Retry: yes, the condition may be transient (`EIO` on a flaky device, `EINTR`, too many open files).
    #[error("i/o error on {path}")]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl SpoolError {
    /// Whether retrying the same call later can succeed without outside intervention (see each variant).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::DiskFull { .. } | Self::DirectoryMissing { .. } | Self::Io { .. }
        )
    }

    /// Classifies an I/O error on `path` into the typed variants.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                Self::DiskFull { path, source }
            }
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { path, source },
            io::ErrorKind::ReadOnlyFilesystem => Self::ReadOnly { path, source },
            io::ErrorKind::NotFound => Self::DirectoryMissing { path, source },
            _ => Self::Io { path, source },
        }
    }
}
