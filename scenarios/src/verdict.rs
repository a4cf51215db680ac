//! The verdict: what the ledgers say happened, against what the server stored.
//!
//! Every event the apps recorded is classified exactly once:
//!
//! | stored copies | event | class |
//! |---|---|---|
//! | 1 | any but poison | delivered |
//! | 2 or more | any | delivered, plus duplicates after dedupe (**failure**) |
//! | 0 | poison | dead-lettered (expected; checked against the counters) |
//! | 0 | covered by a completed checkpoint of a killed process | lost (**failure**) |
//! | 0 | recorded after the last checkpoint of a killed process | loss window (allowed, counted) |
//! | 0 | recorded by a process that exited cleanly | must be counted as dropped |
//!
//! The last row is a balance, not a per-event match (a drop counter does not say which event it dropped): over the
//! processes that exited cleanly, the undelivered events must equal the drops they counted. An excess is a loss
//! when checkpointed events are among the undelivered (a failure of [`Promise::ZeroLoss`]), an accounting failure
//! otherwise; fewer undelivered events than drops is an accounting failure too.
//!
//! A stored event whose match key is in no ledger is a failure too: it proves the server holds something no app
//! recorded (or one logical event under a key the harness cannot trace). Raw duplicates on the wire (the server saw
//! a `uuid` again) are reported, never failed: retrying after a lost acknowledgement is the design.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::ledger::Ledger;

/// A promise the scenarios check; every failure names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Promise {
    /// Every checkpointed event is stored by the server.
    ZeroLoss,
    /// No logical event is stored twice after dedupe.
    ZeroDuplicates,
    /// Every stored event is one some app recorded.
    NoUnknownEvents,
    /// Every event is delivered, dropped and counted, dead-lettered, or in a kill's loss window.
    EveryEventAccounted,
    /// `recorded + recovered = acknowledged + dropped + dead_lettered + settled_elsewhere + pending` at every clean exit, and
    /// `recorded` matches the ledger.
    IdentityBalances,
    /// Events the server rejects are dead-lettered and counted, never stored.
    PoisonIsolated,
    /// In idle-only mode, no delivery request arrives while the app is streaming.
    NoSendWhileBusy,
    /// A CLI invocation's `shutdown` returns by its deadline, measured inside the process.
    CliShutdownWithinDeadline,
    /// The app's memory stays under its configured bound during an outage.
    MemoryBounded,
    /// The scenario's fault really happened (otherwise the run proves nothing).
    FaultExercised,
    /// The scenario ran to completion within its bounded waits.
    ScenarioCompleted,
}

impl Promise {
    /// A one-line statement of the promise, for reports.
    #[must_use]
    pub fn statement(self) -> &'static str {
        match self {
            Self::ZeroLoss => "every checkpointed event is stored by the server",
            Self::ZeroDuplicates => "no event is stored twice after dedupe",
            Self::NoUnknownEvents => "every stored event was recorded by an app",
            Self::EveryEventAccounted => {
                "every event is delivered, counted as dropped, dead-lettered or in a kill's loss window"
            }
            Self::IdentityBalances => {
                "recorded + recovered = acknowledged + dropped + dead-lettered + settled elsewhere + pending at every clean exit"
            }
            Self::PoisonIsolated => "rejected events are dead-lettered and counted, never stored",
            Self::NoSendWhileBusy => {
                "no delivery request while the app is streaming (idle-only mode)"
            }
            Self::CliShutdownWithinDeadline => {
                "a CLI's shutdown returns by its deadline (measured inside the process)"
            }
            Self::MemoryBounded => "memory stays under the configured bound during an outage",
            Self::FaultExercised => "the injected fault really happened",
            Self::ScenarioCompleted => "the scenario ran to completion within its bounded waits",
        }
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        formatter.write_str(&name)
    }
}

/// A broken promise and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The promise broken.
    pub promise: Promise,
    /// What was observed, with examples.
    pub detail: String,
}

