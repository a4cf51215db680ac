//! The report: one table per scenario for people, `report.json` and `junit.xml` for CI systems.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::ledger::OverheadSample;
use crate::verdict::{Tally, Violation};

/// The CLI deadline check: `shutdown` measured inside each process against its deadline, beside the same wait in
/// processes without telemetry run at the same time (the calibration), and the teardown after it (reported, not
/// judged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CliDeadlineReport {
    /// The deadline every invocation passed to `shutdown`, milliseconds.
    pub deadline_ms: u64,
    /// Invocations with telemetry that shut down cleanly.
    pub invocations: u64,
    /// The slowest `shutdown`, from the call to its return inside the process, milliseconds.
    pub worst_shutdown_ms: f64,
    /// Baseline processes (no telemetry) run among them.
    pub baselines: u64,
    /// The slowest baseline wait for the same deadline, milliseconds.
    pub worst_baseline_ms: f64,
    /// What a `shutdown` may take before it counts as late: the deadline plus the calibrated tolerance.
    pub allowed_ms: f64,
    /// The slowest teardown (shutdown returned to process gone, as the harness saw it), milliseconds.
    pub worst_teardown_ms: u64,
    /// The longest a `shutdown` waited past its deadline for the queue to reach the spool, milliseconds.
    pub worst_store_overrun_ms: f64,
}

/// A peer design run beside the scenario's app under the same faults and kills: what it lost, reported and not
/// judged (the otel-app scenario: the OpenTelemetry SDK's batch processors).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerReport {
    /// What the peer is.
    pub name: String,
    /// Records the peer's app ended (its ledgers).
    pub recorded: u64,
    /// Distinct records the server stored.
    pub delivered: u64,
    /// Records ended before a `force_flush` that returned `Ok`, never stored.
    pub lost_flushed: u64,
    /// Records never stored that no successful `force_flush` covered (a kill, a failed export, a full queue).
    pub lost_unflushed: u64,
    /// Extra stored copies of one record after dedupe.
    pub duplicates_after_dedupe: u64,
}

impl PeerReport {
    /// The peer's counts from the verdict's tally over its ledgers.
    #[must_use]
    pub fn from_tally(name: &str, tally: &Tally) -> Self {
        Self {
            name: name.to_owned(),
            recorded: tally.recorded,
            delivered: tally.delivered,
            lost_flushed: tally.lost,
            lost_unflushed: tally
                .recorded
                .saturating_sub(tally.delivered)
                .saturating_sub(tally.lost),
            duplicates_after_dedupe: tally.duplicates_after_dedupe,
        }
    }
}

/// Everything measured in one scenario run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name (`crash-loop`).
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// The profile it ran at (`ci`, `full`).
    pub profile: String,
    /// The backend the apps delivered to (`ingest`, `posthog`, `otlp-logs`).
    pub sink: String,
    /// Wall-clock duration, in milliseconds.
    pub duration_ms: u64,
    /// Delivery counts.
    pub tally: Tally,
    /// `record()` median, nanoseconds.
    pub record_p50_ns: Option<u64>,
    /// `record()` 99th percentile, nanoseconds.
    pub record_p99_ns: Option<u64>,
    /// How many times the harness SIGKILLed fake-ingest (or it crashed by plan) and started it again.
    pub server_restarts: u32,
    /// The CLI deadline check (the cli-burst scenario).
    pub cli: Option<CliDeadlineReport>,
    /// Peak resident set size of the app processes, KiB.
    pub peak_rss_kib: Option<u64>,
    /// The memory bound the scenario checked against, KiB.
    pub rss_bound_kib: Option<u64>,
    /// Overhead measurements (the overhead scenario).
    pub overhead: Vec<OverheadSample>,
    /// A peer design run beside the app under the same faults and kills (reported, not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerReport>,
    /// Facts worth a line that are not counts (fault counts, restarts, ...).
    pub notes: Vec<String>,
    /// Broken promises; empty means the scenario passed.
    pub violations: Vec<Violation>,
    /// The command that re-runs this scenario alone with the same seed.
    pub rerun: String,
}

impl ScenarioReport {
    /// The scenario and the sink it ran with, as reports name a run (`steady (posthog)`).
    #[must_use]
    pub fn title(&self) -> String {
        format!("{} ({})", self.name, self.sink)
    }

