//! The "SQLite in WAL mode" peer: a local SQLite table as the buffer, one row per event.
//!
//! That design records each tool call as a row of a SQLite table (WAL mode, so readers do not block the writer),
//! batching writes 50 records at a time. This module models it with `rusqlite`'s bundled SQLite and the same sample
//! event: one row per event (its id, name, `distinct_id`, timestamp and properties as JSON text), written either
//!
//! - one `INSERT` per event in autocommit mode ([`SqliteWalPeer::insert_one`]), or
//! - in one transaction per batch ([`SqliteWalPeer::insert_batch`], the design's batches of 50).
//!
//! With [`Synchronous::Normal`] (the usual WAL setting) a commit does not wait for the disk: the rows are durable
//! only after the next WAL checkpoint, so this peer is compared with our spool's never-fsync policy.
//! [`Synchronous::Full`] syncs the WAL at every commit. Reading back ([`SqliteWalPeer::read_batch`]) selects the
//! oldest rows, and acknowledging ([`SqliteWalPeer::delete_through`]) deletes them.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::sample::SampleEvent;

/// SQLite's `synchronous` setting for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: commits reach the WAL file but are synced only at checkpoints.
    Normal,
    /// `synchronous=FULL`: the WAL is synced at every commit.
    Full,
}

impl Synchronous {
    /// Opens (or creates) the database at `path` in WAL mode with this setting.
    ///
    /// # Errors
    /// Any SQLite error opening the file or setting the pragmas.
    pub fn open_wal(self, path: &Path) -> rusqlite::Result<Connection> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        connection.pragma_update(None, "synchronous", synchronous)?;
        Ok(connection)
    }
}

/// A SQLite database in WAL mode with one table of events.
#[derive(Debug)]
pub struct SqliteWalPeer {
    connection: Connection,
}

/// One event row read back.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// The row's sequence number (its rowid).
    pub seq: i64,
    /// The event's idempotency key.
    pub uuid: String,
    /// The event name.
    pub event: String,
    /// The user or installation.
    pub distinct_id: String,
    /// RFC 3339.
    pub timestamp: String,
    /// The properties, as JSON text.
    pub properties: String,
}

const INSERT: &str = "INSERT INTO events (uuid, event, distinct_id, timestamp, properties) VALUES (?1, ?2, ?3, ?4, ?5)";

impl SqliteWalPeer {
    /// Opens (or creates) the database at `path` in WAL mode.
    ///
    /// # Errors
    /// Any SQLite error opening the file or creating the table.
    pub fn open(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Self> {
        let connection = synchronous.open_wal(path)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY,
                uuid TEXT NOT NULL,
                event TEXT NOT NULL,
                distinct_id TEXT NOT NULL,
                timestamp TEXT NOT NULL,
                properties TEXT NOT NULL
            )",
        )?;
        Ok(Self { connection })
    }

    /// Stamps `event` and inserts it in its own (autocommit) transaction.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn insert_one(&self, event: &SampleEvent) -> rusqlite::Result<()> {
        insert(&self.connection, event)
    }

    /// Stamps `events` and inserts them in one transaction.
    ///
    /// # Errors
    /// Any SQLite error; the transaction is rolled back.
    pub fn insert_batch(&mut self, events: &[SampleEvent]) -> rusqlite::Result<()> {
        let transaction = self.connection.transaction()?;
        for event in events {
            insert(&transaction, event)?;
        }
        transaction.commit()
    }

    /// The oldest `limit` rows.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn read_batch(&self, limit: usize) -> rusqlite::Result<Vec<EventRow>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, uuid, event, distinct_id, timestamp, properties FROM events ORDER BY seq LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![limit], |row| {
            Ok(EventRow {
                seq: row.get(0)?,
                uuid: row.get(1)?,
                event: row.get(2)?,
                distinct_id: row.get(3)?,
                timestamp: row.get(4)?,
                properties: row.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// Deletes every row up to and including `seq` (the acknowledgement).
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn delete_through(&self, seq: i64) -> rusqlite::Result<usize> {
        self.connection
            .prepare_cached("DELETE FROM events WHERE seq <= ?1")?
            .execute(params![seq])
    }
}

fn insert(connection: &Connection, event: &SampleEvent) -> rusqlite::Result<()> {
    let wire = event.stamp();
    let properties = serde_json::to_string(wire.properties).unwrap_or_default();
    let uuid = wire.uuid.hyphenated().to_string();
    connection.prepare_cached(INSERT)?.execute(params![
        uuid,
        wire.event,
        wire.distinct_id,
        wire.timestamp,
        properties
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sample_event;

    #[test]
    fn rows_inserted_one_by_one_and_in_batches_are_read_back_in_order_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut peer =
            SqliteWalPeer::open(&dir.path().join("events.db"), Synchronous::Normal).unwrap();
        peer.insert_one(&sample_event()).unwrap();
        peer.insert_batch(&vec![sample_event(); 50]).unwrap();
        let rows = peer.read_batch(40).unwrap();
        assert_eq!(rows.len(), 40);
        assert!(rows.windows(2).all(|pair| pair[0].seq < pair[1].seq));
        assert_eq!(peer.delete_through(rows[39].seq).unwrap(), 40);
        assert_eq!(peer.read_batch(100).unwrap().len(), 11);
    }
}
