//! The end-to-end floor: serialize each batch as one request body and POST it with the same HTTP client as
//! flush-core (`ureq` 3), optionally gzipped, and wait for the answer.
//!
//! No queue, no spool, no retries: only the work a sender cannot avoid. Like flush-core's sender it reads every
//! answer to its end, so one keep-alive connection carries every batch, and it never starts a thread to resolve the
//! host: its timeouts are per phase, with none on name resolution (`ureq` resolves on a new thread per request when
//! a timeout covers resolution; flush-core's sender avoids that by keeping the host's addresses).

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::sample::{SampleEvent, ingest_body};

/// The limit on each phase of a request.
const TIMEOUT: Duration = Duration::from_secs(10);

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
        Self::to_url(format!("{}/ingest", endpoint.trim_end_matches('/')), gzip)
    }

    /// A client posting to `url` as written, gzipping bodies when `gzip`.
    pub fn to_url(url: String, gzip: bool) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(TIMEOUT))
            .timeout_send_body(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .timeout_recv_body(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self { agent, url, gzip }
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
        self.post_with("application/json", &[], body)
    }

    /// POSTs `body` with its content type and extra headers (gzipped on the way if the client gzips) and reads the
    /// answer.
    ///
    /// # Errors
    /// [`PostError`] when the request fails or the answer is not a 2xx.
    pub fn post_with(
        &self,
        content_type: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), PostError> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", content_type);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
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
