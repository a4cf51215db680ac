//! The reporter's configuration: one [`ConfigBuilder`], validated once in [`ConfigBuilder::build`].
//!
//! Every setting has a default taken from the design documents: batches of 50 events or 5 s (services), a 5 s request
//! timeout, drop-newest when the in-memory queue is full (as Pachka and OpenTelemetry do). The one choice without a
//! default is where unsent events wait: a spool directory (they survive crashes and restarts) or memory-only mode
//! (they are lost when the process exits); [`ConfigBuilder::build`] refuses a configuration that makes neither.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, EndpointError};
use crate::sink::{Ingest, Sink, Url};
use crate::spool::{SpoolConfig, SyncPolicy};

/// When batches go to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushMode {
    /// For services: a batch goes out as soon as `batch_size` events are waiting or the oldest waiting event is
    /// `batch_delay` old, whichever comes first (the dual trigger).
    Background,
    /// For interactive programs: send only at [`Reporter::idle`](crate::Reporter::idle), explicit flushes and
    /// shutdown, never while the application is busy, unless the backlog passes `high_water` events or the oldest
    /// waiting event is older than `max_delay`.
    IdleOnly {
        /// Send anyway once this many events wait to be sent.
        high_water: NonZeroUsize,
        /// Send anyway once the oldest waiting event is this old.
        max_delay: Duration,
    },
}

impl FlushMode {
    /// Idle-only mode with its defaults: 1000 events high-water mark, 5 minutes maximum delay.
    pub fn idle_only() -> Self {
        Self::IdleOnly {
            high_water: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            max_delay: Duration::from_secs(300),
        }
    }
}

/// What [`Reporter::record`](crate::Reporter::record) does when the in-memory queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DropPolicy {
    /// Drop the event being recorded (the default, as Pachka and OpenTelemetry do).
    #[default]
    DropNewest,
    /// Evict the oldest queued event to make room for the new one.
    DropOldest,
    /// Once the queue is half full, keep only one event in `keep_one_in`; when it is full, drop the newest.
    Sample {
        /// Keep one event in this many while the queue is more than half full.
        keep_one_in: NonZeroU32,
    },
}

/// Bounds of the in-memory queue between `record()` and the spool: both must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// At most this many events wait in memory.
    pub max_events: NonZeroUsize,
    /// At most this many bytes (estimated from the event's strings and values) wait in memory.
    pub max_bytes: NonZeroUsize,
}

impl QueueLimits {
    /// The largest `max_events` a configuration accepts (8 388 608).
    pub const MAX_EVENTS: usize = 1 << 23;
    /// The largest `max_bytes` a configuration accepts (64 GiB).
    pub const MAX_BYTES: usize = 1 << 36;
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_events: nz(8192),
            max_bytes: nz(16 << 20),
        }
    }
}

/// Bounds of the in-memory store used instead of the spool in memory-only mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// At most this many serialized events are kept; more are dropped (counted as `store_full`).
    pub max_events: NonZeroUsize,
    /// At most this many serialized bytes are kept.
    pub max_bytes: NonZeroUsize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_events: nz(10_000),
            max_bytes: nz(32 << 20),
        }
    }
}

/// Exponential backoff with full jitter between retries of a batch, and how much of `Retry-After` is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first retry's random delay.
    pub initial_backoff: Duration,
    /// The largest ceiling: the ceiling doubles per failed attempt up to this.
    pub max_backoff: Duration,
    /// A server's `Retry-After` is honoured up to this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The circuit breaker in front of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Open after this many consecutive failed requests.
    pub failure_threshold: NonZeroU32,
    /// Stay open this long before a probe.
    pub cooldown: Duration,
    /// A failed probe doubles the cooldown, up to this.
    pub max_cooldown: Duration,
    /// The half-open probe carries at most this many events.
    pub probe_events: NonZeroUsize,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(600),
            probe_events: nz(1),
        }
    }
}

/// Where serialized events wait until the server acknowledges them.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    /// The crash-safe disk spool.
    Spool(SpoolConfig),
    /// A bounded in-memory store: nothing survives the process.
    Memory(MemoryLimits),
}

