//! The `posthog` sink: PostHog's capture API, `POST {host}/batch/`.

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::Value;

use crate::stored_view::StoredView;

use super::{
    Batch, EncodeError, Request, Response, Sink, SinkError, Url, Verdict, failure_verdict,
    with_path_suffix,
};

/// Posts PostHog capture batches to `{endpoint}/batch/`, where the endpoint is the PostHog host (e.g.
/// `https://us.i.posthog.com`, `https://eu.i.posthog.com`, or a self-hosted instance's URL).
///
/// Each event becomes `{"event", "distinct_id", "uuid", "timestamp", "properties"}`: `uuid` is the idempotency key
/// and `timestamp` the recording instant in UTC (both identical on every resend); `properties` are the recorded
/// ones unchanged, plus `$lib` (`flush-core`) and `$lib_version` unless the application set them. An event stored
/// twice under the same key is sent once.
///
/// | answer | verdict |
/// |---|---|
/// | 2xx | accepted |
/// | 408, 429, 5xx | retry (with `Retry-After`, seconds or HTTP date) |
/// | 400 | reject: isolate the poison event |
/// | 413 | too large: split |
/// | 401, 403, other 4xx | misconfigured: keep the events, open the breaker |
///
/// # Where it deliberately differs from PostHog's SDKs
/// PostHog's SDKs (posthog-python, for one: 3 retries by default) retry a batch answered 5xx, `408` or `429` a few
/// times and then drop it, and drop at once a batch answered with another 4xx (`400`, `401`, `403`, `413`).
/// flush-core promises that nothing is lost silently, so:
/// - a transient failure (5xx, `408`, `429`, a timeout, a connection error) is retried until the server stores the
///   batch, with backoff and the circuit breaker in between, never given up after a count; the events wait in the
///   spool meanwhile (bounded by the spool's size and age limits, whose drops are counted);
/// - `400` does not drop the batch: it is halved until the rejected event stands alone, which goes to the
///   dead-letter file, and the others are stored;
/// - `413` splits the batch instead of dropping it;
/// - `401` and `403` (a wrong or revoked api key) keep the events and open the breaker, so they are delivered once
///   the key is fixed (a later run with the right key delivers the same spool);
/// - no `sent_at` is sent: PostHog would shift each event's `timestamp` by the difference between `sent_at` and its
///   own clock, and `sent_at` changes on every resend. The `timestamp` sent is the recording instant (or the
///   event's own time), identical on every resend.
///
/// ```
/// use flush_core::{Config, sink::PostHog};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder("https://us.i.posthog.com")
///     .sink(PostHog::new("phc_project_api_key"))
///     .distinct_id("install-1")
///     .spool_dir("/var/lib/my-app/telemetry")
///     .build()?;
/// assert_eq!(config.url().as_str(), "https://us.i.posthog.com/batch/");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostHog {
    api_key: String,
}

impl PostHog {
    /// A sink for the project with this api key (`phc_...`).
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
        }
    }
}

/// `$lib`: who sent the event, as PostHog's SDKs name themselves.
const LIB: &str = "flush-core";
/// `$lib_version`.
const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Sink for PostHog {
    fn name(&self) -> &str {
        "posthog"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        if self.api_key.trim().is_empty() {
            return Err(SinkError::new("the posthog api key is empty"));
        }
        if endpoint.path().trim_end_matches('/').ends_with("/batch") {
            return Err(SinkError::new(
                "the posthog endpoint is the host (e.g. https://us.i.posthog.com); /batch/ is added to it",
            ));
        }
        Ok(with_path_suffix(endpoint, "/batch/"))
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        let events = batch.views()?;
        let body = CaptureBatch {
            api_key: &self.api_key,
            batch: events.iter().map(CaptureEvent).collect(),
        };
        let bytes = serde_json::to_vec(&body).map_err(EncodeError::new)?;
        Ok(Request::new("application/json", bytes))
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        let status = response.status();
        if (200..300).contains(&status) {
            return Verdict::Accepted;
        }
        // PostHog's error shape: {"type": ..., "code": ..., "detail": ..., "attr": ...}.
        let detail = serde_json::from_slice::<Value>(response.body())
            .ok()
            .and_then(|value| {
                value
                    .get("detail")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| response.body_text());
        failure_verdict(
            response,
            matches!(status, 408 | 429 | 500..=599),
            status == 400,
            format!("HTTP {status}: {detail}"),
        )
    }
}

/// A capture batch, `{"api_key", "batch"}`, its fields in the order of their names.
#[derive(serde::Serialize)]
struct CaptureBatch<'a> {
    api_key: &'a str,
    batch: Vec<CaptureEvent<'a, 'a>>,
}

/// One event of a capture batch, written from the stored record: its property values as they were stored.
struct CaptureEvent<'view, 'record>(&'view StoredView<'record>);

impl Serialize for CaptureEvent<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        // The fields in the order of their names, as PostHog's clients and this sink always sent them.
        let mut fields = serializer.serialize_struct("CaptureEvent", 5)?;
        fields.serialize_field("distinct_id", event.distinct_id())?;
        fields.serialize_field("event", event.name())?;
        fields.serialize_field("properties", &CaptureProperties(event))?;
        fields.serialize_field("timestamp", event.timestamp_rfc3339())?;
        fields.serialize_field("uuid", &event.uuid().hyphenated())?;
        fields.end()
    }
}

