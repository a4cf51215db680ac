//! The peer designs: how other telemetry code keeps events on disk, built as their design documents describe them,
//! with the same sample event, so our spool is measured beside them in the same run.
//!
//! - [`json_files`]: one JSON file per event in a directory (`../shared/seeds/003_055d418e4b835958.txt`).
//! - [`sqlite_wal`]: a SQLite table in WAL mode, one row per event (`../shared/seeds/001_23f7b34e757062b0.txt`).

pub mod json_files;
pub mod sqlite_wal;
