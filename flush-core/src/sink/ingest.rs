//! The `ingest` sink (the default): our own batch protocol, docs/PROTOCOL.md.

use super::{
    Batch, EncodeError, Request, Response, Sink, SinkError, Url, Verdict, failure_verdict,
};
use crate::batch;

/// Posts `{"batch": [...]}` to the endpoint **as written** (e.g. `https://telemetry.example.com/ingest`), as
/// docs/PROTOCOL.md defines it.
///
/// The stored events are already this protocol's event objects, so a body is built by concatenation: nothing is
/// decoded or re-serialized (only each record's `uuid` is read, so that an event stored twice under the same key is
/// sent once).
///
/// | answer | verdict |
/// |---|---|
/// | 2xx | accepted |
/// | 408, 429, 5xx | retry (with `Retry-After`) |
/// | 400, 422 | reject: isolate the poison event |
/// | 413 | too large: split |
/// | 401, 403, 404, other 4xx | misconfigured: keep the events, open the breaker |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingest;

impl Sink for Ingest {
    fn name(&self) -> &str {
        "ingest"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        Ok(endpoint.clone())
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        Ok(Request::new(
            "application/json",
            batch::json_body(&batch.unique_records()),
        ))
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        let status = response.status();
        if (200..300).contains(&status) {
            return Verdict::Accepted;
        }
        let detail = serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()
            .and_then(|value| {
                value
                    .get("error")
                    .and_then(|error| error.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| response.body_text());
        failure_verdict(
            response,
            matches!(status, 408 | 429 | 500..=599),
            matches!(status, 400 | 422),
            format!("HTTP {status}: {detail}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> Verdict {
        Ingest.classify(&Response::new(status, body.as_bytes()))
    }

    #[test]
    fn a_2xx_is_accepted() {
        assert_eq!(
            classify(202, r#"{"accepted":1,"duplicates":0}"#),
            Verdict::Accepted
        );
        assert_eq!(classify(200, ""), Verdict::Accepted);
    }

    #[test]
    fn server_errors_throttling_and_request_timeouts_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(status, ""), Verdict::Retry { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn a_400_or_422_is_a_rejection_with_the_servers_reason() {
        assert_eq!(
            classify(400, r#"{"error":"timestamp is not RFC 3339","index":0}"#),
            Verdict::Reject {
                status: 400,
                reason: "HTTP 400: timestamp is not RFC 3339".into()
            }
        );
        assert!(matches!(
            classify(422, "nope"),
            Verdict::Reject { status: 422, .. }
        ));
    }

    #[test]
    fn a_413_asks_for_a_split() {
        assert!(matches!(
            classify(413, r#"{"error":"too large"}"#),
            Verdict::TooLarge { .. }
        ));
    }

    #[test]
    fn other_4xx_are_configuration_problems() {
        for status in [401, 403, 404, 405, 415] {
            assert!(
                matches!(classify(status, ""), Verdict::Misconfigured { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn the_body_is_the_stored_records_framed_as_a_batch() {
        let records = vec![
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","n":1}"#.to_vec(),
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10","n":2}"#.to_vec(),
            br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","n":3}"#.to_vec(),
        ];
        let request = Ingest.encode(&Batch::new(&records, "i")).unwrap();
        assert_eq!(
            request.body(),
            br#"{"batch":[{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","n":1},{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10","n":2}]}"#
        );
        assert_eq!(request.content_type(), "application/json");
    }
}
