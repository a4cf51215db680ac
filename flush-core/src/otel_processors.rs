//! The OpenTelemetry SDK processors (cargo feature `opentelemetry`): [`OtelLogProcessor`] and
//! [`OtelSpanProcessor`] take the place of the SDK's batch processors, so that every log record and span an
//! application emits through the OpenTelemetry API goes through [`Reporter::record`] into the spool, and out through
//! the reporter's sink ([`OtlpLogs`](crate::sink::OtlpLogs), [`OtlpTraces`](crate::sink::OtlpTraces)).
//!
//! This module owns the mapping of the SDK's calls onto the reporter's (`emit`/`on_end` → `record`, `force_flush`
//! → `checkpoint` + `flush`, `shutdown` → `shutdown`) and the conversion of the SDK's records into the messages
//! `otlp_form` stores (with `opentelemetry-proto`'s own conversions, the ones the SDK's OTLP exporter uses). On the
//! application's thread a processor only names and times the event and moves the SDK's record into it; keying a
//! span (a SHA-1 of its ids) and the conversion run on the spooler thread, when the event is keyed and serialized
//! (the event's deferred properties).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LogRecord as _;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope as ProtoScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord as ProtoLogRecord;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use uuid::Uuid;

use crate::error::chain_text;
use crate::event::{DeferredProperties, DeferredValue, Event};
use crate::otlp_form;
use crate::outcome::{FlushOutcome, ShutdownOutcome};
use crate::own_output::{OWN_TARGET, RecordingGuard, is_under};
use crate::reporter::Reporter;

/// How long `force_flush` waits for the server unless set otherwise.
const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A log processor for the OpenTelemetry SDK's `SdkLoggerProvider` that records every log record through a
/// [`Reporter`] instead of batching it in memory (cargo feature `opentelemetry`).
///
/// Give the reporter the [`OtlpLogs`](crate::sink::OtlpLogs) sink: each record then goes out as the same OTLP
/// `LogRecord` the SDK's exporter would send (its own time and observed time, severity number and text, body, typed
/// attributes, event name, trace id, span id and flags, under its instrumentation scope, whose name is the
/// `tracing` target for records bridged from `tracing`), with `log.record.uid` (its idempotency key) and
/// `distinct_id` added. The resource is the sink's (`service.name` and the rest), not the logger provider's.
///
/// ```
/// use std::time::Duration;
/// use flush_core::{Config, OtelLogProcessor, Reporter, sink::OtlpLogs};
/// use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
/// # let endpoint = server.url();
/// # let spool = tempfile::tempdir()?;
/// # let spool_dir = spool.path();
/// let telemetry = Reporter::start(
///     Config::builder(endpoint) // the OTLP base URL, e.g. http://localhost:4318
///         .sink(OtlpLogs::new().service_name("my-service"))
///         .spool_dir(spool_dir)
///         .build()?,
/// )?;
/// // In place of `with_batch_exporter(...)`: records go to the spool, not to an in-memory queue.
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(OtelLogProcessor::new(telemetry.clone()))
///     .build();
/// let subscriber = tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
///
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::warn!(name: "disk_low", free_bytes = 1024_u64, "disk almost full"); // never blocks
/// });
/// provider.force_flush()?; // checkpoint (durable in the spool), then flush to the server
/// provider.shutdown()?;    // the reporter's bounded shutdown
/// # let events = server.events();
/// # assert_eq!(events.len(), 1);
/// # assert_eq!(events[0].event.name, "disk_low");
/// # Ok(())
/// # }
/// ```
///
/// See [`OtelSpanProcessor`] for what each call does, what blocks and what is dropped when.
pub struct OtelLogProcessor {
    calls: Calls,
}

