//! Several processes append to and deliver from one directory at once.

use std::path::Path;

use flush_core::spool::{Spool, SyncPolicy};

use super::{
    assert_unique, drain, read_protocol_lines, report, report_delivered, spawn_child, test_config,
};

const PROCESSES: u32 = 3;
const ROUNDS: u32 = 60;
const BATCH: u32 = 10;

/// The child: appends `ROUNDS` batches of `<tag>:<n>` records; after each, delivers one batch if it holds (or can
/// take) the delivery lock, reporting the records (`D ...`) once acknowledged; drops the reader now and then so the
/// delivering process changes.
pub(super) fn child(dir: &Path, tag: &str) {
    let mut spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("child open");
    let mut reader = None;
    for round in 0..ROUNDS {
        let batch: Vec<String> = (round * BATCH..(round + 1) * BATCH)
            .map(|number| format!("{tag}:{number}"))
            .collect();
        spool.append(&batch).expect("child append");
        if reader.is_none() {
            reader = spool.try_deliver().expect("child try_deliver");
        }
        if let Some(active) = reader.as_mut()
            && let Some(delivered) = active.next_batch(25, 1 << 20).expect("child next_batch")
        {
            active.ack(&delivered.position).expect("child ack");
            report_delivered(&delivered.records);
        }
        if round % 7 == 6 {
            reader = None;
        }
        if round.is_multiple_of(10) {
            std::thread::yield_now();
        }
    }
    report("DONE");
}

#[test]
fn several_processes_append_and_deliver_each_record_exactly_once() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path();

    let children: Vec<_> = (0..PROCESSES)
        .map(|tag| spawn_child("multi", dir, &tag.to_string()))
        .collect();
    let mut delivered: Vec<String> = Vec::new();
    for mut child in children {
        let lines = read_protocol_lines(&mut child);
        assert!(child.wait().expect("wait").success(), "a child failed");
        assert_eq!(lines.last().map(String::as_str), Some("DONE"));
        for line in lines {
            if let Some(records) = line.strip_prefix("D ") {
                delivered.extend(records.split(' ').map(str::to_owned));
            }
        }
    }
    let by_children = delivered.len();
    let spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("open");
    delivered.extend(drain(&spool));
    assert!(
        by_children > 0,
        "the children delivered nothing: nothing concurrent was tested"
    );

    let seen = assert_unique(&delivered);
    for tag in 0..PROCESSES {
        for number in 0..ROUNDS * BATCH {
            assert!(
                seen.contains(&format!("{tag}:{number}")),
                "{tag}:{number} was lost"
            );
        }
    }
    assert_eq!(delivered.len() as u32, PROCESSES * ROUNDS * BATCH);
    let files = std::fs::read_dir(dir).expect("read_dir").count();
    assert!(
        files <= 4,
        "settled segments and dead writers' lock files are removed; {files} files left"
    );
}
