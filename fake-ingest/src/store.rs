//! The [`Store`]: capture, dedupe, persistence and counters, shared by every front door.
//!
//! A front door decodes a request into `Vec<IncomingEvent>` and hands it to [`Store::store_batch`] with its
//! [`Protocol`] and route; the store appends it to the batch log (when there is one) and syncs it, then applies it in
//! memory: each event whose idempotency key is new gets the next `seq` and is captured, the others count as
//! duplicates. Counters of requests, responses and injected faults live here too, so `/_fake/stats` is one snapshot.
//! Events are kept in their compact form ([`CompactEvent`]: a few hundred bytes for a 300-byte event instead of
//! the ~1.2 KB its decoded tree takes) and decoded for readers; filters on protocol, route, request and (proxy
//! mode) the upstream's answer need no decoding. With a batch log (`--data-dir`) the store keeps only an index of
//! each event (its `seq`, protocol, resend count, its batch and its place in the batch's record) and reads the
//! events back from the log when they are read, so memory does not grow with the events' size.
//!
//! Invariant: one mutex guards the events, the dedupe keys, the counters and the log, so the log order is the `seq`
//! order, a batch is applied whole or not at all, and a duplicate is only ever answered once the original is durable.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::compact_event::{BatchBuilder, CompactEvent, EventReader};
use crate::dedupe_key::DedupeKey;
use crate::error::Error;
use crate::event::{CapturedEvent, IncomingEvent, Protocol};
use crate::fault_kinds::FaultKind;
use crate::log::{BatchLog, BatchRecord, BatchRecordRef, Location};
use crate::query::{EventsPage, EventsQuery, RequestRecord, RequestsPage, RequestsQuery};
use crate::rate_history::{History, RateHistory};
use crate::request_log::RequestLog;
use crate::stats::Stats;

/// A map from dedupe keys. Every event of every batch is looked up and inserted, so the keys are hashed with
/// foldhash, faster on short keys than the standard map's SipHash; foldhash seeds each map at random.
type KeyMap<K> = HashMap<K, u64, foldhash::fast::RandomState>;

/// The most events one `GET /_fake/events` page returns.
pub(crate) const MAX_PAGE: usize = 10_000;

/// The most duplicates of one request whose original's `seq` its request-log record lists.
pub(crate) const MAX_DUPLICATE_SEQS: usize = 100;

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
    /// The captured events still kept, oldest first (at most `max_events_kept`), in their compact form.
    events: VecDeque<CompactEvent>,
    /// Every stored idempotency key, evicted events' included, so dedupe stays exact, with the `seq` of the event
    /// stored under it.
    keys: KeyMap<DedupeKey>,
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
    /// Events received and errors answered per interval since start (the page's chart).
    history: History,
    /// How many times the store was reset (a wait that looked before a reset starts over).
    resets: u64,
}

/// What storing one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreOutcome {
    /// Events newly stored.
    pub(crate) accepted: u64,
    /// Events whose key was already stored.
    pub(crate) duplicates: u64,
    /// The `seq` of the stored event each duplicate repeated, in request order (the first
    /// [`MAX_DUPLICATE_SEQS`]).
    pub(crate) duplicate_seqs: Vec<u64>,
}

/// A condition a wait evaluates incrementally ([`Store::wait_until`]): it sees each captured event once, in `seq`
/// order, and keeps what it needs of them (counts, a few `seq`s), so that a look costs only the events stored since
/// the last one.
pub(crate) trait Watcher {
    /// What the wait answers.
    type Answer;

    /// Forgets every event seen: the store was reset or evicted events, and every kept event is shown again.
    fn restart(&mut self);

    /// Looks at one event, stored after every event seen so far.
    fn see(&mut self, event: &CapturedEvent);

    /// Whether the condition holds on the events seen and these counters.
    fn holds(&self, stats: &Stats) -> bool;