impl Violation {
    /// A violation of `promise` with `detail`.
    #[must_use]
    pub fn new(promise: Promise, detail: impl Into<String>) -> Self {
        Self {
            promise,
            detail: detail.into(),
        }
    }
}

/// One app process, as the harness saw it.
#[derive(Debug, Clone)]
pub struct ProcessRun {
    /// A label unique within the scenario (e.g. `app-3`).
    pub label: String,
    /// Its ledger.
    pub ledger: Ledger,
    /// Whether the harness SIGKILLed it.
    pub killed: bool,
}

impl ProcessRun {
    /// Whether the process wrote its exit report (a clean exit).
    #[must_use]
    pub fn exited_cleanly(&self) -> bool {
        !self.killed && self.ledger.exit().is_some()
    }
}

/// What the server stored: the match key of each stored (unique-`uuid`) event, and the raw duplicate count.
#[derive(Debug, Clone, Default)]
pub struct ServerCapture {
    /// One entry per stored event; `None` when the event carries no match key.
    pub stored_keys: Vec<Option<String>>,
    /// Events that arrived again under a `uuid` already stored (the server's `duplicates`).
    pub raw_duplicates: u64,
}

/// The counts of a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Events the ledgers say were recorded.
    pub recorded: u64,
    /// Of those, poison events.
    pub poison: u64,
    /// Distinct recorded events the server stored.
    pub delivered: u64,
    /// Events the server received again under a `uuid` it already had (allowed).
    pub raw_duplicates: u64,
    /// Extra stored copies of one logical event (failure).
    pub duplicates_after_dedupe: u64,
    /// Checkpointed events not stored (failure).
    pub lost: u64,
    /// Events after the last checkpoint of a killed process that were not stored (allowed).
    pub loss_window: u64,
    /// Drops reported by the processes that exited cleanly, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Dead-lettered events reported by the processes that exited cleanly.
    pub dead_lettered: u64,
    /// Events recorded by clean processes, not stored and not poison (must equal the drops).
    pub not_delivered_by_clean_processes: u64,
    /// Stored events in no ledger (failure).
    pub unknown_stored: u64,
    /// Processes the harness killed.
    pub kills: u64,
    /// Checkpointed events recorded by processes the harness later killed: the events a kill puts at risk.
    pub checkpointed_in_killed: u64,
}

/// The result of checking ledgers against the server.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// The counts.
    pub tally: Tally,
    /// Every broken promise.
    pub violations: Vec<Violation>,
}

/// How many example ids a violation quotes.
const EXAMPLES: usize = 5;

