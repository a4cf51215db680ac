//! The `tracing` layer (cargo feature `tracing`): [`TracingLayer`] turns `tracing` events, and optionally closed
//! spans, into flush-core [`Event`]s recorded through [`Reporter::record`], so an application instrumented with
//! `tracing` macros gets the spool and at-least-once delivery by changing its setup code only.
//!
//! This module owns the mapping from `tracing` to events (the naming rule, the property names, the field types, see
//! [`TracingLayer`]) and the per-span state it keeps in the registry's span extensions (the span's fields, and its
//! timings when closed spans are recorded). The guards against feedback are `own_output`'s: flush-core's own
//! targets (`flush_core` and `flush_core::…`) are always excluded, nothing emitted on the reporter's worker threads
//! is recorded (so a dependency that logs from the sender thread, `ureq` through a `log` bridge, cannot feed back
//! into the spool), and an event emitted while the layer records on the same thread (by a field's `Debug` impl, say)
//! is not recorded, so the layer never re-enters itself.
//!
//! What the layer does per event on the application's thread is visiting the fields and building one [`Event`]:
//! an allocation for its properties, one per string field (the message included) and for the name, and one that
//! hands over the callsite's `'static` metadata. The metadata properties (`tracing.level` and the rest) are written
//! from it on the spooler thread, when the event is serialized (`DeferredMetadata`, through the event's deferred
//! properties); the rest is `record()`'s, which never blocks.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::event::{DeferredProperties, DeferredValue, Event};
use crate::own_output::{OWN_TARGET, RecordingGuard, is_under};
use crate::reporter::Reporter;

/// The field whose value names the event (or the closed span's event) instead of the naming rule.
const NAME_FIELD: &str = "event.name";

/// The field `tracing` gives the macro's format string.
const MESSAGE_FIELD: &str = "message";

/// Room for an event's properties beyond its own fields before they have to grow: a few of its spans' fields.
const SPAN_PROPERTIES_ROOM: usize = 4;

/// The prefix of the metadata properties' names.
const METADATA_PREFIX: &str = "tracing.";

/// The target `tracing-log` gives events converted from `log` records; their real target is in `log.target`.
const LOG_TARGET: &str = "log";

/// Why a [`TracingLayerBuilder`] refused its settings. Not retryable: fix the configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TracingLayerError {
    /// An excluded target prefix is empty; it would exclude every event.
    #[error("an excluded target prefix is empty: it would exclude every event")]
    EmptyExcludedTarget,
    /// An excluded target prefix ends with `::`; prefixes match whole path segments, so it would match nothing.
    #[error(
        "the excluded target prefix {0:?} ends with `::` and would match nothing: name the module path without it"
    )]
    ExcludedTargetEndsWithSeparator(String),
}

