//! The scenarios, one file each, and the registry the runner and the tests share.
//!
//! Each scenario is a function of a [`Ctx`](crate::harness::Ctx): it sets up fake-ingest with its fault plan (the
//! JSON of `docs/FAULTS.md`, written in the scenario's file), drives app processes, and ends by judging the ledgers
//! against the server. Sizes come from the profile (`ci` or `full`).

use crate::harness::Ctx;

mod ack_lost;
mod chat_idle_flush;
mod cli_burst;
mod concurrent_writers;
mod crash_loop;
mod otel_app;
mod outage;
mod overflow;
mod overhead;
mod poison;
mod server_crash;
mod steady;

/// A named scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name on the command line and in reports (`crash-loop`).
    pub name: &'static str,
    /// What it shows, in one line.
    pub summary: &'static str,
    /// The scenario itself.
    pub run: fn(&mut Ctx) -> anyhow::Result<()>,
    /// Whether a default run repeats it with every sink (the others run with the ingest sink only: their fault
    /// plans or probes are about our own protocol).
    pub every_sink: bool,
}

/// Every scenario, in the order the runner runs them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "steady",
        summary: "healthy server: everything delivered once",
        run: steady::run,
        every_sink: true,
    },
    Scenario {
        name: "chat-idle-flush",
        summary: "idle-only chat loop: no send while streaming, SIGKILL mid-conversation loses no finished message",
        run: chat_idle_flush::run,
        every_sink: false,
    },
    Scenario {
        name: "cli-burst",
        summary: "hundreds of short CLI runs on one spool against a slow, flaky server: exactly once, exits on time",
        run: cli_burst::run,
        every_sink: true,
    },
    Scenario {
        name: "crash-loop",
        summary: "SIGKILL at random moments, restart on the same spool: no checkpointed event lost or duplicated",
        run: crash_loop::run,
        every_sink: true,
    },
    Scenario {
        name: "otel-app",
        summary: "an app on tracing + the OpenTelemetry API, SIGKILLed: nothing force-flushed lost; the SDK's batch processors beside it",
        run: otel_app::run,
        every_sink: false,
    },
    Scenario {
        name: "ack-lost",
        summary: "the server stores then resets: raw duplicates on the wire, none after dedupe",
        run: ack_lost::run,
        every_sink: true,
    },
    Scenario {
        name: "server-crash",
        summary: "fake-ingest aborts before and after storing and is restarted: nothing lost",
        run: server_crash::run,
        every_sink: false,
    },
    Scenario {
        name: "outage",
        summary: "503s then no listener: breaker opens, memory bounded, spool grows, all delivered after",
        run: outage::run,
        every_sink: false,
    },
    Scenario {
        name: "poison",
        summary: "rejected events are dead-lettered and counted, all others delivered",
        run: poison::run,
        every_sink: false,
    },
    Scenario {
        name: "overflow",
        summary: "load above the queue and spool caps: every drop counted, the identity balances",
        run: overflow::run,
        every_sink: false,
    },
    Scenario {
        name: "concurrent-writers",
        summary: "several processes record into one spool at once: exactly once",
        run: concurrent_writers::run,
        every_sink: false,
    },
    Scenario {
        name: "overhead",
        summary: "CPU-bound work with and without telemetry: the overhead ratio, across sizes and server states",
        run: overhead::run,
        every_sink: false,
    },
];

/// Finds a scenario by name (`crash-loop` or `crash_loop`).
#[must_use]
pub fn find(name: &str) -> Option<&'static Scenario> {
    let wanted = name.replace('_', "-");
    ALL.iter().find(|scenario| scenario.name == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_found_by_kebab_or_snake_case_name() {
        assert_eq!(
            find("crash_loop").map(|scenario| scenario.name),
            Some("crash-loop")
        );
        assert_eq!(
            find("chat-idle-flush").map(|scenario| scenario.name),
            Some("chat-idle-flush")
        );
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_fault_plan_is_one_fake_ingest_accepts() {
        let plans = [
            ("ack-lost", ack_lost::plan()),
            ("cli-burst", cli_burst::plan()),
            ("concurrent-writers", concurrent_writers::plan()),
            ("crash-loop", crash_loop::plan()),
            ("otel-app", otel_app::plan()),
            ("outage", outage::plan(2_000)),
            ("overflow", overflow::plan()),
            ("poison", poison::plan()),
            ("server-crash", server_crash::plan()),
        ];

        for (name, plan) in plans {
            let parsed = fake_ingest::FaultPlan::from_json(&plan.0.to_string());

            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
    }
}
