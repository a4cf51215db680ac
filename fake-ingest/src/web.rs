//! `GET /` and `GET /metrics`: what the server captured, for a person and for Prometheus.
//!
//! `GET /` serves the live page, one self-contained HTML file (`assets/index.html`: HTML, CSS and JavaScript inline,
//! no CDN, no build step) embedded in the binary. It polls the control API once a second: `GET /_fake/stats` for
//! the counters, `GET /_fake/history` for the events/errors-per-second chart since start, `GET /_fake/faults` for
//! the plan in force (the preset it is, or "custom"), `GET /_fake/events` for the captured events (paged, filtered,
//! searched, or those of one request; the trace tree from the spans) and `GET /_fake/requests` for the request log;
//! it changes the fault plan with `PUT /_fake/faults` (presets or a JSON editor) and everything with
//! `POST /_fake/reset` (after a confirmation). `GET /metrics` renders the same stats with [`crate::metrics`].
//!
//! Neither route is fault-injected or counted in the stats.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::fault_kinds::FaultKind;
use crate::metrics::{self, Counters, RequestCount, UnknownRouteCount};
use crate::state::AppState;
use crate::stats::Stats;

/// The page served at `GET /`.
pub(crate) const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The `Content-Type` of the page.
pub(crate) const INDEX_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// `GET /` and `GET /metrics`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(prometheus_metrics))
}

async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, INDEX_CONTENT_TYPE)], INDEX_HTML)
}

async fn prometheus_metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let counters = counters(&state.store.stats());
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&counters),
    )
}

/// The stats as the plain counters `/metrics` shows.
fn counters(stats: &Stats) -> Counters {
    let requests = stats
        .routes
        .iter()
        .flat_map(|(route, route_stats)| {
            route_stats
                .responses
                .iter()
                .map(|(status, count)| RequestCount {
                    route: route.clone(),
                    status: *status,
                    count: *count,
                })
        })
        .collect();
    let events = [
        ("received", stats.events_received),
        ("unique", stats.events_unique),
        ("duplicate", stats.duplicates),
        ("rejected", stats.events_rejected),
        ("without_key", stats.events_without_key),
        ("evicted", stats.events_evicted),
    ]
    .into_iter()
    .map(|(outcome, count)| (outcome.to_owned(), count))
    .collect();
    // Every fault kind, zeros included, named as in `/_fake/stats`.
    let faults = FaultKind::ALL
        .iter()
        .map(|kind| (kind.name().to_owned(), stats.faults.get(*kind)))
        .collect();
    let unknown_routes = stats
        .unknown_routes
        .iter()
        .map(|(key, count)| {
            let (method, path) = key.split_once(' ').unwrap_or(("", key.as_str()));
            UnknownRouteCount {
                method: method.to_owned(),
                path: path.to_owned(),
                count: *count,
            }
        })
        .collect();
    Counters {
        requests,
        events,
        faults,
        unknown_routes,
        upstream: stats
            .upstream
            .iter()
            .map(|(outcome, count)| (outcome.clone(), *count))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained() {
        assert!(INDEX_HTML.starts_with("<!doctype html>"));
        for external in [
            "<script src",
            "<link rel=\"stylesheet\"",
            "http://",
            "https://",
        ] {
            assert!(
                !INDEX_HTML.contains(external),
                "the page must not load {external}"
            );
        }
    }

    #[test]
    fn the_page_polls_the_control_api() {
        for path in [
            "/_fake/stats",
            "/_fake/events",
            "/_fake/faults",
            "/_fake/reset",
            "/_fake/history",
            "/_fake/requests",
        ] {
            assert!(INDEX_HTML.contains(path), "the page must use {path}");
        }
    }
}
