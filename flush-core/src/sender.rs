//! One HTTP request: the sink's request for a batch posted to the sink's URL, and the answer handed back to the sink
//! to classify (docs/PROTOCOL.md, "What a client must do with each outcome", for the default sink).
//!
//! Blocking, on the sender thread, through one `ureq` agent: a connection is kept alive between requests (every
//! answer's body is read to its end, which is what returns it to the pool) and the host's addresses are kept too
//! (`crate::resolver`), so a request to a healthy server costs neither a connection nor a thread. Every request carries its own timeout,
//! which shutdown shortens to what is left of its deadline, so no call outlives the caller's patience. What every
//! sink shares lives here: gzip, `Retry-After` in both its forms (delay-seconds and HTTP-date), and connection errors
//! and timeouts, which are always retried. Every failure's reason starts with the URL it was posted to, so a wrong
//! endpoint shows in `Stats::last_error` and the debug log.

use std::sync::Arc;
use std::time::Duration;

use ureq::unversioned::transport::DefaultConnector;

use crate::batch;
use crate::error::chain_text;
use crate::resolver::CachingResolver;
use crate::sink::{Batch, Response, Sink, Url, Verdict};

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The server answered (or did not, which is a retry); the verdict says what to do.
    Answered(Verdict),
    /// The sink could not encode the batch; nothing was sent.
    Unencodable {
        /// The encoding error with its source chain.
        reason: String,
    },
}

/// Posts batches through one sink.
#[derive(Debug)]
pub(crate) struct HttpSender {
    agent: ureq::Agent,
    /// The agent's resolver: a name's addresses are kept between requests and forgotten when one fails.
    resolver: CachingResolver,
    sink: Arc<dyn Sink>,
    url: Url,
    gzip: bool,
    installation_id: String,
}

impl HttpSender {
    pub(crate) fn new(sink: Arc<dyn Sink>, url: Url, gzip: bool, installation_id: String) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("flush-core/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(2)
            .build();
        let resolver = CachingResolver::default();
        Self {
            agent: ureq::Agent::with_parts(config, DefaultConnector::default(), resolver.clone()),
            resolver,
            sink,
            url,
            gzip,
            installation_id,
        }
    }

    /// Encodes `records` with the sink, posts them as one request and waits at most `timeout` for the whole
    /// exchange.
    pub(crate) fn send(&self, records: &[Vec<u8>], timeout: Duration) -> Attempt {
        let request = match self
            .sink
            .encode(&Batch::new(records, &self.installation_id))
        {
            Ok(request) => request,
            Err(error) => {
                return Attempt::Unencodable {
                    reason: format!("{} sink: {}", self.sink.name(), chain_text(&error)),
                };
            }
        };
        let mut builder = self
            .agent
            .post(self.url.as_str())
            .header("Content-Type", request.content_type());
        for (name, value) in request.headers() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let builder = builder
            .config()
            .timeout_global(Some(timeout.max(Duration::from_millis(1))))
            .build();
        let result = if self.gzip {
            match batch::gzip(request.body()) {
                Ok(body) => builder.header("Content-Encoding", "gzip").send(&body[..]),
                Err(error) => return self.retry(format!("gzip failed: {error}"), None),
            }
        } else {
            builder.send(request.body())
        };
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                // The name may point elsewhere now: look it up again next time.
                self.resolver.forget();
                return self.retry(format!("request failed: {}", chain_text(&error)), None);
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("Retry-After")
            .and_then(|value| parse_retry_after(&value, jiff::Timestamp::now()));
        let content_type = header("Content-Type");
        // A 2xx body is read too: it may carry a partial success. Bodies are small; 64 KiB is plenty for a reason.
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let mut answer = Response::new(status, &body);
        if let Some(content_type) = content_type.as_deref() {
            answer = answer.with_content_type(content_type);
        }
        if let Some(retry_after) = retry_after {
            answer = answer.with_retry_after(retry_after);
        }
        let verdict = match self.sink.classify(&answer) {
            Verdict::Retry {
                reason,
                retry_after,
            } => Verdict::Retry {
                reason: self.at_url(&reason),
                retry_after,
            },
            Verdict::Reject { status, reason } => Verdict::Reject {
                status,
                reason: self.at_url(&reason),
            },
            Verdict::TooLarge { reason } => Verdict::TooLarge {
                reason: self.at_url(&reason),
            },
            Verdict::Misconfigured { status, reason } => Verdict::Misconfigured {
                status,
                reason: self.at_url(&reason),
            },
            other => other,
        };
        if verdict != Verdict::Accepted {
            tracing::debug!(url = %self.url, sink = self.sink.name(), ?verdict, "flush-core request not fully accepted");
        }
        Attempt::Answered(verdict)
    }

    fn at_url(&self, reason: &str) -> String {
        format!("POST {}: {reason}", self.url)
    }

    fn retry(&self, reason: String, retry_after: Option<Duration>) -> Attempt {
        let reason = self.at_url(&reason);
        tracing::debug!(url = %self.url, sink = self.sink.name(), %reason, "flush-core request failed");
        Attempt::Answered(Verdict::Retry {
            reason,
            retry_after,
        })
    }
}

