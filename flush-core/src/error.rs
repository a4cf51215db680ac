//! The reporter's error types. Expected conditions (a full queue, a server that is down, a rejected event) are never
//! errors: they are counters in [`Stats`](crate::Stats). Errors are only what the caller can act on.

use std::path::PathBuf;

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
/// Retryable only if the cause is transient (a full disk, a permission fixed meanwhile).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The spool could not be opened.
    #[error("cannot open the spool in {dir}")]
    Spool {
        /// The spool directory.
        dir: PathBuf,
        /// The spool's error.
        #[source]
        source: crate::spool::SpoolError,
    },
    /// The installation id file in the spool directory could not be read or created.
    #[error("cannot read or create the installation id in {dir}")]
    InstallationId {
        /// The spool directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread could not be spawned.
    #[error("cannot spawn the reporter's worker thread")]
    Thread(#[source] std::io::Error),
}

/// [`Reporter::checkpoint`](crate::Reporter::checkpoint) could not make the events durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The reporter was shut down (or its worker stopped), so nothing more reaches the spool.
    #[error("the reporter is shut down")]
    ShutDown,
    /// The store refused the write or the sync; the events are counted as dropped or still in memory.
    #[error("the spool failed to store or sync the events: {0}")]
    Store(String),
}
