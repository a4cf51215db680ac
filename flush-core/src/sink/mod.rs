//! The sink seam: how a batch of spooled events becomes one HTTP request, and what the server's answer means for it.
//!
//! A [`Sink`] is the only part of flush-core that knows a backend. The spool stores every event once, in one
//! canonical form (the event object of docs/PROTOCOL.md, see [`DecodedEvent`]), whatever the sink; the sender thread
//! reads a batch, asks the sink to [`encode`](Sink::encode) it at send time, posts the [`Request`] (adding gzip,
//! the timeout and keep-alive), reads `Retry-After` (seconds or an HTTP date), and asks the sink to
//! [`classify`](Sink::classify) the [`Response`] into a [`Verdict`]. Everything else — retries with backoff, the
//! circuit breaker, bisecting a rejected batch down to the poison event, dead letters, acknowledging the spool only
//! after the server stored the batch — is the delivery loop's and holds for every sink. Connection errors and
//! timeouts never reach a sink: they are always retried.
//!
//! So a spool written under one sink is delivered by another, and an event's idempotency key (its `uuid`) is the
//! same whichever sink sends it: each sink puts it where its backend dedupes (`uuid` for `/ingest` and PostHog,
//! the `log.record.uid` attribute for OTLP logs; a span's key is derived from its trace id and span id, which OTLP
//! backends dedupe on).
//!
//! # Built-in sinks
//! | sink | posts to | body |
//! |---|---|---|
//! | [`Ingest`] (the default) | the endpoint, as written | `{"batch": [...]}` (docs/PROTOCOL.md) |
//! | [`PostHog`] | `{endpoint}/batch/` | PostHog's capture batch |
//! | [`OtlpLogs`] | `{endpoint}/v1/logs` | an OTLP `ExportLogsServiceRequest`, protobuf or JSON |
//! | [`OtlpTraces`] | `{endpoint}/v1/traces` | an OTLP `ExportTraceServiceRequest`, protobuf or JSON |
//!
//! # A sink of your own
//! A sink that posts each batch as JSON lines to a webhook, retrying 5xx and `429` and treating `422` as a poison
//! event:
//!
//! ```
//! use flush_core::sink::{Batch, EncodeError, Request, Response, Sink, SinkError, Url, Verdict};
//!
//! #[derive(Debug)]
//! struct JsonLines;
//!
//! impl Sink for JsonLines {
//!     fn name(&self) -> &str {
//!         "json_lines"
//!     }
//!
//!     fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
//!         Ok(endpoint.clone())
//!     }
//!
//!     fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
//!         let mut body = Vec::new();
//!         for event in batch.decode()? {
//!             let line = serde_json::json!({
//!                 "id": event.uuid().to_string(),
//!                 "name": event.name(),
//!                 "at": event.timestamp_rfc3339(),
//!                 "fields": event.properties(),
//!             });
//!             serde_json::to_writer(&mut body, &line).map_err(EncodeError::new)?;
//!             body.push(b'\n');
//!         }
//!         Ok(Request::new("application/x-ndjson", body))
//!     }
//!
//!     fn classify(&self, response: &Response<'_>) -> Verdict {
//!         let reason = || format!("HTTP {}: {}", response.status(), response.body_text());
//!         match response.status() {
//!             200..=299 => Verdict::Accepted,
//!             429 | 500..=599 => Verdict::Retry { reason: reason(), retry_after: response.retry_after() },
//!             422 => Verdict::Reject { status: 422, reason: reason() },
//!             413 => Verdict::TooLarge { reason: reason() },
//!             status => Verdict::Misconfigured { status, reason: reason() },
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = flush_core::Config::builder("https://hooks.example.com/telemetry")
//!     .sink(JsonLines)
//!     .distinct_id("install-1")
//!     .spool_dir("/var/lib/my-app/telemetry")
//!     .build()?;
//! assert_eq!(config.url().as_str(), "https://hooks.example.com/telemetry");
//!
//! // A sink is tested without a server: a batch is stored records in the canonical form.
//! let records = vec![br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"deploy","distinct_id":"install-1","timestamp":"2026-11-23T10:55:10.123Z","properties":{"ok":true}}"#.to_vec()];
//! let request = JsonLines.encode(&Batch::new(&records, "install-1"))?;
//! let line: serde_json::Value = serde_json::from_slice(request.body().trim_ascii_end())?;
//! assert_eq!((line["name"].as_str(), line["fields"]["ok"].as_bool()), (Some("deploy"), Some(true)));
//! assert_eq!(JsonLines.classify(&Response::new(422, b"bad")), Verdict::Reject { status: 422, reason: "HTTP 422: bad".into() });
//! # Ok(())
//! # }
//! ```

