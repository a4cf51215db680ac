//! Proxy mode: a fake-ingest in front of another (the upstream, a real server here) forwards what the fault plan
//! lets through to storage, relays the upstream's answers, and keeps its injected faults and the upstream's
//! failures apart.

use std::io::Write as _;
use std::time::Duration;

use fake_ingest::{Config, FaultPlan, RequestRecord, RequestsQuery, Server};

use crate::support::{
    batch, client, client_with_timeout, fresh_uuid, is_connection_reset, post_ingest,
};

fn upstream(plan: &str) -> Server {
    Server::start_blocking(Config {
        faults: FaultPlan::from_json(plan).expect("a valid plan"),
        ..Config::default()
    })
    .expect("the upstream starts")
}

fn proxy_to(upstream_url: &str, plan: &str) -> Server {
    Server::start_blocking(Config {
        faults: FaultPlan::from_json(plan).expect("a valid plan"),
        upstream: Some(upstream_url.to_owned()),
        upstream_timeout: Duration::from_secs(2),
        ..Config::default()
    })
    .expect("the proxy starts")
}

fn requests(server: &Server) -> Vec<RequestRecord> {
    server.requests(&RequestsQuery::default()).requests
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

/// One request of each protocol: route, content type, content encoding, body.
fn one_request_per_protocol() -> Vec<(&'static str, &'static str, Option<&'static str>, Vec<u8>)> {
    let otlp = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1763895310123000000","body":{"stringValue":"proxied log"}}]}]}]}"#;
    let posthog = format!(
        r#"{{"api_key":"phc_test","batch":[{{"event":"proxied","distinct_id":"u1","uuid":"{}"}}]}}"#,
        fresh_uuid()
    );
    vec![
        (
            "/ingest",
            "application/json",
            None,
            batch(&[&fresh_uuid()]).into_bytes(),
        ),
        (
            "/v1/logs",
            "application/json",
            Some("gzip"),
            gzip(otlp.as_bytes()),
        ),
        ("/batch/", "application/json", None, posthog.into_bytes()),
    ]
}

#[test]
fn every_protocol_is_forwarded_as_sent_and_the_upstream_answer_is_relayed() {
    let backend = upstream(r#"{"rules": []}"#);
    let proxy = proxy_to(&backend.url(), r#"{"rules": []}"#);
    let agent = client();

    for (route, content_type, encoding, body) in one_request_per_protocol() {
        let mut request = agent
            .post(format!("{}{route}", proxy.url()))
            .header("content-type", content_type);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let mut response = request.send(&body[..]).expect("answered");
        let relayed = response.body_mut().read_to_string().expect("a body");
        let expected_status = if route == "/ingest" { 202 } else { 200 };
        assert_eq!(response.status(), expected_status, "{route}: {relayed}");
        let upstream_record = requests(&backend)
            .into_iter()
            .find(|record| record.route == route)
            .expect("the upstream got the request");
        assert_eq!(
            upstream_record.body_bytes,
            Some(body.len() as u64),
            "{route}: forwarded as sent"
        );
        assert_eq!(
            upstream_record.content_encoding.as_deref(),
            encoding,
            "{route}"
        );
    }

    // Both servers captured the same events; the proxy's request log says what the upstream answered.
    let names = |server: &Server| {
        let mut names: Vec<String> = server
            .events()
            .into_iter()
            .map(|captured| captured.event.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&proxy), ["cli_invocation", "proxied", "proxied log"]);
    assert_eq!(names(&proxy), names(&backend));
    let upstream_answers: Vec<Option<String>> = requests(&proxy)
        .into_iter()
        .map(|record| record.upstream)
        .collect();
    assert_eq!(
        upstream_answers,
        [
            Some("202".to_owned()),
            Some("200".to_owned()),
            Some("200".to_owned())
        ]
    );
    let stats = proxy.stats();
    assert_eq!(
        stats.upstream,
        [("200".to_owned(), 2), ("202".to_owned(), 1)]
            .into_iter()
            .collect()
    );
    assert_eq!(stats.faults, fake_ingest::FaultCounts::default());
}

#[test]
fn injected_statuses_resets_before_storing_and_hangs_never_reach_the_upstream() {
    let backend = upstream(r#"{"rules": []}"#);
    let proxy = proxy_to(
        &backend.url(),
        r#"{"rules": [
            {"when": {"nth": 1}, "then": {"status": 503, "retry_after_secs": 1}},
            {"when": {"nth": 2}, "then": "reset_before_store"},
            {"when": {"nth": 3}, "then": "reject"},
            {"when": {"nth": 4}, "then": "hang"}
        ]}"#,
    );
    let body = batch(&[&fresh_uuid()]);

    let injected = post_ingest(&client(), &proxy.url(), &body).expect("answered");
    let reset = post_ingest(&client(), &proxy.url(), &body).expect_err("reset");
    let rejected = post_ingest(&client(), &proxy.url(), &body).expect("answered");
    let hung = post_ingest(
        &client_with_timeout(Duration::from_millis(300)),
        &proxy.url(),
        &body,
    )
    .expect_err("no answer");

    assert_eq!(
        (injected.status, injected.retry_after.as_deref()),
        (503, Some("1"))
    );
    assert!(is_connection_reset(&reset), "{reset:?}");
    assert_eq!(rejected.status, 400);
    assert!(matches!(hung, ureq::Error::Timeout(_)), "{hung:?}");
    let outcomes: Vec<String> = requests(&proxy)
        .into_iter()
        .map(|record| record.outcome)
        .collect();
    assert_eq!(outcomes, ["503", "reset", "400", "hang"]);
    assert!(
        requests(&proxy)
            .iter()
            .all(|record| record.upstream.is_none())
    );
    assert_eq!(backend.stats().requests, 0, "nothing reached the upstream");
    assert!(proxy.stats().upstream.is_empty());
}

#[test]
fn reset_after_store_resets_the_client_only_after_the_upstream_acknowledged() {
    let backend = upstream(r#"{"rules": []}"#);
    let proxy = proxy_to(
        &backend.url(),
        r#"{"rules": [{"when": {"nth": 1}, "then": "reset_after_store"}]}"#,
    );
    let uuid = fresh_uuid();
    let body = batch(&[&uuid]);

    let lost = post_ingest(&client(), &proxy.url(), &body).expect_err("reset");
    let retried = post_ingest(&client(), &proxy.url(), &body).expect("answered");

    assert!(is_connection_reset(&lost), "{lost:?}");
    // The upstream stored the batch on the first request; the retry is its duplicate, and its answer is relayed.
    assert_eq!(retried.body, r#"{"accepted":0,"duplicates":1}"#);
    assert_eq!(backend.stats().events_unique, 1);
    assert_eq!(backend.stats().duplicates, 1);
    let log = requests(&proxy);
    assert_eq!(
        (log[0].outcome.as_str(), log[0].upstream.as_deref()),
        ("reset", Some("202"))
    );
    assert_eq!(proxy.stats().faults.reset_after_store, 1);
}

#[test]
fn a_rules_latency_is_added_after_the_upstream_answered() {
    let backend = upstream(r#"{"rules": []}"#);
    // A delay far longer than the wait below: had it come before forwarding, the upstream would see nothing.
    let proxy = proxy_to(
        &backend.url(),
        r#"{"rules": [{"latency": {"fixed_ms": 120000}}]}"#,
    );
    let body = batch(&[&fresh_uuid()]);

    let delayed = post_ingest(
        &client_with_timeout(Duration::from_millis(200)),
        &proxy.url(),
        &body,
    )
    .expect_err("still delayed");
    let seen = backend.wait_for_events(
        &fake_ingest::EventFilter::default(),
        1,
        crate::support::PATIENCE,
    );

    assert!(matches!(delayed, ureq::Error::Timeout(_)), "{delayed:?}");
    assert!(
        seen.satisfied,
        "the upstream got the request while the client waited: {seen:?}"
    );
}

#[test]
fn crash_after_store_forwards_before_crashing_and_crash_before_store_never_forwards() {
    let backend = upstream(r#"{"rules": []}"#);
    let after = proxy_to(
        &backend.url(),
        r#"{"rules": [{"then": "crash_after_store"}]}"#,
    );
    let before = proxy_to(
        &backend.url(),
        r#"{"rules": [{"then": "crash_before_store"}]}"#,
    );
    let forwarded = fresh_uuid();
    let kept_back = fresh_uuid();

    let crashed_after = post_ingest(&client(), &after.url(), &batch(&[&forwarded]));
    let crashed_before = post_ingest(&client(), &before.url(), &batch(&[&kept_back]));

    assert!(crashed_after.is_err() && crashed_before.is_err());
    let stored: Vec<String> = crate::support::dedupe_keys(backend.events());
    assert_eq!(stored, [forwarded]);
    assert_eq!(requests(&after)[0].upstream.as_deref(), Some("202"));
    assert_eq!(requests(&before)[0].upstream, None);
}

#[test]
fn upstream_5xx_and_timeouts_are_relayed_and_counted_apart_from_injected_faults() {
    let backend = upstream(
        r#"{"rules": [
            {"when": {"nth": 1}, "then": {"status": 503, "retry_after_secs": 2}},
            {"when": {"nth": 2}, "then": "hang"}
        ]}"#,
    );
    let proxy = Server::start_blocking(Config {
        upstream: Some(backend.url()),
        upstream_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .expect("the proxy starts");
    let body = batch(&[&fresh_uuid()]);

    let unavailable = post_ingest(&client(), &proxy.url(), &body).expect("answered");
    let timed_out = post_ingest(&client(), &proxy.url(), &body).expect("answered");
    let stored = post_ingest(&client(), &proxy.url(), &body).expect("answered");

    assert_eq!(
        (unavailable.status, unavailable.retry_after.as_deref()),
        (503, Some("2")),
        "relayed as it is"
    );
    assert_eq!(timed_out.status, 504, "{}", timed_out.body);
    assert!(
        timed_out.body.contains("did not answer"),
        "{}",
        timed_out.body
    );
    assert_eq!(stored.status, 202);
    let stats = proxy.stats();
    assert_eq!(
        stats.faults,
        fake_ingest::FaultCounts::default(),
        "no injected fault"
    );
    assert_eq!(
        stats.upstream,
        [
            ("202".to_owned(), 1),
            ("503".to_owned(), 1),
            ("timeout".to_owned(), 1)
        ]
        .into_iter()
        .collect()
    );
    let metrics = client()
        .get(format!("{}/metrics", proxy.url()))
        .call()
        .expect("answered")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics.contains("fake_ingest_upstream_answers_total{outcome=\"timeout\"} 1"),
        "{metrics}"
    );
}

#[test]
fn captured_events_carry_the_upstream_answer_of_the_request_that_stored_them() {
    let backend = upstream(r#"{"rules": [{"when": {"nth": 1}, "then": {"status": 503}}]}"#);
    let dir = tempfile::tempdir().expect("temp dir");
    let proxy = Server::start_blocking(Config {
        upstream: Some(backend.url()),
        upstream_timeout: Duration::from_secs(2),
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .expect("the proxy starts");
    let plain = upstream(r#"{"rules": []}"#);
    let (refused_there, stored_there) = (fresh_uuid(), fresh_uuid());

    let relayed_5xx =
        post_ingest(&client(), &proxy.url(), &batch(&[&refused_there])).expect("answered");
    let relayed_2xx =
        post_ingest(&client(), &proxy.url(), &batch(&[&stored_there])).expect("answered");
    post_ingest(&client(), &plain.url(), &batch(&[&fresh_uuid()])).expect("answered");

    assert_eq!((relayed_5xx.status, relayed_2xx.status), (503, 202));
    let marks = |events: Vec<fake_ingest::CapturedEvent>| -> Vec<(String, Option<String>)> {
        events
            .into_iter()
            .map(|captured| (captured.event.dedupe_key, captured.upstream))
            .collect()
    };
    let expected = vec![
        (refused_there.clone(), Some("503".to_owned())),
        (stored_there.clone(), Some("202".to_owned())),
    ];
    // The embedded handle.
    assert_eq!(marks(proxy.events()), expected);
    assert_eq!(
        marks(plain.events()),
        [(plain.events()[0].event.dedupe_key.clone(), None)]
    );
    // The JSON page, filtered by the upstream's answer, and a server that forwards nothing.
    let page: serde_json::Value =
        crate::support::get_json(&proxy.url(), "/_fake/events?upstream=503");
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["events"][0]["dedupe_key"], refused_there.as_str());
    assert_eq!(page["events"][0]["upstream"], "503");
    let plain_page: serde_json::Value = crate::support::get_json(&plain.url(), "/_fake/events");
    assert!(
        plain_page["events"][0].get("upstream").is_none(),
        "{plain_page}"
    );
    // The NDJSON export.
    let exported = client()
        .get(format!("{}/_fake/events?format=ndjson", proxy.url()))
        .call()
        .expect("answered")
        .body_mut()
        .read_to_string()
        .expect("text");
    let exported: Vec<fake_ingest::CapturedEvent> = exported
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event a line"))
        .collect();
    assert_eq!(marks(exported), expected);
    // The batch log keeps the mark across a restart.
    proxy.shutdown();
    let restarted = Server::start_blocking(Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .expect("restarts on the same data dir");
    assert_eq!(marks(restarted.events()), expected);
}

#[test]
fn a_crashed_upstream_is_answered_502_and_counted_as_refused_after_it_stopped() {
    let backend = upstream(r#"{"rules": [{"when": {"nth": 1}, "then": "crash_before_store"}]}"#);
    let proxy = proxy_to(&backend.url(), r#"{"rules": []}"#);
    let body = batch(&[&fresh_uuid()]);

    let crashed = post_ingest(&client(), &proxy.url(), &body).expect("answered");
    wait_until_closed(backend.addr());
    let refused = post_ingest(&client(), &proxy.url(), &body).expect("answered");

    assert_eq!(crashed.status, 502, "{}", crashed.body);
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(
        refused.body.contains("cannot connect to the upstream"),
        "{}",
        refused.body
    );
    let upstream_answers: Vec<Option<String>> = requests(&proxy)
        .into_iter()
        .map(|record| record.upstream)
        .collect();
    assert_eq!(
        upstream_answers,
        [Some("failed".to_owned()), Some("refused".to_owned())]
    );
    // The proxy still captured what the client sent.
    assert_eq!(proxy.stats().events_unique, 1);
}

/// Waits (bounded) until nothing listens on `addr` any more: a crashed server closes its port just after it drops
/// its connections.
fn wait_until_closed(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "{addr} still listens");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_upstream_that_is_not_an_http_url_is_refused_at_start() {
    for url in [
        "https://example.com",
        "localhost:4318",
        "http://host/path?query",
    ] {
        let error = Server::start_blocking(Config {
            upstream: Some(url.to_owned()),
            ..Config::default()
        })
        .expect_err("an invalid upstream");
        assert!(error.to_string().contains("upstream"), "{url}: {error}");
    }
}

mod grpc {
    //! Proxy mode for the OTLP/gRPC listener (`upstream_grpc`), driven by a tonic client.

    use std::net::{Ipv4Addr, SocketAddr};

    use fake_ingest::{Config, FaultPlan, Server};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use tonic::Code;
    use tonic_types::StatusExt as _;

    use super::requests;

    const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    fn grpc_server(plan: &str, upstream_grpc: Option<String>) -> Server {
        Server::start_blocking(Config {
            faults: FaultPlan::from_json(plan).expect("a valid plan"),
            otlp_grpc_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            upstream_grpc,
            upstream_timeout: std::time::Duration::from_secs(2),
            ..Config::default()
        })
        .expect("the server starts")
    }

    fn span_request(name: &str) -> ExportTraceServiceRequest {
        let span = Span {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            name: name.to_owned(),
            start_time_unix_nano: 1_763_895_310_000_000_000,
            end_time_unix_nano: 1_763_895_310_500_000_000,
            ..Span::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    /// Sends the same span `times` times to `server`'s gRPC listener, each on a fresh connection, calling
    /// `between` after each; the results.
    fn send_with(
        server: &Server,
        times: usize,
        between: impl Fn(),
    ) -> Vec<Result<(), tonic::Status>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let endpoint = server.otlp_grpc_url().expect("a gRPC listener");
        runtime.block_on(async {
            let mut results = Vec::new();
            for _ in 0..times {
                let mut client = TraceServiceClient::connect(endpoint.clone())
                    .await
                    .expect("connects");
                results.push(
                    client
                        .export(span_request("proxied span"))
                        .await
                        .map(|_| ()),
                );
                between();
            }
            results
        })
    }

    fn send(server: &Server, times: usize) -> Vec<Result<(), tonic::Status>> {
        send_with(server, times, || {})
    }

    fn upstream_labels(server: &Server) -> Vec<Option<String>> {
        requests(server)
            .into_iter()
            .map(|record| record.upstream)
            .collect()
    }

    #[test]
    fn calls_are_forwarded_and_the_upstream_status_is_relayed_with_its_details() {
        let backend = grpc_server(
            &format!(
                r#"{{"rules": [{{"when": {{"route": "{TRACES}", "nth": 1}}, "then": {{"status": 503, "retry_after_secs": 3}}}}]}}"#
            ),
            None,
        );
        let proxy = grpc_server(r#"{"rules": []}"#, backend.otlp_grpc_url());

        let results = send(&proxy, 2);

        let unavailable = results[0].as_ref().expect_err("relayed UNAVAILABLE");
        assert_eq!(unavailable.code(), Code::Unavailable);
        let retry_info = unavailable
            .get_details_retry_info()
            .expect("RetryInfo relayed");
        assert_eq!(
            retry_info.retry_delay,
            Some(std::time::Duration::from_secs(3))
        );
        results[1].as_ref().expect("relayed OK");
        assert_eq!(backend.stats().events_unique, 1);
        // The proxy stored the span with the first request; the resend is its duplicate.
        let marks: Vec<Option<String>> = proxy
            .events()
            .into_iter()
            .map(|captured| captured.upstream)
            .collect();
        assert_eq!(marks, [Some("UNAVAILABLE".to_owned())]);
        assert_eq!(
            upstream_labels(&proxy),
            [Some("UNAVAILABLE".to_owned()), Some("OK".to_owned())]
        );
        let stats = proxy.stats();
        assert_eq!(stats.faults, fake_ingest::FaultCounts::default());
        assert_eq!(
            stats.upstream,
            [("OK".to_owned(), 1), ("UNAVAILABLE".to_owned(), 1)]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn injected_statuses_never_reach_the_upstream_and_reset_after_store_waits_for_its_ok() {
        let backend = grpc_server(r#"{"rules": []}"#, None);
        let proxy = grpc_server(
            r#"{"rules": [
                {"when": {"nth": 1}, "then": {"status": 503}},
                {"when": {"nth": 2}, "then": "reset_after_store"}
            ]}"#,
            backend.otlp_grpc_url(),
        );

        let results = send(&proxy, 3);

        assert_eq!(
            results[0].as_ref().expect_err("injected").code(),
            Code::Unavailable
        );
        assert_eq!(
            results[1].as_ref().expect_err("reset").code(),
            Code::Unknown
        );
        results[2].as_ref().expect("relayed OK");
        assert_eq!(
            upstream_labels(&proxy),
            [None, Some("OK".to_owned()), Some("OK".to_owned())]
        );
        let backend_stats = backend.stats();
        assert_eq!(
            backend_stats.requests, 2,
            "the injected status was not forwarded"
        );
        assert_eq!(
            (backend_stats.events_unique, backend_stats.duplicates),
            (1, 1)
        );
    }

    #[test]
    fn a_crashed_upstream_is_answered_unavailable_and_counted_apart() {
        let backend = grpc_server(
            r#"{"rules": [{"when": {"nth": 1}, "then": "crash_before_store"}]}"#,
            None,
        );
        let proxy = grpc_server(r#"{"rules": []}"#, backend.otlp_grpc_url());

        // The first call crashes the backend. Until the proxy's channel has seen its connection close, a call may
        // still go out on that connection and fail (`failed`); once it has, the next connection is refused.
        let mut results = send_with(&proxy, 1, || super::wait_until_closed(backend.addr()));
        let mut labels = upstream_labels(&proxy);
        while labels.last() != Some(&Some("refused".to_owned())) && results.len() < 50 {
            results.extend(send_with(&proxy, 1, || {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }));
            labels = upstream_labels(&proxy);
        }

        for result in &results {
            let status = result.as_ref().expect_err("no upstream answer");
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        assert_eq!(
            labels.last().cloned().flatten().as_deref(),
            Some("refused"),
            "{labels:?}"
        );
        assert!(
            labels[1..]
                .iter()
                .all(|label| matches!(label.as_deref(), Some("failed" | "refused"))),
            "{labels:?}"
        );
        let stats = proxy.stats();
        assert_eq!(stats.faults, fake_ingest::FaultCounts::default());
        assert_eq!(stats.upstream.values().sum::<u64>(), results.len() as u64);
        assert_eq!(
            stats.events_unique, 1,
            "the proxy still captured what the client sent"
        );
    }
}
