//! The memory-only store: a bounded FIFO of serialized events behind the same [`Store`] seam as the spool.
//! Nothing survives the process; when it is full, new events are refused and counted (`dropped.store_full`).

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::config::MemoryLimits;
use crate::spool::SpoolError;
use crate::store::{Appended, Store, StoreCounts, StoreError, StorePosition, StoredBatch};

/// A bounded in-memory FIFO with a read cursor.
#[derive(Debug)]
pub(crate) struct MemoryStore {
    limits: MemoryLimits,
    records: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The absolute sequence number of `records[0]`.
    front: u64,
    /// The absolute sequence number of the next record to read.
    read: u64,
}

impl MemoryStore {
    pub(crate) fn new(limits: MemoryLimits) -> Self {
        Self {
            limits,
            records: VecDeque::new(),
            bytes: 0,
            front: 0,
            read: 0,
        }
    }

    fn unread_offset(&self) -> usize {
        usize::try_from(self.read - self.front).unwrap_or(usize::MAX)
    }
}

impl Store for MemoryStore {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Appended, StoreError> {
        let mut appended = Appended::default();
        for record in records {
            let fits = self.records.len() < self.limits.max_events.get()
                && self.bytes + record.len() <= self.limits.max_bytes.get();
            if fits {
                self.bytes += record.len();
                self.records.push_back(record);
                appended.stored += 1;
            } else {
                appended.refused += 1;
            }
        }
        Ok(appended)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync_if_due(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<StoredBatch>, StoreError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for record in self.records.iter().skip(self.unread_offset()) {
            if batch.len() >= max_records || (!batch.is_empty() && bytes + record.len() > max_bytes)
            {
                break;
            }
            bytes += record.len();
            batch.push(record.clone());
        }
        if batch.is_empty() {
            return Ok(None);
        }
        self.read += batch.len() as u64;
        Ok(Some(StoredBatch {
            records: batch,
            position: StorePosition::Memory(self.read),
        }))
    }

    fn ack(&mut self, position: &StorePosition) -> Result<(), StoreError> {
        let StorePosition::Memory(through) = *position else {
            return Err(StoreError(SpoolError::ForeignPosition));
        };
        while self.front < through {
            let Some(record) = self.records.pop_front() else {
                break;
            };
            self.bytes -= record.len();
            self.front += 1;
        }
        self.read = self.read.max(self.front);
        Ok(())
    }

    fn rewind(&mut self) -> Result<(), StoreError> {
        self.read = self.front;
        Ok(())
    }

    fn counts(&mut self) -> StoreCounts {
        StoreCounts {
            pending: self.records.len() as u64,
            ..StoreCounts::default()
        }
    }

    fn max_record_bytes(&self) -> usize {
        self.limits.max_bytes.get()
    }

    fn dead_letter_dir(&self) -> Option<PathBuf> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    fn store(max_events: usize) -> MemoryStore {
        MemoryStore::new(MemoryLimits {
            max_events: NonZeroUsize::new(max_events).unwrap(),
            max_bytes: NonZeroUsize::new(1 << 20).unwrap(),
        })
    }

    fn records(range: std::ops::Range<u8>) -> Vec<Vec<u8>> {
        range.map(|n| vec![n]).collect()
    }

    #[test]
    fn batches_come_out_in_order_and_ack_removes_them() {
        let mut store = store(10);
        store.append(records(0..5)).unwrap();
        let first = store.next_batch(2, 1 << 20).unwrap().unwrap();
        assert_eq!(first.records, records(0..2));
        let second = store.next_batch(10, 1 << 20).unwrap().unwrap();
        assert_eq!(second.records, records(2..5));
        store.ack(&first.position).unwrap();
        assert_eq!(store.counts().pending, 3);
        assert!(store.next_batch(10, 1 << 20).unwrap().is_none());
        store.ack(&second.position).unwrap();
        assert_eq!(store.counts().pending, 0);
    }

    #[test]
    fn rewind_rereads_what_was_not_acknowledged() {
        let mut store = store(10);
        store.append(records(0..4)).unwrap();
        let first = store.next_batch(2, 1 << 20).unwrap().unwrap();
        store.ack(&first.position).unwrap();
        store.next_batch(2, 1 << 20).unwrap().unwrap();
        store.rewind().unwrap();
        assert_eq!(
            store.next_batch(10, 1 << 20).unwrap().unwrap().records,
            records(2..4)
        );
    }

    #[test]
    fn a_full_store_refuses_new_records() {
        let mut store = store(3);
        let appended = store.append(records(0..5)).unwrap();
        assert_eq!(
            appended,
            Appended {
                stored: 3,
                refused: 2
            }
        );
    }

    #[test]
    fn the_byte_bound_splits_batches_but_never_below_one_record() {
        let mut store = store(10);
        store.append(vec![vec![0; 100], vec![1; 100]]).unwrap();
        assert_eq!(store.next_batch(10, 50).unwrap().unwrap().records.len(), 1);
    }
}