/// A `tracing_subscriber` [`Layer`] that records `tracing` events (and optionally closed spans) through a
/// [`Reporter`] (cargo feature `tracing`).
///
/// ```
/// use std::time::Duration;
/// use flush_core::{Config, Reporter, TracingLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
/// # let endpoint = format!("{}/ingest", server.url());
/// # let spool = tempfile::tempdir()?;
/// # let spool_dir = spool.path();
/// let telemetry = Reporter::start(Config::builder(endpoint).spool_dir(spool_dir).build()?)?;
/// let layer = TracingLayer::builder(telemetry.clone())
///     .min_level(tracing::Level::INFO) // the default
///     .span_events(true)               // each closed span becomes an event with `duration_ms`
///     .exclude_target("hyper")         // `hyper` and `hyper::…`, not `hyper_util`
///     .build()?;
/// tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
///
/// let request = tracing::info_span!("request", request_id = 42).entered();
/// // Recorded as `tool_call` with `tool`, `ok`, `span.name` = "request", `span.request_id` = 42, ...
/// tracing::info!(event.name = "tool_call", tool = "grep", ok = true, "tool call finished");
/// tracing::debug!("below the minimum level: not recorded");
/// drop(request); // The span closes: recorded as "{target}: request" with `duration_ms`.
///
/// let _ = telemetry.shutdown(Duration::from_secs(5));
/// # let names: Vec<String> = server.events().into_iter().map(|stored| stored.event.name).collect();
/// # assert_eq!(names.len(), 2, "{names:?}");
/// # assert_eq!(names[0], "tool_call");
/// # assert!(names[1].ends_with(": request"), "{names:?}");
/// # Ok(())
/// # }
/// ```
///
/// # What is recorded
/// Every event at or above the minimum level ([`Level::INFO`] unless set) whose target is not excluded becomes one
/// [`Event`]:
/// - **name**: the value of the event's `event.name` field if it has one; else `"{target}: {message}"`, or the
///   target alone when the event has no message. Give events that are counted or queried an `event.name`: a
///   message with interpolated values makes one name per value.
/// - **fields** become properties under their own names, typed: integers (`i64`, `u64`, and `i128`/`u128` when they
///   fit, else their decimal string) and finite `f64` as JSON numbers (a non-finite one as its string, `"NaN"`,
///   `"inf"`), `bool` as a boolean, `&str` as a string, an error (`record_error`) as its message followed by its
///   sources' messages, separated by `": "`. Only a value recorded through `Debug` (`?value`, `%value`, the message)
///   becomes its formatted string. The message is the `message` property.
/// - **metadata**: `tracing.level` (`"ERROR"` … `"TRACE"`), `tracing.target`, `tracing.module_path`,
///   `tracing.file`, `tracing.line` (those `tracing` knows), and `tracing.kind` = `"event"`.
/// - **spans**: `span.name`, the name of the current span, and the fields of every span in the current scope as
///   `span.{field}`; when spans on the path share a field name, the innermost value is kept.
///
/// A property name is never sent twice: the first one wins, in the order fields, metadata, spans. An event
/// converted from a `log` record (by `tracing-log`) is named, filtered and described by the record's own target,
/// module, file and line (its `log.*` fields).
///
/// With [`span_events`](TracingLayerBuilder::span_events), each closed span at or above the minimum level (and not
/// excluded) also becomes an event: named by its `event.name` field, else `"{target}: {span name}"`; its own fields
/// as properties; `duration_ms` (from creation to close) and `busy_ms` (time entered), as fractional milliseconds;
/// the same metadata with `tracing.kind` = `"span"`; and its parent scope as `span.*`. Its timestamp is when it
/// closed (the start is `duration_ms` before).
///
/// Trace and span ids of `tracing-opentelemetry` are not attached: reading them from its span extensions would make
/// flush-core depend on that crate.
///
/// # What is never recorded
/// - Targets `flush_core` and `flush_core::…` (flush-core's own debug output), whatever the configuration, and
///   anything emitted on the reporter's worker threads: no feedback loop.
/// - Targets excluded with [`exclude_target`](TracingLayerBuilder::exclude_target).
/// - An event emitted on a thread while the layer is recording on that same thread (a field's `Debug` impl that
///   logs), and events emitted while the thread's locals are being destroyed.
///
/// # Cost and blocking
/// The layer never blocks: it visits the fields, builds the event and calls [`Reporter::record`]. It does not
/// filter for other layers (its `enabled` is the default): events below its level reach it and are skipped at once.
/// Put a level filter in front of it (`layer.with_filter(LevelFilter::INFO)`) to make disabled callsites free.
/// Each span keeps its fields (at most the 32 its callsite declares) in the registry's extensions until it closes.
pub struct TracingLayer {
    reporter: Reporter,
    settings: Settings,
}

impl fmt::Debug for TracingLayer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TracingLayer")
            .field("min_level", &self.settings.min_level)
            .field("span_events", &self.settings.span_events)
            .field("excluded_targets", &self.settings.excluded_targets)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Settings {
    min_level: Level,
    span_events: bool,
    excluded_targets: Vec<String>,
}

