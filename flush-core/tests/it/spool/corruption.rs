//! Random byte flips and truncations in segment files: recovery returns an in-order subset of what was written,
//! counts the rest, and never panics.

use std::fs;
use std::path::PathBuf;

use flush_core::spool::{Spool, SyncPolicy};
use proptest::prelude::*;

use super::{assert_unique, drain, test_config};

#[derive(Clone, Debug)]
enum Damage {
    Flip {
        file: prop::sample::Index,
        at: prop::sample::Index,
        mask: u8,
    },
    Truncate {
        file: prop::sample::Index,
        at: prop::sample::Index,
    },
    Zero {
        file: prop::sample::Index,
        at: prop::sample::Index,
        len: u8,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1..=255_u8)
            .prop_map(|(file, at, mask)| Damage::Flip { file, at, mask }),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(file, at)| Damage::Truncate { file, at }),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1..64_u8)
            .prop_map(|(file, at, len)| Damage::Zero { file, at, len }),
    ]
}

fn segment_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

/// Whether damage to a segment file of these bytes can be proved. A file cut shorter than a segment header, of a
/// writer that is gone and with nothing durably known about it (this spool never syncs), is indistinguishable from a
/// creation torn by a crash: its loss is not provable (the spool format spec lists what is), whatever its bytes.
fn provable(bytes: &[u8]) -> bool {
    bytes.len() >= SEGMENT_HEADER_LEN
}

/// The length of a segment header (the spool format spec).
const SEGMENT_HEADER_LEN: usize = 48;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn damaged_segments_recover_an_in_order_subset_and_count_the_rest(
        damages in prop::collection::vec(damage(), 1..6),
        sizes in prop::collection::vec(1..40_usize, 20..60),
    ) {
        let temporary = tempfile::tempdir().expect("tempdir");
        let dir = temporary.path();
        let mut written = Vec::new();
        {
            let mut spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("open");
            for (number, size) in sizes.iter().enumerate() {
                let record = format!("{number:04}:{}", "x".repeat(*size));
                spool.append(&[record.as_bytes()]).expect("append");
                written.push(record);
            }
        }
        let files = segment_files(dir);
        let mut flipped = false;
        // Truncations first, so every flip stays in the files.
        let mut damages = damages;
        damages.sort_by_key(|damage| !matches!(damage, Damage::Truncate { .. }));
        for damage in &damages {
            match damage {
                Damage::Flip { file, at, mask } => {
                    let path = &files[file.index(files.len())];
                    let mut bytes = fs::read(path).expect("read");
                    if bytes.is_empty() { continue; }
                    let at = at.index(bytes.len());
                    bytes[at] ^= mask;
                    fs::write(path, &bytes).expect("write");
                    flipped |= provable(&bytes);
                }
                Damage::Truncate { file, at } => {
                    let path = &files[file.index(files.len())];
                    let len = fs::metadata(path).expect("metadata").len() as usize;
                    let at = at.index(len + 1);
                    fs::OpenOptions::new().write(true).open(path).expect("open").set_len(at as u64).expect("truncate");
                }
                Damage::Zero { file, at, len } => {
                    let path = &files[file.index(files.len())];
                    let mut bytes = fs::read(path).expect("read");
                    if bytes.is_empty() { continue; }
                    let at = at.index(bytes.len());
                    let end = (at + usize::from(*len)).min(bytes.len());
                    let changed = bytes[at..end].iter().any(|byte| *byte != 0);
                    bytes[at..end].fill(0);
                    fs::write(path, &bytes).expect("write");
                    flipped |= changed && provable(&bytes);
                }
            }
        }

        let spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("reopen after damage");
        let recovered = drain(&spool);

        // An in-order subset: a subsequence of what was written, nothing invented, nothing twice.
        assert_unique(&recovered);
        let mut position = 0;
        for record in &recovered {
            let found = written[position..].iter().position(|candidate| candidate == record);
            prop_assert!(found.is_some(), "{} invented or out of order", record);
            position += found.unwrap_or(0) + 1;
        }
        let stats = spool.stats();
        prop_assert!(recovered.len() as u64 + stats.corrupt_records <= written.len() as u64);
        prop_assert_eq!(stats.acknowledged_events + stats.corrupt_records, stats.recovered_events);
        if flipped && recovered.len() < written.len() {
            prop_assert!(stats.corrupt_bytes > 0 || stats.corrupt_records > 0, "damage went uncounted: {:?}", stats);
        }
        // A second open finds nothing more, and never panics either.
        drop(spool);
        let again = Spool::open(test_config(dir, SyncPolicy::Never)).expect("open again");
        prop_assert!(drain(&again).is_empty());
    }
}
