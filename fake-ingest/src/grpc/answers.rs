//! How the gRPC front door words its answers, as the OpenTelemetry protocol specification says an OTLP/gRPC client
//! sees them.
//!
//! [`front_door::serve_batch`] works in HTTP responses; [`GrpcAnswers`] gives it responses whose HTTP status is the
//! one OTLP/HTTP would answer (what `/_fake/stats` counts) and which carry the gRPC answer as an extension, which
//! [`into_result`] hands to tonic. The request log records the gRPC code's name (`OK`, `UNAVAILABLE`, ...).
//!
//! | answer | gRPC |
//! |---|---|
//! | stored | `OK`, with `partial_success` when records were rejected |
//! | `reject` fault | `OK`, `partial_success` counting every record |
//! | injected 502, 503, 504 (retryable on OTLP/HTTP) | `UNAVAILABLE` |
//! | injected 429 | `RESOURCE_EXHAUSTED` (retryable only with `RetryInfo`) |
//! | any other injected status | its gRPC equivalent (400 `INVALID_ARGUMENT`, 500 `INTERNAL`, ...) |
//!
//! With `retry_after_secs`, the status carries a `google.rpc.RetryInfo` detail with that delay.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::upstream::{Failure, GrpcUpstream};
use crate::front_door::{self, Answers, Rejection};
use crate::otlp::{self, ExportRequest, Rejections, Signal};
use crate::proxy::Relayed;
use crate::store::StoreOutcome;

/// The partial success of a successful export: rejected records and the message, when any were.
pub(super) type PartialSuccess = Option<(i64, String)>;

/// The gRPC answer an HTTP-shaped response carries to [`into_result`].
#[derive(Debug, Clone)]
enum GrpcReply {
    /// `OK`, with this partial success.
    Ok(PartialSuccess),
    /// An error status.
    Failed(Status),
}

/// The answers of one gRPC export call.
pub(super) struct GrpcAnswers {
    signal: Signal,
    /// The records rejected while decoding, reported in a successful answer.
    rejected: Rejections,
    /// Proxy mode: the upstream and the call to forward to it.
    forward: Option<(Arc<GrpcUpstream>, ExportRequest)>,
}

impl GrpcAnswers {
    pub(super) fn new(
        signal: Signal,
        rejected: Rejections,
        forward: Option<(Arc<GrpcUpstream>, ExportRequest)>,
    ) -> Self {
        Self {
            signal,
            rejected,
            forward,
        }
    }

    /// Words the upstream's answer (or the failure to get one) for the client.
    fn relayed(upstream: &GrpcUpstream, answer: Result<PartialSuccess, Failure>) -> Relayed {
        let (label, success, status, reply_to_send) = match answer {
            Ok(partial_success) => (
                "OK".to_owned(),
                true,
                StatusCode::OK,
                GrpcReply::Ok(partial_success),
            ),
            Err(Failure::Answered(status)) => (
                code_name(status.code()).to_owned(),
                false,
                http_status_for(status.code()),
                GrpcReply::Failed(status),
            ),
            Err(Failure::Unreachable { label, status }) => {
                let message = format!("cannot reach the upstream {}: {status}", upstream.url());
                (
                    label.to_owned(),
                    false,
                    StatusCode::BAD_GATEWAY,
                    GrpcReply::Failed(Status::unavailable(message)),
                )
            }
            Err(Failure::Timeout(timeout)) => {
                let message = format!(
                    "the upstream {} did not answer within {timeout:?}",
                    upstream.url()
                );
                (
                    "timeout".to_owned(),
                    false,
                    StatusCode::GATEWAY_TIMEOUT,
                    GrpcReply::Failed(Status::deadline_exceeded(message)),
                )
            }
        };
        Relayed::Worded {
            label,
            success,
            response: reply(status, reply_to_send),
        }
    }
}

impl Answers for GrpcAnswers {
    fn stored(&self, _outcome: StoreOutcome) -> Response {
        reply(
            StatusCode::OK,
            GrpcReply::Ok(otlp::partial_success(self.signal, &self.rejected)),
        )
    }

    fn refused(&self, rejection: Rejection) -> Response {
        let status = Status::new(code_for(rejection.status), rejection.error);
        reply(rejection.status, GrpcReply::Failed(status))
    }

    fn injected(&self, status: StatusCode) -> Response {
        self.injected_retry_after(status, None)
    }

    fn injected_retry_after(&self, status: StatusCode, retry_after_secs: Option<u64>) -> Response {
        let code = code_for(status);
        let grpc_status = match retry_after_secs {
            Some(secs) => Status::with_error_details(
                code,
                "injected fault",
                ErrorDetails::with_retry_info(Some(Duration::from_secs(secs))),
            ),
            None => Status::new(code, "injected fault"),
        };
        reply(status, GrpcReply::Failed(grpc_status))
    }