impl Settings {
    fn records_level(&self, level: &Level) -> bool {
        // `tracing` orders levels by verbosity: TRACE > DEBUG > INFO > WARN > ERROR.
        *level <= self.min_level
    }

    fn excludes(&self, target: &str) -> bool {
        is_under(target, OWN_TARGET)
            || self
                .excluded_targets
                .iter()
                .any(|prefix| is_under(target, prefix))
    }
}

impl TracingLayer {
    /// A layer with the defaults: events at [`Level::INFO`] and above, no span events, no excluded targets besides
    /// flush-core's own.
    pub fn new(reporter: Reporter) -> Self {
        Self {
            reporter,
            settings: Settings {
                min_level: Level::INFO,
                span_events: false,
                excluded_targets: Vec::new(),
            },
        }
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    pub fn builder(reporter: Reporter) -> TracingLayerBuilder {
        TracingLayerBuilder {
            layer: Self::new(reporter),
        }
    }
}

/// Settings of a [`TracingLayer`], validated once in [`build`](Self::build).
#[derive(Debug)]
#[must_use = "call build() to get the layer"]
pub struct TracingLayerBuilder {
    layer: TracingLayer,
}

impl TracingLayerBuilder {
    /// Records events (and span events) at this level and more severe ones. Default: [`Level::INFO`].
    pub fn min_level(mut self, level: Level) -> Self {
        self.layer.settings.min_level = level;
        self
    }

    /// Whether each closed span is also recorded, as an event with its duration. Default: `false`.
    pub fn span_events(mut self, enabled: bool) -> Self {
        self.layer.settings.span_events = enabled;
        self
    }