mod ingest;
mod otlp;
mod otlp_logs;
mod otlp_traces;
mod posthog;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
pub use url::Url;
use uuid::Uuid;

pub use ingest::Ingest;
pub use otlp::OtlpEncoding;
pub use otlp_logs::OtlpLogs;
pub use otlp_traces::OtlpTraces;
pub use posthog::PostHog;

use crate::event::{StoredEvent, decode_stored};
use crate::stored_view::StoredView;

/// Turns a batch of spooled events into one HTTP `POST` and classifies the answer. See the [module docs](self).
///
/// Implementations are shared with the sender thread (`Send + Sync`) and must not block: `encode` and `classify`
/// run on the sender thread between requests.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and reports (`ingest`, `posthog`, `otlp_logs`).
    fn name(&self) -> &str;

    /// The URL every request goes to, from the endpoint given to [`Config::builder`](crate::Config::builder)
    /// (already parsed: `http` or `https`, with a host). Called once, by
    /// [`ConfigBuilder::build`](crate::ConfigBuilder::build).
    ///
    /// # Errors
    /// [`SinkError`] when the sink cannot work with this endpoint or with its own settings; `build` returns it as
    /// [`ConfigError::Sink`](crate::ConfigError::Sink).
    fn url(&self, endpoint: &Url) -> Result<Url, SinkError>;

    /// The request for `batch` (at least one event).
    ///
    /// # Errors
    /// [`EncodeError`] when some event cannot be encoded. The batch is then halved until the event that cannot
    /// be encoded stands alone, and that event goes to the dead-letter file; the others are sent.
    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError>;

    /// What the server's answer means for the batch.
    fn classify(&self, response: &Response<'_>) -> Verdict;
}

/// What a [`Sink`] tells the delivery loop to do with the batch it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The server stored every event: acknowledge them.
    Accepted,
    /// The server stored the batch except `rejected` events it will never take (OTLP's partial success). Not
    /// retried: the rejected count goes to `Stats::partially_rejected` and to the dead-letter file with `message`.
    PartiallyAccepted {
        /// How many events the server rejected (at most the batch's length).
        rejected: u64,
        /// The server's explanation.
        message: String,
    },
    /// Send the same batch again after a backoff (same events, same idempotency keys).
    Retry {
        /// What happened, for `Stats::last_error`.
        reason: String,
        /// The server's `Retry-After`, used as the least delay (capped by `RetryPolicy::max_retry_after`).
        retry_after: Option<Duration>,
    },
    /// Some event of the batch is bad: the batch is halved until the rejected event stands alone, which goes to the
    /// dead-letter file; the others are sent.
    Reject {
        /// The HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
    /// The body is too large: the batch is halved; a single event that is still too large is dead-lettered.
    TooLarge {
        /// The server's reason.
        reason: String,
    },
    /// A configuration problem (authentication, a wrong route): keep the events and open the circuit breaker; the
    /// half-open probe tries again after the cooldown.
    Misconfigured {
        /// The HTTP status.
        status: u16,
        /// The server's reason.
        reason: String,
    },
}

/// The events a sink encodes into one request, oldest first, in their canonical stored form.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    records: &'a [Vec<u8>],
    installation_id: &'a str,
}

impl<'a> Batch<'a> {
    /// A batch of stored records (each one JSON object of the canonical form) for the reporter `installation_id`:
    /// what the sender hands a sink, and what a test of a sink, or a benchmark of its encoding, builds.
    pub fn new(records: &'a [Vec<u8>], installation_id: &'a str) -> Self {
        Self {
            records,
            installation_id,
        }
    }