/// A validated reporter configuration. Build it with [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL requests go to: the sink's, from the endpoint.
    pub(crate) url: Url,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) storage: Storage,
    pub(crate) distinct_id: Option<String>,
    pub(crate) batch_size: NonZeroUsize,
    pub(crate) max_batch_bytes: NonZeroUsize,
    pub(crate) batch_delay: Duration,
    pub(crate) flush_mode: FlushMode,
    pub(crate) queue: QueueLimits,
    pub(crate) drop_policy: DropPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerPolicy,
    pub(crate) request_timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) poll_interval: Duration,
}

impl Config {
    /// Starts a configuration for the backend at `endpoint`. With the default [`Ingest`] sink, batches are posted
    /// to `endpoint` exactly as written (e.g. `https://telemetry.example.com/ingest`); other sinks document the URL
    /// they derive from it ([`PostHog`](crate::sink::PostHog): `{endpoint}/batch/`,
    /// [`OtlpLogs`](crate::sink::OtlpLogs): `{endpoint}/v1/logs`). Choose the sink with [`ConfigBuilder::sink`] and
    /// the storage with [`ConfigBuilder::spool_dir`], [`ConfigBuilder::spool`] or [`ConfigBuilder::memory_only`];
    /// without one, [`ConfigBuilder::build`] fails with [`ConfigError::StorageNotChosen`].
    pub fn builder(endpoint: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            endpoint: endpoint.into(),
            sink: Arc::new(Ingest),
            storage: None,
            sync: None,
            distinct_id: None,
            batch_size: nz(50),
            max_batch_bytes: nz(512 << 10),
            batch_delay: Duration::from_secs(5),
            flush_mode: FlushMode::Background,
            queue: QueueLimits::default(),
            drop_policy: DropPolicy::default(),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            request_timeout: Duration::from_secs(5),
            gzip: false,
            poll_interval: Duration::from_millis(20),
        }
    }

    /// The spool directory, or `None` in memory-only mode.
    pub fn spool_dir(&self) -> Option<&std::path::Path> {
        match &self.storage {
            Storage::Spool(spool) => Some(&spool.dir),
            Storage::Memory(_) => None,
        }
    }

    /// The URL batches are posted to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The sink that encodes batches and classifies answers.
    pub fn sink(&self) -> &dyn Sink {
        &*self.sink
    }
}

/// Builds a [`Config`]; every method has a documented default, except the storage: call one of
/// [`spool_dir`](Self::spool_dir), [`spool`](Self::spool) or [`memory_only`](Self::memory_only).
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    endpoint: String,
    sink: Arc<dyn Sink>,
    storage: Option<Storage>,
    sync: Option<SyncPolicy>,
    distinct_id: Option<String>,
    batch_size: NonZeroUsize,
    max_batch_bytes: NonZeroUsize,
    batch_delay: Duration,
    flush_mode: FlushMode,
    queue: QueueLimits,
    drop_policy: DropPolicy,
    retry: RetryPolicy,
    breaker: BreakerPolicy,
    request_timeout: Duration,
    gzip: bool,
    poll_interval: Duration,
}

impl ConfigBuilder {
    /// The backend: [`Ingest`] (the default), [`PostHog`](crate::sink::PostHog),
    /// [`OtlpLogs`](crate::sink::OtlpLogs) or a [`Sink`] of your own. The spool does not depend on it: a spool
    /// written under one sink is delivered by another.
    pub fn sink(self, sink: impl Sink) -> Self {
        self.shared_sink(Arc::new(sink))
    }

    /// [`sink`](Self::sink) for a sink chosen at run time.
    pub fn shared_sink(mut self, sink: Arc<dyn Sink>) -> Self {
        self.sink = sink;
        self
    }

