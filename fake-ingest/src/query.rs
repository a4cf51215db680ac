//! [`EventsQuery`] and [`EventsPage`]: which captured events a reader asks for and the page it gets back, shared by
//! the store (which answers it) and the control API (which serves it as `GET /_fake/events`).

use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::event::{CapturedEvent, Protocol};

/// The query of `GET /_fake/events`: which events, from where, how many.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Skip this many matching events (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Return at most this many (default and maximum 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only events that came through this protocol (`ingest`, `otlp_logs`, ..., `posthog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Only events that came through this route, e.g. `/ingest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only events with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only events that have this property (own or shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// With `property`: only events whose property equals this (read as JSON when it parses, e.g. `true` or `42`,
    /// else as a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Only events whose name, or a property's name or value (own or shared), contains this text, ignoring ASCII
    /// case (a value that is not a string is searched as its JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Only events carried by this request (its index in the request log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    /// Proxy mode: only events of forwarded requests the upstream answered so (`200`, `503`, `OK`, `refused`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// `ndjson`: every matching event (`offset` and `limit` ignored), one JSON object a line, streamed, instead of
    /// a page; `otlp-json`: the matching OTLP records as OTLP/JSON export requests, one a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<EventsFormat>,
}

/// The formats `GET /_fake/events` answers in besides a JSON page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsFormat {
    /// Newline-delimited JSON: one [`CapturedEvent`] a line.
    Ndjson,
    /// The OTLP records only, as OTLP/JSON export requests ([`crate::otlp_json_requests`]), one a line: a line
    /// per signal per 1 000 events, in arrival order.
    #[serde(rename = "otlp-json", alias = "otlp_json")]
    OtlpJson,
}

impl EventsQuery {
    /// The filter part of the query.
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            protocol: self.protocol,
            route: self.route.clone(),
            name: self.name.clone(),
            property: self.property.clone(),
            equals: self.equals.clone(),
            search: self.search.clone(),
            request_id: self.request_id,
            upstream: self.upstream.clone(),
        }
    }
}

/// Which captured events a query or a wait is about: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only events of this protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Only events of this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only events with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only events that have this property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// With `property`: only events whose property equals this (JSON when it parses, else a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Only events whose name or a property's name or value contains this text, ignoring ASCII case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Only events carried by this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    /// Only events of forwarded requests the upstream answered so (proxy mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl EventFilter {
    /// Events named `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &CapturedEvent) -> bool {
        self.protocol
            .is_none_or(|protocol| event.protocol == protocol)
            && self
                .route
                .as_deref()
                .is_none_or(|route| event.route == route)
            && self
                .name
                .as_deref()
                .is_none_or(|name| event.event.name == name)
            && self.property.as_deref().is_none_or(|property| {
                match (event.event.property(property), self.equals.as_deref()) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(value), Some(expected)) => {
                        serde_json::from_str::<Value>(expected).is_ok_and(|parsed| *value == parsed)
                            || value.as_str() == Some(expected)
                    }
                }
            })
            && self
                .request_id
                .is_none_or(|request_id| event.request_id == request_id)
            && self
                .upstream
                .as_deref()
                .is_none_or(|upstream| event.upstream.as_deref() == Some(upstream))
            && self
                .search
                .as_deref()
                .is_none_or(|text| search_matches(event, text))
    }
}

/// Whether `text` occurs, ignoring ASCII case, in the event's name or in a property's name or value.
fn search_matches(event: &CapturedEvent, text: &str) -> bool {
    let needle = text.to_ascii_lowercase();
    let contains = |haystack: &str| haystack.to_ascii_lowercase().contains(&needle);
    contains(&event.event.name)
        || event.event.merged_properties().iter().any(|(key, value)| {
            contains(key)
                || match value {
                    Value::String(text) => contains(text),
                    other => contains(&other.to_string()),
                }
        })
}

/// One page of captured events, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    /// How many events match the query in all.
    pub total: usize,
    /// The offset this page starts at.
    pub offset: usize,
    /// The offset of the next page, absent on the last page.
    pub next_offset: Option<usize>,
    /// The events of this page.
    pub events: Vec<CapturedEvent>,
}

/// One request to a data route, as the request log keeps it (`GET /_fake/requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request's fault index (1-based, since start or the last reset); 0 for a request refused before fault
    /// evaluation (a wrong method).
    pub index: u64,
    /// When it arrived, RFC 3339.
    pub time: String,
    /// The HTTP method.
    pub method: String,
    /// The route, e.g. `/v1/logs`.
    pub route: String,
    /// The protocol of the route.
    pub protocol: Protocol,
    /// The `Content-Type` sent, if any.
    pub content_type: Option<String>,
    /// The `Content-Encoding` sent, if any.
    pub content_encoding: Option<String>,
    /// The body's size as sent, when it was read.
    pub body_bytes: Option<u64>,
    /// Events the request carried, when it was decoded.
    pub events: Option<u64>,
    /// Of those, how many were duplicates of stored events (when it was stored).
    pub duplicates: Option<u64>,
    /// The `seq` of the stored event each duplicate repeated, in request order (at most 100); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicate_seqs: Vec<u64>,
    /// The fault decided, by kind name (`status`, `reset_after_store`, ...); `latency` when only a delay applied.
    pub fault: Option<String>,
    /// The index of the plan rule that decided it.
    pub rule: Option<usize>,
    /// What the client got: the status sent, or `reset`, `hang` or `crash`.
    pub outcome: String,
    /// Milliseconds from arrival to the answer (absent for a hang).
    pub latency_ms: Option<f64>,
    /// Proxy mode: what the upstream answered the forwarded request, its status code or `refused`, `timeout` or
    /// `failed`; absent when the request was not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// The query of `GET /_fake/requests`: which logged requests, how many.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsQuery {
    /// Skip this many matching requests (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Return at most this many (default and maximum 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only requests to this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only requests with this outcome: a status (`503`) or `reset`, `hang`, `crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only requests with this fault kind (`status`, `reset_after_store`, ..., `latency`), or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// One page of the request log, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestsPage {
    /// How many kept requests match the query in all.
    pub total: usize,
    /// How many requests were dropped from the log to stay within `--max-requests-kept` (since start or reset).
    pub evicted: u64,
    /// The offset this page starts at.
    pub offset: usize,
    /// The offset of the next page, absent on the last page.
    pub next_offset: Option<usize>,
    /// The requests of this page.
    pub requests: Vec<RequestRecord>,
}

/// The query of `GET /_fake/wait`: wait until at least `min` captured events match the filter, or the timeout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitQuery {
    /// How many matching events to wait for (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<usize>,
    /// How long to wait at most, in milliseconds (default 5 000, at most 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// As [`EventFilter::protocol`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// As [`EventFilter::route`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// As [`EventFilter::name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// As [`EventFilter::property`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// As [`EventFilter::equals`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

impl WaitQuery {
    /// The filter part of the query.
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            protocol: self.protocol,
            route: self.route.clone(),
            name: self.name.clone(),
            property: self.property.clone(),
            equals: self.equals.clone(),
            ..EventFilter::default()
        }
    }
}

/// What a wait found, whether or not the condition came to hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitOutcome {
    /// Whether at least `min` events matched before the timeout.
    pub satisfied: bool,
    /// How many events match.
    pub matching: usize,
    /// How many were waited for.
    pub min: usize,
    /// The matching events (the first 100).
    pub events: Vec<CapturedEvent>,
}
