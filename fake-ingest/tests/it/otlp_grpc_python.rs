//! Conformance with the Python OTLP/gRPC exporter (`opentelemetry-exporter-otlp-proto-grpc`, in a virtualenv) against
//! an embedded server's gRPC listener: spans arrive once with and without gzip; `UNAVAILABLE` twice is retried and
//! stored once; a non-retryable status is not retried; a reset after storing is retried and deduped.
//!
//! The virtualenv is `.tools/otlp-grpc-venv` at the workspace root, which `.ci/run` creates; when it is missing the
//! test creates it from PyPI. Without `python3` or PyPI the test fails and says so, as the PostHog client's does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use fake_ingest::{RequestsQuery, Server};

use crate::grpc_exporters::{TRACES, grpc_server, outcomes, span_names};

/// The opentelemetry-python release the tests pin (the newest on PyPI in November 2026).
const OTEL_PYTHON_VERSION: &str = "1.45.2";

/// Exports one span named argv[3] to argv[1] (compression argv[2]) and prints the exporter's result
/// (`SUCCESS` or `FAILURE`).
const CLIENT_SCRIPT: &str = r#"
import sys
from grpc import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

endpoint, compression, name = sys.argv[1], sys.argv[2], sys.argv[3]
exporter = OTLPSpanExporter(
    endpoint=endpoint,
    insecure=True,
    timeout=20,
    compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
)
results = []

class Recording(SpanExporter):
    def export(self, spans):
        result = exporter.export(spans)
        results.append(result)
        return result

    def shutdown(self):
        exporter.shutdown()

provider = TracerProvider(resource=Resource.create({"service.name": "python-conformance"}))
provider.add_span_processor(SimpleSpanProcessor(Recording()))
with provider.get_tracer("conformance").start_as_current_span(name):
    pass
provider.shutdown()
print(results[0].name)
"#;

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let exporter = format!("opentelemetry-exporter-otlp-proto-grpc=={OTEL_PYTHON_VERSION}");
        let sdk = format!("opentelemetry-sdk=={OTEL_PYTHON_VERSION}");
        crate::support::venv_python(
            "otlp-grpc-venv",
            &[&exporter, &sdk],
            "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        )
    })
}

/// Exports one span from Python; returns the exporter's result.
fn export_span(server: &Server, compression: &str, name: &str) -> String {
    let endpoint = server.otlp_grpc_url().expect("a gRPC listener");
    let output = Command::new(python())
        .args(["-c", CLIENT_SCRIPT, &endpoint, compression, name])
        .output()
        .expect("the python client runs");
    assert!(
        output.status.success(),
        "the Python exporter failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn the_python_grpc_exporter_delivers_a_span_once_with_and_without_gzip() {
    let server = grpc_server(r#"{"rules": []}"#);
    for compression in ["none", "gzip"] {
        server.reset().expect("reset");
        assert_eq!(export_span(&server, compression, "hello"), "SUCCESS");
        assert_eq!(span_names(&server), ["hello"], "{compression}");
        let query = RequestsQuery::default();
        let requests = server.requests(&query).requests;
        let encoding = (compression == "gzip").then_some("gzip");
        assert_eq!(requests[0].content_encoding.as_deref(), encoding);
        let resource = server.events()[0]
            .event
            .resource
            .clone()
            .expect("a resource");
        assert_eq!(resource["service.name"], "python-conformance");
    }
}

#[test]
fn unavailable_twice_is_retried_by_the_python_exporter_and_stored_once() {
    let server = grpc_server(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "first": 2}}, "then": {{"status": 503}}}}]}}"#
    ));

    assert_eq!(export_span(&server, "none", "retried"), "SUCCESS");

    assert_eq!(span_names(&server), ["retried"]);
    assert_eq!(outcomes(&server), ["UNAVAILABLE", "UNAVAILABLE", "OK"]);
}

#[test]
fn a_non_retryable_status_is_not_retried_by_the_python_exporter() {
    let server = grpc_server(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}"}}, "then": {{"status": 400}}}}]}}"#
    ));

    assert_eq!(export_span(&server, "none", "refused"), "FAILURE");

    assert!(span_names(&server).is_empty());
    assert_eq!(outcomes(&server), ["INVALID_ARGUMENT"]);
}

#[test]
fn a_reset_after_store_is_retried_by_the_python_exporter_and_deduped() {
    let server = grpc_server(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "nth": 1}}, "then": "reset_after_store"}}]}}"#
    ));

    assert_eq!(
        export_span(&server, "none", "acknowledgement lost"),
        "SUCCESS"
    );

    assert_eq!(span_names(&server), ["acknowledgement lost"]);
    assert_eq!(outcomes(&server), ["reset", "OK"]);
    let stats = server.stats();
    assert_eq!((stats.duplicates, stats.faults.reset_after_store), (1, 1));
}
