//! fake-ingest's floor: an axum server whose `POST /ingest` handler only parses the JSON body and answers `202`
//! with the same small JSON body fake-ingest answers (`{"accepted": N, "duplicates": 0}`).
//!
//! No validation, no store, no dedupe, no faults: the least an axum ingest endpoint does. It runs on its own thread
//! with a multi-threaded tokio runtime (two workers, as fake-ingest's), on loopback, port 0, with `TCP_NODELAY` set
//! on every connection, as fake-ingest does.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::Value;
use tokio::sync::oneshot;

/// The router: `POST /ingest` parses the body as JSON and counts the batch.
pub fn app() -> Router {
    Router::new().route("/ingest", post(ingest))
}

async fn ingest(body: Bytes) -> impl IntoResponse {
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => {
            let accepted = value
                .get("batch")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let answer = format!("{{\"accepted\":{accepted},\"duplicates\":0}}");
            (
                StatusCode::ACCEPTED,
                [(header::CONTENT_TYPE, "application/json")],
                answer,
            )
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\":\"bad json\"}".to_owned(),
        ),
    }
}

/// The bare server, running until dropped.
#[derive(Debug)]
pub struct BareAxumServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BareAxumServer {
    /// Binds `127.0.0.1:0` and serves [`app`] on a runtime thread.
    ///
    /// # Errors
    /// Any I/O error building the runtime or binding the socket.
    pub fn start() -> io::Result<Self> {
        Self::serve(app())
    }

    /// Binds `127.0.0.1:0` and serves `router` the same way (runtime, socket options, shutdown): how the peers
    /// that put a store behind the same handler are served.
    ///
    /// # Errors
    /// Any I/O error building the runtime or binding the socket.
    pub fn serve(router: Router) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                // TCP_NODELAY, as fake-ingest sets it: without it a small answer can wait for a delayed ACK.
                let listener = listener.tap_io(|stream| {
                    let _ = stream.set_nodelay(true);
                });
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BareAxumServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floors::post_loop::PostLoop;
    use crate::sample::sample_event;

    #[test]
    fn the_bare_server_accepts_a_batch_plain_and_gzipped() {
        let server = BareAxumServer::start().unwrap();
        PostLoop::new(&server.endpoint(), false)
            .post(&vec![sample_event(); 50])
            .unwrap();
        // The bare handler does not decompress: a gzipped body is not JSON to it.
        assert!(
            PostLoop::new(&server.endpoint(), true)
                .post(&[sample_event()])
                .is_err()
        );
    }
}
