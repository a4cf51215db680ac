//! Byte layout of segment headers, frames and the acknowledgement file; the specification is the module doc of
//! [`crate::spool`]. Everything here is pure (no I/O) so it is cheap to test exhaustively.

use std::fmt;

/// The first 8 bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"FLUSHSEG";
/// The first 8 bytes of the acknowledgement file.
pub(crate) const ACKS_MAGIC: [u8; 8] = *b"FLUSHACK";
/// The format version written in segment headers.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// The format version of the acknowledgement file written now: slots rewritten in place. Versions 1 (without known
/// extents) and 2 (one block rewritten as a whole) are still read.
pub(crate) const ACKS_VERSION: u16 = 3;
/// The version 2 acknowledgement file: a count, entries, one CRC.
const ACKS_VERSION_BLOCK: u16 = 2;
/// The length of a version 3 acknowledgement file's header (magic, version, reserved, slot length, reserved, CRC).
pub(crate) const ACKS_SLOTS_HEADER_LEN: u64 = 32;
/// The length of one slot of a version 3 acknowledgement file.
pub(crate) const ACK_SLOT_LEN: usize = 128;
/// The length of one slot pair (two alternating slots per segment) of a version 3 acknowledgement file.
pub(crate) const ACK_PAIR_LEN: u64 = 2 * ACK_SLOT_LEN as u64;
/// Slot kinds of a version 3 acknowledgement file.
const SLOT_ENTRY: u32 = 1;
const SLOT_FREE: u32 = 2;
/// The length of a segment header; the first frame starts at this offset.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 48;
/// The length of a frame header (length, CRC, index, time delta).
pub(crate) const FRAME_HEADER_LEN: usize = 16;
/// The length of one entry of a version 1 acknowledgement file.
const ACK_ENTRY_LEN_V1: usize = 48;
/// The length of one entry of a version 2 acknowledgement file (a version 1 entry, then the known extent).
const ACK_ENTRY_LEN: usize = 72;
/// The length of the acknowledgement file's header (magic, version, reserved, count).
const ACKS_HEADER_LEN: usize = 16;

/// The identity of one writer (one open [`Spool`](super::Spool)): a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct WriterId(pub(crate) [u8; 16]);

impl WriterId {
    /// A fresh, unique writer id.
    pub(crate) fn generate() -> Self {
        Self(*uuid::Uuid::now_v7().as_bytes())
    }

    /// The next id in key order (ids order as their bytes do), or `None` after the last.
    pub(crate) fn successor(self) -> Option<Self> {
        u128::from_be_bytes(self.0)
            .checked_add(1)
            .map(|next| Self(next.to_be_bytes()))
    }

    /// Parses the 32 lowercase hexadecimal digits used in file names.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != 32
            || !text
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let mut bytes = [0_u8; 16];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for WriterId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

/// Names one segment: its writer and its sequence number within that writer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct SegmentKey {
    /// The writer that owns (appends to) the segment.
    pub(crate) writer: WriterId,
    /// The segment's number within its writer, from 0.
    pub(crate) seq: u64,
}

impl SegmentKey {
    /// `<writer-id>-<seq as 16 hex digits>.seg`.
    pub(crate) fn file_name(&self) -> String {
        format!("{}-{:016x}.seg", self.writer, self.seq)
    }

    /// The inverse of [`SegmentKey::file_name`]; `None` for any other name.
    pub(crate) fn parse_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".seg")?;
        let (writer, seq) = stem.split_once('-')?;
        if seq.len() != 16 {
            return None;
        }
        Some(Self {
            writer: WriterId::parse(writer)?,
            seq: u64::from_str_radix(seq, 16).ok()?,
        })
    }
}

/// `<writer-id>.lock`: the writer's liveness lock file.
pub(crate) fn lock_file_name(writer: WriterId) -> String {
    format!("{writer}.lock")
}

/// The inverse of [`lock_file_name`].
pub(crate) fn parse_lock_file_name(name: &str) -> Option<WriterId> {
    WriterId::parse(name.strip_suffix(".lock")?)
}

/// The decoded segment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SegmentHeader {
    /// The segment this header names (must match the file name).
    pub(crate) key: SegmentKey,
    /// When the segment was created, in milliseconds since the Unix epoch; frame times are relative to it.
    pub(crate) created_ms: u64,
}

