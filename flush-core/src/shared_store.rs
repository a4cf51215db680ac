//! The store as the spooler and the sender share it: one mutex, locked for a single store call, and the helper that
//! publishes the store's counters into the shared stats.
//!
//! It sits below the reporter, the spooler and the sender (all three use it), so that none of them imports another
//! for it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::stats::Counters;
use crate::store::{Store, StoreCounts};

/// The store, shared by the spooler and the sender; locked for one store call at a time.
pub(crate) type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// Locks the store, ignoring poisoning: a panic in the other worker leaves the store usable (every store call is
/// one step of a crash-safe format), and the worker restarts.
pub(crate) fn lock(store: &SharedStore) -> MutexGuard<'_, Box<dyn Store>> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Publishes the store's counters into the shared stats. Call with the store lock and the accounting lock held,
/// right after a store call, so that `in_store` and the counters that moved with it agree.
pub(crate) fn publish(counters: &Counters, counts: StoreCounts) {
    for (counter, value) in [
        (&counters.in_store, counts.pending),
        (&counters.dropped_spool_size, counts.dropped_for_size),
        (&counters.dropped_spool_age, counts.dropped_for_age),
        (&counters.dropped_corrupt, counts.corrupt_records),
        (&counters.settled_elsewhere, counts.settled_elsewhere),
        (&counters.recovered, counts.recovered),
        (&counters.foreign_files, counts.foreign_files),
    ] {
        counter.store(value, Ordering::Relaxed);
    }
}
