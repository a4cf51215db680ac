//! The spool's floor: stamp and serialize each event, frame it (length and CRC-32C), append it through a 64 KiB
//! buffer to one file, and at the end of each batch either nothing, a `write` of the buffer (so the batch has reached
//! the kernel, as our spool guarantees for every append), or a `write` and an `fdatasync`.
//!
//! This is what any append-only log must do at the least; it has no segments, no recovery, no acknowledgements and
//! no cross-process lock. The frame is the spool's: a little-endian `u32` payload length, a little-endian `u32`
//! CRC-32C (Castagnoli) of the payload, then the payload.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::sample::SampleEvent;

/// The size of the write buffer.
pub const BUFFER_BYTES: usize = 64 << 10;

/// What the floor does at the end of each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    /// Nothing: the batch may still sit in the 64 KiB buffer in user space (a process crash loses it).
    Buffered,
    /// Flush the buffer to the kernel (one `write`): a process crash loses nothing, an OS crash may.
    Write,
    /// Flush the buffer and `fdatasync`: durable.
    Fsync,
}

/// One append-only file of framed records.
#[derive(Debug)]
pub struct FramedFile {
    writer: BufWriter<File>,
    scratch: Vec<u8>,
    batch_end: BatchEnd,
}

impl FramedFile {
    /// Creates (truncates) the file at `path`; every [`append_batch`](Self::append_batch) ends as `batch_end`
    /// says.
    ///
    /// # Errors
    /// Any I/O error creating the file.
    pub fn create(path: &Path, batch_end: BatchEnd) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(Self {
            writer: BufWriter::with_capacity(BUFFER_BYTES, file),
            scratch: Vec::with_capacity(512),
            batch_end,
        })
    }

    /// Stamps, serializes, frames and appends `events`; returns the bytes appended (frames included).
    ///
    /// # Errors
    /// Any I/O error writing or syncing.
    pub fn append_batch(&mut self, events: &[SampleEvent]) -> io::Result<u64> {
        let mut bytes = 0_u64;
        for event in events {
            self.scratch.clear();
            event.stamp_and_serialize_into(&mut self.scratch);
            bytes += self.append_frame_of_scratch()?;
        }
        self.end_batch()?;
        Ok(bytes)
    }

    /// Frames and appends payloads that are already serialized (to separate the cost of serialization).
    ///
    /// # Errors
    /// Any I/O error writing or syncing.
    pub fn append_serialized(&mut self, payloads: &[Vec<u8>]) -> io::Result<u64> {
        let mut bytes = 0_u64;
        for payload in payloads {
            bytes += write_frame(&mut self.writer, payload)?;
        }
        self.end_batch()?;
        Ok(bytes)
    }

    fn end_batch(&mut self) -> io::Result<()> {
        match self.batch_end {
            BatchEnd::Buffered => Ok(()),
            BatchEnd::Write => self.writer.flush(),
            BatchEnd::Fsync => self.sync(),
        }
    }

    /// Flushes the buffer and `fdatasync`s the file.
    ///
    /// # Errors
    /// Any I/O error.
    pub fn sync(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        self.writer.get_ref().sync_data()
    }

    fn append_frame_of_scratch(&mut self) -> io::Result<u64> {
        write_frame(&mut self.writer, &self.scratch)
    }
}

/// Reads the file at `path` from the start through a 64 KiB buffer, checks every frame's CRC-32C and hands the
/// payloads to `on_record`; stops at the end of the file or at the first frame that is torn or does not check.
/// Returns the number of records handed out. This is the floor of reading a spool back (no acknowledgements).
///
/// # Errors
/// Any I/O error opening or reading the file.
pub fn read_frames(path: &Path, mut on_record: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, File::open(path)?);
    let mut header = [0_u8; 8];
    let mut payload = Vec::with_capacity(512);
    let mut records = 0_u64;
    loop {
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(records),
            Err(error) => return Err(error),
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
        let length = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        payload.resize(length, 0);
        match reader.read_exact(&mut payload) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(records),
            Err(error) => return Err(error),
        }
        if crc32c::crc32c(&payload) != crc {
            return Ok(records);
        }
        on_record(&payload);
        records += 1;
    }
}

/// Writes one frame: length, CRC-32C, payload.
fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<u64> {
    let length = u32::try_from(payload.len()).map_err(io::Error::other)?;
    writer.write_all(&length.to_le_bytes())?;
    writer.write_all(&crc32c::crc32c(payload).to_le_bytes())?;
    writer.write_all(payload)?;
    Ok(8 + u64::from(length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::sample_event;

    #[test]
    fn the_checksum_is_crc32c() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn frames_hold_their_length_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut file = FramedFile::create(&path, BatchEnd::Fsync).unwrap();
        let written = file.append_batch(&vec![sample_event(); 3]).unwrap();
        drop(file);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, written);
        let length = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&bytes[8..8 + length]));
        let mut payloads = Vec::new();
        assert_eq!(
            read_frames(&path, |payload| payloads.push(payload.to_vec())).unwrap(),
            3
        );
        assert!(
            payloads
                .iter()
                .all(|payload| serde_json::from_slice::<serde_json::Value>(payload).is_ok())
        );
    }
}