    /// The wait's answer once it `held` or timed out; `captured` reads the events back for the details.
    fn answer(&self, held: bool, captured: &Captured<'_>) -> Self::Answer;
}

/// Where a wait's last look stopped.
#[derive(Debug, Clone, Copy)]
struct WaitCursor {
    /// [`Inner::resets`] then.
    resets: u64,
    /// The events evicted then.
    evicted: u64,
    /// The `seq` of the first event it has not seen.
    next_seq: u64,
}

/// The captured events and counters as a wait answers from them (the store is locked meanwhile).
pub(crate) struct Captured<'a> {
    inner: &'a Inner,
}

impl Captured<'_> {
    /// The counters.
    pub(crate) fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Every kept event, in arrival order.
    pub(crate) fn all(&self) -> Vec<CapturedEvent> {
        self.inner.decoded()
    }

    /// The kept events with these `seq`s (ascending), in that order; a `seq` no longer kept is skipped.
    pub(crate) fn by_seq(&self, seqs: &[u64]) -> Vec<CapturedEvent> {
        let Some(first_kept) = self.inner.events.front().map(|event| event.seq) else {
            return Vec::new();
        };
        let mut reader = EventReader::new(self.inner.log.as_ref());
        seqs.iter()
            .filter_map(|seq| {
                // Invariant: kept events have consecutive `seq`s.
                let position = usize::try_from(seq.checked_sub(first_kept)?).ok()?;
                self.inner
                    .events
                    .get(position)
                    .map(|event| reader.read(event))
            })
            .collect()
    }
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
            keys: KeyMap::default(),
            max_events_kept,
            stats: Stats::default(),
            request_index: 0,
            route_indexes: HashMap::new(),
            protocol_indexes: HashMap::new(),
            started: Instant::now(),
            log: None,
            requests: RequestLog::new(max_requests_kept),
            history: History::new(),
            resets: 0,
        };
        if let Some(dir) = data_dir {
            let mut batches = 0_u64;
            let log = BatchLog::open(dir, |record, location| {
                batches += 1;
                inner.replay(record, Some(location));
            })?;
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
            keys: KeyMap::default(),
            max_events_kept: None,
            stats: Stats::default(),
            request_index: 0,
            route_indexes: HashMap::new(),
            protocol_indexes: HashMap::new(),
            started: Instant::now(),
            log: None,
            requests: RequestLog::new(0),
            history: History::new(),
            resets: 0,
        };
        crate::log::read(data_dir, |record, _| {
            inner.replay(record, None);
        })?;
        Ok(inner.decoded())
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
        if status >= 400 {
            let since_start = inner.started.elapsed();
            inner.history.count(since_start, 0, 1);
        }
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

    /// Counts an injected fault (a reset, hang or crash is an error answer in the rate history too).
    pub(crate) fn count_fault(&self, kind: FaultKind) {
        let mut inner = self.lock();
        inner.stats.faults.count(kind);
        let answered_no_status = match kind {
            FaultKind::ResetBeforeStore
            | FaultKind::ResetAfterStore
            | FaultKind::Hang
            | FaultKind::CrashBeforeStore
            | FaultKind::CrashAfterStore => true,
            FaultKind::Latency | FaultKind::Status | FaultKind::Reject => false,
        };
        if answered_no_status {
            let since_start = inner.started.elapsed();
            inner.history.count(since_start, 0, 1);
        }
    }

    /// The rate history since start or the last reset.
    pub(crate) fn history(&self) -> RateHistory {
        let mut inner = self.lock();
        let since_start = inner.started.elapsed();
        inner.history.snapshot(since_start)
    }

    /// Counts records refused on their own (never stored).
    pub(crate) fn count_rejected(&self, records: u64) {
        if records > 0 {
            self.lock().stats.events_rejected += records;
        }
    }

    /// Stores a batch: durably first when there is a log, then in memory. Blocks on `fdatasync` with a log.
    /// `upstream` is what the upstream answered the request in proxy mode; each of its events carries it.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the log cannot be written; nothing of the batch is stored then.
    pub(crate) fn store_batch(
        &self,
        request_id: u64,
        protocol: Protocol,
        route: &str,
        upstream: Option<String>,
        events: Vec<IncomingEvent>,
    ) -> Result<StoreOutcome, Error> {
        let mut inner = self.lock();
        // Taken under the lock, so `received_at` never goes backwards along `seq`.
        let received_at = jiff::Timestamp::now().to_string();
        let received = events.len() as u64;
        let Partition {
            new: events,
            new_keys,
            duplicate_seqs,
        } = inner.partition(events);
        let duplicates = duplicate_seqs.len() as u64;
        let location = match inner.log.as_mut() {
            None => None,
            Some(log) => Some(log.append(&BatchRecordRef {
                request_id,
                protocol,
                route,
                received_at: &received_at,
                upstream: upstream.as_deref(),
                events: &events,
                duplicates,
            })?),
        };
        let mut outcome = inner.apply(
            BatchRecord {
                request_id,
                protocol,
                route: route.to_owned(),
                received_at,
                upstream,
                events,
                duplicates,
            },
            new_keys,
            location,
        );
        inner.count_resent(&duplicate_seqs);
        let since_start = inner.started.elapsed();
        inner.history.count(since_start, received, 0);
        outcome.duplicate_seqs = duplicate_seqs;
        outcome.duplicate_seqs.truncate(MAX_DUPLICATE_SEQS);
        drop(inner);
        self.notify_changed();
        Ok(outcome)
    }

    /// Wakes every wait: the captured events changed.
    fn notify_changed(&self) {
        self.changed.notify_all();
        // An async wait subscribes before its first look (under the lock, after this change was applied), so with
        // no subscriber there is nobody to wake.
        if self.version.receiver_count() > 0 {
            self.version.send_modify(|version| *version += 1);
        }
    }

    /// Evaluates `watcher` on the captured events and counters now, and again after every change, until it holds
    /// or `timeout` passes; returns its answer. Each look shows the watcher only the events stored since its last
    /// look (all the kept events again only after a reset or an eviction), so a wait costs what arrives while it
    /// waits, not what was captured before. Blocks the calling thread.
    pub(crate) fn wait_until_blocking<W: Watcher>(
        &self,
        timeout: Duration,
        mut watcher: W,
    ) -> W::Answer {
        let deadline = Instant::now() + timeout;
        let mut cursor = None;
        let mut inner = self.lock();
        loop {
            inner.catch_up(&mut cursor, &mut watcher);
            let held = watcher.holds(&inner.stats);
            let now = Instant::now();
            if held || now >= deadline {
                return watcher.answer(held, &Captured { inner: &inner });
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// As [`Store::wait_until_blocking`], for async code.
    pub(crate) async fn wait_until<W: Watcher>(
        &self,
        timeout: Duration,
        mut watcher: W,
    ) -> W::Answer {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first look, so that no change between the look and the wait is missed.
        let mut changes = self.version.subscribe();
        let mut cursor = None;
        loop {
            {
                let inner = self.lock();
                inner.catch_up(&mut cursor, &mut watcher);
                if watcher.holds(&inner.stats) {
                    return watcher.answer(true, &Captured { inner: &inner });
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the store is gone: answer with a last look.
                Ok(Err(_)) | Err(_) => {
                    let inner = self.lock();
                    inner.catch_up(&mut cursor, &mut watcher);
                    let held = watcher.holds(&inner.stats);
                    return watcher.answer(held, &Captured { inner: &inner });
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
        self.lock().decoded()
    }

    /// One page of captured events.
    pub(crate) fn page(&self, query: &EventsQuery) -> EventsPage {
        let inner = self.lock();
        let filter = query.filter();
        // The protocol, route, request and upstream answer are in the compact form; the other conditions need the
        // event's fields.
        let origin_matches = |event: &&CompactEvent| {
            filter
                .protocol
                .is_none_or(|protocol| event.protocol == protocol)
                && filter
                    .route
                    .as_deref()
                    .is_none_or(|route| event.batch.route == route)
                && filter
                    .request_id
                    .is_none_or(|request_id| event.batch.request_id == request_id)
                && filter
                    .upstream
                    .as_deref()
                    .is_none_or(|upstream| event.batch.upstream.as_deref() == Some(upstream))
        };
        let needs_fields =
            filter.name.is_some() || filter.property.is_some() || filter.search.is_some();
        let offset = query.offset.unwrap_or(0);
        let limit = query.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let mut total = 0;
        let mut events = Vec::new();
        let mut reader = EventReader::new(inner.log.as_ref());
        for event in inner.events.iter().filter(origin_matches) {
            let on_page = total >= offset && events.len() < limit;
            if needs_fields {
                let decoded = reader.read(event);
                if !filter.matches(&decoded) {
                    continue;
                }
                if on_page {
                    events.push(decoded);
                }
            } else if on_page {
                events.push(reader.read(event));
            }
            total += 1;
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
        inner.keys = KeyMap::default();
        inner.history = History::new();
        inner.stats = Stats::default();
        inner.request_index = 0;
        inner.requests = RequestLog::new(inner.requests.max_kept());
        inner.route_indexes = HashMap::new();
        inner.protocol_indexes = HashMap::new();
        inner.started = Instant::now();
        inner.resets += 1;
        drop(inner);
        self.notify_changed();
        Ok(())
    }
}

impl Inner {
    /// Shows `watcher` the events stored since `cursor` (its last look), and moves the cursor past them. After a
    /// reset or an eviction since its last look (or at its first look) the watcher starts over on every kept event.
    fn catch_up(&self, cursor: &mut Option<WaitCursor>, watcher: &mut impl Watcher) {
        let first_kept = self.events.front().map_or(0, |event| event.seq);
        let from = match cursor {
            Some(cursor)
                if cursor.resets == self.resets && cursor.evicted == self.stats.events_evicted =>
            {
                // Invariant: kept events have consecutive `seq`s, so the position is the difference.
                usize::try_from(cursor.next_seq.saturating_sub(first_kept)).unwrap_or(usize::MAX)
            }
            _ => {
                watcher.restart();
                0
            }
        };
        let mut reader = EventReader::new(self.log.as_ref());
        for event in self.events.iter().skip(from) {
            watcher.see(&reader.read(event));
        }
        *cursor = Some(WaitCursor {
            resets: self.resets,
            evicted: self.stats.events_evicted,
            next_seq: self.stats.events_unique + 1,
        });
    }

    /// Every kept event, decoded (read back from the log if it is there), in arrival order.
    fn decoded(&self) -> Vec<CapturedEvent> {
        let mut reader = EventReader::new(self.log.as_ref());
        self.events.iter().map(|event| reader.read(event)).collect()
    }

    /// Splits a batch into the events whose key is new (in request order, with their keys) and, for each of the
    /// others (keys already stored, or seen earlier in the same batch), the `seq` of the event it repeats (for one
    /// seen earlier in the batch, the `seq` that event is about to get). Changes nothing: the batch may still fail
    /// to persist.
    fn partition(&self, events: Vec<IncomingEvent>) -> Partition {
        let keys: Vec<Option<DedupeKey>> = events.iter().map(dedupe_key_of).collect();
        let next_seq = self.stats.events_unique + 1;
        let mut seen_in_batch: KeyMap<&DedupeKey> =
            KeyMap::with_capacity_and_hasher(keys.len(), Default::default());
        let mut duplicate_seqs = Vec::new();
        let mut new_count = 0;
        let is_new: Vec<bool> = keys
            .iter()
            .map(|key| {
                if let Some(key) = key {
                    let repeated = self
                        .keys
                        .get(key)
                        .or_else(|| seen_in_batch.get(key))
                        .copied();
                    if let Some(seq) = repeated {
                        duplicate_seqs.push(seq);
                        return false;
                    }
                    seen_in_batch.insert(key, next_seq + new_count);
                }
                new_count += 1;
                true
            })
            .collect();
        drop(seen_in_batch);
        if duplicate_seqs.is_empty() {
            return Partition {
                new: events,
                new_keys: keys,
                duplicate_seqs,
            };
        }
        let (new, new_keys) = events
            .into_iter()
            .zip(keys)
            .zip(is_new)
            .filter_map(|(event_and_key, new)| new.then_some(event_and_key))
            .unzip();
        Partition {
            new,
            new_keys,
            duplicate_seqs,
        }
    }

    /// Counts one resend on each still-kept event whose `seq` is listed.
    fn count_resent(&mut self, seqs: &[u64]) {
        let Some(first_kept) = self.events.front().map(|event| event.seq) else {
            return;
        };
        for seq in seqs {
            // Invariant: kept events have consecutive `seq`s (evictions take the oldest), so the position is the
            // difference.
            if let Some(event) = seq
                .checked_sub(first_kept)
                .and_then(|position| self.events.get_mut(position as usize))
            {
                event.resent = event.resent.saturating_add(1);
            }
        }
    }

    /// Applies a batch read back from the batch log (its keys computed here; a live batch brings them from
    /// [`Inner::partition`]).
    fn replay(&mut self, record: BatchRecord, location: Option<Location>) {
        let keys = record.events.iter().map(dedupe_key_of).collect();
        self.apply(record, keys, location);
    }

    /// Applies a batch in memory: its `events` (each still checked against the stored keys, so that a log written
    /// with duplicates inline replays the same) plus its `duplicates` counted without their events. `keys` are the
    /// events' dedupe keys, in the same order ([`dedupe_key_of`] each event). With the `location` of its record in
    /// the batch log, the events are kept there and only indexed in memory.
    fn apply(
        &mut self,
        record: BatchRecord,
        keys: Vec<Option<DedupeKey>>,
        location: Option<Location>,
    ) -> StoreOutcome {
        let BatchRecord {
            request_id,
            protocol,
            route,
            received_at,
            upstream,
            events,
            duplicates,
        } = record;
        self.stats.events_received += duplicates;
        let mut outcome = StoreOutcome {
            accepted: 0,
            duplicates,
            duplicate_seqs: Vec::new(),
        };
        let mut batch = BatchBuilder::new(
            protocol,
            request_id,
            route,
            received_at,
            upstream,
            location,
            events.len(),
        );
        // Invariant: `keys` has one entry per event, in order (`zip` below would drop the events past a short one).
        for (index, (event, key)) in events.iter().zip(keys).enumerate() {
            self.stats.events_received += 1;
            let seq = self.stats.events_unique + outcome.accepted + 1;
            if let Some(key) = key {
                match self.keys.entry(key) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        outcome.duplicates += 1;
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(seq);
                    }
                }
            }
            outcome.accepted += 1;
            if !event.has_idempotency_key {
                self.stats.events_without_key += 1;
            }
            batch.push(seq, index, event);
        }
        for compact in batch.finish() {
            if let Some(max) = self.max_events_kept
                && self.events.len() >= max
            {
                self.events.pop_front();
                self.stats.events_evicted += 1;
            }
            self.events.push_back(compact);
        }
        self.stats.events_unique += outcome.accepted;
        self.stats.duplicates += outcome.duplicates;
        self.stats.batches_stored += 1;
        outcome
    }
}

/// A batch split by [`Inner::partition`].
struct Partition {
    /// The events whose key is new, in request order.
    new: Vec<IncomingEvent>,
    /// Their dedupe keys, in the same order.
    new_keys: Vec<Option<DedupeKey>>,
    /// For each other event, the `seq` of the event it repeats.
    duplicate_seqs: Vec<u64>,
}

/// The key an event is deduped on, computed once per event: `None` when the client sent none (a synthesized key
/// never matches another).
fn dedupe_key_of(event: &IncomingEvent) -> Option<DedupeKey> {
    event
        .has_idempotency_key
        .then(|| DedupeKey::new(&event.dedupe_key))
}

fn route_stats<'a>(stats: &'a mut Stats, route: &str) -> &'a mut crate::stats::RouteStats {
    stats.routes.entry(route.to_owned()).or_default()
}
