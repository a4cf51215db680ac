//! The reporter's error types. Expected conditions (a full queue, a server that is down, a rejected event) are never
//! errors: they are counters in [`Stats`](crate::Stats). Errors are only what the caller can act on.

use std::path::PathBuf;

use crate::spool::SpoolError;

/// A [`Config`](crate::Config) that cannot work, found by [`ConfigBuilder::build`](crate::ConfigBuilder::build).
///
/// Not retryable: fix the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("endpoint {endpoint:?} is not a valid http:// or https:// url")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        #[source]
        source: EndpointError,
    },
    /// The sink cannot work with the endpoint or with its own settings.
    #[error("the {sink} sink cannot be used with endpoint {endpoint:?}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// The endpoint as given.
        endpoint: String,
        /// The sink's reason.
        #[source]
        source: crate::sink::SinkError,
    },
    /// The distinct id was given but is empty (the protocol requires a non-empty `distinct_id`).
    #[error("distinct_id is empty")]
    EmptyDistinctId,
    /// Neither a spool nor memory-only mode was chosen: where unsent events wait is never chosen by default.
    #[error(
        "no storage chosen: call spool_dir(..) or spool(..) to keep unsent events on disk across crashes and restarts, \
         or memory_only(..) to keep them in memory only (lost when the process exits)"
    )]
    StorageNotChosen,
    /// Memory-only mode has no directory to keep a generated installation id in, so a distinct id must be given.
    #[error(
        "memory-only mode needs an explicit distinct_id (there is no spool directory to keep one in)"
    )]
    DistinctIdRequired,
    /// A duration setting is zero or out of order (e.g. the initial backoff is above the maximum).
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The setting's name, as the builder method is called.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why an endpoint is not a usable URL (the source of [`ConfigError::InvalidEndpoint`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The URL parser refused it.
    #[error("it does not parse as a url")]
    Parse(#[source] url::ParseError),
    /// The scheme is not `http` or `https`.
    #[error("its scheme {0:?} is not http or https")]
    Scheme(String),
    /// It has no host.
    #[error("it has no host")]
    NoHost,
}

/// Starting a [`Reporter`](crate::Reporter) failed.
///
/// Retryable only if the cause is transient (a full disk, a directory deleted meanwhile):
/// [`is_retryable`](Self::is_retryable) says which. The spool's typed [`SpoolError`] is the
/// [`source`](std::error::Error::source) of the spool and installation id variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The spool could not be opened.
    ///
    /// Retry: as the spool error says ([`SpoolError::is_retryable`]).
    #[error("cannot open the spool in {dir}")]
    Spool {
        /// The spool directory.
        dir: PathBuf,
        /// The spool's error.
        #[source]
        source: SpoolError,
    },
    /// The installation id file in the spool directory could not be read or created.
    ///
    /// Retry: as the spool error says ([`SpoolError::is_retryable`]); the I/O error is classified as the spool's
    /// own are.
    #[error("cannot read or create the installation id in {dir}")]
    InstallationId {
        /// The spool directory.
        dir: PathBuf,
        /// The file access error, classified.
        #[source]
        source: SpoolError,
    },
    /// A worker thread could not be spawned.
    ///
    /// Retry: yes, later; the system is out of threads or memory for now.
    #[error("cannot spawn the reporter's worker thread")]
    Thread(#[source] std::io::Error),
}

impl StartError {
    /// Whether starting again later can succeed without outside intervention (see each variant).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Spool { source, .. } | Self::InstallationId { source, .. } => {
                source.is_retryable()
            }
            Self::Thread(_) => true,
        }
    }
}

/// [`Reporter::checkpoint`](crate::Reporter::checkpoint) could not make the events durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The reporter was shut down (or its worker stopped), so nothing more reaches the store.
    ///
    /// Retry: no.
    #[error("the reporter is shut down")]
    ShutDown,
    /// The spool refused the write or the sync. Events of a failed write are dropped and counted in
    /// [`Dropped::store_error`](crate::Dropped::store_error); after a failed sync they stay pending, written but not
    /// yet synced. Only the disk spool fails this way: in memory-only mode a checkpoint fails only with
    /// [`ShutDown`](Self::ShutDown).
    ///
    /// Retry: as the spool error says ([`SpoolError::is_retryable`]): a later checkpoint can succeed once the cause
    /// clears (the dropped events stay dropped).
    #[error("the spool failed to store or sync the events")]
    Store(#[source] SpoolError),
}

impl CheckpointError {
    /// Whether a later checkpoint can succeed without outside intervention (see each variant).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ShutDown => false,
            Self::Store(source) => source.is_retryable(),
        }
    }
}

/// `context`, then the error's message and those of its sources, separated by `: `: the one line for
/// [`Stats::last_error`](crate::Stats::last_error), which is text for humans. Errors handed to the application keep
/// their sources instead.
pub(crate) fn describe(context: &str, error: &dyn std::error::Error) -> String {
    format!("{context}: {}", chain_text(error))
}

/// The error's message and those of its sources, separated by `: ` (for text that crosses into something that keeps
/// no source chain: a request's failure reason, the OpenTelemetry SDK's error).
pub(crate) fn chain_text(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_puts_every_cause_on_one_line_after_the_context() {
        let error = CheckpointError::Store(SpoolError::Io {
            path: PathBuf::from("/spool/a.seg"),
            source: std::io::Error::other("disk on fire"),
        });

        assert_eq!(
            describe("spool append failed", &error),
            "spool append failed: the spool failed to store or sync the events: i/o error on /spool/a.seg: \
             disk on fire"
        );
        assert!(error.is_retryable());
    }
}
