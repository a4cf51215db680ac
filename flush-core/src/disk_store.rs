//! The disk spool behind the [`Store`] seam.
//!
//! The spool does the real work (framing, checksums, recovery, segments, the cross-process delivery lock); this
//! adapter only holds the spool and, while this process is the one delivering, its reader.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::spool::{PendingAck, Spool, SpoolConfig, SpoolError, SpoolReader};
use crate::store::{Appended, Store, StoreCounts, StoreError, StorePosition, StoredBatch};

/// How often to try for the delivery lock while another process holds it (each try rescans the directory).
const LOCK_RETRY: Duration = Duration::from_secs(1);

/// The spool and, once this process holds the delivery lock, its reader.
pub(crate) struct DiskStore {
    spool: Spool,
    reader: Option<SpoolReader>,
    /// No new try for the delivery lock before this.
    next_lock_try: Option<Instant>,
    dir: PathBuf,
    max_record_bytes: usize,
}

impl DiskStore {
    pub(crate) fn open(config: SpoolConfig) -> Result<Self, SpoolError> {
        let dir = config.dir.clone();
        let max_record_bytes = usize::try_from(config.max_record_bytes).unwrap_or(usize::MAX);
        Ok(Self {
            spool: Spool::open(config)?,
            reader: None,
            next_lock_try: None,
            dir,
            max_record_bytes,
        })
    }
}

fn store_error(error: SpoolError) -> StoreError {
    StoreError(error)
}

impl Store for DiskStore {
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Appended, StoreError> {
        self.spool.append(&records).map_err(store_error)?;
        Ok(Appended {
            stored: records.len(),
            refused: 0,
        })
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.spool.sync().map_err(store_error)
    }

    fn sync_if_due(&mut self) -> Result<(), StoreError> {
        self.spool.sync_if_due().map(|_| ()).map_err(store_error)
    }

    fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<StoredBatch>, StoreError> {
        let now = Instant::now();
        if self.reader.is_none() && self.next_lock_try.is_none_or(|next| now >= next) {
            // `None`: another process is delivering this spool; ask again later.
            self.reader = self.spool.try_deliver().map_err(store_error)?;
            self.next_lock_try = Some(now + LOCK_RETRY);
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let batch = reader
            .next_batch(max_records, max_bytes)
            .map_err(store_error)?;
        Ok(batch.map(|batch| StoredBatch {
            records: batch.records,
            position: StorePosition::Spool(batch.position),
        }))
    }

    fn ack(&mut self, position: &StorePosition) -> Result<(), StoreError> {
        let (Some(reader), StorePosition::Spool(position)) = (self.reader.as_mut(), position)
        else {
            // A position this process's reader did not hand out: nothing is acknowledged.
            return Err(StoreError(SpoolError::ForeignPosition));
        };
        reader.ack(position).map_err(store_error)
    }

    fn begin_ack(&mut self, position: &StorePosition) -> Result<Option<PendingAck>, StoreError> {
        let (Some(reader), StorePosition::Spool(position)) = (self.reader.as_mut(), position)
        else {
            return Err(StoreError(SpoolError::ForeignPosition));
        };
        reader.begin_ack(position).map_err(store_error)
    }

    fn finish_ack(
        &mut self,
        position: &StorePosition,
        pending: PendingAck,
        result: std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let (Some(reader), StorePosition::Spool(position)) = (self.reader.as_mut(), position)
        else {
            return Err(StoreError(SpoolError::ForeignPosition));
        };
        reader
            .finish_ack(position, pending, result)
            .map_err(store_error)
    }

    fn rewind(&mut self) -> Result<(), StoreError> {
        if let Some(reader) = self.reader.as_mut() {
            reader.rewind();
        }
        Ok(())
    }

    fn counts(&mut self) -> StoreCounts {
        let stats = self.spool.stats();
        StoreCounts {
            pending: stats.pending_events,
            dropped_for_size: stats.dropped_for_size,
            dropped_for_age: stats.dropped_for_age,
            corrupt_records: stats.corrupt_records,
            settled_elsewhere: stats.settled_elsewhere,
            recovered: stats.recovered_events,
            foreign_files: stats.foreign_files,
        }
    }

    fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    fn dead_letter_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }
}
