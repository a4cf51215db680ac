//! The `fake-ingest` binary: help, the startup line, exit code 2 for bad flags and bad plan files, shorthands.

use assert_cmd::Command;
use predicates::prelude::*;

use crate::support::{Binary, get_json};

fn fake_ingest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
}

#[test]
fn help_lists_the_flags_and_shorthands() {
    fake_ingest()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--listen <ADDR>"))
        .stdout(predicate::str::contains("--faults <PLAN.json>"))
        .stdout(predicate::str::contains("--data-dir <DIR>"))
        .stdout(predicate::str::contains("--reset-after-store <RATE>"))
        .stdout(predicate::str::contains("--crash-after <N>"))
        .stdout(predicate::str::contains("--otlp-grpc-listen <ADDR>"))
        .stdout(predicate::str::contains("--upstream <URL>"))
        .stdout(predicate::str::contains("--upstream-grpc <URL>"));
}

#[test]
fn the_grpc_listener_prints_its_own_line() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--otlp-grpc-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let lines = crate::support::stdout_lines(&mut child);
    let mut printed = Vec::new();
    while printed.len() < 2 {
        match lines.recv_timeout(crate::support::PATIENCE) {
            Ok(line) => printed.push(line),
            Err(error) => panic!("only {printed:?} before {error}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        printed[0].starts_with("listening on http://127.0.0.1:"),
        "{printed:?}"
    );
    assert!(
        printed[1].starts_with("otlp grpc listening on http://127.0.0.1:"),
        "{printed:?}"
    );
}

#[test]
fn the_only_stdout_line_at_start_is_the_listening_url() {
    let binary = Binary::start(&[]);

    assert!(
        binary.url.starts_with("http://127.0.0.1:"),
        "{}",
        binary.url
    );
    let health: serde_json::Value = get_json(&binary.url, "/_fake/health");
    assert_eq!(health["status"], "ok");
}

#[test]
fn a_bad_flag_exits_with_code_2_and_names_it() {
    for (args, named) in [
        (vec!["--listen", "not-an-address"], "--listen"),
        (vec!["--status", "200"], "--status"),
        (vec!["--reset-after-store", "1.5"], "--reset-after-store"),
        (vec!["--max-body-bytes", "0"], "--max-body-bytes"),
        (vec!["--max-events-kept", "0"], "--max-events-kept"),
        (vec!["--latency-ms", "0..86400001"], "--latency-ms"),
        (vec!["--retry-after", "86401"], "--retry-after"),
        (vec!["--no-such-flag"], "--no-such-flag"),
        (vec!["--upstream", "https://example.com"], "upstream"),
    ] {
        fake_ingest()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(named));
    }
}

#[test]
fn a_bad_plan_file_exits_with_code_2_saying_what_and_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let syntax = dir.path().join("syntax.json");
    std::fs::write(&syntax, "{\"rules\": [\n  {\"then\": \"explode\"}\n]}").expect("written");
    let range = dir.path().join("range.json");
    std::fs::write(&range, r#"{"rules": [{}, {"when": {"probability": 2}}]}"#).expect("written");
    let missing = dir.path().join("missing.json");
    let absurd = dir.path().join("absurd.json");
    std::fs::write(
        &absurd,
        r#"{"rules": [{"latency": {"fixed_ms": 18446744073709551615}}]}"#,
    )
    .expect("written");
    let array = dir.path().join("array.json");
    std::fs::write(&array, r#"[[{"then": "hang"}]]"#).expect("written");

    fake_ingest()
        .arg("--faults")
        .arg(&syntax)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("syntax.json"))
        .stderr(predicate::str::contains("unknown action \"explode\""))
        .stderr(predicate::str::contains("line 2"));
    fake_ingest()
        .arg("--faults")
        .arg(&range)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "rules[1]: when.probability 2 is not in [0, 1]",
        ));
    fake_ingest()
        .arg("--faults")
        .arg(&absurd)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "rules[0]: latency.fixed_ms 18446744073709551615 is more than a day (86400000 ms)",
        ));
    fake_ingest()
        .arg("--faults")
        .arg(&array)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the plan must be a JSON object, not an array",
        ));
    fake_ingest()
        .arg("--faults")
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.json"));
}

#[test]
fn shorthands_become_plan_rules() {
    let binary = Binary::start(&[
        "--outage-ms",
        "0..100",
        "--crash-after",
        "1000",
        "--status",
        "503@0.25",
        "--retry-after",
        "2",
        "--reset-after-store",
        "0.1",
        "--reset-before-store",
        "1",
        "--hang",
        "0.01",
        "--latency-ms",
        "5..50",
    ]);

    let plan: serde_json::Value = get_json(&binary.url, "/_fake/faults");

    insta::assert_json_snapshot!("shorthand_plan", plan);
}
