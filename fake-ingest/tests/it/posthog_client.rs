//! Conformance with a real PostHog client: the Python `posthog` package (in a virtualenv) sends events to a real
//! `fake-ingest` process as it would to PostHog: every event is captured once, with and without gzip; injected 503s
//! are retried by the client and still captured once.
//!
//! The virtualenv is `.tools/posthog-venv` at the workspace root, which `.ci/run` creates; when it is missing the
//! test creates it (`python3 -m venv` + `pip install posthog==POSTHOG_VERSION` from PyPI). Without `python3` or
//! PyPI the test fails and says so: it never passes without the real client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::spawned::SpawnedServer;

/// The posthog-python release the conformance tests pin (the newest on PyPI in November 2026).
const POSTHOG_VERSION: &str = "7.91.1";

/// Sends `count` events from the Python client, each with `$distinct_id` `user-<i>` and property `i`, then flushes
/// and shuts the client down (which waits for the upload, retries included). Prints `sent <count>`.
const CLIENT_SCRIPT: &str = r#"
import sys
import posthog
from posthog import Posthog

host, count, gzip = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "gzip"
errors = []
client = Posthog(
    "phc_conformance",
    host=host,
    gzip=gzip,
    flush_at=count,
    max_retries=3,
    on_error=lambda error, batch: errors.append(repr(error)),
)
for i in range(count):
    client.capture("conformance_event", distinct_id="user-%d" % i, properties={"i": i})
client.flush()
client.shutdown()
if errors:
    print("errors " + "; ".join(errors))
    sys.exit(1)
print("sent %d" % count)
"#;

/// The virtualenv's python with `posthog` importable, creating the virtualenv once per test run if needed.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let requirement = format!("posthog=={POSTHOG_VERSION}");
        crate::support::venv_python("posthog-venv", &[&requirement], "posthog")
    })
}

/// Runs the client script; panics with its output when it fails.
fn send_events(server: &SpawnedServer, count: usize, gzip: bool) {
    let output = Command::new(python())
        .args([
            "-c",
            CLIENT_SCRIPT,
            &server.url,
            &count.to_string(),
            if gzip { "gzip" } else { "plain" },
        ])
        .output()
        .expect("the python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == format!("sent {count}"),
        "the PostHog client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn captured_indexes(server: &SpawnedServer) -> Vec<i64> {
    let mut indexes: Vec<i64> = server
        .events("posthog")
        .iter()
        .map(|event| event["properties"]["i"].as_i64().unwrap_or(-1))
        .collect();
    indexes.sort_unstable();
    indexes
}

fn batch_responses(stats: &Value) -> Value {
    stats["routes"]["/batch/"]["responses"].clone()
}

#[test]
fn the_python_client_delivers_every_event_once_with_and_without_gzip() {
    let server = SpawnedServer::start();
    for gzip in [false, true] {
        server.reset();
        send_events(&server, 5, gzip);

        assert_eq!(captured_indexes(&server), [0, 1, 2, 3, 4], "gzip: {gzip}");
        let events = server.events("posthog");
        assert!(
            events
                .iter()
                .all(|event| event["has_idempotency_key"] == json!(true)),
            "the client sends uuids"
        );
        assert!(
            events
                .iter()
                .all(|event| event["route"] == json!("/batch/"))
        );
        let stats = server.stats();
        assert_eq!(stats["duplicates"], json!(0));
        assert_eq!(
            batch_responses(&stats),
            json!({"200": 1}),
            "gzip: {gzip}: one batch request"
        );
    }
}

#[test]
fn injected_503s_are_retried_by_the_python_client_and_the_events_are_captured_once() {
    let server = SpawnedServer::start();
    server.set_faults(&json!({"rules": [
        {"when": {"protocol": "posthog", "first": 1}, "then": {"status": 503, "retry_after_secs": 1}}
    ]}));

    send_events(&server, 3, true);

    assert_eq!(captured_indexes(&server), [0, 1, 2]);
    let stats = server.stats();
    assert_eq!(batch_responses(&stats), json!({"200": 1, "503": 1}));
    assert_eq!(stats["duplicates"], json!(0));
}
