//! The "ingest server on SQLite in WAL mode" peer (as Mailpit keeps the messages it captures): the bare axum
//! handler of [`crate::floors::bare_axum`] with a store behind it, one row per captured event in a table whose
//! `uuid` is unique, so the database does the dedupe.
//!
//! `POST /ingest` decodes the `{"batch": [...]}` body into events, inserts them with `INSERT OR IGNORE` in one
//! transaction per request (off the async runtime, as fake-ingest moves its durable stores), and answers `202`
//! with `{"accepted": N, "duplicates": M}` as fake-ingest does. [`Synchronous::Full`] syncs the WAL at every commit
//! (durable before the answer, as fake-ingest with `--data-dir`); [`Synchronous::Normal`] does not.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::floors::bare_axum::BareAxumServer;
use crate::peers::sqlite_wal::Synchronous;

/// One event of the body, as the handler keeps it.
#[derive(Debug, Deserialize)]
struct Event {
    uuid: String,
    event: String,
    distinct_id: String,
    timestamp: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct Batch {
    batch: Vec<Event>,
}

/// The database the handler writes to.
#[derive(Debug, Clone)]
pub struct SqliteIngest {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteIngest {
    /// Opens (or creates) the database at `path` in WAL mode with the events table.
    ///
    /// # Errors
    /// Any SQLite error opening the file or creating the table.
    pub fn open(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Self> {
        let connection = synchronous.open_wal(path)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY,
                uuid TEXT NOT NULL UNIQUE,
                event TEXT NOT NULL,
                distinct_id TEXT NOT NULL,
                timestamp TEXT NOT NULL,
                received_at TEXT NOT NULL,
                properties TEXT NOT NULL
            )",
        )?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Stores `events` in one transaction; returns how many were new and how many were duplicates.
    fn store(&self, events: &[Event]) -> rusqlite::Result<(usize, usize)> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let received_at = jiff::Timestamp::now().to_string();
        let transaction = connection.transaction()?;
        let mut accepted = 0;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO events (uuid, event, distinct_id, timestamp, received_at, properties) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for event in events {
                let properties = serde_json::to_string(&event.properties).unwrap_or_default();
                accepted += insert.execute(params![
                    event.uuid,
                    event.event,
                    event.distinct_id,
                    event.timestamp,
                    received_at,
                    properties
                ])?;
            }
        }
        transaction.commit()?;
        Ok((accepted, events.len() - accepted))
    }

    /// How many events the table holds.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn count(&self) -> rusqlite::Result<i64> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
    }

    /// The router: `POST /ingest` stores the batch.
    pub fn app(&self) -> Router {
        Router::new()
            .route("/ingest", post(ingest))
            .with_state(self.clone())
    }

    /// Serves [`SqliteIngest::app`] as the bare axum server is served.
    ///
    /// # Errors
    /// Any I/O error building the runtime or binding the socket.
    pub fn serve(&self) -> io::Result<BareAxumServer> {
        BareAxumServer::serve(self.app())
    }
}

async fn ingest(State(store): State<SqliteIngest>, body: Bytes) -> impl IntoResponse {
    let answer = |status: StatusCode, text: String| {
        (status, [(header::CONTENT_TYPE, "application/json")], text)
    };
    let batch = match serde_json::from_slice::<Batch>(&body) {
        Ok(batch) => batch,
        Err(_) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "{\"error\":\"bad json\"}".to_owned(),
            );
        }
    };
    let stored = tokio::task::spawn_blocking(move || store.store(&batch.batch)).await;
    match stored {
        Ok(Ok((accepted, duplicates))) => answer(
            StatusCode::ACCEPTED,
            format!("{{\"accepted\":{accepted},\"duplicates\":{duplicates}}}"),
        ),
        Ok(Err(_)) | Err(_) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\":\"cannot store\"}".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floors::post_loop::PostLoop;
    use crate::sample::{ingest_body, sample_event};

    #[test]
    fn the_sqlite_server_stores_each_event_once_and_counts_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteIngest::open(&dir.path().join("events.db"), Synchronous::Full).unwrap();
        let server = store.serve().unwrap();
        let client = PostLoop::new(&server.endpoint(), false);
        let body = ingest_body(&vec![sample_event(); 50]);

        client.post_body(&body).unwrap();
        client.post_body(&body).unwrap();
        client.post(&[sample_event()]).unwrap();

        assert_eq!(store.count().unwrap(), 51);
        assert!(client.post_body(b"{\"batch\": 3}").is_err());
    }
}