    /// Never records events or spans whose target is `prefix` or under it (`prefix::…`). May be called repeatedly.
    pub fn exclude_target(mut self, prefix: impl Into<String>) -> Self {
        self.layer.settings.excluded_targets.push(prefix.into());
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`TracingLayerError`] if an excluded target prefix is empty or ends with `::`.
    pub fn build(self) -> Result<TracingLayer, TracingLayerError> {
        for prefix in &self.layer.settings.excluded_targets {
            if prefix.is_empty() {
                return Err(TracingLayerError::EmptyExcludedTarget);
            }
            if prefix.ends_with("::") {
                return Err(TracingLayerError::ExcludedTargetEndsWithSeparator(
                    prefix.clone(),
                ));
            }
        }
        Ok(self.layer)
    }
}

/// Per-span state, kept in the span's extensions from creation to close.
struct SpanState {
    fields: Fields,
    /// Present only when closed spans are recorded.
    timing: Option<Timing>,
}

struct Timing {
    opened: Instant,
    busy: Duration,
    /// How many times the span is entered right now (a span may be entered on several threads at once); busy time
    /// runs while this is above zero.
    depth: u32,
    entered_at: Option<Instant>,
}

impl<S> Layer<S> for TracingLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.settings.excludes(attrs.metadata().target()) {
            return;
        }
        let Some(_guard) = RecordingGuard::enter() else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let timing = self.settings.span_events.then(|| Timing {
            opened: Instant::now(),
            busy: Duration::ZERO,
            depth: 0,
            entered_at: None,
        });
        span.extensions_mut().insert(SpanState { fields, timing });
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(_guard) = RecordingGuard::enter() else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(state) = span.extensions_mut().get_mut::<SpanState>() {
            values.record(&mut state.fields);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if !self.settings.span_events {
            return;
        }
        if let Some(span) = ctx.span(id)
            && let Some(timing) = span
                .extensions_mut()
                .get_mut::<SpanState>()
                .and_then(|state| state.timing.as_mut())
        {
            if timing.depth == 0 {
                timing.entered_at = Some(Instant::now());
            }
            timing.depth += 1;
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if !self.settings.span_events {
            return;
        }
        if let Some(span) = ctx.span(id)
            && let Some(timing) = span
                .extensions_mut()
                .get_mut::<SpanState>()
                .and_then(|state| state.timing.as_mut())
        {
            timing.depth = timing.depth.saturating_sub(1);
            if timing.depth == 0
                && let Some(entered_at) = timing.entered_at.take()
            {
                timing.busy += entered_at.elapsed();
            }
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if !self.settings.span_events {
            return;
        }
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let metadata = span.metadata();
        if !self.settings.records_level(metadata.level()) {
            return;
        }
        let Some(_guard) = RecordingGuard::enter() else {
            return;
        };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return; // An excluded target: no state was kept.
        };
        let Some(timing) = state.timing else {
            return;
        };
        let mut busy = timing.busy;
        if let Some(entered_at) = timing.entered_at {
            busy += entered_at.elapsed(); // Closed while entered (possible with manual enter/exit).
        }
        let Fields {
            mut properties,
            name,
            ..
        } = state.fields;
        let name = name.unwrap_or_else(|| format!("{}: {}", metadata.target(), metadata.name()));
        push(
            &mut properties,
            "duration_ms",
            milliseconds(timing.opened.elapsed()),
        );
        push(&mut properties, "busy_ms", milliseconds(busy));
        let deferred = defer_metadata(&mut properties, metadata, None, "span");
        if let Some(parent) = span.parent() {
            push_scope(&mut properties, parent);
        }
        self.reporter.record(with_metadata(
            Event::with_properties(name, properties),
            deferred,
        ));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !self.settings.records_level(metadata.level())
            || self.settings.excludes(metadata.target())
        {
            return;
        }
        let Some(_guard) = RecordingGuard::enter() else {
            return;
        };
        let mut fields = Fields::with_capacity(metadata.fields().len() + SPAN_PROPERTIES_ROOM);
        event.record(&mut fields);
        let Fields {
            mut properties,
            name,
            log,
        } = fields;
        let described = log.describe(metadata);
        if described.target != metadata.target() && self.settings.excludes(described.target) {
            return;
        }
        let name =
            name.unwrap_or_else(
                || match properties.iter().find(|(key, _)| key == MESSAGE_FIELD) {
                    Some((_, Value::String(message))) => format!("{}: {message}", described.target),
                    _ => described.target.to_owned(),
                },
            );
        let converted = log.converts(metadata).then_some(&described);
        let deferred = defer_metadata(&mut properties, metadata, converted, "event");
        if let Some(scope) = ctx.event_scope(event)
            && let Some(current) = scope.into_iter().next()
        {
            push_scope(&mut properties, current);
        }
        self.reporter.record(with_metadata(
            Event::with_properties(name, properties),
            deferred,
        ));
    }
}

type Properties = Vec<(Cow<'static, str>, Value)>;

/// Adds `key` unless the properties already have it (the first one wins).
fn push(properties: &mut Properties, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
    let key = key.into();
    if !properties.iter().any(|(existing, _)| *existing == key) {
        properties.push((key, value.into()));
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Where an event comes from: its metadata, or, for a `log` record converted by `tracing-log`, the record's own.
#[derive(Clone)]
struct Described<'a> {
    level: &'static str,
    target: &'a str,
    module_path: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u64>,
}

impl<'a> Described<'a> {
    fn of(metadata: &'a Metadata<'a>) -> Self {
        Self {
            level: metadata.level().as_str(),
            target: metadata.target(),
            module_path: metadata.module_path(),
            file: metadata.file(),
            line: metadata.line().map(u64::from),
        }
    }
}

/// The value of a metadata property: text, or the line number.
#[derive(Clone, Copy)]
enum MetadataValue<'a> {
    Text(&'a str),
    Line(u64),
}

impl From<MetadataValue<'static>> for DeferredValue {
    fn from(value: MetadataValue<'static>) -> Self {
        match value {
            MetadataValue::Text(text) => DeferredValue::StaticText(text),
            MetadataValue::Line(line) => DeferredValue::Unsigned(line),
        }
    }
}

impl From<MetadataValue<'_>> for Value {
    fn from(value: MetadataValue<'_>) -> Self {
        match value {
            MetadataValue::Text(text) => Value::from(text),
            MetadataValue::Line(line) => Value::from(line),
        }
    }
}

/// The metadata properties, in their order: `tracing.level`, `tracing.target`, `tracing.module_path`,
/// `tracing.file`, `tracing.line` (those `tracing` knows) and `tracing.kind`.
fn metadata_properties<'a>(
    described: &Described<'a>,
    kind: &'static str,
) -> impl Iterator<Item = (&'static str, MetadataValue<'a>)> {
    [
        ("tracing.level", Some(MetadataValue::Text(described.level))),
        (
            "tracing.target",
            Some(MetadataValue::Text(described.target)),
        ),
        (
            "tracing.module_path",
            described.module_path.map(MetadataValue::Text),
        ),
        ("tracing.file", described.file.map(MetadataValue::Text)),
        ("tracing.line", described.line.map(MetadataValue::Line)),
        ("tracing.kind", Some(MetadataValue::Text(kind))),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
}

/// Adds the metadata properties, unless the properties already have them (the first one wins).
fn push_metadata(properties: &mut Properties, described: &Described<'_>, kind: &'static str) {
    for (key, value) in metadata_properties(described, kind) {
        push(properties, key, value);
    }
}

/// The metadata properties of a callsite, written on the spooler thread when the event is serialized: they come
/// from the callsite's `'static` metadata alone, so the application's thread hands over a pointer instead of
/// allocating five strings, and the spooler writes the static strings into the stored form without copies.
#[derive(Debug)]
struct DeferredMetadata {
    metadata: &'static Metadata<'static>,
    kind: &'static str,
}

impl DeferredProperties for DeferredMetadata {
    fn estimated_bytes(&self) -> usize {
        let described = Described::of(self.metadata);
        metadata_properties(&described, self.kind)
            .map(|(key, value)| {
                key.len()
                    + 4
                    + match value {
                        MetadataValue::Text(text) => text.len() + 2,
                        MetadataValue::Line(_) => 10,
                    }
            })
            .sum()
    }

    fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
        Ok(
            metadata_properties(&Described::of(self.metadata), self.kind)
                .map(|(key, value)| (key, DeferredValue::from(value)))
                .collect(),
        )
    }
}

