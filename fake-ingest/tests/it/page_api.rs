//! What the live page reads, through HTTP and through the embedded handle: search by name or property, the events
//! of one request and which stored events its duplicates repeated, pages beyond the newest, the rate history since
//! start, and nanosecond times that survive a reader holding numbers as doubles.

use fake_ingest::{Config, EventsPage, EventsQuery, FaultPlan, RateHistory, RequestsPage, Server};
use serde_json::{Value, json};

use crate::support::{batch, client, fresh_uuid, get_json, post_ingest};

fn seqs(page: &EventsPage) -> Vec<u64> {
    page.events.iter().map(|event| event.seq).collect()
}

/// The page over HTTP and the same query through the handle, which must agree.
fn page_both_ways(server: &Server, query: &str, typed: &EventsQuery) -> EventsPage {
    let served: EventsPage = get_json(&server.url(), &format!("/_fake/events?{query}"));
    assert_eq!(
        served,
        server.events_page(typed),
        "HTTP and the handle agree on {query}"
    );
    served
}

#[test]
fn search_finds_events_by_name_or_by_a_propertys_name_or_value_ignoring_case() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let events = vec![
        json!({"uuid": fresh_uuid(), "event": "Checkout_Started", "distinct_id": "u1", "timestamp": "2026-11-23T10:55:10Z", "properties": {"plan": "pro"}}),
        json!({"uuid": fresh_uuid(), "event": "page_view", "distinct_id": "u1", "timestamp": "2026-11-23T10:55:10Z", "properties": {"path": "/checkout/pay"}}),
        json!({"uuid": fresh_uuid(), "event": "page_view", "distinct_id": "u1", "timestamp": "2026-11-23T10:55:10Z", "properties": {"coupon_code": "X1", "count": 421}}),
        json!({"uuid": fresh_uuid(), "event": "signed_up", "distinct_id": "u1", "timestamp": "2026-11-23T10:55:10Z", "properties": {"plan": "free"}}),
    ];
    post_ingest(
        &client(),
        &server.url(),
        &json!({ "batch": events }).to_string(),
    )
    .expect("answered");

    let by_name_or_value = page_both_ways(
        &server,
        "search=CHECKOUT",
        &EventsQuery {
            search: Some("CHECKOUT".to_owned()),
            ..EventsQuery::default()
        },
    );
    let by_key = page_both_ways(
        &server,
        "search=coupon",
        &EventsQuery {
            search: Some("coupon".to_owned()),
            ..EventsQuery::default()
        },
    );
    let by_number = page_both_ways(
        &server,
        "search=421&name=page_view",
        &EventsQuery {
            search: Some("421".to_owned()),
            name: Some("page_view".to_owned()),
            ..EventsQuery::default()
        },
    );
    let nothing = page_both_ways(
        &server,
        "search=nowhere",
        &EventsQuery {
            search: Some("nowhere".to_owned()),
            ..EventsQuery::default()
        },
    );

    assert_eq!(seqs(&by_name_or_value), vec![1, 2]);
    assert_eq!(seqs(&by_key), vec![3]);
    assert_eq!(seqs(&by_number), vec![3]);
    assert_eq!((nothing.total, seqs(&nothing)), (0, vec![]));
    server.shutdown();
}

#[test]
fn a_requests_events_and_the_stored_events_its_duplicates_repeated_are_visible() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let (a, b, c, d) = (fresh_uuid(), fresh_uuid(), fresh_uuid(), fresh_uuid());
    post_ingest(&client(), &server.url(), &batch(&[&a, &b, &c])).expect("answered");
    // Two resends of stored events, one new event and, in the same batch, a resend of that new event.
    post_ingest(&client(), &server.url(), &batch(&[&b, &d, &a, &d])).expect("answered");
    post_ingest(&client(), &server.url(), &batch(&[&b])).expect("answered");

    let log: RequestsPage = get_json(&server.url(), "/_fake/requests");
    let second = &log.requests[1];
    let of_second = page_both_ways(
        &server,
        "request_id=2",
        &EventsQuery {
            request_id: Some(2),
            ..EventsQuery::default()
        },
    );
    let all = server.events();

    assert_eq!(second.duplicates, Some(2 + 1));
    assert_eq!(
        second.duplicate_seqs,
        vec![2, 1, 4],
        "b, a, then d stored by this very request"
    );
    assert_eq!(log.requests[2].duplicate_seqs, vec![2]);
    assert!(log.requests[0].duplicate_seqs.is_empty());
    assert_eq!(seqs(&of_second), vec![4]);
    let resent: Vec<(u64, u64)> = all.iter().map(|event| (event.seq, event.resent)).collect();
    assert_eq!(resent, vec![(1, 1), (2, 2), (3, 0), (4, 1)]);
    let served: Value = get_json(&server.url(), "/_fake/events");
    assert_eq!(served["events"][1]["resent"], 2);
    assert!(served["events"][2].get("resent").is_none(), "absent when 0");
    server.shutdown();
}