impl SegmentHeader {
    /// Encodes the 48-byte header.
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut out = [0_u8; SEGMENT_HEADER_LEN as usize];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // Bytes 10..12 are reserved flags, zero in version 1.
        out[12..28].copy_from_slice(&self.key.writer.0);
        out[28..36].copy_from_slice(&self.key.seq.to_le_bytes());
        out[36..44].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header; `None` if it is short, has another magic or version, or its CRC does not match.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..SEGMENT_HEADER_LEN as usize)?;
        if bytes[0..8] != SEGMENT_MAGIC || read_u16(bytes, 8)? != FORMAT_VERSION {
            return None;
        }
        if crc32c::crc32c(&bytes[0..44]) != read_u32(bytes, 44)? {
            return None;
        }
        let mut writer = [0_u8; 16];
        writer.copy_from_slice(&bytes[12..28]);
        Some(Self {
            key: SegmentKey {
                writer: WriterId(writer),
                seq: read_u64(bytes, 28)?,
            },
            created_ms: read_u64(bytes, 36)?,
        })
    }
}

/// One decoded frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame<'a> {
    /// The record's index within its segment (0, 1, 2, ...).
    pub(crate) index: u32,
    /// Milliseconds between the segment's creation and the append of this record.
    pub(crate) delta_ms: u32,
    /// The record.
    pub(crate) payload: &'a [u8],
}

impl Frame<'_> {
    /// The frame's length on disk, header included.
    pub(crate) fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload.len()
    }
}

/// The result of decoding the bytes at one offset.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A whole frame whose CRC matches.
    Frame(Frame<'a>),
    /// The bytes end before the frame does; `needed` bytes (from the frame start) would complete it.
    Incomplete {
        /// The whole frame's length, or the header length when even the header is incomplete.
        needed: usize,
    },
    /// The length is over the limit or the CRC does not match.
    Invalid,
}

/// Appends one frame to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, index: u32, delta_ms: u32, payload: &[u8]) {
    // Callers check `payload.len() <= max_record_bytes <= u32::MAX` before.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut covered = [0_u8; 12];
    covered[0..4].copy_from_slice(&len.to_le_bytes());
    covered[4..8].copy_from_slice(&index.to_le_bytes());
    covered[8..12].copy_from_slice(&delta_ms.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&covered), payload);
    out.extend_from_slice(&covered[0..4]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&covered[4..12]);
    out.extend_from_slice(payload);
}

/// Decodes the frame at the start of `bytes`.
///
/// Invariant: a length over `max_record` is `Invalid` before anything is allocated or read, so a corrupt length can
/// never make the caller allocate more than `FRAME_HEADER_LEN + max_record` bytes.
pub(crate) fn parse_frame(bytes: &[u8], max_record: u32) -> Parsed<'_> {
    let Some(header) = bytes.get(..FRAME_HEADER_LEN) else {
        return Parsed::Incomplete {
            needed: FRAME_HEADER_LEN,
        };
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len > max_record {
        return Parsed::Invalid;
    }
    let needed = FRAME_HEADER_LEN + len as usize;
    let Some(payload) = bytes.get(FRAME_HEADER_LEN..needed) else {
        return Parsed::Incomplete { needed };
    };
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut covered = [0_u8; 12];
    covered[0..4].copy_from_slice(&header[0..4]);
    covered[4..12].copy_from_slice(&header[8..16]);
    if crc32c::crc32c_append(crc32c::crc32c(&covered), payload) != stored_crc {
        return Parsed::Invalid;
    }
    Parsed::Frame(Frame {
        index: u32::from_le_bytes([header[8], header[9], header[10], header[11]]),
        delta_ms: u32::from_le_bytes([header[12], header[13], header[14], header[15]]),
        payload,
    })
}

/// What a resynchronising search accepts as the next frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResyncRule {
    /// The smallest acceptable record index (the index the damaged frame should have had).
    pub(crate) min_index: u32,
    /// The largest acceptable record index (no segment holds more frames than its bytes allow).
    pub(crate) max_index: u32,
    /// The smallest acceptable time delta (times never decrease within a segment).
    pub(crate) min_delta_ms: u32,
    /// The configured record size limit.
    pub(crate) max_record: u32,
}

