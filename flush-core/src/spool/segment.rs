//! Scanning a segment file: walking its frames from a known frontier, counting valid records and damage, and
//! resynchronising after mid-file corruption in sealed segments.

use std::fs::File;
use std::io;

use super::format::{self, FRAME_HEADER_LEN, Parsed, ResyncRule};
use super::io::{FileSystem, read_at_most};
/// At most this much of a damaged segment is searched for the next valid frame; beyond it the rest is cut as a tail.
const MAX_RESYNC_WINDOW: u64 = 64 << 20;

/// How far a segment has been scanned: everything before `offset` is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frontier {
    /// The byte offset of the first unscanned byte (a frame boundary).
    pub(crate) offset: u64,
    /// The index the next frame should have.
    pub(crate) next_index: u32,
    /// The time delta of the last valid frame (times never decrease within a segment).
    pub(crate) last_delta_ms: u32,
    /// How many valid frames lie before `offset`.
    pub(crate) valid: u64,
}

/// What one scan found beyond the frontier it started from.
#[derive(Default, Debug)]
pub(crate) struct ScanReport {
    /// Valid frames found.
    pub(crate) new_valid: u64,
    /// Records known lost in damaged regions (from the gap in record indexes around each region).
    pub(crate) corrupt_records: u64,
    /// Bytes in damaged regions, the torn tail included.
    pub(crate) corrupt_bytes: u64,
    /// Damaged regions `(start, end)` that the reader must jump over.
    pub(crate) skips: Vec<(u64, u64)>,
    /// Where the garbage at the end of a sealed segment starts, if there is any.
    pub(crate) torn_at: Option<u64>,
    /// Whether the scan reached the end of a sealed segment (nothing more can ever be found in it).
    pub(crate) complete: bool,
}

/// Scans `file` (of length `file_len`) from `frontier`, advancing it over every valid frame.
///
/// In a segment that is not sealed (its writer is alive and may still be writing), the first incomplete or invalid
/// frame ends the scan: it is "not yet written". In a sealed segment, an invalid frame starts a damaged region that
/// ends at the next frame [`format::resync`] accepts, and data that cannot be resynchronised is the torn tail.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan(
    fs: &dyn FileSystem,
    file: &File,
    file_len: u64,
    frontier: &mut Frontier,
    sealed: bool,
    max_record: u32,
    chunk_bytes: usize,
    buffer: &mut Vec<u8>,
) -> io::Result<ScanReport> {
    let mut report = ScanReport::default();
    let mut want = chunk_bytes;
    // Invariant: every iteration either advances `frontier.offset` or returns, so a corrupt file cannot loop.
    loop {
        if frontier.offset >= file_len {
            report.complete = sealed;
            return Ok(report);
        }
        let remaining = file_len - frontier.offset;
        let chunk = usize::try_from(remaining).unwrap_or(usize::MAX).min(want);
        buffer.resize(chunk, 0);
        let got = read_at_most(fs, file, buffer, frontier.offset)?;
        let bytes = &buffer[..got];
        let mut position = 0;
        let outcome = loop {
            match format::parse_frame(&bytes[position..], max_record) {
                Parsed::Frame(frame) => {
                    if frame.index > frontier.next_index {
                        // A gap in the indexes without damaged bytes: records were removed from the middle.
                        report.corrupt_records += u64::from(frame.index - frontier.next_index);
                    }
                    position += frame.encoded_len();
                    frontier.offset += frame.encoded_len() as u64;
                    frontier.next_index = frame.index.saturating_add(1);
                    frontier.last_delta_ms = frame.delta_ms.max(frontier.last_delta_ms);
                    frontier.valid += 1;
                    report.new_valid += 1;
                }
                Parsed::Incomplete { needed } => break Some(needed),
                Parsed::Invalid => break None,
            }
        };
        match outcome {
            Some(needed) => {
                if frontier.offset + needed as u64 <= file_len && got == chunk {
                    // The chunk ended inside a frame that the file holds whole: read again from the frame.
                    want = chunk_bytes.max(needed);
                    continue;
                }
                // The file ends inside this frame, or exactly after the last one (nothing to cut then).
                if sealed {
                    if frontier.offset < file_len {
                        cut_tail(&mut report, frontier.offset, file_len);
                    }
                    report.complete = true;
                }
                return Ok(report);
            }
            None => {
                if !sealed {
                    return Ok(report);
                }
                let window = (file_len - frontier.offset).min(MAX_RESYNC_WINDOW);
                buffer.resize(usize::try_from(window).unwrap_or(usize::MAX), 0);
                let got = read_at_most(fs, file, buffer, frontier.offset)?;
                let rule = ResyncRule {
                    min_index: frontier.next_index,
                    max_index: frontier.next_index.saturating_add(
                        u32::try_from(file_len / FRAME_HEADER_LEN as u64).unwrap_or(u32::MAX),
                    ),
                    min_delta_ms: frontier.last_delta_ms,
                    max_record,
                };
                match format::resync(&buffer[..got], 0, rule) {
                    Some(found) => {
                        let Parsed::Frame(frame) =
                            format::parse_frame(&buffer[found..got], max_record)
                        else {
                            // Unreachable: resync only returns offsets holding a valid frame.
                            cut_tail(&mut report, frontier.offset, file_len);
                            report.complete = true;
                            return Ok(report);
                        };
                        report.corrupt_records += u64::from(frame.index - frontier.next_index);
                        report.corrupt_bytes += found as u64;
                        report
                            .skips
                            .push((frontier.offset, frontier.offset + found as u64));
                        tracing::debug!(
                            offset = frontier.offset,
                            bytes = found,
                            lost_records = frame.index - frontier.next_index,
                            "spool: skipped a damaged region of a segment"
                        );
                        frontier.offset += found as u64;
                        frontier.next_index = frame.index;
                        want = chunk_bytes;
                    }
                    None => {
                        cut_tail(&mut report, frontier.offset, file_len);
                        report.complete = true;
                        return Ok(report);
                    }
                }
            }
        }
    }
}

fn cut_tail(report: &mut ScanReport, from: u64, file_len: u64) {
    tracing::debug!(
        offset = from,
        bytes = file_len - from,
        "spool: found a torn tail in a sealed segment"
    );
    report.corrupt_bytes += file_len - from;
    report.torn_at = Some(from);
}