#[test]
fn pages_reach_every_event_beyond_the_newest_fifty() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let uuids: Vec<String> = (0..120).map(|_| fresh_uuid()).collect();
    let refs: Vec<&str> = uuids.iter().map(String::as_str).collect();
    post_ingest(&client(), &server.url(), &batch(&refs)).expect("answered");

    let middle = page_both_ways(
        &server,
        "offset=20&limit=50",
        &EventsQuery {
            offset: Some(20),
            limit: Some(50),
            ..EventsQuery::default()
        },
    );
    let first = page_both_ways(
        &server,
        "offset=0&limit=50",
        &EventsQuery {
            offset: Some(0),
            limit: Some(50),
            ..EventsQuery::default()
        },
    );

    assert_eq!(seqs(&middle), (21..=70).collect::<Vec<u64>>());
    assert_eq!((middle.total, middle.next_offset), (120, Some(70)));
    assert_eq!(seqs(&first), (1..=50).collect::<Vec<u64>>());
    server.shutdown();
}

#[test]
fn the_rate_history_counts_events_and_errors_since_start_and_a_reset_clears_it() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let uuids: Vec<String> = (0..7).map(|_| fresh_uuid()).collect();
    let refs: Vec<&str> = uuids.iter().map(String::as_str).collect();
    post_ingest(&client(), &server.url(), &batch(&refs)).expect("answered");
    post_ingest(&client(), &server.url(), &batch(&refs[..2])).expect("answered (duplicates)");
    server.set_faults(
        FaultPlan::from_json(r#"{"rules": [{"then": {"status": 503}}]}"#).expect("a valid plan"),
    );
    let refused =
        post_ingest(&client(), &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    assert_eq!(refused.status, 503);

    let served: RateHistory = get_json(&server.url(), "/_fake/history");
    let embedded = server.history();

    for history in [&served, &embedded] {
        let events: u64 = history.buckets.iter().map(|bucket| bucket.events).sum();
        let errors: u64 = history.buckets.iter().map(|bucket| bucket.errors).sum();
        assert_eq!((events, errors), (9, 1), "{history:?}");
        assert_eq!(history.buckets[0].start_secs, 0, "from the start");
        assert!(history.buckets.len() <= fake_ingest::MAX_RATE_BUCKETS);
        assert!(history.bucket_secs >= 1);
    }
    server.reset().expect("reset");
    let after: RateHistory = get_json(&server.url(), "/_fake/history");
    assert!(
        after
            .buckets
            .iter()
            .all(|bucket| bucket.events == 0 && bucket.errors == 0),
        "{after:?}"
    );
    server.shutdown();
}

#[test]
fn nanosecond_times_reach_a_json_reader_as_exact_strings() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let log = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1763895310123456789", "body": {"stringValue": "precise"}}]}]}]});
    let response = client()
        .post(format!("{}/v1/logs", server.url()))
        .header("content-type", "application/json")
        .send(log.to_string())
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);

    let body = client()
        .get(format!("{}/_fake/events", server.url()))
        .call()
        .expect("answered")
        .body_mut()
        .read_to_string()
        .expect("a body");

    assert!(
        body.contains(r#""otel.time_unix_nano":"1763895310123456789""#),
        "{body}"
    );
    assert_eq!(
        server.events()[0].event.property("otel.time_unix_nano"),
        Some(&json!("1763895310123456789"))
    );
    server.shutdown();
}
