//! Durability is chosen: what each storage mode promises, and errors that keep the spool's typed cause (and with it
//! whether to retry) reachable through `std::error::Error::source`.

use std::error::Error;
use std::time::Duration;

use flush_core::spool::SpoolError;
use flush_core::{
    CheckpointError, Config, Event, FlushOutcome, Reporter, ShutdownOutcome, StartError,
};

use super::{memory_config, server, spool_config, start};

const FLUSH: Duration = Duration::from_secs(20);

/// The error and every source below it, outermost first.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&error| error.source())
}

/// The first `SpoolError` in the chain of `error`.
fn spool_error_in<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a SpoolError> {
    chain(error).find_map(|error| error.downcast_ref::<SpoolError>())
}

#[test]
fn a_failed_spool_write_reaches_checkpoint_with_the_typed_spool_error_as_its_source() {
    let server = server("[]");
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path().join("spool");
    let reporter = start(spool_config(&server, &dir));
    // Nothing is recorded yet, so no worker re-creates the directory: a regular file takes its place, and the
    // spool's first segment cannot be created.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    (0..3).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    let error = reporter.checkpoint().unwrap_err();

    assert!(matches!(error, CheckpointError::Store(_)), "{error:?}");
    let spool_error = spool_error_in(&error).expect("the spool's error is a source");
    assert_eq!(error.is_retryable(), spool_error.is_retryable());
    assert!(
        chain(&error).any(|error| error.downcast_ref::<std::io::Error>().is_some()),
        "the operating system's error is reachable too: {error:?}"
    );
    assert_eq!(reporter.stats().dropped.store_error, 3);

    // Once the cause is gone, a later checkpoint succeeds and what is recorded from then on is delivered.
    std::fs::remove_file(&dir).unwrap();
    (3..5).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.checkpoint().unwrap();
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 2);
    let stats = reporter.stats();
    assert!(stats.identity_holds(), "{stats:?}");
    server.shutdown();
}

#[test]
fn a_spool_path_that_is_a_file_fails_start_with_the_typed_spool_error_as_its_source() {
    let server = server("[]");
    let temporary = tempfile::tempdir().unwrap();
    let path = temporary.path().join("spool");
    std::fs::write(&path, b"not a directory").unwrap();
    let config = spool_config(&server, &path)
        .distinct_id("given")
        .build()
        .unwrap();

    let error = Reporter::start(config).unwrap_err();

    assert!(matches!(error, StartError::Spool { .. }), "{error:?}");
    let spool_error = spool_error_in(&error).expect("the spool's error is a source");
    assert!(
        matches!(spool_error, SpoolError::NotADirectory { .. }),
        "{spool_error:?}"
    );
    assert!(!spool_error.is_retryable());
    assert!(!error.is_retryable());
    server.shutdown();
}

#[test]
fn an_installation_id_that_cannot_be_created_fails_start_with_a_classified_spool_error() {
    let server = server("[]");
    let temporary = tempfile::tempdir().unwrap();
    let file = temporary.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    // No distinct id given: it is generated into the spool directory, which cannot exist under a regular file.
    let config = spool_config(&server, &file.join("spool")).build().unwrap();

    let error = Reporter::start(config).unwrap_err();

    assert!(
        matches!(error, StartError::InstallationId { .. }),
        "{error:?}"
    );
    let spool_error = spool_error_in(&error).expect("the classified error is a source");
    assert_eq!(error.is_retryable(), spool_error.is_retryable());
    assert!(
        chain(&error).any(|error| error.downcast_ref::<std::io::Error>().is_some()),
        "{error:?}"
    );
    server.shutdown();
}

#[test]
fn without_a_storage_choice_no_reporter_starts() {
    let error = Config::builder("http://127.0.0.1:1")
        .distinct_id("me")
        .build()
        .unwrap_err();

    assert!(
        matches!(error, flush_core::ConfigError::StorageNotChosen),
        "{error:?}"
    );
}

#[test]
fn in_memory_only_mode_what_shutdown_could_not_send_stays_counted_as_pending() {
    let failing = server(r#"[{"then": {"status": 503}}]"#);
    let reporter = start(memory_config(&failing));
    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.checkpoint().unwrap();

    let outcome = reporter.shutdown(Duration::from_millis(300));

    assert_eq!(outcome, ShutdownOutcome::DeadlineReached);
    let stats = reporter.stats();
    assert_eq!((stats.acknowledged, stats.pending.in_store), (0, 10));
    assert!(stats.identity_holds(), "{stats:?}");
    let error = reporter.checkpoint().unwrap_err();
    assert!(matches!(error, CheckpointError::ShutDown), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(failing.stats().events_unique, 0);
    failing.shutdown();
}