    /// Whether every promise held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The worst overhead ratio measured, if any.
    #[must_use]
    pub fn worst_overhead_ratio(&self) -> Option<f64> {
        self.overhead
            .iter()
            .map(OverheadSample::ratio)
            .filter(|ratio| ratio.is_finite())
            .reduce(f64::max)
    }

    /// The table a person reads.
    #[must_use]
    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table.set_width(110);
        table.set_header(vec![
            Cell::new(format!(
                "{} (seed {}, {}, sink {})",
                self.name, self.seed, self.profile, self.sink
            )),
            Cell::new(""),
        ]);
        let tally = &self.tally;
        let dash = || "—".to_owned();
        let dropped = if tally.dropped.is_empty() {
            "0".to_owned()
        } else {
            tally
                .dropped
                .iter()
                .map(|(reason, count)| format!("{reason}: {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows: Vec<(&str, String)> = vec![
            ("events recorded", tally.recorded.to_string()),
            ("delivered", tally.delivered.to_string()),
            (
                "raw duplicates on the wire",
                tally.raw_duplicates.to_string(),
            ),
            (
                "duplicates after dedupe",
                tally.duplicates_after_dedupe.to_string(),
            ),
            ("lost (checkpointed)", tally.lost.to_string()),
            (
                "loss window (after last checkpoint before a kill)",
                tally.loss_window.to_string(),
            ),
            ("dropped", dropped),
            (
                "dead-lettered",
                format!(
                    "{} (poison recorded: {})",
                    tally.dead_lettered, tally.poison
                ),
            ),
            (
                "processes killed (checkpointed events in them)",
                format!("{} ({})", tally.kills, tally.checkpointed_in_killed),
            ),
            ("fake-ingest restarts", self.server_restarts.to_string()),
            (
                "record() p50 / p99",
                match (self.record_p50_ns, self.record_p99_ns) {
                    (Some(p50), Some(p99)) => format!("{} / {}", format_ns(p50), format_ns(p99)),
                    _ => dash(),
                },
            ),
            (
                "CLI shutdown, in-process (worst)",
                self.cli.map_or_else(dash, |cli| {
                    format!(
                        "{:.1} ms of {} runs (deadline {} ms, allowed {:.1} ms + any wait to store the queue, \
                         worst {:.1} ms; baseline wait {:.1} ms of {} runs)",
                        cli.worst_shutdown_ms,
                        cli.invocations,
                        cli.deadline_ms,
                        cli.allowed_ms,
                        cli.worst_store_overrun_ms,
                        cli.worst_baseline_ms,
                        cli.baselines
                    )
                }),
            ),
            (
                "CLI teardown after shutdown (worst, not judged)",
                self.cli
                    .map_or_else(dash, |cli| format!("{} ms", cli.worst_teardown_ms)),
            ),
            (
                "peak RSS",
                match (self.peak_rss_kib, self.rss_bound_kib) {
                    (Some(peak), Some(bound)) => {
                        format!("{} (bound {})", format_kib(peak), format_kib(bound))
                    }
                    (Some(peak), None) => format_kib(peak),
                    _ => dash(),
                },
            ),
            (
                "overhead ratio (worst)",
                self.worst_overhead_ratio()
                    .map_or_else(dash, |ratio| format!("{ratio:.3}")),
            ),
            (
                "duration",
                format!("{:.1} s", self.duration_ms as f64 / 1000.0),
            ),
        ];
        for (label, value) in rows {
            table.add_row(vec![Cell::new(label), Cell::new(value)]);
        }
        if let Some(peer) = &self.peer {
            table.add_row(vec![
                Cell::new(format!("beside it, not judged: {}", peer.name)),
                Cell::new(format!(
                    "{} recorded, {} delivered; lost: {} after a force_flush returned Ok, {} not covered by one \
                     (kills, failed exports); {} duplicates after dedupe",
                    peer.recorded,
                    peer.delivered,
                    peer.lost_flushed,
                    peer.lost_unflushed,
                    peer.duplicates_after_dedupe
                )),
            ]);
        }
        for sample in &self.overhead {
            table.add_row(vec![
                Cell::new(format!(
                    "  overhead, server {}, {} events",
                    sample.server, sample.units
                )),
                Cell::new(format!(
                    "{:.3} ({:.0} ns/unit bare, {:.0} ns/unit with telemetry)",
                    sample.ratio(),
                    sample.bare_ns_per_unit,
                    sample.telemetry_ns_per_unit
                )),
            ]);
        }
        for note in &self.notes {
            table.add_row(vec![Cell::new("note"), Cell::new(note)]);
        }
        let verdict = if self.passed() {
            Cell::new("PASS").fg(Color::Green)
        } else {
            let broken: Vec<String> = self
                .violations
                .iter()
                .map(|violation| format!("{}: {}", violation.promise, violation.detail))
                .collect();
            Cell::new(format!("FAIL\n{}", broken.join("\n"))).fg(Color::Red)
        };
        table.add_row(vec![Cell::new("verdict"), verdict]);
        table
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The profile (`ci`, `full`).
    pub profile: String,
    /// The base seed.
    pub seed: u64,
    /// Whether every scenario passed.
    pub passed: bool,
    /// Wall-clock duration, milliseconds.
    pub duration_ms: u64,
    /// One report per scenario, in run order.
    pub scenarios: Vec<ScenarioReport>,
}

impl SuiteReport {
    /// Builds the suite report from the scenario reports.
    #[must_use]
    pub fn new(profile: &str, seed: u64, duration_ms: u64, scenarios: Vec<ScenarioReport>) -> Self {
        let passed = scenarios.iter().all(ScenarioReport::passed);
        Self {
            profile: profile.to_owned(),
            seed,
            passed,
            duration_ms,
            scenarios,
        }
    }

    /// The JUnit XML document: one `testcase` per scenario, a `failure` per broken promise.
    #[must_use]
    pub fn junit_xml(&self) -> String {
        let failures = self
            .scenarios
            .iter()
            .filter(|scenario| !scenario.passed())
            .count();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"scenarios\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
            self.scenarios.len(),
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"scenarios.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
            xml_escape(&self.profile),
            self.scenarios.len(),
            self.duration_ms as f64 / 1000.0
        );
        for scenario in &self.scenarios {
            let _ = write!(
                xml,
                "    <testcase classname=\"scenarios\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&scenario.title()),
                scenario.duration_ms as f64 / 1000.0
            );
            if scenario.passed() {
                xml.push_str("/>\n");
                continue;
            }
            xml.push_str(">\n");
            for violation in &scenario.violations {
                let _ = writeln!(
                    xml,
                    "      <failure type=\"{}\" message=\"{}\">{}\nseed: {}\nre-run: {}</failure>",
                    violation.promise,
                    xml_escape(violation.promise.statement()),
                    xml_escape(&violation.detail),
                    scenario.seed,
                    xml_escape(&scenario.rerun)
                );
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }

    /// Writes `report.json` and `junit.xml` into `dir`.
    ///
    /// # Errors
    /// When the directory or a file cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self).context("serializing the report")?;
        std::fs::write(dir.join("report.json"), json + "\n").context("writing report.json")?;
        std::fs::write(dir.join("junit.xml"), self.junit_xml()).context("writing junit.xml")?;
        Ok(())
    }

    /// The closing summary: each broken promise by scenario, the seed and the re-run command.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let passed = self
            .scenarios
            .iter()
            .filter(|scenario| scenario.passed())
            .count();
        let _ = writeln!(
            text,
            "{passed}/{} scenarios passed (profile {}, seed {}, {:.1} s)",
            self.scenarios.len(),
            self.profile,
            self.seed,
            self.duration_ms as f64 / 1000.0
        );
        let total =
            |field: fn(&ScenarioReport) -> u64| self.scenarios.iter().map(field).sum::<u64>();
        let _ = writeln!(
            text,
            "crash resilience: {} processes SIGKILLed with {} checkpointed events in them, fake-ingest restarted {} times; \
             {} checkpointed events lost, {} stored twice after dedupe",
            total(|scenario| scenario.tally.kills),
            total(|scenario| scenario.tally.checkpointed_in_killed),
            total(|scenario| u64::from(scenario.server_restarts)),
            total(|scenario| scenario.tally.lost),
            total(|scenario| scenario.tally.duplicates_after_dedupe),
        );
        for scenario in self.scenarios.iter().filter(|scenario| !scenario.passed()) {
            let _ = writeln!(
                text,
                "FAILED {} (seed {}):",
                scenario.title(),
                scenario.seed
            );
            for violation in &scenario.violations {
                let _ = writeln!(
                    text,
                    "  broken promise {}: {}",
                    violation.promise,
                    violation.promise.statement()
                );
                let _ = writeln!(text, "    {}", violation.detail);
            }
            let _ = writeln!(text, "  re-run: {}", scenario.rerun);
        }
        text
    }
}

fn format_ns(nanos: u64) -> String {
    if nanos >= 1_000_000 {
        format!("{:.1} ms", nanos as f64 / 1e6)
    } else if nanos >= 1_000 {
        format!("{:.1} µs", nanos as f64 / 1e3)
    } else {
        format!("{nanos} ns")
    }
}

fn format_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            character if character.is_control() && character != '\n' && character != '\t' => {}
            character => escaped.push(character),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::verdict::Promise;