/// Finds the first offset after `from` in `bytes` holding a whole valid frame that `rule` accepts.
///
/// The cheap checks (length, index window, time order) run before the CRC, so the search costs a few comparisons per
/// byte and a CRC only for plausible candidates.
pub(crate) fn resync(bytes: &[u8], from: usize, rule: ResyncRule) -> Option<usize> {
    let mut offset = from + 1;
    while offset + FRAME_HEADER_LEN <= bytes.len() {
        let header = &bytes[offset..offset + FRAME_HEADER_LEN];
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let index = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let delta = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let plausible = len <= rule.max_record
            && offset + FRAME_HEADER_LEN + len as usize <= bytes.len()
            && (rule.min_index..=rule.max_index).contains(&index)
            && delta >= rule.min_delta_ms;
        if plausible
            && matches!(
                parse_frame(&bytes[offset..], rule.max_record),
                Parsed::Frame(_)
            )
        {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

/// One entry of the acknowledgement file: everything of `key` before `offset` is delivered or dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct AckEntry {
    /// The segment.
    pub(crate) key: SegmentKey,
    /// The byte offset up to which the segment is settled (always a frame boundary).
    pub(crate) offset: u64,
    /// How many valid frames lie before `offset` (counted by the same deterministic scan every process runs).
    pub(crate) valid: u64,
    /// The index the frame at `offset` should have.
    pub(crate) next_index: u32,
    /// The time delta of the last settled frame.
    pub(crate) last_delta_ms: u32,
    /// How far the segment was known to extend when the file was written: `known_valid` valid frames before
    /// `known_offset`, the next frame's index `known_next_index`. Never behind the settled cursor.
    pub(crate) known_offset: u64,
    /// See `known_offset`.
    pub(crate) known_valid: u64,
    /// See `known_offset`.
    pub(crate) known_next_index: u32,
}

/// Encodes the entry fields of a version 2 entry (72 bytes).
fn encode_ack_entry(out: &mut Vec<u8>, entry: &AckEntry) {
    out.extend_from_slice(&entry.key.writer.0);
    out.extend_from_slice(&entry.key.seq.to_le_bytes());
    out.extend_from_slice(&entry.offset.to_le_bytes());
    out.extend_from_slice(&entry.valid.to_le_bytes());
    out.extend_from_slice(&entry.next_index.to_le_bytes());
    out.extend_from_slice(&entry.last_delta_ms.to_le_bytes());
    out.extend_from_slice(&entry.known_offset.to_le_bytes());
    out.extend_from_slice(&entry.known_valid.to_le_bytes());
    out.extend_from_slice(&entry.known_next_index.to_le_bytes());
    out.extend_from_slice(&0_u32.to_le_bytes());
}

/// Decodes one entry of `entry_len` bytes (version 1 or 2 layout); `None` if its known extent is behind its cursor.
fn decode_ack_entry(entry: &[u8], entry_len: usize) -> Option<AckEntry> {
    let mut writer = [0_u8; 16];
    writer.copy_from_slice(entry.get(0..16)?);
    let offset = read_u64(entry, 24)?;
    let valid = read_u64(entry, 32)?;
    let next_index = read_u32(entry, 40)?;
    let (known_offset, known_valid, known_next_index) = if entry_len == ACK_ENTRY_LEN {
        (
            read_u64(entry, 48)?,
            read_u64(entry, 56)?,
            read_u32(entry, 64)?,
        )
    } else {
        (offset, valid, next_index)
    };
    if known_offset < offset || known_valid < valid || known_next_index < next_index {
        return None;
    }
    Some(AckEntry {
        key: SegmentKey {
            writer: WriterId(writer),
            seq: read_u64(entry, 16)?,
        },
        offset,
        valid,
        next_index,
        last_delta_ms: read_u32(entry, 44)?,
        known_offset,
        known_valid,
        known_next_index,
    })
}

/// Encodes a version 2 acknowledgement file (one block: header, entries, CRC). Only tests write it now (to check
/// that it is still read).
#[cfg(test)]
pub(crate) fn encode_acks_block(entries: &[AckEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ACKS_HEADER_LEN + entries.len() * ACK_ENTRY_LEN + 4);
    out.extend_from_slice(&ACKS_MAGIC);
    out.extend_from_slice(&ACKS_VERSION_BLOCK.to_le_bytes());
    out.extend_from_slice(&0_u16.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for entry in entries {
        encode_ack_entry(&mut out, entry);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The header of a version 3 acknowledgement file.
pub(crate) fn encode_acks_header() -> [u8; ACKS_SLOTS_HEADER_LEN as usize] {
    let mut out = [0_u8; ACKS_SLOTS_HEADER_LEN as usize];
    out[0..8].copy_from_slice(&ACKS_MAGIC);
    out[8..10].copy_from_slice(&ACKS_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(ACK_SLOT_LEN as u32).to_le_bytes());
    let crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

/// One slot of a version 3 acknowledgement file: `entry` (or, with `None`, a free slot, whose segment has no entry)
/// as of `generation`.
pub(crate) fn encode_ack_slot(generation: u64, entry: Option<&AckEntry>) -> [u8; ACK_SLOT_LEN] {
    let mut fields = Vec::with_capacity(ACK_SLOT_LEN);
    fields.extend_from_slice(&generation.to_le_bytes());
    let kind = if entry.is_some() {
        SLOT_ENTRY
    } else {
        SLOT_FREE
    };
    fields.extend_from_slice(&kind.to_le_bytes());
    fields.extend_from_slice(&0_u32.to_le_bytes());
    if let Some(entry) = entry {
        encode_ack_entry(&mut fields, entry);
    }
    let mut out = [0_u8; ACK_SLOT_LEN];
    out[..fields.len()].copy_from_slice(&fields);
    let crc = crc32c::crc32c(&out[..ACK_SLOT_LEN - 4]);
    out[ACK_SLOT_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// What one slot of a version 3 file holds.
enum Slot {
    /// Never written (all zeros).
    Empty,
    /// Its CRC does not match: a torn or damaged write.
    Damaged,
    /// Written at `generation`: an entry, or free (`None`).
    Written(u64, Option<AckEntry>),
}

fn decode_ack_slot(bytes: &[u8]) -> Slot {
    if bytes.iter().all(|byte| *byte == 0) {
        return Slot::Empty;
    }
    let crc = read_u32(bytes, ACK_SLOT_LEN - 4);
    if bytes.len() != ACK_SLOT_LEN || crc != Some(crc32c::crc32c(&bytes[..ACK_SLOT_LEN - 4])) {
        return Slot::Damaged;
    }
    let (Some(generation), Some(kind)) = (read_u64(bytes, 0), read_u32(bytes, 8)) else {
        return Slot::Damaged;
    };
    match kind {
        SLOT_FREE => Slot::Written(generation, None),
        SLOT_ENTRY => match bytes
            .get(16..16 + ACK_ENTRY_LEN)
            .and_then(|entry| decode_ack_entry(entry, ACK_ENTRY_LEN))
        {
            Some(entry) => Slot::Written(generation, Some(entry)),
            None => Slot::Damaged,
        },
        _ => Slot::Damaged,
    }
}

/// A decoded acknowledgement file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DecodedAcks {
    /// The entries, one per segment.
    pub(crate) entries: Vec<AckEntry>,
    /// Slot pairs of a version 3 file that hold no readable slot but a damaged one: whatever they held is read as
    /// "nothing acknowledged" (the records are delivered again).
    pub(crate) damaged_pairs: u64,
}

/// Decodes the acknowledgement file, any version; `None` if its header (or, before version 3, anything) is
/// damaged, or its version unknown.
pub(crate) fn decode_acks(bytes: &[u8]) -> Option<DecodedAcks> {
    if bytes.len() < ACKS_HEADER_LEN + 4 || bytes[0..8] != ACKS_MAGIC {
        return None;
    }
    let entry_len = match read_u16(bytes, 8)? {
        1 => ACK_ENTRY_LEN_V1,
        ACKS_VERSION_BLOCK => ACK_ENTRY_LEN,
        ACKS_VERSION => return decode_acks_slots(bytes),
        _ => return None,
    };
    let count = read_u32(bytes, 12)? as usize;
    let body_len = ACKS_HEADER_LEN.checked_add(count.checked_mul(entry_len)?)?;
    if bytes.len() != body_len + 4
        || crc32c::crc32c(&bytes[..body_len]) != read_u32(bytes, body_len)?
    {
        return None;
    }
    let entries = bytes[ACKS_HEADER_LEN..body_len]
        .chunks_exact(entry_len)
        .map(|entry| decode_ack_entry(entry, entry_len))
        .collect::<Option<Vec<AckEntry>>>()?;
    Some(DecodedAcks {
        entries,
        damaged_pairs: 0,
    })
}

/// Decodes a version 3 file: per slot pair, the readable slot of the highest generation (a torn write of one slot
/// leaves the other, older one). A trailing partial pair (a torn extension) holds no entry.
fn decode_acks_slots(bytes: &[u8]) -> Option<DecodedAcks> {
    let header_len = ACKS_SLOTS_HEADER_LEN as usize;
    let header = bytes.get(..header_len)?;
    if crc32c::crc32c(&header[..28]) != read_u32(header, 28)?
        || read_u32(header, 12)? as usize != ACK_SLOT_LEN
    {
        return None;
    }
    let mut decoded = DecodedAcks {
        entries: Vec::new(),
        damaged_pairs: 0,
    };
    for pair in bytes[header_len..].chunks_exact(ACK_PAIR_LEN as usize) {
        let (first, second) = pair.split_at(ACK_SLOT_LEN);
        let slots = [decode_ack_slot(first), decode_ack_slot(second)];
        let newest = slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Written(generation, entry) => Some((*generation, entry)),
                _ => None,
            })
            .max_by_key(|(generation, _)| *generation);
        match newest {
            Some((_, Some(entry))) => decoded.entries.push(*entry),
            Some((_, None)) => {}
            None => {
                if slots.iter().any(|slot| matches!(slot, Slot::Damaged)) {
                    decoded.damaged_pairs += 1;
                }
            }
        }
    }
    Some(decoded)
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32c_check_value_is_the_castagnoli_one() {
        // The standard check value of CRC-32C (Castagnoli, reflected polynomial 0x82f63b78). CRC-32 (IEEE) would give
        // 0xcbf43926: this test is what keeps the format doc honest.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_frame_round_trips_and_has_the_documented_layout() {
        let mut out = Vec::new();
        encode_frame(&mut out, 7, 1234, b"hello");
        assert_eq!(out.len(), FRAME_HEADER_LEN + 5);
        assert_eq!(&out[0..4], &5_u32.to_le_bytes());
        assert_eq!(&out[8..12], &7_u32.to_le_bytes());
        assert_eq!(&out[12..16], &1234_u32.to_le_bytes());
        let Parsed::Frame(frame) = parse_frame(&out, 1024) else {
            panic!("frame expected")
        };
        assert_eq!(
            (frame.index, frame.delta_ms, frame.payload),
            (7, 1234, &b"hello"[..])
        );
    }

    #[test]
    fn a_length_over_the_limit_is_invalid_without_reading_further() {
        let mut out = Vec::new();
        encode_frame(&mut out, 0, 0, &[0_u8; 100]);
        assert!(matches!(parse_frame(&out, 99), Parsed::Invalid));
        assert!(matches!(
            parse_frame(&out[..20], 1000),
            Parsed::Incomplete { needed: 116 }
        ));
        assert!(matches!(
            parse_frame(&out[..3], 1000),
            Parsed::Incomplete {
                needed: FRAME_HEADER_LEN
            }
        ));
    }

    #[test]
    fn zeroed_bytes_are_not_a_frame() {
        assert!(matches!(parse_frame(&[0_u8; 64], 1024), Parsed::Invalid));
    }

    #[test]
    fn the_segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            key: SegmentKey {
                writer: WriterId::generate(),
                seq: 42,
            },
            created_ms: 1_700_000_000_000,
        };
        let mut bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Some(header));
        bytes[30] ^= 1;
        assert_eq!(SegmentHeader::decode(&bytes), None);
        assert_eq!(SegmentHeader::decode(&bytes[..47]), None);
    }

    #[test]
    fn file_names_round_trip() {
        let key = SegmentKey {
            writer: WriterId::generate(),
            seq: 0x1f,
        };
        let name = key.file_name();
        assert_eq!(name.len(), 32 + 1 + 16 + 4);
        assert_eq!(SegmentKey::parse_file_name(&name), Some(key));
        assert_eq!(
            parse_lock_file_name(&lock_file_name(key.writer)),
            Some(key.writer)
        );
        assert_eq!(SegmentKey::parse_file_name("acks"), None);
        assert_eq!(SegmentKey::parse_file_name(&name.to_uppercase()), None);
    }

    #[test]
    fn resync_finds_the_next_frame_after_damage() {
        let mut out = Vec::new();
        encode_frame(&mut out, 0, 5, b"first");
        let second = out.len();
        encode_frame(&mut out, 1, 6, b"second");
        out[second + 3] ^= 0x40; // The second frame's length is now absurd.
        let third = out.len();
        encode_frame(&mut out, 2, 7, b"third");
        let rule = ResyncRule {
            min_index: 1,
            max_index: 100,
            min_delta_ms: 5,
            max_record: 1024,
        };
        assert!(matches!(parse_frame(&out[second..], 1024), Parsed::Invalid));
        assert_eq!(resync(&out, second, rule), Some(third));
    }

    proptest! {
        #[test]
        fn the_acks_file_round_trips_and_any_flip_is_detected(
            raw in proptest::collection::vec((any::<u64>(), 0..u64::MAX / 2, 0..u64::MAX / 2, 0..u32::MAX / 2), 0..20),
            flip in any::<proptest::sample::Index>(),
        ) {
            let writer = WriterId::generate();
            let entries: Vec<AckEntry> = raw
                .iter()
                .map(|&(seq, offset, valid, next_index)| AckEntry {
                    key: SegmentKey { writer, seq },
                    offset,
                    valid,
                    next_index,
                    last_delta_ms: next_index / 2,
                    known_offset: offset + u64::from(next_index),
                    known_valid: valid + 1,
                    known_next_index: next_index + 1,
                })
                .collect();
            let mut bytes = encode_acks_block(&entries);
            prop_assert_eq!(decode_acks(&bytes), Some(DecodedAcks { entries: entries.clone(), damaged_pairs: 0 }));
            let at = flip.index(bytes.len());
            bytes[at] ^= 0x10;
            prop_assert_eq!(decode_acks(&bytes), None);

            // Version 3: a pair per entry, the newer slot wins; a flip in a slot falls back to the other slot.
            let mut slots = encode_acks_header().to_vec();
            for (index, entry) in entries.iter().enumerate() {
                let older = AckEntry { offset: 0, valid: 0, next_index: 0, ..*entry };
                slots.extend_from_slice(&encode_ack_slot(2 * index as u64 + 1, Some(&older)));
                slots.extend_from_slice(&encode_ack_slot(2 * index as u64 + 2, Some(entry)));
            }
            prop_assert_eq!(decode_acks(&slots), Some(DecodedAcks { entries: entries.clone(), damaged_pairs: 0 }));
            if !entries.is_empty() {
                let pair = flip.index(entries.len());
                let at = ACKS_SLOTS_HEADER_LEN as usize + pair * ACK_PAIR_LEN as usize + ACK_SLOT_LEN + flip.index(ACK_SLOT_LEN);
                slots[at] ^= 0x10;
                let mut expected = entries.clone();
                expected[pair] = AckEntry { offset: 0, valid: 0, next_index: 0, ..entries[pair] };
                prop_assert_eq!(decode_acks(&slots), Some(DecodedAcks { entries: expected, damaged_pairs: 0 }));
            }
        }

        #[test]
        fn any_truncation_of_a_frame_sequence_parses_to_a_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut out = Vec::new();
            for (index, payload) in payloads.iter().enumerate() {
                encode_frame(&mut out, index as u32, 0, payload);
            }
            let cut = cut.index(out.len() + 1);
            let mut offset = 0;
            let mut seen = 0;
            while let Parsed::Frame(frame) = parse_frame(&out[offset..cut], 64) {
                prop_assert_eq!(frame.payload, &payloads[seen][..]);
                seen += 1;
                offset += frame.encoded_len();
            }
            prop_assert!(seen <= payloads.len());
        }
    }
}