    /// The events' stored bytes, each one JSON object of the canonical form (docs/PROTOCOL.md's `batch` array
    /// element), in order.
    pub fn records(&self) -> &'a [Vec<u8>] {
        self.records
    }

    /// [`records`](Self::records), each idempotency key once (the first record under a key is kept), without
    /// decoding more than each record's `uuid`.
    pub fn unique_records(&self) -> Vec<&'a [u8]> {
        let mut seen = std::collections::HashSet::with_capacity(self.records.len());
        self.records
            .iter()
            .map(Vec::as_slice)
            .filter(|record| match uuid_of_stored(record) {
                Some(uuid) => seen.insert(uuid),
                // Not canonical: the sink's encoding (or the server) deals with it.
                None => true,
            })
            .collect()
    }

    /// The reporter's `distinct_id` (the installation id unless the configuration gives one); an event may carry
    /// another one of its own.
    pub fn installation_id(&self) -> &'a str {
        self.installation_id
    }

    /// The events, decoded, in order, each idempotency key once: an event stored twice under the same key (a
    /// caller-chosen key recorded again) is sent once.
    ///
    /// # Errors
    /// [`EncodeError`] when a record is not in the canonical form.
    pub fn decode(&self) -> Result<Vec<DecodedEvent>, EncodeError> {
        self.read_each_key_once(
            |record| decode_stored(record).map(|stored| DecodedEvent { stored }),
            |event| event.stored.uuid,
        )
    }

    /// The events read in place (no `Value` tree), in order, each idempotency key once, as
    /// [`decode`](Self::decode) gives them: what the built-in sinks encode from.
    ///
    /// # Errors
    /// [`EncodeError`] when a record is not in the canonical form.
    pub(crate) fn views(&self) -> Result<Vec<StoredView<'a>>, EncodeError> {
        self.read_each_key_once(StoredView::read, StoredView::uuid)
    }

    /// Every record read with `read`, in order, keeping the first event of each idempotency key.
    fn read_each_key_once<T, E>(
        &self,
        read: impl Fn(&'a [u8]) -> Result<T, E>,
        key: impl Fn(&T) -> Uuid,
    ) -> Result<Vec<T>, EncodeError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut seen = std::collections::HashSet::with_capacity(self.records.len());
        let mut events = Vec::with_capacity(self.records.len());
        for record in self.records {
            let event = read(record).map_err(EncodeError::new)?;
            if seen.insert(key(&event)) {
                events.push(event);
            }
        }
        Ok(events)
    }
}

/// One event read back from the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    stored: StoredEvent,
}

impl DecodedEvent {
    /// The idempotency key: a UUID v7 minted by `record()`, or the caller's own key.
    pub fn uuid(&self) -> Uuid {
        self.stored.uuid
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.stored.name
    }

    /// The user or installation the event belongs to.
    pub fn distinct_id(&self) -> &str {
        &self.stored.distinct_id
    }

    /// The event's time: its own, or the recording instant.
    pub fn timestamp(&self) -> SystemTime {
        SystemTime::from(self.stored.timestamp)
    }

    /// The event's time in RFC 3339, UTC (`Z`), as stored: identical on every resend.
    pub fn timestamp_rfc3339(&self) -> &str {
        &self.stored.timestamp_text
    }

    /// The event's time in nanoseconds since the Unix epoch, `None` before 1970.
    pub fn unix_nanos(&self) -> Option<u64> {
        u64::try_from(self.stored.timestamp.as_nanosecond()).ok()
    }

    /// The properties the application recorded (a later one with the same key won).
    pub fn properties(&self) -> &Map<String, Value> {
        &self.stored.properties
    }
}

/// One HTTP `POST` a sink built: content type, extra headers and the (uncompressed) body. The sender compresses the
/// body when the configuration asks for gzip, and sets `Content-Encoding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with this `Content-Type` and body.
    pub fn new(content_type: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            content_type: content_type.into(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (e.g. an authorization header).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The `Content-Type`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The extra headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body, before compression.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// The server's answer, as a sink classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    status: u16,
    content_type: Option<&'a str>,
    retry_after: Option<Duration>,
    body: &'a [u8],
}

impl<'a> Response<'a> {
    /// An answer with this status and body (no content type, no `Retry-After`).
    pub fn new(status: u16, body: &'a [u8]) -> Self {
        Self {
            status,
            content_type: None,
            retry_after: None,
            body,
        }
    }

    /// The same answer with a `Content-Type`.
    #[must_use]
    pub fn with_content_type(mut self, content_type: &'a str) -> Self {
        self.content_type = Some(content_type);
        self
    }

    /// The same answer with a `Retry-After` delay.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&'a str> {
        self.content_type
    }

    /// The `Retry-After` delay from now, from either of its forms (seconds or an HTTP date; a date in the past is
    /// zero), if the server sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The body (its first 64 KiB).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The body as text for a reason: lossy UTF-8, at most 200 characters.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body)
            .chars()
            .take(200)
            .collect()
    }
}

/// A sink cannot work with the configured endpoint or with its own settings (found by
/// [`ConfigBuilder::build`](crate::ConfigBuilder::build)).
///
/// Not retryable: fix the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SinkError {
    reason: String,
}

