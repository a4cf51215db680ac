//! The accounting identity `recorded + recovered = acknowledged + dropped + dead_lettered + pending` under random
//! interleavings of record, idle, flush, checkpoint and injected failures.

use std::num::NonZeroUsize;
use std::time::Duration;

use fake_ingest::FaultPlan;
use flush_core::{Event, FlushOutcome, MemoryLimits, QueueLimits};
use proptest::prelude::*;

use super::{batch_size, memory_config, server, start};

#[derive(Debug, Clone)]
enum Step {
    Record { count: usize, poison: bool },
    Idle,
    Flush,
    Checkpoint,
    Faults(&'static str),
}

const PLANS: [&str; 5] = [
    r#"{"rules": []}"#,
    r#"{"rules": [{"when": {"probability": 0.5}, "then": {"status": 503}}]}"#,
    r#"{"rules": [{"when": {"probability": 0.5}, "then": "reset_after_store"}]}"#,
    r#"{"rules": [{"when": {"probability": 0.5}, "then": "reset_before_store"}]}"#,
    r#"{"rules": [{"when": {"probability": 0.3}, "then": {"status": 429, "retry_after_secs": 0}}]}"#,
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..40, proptest::bool::weighted(0.1)).prop_map(|(count, poison)| Step::Record { count, poison }),
        1 => Just(Step::Idle),
        1 => Just(Step::Flush),
        1 => Just(Step::Checkpoint),
        1 => (0..PLANS.len()).prop_map(|plan| Step::Faults(PLANS[plan])),
    ]
}

const POISON_RULE: &str =
    r#"{"when": {"batch_has_property": {"name": "poison"}}, "then": {"status": 422}}"#;

fn with_poison_rule(plan: &str) -> FaultPlan {
    let mut value: serde_json::Value = serde_json::from_str(plan).unwrap();
    let rules = value["rules"].as_array_mut().unwrap();
    rules.insert(0, serde_json::from_str(POISON_RULE).unwrap());
    FaultPlan::from_json(&value.to_string()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_identity_holds_whenever_the_pipeline_is_quiet(
        steps in proptest::collection::vec(step(), 1..12),
        on_disk in any::<bool>(),
    ) {
        let server = server("[]");
        server.set_faults(with_poison_rule(PLANS[0]));
        let dir = tempfile::tempdir().unwrap();
        // Small bounds so that queue and store drops happen too.
        let builder = memory_config(&server);
        let builder = if on_disk {
            builder.spool_dir(dir.path())
        } else {
            builder.memory_only(MemoryLimits {
                max_events: NonZeroUsize::new(100).unwrap(),
                max_bytes: NonZeroUsize::new(1 << 20).unwrap(),
            })
        };
        let reporter = start(builder
            .batch_size(batch_size(7))
            .queue_limits(QueueLimits { max_events: NonZeroUsize::new(64).unwrap(), max_bytes: NonZeroUsize::new(1 << 20).unwrap() }));
        let mut recorded = 0u64;
        for step in steps {
            match step {
                Step::Record { count, poison } => {
                    for n in 0..count {
                        let event = Event::new("e").with("n", n);
                        reporter.record(if poison && n == 0 { event.with("poison", true) } else { event });
                    }
                    recorded += count as u64;
                }
                Step::Idle => reporter.idle(),
                Step::Flush => {
                    let _ = reporter.flush(Duration::from_millis(300));
                }
                Step::Checkpoint => {
                    reporter.checkpoint().unwrap();
                    let stats = reporter.stats();
                    prop_assert!(stats.identity_holds(), "after a checkpoint: {stats:?}");
                }
                Step::Faults(plan) => server.set_faults(with_poison_rule(plan)),
            }
        }
        server.set_faults(with_poison_rule(PLANS[0]));
        prop_assert_eq!(reporter.flush(Duration::from_secs(20)), FlushOutcome::Acknowledged);
        let stats = reporter.stats();
        prop_assert!(stats.identity_holds(), "after the final flush: {stats:?}");
        prop_assert_eq!(stats.recorded, recorded);
        prop_assert_eq!(stats.pending.total(), 0);
        prop_assert_eq!(server.stats().events_unique, stats.acknowledged);
        server.shutdown();
    }
}
