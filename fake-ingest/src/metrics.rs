//! `GET /metrics`: the server's counters in the Prometheus text exposition format (version 0.0.4).
//!
//! Five counter families, each sample a running total since start (or since the last `POST /_fake/reset`):
//!
//! | family | labels | counts |
//! |---|---|---|
//! | `fake_ingest_requests_total` | `route`, `status` | answered requests per route and status |
//! | `fake_ingest_events_total` | `outcome` | events by outcome (`received`, `unique`, `duplicate`, `rejected`, ...) |
//! | `fake_ingest_faults_total` | `kind` | injected faults per action kind |
//! | `fake_ingest_unknown_route_requests_total` | `method`, `path` | requests to routes that are not served |
//! | `fake_ingest_upstream_answers_total` | `outcome` | proxy mode: the upstream's answers, by status or failure |
//!
//! The renderer takes plain data ([`Counters`]), so it does not care how the server keeps its statistics; the
//! output is sorted by labels so that it is stable for snapshots.

use std::fmt::Write as _;

/// The `Content-Type` of the Prometheus text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One `fake_ingest_requests_total` sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestCount {
    /// The route, e.g. `/v1/logs`.
    pub(crate) route: String,
    /// The HTTP status answered (0 when no response was sent, e.g. for an injected reset).
    pub(crate) status: u16,
    /// How many requests.
    pub(crate) count: u64,
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Requests by route and status.
    pub(crate) requests: Vec<RequestCount>,
    /// Events by outcome.
    pub(crate) events: Vec<(String, u64)>,
    /// Injected faults by kind.
    pub(crate) faults: Vec<(String, u64)>,
    /// Requests to unknown routes by method and path.
    pub(crate) unknown_routes: Vec<UnknownRouteCount>,
    /// Proxy mode: the upstream's answers by status or failure.
    pub(crate) upstream: Vec<(String, u64)>,
}

/// One `fake_ingest_unknown_route_requests_total` sample.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UnknownRouteCount {
    /// The HTTP method (empty for the `(other)` bucket).
    pub(crate) method: String,
    /// The path, or `(other)`.
    pub(crate) path: String,
    /// How many requests.
    pub(crate) count: u64,
}

/// Renders the counters in the Prometheus text format.
pub(crate) fn render(counters: &Counters) -> String {
    let mut output = String::new();

    family_header(
        &mut output,
        "fake_ingest_requests_total",
        "Requests answered, by route and HTTP status.",
    );
    let mut requests: Vec<&RequestCount> = counters.requests.iter().collect();
    requests.sort_by(|a, b| (a.route.as_str(), a.status).cmp(&(b.route.as_str(), b.status)));
    for request in requests {
        let _ = writeln!(
            output,
            "fake_ingest_requests_total{{route=\"{}\",status=\"{}\"}} {}",
            escape_label_value(&request.route),
            request.status,
            request.count
        );
    }

    labelled_family(
        &mut output,
        "fake_ingest_events_total",
        "Events by outcome (received, unique, duplicate, rejected, ...).",
        "outcome",
        &counters.events,
    );
    labelled_family(
        &mut output,
        "fake_ingest_faults_total",
        "Injected faults, by kind.",
        "kind",
        &counters.faults,
    );
    family_header(
        &mut output,
        "fake_ingest_unknown_route_requests_total",
        "Requests to routes that are not served (404), by method and path.",
    );
    let mut unknown: Vec<&UnknownRouteCount> = counters.unknown_routes.iter().collect();
    unknown.sort();
    for route in unknown {
        let _ = writeln!(
            output,
            "fake_ingest_unknown_route_requests_total{{method=\"{}\",path=\"{}\"}} {}",
            escape_label_value(&route.method),
            escape_label_value(&route.path),
            route.count
        );
    }
    labelled_family(
        &mut output,
        "fake_ingest_upstream_answers_total",
        "Proxy mode: the upstream's answers to forwarded requests, by status or failure (refused, timeout, failed).",
        "outcome",
        &counters.upstream,
    );
    output
}

fn family_header(output: &mut String, name: &str, help: &str) {
    let _ = writeln!(output, "# HELP {name} {help}");
    let _ = writeln!(output, "# TYPE {name} counter");
}

fn labelled_family(
    output: &mut String,
    name: &str,
    help: &str,
    label: &str,
    samples: &[(String, u64)],
) {
    family_header(output, name, help);
    let mut samples: Vec<&(String, u64)> = samples.iter().collect();
    samples.sort();
    for (value, count) in samples {
        let _ = writeln!(
            output,
            "{name}{{{label}=\"{}\"}} {count}",
            escape_label_value(value)
        );
    }
}

/// Escapes a label value as the text format requires: backslash, double quote and line feed.
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Counters {
        Counters {
            requests: vec![
                RequestCount {
                    route: "/v1/logs".to_owned(),
                    status: 200,
                    count: 3,
                },
                RequestCount {
                    route: "/batch/".to_owned(),
                    status: 503,
                    count: 1,
                },
                RequestCount {
                    route: "/batch/".to_owned(),
                    status: 200,
                    count: 2,
                },
            ],
            events: vec![
                ("unique".to_owned(), 5),
                ("received".to_owned(), 6),
                ("duplicate".to_owned(), 1),
            ],
            faults: vec![("status".to_owned(), 1)],
            unknown_routes: vec![UnknownRouteCount {
                method: "POST".to_owned(),
                path: "/i/v1/logz".to_owned(),
                count: 2,
            }],
            upstream: vec![("refused".to_owned(), 1), ("200".to_owned(), 4)],
        }
    }

    #[test]
    fn the_output_is_sorted_and_typed_as_counters() {
        let text = render(&counters());
        let expected = "\
# HELP fake_ingest_requests_total Requests answered, by route and HTTP status.
# TYPE fake_ingest_requests_total counter
fake_ingest_requests_total{route=\"/batch/\",status=\"200\"} 2
fake_ingest_requests_total{route=\"/batch/\",status=\"503\"} 1
fake_ingest_requests_total{route=\"/v1/logs\",status=\"200\"} 3
# HELP fake_ingest_events_total Events by outcome (received, unique, duplicate, rejected, ...).
# TYPE fake_ingest_events_total counter
fake_ingest_events_total{outcome=\"duplicate\"} 1
fake_ingest_events_total{outcome=\"received\"} 6
fake_ingest_events_total{outcome=\"unique\"} 5
# HELP fake_ingest_faults_total Injected faults, by kind.
# TYPE fake_ingest_faults_total counter
fake_ingest_faults_total{kind=\"status\"} 1
# HELP fake_ingest_unknown_route_requests_total Requests to routes that are not served (404), by method and path.
# TYPE fake_ingest_unknown_route_requests_total counter
fake_ingest_unknown_route_requests_total{method=\"POST\",path=\"/i/v1/logz\"} 2
# HELP fake_ingest_upstream_answers_total Proxy mode: the upstream's answers to forwarded requests, by status or failure (refused, timeout, failed).
# TYPE fake_ingest_upstream_answers_total counter
fake_ingest_upstream_answers_total{outcome=\"200\"} 4
fake_ingest_upstream_answers_total{outcome=\"refused\"} 1
";
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn empty_counters_still_declare_every_family() {
        let text = render(&Counters::default());
        assert_eq!(
            text.lines()
                .filter(|line| line.starts_with("# TYPE"))
                .count(),
            5
        );
    }
}
