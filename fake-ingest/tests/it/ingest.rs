//! `POST /ingest`: the strict protocol of docs/PROTOCOL.md, through `app()` and `oneshot`.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fake_ingest::{Config, Stats, app};
use serde_json::json;

use crate::support::{batch, event_with, fresh_uuid, get, ingest_request, oneshot};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compresses");
    encoder.finish().expect("compresses")
}

async fn stats_of(app: &axum::Router) -> Stats {
    let (_, _, value) = oneshot(app, get("/_fake/stats")).await;
    serde_json::from_value(value).expect("stats shape")
}

#[tokio::test]
async fn a_valid_batch_is_accepted_and_a_resent_uuid_counts_as_a_duplicate() {
    let app = app(Config::default()).expect("app");
    let (a, b) = (fresh_uuid(), fresh_uuid());

    let (first, _, first_body) = oneshot(&app, ingest_request(batch(&[&a, &b]))).await;
    let (second, _, second_body) = oneshot(&app, ingest_request(batch(&[&b, &b]))).await;

    assert_eq!(
        (first, first_body),
        (
            StatusCode::ACCEPTED,
            json!({"accepted": 2, "duplicates": 0})
        )
    );
    assert_eq!(
        (second, second_body),
        (
            StatusCode::ACCEPTED,
            json!({"accepted": 0, "duplicates": 2})
        )
    );
    let stats = stats_of(&app).await;
    assert_eq!(
        (stats.events_received, stats.events_unique, stats.duplicates),
        (4, 2, 2)
    );
}

#[tokio::test]
async fn a_gzip_body_is_accepted() {
    let app = app(Config::default()).expect("app");
    let request = Request::post("/ingest")
        .header("content-type", "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(Body::from(gzip(batch(&[&fresh_uuid()]).as_bytes())))
        .expect("request");

    let (status, _, body) = oneshot(&app, request).await;

    assert_eq!(
        (status, body),
        (
            StatusCode::ACCEPTED,
            json!({"accepted": 1, "duplicates": 0})
        )
    );
}

#[tokio::test]
async fn an_invalid_event_is_named_by_index_and_nothing_of_the_batch_is_stored() {
    let app = app(Config::default()).expect("app");
    let mut bad = event_with(&fresh_uuid(), json!({}));
    bad["timestamp"] = json!("yesterday");
    let body = json!({ "batch": [event_with(&fresh_uuid(), json!({})), bad] }).to_string();

    let (status, _, error) = oneshot(&app, ingest_request(body)).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["index"], 1);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .starts_with("batch[1].timestamp"),
        "{error}"
    );
    assert_eq!(stats_of(&app).await.events_received, 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_and_after_decompression() {
    let config = Config {
        max_body_bytes: 1000,
        ..Config::default()
    };
    let app = app(config).expect("app");
    let padding = "x".repeat(5000);
    let big =
        json!({ "batch": [event_with(&fresh_uuid(), json!({ "padding": padding }))] }).to_string();
    let compressed = gzip(big.as_bytes());
    assert!(
        compressed.len() < 1000,
        "the compressed body itself is under the limit"
    );

    let (plain, _, _) = oneshot(&app, ingest_request(big)).await;
    let gzip_request = Request::post("/ingest")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from(compressed))
        .expect("request");
    let (decompressed, _, error) = oneshot(&app, gzip_request).await;

    assert_eq!(plain, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(decompressed, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        error["error"]
            .as_str()
            .expect("message")
            .contains("decompressed"),
        "{error}"
    );
}

#[tokio::test]
async fn other_content_types_and_encodings_are_unsupported_media_types() {
    let app = app(Config::default()).expect("app");
    let body = batch(&[&fresh_uuid()]);
    let text = Request::post("/ingest")
        .header("content-type", "text/plain")
        .body(Body::from(body.clone()));
    let missing = Request::post("/ingest").body(Body::from(body.clone()));
    let brotli = Request::post("/ingest")
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(Body::from(body));

    for request in [text, missing, brotli] {
        let (status, _, error) = oneshot(&app, request.expect("request")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    }
}

#[tokio::test]
async fn other_methods_are_not_allowed_and_say_which_is() {
    let app = app(Config::default()).expect("app");
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let request = Request::builder()
            .method(method)
            .uri("/ingest")
            .body(Body::empty())
            .expect("request");

        let (status, headers, _) = oneshot(&app, request).await;

        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers["allow"], "POST");
    }
}

#[tokio::test]
async fn bad_gzip_is_a_bad_request() {
    let app = app(Config::default()).expect("app");
    let request = Request::post("/ingest")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from("not gzip at all"))
        .expect("request");

    let (status, _, _) = oneshot(&app, request).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
}