/// The recorded properties, ordered by key, with `$lib` and `$lib_version` in their places unless the application
/// set them.
struct CaptureProperties<'view, 'record>(&'view StoredView<'record>);

impl Serialize for CaptureProperties<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let recorded = self.0.properties();
        let mut library = [("$lib", LIB), ("$lib_version", LIB_VERSION)]
            .into_iter()
            .filter(|(key, _)| self.0.property(key).is_none())
            .peekable();
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in recorded {
            let key: &str = key;
            while let Some((library_key, library_value)) =
                library.next_if(|(library_key, _)| *library_key < key)
            {
                map.serialize_entry(library_key, library_value)?;
            }
            map.serialize_entry(key, *value)?;
        }
        for (library_key, library_value) in library {
            map.serialize_entry(library_key, library_value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Map, json};

    use super::*;
    use crate::event::Event;
    use crate::stored_view::stored_record;

    /// The body as this sink built it from `Batch::decode`'s `Value` trees, before it read records in place.
    fn encoded_through_values(api_key: &str, batch: &Batch<'_>) -> Vec<u8> {
        let events: Vec<Value> = batch
            .decode()
            .unwrap()
            .into_iter()
            .map(|event| {
                let mut properties: Map<String, Value> = event.properties().clone();
                properties.entry("$lib").or_insert_with(|| Value::from(LIB));
                properties
                    .entry("$lib_version")
                    .or_insert_with(|| Value::from(LIB_VERSION));
                json!({
                    "event": event.name(),
                    "distinct_id": event.distinct_id(),
                    "uuid": event.uuid().hyphenated().to_string(),
                    "timestamp": event.timestamp_rfc3339(),
                    "properties": properties,
                })
            })
            .collect();
        serde_json::to_vec(&json!({ "api_key": api_key, "batch": events })).unwrap()
    }

    #[test]
    fn the_body_read_in_place_is_the_body_decoding_built_byte_for_byte() {
        let records = vec![
            stored_record(
                Event::new("tool \"call\"\n")
                    .with("command", "deploy --région eu")
                    .with("n", 412)
                    .with("big", u64::MAX)
                    .with("ratio", -0.5)
                    .with("ok", true)
                    .with("none", Value::Null)
                    .with("nested", json!({"z": [1, {"b": null}], "a": "x"}))
                    .with("n", "a later value wins")
                    .with("#", 1)
                    .with("$active", 2)
                    .with("$lib_x", 3),
            ),
            stored_record(
                Event::new("own_lib")
                    .with("$lib", "mine")
                    .with_distinct_id("user-7"),
            ),
            stored_record(Event::new("own_version").with("$lib_version", "9")),
            stored_record(Event::new("bare")),
        ];
        let batch = Batch::new(&records, "install-1");
        let request = PostHog::new("phc_\"key").encode(&batch).unwrap();
        assert_eq!(
            String::from_utf8(request.body().to_vec()).unwrap(),
            String::from_utf8(encoded_through_values("phc_\"key", &batch)).unwrap()
        );
    }

    #[test]
    fn a_record_that_is_not_canonical_cannot_be_encoded() {
        let records = vec![
            stored_record(Event::new("fine")),
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"e","distinct_id":"d","timestamp":"not a time"}"#.to_vec(),
        ];
        let error = PostHog::new("k")
            .encode(&Batch::new(&records, "install-1"))
            .unwrap_err();
        assert!(std::error::Error::source(&error).is_some());
    }

    fn classify(status: u16, body: &str) -> Verdict {
        PostHog::new("phc_test").classify(&Response::new(status, body.as_bytes()))
    }

    #[test]
    fn the_url_is_the_host_with_batch_and_a_bad_setup_is_refused() {
        let sink = PostHog::new("phc_test");
        let url = sink.url(&Url::parse("http://127.0.0.1:8090/").unwrap());
        assert_eq!(url.unwrap().as_str(), "http://127.0.0.1:8090/batch/");
        assert!(
            sink.url(&Url::parse("https://us.i.posthog.com/batch/").unwrap())
                .is_err()
        );
        assert!(
            PostHog::new(" ")
                .url(&Url::parse("https://us.i.posthog.com").unwrap())
                .is_err()
        );
    }

    #[test]
    fn statuses_are_classified_as_posthogs_sdks_do_except_that_nothing_is_dropped() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(status, ""), Verdict::Retry { .. }),
                "{status}"
            );
        }
        assert_eq!(classify(200, r#"{"status":1}"#), Verdict::Accepted);
        assert_eq!(
            classify(
                400,
                r#"{"type":"validation_error","code":"invalid_payload","detail":"bad uuid","attr":null}"#
            ),
            Verdict::Reject {
                status: 400,
                reason: "HTTP 400: bad uuid".into()
            }
        );
        assert!(matches!(classify(413, ""), Verdict::TooLarge { .. }));
        for status in [401, 403, 404] {
            assert!(
                matches!(classify(status, ""), Verdict::Misconfigured { .. }),
                "{status}"
            );
        }
        let throttled = PostHog::new("k")
            .classify(&Response::new(429, b"").with_retry_after(Duration::from_secs(3)));
        assert_eq!(
            throttled,
            Verdict::Retry {
                reason: "HTTP 429: ".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
    }
}
