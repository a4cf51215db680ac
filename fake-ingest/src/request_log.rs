//! The request log: every request to a data route, in order, bounded (`--max-requests-kept`; the oldest go first
//! and are counted), with what was decided and answered. Served as `GET /_fake/requests` ([`RequestsPage`]).

use std::collections::VecDeque;

use crate::query::{RequestRecord, RequestsPage, RequestsQuery};

/// The default of `--max-requests-kept`.
pub const DEFAULT_MAX_REQUESTS_KEPT: usize = 10_000;

/// The most requests one page returns.
const MAX_PAGE: usize = 10_000;

/// The kept requests, oldest first.
#[derive(Debug)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    max_kept: usize,
    evicted: u64,
}

impl RequestLog {
    pub(crate) fn new(max_kept: usize) -> Self {
        Self {
            records: VecDeque::new(),
            max_kept,
            evicted: 0,
        }
    }

    /// The bound.
    pub(crate) fn max_kept(&self) -> usize {
        self.max_kept
    }

    /// Adds a request, dropping the oldest past the bound.
    pub(crate) fn push(&mut self, record: RequestRecord) {
        if self.max_kept == 0 {
            self.evicted += 1;
            return;
        }
        while self.records.len() >= self.max_kept {
            self.records.pop_front();
            self.evicted += 1;
        }
        self.records.push_back(record);
    }

    /// One page of the requests that match `query`.
    pub(crate) fn page(&self, query: &RequestsQuery) -> RequestsPage {
        let matching = self.records.iter().filter(|record| {
            query
                .route
                .as_deref()
                .is_none_or(|route| record.route == route)
                && query
                    .status
                    .as_deref()
                    .is_none_or(|status| record.outcome == status)
                && query.fault.as_deref().is_none_or(|fault| match fault {
                    "none" => record.fault.is_none(),
                    fault => record.fault.as_deref() == Some(fault),
                })
        });
        let offset = query.offset.unwrap_or(0);
        let limit = query.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut total = 0;
        let mut requests = Vec::new();
        for (position, record) in matching.enumerate() {
            total += 1;
            if position >= offset && requests.len() < limit {
                requests.push(record.clone());
            }
        }
        let next_offset = (offset + requests.len() < total).then_some(offset + requests.len());
        RequestsPage {
            total,
            evicted: self.evicted,
            offset,
            next_offset,
            requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Protocol;

    fn record(index: u64, outcome: &str) -> RequestRecord {
        RequestRecord {
            index,
            time: "t".to_owned(),
            method: "POST".to_owned(),
            route: "/ingest".to_owned(),
            protocol: Protocol::Ingest,
            content_type: None,
            content_encoding: None,
            body_bytes: None,
            events: None,
            duplicates: None,
            duplicate_seqs: Vec::new(),
            fault: (outcome != "202").then(|| "status".to_owned()),
            rule: None,
            outcome: outcome.to_owned(),
            latency_ms: None,
            upstream: None,
        }
    }

    #[test]
    fn the_log_keeps_the_newest_and_counts_what_it_drops() {
        let mut log = RequestLog::new(3);
        for index in 1..=5 {
            log.push(record(index, if index % 2 == 0 { "503" } else { "202" }));
        }
        let page = log.page(&RequestsQuery::default());
        assert_eq!(page.evicted, 2);
        let kept: Vec<u64> = page.requests.iter().map(|record| record.index).collect();
        assert_eq!(kept, [3, 4, 5]);
        let failed = log.page(&RequestsQuery {
            status: Some("503".to_owned()),
            ..RequestsQuery::default()
        });
        assert_eq!(failed.total, 1);
        let clean = log.page(&RequestsQuery {
            fault: Some("none".to_owned()),
            limit: Some(1),
            ..RequestsQuery::default()
        });
        assert_eq!((clean.total, clean.next_offset), (2, Some(1)));
    }
}
