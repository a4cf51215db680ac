//! How the application's blocking calls ended: [`FlushOutcome`] and [`ShutdownOutcome`].
//!
//! They live below the reporter, the spooler and the sender, which all pass them along (the reporter hands a reply
//! channel to the spooler, which forwards it to the sender), so that types flow one way between the three.

/// How [`Reporter::flush`](crate::Reporter::flush) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum FlushOutcome {
    /// Everything recorded before the flush was acknowledged by the server (or dead-lettered, or dropped).
    Acknowledged,
    /// The timeout passed first (or the breaker or a backoff holds sending past it); the rest stays pending.
    TimedOut,
}

/// How [`Reporter::shutdown`](crate::Reporter::shutdown) ended. In every case what was not sent stays in the spool for
/// the next run; in memory-only mode it is never sent, and the final [`Stats::pending`](crate::Stats::pending) counts
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ShutdownOutcome {
    /// Everything recorded was acknowledged (or dead-lettered, or dropped).
    Drained,
    /// The deadline came first, or the server could not be reached before it.
    DeadlineReached,
    /// The event limit of [`Reporter::shutdown_bounded`](crate::Reporter::shutdown_bounded) was reached.
    LimitReached,
    /// The reporter was already shut down.
    AlreadyShutDown,
}
