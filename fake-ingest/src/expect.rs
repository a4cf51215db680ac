//! Waiting for captured events and checking expectations about them: `GET /_fake/wait`, and on the embedded
//! [`crate::Server`] handle `wait_for_events` (blocking and async) and [`Expectation`]s, whose failure message
//! shows what was captured.
//!
//! Waits never poll: the store wakes them after every stored batch (and reset), and each wait is bounded by its
//! timeout. Each wait is a [`Watcher`]: it sees every captured event once and keeps counts, so a look after a
//! stored batch costs that batch's events, whatever was captured before (with `--data-dir`, it reads only the new
//! records back from the log).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::event::CapturedEvent;
use crate::query::{EventFilter, WaitOutcome};
use crate::stats::Stats;
use crate::store::{Captured, Watcher};

/// The most matching events a [`WaitOutcome`] carries.
const MAX_WAIT_EVENTS: usize = 100;

/// The default and the largest timeout of `GET /_fake/wait`.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(5);
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// A wait for at least `min` captured events that match `filter`: counts the matching events it sees and keeps the
/// `seq`s of the first [`MAX_WAIT_EVENTS`], which its answer reads back.
pub(crate) struct Look<'a> {
    filter: &'a EventFilter,
    min: usize,
    matching: usize,
    shown: Vec<u64>,
}

impl<'a> Look<'a> {
    pub(crate) fn new(filter: &'a EventFilter, min: usize) -> Self {
        Self {
            filter,
            min,
            matching: 0,
            shown: Vec::new(),
        }
    }
}

impl Watcher for Look<'_> {
    type Answer = WaitOutcome;

    fn restart(&mut self) {
        self.matching = 0;
        self.shown.clear();
    }

    fn see(&mut self, event: &CapturedEvent) {
        if self.filter.matches(event) {
            self.matching += 1;
            if self.shown.len() < MAX_WAIT_EVENTS {
                self.shown.push(event.seq);
            }
        }
    }

    fn holds(&self, _: &Stats) -> bool {
        self.matching >= self.min
    }

    fn answer(&self, held: bool, captured: &Captured<'_>) -> WaitOutcome {
        WaitOutcome {
            satisfied: held,
            matching: self.matching,
            min: self.min,
            events: captured.by_seq(&self.shown),
        }
    }
}

/// What a test expects of the captured events; build it, then check it with [`crate::Server::check`] or wait for it
/// with [`crate::Server::expect_within`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use fake_ingest::{Config, Expectation, Server};
///
/// let server = Server::start_blocking(Config::default())?;
/// // ... the code under test sends its telemetry to server.url() ...
/// server.expect_within(
///     &Expectation::new().exactly("signed_up", 1).at_least("page_view", 3).none_named("crash").no_duplicates(),
///     Duration::from_secs(5),
/// )?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Count {
        name: String,
        min: usize,
        max: Option<usize>,
    },
    NoDuplicates,
}

impl Expectation {
    /// An expectation that holds until checks are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Exactly `count` captured (unique) events named `name`.
    pub fn exactly(self, name: impl Into<String>, count: usize) -> Self {
        self.count(name.into(), count, Some(count))
    }

    /// At least `count` events named `name`.
    pub fn at_least(self, name: impl Into<String>, count: usize) -> Self {
        self.count(name.into(), count, None)
    }

    /// At most `count` events named `name`.
    pub fn at_most(self, name: impl Into<String>, count: usize) -> Self {
        self.count(name.into(), 0, Some(count))
    }

    /// No event named `name`.
    pub fn none_named(self, name: impl Into<String>) -> Self {
        self.count(name.into(), 0, Some(0))
    }

    /// No event arrived twice (`duplicates` in the stats is 0: every stored event was received once).
    pub fn no_duplicates(mut self) -> Self {
        self.checks.push(Check::NoDuplicates);
        self
    }

