//! The PostHog capture front door: decodes `/batch` and single-event (`/capture`, `/e`, `/i/v0/e`) bodies into
//! [`IncomingEvent`]s and encodes the answers the way PostHog's capture service gives them, so PostHog's own
//! clients can be pointed at fake-ingest.
//!
//! # Bodies
//! - `/batch` and `/batch/`: `{"batch": [event, ...], "api_key": "...", "sent_at": "...", "historical_migration": b}`
//!   (the api key may also be `token` or `$token`; a bare JSON array of events is accepted too).
//! - `/capture`, `/e`, `/i/v0/e` (each with or without a trailing slash): one event object (with its api key in
//!   it), or the same `{"batch": [...]}` object, or a bare array of events.
//! - The body is gzip when `Content-Encoding` says so, when the query has `compression=gzip` (or posthog-js's
//!   `gzip-js`), or when it starts with the gzip magic bytes, whatever the headers say. Any `Content-Type` is
//!   read as JSON (posthog-js sends `text/plain` to avoid a CORS preflight).
//!
//! # Events
//! `event` (non-empty string) and `distinct_id` (a string or a number; also found in `properties.distinct_id`,
//! where posthog-js puts it) are required; `timestamp` is optional and, when present, must be an ISO 8601 /
//! RFC 3339 date-time (one without an offset is read as UTC); `uuid` is optional and, when present, must be a
//! UUID. The api key is looked for on the request (`api_key`, `token`, `$token`), then on each event and in its
//! properties (`token`, `$token`), where posthog-js puts it.
//!
//! # Dedupe key
//! The event's `uuid` (normalized to lowercase, hyphenated). An event without one is stored under a fresh key
//! that never matches another, with `has_idempotency_key: false`: resending it stores it again.
//!
//! # Answers
//! `200 {"status": 1}` when stored (PostHog's clients take any other status, `202` included, as a failure).
//! Errors have PostHog's error shape `{"type": ..., "code": ..., "detail": ..., "attr": ...}`: `400` for a bad
//! payload, an empty batch, a missing event name or distinct id, an invalid timestamp or uuid; `401` when no api
//! key is given; `413` past the body limit. Nothing of a request with an error is stored.

use serde_json::{Map, Value, json};

use crate::event::IncomingEvent;
use crate::web_body::{GunzipError, gunzip_limited, has_gzip_magic};

/// The routes PostHog clients post to, all of which take every body form this module decodes.
pub(crate) const ROUTES: [&str; 8] = [
    "/batch",
    "/batch/",
    "/capture",
    "/capture/",
    "/e",
    "/e/",
    "/i/v0/e",
    "/i/v0/e/",
];

/// The success body, `{"status": 1}` (`200`).
pub(crate) const SUCCESS_BODY: &str = r#"{"status":1}"#;

/// A decoded, valid request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    /// The project api key the client sent (`api_key`, `token` or `$token`).
    pub(crate) api_key: String,
    /// The request's `sent_at`, when given.
    pub(crate) sent_at: Option<String>,
    /// Whether the client marked the batch as a historical migration.
    pub(crate) historical_migration: bool,
    /// The events, in request order.
    pub(crate) events: Vec<IncomingEvent>,
}

