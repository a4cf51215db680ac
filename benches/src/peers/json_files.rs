//! The "one JSON file per event" peer: how a CLI that writes each event to its own file and posts them later
//! keeps telemetry.
//!
//! That design keeps each telemetry event as its own file `telemetry-{date}-{id}.json` in a directory; a flush lists
//! the directory, keeps the files not yet flushed, parses them, sorts them oldest first, sends up to a limit and then
//! deletes each sent file. This module models exactly that, with the same sample event:
//!
//! - [`JsonFilesPeer::write`]: serialize, create the file, write, close; with `fsync` on, `fsync` the file before
//!   closing it (the design does not; it is the "durable" variant of the peer). The directory itself is never synced,
//!   so even the fsync variant can lose a file's name in a crash: the peer is given the benefit of the doubt.
//! - [`JsonFilesPeer::read_unflushed`] and [`JsonFilesPeer::mark_flushed`]: list, filter, parse, sort, then delete.
//!
//! Creating a file costs an inode allocation and a directory entry, which dominates and swings a lot between runs;
//! the benchmarks give each iteration batch a fresh directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::sample::SampleEvent;

/// A directory of one JSON file per event.
#[derive(Debug, Clone)]
pub struct JsonFilesPeer {
    dir: PathBuf,
    fsync: bool,
}

/// One event read back from its file.
#[derive(Debug, Clone)]
pub struct UnflushedFile {
    /// The file the event is in.
    pub path: PathBuf,
    /// The parsed event.
    pub event: Value,
}

impl JsonFilesPeer {
    /// A peer writing into `dir` (which must exist), with an `fsync` of each file before it is closed when `fsync`.
    pub fn new(dir: impl Into<PathBuf>, fsync: bool) -> Self {
        Self {
            dir: dir.into(),
            fsync,
        }
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stamps and serializes `event`, then creates, writes and closes its own file. Returns the bytes written.
    ///
    /// # Errors
    /// Any I/O error creating, writing or syncing the file.
    pub fn write(&self, event: &SampleEvent) -> io::Result<usize> {
        let wire = event.stamp();
        let date = wire.timestamp.get(..10).unwrap_or("unknown");
        let path = self
            .dir
            .join(format!("telemetry-{date}-{}.json", wire.uuid));
        let bytes = serde_json::to_vec(&wire).map_err(io::Error::other)?;
        let mut file = File::create(&path)?;
        file.write_all(&bytes)?;
        if self.fsync {
            file.sync_all()?;
        }
        Ok(bytes.len())
    }

    /// Lists the directory, keeps the unflushed `.json` files, parses them, sorts them by timestamp (oldest first)
    /// and returns at most `limit` of them.
    ///
    /// # Errors
    /// Any I/O error listing or reading the directory; a file that does not parse is an error too.
    pub fn read_unflushed(&self, limit: usize) -> io::Result<Vec<UnflushedFile>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if !name.ends_with(".json") || name.ends_with(".flushed.json") {
                continue;
            }
            let event: Value =
                serde_json::from_slice(&fs::read(&path)?).map_err(io::Error::other)?;
            files.push(UnflushedFile { path, event });
        }
        files.sort_by(|a, b| {
            a.event["timestamp"]
                .as_str()
                .cmp(&b.event["timestamp"].as_str())
        });
        files.truncate(limit);
        Ok(files)
    }

    /// Deletes a sent event's file (the design's default; it can also rename it to `.flushed.json`).
    ///
    /// # Errors
    /// Any I/O error removing the file.
    pub fn mark_flushed(&self, file: &UnflushedFile) -> io::Result<()> {
        fs::remove_file(&file.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sample_event;

    #[test]
    fn written_events_are_read_back_oldest_first_and_deleted_when_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let peer = JsonFilesPeer::new(dir.path(), true);
        for _ in 0..5 {
            peer.write(&sample_event()).unwrap();
        }
        let first = peer.read_unflushed(3).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first[0].event["timestamp"].as_str() <= first[1].event["timestamp"].as_str());
        for file in &first {
            peer.mark_flushed(file).unwrap();
        }
        assert_eq!(peer.read_unflushed(10).unwrap().len(), 2);
    }
}
