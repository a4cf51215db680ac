//! OTLP/HTTP answers: the `Export*ServiceResponse` of a success (with `partialSuccess` when records were
//! rejected) and the `google.rpc.Status` of an error, in the request's encoding.

use prost::Message as _;
use serde_json::json;

use super::{Encoding, Rejections, Signal};

/// A response to send: status, content type and body (headers such as `Retry-After` are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// The `200` answer to a request that was decoded: an empty `Export*ServiceResponse`, or one with
/// `partialSuccess` when records were rejected.
pub(crate) fn success_response(
    signal: Signal,
    encoding: Encoding,
    rejected: &Rejections,
) -> Response {
    let partial_success = partial_success(signal, rejected);
    let body = match encoding {
        Encoding::Protobuf => encode_success_protobuf(signal, partial_success),
        Encoding::Json => {
            // The counts are JSON numbers: proto3 JSON parsers accept numbers and strings for int64, and
            // opentelemetry-rust's exporter parses only numbers.
            let value = match partial_success {
                None => json!({}),
                Some((count, message)) => {
                    let count_field = match signal {
                        Signal::Logs => "rejectedLogRecords",
                        Signal::Traces => "rejectedSpans",
                        Signal::Metrics => "rejectedDataPoints",
                    };
                    json!({ "partialSuccess": { count_field: count, "errorMessage": message } })
                }
            };
            value.to_string().into_bytes()
        }
    };
    Response {
        status: 200,
        content_type: encoding.content_type(),
        body,
    }
}

/// The `partialSuccess` of an answer when records were rejected: the count and a message naming the first reason.
pub(crate) fn partial_success(signal: Signal, rejected: &Rejections) -> Option<(i64, String)> {
    (rejected.count > 0).then(|| {
        let message = format!(
            "{} {} rejected: {}",
            rejected.count,
            signal.records_noun(rejected.count),
            rejected.first_reason.as_deref().unwrap_or("rejected")
        );
        (i64::try_from(rejected.count).unwrap_or(i64::MAX), message)
    })
}

/// The protobuf `Export*ServiceResponse` of a signal.
fn encode_success_protobuf(signal: Signal, partial_success: Option<(i64, String)>) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    // The three responses differ only in their types and in the name of the rejected count.
    macro_rules! encode {
        ($module:ident, $response:ident, $partial_success:ident, $rejected:ident) => {
            $module::v1::$response {
                partial_success: partial_success.map(|($rejected, error_message)| {
                    $module::v1::$partial_success {
                        $rejected,
                        error_message,
                    }
                }),
            }
            .encode_to_vec()
        };
    }
    match signal {
        Signal::Logs => encode!(
            logs,
            ExportLogsServiceResponse,
            ExportLogsPartialSuccess,
            rejected_log_records
        ),
        Signal::Traces => encode!(
            trace,
            ExportTraceServiceResponse,
            ExportTracePartialSuccess,
            rejected_spans
        ),
        Signal::Metrics => encode!(
            metrics,
            ExportMetricsServiceResponse,
            ExportMetricsPartialSuccess,
            rejected_data_points
        ),
    }
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response (`opentelemetry-proto` does not ship it).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

/// The gRPC code that best matches an HTTP status, for `google.rpc.Status.code`.
pub(crate) fn grpc_code(http_status: u16) -> i32 {
    match http_status {
        400 | 413 | 415 | 422 => 3, // INVALID_ARGUMENT (413: the batch is too big for this server)
        401 => 16,                  // UNAUTHENTICATED
        403 => 7,                   // PERMISSION_DENIED
        404 => 5,                   // NOT_FOUND
        405 | 501 => 12,            // UNIMPLEMENTED
        408 | 504 => 4,             // DEADLINE_EXCEEDED
        409 => 10,                  // ABORTED
        429 => 8,                   // RESOURCE_EXHAUSTED
        502 | 503 => 14,            // UNAVAILABLE
        500 => 13,                  // INTERNAL
        _ => 2,                     // UNKNOWN
    }
}

/// An error answer: `status` with a `google.rpc.Status` body in `encoding` (JSON when the request's encoding is
/// unknown, as for `415` and `405`).
pub(crate) fn error_response(encoding: Encoding, status: u16, message: &str) -> Response {
    let rpc_status = RpcStatus {
        code: grpc_code(status),
        message: message.to_owned(),
    };
    let body = match encoding {
        Encoding::Protobuf => rpc_status.encode_to_vec(),
        Encoding::Json => json!({ "code": rpc_status.code, "message": rpc_status.message })
            .to_string()
            .into_bytes(),
    };
    Response {
        status,
        content_type: encoding.content_type(),
        body,
    }
}