    fn sample(name: &str, violations: Vec<Violation>) -> ScenarioReport {
        ScenarioReport {
            name: name.to_owned(),
            seed: 42,
            profile: "ci".to_owned(),
            sink: "ingest".to_owned(),
            duration_ms: 1234,
            tally: Tally {
                recorded: 1000,
                delivered: 990,
                raw_duplicates: 17,
                loss_window: 4,
                dropped: BTreeMap::from([("queue_full".to_owned(), 6)]),
                not_delivered_by_clean_processes: 6,
                kills: 3,
                ..Tally::default()
            },
            record_p50_ns: Some(850),
            record_p99_ns: Some(12_500),
            server_restarts: 2,
            cli: Some(CliDeadlineReport {
                deadline_ms: 300,
                invocations: 120,
                worst_shutdown_ms: 271.4,
                baselines: 30,
                worst_baseline_ms: 300.6,
                allowed_ms: 350.0,
                worst_teardown_ms: 14,
                worst_store_overrun_ms: 0.0,
            }),
            peak_rss_kib: Some(20_480),
            rss_bound_kib: Some(65_536),
            overhead: vec![OverheadSample {
                server: "healthy".to_owned(),
                units: 1000,
                bare_ns_per_unit: 10_000.0,
                telemetry_ns_per_unit: 10_300.0,
            }],
            peer: None,
            notes: vec!["fake-ingest restarted 2 times".to_owned()],
            violations,
            rerun: format!("cargo run --release -p scenarios -- run --scenario {name} --seed 42"),
        }
    }