/// A span processor for the OpenTelemetry SDK's `SdkTracerProvider` that records every ended, sampled span through
/// a [`Reporter`] instead of batching it in memory (cargo feature `opentelemetry`).
///
/// Give the reporter the [`OtlpTraces`](crate::sink::OtlpTraces) sink: each span then goes out as the same OTLP
/// `Span` the SDK's exporter would send (trace id, span id, parent span id, trace state, flags, name, kind, start
/// and end time, typed attributes, events, links, status, dropped counts, under its instrumentation scope). Its
/// idempotency key is derived from its trace id and span id, which OTLP backends dedupe on. The resource is the
/// sink's (`service.name` and the rest), not the tracer provider's.
///
/// ```
/// use flush_core::{Config, OtelSpanProcessor, Reporter, sink::OtlpTraces};
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
/// # let endpoint = server.url();
/// # let spool = tempfile::tempdir()?;
/// # let spool_dir = spool.path();
/// let telemetry = Reporter::start(
///     Config::builder(endpoint) // the OTLP base URL, e.g. http://localhost:4318
///         .sink(OtlpTraces::new().service_name("checkout"))
///         .spool_dir(spool_dir)
///         .build()?,
/// )?;
/// // In place of `with_batch_exporter(...)`: spans go to the spool, not to an in-memory queue.
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(OtelSpanProcessor::new(telemetry.clone()))
///     .build();
/// let tracer = provider.tracer("checkout");
///
/// tracer.in_span("place_order", |_cx| {
///     let mut charge = tracer.start("charge_card"); // a child of place_order
///     charge.set_attribute(opentelemetry::KeyValue::new("amount_cents", 1250));
///     charge.end(); // never blocks
/// });
/// provider.force_flush()?; // checkpoint (durable in the spool), then flush to the server
/// provider.shutdown()?;    // the reporter's bounded shutdown
/// # let mut names: Vec<String> = server.events().into_iter().map(|stored| stored.event.name).collect();
/// # names.sort();
/// # assert_eq!(names, ["charge_card", "place_order"]);
/// # Ok(())
/// # }
/// ```
///
/// # What each call does (both processors)
/// | SDK call | reporter call | blocks? |
/// |---|---|---|
/// | `on_end` (spans), `emit` (log records) | [`Reporter::record`] | never: the record is moved into an event and queued (its conversion runs on the spooler thread) |
/// | `force_flush` | [`Reporter::checkpoint`], then [`Reporter::flush`] with the [flush timeout](Self::flush_timeout) | until the queue is in the spool and synced, then up to the flush timeout |
/// | `shutdown_with_timeout(t)` (`shutdown`: 5 s) | [`Reporter::shutdown`]`(t)` | up to `t` (storing the queue may take up to 1 s more) |
///
/// What is durable when: a record is in memory when `on_end`/`emit` returns, in the spool once a `force_flush`
/// (or the reporter's own checkpoint) has stored it, and survives a crash from then on; the server has it when
/// `force_flush` returns `Ok`. `force_flush` returns `Err(Timeout)` when the server did not acknowledge everything
/// in time (what reached the spool stays there and is sent later, by this run or the next), and `Err` with the
/// spool's reason when the spool could not store it.
///
/// # What is dropped when, by name
/// Nothing silently: every record the processor takes is counted in [`Stats::recorded`](crate::Stats::recorded),
/// and a drop in [`Stats::dropped`](crate::Stats::dropped) under its reason: `queue_full`, `evicted_oldest` or
/// `sampled` when the reporter's queue is over its bounds (by its drop policy), `after_shutdown` for a record emitted
/// after `shutdown`, `unserializable` for a record that cannot be put into its stored form, and the spool's own
/// reasons (`spool_size`, `spool_age`, `store_error`, ...). Not taken at all, by design: spans that are not sampled
/// (as the SDK's batch processor, only sampled spans are exported), and flush-core's own output: records whose
/// target or scope is `flush_core` or under it, records emitted on the reporter's worker threads, and records
/// emitted while a processor or the `tracing` layer is recording on the same thread, so there is no feedback loop.
///
/// # Sharing
/// Give the log processor and the span processor a reporter each, with its own spool directory: a reporter has one
/// sink, and a spool directory is delivered by one reporter at a time.
pub struct OtelSpanProcessor {
    calls: Calls,
}

/// The reporter and the settings both processors map the SDK's calls with.
struct Calls {
    reporter: Reporter,
    flush_timeout: Duration,
}

