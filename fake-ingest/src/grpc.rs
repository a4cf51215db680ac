//! The OTLP/gRPC front door: the logs, traces and metrics services of OTLP over gRPC (`--otlp-grpc-listen`, port
//! 4317 by convention), served by the generated service definitions of `opentelemetry-proto` (tonic).
//!
//! tonic decodes the protobuf message (gzip accepted, the decoded message bounded by `max_body_bytes`); from there a
//! request takes the same path as on OTLP/HTTP: [`crate::otlp::decode_request`] turns it into events with the same
//! dedupe keys and rejected records, and [`front_door::serve_batch`] decides the fault, stores, persists, logs the
//! request and counts it. Only the wording of the answers differs ([`answers`]): a fault becomes the gRPC status a
//! client of the OpenTelemetry protocol specification sees.
//!
//! Requests are counted and logged under the service's method path (e.g.
//! `/opentelemetry.proto.collector.logs.v1.LogsService/Export`), the route a fault rule names to target them, and
//! their events are captured under the signal's protocol (`otlp_logs`, ...), as on OTLP/HTTP.
//!
//! The services run on their own HTTP/2 listener, through the same accept loop as the HTTP routes, so every request
//! carries its connection's handle: `reset_*` faults and crashes drop the HTTP/2 connection with a TCP RST, as they
//! do an HTTP/1 one.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::connection::ConnectionHandle;
use crate::front_door::{self, Intake, RequestFacts};
use crate::otlp::{self, Decoded, ExportRequest, Signal};
use crate::state::AppState;

mod answers;
mod upstream;

use answers::{GrpcAnswers, PartialSuccess};
pub(crate) use upstream::GrpcUpstream;

/// The method path a signal's export is called on, which is also its route in stats, the request log and fault
/// rules.
pub(crate) fn route(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    }
}

/// The three services as one router, to serve over HTTP/2; with an upstream, in proxy mode.
pub(crate) fn router(state: Arc<AppState>, upstream: Option<GrpcUpstream>) -> axum::Router {
    let limit = state.max_body_bytes;
    let door = GrpcDoor {
        state,
        upstream: upstream.map(Arc::new),
    };
    let logs = LogsServiceServer::new(door.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let traces = TraceServiceServer::new(door.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let metrics = MetricsServiceServer::new(door)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::service::Routes::new(logs)
        .add_service(traces)
        .add_service(metrics)
        .into_axum_router()
}

/// The implementation of the three services: one pipeline, three message types.
#[derive(Debug, Clone)]
struct GrpcDoor {
    state: Arc<AppState>,
    /// Proxy mode: where calls on their way to storage are forwarded.
    upstream: Option<Arc<GrpcUpstream>>,
}

impl GrpcDoor {
    /// Serves one export call of `signal` through the shared pipeline; the partial success to answer, or the status.
    async fn serve(
        &self,
        signal: Signal,
        request: Request<ExportRequest>,
    ) -> Result<PartialSuccess, Status> {
        let route = route(signal);
        let ticket = self.state.store.begin_request(route, signal.protocol());
        let connection = request.extensions().get::<ConnectionHandle>().cloned();
        let metadata = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let mut facts = RequestFacts {
            content_type: metadata("content-type"),
            content_encoding: metadata("grpc-encoding"),
            body_bytes: None,
            forward: None,
            raw_body: None,
        };
        let message = request.into_inner();
        facts.body_bytes = Some(encoded_len(&message));
        // Kept whole for forwarding: as large as the message itself, which the decoding limit bounds.
        let forward = self
            .upstream
            .as_ref()
            .map(|upstream| (Arc::clone(upstream), message.clone()));
        let Decoded { events, rejected } = otlp::decode_request(message, None);
        let intake = Intake {
            route,
            protocol: signal.protocol(),
            ticket,
            rejected: rejected.count,
        };
        let answers = GrpcAnswers::new(signal, rejected, forward);
        let response =
            front_door::serve_batch(&self.state, connection, intake, facts, Ok(events), &answers)
                .await;
        answers::into_result(response)
    }
}

/// The size of the message as protobuf (after any decompression).
fn encoded_len(message: &ExportRequest) -> u64 {
    let len = match message {
        ExportRequest::Logs(message) => message.encoded_len(),
        ExportRequest::Traces(message) => message.encoded_len(),
        ExportRequest::Metrics(message) => message.encoded_len(),
    };
    len as u64
}

// The three services differ only in their types, their signal and the name of the rejected count.
macro_rules! service {
    ($service:ident, $signal:ident, $request:ident, $response:ident, $partial:ident, $rejected:ident) => {
        #[tonic::async_trait]
        impl $service for GrpcDoor {
            async fn export(
                &self,
                request: Request<$request>,
            ) -> Result<Response<$response>, Status> {
                let partial_success = self
                    .serve(Signal::$signal, request.map(ExportRequest::$signal))
                    .await?;
                Ok(Response::new($response {
                    partial_success: partial_success.map(|($rejected, error_message)| $partial {
                        $rejected,
                        error_message,
                    }),
                }))
            }
        }
    };
}

service!(
    LogsService,
    Logs,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    ExportLogsPartialSuccess,
    rejected_log_records
);
service!(
    TraceService,
    Traces,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    ExportTracePartialSuccess,
    rejected_spans
);
service!(
    MetricsService,
    Metrics,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    ExportMetricsPartialSuccess,
    rejected_data_points
);
