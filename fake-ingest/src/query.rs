//! [`EventsQuery`] and [`EventsPage`]: which captured events a reader asks for and the page it gets back, shared by
//! the store (which answers it) and the control API (which serves it as `GET /_fake/events`).

use serde::{Deserialize, Serialize};

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
