//! Proxy mode for the OTLP/gRPC listener (`--upstream-grpc URL`): a call the fault plan lets through to storage is
//! forwarded to a real OTLP/gRPC backend with `opentelemetry-proto`'s generated clients, and the backend's answer is
//! relayed (see `crate::proxy` for what each fault does in proxy mode).
//!
//! The backend's own statuses are relayed as they are. A backend that cannot be reached is answered `UNAVAILABLE`
//! (counted as `refused` when the connection was refused, else `failed`), one that does not answer within the
//! timeout `DEADLINE_EXCEEDED` (`timeout`).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::sync::OnceCell;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use super::answers::PartialSuccess;
use crate::otlp::ExportRequest;

/// The OTLP/gRPC backend calls are forwarded to.
#[derive(Debug)]
pub(crate) struct GrpcUpstream {
    url: String,
    timeout: Duration,
    /// Made on the first call, on the runtime that serves it.
    channel: OnceCell<Channel>,
}

/// How a forwarded call ended without the backend's answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// The backend answered with an error status (relayed as it is).
    Answered(Status),
    /// The backend could not be reached or the connection failed: `refused` or `failed`.
    Unreachable { label: &'static str, status: Status },
    /// No answer within the timeout.
    Timeout(Duration),
}

impl GrpcUpstream {
    /// A backend at `url` (`http://host:port`, checked by `Config::validate`).
    pub(crate) fn new(url: &str, timeout: Duration) -> GrpcUpstream {
        GrpcUpstream {
            url: url.trim_end_matches('/').to_owned(),
            timeout,
            channel: OnceCell::new(),
        }
    }

    /// The backend's URL.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Forwards one export call; the backend's partial success, or how the call failed.
    pub(super) async fn export(&self, message: ExportRequest) -> Result<PartialSuccess, Failure> {
        let channel = self
            .channel
            .get_or_try_init(|| async {
                Endpoint::from_shared(self.url.clone())
                    .map(|endpoint| endpoint.connect_timeout(self.timeout).connect_lazy())
            })
            .await
            .map_err(|error| Failure::Unreachable {
                label: "failed",
                status: Status::unavailable(format!("invalid upstream {}: {error}", self.url)),
            })?
            .clone();
        let call = async move {
            match message {
                ExportRequest::Logs(message) => LogsServiceClient::new(channel)
                    .export(message)
                    .await
                    .map(|response| {
                        let partial = response.into_inner().partial_success;
                        partial.map(|p| (p.rejected_log_records, p.error_message))
                    }),
                ExportRequest::Traces(message) => TraceServiceClient::new(channel)
                    .export(message)
                    .await
                    .map(|response| {
                        let partial = response.into_inner().partial_success;
                        partial.map(|p| (p.rejected_spans, p.error_message))
                    }),
                ExportRequest::Metrics(message) => MetricsServiceClient::new(channel)
                    .export(message)
                    .await
                    .map(|response| {
                        let partial = response.into_inner().partial_success;
                        partial.map(|p| (p.rejected_data_points, p.error_message))
                    }),
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_elapsed) => Err(Failure::Timeout(self.timeout)),
            Ok(Ok(partial_success)) => {
                Ok(partial_success
                    .filter(|(rejected, message)| *rejected != 0 || !message.is_empty()))
            }
            Ok(Err(status)) => Err(classify(status)),
        }
    }
}

/// Tells a status the backend sent from one tonic made for a failed connection (which has a source).
fn classify(status: Status) -> Failure {
    let Some(source) = std::error::Error::source(&status) else {
        return Failure::Answered(status);
    };
    let refused = std::iter::successors(Some(source), |error| error.source()).any(|error| {
        error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    let label = if refused { "refused" } else { "failed" };
    Failure::Unreachable { label, status }
}
