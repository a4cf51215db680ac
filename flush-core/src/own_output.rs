//! The guards that keep flush-core's adapters (the `tracing` layer, the OpenTelemetry processors) from recording
//! flush-core's own output, which would feed back into the spool: its own targets, anything emitted on the
//! reporter's worker threads (named `flush-core-…` in `reporter.rs`), and anything emitted on a thread while an
//! adapter is already recording on it (a field's `Debug` impl that logs, say).

use std::cell::Cell;

/// Targets under this prefix are flush-core's own output: never recorded, whatever the configuration says.
pub(crate) const OWN_TARGET: &str = "flush_core";

/// The reporter's worker threads are named with this prefix (see `Reporter::start` and `flush_async` in
/// `reporter.rs`); nothing emitted on them is recorded.
pub(crate) const WORKER_THREAD_PREFIX: &str = "flush-core-";

/// Whether `target` is `prefix` or a path under it (`prefix::…`): `hyper` covers `hyper::proto`, not `hyper_util`.
pub(crate) fn is_under(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// This thread's relation to the recorders.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    /// Not looked at yet.
    Unknown,
    /// An application thread, not recording now.
    Idle,
    /// An application thread on which a recorder is recording now.
    Recording,
    /// One of the reporter's worker threads: never records.
    Worker,
}

thread_local! {
    static THREAD_STATE: Cell<ThreadState> = const { Cell::new(ThreadState::Unknown) };
}

/// Marks this thread as recording until dropped. [`enter`](Self::enter) refuses (returns `None`) on a worker thread,
/// while the thread is already recording, and while its locals are being destroyed.
pub(crate) struct RecordingGuard(());

impl RecordingGuard {
    pub(crate) fn enter() -> Option<Self> {
        THREAD_STATE
            .try_with(|state| {
                let current = match state.get() {
                    ThreadState::Unknown => {
                        let worker = std::thread::current()
                            .name()
                            .is_some_and(|name| name.starts_with(WORKER_THREAD_PREFIX));
                        if worker {
                            ThreadState::Worker
                        } else {
                            ThreadState::Idle
                        }
                    }
                    known => known,
                };
                if current == ThreadState::Idle {
                    state.set(ThreadState::Recording);
                    Some(Self(()))
                } else {
                    state.set(current);
                    None
                }
            })
            .ok()
            .flatten()
    }
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        let _ = THREAD_STATE.try_with(|state| state.set(ThreadState::Idle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_under_a_prefix_only_on_whole_path_segments() {
        assert!(is_under("hyper", "hyper"));
        assert!(is_under("hyper::proto::h1", "hyper"));
        assert!(!is_under("hyper_util", "hyper"));
        assert!(!is_under("hype", "hyper"));
        assert!(is_under("flush_core::spool::catalog", OWN_TARGET));
        assert!(!is_under("flush_core_extras", OWN_TARGET));
    }

    #[test]
    fn the_guard_refuses_to_enter_twice_on_one_thread_and_frees_on_drop() {
        std::thread::Builder::new()
            .name("app-thread".into())
            .spawn(|| {
                let outer = RecordingGuard::enter();
                assert!(outer.is_some());
                assert!(RecordingGuard::enter().is_none());
                drop(outer);
                assert!(RecordingGuard::enter().is_some());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn the_guard_never_enters_on_a_reporter_worker_thread() {
        std::thread::Builder::new()
            .name(format!("{WORKER_THREAD_PREFIX}sender"))
            .spawn(|| {
                assert!(RecordingGuard::enter().is_none());
                assert!(RecordingGuard::enter().is_none());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
