//! The OpenTelemetry Rust SDK's logs pipeline as its documentation sets it up: a `SdkLoggerProvider` with the batch
//! log processor and the OTLP/HTTP protobuf exporter (blocking reqwest client) posting to `{endpoint}/v1/logs`.
//! `emit` queues the record in memory for the processor's thread; `force_flush` exports what is queued. Nothing is on
//! disk: a crash loses the queue, a full queue drops new records, and a failed export is not retried.

use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry_otlp::{LogExporter, Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};

use crate::sample::SampleEvent;

/// A logger provider exporting to one OTLP/HTTP endpoint.
#[derive(Debug)]
pub struct OtelBatchLogsPeer {
    provider: SdkLoggerProvider,
    logger: SdkLogger,
}

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP log exporter could not be built")]
pub struct PeerSetupError(#[from] opentelemetry_otlp::ExporterBuildError);

impl OtelBatchLogsPeer {
    /// A pipeline exporting batches of `batch` records to `{endpoint}/v1/logs` from a queue of `max_queue` records.
    ///
    /// # Errors
    /// [`PeerSetupError`] if the exporter cannot be built.
    pub fn start(endpoint: &str, batch: usize, max_queue: usize) -> Result<Self, PeerSetupError> {
        let exporter = LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/logs", endpoint.trim_end_matches('/')))
            .build()?;
        let processor = BatchLogProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_export_batch_size(batch)
                    .with_max_queue_size(max_queue)
                    .build(),
            )
            .build();
        let provider = SdkLoggerProvider::builder()
            .with_resource(Resource::builder().with_service_name("bench").build())
            .with_log_processor(processor)
            .build();
        let logger = provider.logger("bench");
        Ok(Self { provider, logger })
    }

    /// Builds log records for this pipeline (on any thread, without borrowing the pipeline).
    pub fn record_maker(&self) -> RecordMaker {
        RecordMaker {
            logger: self.logger.clone(),
        }
    }

    /// Hands `record` to the batch processor.
    pub fn emit(&self, record: SdkLogRecord) {
        self.logger.emit(record);
    }

    /// Exports everything queued and waits for it.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Shuts the pipeline down (flushing what is queued).
    pub fn shutdown(self) {
        let _ = self.provider.shutdown();
    }
}

/// Builds the log records of one pipeline.
#[derive(Debug, Clone)]
pub struct RecordMaker {
    logger: SdkLogger,
}

impl RecordMaker {
    /// The sample event as a log record: its name as the event name, its properties as typed attributes, the
    /// `distinct_id` as an attribute, the current time.
    pub fn record(&self, sample: &SampleEvent) -> SdkLogRecord {
        let mut record = self.logger.create_log_record();
        record.set_event_name("cli_invocation");
        record.set_severity_number(Severity::Info);
        record.set_timestamp(std::time::SystemTime::now());
        record.add_attribute("distinct_id", sample.distinct_id.clone());
        for (key, value) in &sample.properties {
            let value = match value {
                serde_json::Value::Bool(flag) => AnyValue::Boolean(*flag),
                serde_json::Value::Number(number) => number.as_i64().map_or_else(
                    || AnyValue::Double(number.as_f64().unwrap_or(0.0)),
                    AnyValue::Int,
                ),
                other => AnyValue::String(
                    other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_owned)
                        .into(),
                ),
            };
            record.add_attribute(key.clone(), value);
        }
        record
    }
}