/// Checks the ledgers of every process of a scenario against what the server stored.
#[must_use]
pub fn judge(runs: &[ProcessRun], capture: &ServerCapture) -> Verdict {
    let mut tally = Tally {
        raw_duplicates: capture.raw_duplicates,
        ..Tally::default()
    };
    let mut violations = Vec::new();

    let mut stored_copies: HashMap<&str, u64> = HashMap::new();
    let mut unknown_examples = Vec::new();
    for key in &capture.stored_keys {
        match key {
            Some(key) => *stored_copies.entry(key.as_str()).or_default() += 1,
            None => {
                tally.unknown_stored += 1;
                if unknown_examples.len() < EXAMPLES {
                    unknown_examples.push("<no ledger id>".to_owned());
                }
            }
        }
    }

    let mut known: HashSet<String> = HashSet::new();
    let mut lost_examples = Vec::new();
    let mut duplicate_examples = Vec::new();
    let mut stored_poison = Vec::new();
    let mut poison_undelivered = 0_u64;
    let mut any_killed = false;
    // Undelivered events of clean processes that a completed checkpoint covered: a loss unless the drop count
    // explains them (a dropped event is never in the spool, whatever the checkpoint says).
    let mut clean_checkpointed_undelivered = 0_u64;
    let mut clean_checkpointed_examples = Vec::new();
    let mut unbalanced = Vec::new();
    for run in runs {
        let clean = run.exited_cleanly();
        if run.killed {
            tally.kills += 1;
            any_killed = true;
        }
        let records = run.ledger.records();
        for record in &records {
            tally.recorded += 1;
            if run.killed && record.checkpointed {
                tally.checkpointed_in_killed += 1;
            }
            if record.poison {
                tally.poison += 1;
            }
            known.insert(record.id.clone());
            let copies = stored_copies.get(record.id.as_str()).copied().unwrap_or(0);
            if copies > 1 {
                tally.duplicates_after_dedupe += copies - 1;
                if duplicate_examples.len() < EXAMPLES {
                    duplicate_examples.push(format!("{} ×{copies}", record.id));
                }
            }
            if copies >= 1 {
                if record.poison {
                    stored_poison.push(record.id.clone());
                } else {
                    tally.delivered += 1;
                }
            } else if record.poison {
                poison_undelivered += 1;
            } else if clean {
                tally.not_delivered_by_clean_processes += 1;
                if record.checkpointed {
                    clean_checkpointed_undelivered += 1;
                    if clean_checkpointed_examples.len() < EXAMPLES {
                        clean_checkpointed_examples.push(record.id.clone());
                    }
                }
            } else if record.checkpointed {
                tally.lost += 1;
                if lost_examples.len() < EXAMPLES {
                    lost_examples.push(record.id.clone());
                }
            } else {
                tally.loss_window += 1;
            }
        }
        if let Some(exit) = run.ledger.exit().filter(|_| clean) {
            for (reason, count) in &exit.stats.dropped {
                *tally.dropped.entry(reason.clone()).or_default() += count;
            }
            tally.dead_lettered += exit.stats.dead_lettered;
            let stats = &exit.stats;
            if !stats.identity_balances() {
                unbalanced.push(format!(
                    "{}: recorded {} + recovered {} != acknowledged {} + dropped {} + dead-lettered {} \
                     + settled elsewhere {} + pending {}",
                    run.label,
                    stats.recorded,
                    stats.recovered,
                    stats.acknowledged,
                    stats.dropped_total(),
                    stats.dead_lettered,
                    stats.settled_elsewhere,
                    stats.pending
                ));
            }
            let ledger_records = records.len() as u64;
            if stats.recorded != ledger_records {
                unbalanced.push(format!(
                    "{}: stats() says {} recorded, the ledger has {ledger_records}",
                    run.label, stats.recorded
                ));
            }
        }
    }

    if !unbalanced.is_empty() {
        let examples: Vec<&str> = unbalanced.iter().take(3).map(String::as_str).collect();
        violations.push(Violation::new(
            Promise::IdentityBalances,
            format!(
                "{} clean exits do not balance, e.g. {}",
                unbalanced.len(),
                examples.join("; ")
            ),
        ));
    }

    // Drop counts of a killed process die with it, so the balance is struck over the clean processes: their
    // undelivered events must be exactly their counted drops. Any excess is first blamed on checkpointed events
    // (a loss), the rest on the accounting.
    let dropped_total: u64 = tally.dropped.values().sum();
    let undelivered = tally.not_delivered_by_clean_processes;
    let excess = undelivered.saturating_sub(dropped_total);
    let clean_lost = excess.min(clean_checkpointed_undelivered);
    tally.lost += clean_lost;
    if clean_lost > 0 {
        lost_examples.extend(
            clean_checkpointed_examples
                .into_iter()
                .take(EXAMPLES.saturating_sub(lost_examples.len())),
        );
    }
    if excess > clean_lost || undelivered < dropped_total {
        violations.push(Violation::new(
            Promise::EveryEventAccounted,
            format!(
                "processes that exited cleanly left {undelivered} events undelivered but counted {dropped_total} drops"
            ),
        ));
    }

    for key in stored_copies.keys() {
        if !known.contains(*key) {
            tally.unknown_stored += stored_copies[key];
            if unknown_examples.len() < EXAMPLES {
                unknown_examples.push((*key).to_owned());
            }
        }
    }
    unknown_examples.sort();

    for (count, promise, what, examples) in [
        (
            tally.lost,
            Promise::ZeroLoss,
            "checkpointed events were never stored",
            &lost_examples,
        ),
        (
            tally.duplicates_after_dedupe,
            Promise::ZeroDuplicates,
            "extra stored copies of logical events",
            &duplicate_examples,
        ),
        (
            tally.unknown_stored,
            Promise::NoUnknownEvents,
            "stored events are in no ledger",
            &unknown_examples,
        ),
    ] {
        if count > 0 {
            violations.push(Violation::new(
                promise,
                format!("{count} {what}, e.g. {}", examples.join(", ")),
            ));
        }
    }
    if !stored_poison.is_empty() {
        violations.push(Violation::new(
            Promise::PoisonIsolated,
            format!(
                "{} poison events were stored, e.g. {}",
                stored_poison.len(),
                stored_poison.join(", ")
            ),
        ));
    }
    if !any_killed && poison_undelivered != tally.dead_lettered {
        violations.push(Violation::new(
            Promise::PoisonIsolated,
            format!(
                "{poison_undelivered} poison events were recorded and not stored, but {} were counted as dead-lettered",
                tally.dead_lettered
            ),
        ));
    }

    Verdict { tally, violations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AppStats, ExitReport, LedgerLine};

    fn record(id: &str) -> LedgerLine {
        LedgerLine::Record {
            id: id.to_owned(),
            poison: false,
        }
    }

    fn exit(stats: AppStats) -> LedgerLine {
        LedgerLine::Exit(Box::new(ExitReport {
            stats,
            ..ExitReport::default()
        }))
    }

    fn run(label: &str, lines: Vec<LedgerLine>, killed: bool) -> ProcessRun {
        ProcessRun {
            label: label.to_owned(),
            ledger: Ledger {
                lines,
                torn_tail: false,
            },
            killed,
        }
    }

    fn stored(keys: &[&str]) -> ServerCapture {
        ServerCapture {
            stored_keys: keys.iter().map(|key| Some((*key).to_owned())).collect(),
            raw_duplicates: 0,
        }
    }

    fn balanced(recorded: u64, acknowledged: u64) -> AppStats {
        AppStats {
            recorded,
            acknowledged,
            ..AppStats::default()
        }
    }

    #[test]
    fn everything_stored_once_passes_and_counts_raw_duplicates_without_failing() {
        let runs = [run(
            "app-0",
            vec![record("a"), record("b"), exit(balanced(2, 2))],
            false,
        )];
        let mut capture = stored(&["a", "b"]);
        capture.raw_duplicates = 3;

        let verdict = judge(&runs, &capture);

        assert_eq!(verdict.violations, vec![]);
        assert_eq!(verdict.tally.delivered, 2);
        assert_eq!(verdict.tally.raw_duplicates, 3);
    }

    #[test]
    fn a_checkpointed_event_missing_from_the_server_is_a_loss() {
        let runs = [run(
            "app-0",
            vec![
                record("a"),
                LedgerLine::Checkpoint { records: 1 },
                record("b"),
            ],
            true,
        )];

        let verdict = judge(&runs, &stored(&[]));

        assert_eq!(verdict.tally.lost, 1);
        assert_eq!(verdict.tally.loss_window, 1);
        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].promise, Promise::ZeroLoss);
    }

    #[test]
    fn checkpointed_events_of_a_clean_process_are_lost_unless_its_drops_explain_them() {
        let lines = |dropped: u64| {
            let mut stats = balanced(2, 1);
            stats.dropped.insert("queue_full".to_owned(), dropped);
            stats.pending = 1 - dropped;
            vec![
                record("a"),
                record("b"),
                LedgerLine::Checkpoint { records: 2 },
                exit(stats),
            ]
        };

        let explained = judge(&[run("app-0", lines(1), false)], &stored(&["a"]));
        let unexplained = judge(&[run("app-0", lines(0), false)], &stored(&["a"]));

        assert_eq!(explained.violations, vec![]);
        assert_eq!(unexplained.tally.lost, 1);
        assert_eq!(unexplained.violations[0].promise, Promise::ZeroLoss);
    }

    #[test]
    fn one_logical_event_stored_under_two_uuids_is_a_duplicate_after_dedupe() {
        let runs = [run("app-0", vec![record("a"), exit(balanced(1, 1))], false)];

        let verdict = judge(&runs, &stored(&["a", "a"]));

        assert_eq!(verdict.tally.duplicates_after_dedupe, 1);
        assert_eq!(verdict.violations[0].promise, Promise::ZeroDuplicates);
    }

    #[test]
    fn a_stored_event_no_ledger_knows_is_reported() {
        let runs = [run("app-0", vec![record("a"), exit(balanced(1, 1))], false)];
        let mut capture = stored(&["a", "ghost"]);
        capture.stored_keys.push(None);

        let verdict = judge(&runs, &capture);

        assert_eq!(verdict.tally.unknown_stored, 2);
        assert_eq!(verdict.violations[0].promise, Promise::NoUnknownEvents);
    }

    #[test]
    fn undelivered_events_of_a_clean_process_must_match_its_drop_count() {
        let mut stats = balanced(3, 1);
        stats.dropped.insert("queue_full".to_owned(), 2);
        let honest = [run(
            "app-0",
            vec![record("a"), record("b"), record("c"), exit(stats.clone())],
            false,
        )];
        stats.dropped.insert("queue_full".to_owned(), 1);
        stats.pending = 1;
        let short = [run(
            "app-0",
            vec![record("a"), record("b"), record("c"), exit(stats)],
            false,
        )];

        let honest_verdict = judge(&honest, &stored(&["a"]));
        let short_verdict = judge(&short, &stored(&["a"]));

        assert_eq!(honest_verdict.violations, vec![]);
        assert_eq!(honest_verdict.tally.dropped["queue_full"], 2);
        assert_eq!(short_verdict.violations.len(), 1);
        assert_eq!(
            short_verdict.violations[0].promise,
            Promise::EveryEventAccounted
        );
    }

    #[test]
    fn counters_that_do_not_balance_or_disagree_with_the_ledger_are_violations() {
        let runs = [
            run("app-0", vec![record("a"), exit(balanced(1, 2))], false),
            run("app-1", vec![record("b"), exit(balanced(2, 2))], false),
        ];

        let verdict = judge(&runs, &stored(&["a", "b"]));

        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].promise, Promise::IdentityBalances);
        let detail = &verdict.violations[0].detail;
        assert!(detail.starts_with("2 clean exits"), "{detail}");
    }

    #[test]
    fn poison_events_must_be_dead_lettered_and_never_stored() {
        let poison = LedgerLine::Record {
            id: "p".to_owned(),
            poison: true,
        };
        let mut stats = balanced(2, 1);
        stats.dead_lettered = 1;
        let runs = [run("app-0", vec![record("a"), poison, exit(stats)], false)];

        let good = judge(&runs, &stored(&["a"]));
        let stored_poison = judge(&runs, &stored(&["a", "p"]));

        assert_eq!(good.violations, vec![]);
        assert_eq!(good.tally.poison, 1);
        assert!(
            stored_poison
                .violations
                .iter()
                .any(|violation| violation.promise == Promise::PoisonIsolated)
        );
    }

    #[test]
    fn promises_display_as_their_snake_case_names() {
        assert_eq!(
            Promise::CliShutdownWithinDeadline.to_string(),
            "cli_shutdown_within_deadline"
        );
    }
}