/// A `Retry-After` value as a delay from `now` (RFC 9110, section 10.2.3): delay-seconds, or an HTTP-date in any of
/// its three forms (IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept). A date in the
/// past is no delay. `None` when the value is neither.
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = jiff::fmt::rfc2822::parse(value)
        .map(|zoned| zoned.timestamp())
        .or_else(|_| {
            jiff::fmt::strtime::parse("%A, %d-%b-%y %H:%M:%S GMT", value)
                .and_then(|parsed| parsed.to_datetime())
                .and_then(|datetime| datetime.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|zoned| zoned.timestamp())
        })
        .or_else(|_| {
            jiff::fmt::strtime::parse("%a %b %e %H:%M:%S %Y", value)
                .and_then(|parsed| parsed.to_datetime())
                .and_then(|datetime| datetime.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|zoned| zoned.timestamp())
        })
        .ok()?;
    let seconds = at.duration_since(now).as_secs_f64();
    Some(Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Instant;

    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::sink::{Ingest, OtlpLogs};

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

    fn ingest(url: &str, gzip: bool) -> HttpSender {
        HttpSender::new(
            Arc::new(Ingest),
            Url::parse(url).unwrap(),
            gzip,
            "install".into(),
        )
    }

    fn send_with(response: ResponseTemplate) -> Attempt {
        let (runtime, server) = server();
        answer(&runtime, &server, response);
        ingest(&format!("{}/ingest", server.uri()), false)
            .send(&one_event(), Duration::from_secs(5))
    }

    fn retry_after_of(attempt: Attempt) -> Option<Duration> {
        let Attempt::Answered(Verdict::Retry { retry_after, .. }) = attempt else {
            panic!("{attempt:?}")
        };
        retry_after
    }

    #[test]
    fn the_answer_goes_to_the_sink_and_failures_name_the_url() {
        assert_eq!(
            send_with(ResponseTemplate::new(202)),
            Attempt::Answered(Verdict::Accepted)
        );
        let attempt = send_with(ResponseTemplate::new(401).set_body_string(r#"{"error":"who"}"#));
        let Attempt::Answered(Verdict::Misconfigured { status, reason }) = attempt else {
            panic!("{attempt:?}")
        };
        assert_eq!(status, 401);
        assert!(reason.starts_with("POST http://127.0.0.1:"), "{reason}");
        assert!(reason.ends_with("/ingest: HTTP 401: who"), "{reason}");
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        let attempt = send_with(ResponseTemplate::new(503).insert_header("Retry-After", "7"));
        assert_eq!(retry_after_of(attempt), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_as_an_http_date_is_read_as_the_delay_until_then() {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&at)
            .unwrap();
        let attempt = send_with(ResponseTemplate::new(429).insert_header("Retry-After", date));
        let delay = retry_after_of(attempt).unwrap();
        // The date has whole seconds, so the delay is within a second below 30 s (minus the request's own time).
        assert!(delay <= Duration::from_secs(30), "{delay:?}");
        assert!(delay >= Duration::from_secs(20), "{delay:?}");
    }

    #[test]
    fn every_form_of_retry_after_parses() {
        let now: jiff::Timestamp = "1994-11-06T08:49:30Z".parse().unwrap();
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::from_secs(7)),
                "{value}"
            );
        }
        assert_eq!(
            parse_retry_after(" 12 ", now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    /// A minimal HTTP/1.1 server that answers every request `200 {}` on a kept-alive connection and counts the
    /// connections it accepted.
    fn counting_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        writer
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                            .unwrap();
                    }
                });
            }
        });
        (url, accepted)
    }

    #[test]
    fn batches_to_a_healthy_server_share_one_connection() {
        let (url, accepted) = counting_server();
        let sender = ingest(&url, false);
        for _ in 0..5 {
            assert_eq!(
                sender.send(&one_event(), Duration::from_secs(5)),
                Attempt::Answered(Verdict::Accepted)
            );
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_error_is_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        drop(listener);
        assert!(matches!(
            ingest(&url, false).send(&one_event(), Duration::from_secs(5)),
            Attempt::Answered(Verdict::Retry { .. })
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
        let attempt = ingest(&format!("{}/ingest", server.uri()), false)
            .send(&one_event(), Duration::from_millis(300));
        assert!(
            matches!(attempt, Attempt::Answered(Verdict::Retry { .. })),
            "{attempt:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_record_the_sink_cannot_encode_is_not_sent() {
        let (runtime, server) = server();
        let sender = HttpSender::new(
            Arc::new(OtlpLogs::new()),
            Url::parse(&format!("{}/v1/logs", server.uri())).unwrap(),
            false,
            "install".into(),
        );
        let attempt = sender.send(&[b"not an event".to_vec()], Duration::from_secs(5));
        assert!(
            matches!(attempt, Attempt::Unencodable { .. }),
            "{attempt:?}"
        );
        assert!(
            runtime
                .block_on(server.received_requests())
                .unwrap()
                .is_empty()
        );
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
        let attempt = ingest(&format!("{}/ingest", server.uri()), true)
            .send(&one_event(), Duration::from_secs(5));
        assert_eq!(attempt, Attempt::Answered(Verdict::Accepted));
        let requests = runtime.block_on(server.received_requests()).unwrap();
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&requests[0].body[..])
            .read_to_string(&mut decoded)
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(value["batch"][0]["event"], "e");
    }
}
