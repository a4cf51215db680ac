//! The request log: every request to a data route, in order, bounded, through HTTP and the embedded handle.

use fake_ingest::{Config, FaultPlan, RequestRecord, RequestsPage, RequestsQuery, Server};

use crate::support::{batch, client, fresh_uuid, get_json, post_ingest};

fn server(plan: &str, max_requests_kept: usize) -> Server {
    Server::start_blocking(Config {
        faults: FaultPlan::from_json(plan).expect("a valid plan"),
        max_requests_kept,
        ..Config::default()
    })
    .expect("the server starts")
}

#[test]
fn every_data_request_is_logged_with_its_fault_outcome_and_duplicates_and_can_be_filtered() {
    let server = server(
        r#"{"rules": [{"when": {"nth": 2}, "then": {"status": 503, "retry_after_secs": 1}}]}"#,
        100,
    );
    let agent = client();
    let body = batch(&[&fresh_uuid(), &fresh_uuid()]);

    let first = post_ingest(&agent, &server.url(), &body).expect("answered");
    let injected = post_ingest(&agent, &server.url(), &body).expect("answered");
    let resent = post_ingest(&agent, &server.url(), &body).expect("answered");
    let wrong_method = agent
        .get(format!("{}/ingest", server.url()))
        .call()
        .expect("answered");

    assert_eq!(
        (
            first.status,
            injected.status,
            resent.status,
            wrong_method.status().as_u16()
        ),
        (202, 503, 202, 405)
    );
    let log = server.requests(&RequestsQuery::default());
    assert_eq!((log.total, log.evicted), (4, 0));
    let [stored, failed, duplicate, refused] = &log.requests[..] else {
        panic!("four requests: {log:?}")
    };
    assert_eq!((stored.index, stored.outcome.as_str()), (1, "202"));
    assert_eq!((stored.events, stored.duplicates), (Some(2), Some(0)));
    assert_eq!(stored.body_bytes, Some(body.len() as u64));
    assert_eq!(stored.content_type.as_deref(), Some("application/json"));
    assert_eq!((stored.fault.as_deref(), stored.rule), (None, None));
    assert!(stored.latency_ms.is_some_and(|ms| ms >= 0.0));
    assert_eq!(
        (
            failed.outcome.as_str(),
            failed.fault.as_deref(),
            failed.rule
        ),
        ("503", Some("status"), Some(0))
    );
    assert_eq!(failed.duplicates, None, "nothing was stored");
    assert_eq!(
        (duplicate.duplicates, duplicate.outcome.as_str()),
        (Some(2), "202")
    );
    assert_eq!(
        (refused.method.as_str(), refused.outcome.as_str()),
        ("GET", "405")
    );

    let only_503: RequestsPage = get_json(&server.url(), "/_fake/requests?status=503");
    // Compared without the latency: an `f64` read back from JSON may differ from the server's in the last bit.
    let without_latency = |request: &RequestRecord| RequestRecord {
        latency_ms: None,
        ..request.clone()
    };
    assert_eq!(
        only_503
            .requests
            .iter()
            .map(without_latency)
            .collect::<Vec<_>>(),
        vec![without_latency(failed)]
    );
    let without_fault: RequestsPage = get_json(&server.url(), "/_fake/requests?fault=none");
    assert_eq!(without_fault.total, 3);
    let paged: RequestsPage = get_json(
        &server.url(),
        "/_fake/requests?route=/ingest&offset=1&limit=2",
    );
    assert_eq!((paged.total, paged.next_offset), (4, Some(3)));
    assert_eq!(paged.requests[0].index, 2);
}

#[test]
fn the_request_log_keeps_the_newest_requests_and_counts_the_ones_it_drops() {
    let server = server(r#"{"rules": []}"#, 2);
    let agent = client();
    for _ in 0..5 {
        post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    }

    let page: RequestsPage = get_json(&server.url(), "/_fake/requests");

    assert_eq!(page.evicted, 3);
    let kept: Vec<u64> = page.requests.iter().map(|request| request.index).collect();
    assert_eq!(kept, [4, 5]);
    server.reset().expect("reset");
    assert_eq!(
        server.requests(&RequestsQuery::default()),
        RequestsPage::default()
    );
}