    fn failing() -> ScenarioReport {
        sample(
            "crash-loop",
            vec![Violation::new(
                Promise::ZeroLoss,
                "2 checkpointed events were never stored, e.g. r-1-7, r-1-8",
            )],
        )
    }

    #[test]
    fn the_scenario_table_shows_every_measure_and_the_verdict() {
        let table = sample("steady", vec![]).table().to_string();

        insta::assert_snapshot!(table);
    }

    #[test]
    fn a_failing_table_names_the_broken_promise() {
        let table = failing().table().to_string();

        assert!(table.contains("FAIL"), "{table}");
        assert!(table.contains("zero_loss"), "{table}");
    }

    #[test]
    fn the_junit_document_has_a_failure_per_broken_promise_with_the_rerun_command() {
        let suite = SuiteReport::new("ci", 42, 5000, vec![sample("steady", vec![]), failing()]);

        insta::assert_snapshot!(suite.junit_xml());
    }

    #[test]
    fn the_summary_names_each_broken_promise_the_seed_and_the_rerun_command() {
        let suite = SuiteReport::new("ci", 42, 5000, vec![sample("steady", vec![]), failing()]);

        let summary = suite.summary();

        assert!(!suite.passed);
        insta::assert_snapshot!(summary);
    }

    #[test]
    fn a_peer_is_counted_from_its_tally_and_shown_beside_the_verdict() {
        let tally = Tally {
            recorded: 100,
            delivered: 80,
            lost: 5,
            loss_window: 15,
            ..Tally::default()
        };
        let mut report = sample("otel-app", vec![]);

        report.peer = Some(PeerReport::from_tally("the SDK", &tally));

        let peer = report.peer.clone().unwrap();
        assert_eq!(
            (
                peer.recorded,
                peer.delivered,
                peer.lost_flushed,
                peer.lost_unflushed
            ),
            (100, 80, 5, 15)
        );
        let table = report.table().to_string();
        assert!(table.contains("not judged: the SDK"), "{table}");
        assert!(report.passed());
    }

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
