//! Spool integration tests: real processes killed with SIGKILL, random damage on disk, several processes
//! sharing one directory. Child processes are this test binary re-executed on [`child_process`] with an environment
//! variable naming their role.

mod corruption;
mod crash;
mod losses;
mod multi_process;
mod shared_view;

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use flush_core::spool::{Spool, SpoolConfig, SyncPolicy};

/// The environment variable that makes [`child_process`] run a child role.
const CHILD_ROLE: &str = "FLUSH_SPOOL_TEST_CHILD";
/// The spool directory of a child.
const CHILD_DIR: &str = "FLUSH_SPOOL_TEST_DIR";
/// A tag the child puts in its records (its iteration or process number).
const CHILD_TAG: &str = "FLUSH_SPOOL_TEST_TAG";
/// Lines of the child protocol start with this, to tell them from the test harness's output.
const LINE_PREFIX: &str = "@spool ";

/// The entry point of child processes, in the role the environment variable names. Run as an ordinary test (without
/// it), it checks the mechanism the other tests rely on: a child started with [`spawn_child`] runs its role and
/// reports back.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        let temporary = tempfile::tempdir().expect("tempdir");
        let mut child = spawn_child("echo", temporary.path(), "tag-42");
        let lines = read_protocol_lines(&mut child);
        assert!(child.wait().expect("wait").success());
        assert_eq!(lines, ["echo tag-42"]);
        return;
    };
    let dir = std::env::var(CHILD_DIR).expect("child dir");
    let tag = std::env::var(CHILD_TAG).expect("child tag");
    match role.as_str() {
        "echo" => report(&format!("echo {tag}")),
        "crash" => crash::child(Path::new(&dir), &tag),
        "multi" => multi_process::child(Path::new(&dir), &tag),
        "locks" => losses::child(Path::new(&dir), &tag),
        #[cfg(feature = "opentelemetry")]
        "otel" => crate::reporter::otel::crash_child(Path::new(&dir), &tag),
        other => panic!("unknown child role {other}"),
    }
}

/// Starts this test binary as a child in `role`, its stdout piped. A failed spawn is retried a few times: with a
/// target directory shared by concurrent builds, the binary can be replaced (`ETXTBSY`, `ENOENT`) for a moment.
pub(crate) fn spawn_child(role: &str, dir: &Path, tag: &str) -> Child {
    let mut attempt = 0;
    loop {
        let spawned = Command::new(std::env::current_exe().expect("current exe"))
            .args([
                "spool::child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env(CHILD_ROLE, role)
            .env(CHILD_DIR, dir)
            .env(CHILD_TAG, tag)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => return child,
            Err(error) if attempt < 20 => {
                attempt += 1;
                eprintln!("spawning a child failed ({error}); retrying");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(error) => panic!("cannot spawn a child: {error}"),
        }
    }
}

/// Writes one protocol line (one `write` system call: stdout is line-buffered).
pub(crate) fn report(line: &str) {
    println!("{LINE_PREFIX}{line}");
}

/// Reports delivered records as one `D` protocol line.
fn report_delivered(records: &[Vec<u8>]) {
    let texts: Vec<String> = records
        .iter()
        .map(|record| String::from_utf8_lossy(record).into_owned())
        .collect();
    report(&format!("D {}", texts.join(" ")));
}

/// Reads a child's stdout to its end and returns its complete protocol lines.
pub(crate) fn read_protocol_lines(child: &mut Child) -> Vec<String> {
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut output)
        .expect("read output");
    protocol_lines(&output)
}

/// The complete protocol lines of a child's output (a line cut by SIGKILL is ignored).
fn protocol_lines(output: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|line| line.strip_prefix(LINE_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// A spool configuration for the tests: small segments, so rollover happens.
fn test_config(dir: &Path, sync: SyncPolicy) -> SpoolConfig {
    let mut config = SpoolConfig::new(dir);
    config.sync = sync;
    config.max_segment_bytes = 4096;
    config
}

/// Delivers and acknowledges everything available; returns the records as strings, in order.
fn drain(spool: &Spool) -> Vec<String> {
    // A child being spawned by another test holds copies of this process's descriptors until it executes, and with
    // them its locks: the delivery lock can look taken for a moment.
    let mut attempts = 0;
    let mut reader = loop {
        match spool.try_deliver().expect("try_deliver") {
            Some(reader) => break reader,
            None if attempts < 200 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            None => panic!("the delivery lock stays taken"),
        }
    };
    let mut out = Vec::new();
    while let Some(batch) = reader.next_batch(64, 1 << 20).expect("next_batch") {
        out.extend(
            batch
                .records
                .into_iter()
                .map(|record| match String::from_utf8(record) {
                    Ok(text) => text,
                    Err(error) => panic!("a record that was never written: {:?}", error.as_bytes()),
                }),
        );
        reader.ack(&batch.position).expect("ack");
    }
    out
}

/// Asserts that no record appears twice.
fn assert_unique<'a>(records: impl IntoIterator<Item = &'a String>) -> HashSet<&'a String> {
    let mut seen = HashSet::new();
    for record in records {
        assert!(seen.insert(record), "{record} handed out twice");
    }
    seen
}
