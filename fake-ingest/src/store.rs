//! The [`Store`]: capture, dedupe, persistence and counters, shared by every front door.
//!
//! A front door decodes a request into `Vec<IncomingEvent>` and hands it to [`Store::store_batch`] with its
//! [`Protocol`] and route; the store appends it to the batch log (when there is one) and syncs it, then applies it in
//! memory: each event whose idempotency key is new gets the next `seq` and is captured, the others count as
//! duplicates. Counters of requests, responses and injected faults live here too, so `/_fake/stats` is one snapshot.
//!
//! Invariant: one mutex guards the events, the dedupe keys, the counters and the log, so the log order is the `seq`
//! order, a batch is applied whole or not at all, and a duplicate is only ever answered once the original is durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::dedupe_key::DedupeKey;
use crate::error::Error;
use crate::event::{CapturedEvent, IncomingEvent, Protocol};
use crate::fault_kinds::FaultKind;
use crate::log::{BatchLog, BatchRecordRef};
use crate::query::{EventsPage, EventsQuery, RequestRecord, RequestsPage, RequestsQuery};
use crate::request_log::RequestLog;
use crate::stats::Stats;

/// The most events one `GET /_fake/events` page returns.
pub(crate) const MAX_PAGE: usize = 10_000;

/// Capture, dedupe, persistence and counters.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
    /// Signalled (with `version`) after every change of the captured events, for the waits.
    changed: Condvar,
    version: watch::Sender<u64>,
}

#[derive(Debug)]
struct Inner {
    /// The captured events still kept, oldest first (at most `max_events_kept`).
    events: VecDeque<CapturedEvent>,
    /// Every stored idempotency key, evicted events' included, so dedupe stays exact.
    keys: HashSet<DedupeKey>,
    max_events_kept: Option<usize>,
    stats: Stats,
    /// Fault-evaluated requests since start or the last reset.
    request_index: u64,
    /// Fault-evaluated requests per route and per protocol since start or the last reset (the indexes of
    /// route- and protocol-scoped count triggers).
    route_indexes: HashMap<String, u64>,
    protocol_indexes: HashMap<Protocol, u64>,
    started: Instant,
    log: Option<BatchLog>,
    requests: RequestLog,
}

/// What storing one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreOutcome {
    /// Events newly stored.
    pub(crate) accepted: u64,
    /// Events whose key was already stored.
    pub(crate) duplicates: u64,
}

/// The index and clock reading a fault decision needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestTicket {
    pub(crate) index: u64,
    /// When the request arrived (for the request log's time and latency).
    pub(crate) arrived: Instant,
    pub(crate) arrived_at: jiff::Timestamp,
    pub(crate) route_index: u64,
    pub(crate) protocol_index: u64,
    pub(crate) since_start: Duration,
}

impl Store {
    /// Opens a store: in memory, or backed by the batch log in `data_dir`, replayed.
    pub(crate) fn open(
        data_dir: Option<&Path>,
        max_requests_kept: usize,
        max_events_kept: Option<usize>,
    ) -> Result<Self, Error> {
        let mut inner = Inner {
            events: VecDeque::new(),
            keys: HashSet::new(),
            max_events_kept,
            stats: Stats::default(),
            request_index: 0,
            route_indexes: HashMap::new(),
            protocol_indexes: HashMap::new(),
            started: Instant::now(),
            log: None,
            requests: RequestLog::new(max_requests_kept),
        };
        if let Some(dir) = data_dir {
            let (log, records) = BatchLog::open(dir)?;
            let batches = records.len();
            for record in records {
                inner.apply(
                    record.request_id,
                    record.protocol,
                    &record.route,
                    &record.received_at,
                    record.events,
                    record.duplicates,
                );
            }
            tracing::info!(
                dir = %dir.display(),
                batches,
                events_unique = inner.stats.events_unique,
                "replayed the batch log"
            );
            inner.log = Some(log);
        }
        Ok(Self {
            inner: Mutex::new(inner),
            changed: Condvar::new(),
            version: watch::Sender::new(0),
        })
    }