    /// Keeps events in the crash-safe spool in `dir` with the spool's default limits.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Some(Storage::Spool(SpoolConfig::new(dir)));
        self
    }

    /// Keeps events in a spool configured in full (limits, segment size, retention).
    pub fn spool(mut self, spool: SpoolConfig) -> Self {
        self.storage = Some(Storage::Spool(spool));
        self
    }

    /// Keeps events only in a bounded memory store: nothing survives the process. What the server has not
    /// acknowledged when the process exits (after [`Reporter::shutdown`](crate::Reporter::shutdown), `pending` in
    /// its final [`Stats`](crate::Stats)) is lost, and [`Reporter::checkpoint`](crate::Reporter::checkpoint) only
    /// waits until events are in the store. There is no dead-letter file: rejected events are only counted. Needs a
    /// [`distinct_id`](Self::distinct_id).
    pub fn memory_only(mut self, limits: MemoryLimits) -> Self {
        self.storage = Some(Storage::Memory(limits));
        self
    }

    /// The spool's sync policy (overrides the one in [`spool`](Self::spool)); ignored in memory-only mode.
    pub fn sync_policy(mut self, sync: SyncPolicy) -> Self {
        self.sync = Some(sync);
        self
    }

    /// The `distinct_id` sent with every event. Default: an installation id generated once and kept in the spool
    /// directory (file `installation_id`).
    pub fn distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }

    /// Events per request (default 50; a CLI would use 25).
    pub fn batch_size(mut self, batch_size: NonZeroUsize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Serialized bytes per request before compression (default 512 KiB); a batch holds at least one event.
    pub fn max_batch_bytes(mut self, max_batch_bytes: NonZeroUsize) -> Self {
        self.max_batch_bytes = max_batch_bytes;
        self
    }

    /// In background mode, the longest an event waits for its batch to fill (default 5 s).
    pub fn batch_delay(mut self, batch_delay: Duration) -> Self {
        self.batch_delay = batch_delay;
        self
    }

    /// When batches go out (default [`FlushMode::Background`]).
    pub fn flush_mode(mut self, flush_mode: FlushMode) -> Self {
        self.flush_mode = flush_mode;
        self
    }

    /// Bounds of the in-memory queue (default 8192 events, 16 MiB).
    pub fn queue_limits(mut self, queue: QueueLimits) -> Self {
        self.queue = queue;
        self
    }

    /// What `record()` drops when the queue is full (default [`DropPolicy::DropNewest`]).
    pub fn drop_policy(mut self, drop_policy: DropPolicy) -> Self {
        self.drop_policy = drop_policy;
        self
    }

    /// Backoff between retries (default 100 ms doubling to 30 s, `Retry-After` honoured up to 60 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The circuit breaker (default: open after 5 failures for 30 s, doubling to 10 min, 1-event probe).
    pub fn breaker(mut self, breaker: BreakerPolicy) -> Self {
        self.breaker = breaker;
        self
    }

    /// The whole-request timeout (default 5 s). Shutdown shortens it to what is left of its deadline.
    pub fn request_timeout(mut self, request_timeout: Duration) -> Self {
        self.request_timeout = request_timeout;
        self
    }

    /// Compress request bodies with gzip (default off).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// How often the worker threads look at the queue and their timers (default 20 ms). `record()` never wakes
    /// them per event; it wakes them only when the queue crosses a threshold.
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`ConfigError`] names the first setting that cannot work, or [`ConfigError::StorageNotChosen`] if neither a
    /// spool nor memory-only mode was chosen.
    pub fn build(self) -> Result<Config, ConfigError> {
        let endpoint =
            parse_endpoint(&self.endpoint).map_err(|source| ConfigError::InvalidEndpoint {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let url = self
            .sink
            .url(&endpoint)
            .map_err(|source| ConfigError::Sink {
                sink: self.sink.name().to_owned(),
                endpoint: self.endpoint.clone(),
                source,
            })?;
        if self.distinct_id.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::EmptyDistinctId);
        }
        let storage = match self.storage {
            Some(Storage::Spool(mut spool)) => {
                if let Some(sync) = self.sync {
                    spool.sync = sync;
                }
                Storage::Spool(spool)
            }
            Some(Storage::Memory(limits)) => Storage::Memory(limits),
            None => return Err(ConfigError::StorageNotChosen),
        };
        if matches!(storage, Storage::Memory(_)) && self.distinct_id.is_none() {
            return Err(ConfigError::DistinctIdRequired);
        }
        let positive = |setting: &'static str, value: Duration| {
            if value.is_zero() {
                Err(ConfigError::InvalidSetting {
                    setting,
                    reason: "must be greater than zero",
                })
            } else if value > LONGEST_SETTING {
                Err(ConfigError::InvalidSetting {
                    setting,
                    reason: "must be at most 30 days",
                })
            } else {
                Ok(())
            }
        };
        positive("batch_delay", self.batch_delay)?;
        positive("request_timeout", self.request_timeout)?;
        positive("poll_interval", self.poll_interval)?;
        positive("retry.initial_backoff", self.retry.initial_backoff)?;
        positive("breaker.cooldown", self.breaker.cooldown)?;
        positive("breaker.max_cooldown", self.breaker.max_cooldown)?;
        positive("retry.max_backoff", self.retry.max_backoff)?;
        positive("retry.max_retry_after", self.retry.max_retry_after)?;
        if self.retry.initial_backoff > self.retry.max_backoff {
            return Err(ConfigError::InvalidSetting {
                setting: "retry.max_backoff",
                reason: "must not be below retry.initial_backoff",
            });
        }
        if self.breaker.cooldown > self.breaker.max_cooldown {
            return Err(ConfigError::InvalidSetting {
                setting: "breaker.max_cooldown",
                reason: "must not be below breaker.cooldown",
            });
        }
        if self.queue.max_events.get() > QueueLimits::MAX_EVENTS {
            return Err(ConfigError::InvalidSetting {
                setting: "queue.max_events",
                reason: "must be at most 8 388 608",
            });
        }
        if self.queue.max_bytes.get() > QueueLimits::MAX_BYTES {
            return Err(ConfigError::InvalidSetting {
                setting: "queue.max_bytes",
                reason: "must be at most 64 GiB",
            });
        }
        if let FlushMode::IdleOnly { max_delay, .. } = self.flush_mode {
            positive("flush_mode.max_delay", max_delay)?;
        }
        Ok(Config {
            url,
            sink: self.sink,
            storage,
            distinct_id: self.distinct_id,
            batch_size: self.batch_size,
            max_batch_bytes: self.max_batch_bytes,
            batch_delay: self.batch_delay,
            flush_mode: self.flush_mode,
            queue: self.queue,
            drop_policy: self.drop_policy,
            retry: self.retry,
            breaker: self.breaker,
            request_timeout: self.request_timeout,
            gzip: self.gzip,
            poll_interval: self.poll_interval,
        })
    }
}