macro_rules! processor_common {
    ($processor:ident) => {
        impl $processor {
            /// A processor recording through `reporter`, with a flush timeout of 5 s.
            pub fn new(reporter: Reporter) -> Self {
                Self {
                    calls: Calls {
                        reporter,
                        flush_timeout: DEFAULT_FLUSH_TIMEOUT,
                    },
                }
            }

            /// How long `force_flush` waits for the server to acknowledge, after the checkpoint. Default: 5 s.
            #[must_use]
            pub fn flush_timeout(mut self, timeout: Duration) -> Self {
                self.calls.flush_timeout = timeout;
                self
            }
        }

        impl fmt::Debug for $processor {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter
                    .debug_struct(stringify!($processor))
                    .field("reporter", &self.calls.reporter)
                    .field("flush_timeout", &self.calls.flush_timeout)
                    .finish()
            }
        }
    };
}

processor_common!(OtelLogProcessor);
processor_common!(OtelSpanProcessor);

impl Calls {
    /// Records the event `build` makes, unless this is flush-core's own output.
    fn record(&self, build: impl FnOnce() -> Event) {
        let Some(_guard) = RecordingGuard::enter() else {
            return;
        };
        self.reporter.record(build());
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.reporter
            .checkpoint()
            .map_err(|error| OTelSdkError::InternalFailure(chain_text(&error)))?;
        match self.reporter.flush(self.flush_timeout) {
            FlushOutcome::Acknowledged => Ok(()),
            FlushOutcome::TimedOut => Err(OTelSdkError::Timeout(self.flush_timeout)),
        }
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        match self.reporter.shutdown(timeout) {
            ShutdownOutcome::Drained => Ok(()),
            ShutdownOutcome::DeadlineReached | ShutdownOutcome::LimitReached => {
                Err(OTelSdkError::Timeout(timeout))
            }
            ShutdownOutcome::AlreadyShutDown => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

/// Whether a record of this scope (or `tracing` target) is flush-core's own output.
fn is_own(name: &str) -> bool {
    is_under(name, OWN_TARGET)
}

impl LogProcessor for OtelLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if is_own(origin_name(record, scope)) {
            return;
        }
        if record.observed_timestamp().is_none() {
            // The SDK's logger sets it; a record handed to the processor directly may not have it.
            record.set_observed_timestamp(SystemTime::now());
        }
        let record = &*record;
        self.calls.record(|| log_event(record, scope));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.calls.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.calls.shutdown(timeout)
    }

    fn event_enabled(
        &self,
        _level: opentelemetry::logs::Severity,
        target: &str,
        _name: Option<&str>,
    ) -> bool {
        !is_own(target)
    }
}

impl SpanProcessor for OtelSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() || is_own(span.instrumentation_scope.name()) {
            return;
        }
        self.calls.record(|| span_event(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.calls.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.calls.shutdown(timeout)
    }
}

/// Where a log record emitted under `scope` comes from: its target (a `tracing` callsite's, through the bridge),
/// else the scope's name.
fn origin_name<'a>(record: &'a SdkLogRecord, scope: &'a InstrumentationScope) -> &'a str {
    record
        .target()
        .map_or(scope.name(), |target| target.as_ref())
}

/// The event of a log record emitted under `scope`: named on the caller's thread; the record cloned (the SDK keeps
/// its own, as it does for its batch processor) into its deferred properties, which time it and convert it on the
/// spooler thread.
fn log_event(record: &SdkLogRecord, scope: &InstrumentationScope) -> Event {
    let name = otlp_form::log_event_name(
        Cow::Borrowed(record.event_name().unwrap_or_default()),
        origin_name(record, scope),
    );
    Event::new(name).with_deferred(Arc::new(DeferredLog {
        record: record.clone(),
        scope: scope.clone(),
    }))
}

/// The event of an ended span: named on the caller's thread; the span itself moved (not copied) into its deferred
/// properties, which time it at its start, key it by its ids and convert it on the spooler thread.
fn span_event(span: SpanData) -> Event {
    Event::new(span.name.clone()).with_deferred(Arc::new(DeferredSpan(span)))
}

/// A span's stored properties and key, built on the spooler thread.
#[derive(Debug)]
struct DeferredSpan(SpanData);

impl DeferredProperties for DeferredSpan {
    fn estimated_bytes(&self) -> usize {
        let span = &self.0;
        384 + 48 * span.attributes.len() + 96 * span.events.len() + 128 * span.links.len()
    }

    fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
        let scope = ProtoScope::from((&self.0.instrumentation_scope, None));
        otlp_form::span_properties(&ProtoSpan::from(self.0.clone()), &scope)
    }

    fn idempotency_key(&self) -> Option<Uuid> {
        let context = &self.0.span_context;
        Some(otlp_form::span_key(
            &context.trace_id().to_bytes(),
            &context.span_id().to_bytes(),
        ))
    }

    fn timestamp(&self) -> Option<SystemTime> {
        Some(self.0.start_time)
    }
}

/// A log record's stored properties, built on the spooler thread.
#[derive(Debug)]
struct DeferredLog {
    record: SdkLogRecord,
    scope: InstrumentationScope,
}

impl DeferredProperties for DeferredLog {
    fn estimated_bytes(&self) -> usize {
        384 + 48 * self.record.attributes_iter().count()
    }

    fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
        let scope = ProtoScope::from((&self.scope, self.record.target().cloned()));
        otlp_form::log_properties(&ProtoLogRecord::from(&self.record), &scope)
    }

    /// Its own time, else its observed time (which the processor sets when the SDK did not).
    fn timestamp(&self) -> Option<SystemTime> {
        self.record.timestamp().or(self.record.observed_timestamp())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;
    use crate::event::StampedEvent;
    use crate::stored_view::StoredView;

    /// A span processor that keeps what ended.
    #[derive(Debug, Clone, Default)]
    struct Capture(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Capture {
        fn on_start(
            &self,
            _span: &mut opentelemetry_sdk::trace::Span,
            _cx: &opentelemetry::Context,
        ) {
        }

        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }

        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }

        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn ended_span() -> SpanData {
        let ended = Capture::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(ended.clone())
            .build();
        provider.tracer("app").in_span("checkout", |_cx| {});
        ended.0.lock().unwrap().remove(0)
    }

    #[test]
    fn a_log_record_is_timed_by_its_own_time_else_its_observed_time_with_no_clock_read() {
        use opentelemetry::logs::{Logger as _, LoggerProvider as _};

        let at = |nanos| UNIX_EPOCH + Duration::from_nanos(nanos);
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
        let mut record = provider.logger("app").create_log_record();
        let scope = InstrumentationScope::builder("app").build();
        record.set_observed_timestamp(at(2_000));
        assert_eq!(log_event(&record, &scope).timestamp(), Some(at(2_000)));
        record.set_timestamp(at(1_000));
        let event = log_event(&record, &scope);
        assert_eq!(event.timestamp(), Some(at(1_000)));
        assert_eq!(event.name(), "app", "no event name: the scope's");
    }

    #[test]
    fn a_span_is_keyed_by_its_ids_when_it_is_keyed_for_the_spool_not_when_it_ends() {
        let span = ended_span();
        let expected = otlp_form::span_key(
            &span.span_context.trace_id().to_bytes(),
            &span.span_context.span_id().to_bytes(),
        );

        let event = span_event(span.clone());
        assert_eq!(
            event.idempotency_key(),
            None,
            "no SHA-1 on the caller's thread"
        );
        let stamped = StampedEvent::stamp(event);
        assert_eq!(stamped.key(), expected);

        let mut buffer = Vec::new();
        stamped
            .serialize_into(stamped.key(), "install-1", &mut buffer)
            .unwrap();
        let stored = StoredView::read(&buffer).unwrap();
        assert_eq!(stored.uuid(), expected);
        assert_eq!(stored.name(), "checkout");
        // Timed at its start, to the nanosecond, by its deferred properties: no clock read for it.
        let start = jiff::Timestamp::try_from(span.start_time).unwrap();
        assert_eq!(stored.timestamp_rfc3339(), start.to_string());
        let stored_span = otlp_form::stored_span(&stored).unwrap().unwrap();
        assert_eq!(stored_span.span_id, span.span_context.span_id().to_bytes());

        let again = StampedEvent::stamp(span_event(span));
        assert_eq!(
            again.key(),
            expected,
            "a span recorded again gets the same key"
        );
    }
}