    /// The events captured in the batch log of `data_dir`, in `seq` order, replayed without opening the
    /// directory for writing (it is neither locked nor repaired).
    ///
    /// # Errors
    /// [`Error::DataDir`] when the log cannot be read, [`Error::CorruptLog`] when it is corrupt.
    pub(crate) fn export(data_dir: &Path) -> Result<Vec<CapturedEvent>, Error> {
        let mut inner = Inner {
            events: VecDeque::new(),
            keys: HashSet::new(),
            max_events_kept: None,
            stats: Stats::default(),
            request_index: 0,
            route_indexes: HashMap::new(),
            protocol_indexes: HashMap::new(),
            started: Instant::now(),
            log: None,
            requests: RequestLog::new(0),
        };
        for record in crate::log::read(data_dir)? {
            inner.apply(
                record.request_id,
                record.protocol,
                &record.route,
                &record.received_at,
                record.events,
                record.duplicates,
            );
        }
        Ok(inner.events.into())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (a batch is applied after its fallible part), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request to a data route that is not fault-evaluated (e.g. a wrong method).
    pub(crate) fn count_request(&self, route: &str) {
        let mut inner = self.lock();
        inner.stats.requests += 1;
        route_stats(&mut inner.stats, route).requests += 1;
    }

    /// Counts a fault-evaluated request and returns its indexes (overall, on its route, in its protocol) and the
    /// time since start.
    pub(crate) fn begin_request(&self, route: &str, protocol: Protocol) -> RequestTicket {
        let mut inner = self.lock();
        inner.stats.requests += 1;
        route_stats(&mut inner.stats, route).requests += 1;
        inner.request_index += 1;
        let route_index = {
            let count = inner.route_indexes.entry(route.to_owned()).or_default();
            *count += 1;
            *count
        };
        let protocol_index = {
            let count = inner.protocol_indexes.entry(protocol).or_default();
            *count += 1;
            *count
        };
        RequestTicket {
            index: inner.request_index,
            arrived: Instant::now(),
            arrived_at: jiff::Timestamp::now(),
            route_index,
            protocol_index,
            since_start: inner.started.elapsed(),
        }
    }

    /// Adds a request to the request log.
    pub(crate) fn log_request(&self, record: RequestRecord) {
        self.lock().requests.push(record);
    }

    /// One page of the request log.
    pub(crate) fn requests(&self, query: &RequestsQuery) -> RequestsPage {
        self.lock().requests.page(query)
    }

    /// Counts a request to a route that is not served.
    pub(crate) fn count_unknown_route(&self, method: &str, path: &str) {
        self.lock().stats.count_unknown_route(method, path);
    }

    /// Counts a response sent from a data route.
    pub(crate) fn count_response(&self, route: &str, status: u16) {
        let mut inner = self.lock();
        *inner.stats.responses.entry(status).or_default() += 1;
        *route_stats(&mut inner.stats, route)
            .responses
            .entry(status)
            .or_default() += 1;
    }

    /// Counts an answer of the upstream (proxy mode): its status code or how forwarding failed.
    pub(crate) fn count_upstream(&self, outcome: &str) {
        *self
            .lock()
            .stats
            .upstream
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Counts an injected fault.
    pub(crate) fn count_fault(&self, kind: FaultKind) {
        self.lock().stats.faults.count(kind);
    }

    /// Counts records refused on their own (never stored).
    pub(crate) fn count_rejected(&self, records: u64) {
        if records > 0 {
            self.lock().stats.events_rejected += records;
        }
    }

    /// Stores a batch: durably first when there is a log, then in memory. Blocks on `fdatasync` with a log.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the log cannot be written; nothing of the batch is stored then.
    pub(crate) fn store_batch(
        &self,
        request_id: u64,
        protocol: Protocol,
        route: &str,
        events: Vec<IncomingEvent>,
    ) -> Result<StoreOutcome, Error> {
        let mut inner = self.lock();
        // Taken under the lock, so `received_at` never goes backwards along `seq`.
        let received_at = jiff::Timestamp::now().to_string();
        let (events, duplicates) = inner.partition(events);
        if let Some(log) = inner.log.as_mut() {
            log.append(&BatchRecordRef {
                request_id,
                protocol,
                route,
                received_at: &received_at,
                events: &events,
                duplicates,
            })?;
        }
        let outcome = inner.apply(
            request_id,
            protocol,
            route,
            &received_at,
            events,
            duplicates,
        );
        drop(inner);
        self.notify_changed();
        Ok(outcome)
    }

    /// Wakes every wait: the captured events changed.
    fn notify_changed(&self) {
        self.changed.notify_all();
        self.version.send_modify(|version| *version += 1);
    }

    /// Evaluates `check` on the captured events and counters now, and again after every change, until it says it
    /// holds or `timeout` passes; returns whether it held and its last answer. Blocks the calling thread.
    pub(crate) fn wait_until_blocking<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[CapturedEvent], &Stats) -> (bool, T),
    ) -> (bool, T) {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let inner_ref = &mut *inner;
            let (held, answer) = check(inner_ref.events.make_contiguous(), &inner_ref.stats);
            let now = Instant::now();
            if held || now >= deadline {
                return (held, answer);
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// As [`Store::wait_until_blocking`], for async code.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[CapturedEvent], &Stats) -> (bool, T),
    ) -> (bool, T) {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first check, so that no change between the check and the wait is missed.
        let mut changes = self.version.subscribe();
        loop {
            let (held, answer) = {
                let mut inner = self.lock();
                let inner = &mut *inner;
                check(inner.events.make_contiguous(), &inner.stats)
            };
            if held {
                return (true, answer);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the store is gone: answer with the last look.
                Ok(Err(_)) | Err(_) => {
                    let mut inner = self.lock();
                    let inner = &mut *inner;
                    return check(inner.events.make_contiguous(), &inner.stats);
                }
            }
        }
    }

    /// Whether stores block on a disk sync (callers move them off the async runtime then).
    pub(crate) fn is_durable(&self) -> bool {
        self.lock().log.is_some()
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Every captured event, in arrival order.
    pub(crate) fn events(&self) -> Vec<CapturedEvent> {
        self.lock().events.iter().cloned().collect()
    }

    /// One page of captured events.
    pub(crate) fn page(&self, query: &EventsQuery) -> EventsPage {
        let inner = self.lock();
        let filter = query.filter();
        let matching = inner.events.iter().filter(|event| filter.matches(event));
        let offset = query.offset.unwrap_or(0);
        let limit = query.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut total = 0;
        let mut events = Vec::new();
        for (position, event) in matching.enumerate() {
            total += 1;
            if position >= offset && events.len() < limit {
                events.push(event.clone());
            }
        }
        let next_offset = (offset + events.len() < total).then_some(offset + events.len());
        EventsPage {
            total,
            offset,
            next_offset,
            events,
        }
    }

    /// Forgets everything: events, dedupe keys, counters, the request index and the clock; truncates the log.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the log cannot be truncated; nothing is reset then.
    pub(crate) fn reset(&self) -> Result<(), Error> {
        let mut inner = self.lock();
        if let Some(log) = inner.log.as_mut() {
            log.truncate()?;
        }
        inner.events = VecDeque::new();
        inner.keys = HashSet::new();
        inner.stats = Stats::default();
        inner.request_index = 0;
        inner.requests = RequestLog::new(inner.requests.max_kept());
        inner.route_indexes = HashMap::new();
        inner.protocol_indexes = HashMap::new();
        inner.started = Instant::now();
        drop(inner);
        self.notify_changed();
        Ok(())
    }
}

impl Inner {
    /// Splits a batch into the events whose key is new (in request order) and the count of the others: keys
    /// already stored, or seen earlier in the same batch. Changes nothing: the batch may still fail to persist.
    fn partition(&self, events: Vec<IncomingEvent>) -> (Vec<IncomingEvent>, u64) {
        let mut seen_in_batch: HashSet<&str> = HashSet::new();
        let is_new: Vec<bool> = events
            .iter()
            .map(|event| {
                !event.has_idempotency_key
                    || (!self.keys.contains(&DedupeKey::new(&event.dedupe_key))
                        && seen_in_batch.insert(&event.dedupe_key))
            })
            .collect();
        let duplicates = is_new.iter().filter(|new| !**new).count() as u64;
        let new = events
            .into_iter()
            .zip(is_new)
            .filter_map(|(event, new)| new.then_some(event))
            .collect();
        (new, duplicates)
    }

    /// Applies a batch in memory: `events` (each still checked against the stored keys, so that a log written
    /// with duplicates inline replays the same) plus `duplicates` counted without their events.
    fn apply(
        &mut self,
        request_id: u64,
        protocol: Protocol,
        route: &str,
        received_at: &str,
        events: Vec<IncomingEvent>,
        duplicates: u64,
    ) -> StoreOutcome {
        self.stats.events_received += duplicates;
        let mut outcome = StoreOutcome {
            accepted: 0,
            duplicates,
        };
        for event in events {
            self.stats.events_received += 1;
            if event.has_idempotency_key && !self.keys.insert(DedupeKey::new(&event.dedupe_key)) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.accepted += 1;
            if !event.has_idempotency_key {
                self.stats.events_without_key += 1;
            }
            if let Some(max) = self.max_events_kept
                && self.events.len() >= max
            {
                self.events.pop_front();
                self.stats.events_evicted += 1;
            }
            self.events.push_back(CapturedEvent {
                seq: self.stats.events_unique + outcome.accepted,
                request_id,
                protocol,
                route: route.to_owned(),
                received_at: received_at.to_owned(),
                event,
            });
        }
        self.stats.events_unique += outcome.accepted;
        self.stats.duplicates += outcome.duplicates;
        self.stats.batches_stored += 1;
        outcome
    }
}

fn route_stats<'a>(stats: &'a mut Stats, route: &str) -> &'a mut crate::stats::RouteStats {
    stats.routes.entry(route.to_owned()).or_default()
}
