//! Waiting for captured events and checking expectations about them: `GET /_fake/wait`, and on the embedded
//! [`crate::Server`] handle `wait_for_events` (blocking and async) and [`Expectation`]s, whose failure message
//! shows what was captured.
//!
//! Waits never poll: the store wakes them after every stored batch (and reset), and each wait is bounded by its
//! timeout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::event::CapturedEvent;
use crate::query::{EventFilter, WaitOutcome};
use crate::stats::Stats;

/// The most matching events a [`WaitOutcome`] carries.
const MAX_WAIT_EVENTS: usize = 100;

/// The default and the largest timeout of `GET /_fake/wait`.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(5);
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// Looks at the captured events for a wait: whether at least `min` match, and what matched.
pub(crate) fn look(
    events: &[CapturedEvent],
    filter: &EventFilter,
    min: usize,
) -> (bool, WaitOutcome) {
    let mut matching = 0;
    let mut shown = Vec::new();
    for event in events.iter().filter(|event| filter.matches(event)) {
        matching += 1;
        if shown.len() < MAX_WAIT_EVENTS {
            shown.push(event.clone());
        }
    }
    let satisfied = matching >= min;
    (
        satisfied,
        WaitOutcome {
            satisfied,
            matching,
            min,
            events: shown,
        },
    )
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

    /// The checks that fail on these events and counters, as sentences.
    pub(crate) fn failures(&self, events: &[CapturedEvent], stats: &Stats) -> Vec<String> {
        let mut failures = Vec::new();
        for check in &self.checks {
            match check {
                Check::Count { name, min, max } => {
                    let count = events
                        .iter()
                        .filter(|event| event.event.name == *name)
                        .count();
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
