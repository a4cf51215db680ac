//! One HTTP request: `POST {endpoint}/ingest` with a batch, and the classification of its outcome
//! (docs/PROTOCOL.md, "What a client must do with each outcome").
//!
//! Blocking, on the sender thread, through one `ureq` agent (keep-alive). Every request carries its own timeout,
//! which shutdown shortens to what is left of its deadline, so no call outlives the caller's patience.

use std::time::Duration;

use crate::batch;

/// What the server's answer means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx: stored. Acknowledge.
    Accepted,
    /// 408, 429, 5xx, timeout, connection error: retry the same batch after a backoff.
    Transient {
        /// What happened, for `Stats::last_error`.
        reason: String,
        /// The server's `Retry-After`, uncapped.
        retry_after: Option<Duration>,
    },
    /// 400 or 422: some event is bad. Split the batch; a single rejected event is dead-lettered.
    Rejected {
        /// The status code.
        status: u16,
        /// The server's reason (its `error` field, or the body).
        reason: String,
    },
    /// 413: the body is too big. Split the batch; a single event that is too big is dead-lettered.
    TooLarge {
        /// The server's reason.
        reason: String,
    },
    /// 401, 403, 404 and other 4xx: a configuration problem. Keep the events and open the breaker.
    Misconfigured {
        /// The status code.
        status: u16,
        /// The server's reason.
        reason: String,
    },
}

/// Posts batches to one endpoint.
#[derive(Debug)]
pub(crate) struct HttpSender {
    agent: ureq::Agent,
    url: String,
    gzip: bool,
}

impl HttpSender {
    pub(crate) fn new(url: String, gzip: bool) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("flush-core/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(2)
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            url,
            gzip,
        }
    }

    /// Posts `records` as one batch and waits at most `timeout` for the whole exchange.
    pub(crate) fn send(&self, records: &[Vec<u8>], timeout: Duration) -> Outcome {
        let json = batch::json_body(records);
        let request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .config()
            .timeout_global(Some(timeout.max(Duration::from_millis(1))))
            .build();
        let result = if self.gzip {
            match batch::gzip(&json) {
                Ok(body) => request.header("Content-Encoding", "gzip").send(&body[..]),
                Err(error) => {
                    return Outcome::Transient {
                        reason: format!("gzip failed: {error}"),
                        retry_after: None,
                    };
                }
            }
        } else {
            request.send(&json[..])
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("Retry-After")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = if (200..300).contains(&status) {
                    String::new()
                } else {
                    response
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024)
                        .read_to_string()
                        .unwrap_or_default()
                };
                classify(status, &body, retry_after)
            }
            Err(error) => Outcome::Transient {
                reason: format!("request failed: {error}"),
                retry_after: None,
            },
        }
    }
}

/// The client action for a response (docs/PROTOCOL.md).
pub(crate) fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let reason = || {
        let detail = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|value| {
                value
                    .get("error")
                    .and_then(|error| error.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| body.chars().take(200).collect());
        format!("HTTP {status}: {detail}")
    };
    match status {
        200..=299 => Outcome::Accepted,
        408 | 429 | 500..=599 => Outcome::Transient {
            reason: reason(),
            retry_after,
        },
        400 | 422 => Outcome::Rejected {
            status,
            reason: reason(),
        },
        413 => Outcome::TooLarge { reason: reason() },
        _ => Outcome::Misconfigured {
            status,
            reason: reason(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Instant;

    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// A wiremock server on its own runtime; the blocking sender runs on the test thread.
    fn server() -> (tokio::runtime::Runtime, MockServer) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(MockServer::start());
        (runtime, server)
    }

    fn answer(runtime: &tokio::runtime::Runtime, server: &MockServer, response: ResponseTemplate) {
        runtime.block_on(
            Mock::given(method("POST"))
                .and(path("/ingest"))
                .respond_with(response)
                .mount(server),
        );
    }

    fn one_event() -> Vec<Vec<u8>> {
        vec![br#"{"uuid":"0193a0c0-0000-7000-8000-000000000001","event":"e","distinct_id":"d","timestamp":"2026-11-23T10:55:10.123Z"}"#.to_vec()]
    }

    fn send_with_status(status: u16, body: &str) -> Outcome {
        let (runtime, server) = server();
        answer(
            &runtime,
            &server,
            ResponseTemplate::new(status).set_body_string(body),
        );
        HttpSender::new(format!("{}/ingest", server.uri()), false)
            .send(&one_event(), Duration::from_secs(5))
    }

    #[test]
    fn a_2xx_is_accepted() {
        assert_eq!(
            send_with_status(202, r#"{"accepted":1,"duplicates":0}"#),
            Outcome::Accepted
        );
        assert_eq!(send_with_status(200, ""), Outcome::Accepted);
    }

    #[test]
    fn server_errors_throttling_and_request_timeouts_are_transient() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(send_with_status(status, ""), Outcome::Transient { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn a_400_or_422_is_a_rejection_with_the_servers_reason() {
        let outcome = send_with_status(400, r#"{"error":"timestamp is not RFC 3339","index":0}"#);
        assert_eq!(
            outcome,
            Outcome::Rejected {
                status: 400,
                reason: "HTTP 400: timestamp is not RFC 3339".into()
            }
        );
        assert!(matches!(
            send_with_status(422, "nope"),
            Outcome::Rejected { status: 422, .. }
        ));
    }

    #[test]
    fn a_413_asks_for_a_split() {
        assert!(matches!(
            send_with_status(413, r#"{"error":"too large"}"#),
            Outcome::TooLarge { .. }
        ));
    }

    #[test]
    fn other_4xx_are_configuration_problems() {
        for status in [401, 403, 404, 405, 415] {
            assert!(
                matches!(send_with_status(status, ""), Outcome::Misconfigured { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let (runtime, server) = server();
        answer(
            &runtime,
            &server,
            ResponseTemplate::new(503).insert_header("Retry-After", "7"),
        );
        let outcome = HttpSender::new(format!("{}/ingest", server.uri()), false)
            .send(&one_event(), Duration::from_secs(5));
        let Outcome::Transient { retry_after, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_connection_error_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        drop(listener);
        assert!(matches!(
            HttpSender::new(url, false).send(&one_event(), Duration::from_secs(5)),
            Outcome::Transient { .. }
        ));
    }

    #[test]
    fn request_times_out_if_the_server_takes_too_long() {
        let (runtime, server) = server();
        answer(
            &runtime,
            &server,
            ResponseTemplate::new(202).set_delay(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let outcome = HttpSender::new(format!("{}/ingest", server.uri()), false)
            .send(&one_event(), Duration::from_millis(300));
        assert!(matches!(outcome, Outcome::Transient { .. }), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn gzip_bodies_carry_the_header_and_decode_to_the_batch() {
        let (runtime, server) = server();
        runtime.block_on(
            Mock::given(method("POST"))
                .and(path("/ingest"))
                .and(header("Content-Encoding", "gzip"))
                .and(header("Content-Type", "application/json"))
                .respond_with(ResponseTemplate::new(202))
                .mount(&server),
        );
        let outcome = HttpSender::new(format!("{}/ingest", server.uri()), true)
            .send(&one_event(), Duration::from_secs(5));
        assert_eq!(outcome, Outcome::Accepted);
        let requests = runtime.block_on(server.received_requests()).unwrap();
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&requests[0].body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(value["batch"][0]["event"], "e");
    }
}