impl SinkError {
    /// An error with this reason (lowercase, no trailing period).
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A batch could not be encoded (some event cannot be put into the sink's format).
///
/// Not retryable as such: the delivery loop isolates the event that cannot be encoded and dead-letters it.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the batch")]
pub struct EncodeError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl EncodeError {
    /// An encoding error caused by `source`.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// The `uuid` of a record in the canonical form. The spooler writes `uuid` first, so the 36 characters after
/// `{"uuid":"` are read without parsing the record; anything else is parsed.
fn uuid_of_stored(record: &[u8]) -> Option<Uuid> {
    const PREFIX: &[u8] = br#"{"uuid":""#;
    let fast = record
        .strip_prefix(PREFIX)
        .filter(|rest| rest.get(36) == Some(&b'"'))
        .and_then(|rest| Uuid::try_parse_ascii(&rest[..36]).ok());
    fast.or_else(|| crate::event::uuid_of(record).and_then(|text| Uuid::try_parse(&text).ok()))
}

/// What a failed answer means, the same for every built-in sink once its backend's statuses are sorted: `retryable`
/// ones are tried again (after the server's delay, if it gave one), `rejecting` ones mean a bad event in the batch
/// (bisected down to it), 413 means too large (split), and any other status keeps the data and opens the breaker.
pub(crate) fn failure_verdict(
    response: &Response<'_>,
    retryable: bool,
    rejecting: bool,
    reason: String,
) -> Verdict {
    let status = response.status();
    if retryable {
        Verdict::Retry {
            reason,
            retry_after: response.retry_after(),
        }
    } else if rejecting {
        Verdict::Reject { status, reason }
    } else if status == 413 {
        Verdict::TooLarge { reason }
    } else {
        Verdict::Misconfigured { status, reason }
    }
}

/// `endpoint` with `suffix` (which starts with `/`) appended to its path, whatever trailing slash it has; the query
/// is kept.
pub(crate) fn with_path_suffix(endpoint: &Url, suffix: &str) -> Url {
    let mut url = endpoint.clone();
    let path = format!("{}{suffix}", endpoint.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffix_is_appended_once_whatever_the_trailing_slash() {
        for endpoint in [
            "http://h:4318",
            "http://h:4318/",
            "http://h:4318/otel/",
            "http://h:4318/otel",
        ] {
            let url = with_path_suffix(&Url::parse(endpoint).unwrap(), "/v1/logs");
            assert!(url.as_str().ends_with("/v1/logs"), "{url}");
            assert!(!url.as_str().contains("//v1"), "{url}");
        }
        let url = with_path_suffix(&Url::parse("https://h/x?token=1").unwrap(), "/batch/");
        assert_eq!(url.as_str(), "https://h/x/batch/?token=1");
    }

    #[test]
    fn decoding_a_batch_keeps_each_idempotency_key_once() {
        let record = br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10.123Z"}"#.to_vec();
        let other = br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10","event":"f","distinct_id":"d","timestamp":"2026-11-23T10:55:11Z","properties":{"a":[1]}}"#.to_vec();
        let records = vec![record.clone(), other, record];
        let events = Batch::new(&records, "install").decode().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].name(), "f");
        assert_eq!(events[1].properties()["a"], serde_json::json!([1]));
        assert_eq!(events[0].unix_nanos(), Some(1_795_431_310_123_000_000));
        assert_eq!(events[0].timestamp_rfc3339(), "2026-11-23T10:55:10.123Z");
    }

    #[test]
    fn unique_records_keep_the_first_record_of_each_key_in_order() {
        let record = |uuid: &str, name: &str| {
            format!(r#"{{"uuid":"{uuid}","event":"{name}","distinct_id":"d","timestamp":"2026-11-23T10:55:10Z"}}"#)
                .into_bytes()
        };
        let reordered = br#"{"event":"x","uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"}"#.to_vec();
        let records = vec![
            record("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "a"),
            record("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10", "b"),
            record("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "c"),
            reordered,
            b"damaged".to_vec(),
        ];
        let unique = Batch::new(&records, "i").unique_records();
        assert_eq!(unique, [&records[0][..], &records[1][..], &records[4][..]]);
    }

    #[test]
    fn a_record_not_in_the_canonical_form_is_an_encode_error() {
        let records = vec![b"not json".to_vec()];
        let error = Batch::new(&records, "install").decode().unwrap_err();
        assert!(std::error::Error::source(&error).is_some());
    }
}