    async fn forward_upstream(&self) -> Option<Relayed> {
        let (upstream, message) = self.forward.as_ref()?;
        let answer = upstream.export(message.clone()).await;
        Some(Self::relayed(upstream, answer))
    }

    fn outcome(&self, response: &Response) -> String {
        let code = match response.extensions().get::<GrpcReply>() {
            Some(GrpcReply::Ok(_)) => Code::Ok,
            Some(GrpcReply::Failed(status)) => status.code(),
            None => code_for(response.status()),
        };
        code_name(code).to_owned()
    }

    fn all_rejected(&self, records: usize) -> Response {
        let rejected = Rejections {
            count: records as u64 + self.rejected.count,
            first_reason: Some("rejected by an injected fault".to_owned()),
        };
        reply(
            StatusCode::OK,
            GrpcReply::Ok(otlp::partial_success(self.signal, &rejected)),
        )
    }
}

/// An HTTP response with `status` (what the stats count) carrying the gRPC answer.
fn reply(status: StatusCode, reply: GrpcReply) -> Response {
    let mut response = status.into_response();
    response.extensions_mut().insert(reply);
    response
}

/// The gRPC answer a response from [`front_door::serve_batch`] carries. A response without one (a fault that
/// found no connection to reset, which the accept loop always provides) becomes the status of its HTTP code.
pub(super) fn into_result(response: Response) -> Result<PartialSuccess, Status> {
    match response.extensions().get::<GrpcReply>() {
        Some(GrpcReply::Ok(partial_success)) => Ok(partial_success.clone()),
        Some(GrpcReply::Failed(status)) => Err(status.clone()),
        None => {
            let fault = response
                .headers()
                .get(front_door::FAULT_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("no answer");
            Err(Status::new(
                code_for(response.status()),
                format!("injected fault: {fault}"),
            ))
        }
    }
}

/// The gRPC code a client sees for what OTLP/HTTP answers with `status`: the statuses OTLP/HTTP clients retry (502,
/// 503, 504) become `UNAVAILABLE`, which gRPC clients retry; 429 `RESOURCE_EXHAUSTED`; the rest their gRPC
/// equivalent.
pub(crate) fn code_for(status: StatusCode) -> Code {
    match status.as_u16() {
        502..=504 => Code::Unavailable,
        other => Code::from(otlp::grpc_code(other)),
    }
}

/// The HTTP status the stats count a relayed gRPC status under (the reverse of [`code_for`], roughly).
fn http_status_for(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The canonical name of a gRPC code, as the request log shows it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_http_statuses_become_unavailable_and_429_resource_exhausted() {
        for status in [502, 503, 504] {
            let status = StatusCode::from_u16(status).expect("a status");
            assert_eq!(code_for(status), Code::Unavailable, "{status}");
        }
        assert_eq!(
            code_for(StatusCode::TOO_MANY_REQUESTS),
            Code::ResourceExhausted
        );
        assert_eq!(code_for(StatusCode::BAD_REQUEST), Code::InvalidArgument);
        assert_eq!(code_for(StatusCode::INTERNAL_SERVER_ERROR), Code::Internal);
        assert_eq!(code_for(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
    }

    #[test]
    fn an_injected_status_with_retry_after_carries_retry_info() {
        let answers = GrpcAnswers::new(Signal::Logs, Rejections::default(), None);
        let response = answers.injected_retry_after(StatusCode::SERVICE_UNAVAILABLE, Some(3));
        assert_eq!(answers.outcome(&response), "UNAVAILABLE");
        let status = into_result(response).expect_err("an error status");
        assert_eq!(status.code(), Code::Unavailable);
        let retry_info = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry_info.retry_delay, Some(Duration::from_secs(3)));
        let plain = into_result(answers.injected(StatusCode::TOO_MANY_REQUESTS))
            .expect_err("an error status");
        assert_eq!(plain.code(), Code::ResourceExhausted);
        assert!(plain.get_details_retry_info().is_none());
    }

    #[test]
    fn rejected_records_are_a_partial_success() {
        let answers = GrpcAnswers::new(Signal::Traces, Rejections::default(), None);
        let response = answers.all_rejected(3);
        assert_eq!(answers.outcome(&response), "OK");
        let (rejected, message) = into_result(response)
            .expect("OK")
            .expect("a partial success");
        assert_eq!(rejected, 3);
        assert!(message.starts_with("3 spans rejected"), "{message}");
    }
}