/// Why a request is refused; nothing of it is stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PosthogError {
    /// The body is not a PostHog payload (not JSON, or the wrong shape). Do not retry.
    #[error("invalid payload: {0}")]
    BadPayload(String),
    /// The body claims gzip but is not valid gzip. Do not retry.
    #[error("invalid payload: the body is not valid gzip")]
    BadGzip(#[source] std::io::Error),
    /// The batch has no events. Do not retry.
    #[error("invalid payload: the batch is empty")]
    EmptyBatch,
    /// One event is invalid (no event name, no distinct id, a bad timestamp or uuid). Do not retry.
    #[error("invalid payload: event {index}: {reason}")]
    InvalidEvent {
        /// The position of the event in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No api key anywhere in the request. Do not retry until it is configured.
    #[error("API key not valid. You can find your project API key in PostHog project settings.")]
    MissingApiKey,
    /// The body, after decompression, is over the limit. Send smaller batches.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl PosthogError {
    /// The HTTP status PostHog answers with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            PosthogError::MissingApiKey => 401,
            PosthogError::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The client-facing message (with the gzip error's source, which is the useful part there).
    pub(crate) fn detail(&self) -> String {
        match self {
            PosthogError::BadGzip(source) => format!("{self}: {source}"),
            _ => self.to_string(),
        }
    }

    /// The index of the offending event, when one event is at fault.
    pub(crate) fn attr(&self) -> Option<usize> {
        match self {
            PosthogError::InvalidEvent { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// An error body in PostHog's shape, `{"type", "code", "detail", "attr"}`, with the type and code PostHog uses for
/// `status`; `attr` is the index of the offending event, when one is at fault.
pub(crate) fn error_body_for(status: u16, detail: &str, attr: Option<usize>) -> String {
    let (error_type, code) = match status {
        401 => ("authentication_error", "invalid_api_key"),
        405 => ("validation_error", "method_not_allowed"),
        413 => ("validation_error", "payload_too_large"),
        429 => ("throttled", "rate_limited"),
        500..=599 => ("server_error", "server_error"),
        _ => ("validation_error", "invalid_payload"),
    };
    json!({ "type": error_type, "code": code, "detail": detail, "attr": attr }).to_string()
}

/// Whether the body is gzip: by `Content-Encoding`, by `compression=gzip` (or `gzip-js`) in the query, or by
/// the gzip magic bytes whatever the headers say.
pub(crate) fn is_gzip(content_encoding: Option<&str>, query: Option<&str>, body: &[u8]) -> bool {
    let by_header = content_encoding.is_some_and(|encoding| {
        encoding
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("gzip"))
    });
    let by_query = query.is_some_and(|query| {
        query.split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            name == "compression"
                && (value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("gzip-js"))
        })
    });
    by_header || by_query || has_gzip_magic(body)
}

/// Decompresses the body when [`is_gzip`] says so, and checks the limit either way.
///
/// # Errors
/// [`PosthogError::BadGzip`] for a corrupt gzip body, [`PosthogError::TooLarge`] past `limit`.
pub(crate) fn decompress(
    content_encoding: Option<&str>,
    query: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, PosthogError> {
    if is_gzip(content_encoding, query, body) {
        gunzip_limited(body, limit).map_err(|error| match error {
            GunzipError::Invalid(source) => PosthogError::BadGzip(source),
            GunzipError::TooLarge { limit } => PosthogError::TooLarge { limit },
        })
    } else if body.len() > limit {
        Err(PosthogError::TooLarge { limit })
    } else {
        Ok(body.to_vec())
    }
}

/// Decodes and validates an (already decompressed) body of any of the [`ROUTES`].
///
/// # Errors
/// A [`PosthogError`] saying what is wrong; the whole request is refused then.
pub(crate) fn decode(body: &[u8]) -> Result<Batch, PosthogError> {
    let payload: Value = serde_json::from_slice(body).map_err(|error| {
        PosthogError::BadPayload(format!("the body is not valid JSON: {error}"))
    })?;
    let (envelope, raw_events) = match payload {
        Value::Array(events) => (Map::new(), events),
        Value::Object(mut object) => match object.remove("batch") {
            Some(Value::Array(events)) => (object, events),
            Some(_) => {
                return Err(PosthogError::BadPayload(
                    "`batch` must be an array of events".to_owned(),
                ));
            }
            None if object.contains_key("event") => (Map::new(), vec![Value::Object(object)]),
            None => {
                return Err(PosthogError::BadPayload(
                    "expected a `batch` array or a single event with an `event` name".to_owned(),
                ));
            }
        },
        _ => {
            return Err(PosthogError::BadPayload(
                "the body must be a JSON object or array".to_owned(),
            ));
        }
    };
    if raw_events.is_empty() {
        return Err(PosthogError::EmptyBatch);
    }

    let mut api_key = api_key_in(&envelope);
    let mut events = Vec::with_capacity(raw_events.len());
    for (index, raw_event) in raw_events.into_iter().enumerate() {
        let Value::Object(raw_event) = raw_event else {
            return Err(PosthogError::InvalidEvent {
                index,
                reason: "an event must be a JSON object".to_owned(),
            });
        };
        if api_key.is_none() {
            api_key = api_key_in(&raw_event).or_else(|| match raw_event.get("properties") {
                Some(Value::Object(properties)) => api_key_in(properties),
                _ => None,
            });
        }
        let event = decode_event(raw_event)
            .map_err(|reason| PosthogError::InvalidEvent { index, reason })?;
        events.push(event);
    }
    let api_key = api_key.ok_or(PosthogError::MissingApiKey)?;

    let sent_at = match envelope.get("sent_at").or_else(|| envelope.get("sentAt")) {
        Some(Value::String(sent_at)) => Some(sent_at.clone()),
        _ => None,
    };
    let historical_migration = matches!(
        envelope.get("historical_migration"),
        Some(Value::Bool(true))
    );
    Ok(Batch {
        api_key,
        sent_at,
        historical_migration,
        events,
    })
}

/// The first non-empty string among `api_key`, `token` and `$token` of an object.
fn api_key_in(object: &Map<String, Value>) -> Option<String> {
    ["api_key", "token", "$token"]
        .iter()
        .find_map(|name| match object.get(*name) {
            Some(Value::String(key)) if !key.trim().is_empty() => Some(key.clone()),
            _ => None,
        })
}

/// One event object to an [`IncomingEvent`], or why it is invalid.
fn decode_event(mut raw_event: Map<String, Value>) -> Result<IncomingEvent, String> {
    let name = match raw_event.remove("event") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        Some(Value::String(_)) => return Err("`event` is empty".to_owned()),
        Some(_) => return Err("`event` must be a string".to_owned()),
        None => return Err("`event` is missing".to_owned()),
    };
    let properties = match raw_event.remove("properties") {
        Some(Value::Object(properties)) => properties,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("`properties` must be an object".to_owned()),
    };
    let distinct_id = raw_event
        .get("distinct_id")
        .filter(|value| !value.is_null())
        .or_else(|| {
            properties
                .get("distinct_id")
                .filter(|value| !value.is_null())
        });
    let distinct_id = match distinct_id {
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(_)) => return Err("`distinct_id` is empty".to_owned()),
        Some(_) => return Err("`distinct_id` must be a string or a number".to_owned()),
        None => return Err("`distinct_id` is missing".to_owned()),
    };
    let timestamp = match raw_event.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            normalize_timestamp(text)
                .ok_or_else(|| format!("`timestamp` {text:?} is not an ISO 8601 date-time"))?,
        ),
        Some(_) => return Err("`timestamp` must be a string".to_owned()),
    };
    let (dedupe_key, has_idempotency_key) = match raw_event.get("uuid") {
        None | Some(Value::Null) => (format!("nokey:{}", uuid::Uuid::now_v7()), false),
        Some(Value::String(text)) => {
            let uuid = uuid::Uuid::try_parse(text)
                .map_err(|_| format!("`uuid` {text:?} is not a UUID"))?;
            (uuid.hyphenated().to_string(), true)
        }
        Some(_) => return Err("`uuid` must be a string".to_owned()),
    };
    Ok(IncomingEvent {
        dedupe_key,
        has_idempotency_key,
        name,
        timestamp,
        distinct_id: Some(distinct_id),
        resource: None,
        shared: None,
        properties,
    })
}

/// An ISO 8601 date-time as RFC 3339 in UTC; one without an offset is taken as UTC, as PostHog does.
fn normalize_timestamp(text: &str) -> Option<String> {
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Some(timestamp.to_string());
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|zoned| zoned.timestamp().to_string())
}

pub(crate) mod http;

#[cfg(test)]
mod tests;