/// The metadata properties of an event or a closed span: deferred to the spooler thread
/// ([`DeferredMetadata`]), or pushed now when they cannot be: an event converted from a `log` record
/// (`converted`, described by the record's own fields, which live only as long as the event), or properties that
/// already have a name of theirs (the first one wins, and deferred properties come last).
fn defer_metadata(
    properties: &mut Properties,
    metadata: &'static Metadata<'static>,
    converted: Option<&Described<'_>>,
    kind: &'static str,
) -> Option<DeferredMetadata> {
    let shadowed = properties
        .iter()
        .any(|(key, _)| key.starts_with(METADATA_PREFIX));
    match converted {
        None if !shadowed => Some(DeferredMetadata { metadata, kind }),
        _ => {
            let described = converted.map_or_else(|| Described::of(metadata), |own| own.clone());
            push_metadata(properties, &described, kind);
            None
        }
    }
}

/// `event` with its metadata properties left to the spooler thread, if they were.
fn with_metadata(event: Event, deferred: Option<DeferredMetadata>) -> Event {
    match deferred {
        Some(deferred) => event.with_deferred(std::sync::Arc::new(deferred)),
        None => event,
    }
}

/// Adds `span.name` (the innermost span's) and every span's fields as `span.{field}`, innermost first so that its
/// values win.
fn push_scope<S>(properties: &mut Properties, innermost: SpanRef<'_, S>)
where
    S: for<'lookup> LookupSpan<'lookup>,
{
    push(properties, "span.name", innermost.name());
    for span in innermost.scope() {
        let extensions = span.extensions();
        if let Some(state) = extensions.get::<SpanState>() {
            for (key, value) in &state.fields.properties {
                push(properties, format!("span.{key}"), value.clone());
            }
        }
    }
}

/// The visitor: typed fields as properties, `event.name` and the `log.*` fields of converted `log` records aside.
#[derive(Default)]
struct Fields {
    properties: Properties,
    name: Option<String>,
    log: LogFields,
}

/// The fields `tracing-log` adds to an event converted from a `log` record.
#[derive(Default)]
struct LogFields {
    target: Option<String>,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u64>,
}

impl LogFields {
    /// Whether the event is a converted `log` record with its own description.
    fn converts(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == LOG_TARGET && self.target.is_some()
    }

    /// The record's own description if this is a converted `log` record, else the event's metadata.
    fn describe<'a>(&'a self, metadata: &'a Metadata<'a>) -> Described<'a> {
        let mut described = Described::of(metadata);
        if self.converts(metadata)
            && let Some(target) = &self.target
        {
            described.target = target;
            described.module_path = self.module_path.as_deref();
            described.file = self.file.as_deref();
            described.line = self.line;
        }
        described
    }
}