/// The endpoint as a URL: parsed by a real (WHATWG) parser, `http` or `https`, with a host written after `//`.
fn parse_endpoint(endpoint: &str) -> Result<Url, EndpointError> {
    let text = endpoint.trim();
    let url = Url::parse(text).map_err(EndpointError::Parse)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointError::Scheme(url.scheme().to_owned()));
    }
    // The parser reads `https:///x` as the host `x`; a host must be written where it belongs.
    let written_host = text
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if url.host_str().is_none_or(str::is_empty) || !written_host {
        return Err(EndpointError::NoHost);
    }
    Ok(url)
}

/// The longest duration any setting may have (a longer one is a mistake, and could overflow an `Instant`).
const LONGEST_SETTING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A non-zero constant; `n` is never zero at the call sites.
const fn nz(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design_documents() {
        let config = Config::builder("http://127.0.0.1:1/")
            .memory_only(MemoryLimits::default())
            .distinct_id("me")
            .build()
            .unwrap();
        assert_eq!(config.batch_size.get(), 50);
        assert_eq!(config.batch_delay, Duration::from_secs(5));
        assert_eq!(config.request_timeout, Duration::from_secs(5));
        assert_eq!(config.drop_policy, DropPolicy::DropNewest);
        assert_eq!(config.url().as_str(), "http://127.0.0.1:1/");
        assert_eq!(config.sink().name(), "ingest");
        assert!(config.spool_dir().is_none());
    }

    #[test]
    fn the_ingest_endpoint_is_taken_as_written() {
        let config = Config::builder(" https://host/ingest ")
            .distinct_id("me")
            .memory_only(MemoryLimits::default())
            .build()
            .unwrap();
        assert_eq!(config.url().as_str(), "https://host/ingest");
    }

    #[test]
    fn a_bad_url_is_refused_naming_it_and_why() {
        let error = Config::builder("http://exa mple")
            .distinct_id("me")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("\"http://exa mple\""), "{error}");
        let ConfigError::InvalidEndpoint { source, .. } = &error else {
            panic!("{error:?}")
        };
        assert!(matches!(source, EndpointError::Parse(_)), "{source:?}");
        assert!(std::error::Error::source(source).is_some());
    }

    #[test]
    fn a_sink_refusing_the_endpoint_is_a_config_error_naming_the_sink() {
        let error = Config::builder("https://us.i.posthog.com/batch/")
            .sink(crate::sink::PostHog::new("phc_test"))
            .distinct_id("me")
            .build()
            .unwrap_err();
        assert!(
            matches!(&error, ConfigError::Sink { sink, .. } if sink == "posthog"),
            "{error:?}"
        );
    }

    #[test]
    fn an_endpoint_without_scheme_or_host_is_rejected() {
        for endpoint in [
            "localhost:8090",
            "ftp://x",
            "http://",
            "https:///ingest",
            "",
        ] {
            let error = Config::builder(endpoint)
                .distinct_id("me")
                .build()
                .unwrap_err();
            assert!(
                matches!(error, ConfigError::InvalidEndpoint { .. }),
                "{endpoint}: {error}"
            );
        }
    }

    #[test]
    fn building_without_choosing_a_storage_fails_and_names_both_choices() {
        let error = Config::builder("http://x")
            .distinct_id("me")
            .build()
            .unwrap_err();

        assert!(matches!(error, ConfigError::StorageNotChosen));
        let message = error.to_string();
        assert!(message.contains("spool_dir"), "{message}");
        assert!(message.contains("memory_only"), "{message}");
    }

    #[test]
    fn memory_only_mode_needs_a_distinct_id() {
        let error = Config::builder("http://x")
            .memory_only(MemoryLimits::default())
            .build()
            .unwrap_err();
        assert!(matches!(error, ConfigError::DistinctIdRequired));
        let error = Config::builder("http://x")
            .distinct_id("")
            .build()
            .unwrap_err();
        assert!(matches!(error, ConfigError::EmptyDistinctId));
    }

    #[test]
    fn a_spool_dir_allows_a_generated_distinct_id() {
        let config = Config::builder("http://x")
            .spool_dir("/tmp/spool")
            .sync_policy(SyncPolicy::Always)
            .build()
            .unwrap();
        let Storage::Spool(spool) = &config.storage else {
            panic!("expected a spool")
        };
        assert_eq!(spool.sync, SyncPolicy::Always);
        assert_eq!(config.spool_dir(), Some(std::path::Path::new("/tmp/spool")));
    }

    #[test]
    fn zero_durations_and_inverted_bounds_are_rejected() {
        let error = Config::builder("http://x")
            .memory_only(MemoryLimits::default())
            .distinct_id("me")
            .batch_delay(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::InvalidSetting {
                setting: "batch_delay",
                ..
            }
        ));
        let retry = RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let error = Config::builder("http://x")
            .memory_only(MemoryLimits::default())
            .distinct_id("me")
            .retry(retry)
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::InvalidSetting {
                setting: "retry.max_backoff",
                ..
            }
        ));
    }

    #[test]
    fn absurdly_large_queue_bounds_are_rejected_by_name() {
        for (limits, named) in [
            (
                QueueLimits {
                    max_events: nz(QueueLimits::MAX_EVENTS + 1),
                    ..QueueLimits::default()
                },
                "queue.max_events",
            ),
            (
                QueueLimits {
                    max_bytes: nz(usize::MAX),
                    ..QueueLimits::default()
                },
                "queue.max_bytes",
            ),
        ] {
            let error = Config::builder("http://x")
                .memory_only(MemoryLimits::default())
                .distinct_id("me")
                .queue_limits(limits)
                .build()
                .unwrap_err();
            assert!(
                matches!(error, ConfigError::InvalidSetting { setting, .. } if setting == named),
                "{error}"
            );
        }
        let largest = QueueLimits {
            max_events: nz(QueueLimits::MAX_EVENTS),
            max_bytes: nz(QueueLimits::MAX_BYTES),
        };
        assert!(
            Config::builder("http://x")
                .memory_only(MemoryLimits::default())
                .distinct_id("me")
                .queue_limits(largest)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn absurdly_long_durations_are_rejected() {
        let error = Config::builder("http://x")
            .memory_only(MemoryLimits::default())
            .distinct_id("me")
            .request_timeout(Duration::MAX)
            .build()
            .unwrap_err();
        assert!(matches!(
            error,
            ConfigError::InvalidSetting {
                setting: "request_timeout",
                ..
            }
        ));
    }
}
