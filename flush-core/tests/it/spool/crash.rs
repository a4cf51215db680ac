//! The real crash test: a child appends (and delivers) in a loop and is SIGKILLed at a random moment, many times.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use flush_core::spool::{Spool, SyncPolicy};

use super::{
    assert_unique, drain, read_protocol_lines, report, report_delivered, spawn_child, test_config,
};

/// The child: appends batches of `<tag>:<n>` records forever, reporting each batch once `append` returned
/// (`A first last`); every few batches delivers a batch, reporting its records (`D ...`) before acknowledging and
/// `K` once the acknowledgement returned.
pub(super) fn child(dir: &Path, tag: &str) {
    let iteration: u32 = tag.parse().expect("tag");
    let sync = match iteration % 3 {
        0 => SyncPolicy::Never,
        1 => SyncPolicy::GroupCommit(Duration::from_millis(5)),
        _ => SyncPolicy::Always,
    };
    let mut spool = Spool::open(test_config(dir, sync)).expect("child open");
    let mut next = 0_u32;
    let mut round = 0_u32;
    loop {
        let size = 1 + (round % 7);
        let batch: Vec<String> = (next..next + size)
            .map(|number| format!("{tag}:{number}"))
            .collect();
        spool.append(&batch).expect("child append");
        report(&format!("A {} {}", next, next + size - 1));
        next += size;
        round += 1;
        if round.is_multiple_of(5)
            && let Some(mut reader) = spool.try_deliver().expect("child try_deliver")
            && let Some(delivered) = reader.next_batch(10, 1 << 20).expect("child next_batch")
        {
            report_delivered(&delivered.records);
            reader.ack(&delivered.position).expect("child ack");
            report("K");
        }
    }
}

#[test]
fn records_survive_sigkill_at_random_moments_exactly_once() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut kills = 0;
    let mut acknowledged_by_children = 0;
    while kills < 25 && started.elapsed() < Duration::from_secs(20) {
        // Arrange: a child appending and delivering, killed at a random moment.
        let mut child = spawn_child("crash", dir, &kills.to_string());
        std::thread::sleep(Duration::from_millis(rng.u64(30..250)));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let lines = read_protocol_lines(&mut child);
        kills += 1;

        // What the child reported: appended records, and records it delivered and acknowledged.
        let mut appended: Vec<String> = Vec::new();
        let mut acked: HashSet<String> = HashSet::new();
        let mut in_flight: Vec<String> = Vec::new();
        for line in lines {
            let mut words = line.split(' ');
            match words.next() {
                Some("A") => {
                    let first: u32 = words.next().expect("first").parse().expect("number");
                    let last: u32 = words.next().expect("last").parse().expect("number");
                    appended.extend((first..=last).map(|number| format!("{}:{number}", kills - 1)));
                }
                Some("D") => in_flight = words.map(str::to_owned).collect(),
                Some("K") => acked.extend(in_flight.drain(..)),
                _ => {}
            }
        }

        acknowledged_by_children += acked.len();

        // Act: a new process delivers what is left.
        let spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("open after the kill");
        let rest = drain(&spool);

        // Assert: everything reported appended is delivered exactly once (by the child, acknowledged, or now);
        // nothing acknowledged comes back; nothing is handed out twice.
        let rest_set = assert_unique(&rest);
        for record in &acked {
            assert!(
                !rest_set.contains(record),
                "acknowledged {record} came back after the kill"
            );
        }
        for record in &appended {
            assert!(
                acked.contains(record) || rest_set.contains(record) || in_flight.contains(record),
                "{record} was appended and then lost (kill {kills})"
            );
        }
        let stats = spool.stats();
        assert_eq!(stats.pending_events, 0);
        assert_eq!(
            stats.acknowledged_events + stats.corrupt_records,
            stats.recovered_events
        );
        assert_eq!(stats.corrupt_records, 0, "a process crash damages nothing");
    }
    assert!(kills >= 5, "only {kills} kills in the time budget");
    assert!(
        acknowledged_by_children > 0,
        "the children never delivered: acknowledgements were not tested"
    );
}