impl Fields {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            properties: Vec::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// Sets a field's value (a span's `record` may overwrite a value given at creation).
    fn set(&mut self, field: &Field, value: Value) {
        let key = field.name();
        match self
            .properties
            .iter_mut()
            .find(|(existing, _)| existing == key)
        {
            Some((_, existing)) => *existing = value,
            None => self.properties.push((Cow::Borrowed(key), value)),
        }
    }

    /// Takes `event.name` and the `log.*` fields aside; true if `field` was one of them.
    fn set_aside(&mut self, field: &Field, value: &str) -> bool {
        let slot = match field.name() {
            NAME_FIELD => &mut self.name,
            "log.target" => &mut self.log.target,
            "log.module_path" => &mut self.log.module_path,
            "log.file" => &mut self.log.file,
            _ => return false,
        };
        *slot = Some(value.to_owned());
        true
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = if value.is_finite() {
            Value::from(value)
        } else {
            Value::String(value.to_string())
        };
        self.set(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log.line" {
            self.log.line = Some(value);
        } else {
            self.set(field, Value::from(value));
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.set(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.set(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.set_aside(field, value) {
            self.set(field, Value::String(value.to_owned()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut message = value.to_string();
        let mut source = value.source();
        while let Some(error) = source {
            message.push_str(": ");
            message.push_str(&error.to_string());
            source = error.source();
        }
        self.set(field, Value::String(message));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if !self.set_aside(field, &text) {
            self.set(field, Value::String(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_at_or_above_the_minimum_are_recorded() {
        let settings = Settings {
            min_level: Level::WARN,
            span_events: false,
            excluded_targets: Vec::new(),
        };
        assert!(settings.records_level(&Level::ERROR));
        assert!(settings.records_level(&Level::WARN));
        assert!(!settings.records_level(&Level::INFO));
        assert!(!settings.records_level(&Level::TRACE));
    }

    #[test]
    fn excluded_target_prefixes_are_validated() {
        let config = crate::Config::builder("http://127.0.0.1:9")
            .memory_only(crate::MemoryLimits::default())
            .distinct_id("test")
            .build()
            .unwrap();
        let started = Reporter::start(config).unwrap();
        let reporter = || started.clone();
        let empty = TracingLayer::builder(reporter()).exclude_target("").build();
        assert_eq!(empty.unwrap_err(), TracingLayerError::EmptyExcludedTarget);
        let trailing = TracingLayer::builder(reporter())
            .exclude_target("hyper::")
            .build();
        assert_eq!(
            trailing.unwrap_err(),
            TracingLayerError::ExcludedTargetEndsWithSeparator("hyper::".into())
        );
        let fine = TracingLayer::builder(reporter())
            .exclude_target("hyper::proto")
            .build();
        assert!(fine.is_ok());
    }
}
