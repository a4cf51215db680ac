//! The control API under `/_fake/`: what a test or harness reads and changes (`docs/PROTOCOL.md`, "Control API").
//!
//! | route | what |
//! |---|---|
//! | `GET /_fake/health` | `{"status": "ok"}` |
//! | `GET /_fake/stats` | [`crate::Stats`] |
//! | `GET /_fake/events?offset=&limit=&protocol=&route=&name=&property=&equals=&search=&request_id=` | [`crate::EventsPage`]; with `format=ndjson` every matching event, one JSON line each, streamed; with `format=otlp-json` the OTLP records as OTLP/JSON export requests, one a line |
//! | `GET /_fake/requests?offset=&limit=&route=&status=&fault=` | [`RequestsPage`]: the request log |
//! | `GET /_fake/wait?min=&timeout_ms=&protocol=&route=&name=&property=&equals=` | [`WaitOutcome`]: long-polls until enough events match |
//! | `GET /_fake/history` | [`RateHistory`]: events received and errors answered per interval since start, bounded |
//! | `GET /_fake/faults` | the current [`crate::FaultPlan`] |
//! | `PUT /_fake/faults` | replaces the plan (`400` with `{"error"}` when invalid) |
//! | `POST /_fake/reset` | forgets events, counters, the request log, the request index and the clock; truncates the log |
//!
//! These routes are never fault-injected and never counted in [`crate::Stats`].

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::error::error_chain;
use crate::event::CapturedEvent;
use crate::expect;
use crate::faults::FaultPlan;
use crate::front_door::Rejection;
use crate::otlp::otlp_json_requests;
use crate::query::{
    EventsFormat, EventsQuery, RequestsPage, RequestsQuery, WaitOutcome, WaitQuery,
};
use crate::rate_history::RateHistory;
use crate::state::AppState;

/// The `/_fake/` routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_fake/health", get(health))
        .route("/_fake/stats", get(stats))
        .route("/_fake/events", get(events))
        .route("/_fake/requests", get(requests))
        .route("/_fake/wait", get(wait))
        .route("/_fake/history", get(history))
        .route("/_fake/faults", get(get_faults).put(put_faults))
        .route("/_fake/reset", post(reset))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<crate::stats::Stats> {
    Json(state.store.stats())
}

async fn events(
    State(state): State<Arc<AppState>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, Rejection> {
    let Query(query) = query.map_err(|rejection| Rejection::bad_request(rejection.body_text()))?;
    match query.format {
        None => Ok(Json(state.store.page(&query)).into_response()),
        Some(EventsFormat::Ndjson) => Ok(streamed(state, query, write_ndjson)),
        Some(EventsFormat::OtlpJson) => Ok(streamed(state, query, write_otlp_json)),
    }
}

/// Writes each event as one JSON line.
fn write_ndjson(events: &[CapturedEvent], lines: &mut Vec<u8>) -> serde_json::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *lines, event)?;
        lines.push(b'\n');
    }
    Ok(())
}

/// Writes the OTLP records among `events` as OTLP/JSON export requests, one a line.
fn write_otlp_json(events: &[CapturedEvent], lines: &mut Vec<u8>) -> serde_json::Result<()> {
    for request in otlp_json_requests(events) {
        serde_json::to_writer(&mut *lines, &request)?;
        lines.push(b'\n');
    }
    Ok(())
}

/// Every matching event, written a page at a time by `write`, streamed as NDJSON (the store's lock is held per
/// page only).
fn streamed(
    state: Arc<AppState>,
    query: EventsQuery,
    write: fn(&[CapturedEvent], &mut Vec<u8>) -> serde_json::Result<()>,
) -> Response {
    const CHUNK: usize = 1_000;
    let pages = futures_util::stream::unfold(Some(0), move |offset| {
        let state = Arc::clone(&state);
        let query = query.clone();
        async move {
            let offset = offset?;
            let page = state.store.page(&EventsQuery {
                offset: Some(offset),
                limit: Some(CHUNK),
                ..query
            });
            if page.events.is_empty() {
                return None;
            }
            let mut lines = Vec::new();
            if let Err(error) = write(&page.events, &mut lines) {
                return Some((Err(std::io::Error::other(error)), None));
            }
            let next = page.next_offset;
            Some((Ok::<_, std::io::Error>(Bytes::from(lines)), next))
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response()
}

async fn requests(
    State(state): State<Arc<AppState>>,
    query: Result<Query<RequestsQuery>, QueryRejection>,
) -> Result<Json<RequestsPage>, Rejection> {
    let Query(query) = query.map_err(|rejection| Rejection::bad_request(rejection.body_text()))?;
    Ok(Json(state.store.requests(&query)))
}

async fn wait(
    State(state): State<Arc<AppState>>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<WaitOutcome>, Rejection> {
    let Query(query) = query.map_err(|rejection| Rejection::bad_request(rejection.body_text()))?;
    let timeout = query
        .timeout_ms
        .map_or(expect::DEFAULT_WAIT, Duration::from_millis)
        .min(expect::MAX_WAIT);
    let filter = query.filter();
    let min = query.min.unwrap_or(1);
    let outcome = state
        .store
        .wait_until(timeout, expect::Look::new(&filter, min))
        .await;
    Ok(Json(outcome))
}

async fn history(State(state): State<Arc<AppState>>) -> Json<RateHistory> {
    Json(state.store.history())
}

async fn get_faults(State(state): State<Arc<AppState>>) -> Json<FaultPlan> {
    Json(FaultPlan::clone(&state.faults()))
}

async fn put_faults(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<FaultPlan>, Rejection> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| Rejection::bad_request("the fault plan is not UTF-8"))?;
    let plan =
        FaultPlan::from_json(text).map_err(|error| Rejection::bad_request(error_chain(&error)))?;
    state.set_faults(plan.clone());
    tracing::info!(rules = plan.rules.len(), "fault plan replaced");
    Ok(Json(plan))
}

async fn reset(State(state): State<Arc<AppState>>) -> Response {
    match state.store.reset() {
        Ok(()) => {
            tracing::info!("state reset");
            Json(json!({ "reset": true })).into_response()
        }
        Err(error) => Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot reset: {}", error_chain(&error)),
        )
        .into_response(),
    }
}
