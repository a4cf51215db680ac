//! Conformance with the Node OTLP/gRPC trace exporter (`@opentelemetry/exporter-trace-otlp-grpc`, the npm project in
//! `tests/node/`) against an embedded server's gRPC listener: a span arrives once with and without gzip; the exporter
//! does not retry `UNAVAILABLE` itself, so an application that exports the same span again after two `UNAVAILABLE`
//! gets it stored once; a non-retryable status is not retried; a reset after storing is reported as a failure
//! (see below), and an application's resend is deduped.
//!
//! The project's `node_modules` is installed by `.ci/run` (`npm ci`); when it is missing the test runs `npm ci`
//! itself. Without `node` or `npm` the test fails and says so, as the Python exporter's does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use fake_ingest::{RequestsQuery, Server};

use crate::grpc_exporters::{TRACES, grpc_server, outcomes, span_names};

/// The npm project with the exporter, installed (`npm ci` from its `package-lock.json`) when it is not yet.
fn node_project() -> &'static Path {
    static PROJECT: OnceLock<PathBuf> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("node");
        let installed = project
            .join("node_modules")
            .join("@opentelemetry")
            .join("exporter-trace-otlp-grpc")
            .join("package.json");
        if !installed.exists() {
            let output = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&project)
                .output()
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot run npm ({error}); the conformance tests with the Node exporter need node and npm \
                         (Debian: apt-get install nodejs npm)"
                    )
                });
            assert!(
                output.status.success(),
                "npm ci failed in {}: {}",
                project.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        project
    })
}

/// Exports one span from Node, the same span at most `attempts` times until the exporter reports success; what it
/// reported for each attempt (`SUCCESS`, or `FAILED` and the gRPC status).
fn export_span(server: &Server, compression: &str, name: &str, attempts: u32) -> Vec<String> {
    let project = node_project();
    let endpoint = server.otlp_grpc_url().expect("a gRPC listener");
    let output = Command::new("node")
        .arg(project.join("export-span.js"))
        .args([&endpoint, compression, name, &attempts.to_string()])
        .current_dir(project)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run node ({error}); the conformance tests with the Node exporter need node"
            )
        });
    assert!(
        output.status.success(),
        "the Node exporter's script failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_node_grpc_exporter_delivers_a_span_once_with_and_without_gzip() {
    let server = grpc_server(r#"{"rules": []}"#);
    for compression in ["none", "gzip"] {
        server.reset().expect("reset");
        assert_eq!(export_span(&server, compression, "hello", 1), ["SUCCESS"]);
        assert_eq!(span_names(&server), ["hello"], "{compression}");
        let requests = server.requests(&RequestsQuery::default()).requests;
        let encoding = (compression == "gzip").then_some("gzip");
        assert_eq!(requests[0].content_encoding.as_deref(), encoding);
        let resource = server.events()[0]
            .event
            .resource
            .clone()
            .expect("a resource");
        assert_eq!(resource["service.name"], "node-conformance");
    }
}

#[test]
fn unavailable_is_not_retried_by_the_node_exporter_and_a_resend_after_two_is_stored_once() {
    let plan = format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "first": 2}}, "then": {{"status": 503}}}}]}}"#
    );
    let once = grpc_server(&plan);
    let resent = grpc_server(&plan);

    let reported_once = export_span(&once, "none", "not retried", 1);
    let reported_resent = export_span(&resent, "none", "resent", 3);

    assert_eq!(reported_once, ["FAILED UNAVAILABLE"]);
    assert_eq!(outcomes(&once), ["UNAVAILABLE"], "one call, no retry");
    assert!(span_names(&once).is_empty());
    assert_eq!(
        reported_resent,
        ["FAILED UNAVAILABLE", "FAILED UNAVAILABLE", "SUCCESS"]
    );
    assert_eq!(outcomes(&resent), ["UNAVAILABLE", "UNAVAILABLE", "OK"]);
    assert_eq!(span_names(&resent), ["resent"]);
}

#[test]
fn a_non_retryable_status_is_not_retried_by_the_node_exporter() {
    let server = grpc_server(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}"}}, "then": {{"status": 400}}}}]}}"#
    ));

    assert_eq!(
        export_span(&server, "none", "refused", 1),
        ["FAILED INVALID_ARGUMENT"]
    );

    assert!(span_names(&server).is_empty());
    assert_eq!(outcomes(&server), ["INVALID_ARGUMENT"]);
}

#[test]
fn a_reset_after_store_is_reported_as_a_failure_by_the_node_exporter_and_a_resend_is_deduped() {
    let server = grpc_server(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "nth": 1}}, "then": "reset_after_store"}}]}}"#
    ));

    let reported = export_span(&server, "none", "acknowledgement lost", 2);

    assert_eq!(reported, ["FAILED UNAVAILABLE", "SUCCESS"]);
    assert_eq!(span_names(&server), ["acknowledgement lost"]);
    assert_eq!(outcomes(&server), ["reset", "OK"]);
    let stats = server.stats();
    assert_eq!((stats.duplicates, stats.faults.reset_after_store), (1, 1));
}