    fn count(mut self, name: String, min: usize, max: Option<usize>) -> Self {
        self.checks.push(Check::Count { name, min, max });
        self
    }

    /// The checks that fail with these counts of events by name and counters, as sentences.
    fn failures(&self, named: &HashMap<&str, usize>, stats: &Stats) -> Vec<String> {
        let mut failures = Vec::new();
        for check in &self.checks {
            match check {
                Check::Count { name, min, max } => {
                    let count = named.get(name.as_str()).copied().unwrap_or(0);
                    let expected = match (min, max) {
                        (0, Some(0)) => "no".to_owned(),
                        (min, Some(max)) if min == max => format!("exactly {min}"),
                        (0, Some(max)) => format!("at most {max}"),
                        (min, _) => format!("at least {min}"),
                    };
                    if count < *min || max.is_some_and(|max| count > max) {
                        failures.push(format!(
                            "expected {expected} events named {name:?}, captured {count}"
                        ));
                    }
                }
                Check::NoDuplicates => {
                    if stats.duplicates > 0 {
                        failures.push(format!(
                            "expected no duplicates, {} events arrived again",
                            stats.duplicates
                        ));
                    }
                }
            }
        }
        failures
    }
}

/// A wait for an [`Expectation`]: counts the events it sees by the names its checks name.
pub(crate) struct Expecting<'a> {
    expectation: &'a Expectation,
    named: HashMap<&'a str, usize>,
}

impl<'a> Expecting<'a> {
    pub(crate) fn new(expectation: &'a Expectation) -> Self {
        let named = expectation
            .checks
            .iter()
            .filter_map(|check| match check {
                Check::Count { name, .. } => Some((name.as_str(), 0)),
                Check::NoDuplicates => None,
            })
            .collect();
        Self { expectation, named }
    }
}

impl Watcher for Expecting<'_> {
    type Answer = Result<(), ExpectationFailed>;

    fn restart(&mut self) {
        self.named.values_mut().for_each(|count| *count = 0);
    }

    fn see(&mut self, event: &CapturedEvent) {
        if let Some(count) = self.named.get_mut(event.event.name.as_str()) {
            *count += 1;
        }
    }

    fn holds(&self, stats: &Stats) -> bool {
        self.expectation.failures(&self.named, stats).is_empty()
    }

    /// The failure message lists every kept event by name, so a failed expectation reads them all, once.
    fn answer(&self, _: bool, captured: &Captured<'_>) -> Self::Answer {
        let failures = self.expectation.failures(&self.named, captured.stats());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ExpectationFailed::new(
                &failures,
                &captured.all(),
                captured.stats(),
            ))
        }
    }
}

/// An [`Expectation`] that did not hold; its message lists what failed and what was captured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpectationFailed {
    message: String,
}

impl ExpectationFailed {
    pub(crate) fn new(failures: &[String], events: &[CapturedEvent], stats: &Stats) -> Self {
        let mut message = String::from("the captured events do not meet the expectation:\n");
        for failure in failures {
            let _ = writeln!(message, "  - {failure}");
        }
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for event in events {
            *by_name.entry(event.event.name.as_str()).or_default() += 1;
        }
        let _ = writeln!(
            message,
            "captured {} unique events ({} received, {} duplicates), by name:",
            stats.events_unique, stats.events_received, stats.duplicates
        );
        if by_name.is_empty() {
            let _ = writeln!(message, "  (none)");
        }
        for (name, count) in &by_name {
            let _ = writeln!(message, "  {name:?}: {count}");
        }
        let latest = events.len().saturating_sub(10);
        if !events.is_empty() {
            let _ = writeln!(message, "the latest events:");
        }
        for event in &events[latest..] {
            let _ = writeln!(
                message,
                "  #{} {:?} via {} ({}), key {}",
                event.seq, event.event.name, event.route, event.received_at, event.event.dedupe_key
            );
        }
        Self { message }
    }
}
