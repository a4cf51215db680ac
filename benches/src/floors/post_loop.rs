//! The end-to-end floor: serialize each batch as one `/ingest` body and POST it with the same HTTP client as
//! flush-core (`ureq` 3, one keep-alive connection), optionally gzipped, and wait for the answer.
//!
//! No queue, no spool, no retries: only the work a sender cannot avoid.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sample::{SampleEvent, ingest_body};

/// A blocking HTTP client posting batches to one endpoint.
#[derive(Debug)]
pub struct PostLoop {
    agent: ureq::Agent,
    url: String,
    gzip: bool,
}

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The request could not be sent or the response not read.
    #[error("http request failed")]
    Http(#[from] ureq::Error),
    /// The server answered, but not with a 2xx.
    #[error("server answered {0}")]
    Status(u16),
    /// Compressing the body failed.
    #[error("gzip failed")]
    Gzip(#[from] std::io::Error),
}

impl PostLoop {
    /// A client for `{endpoint}/ingest`, gzipping bodies when `gzip`.
    pub fn new(endpoint: &str, gzip: bool) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            agent,
            url: format!("{}/ingest", endpoint.trim_end_matches('/')),
            gzip,
        }
    }

    /// Stamps and serializes `events` as one batch, POSTs it and reads the answer.
    ///
    /// # Errors
    /// [`PostError`] when the request fails or the answer is not a 2xx.
    pub fn post(&self, events: &[SampleEvent]) -> Result<(), PostError> {
        self.post_body(&ingest_body(events))
    }

    /// POSTs a body that is already serialized (gzipped on the way if the client gzips) and reads the answer.
    ///
    /// # Errors
    /// [`PostError`] when the request fails or the answer is not a 2xx.
    pub fn post_body(&self, body: &[u8]) -> Result<(), PostError> {
        let request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        let response = if self.gzip {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            encoder.write_all(body)?;
            request
                .header("Content-Encoding", "gzip")
                .send(&encoder.finish()?[..])?
        } else {
            request.send(body)?
        };
        let status = response.status().as_u16();
        // Reading the body to its end lets the agent reuse the connection.
        response.into_body().read_to_vec()?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(PostError::Status(status))
        }
    }
}
