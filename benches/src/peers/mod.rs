//! The peer designs: how other telemetry code keeps events on disk, built as their design documents describe them,
//! with the same sample event, so our spool is measured beside them in the same run.
//!
//! - [`json_files`]: one JSON file per event in a directory, as a CLI that posts them later keeps them.
//! - [`sqlite_wal`]: a SQLite table in WAL mode,, one row per event, as a service buffering in SQLite keeps them.

pub mod json_files;
pub mod sqlite_wal;
