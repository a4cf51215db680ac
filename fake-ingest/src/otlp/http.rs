//! The axum side of the OTLP front door: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` through the shared pipeline
//! ([`front_door::serve_batch`]), worded as OTLP/HTTP answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{Decoded, Encoding, Rejections, Signal, decode, error_response, success_response};
use crate::connection::ConnectionHandle;
use crate::front_door::{self, Answers, Intake, Rejection};
use crate::state::AppState;
use crate::store::StoreOutcome;

/// `POST /v1/logs`, `/v1/traces`, `/v1/metrics`; other methods get `405`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Signal::ALL.into_iter().fold(Router::new(), |router, signal| {
        let handler = move |State(state): State<Arc<AppState>>, request: Request| {
            handle(signal, state, request)
        };
        let other_methods = move |State(state): State<Arc<AppState>>, request: Request| async move {
            method_not_allowed(signal, &state, request.method().as_str())
        };
        router.route(signal.route(), post(handler).fallback(other_methods))
    })
}

/// `POST` on a signal's route.
pub(crate) async fn handle(signal: Signal, state: Arc<AppState>, request: Request) -> Response {
    let route = signal.route();
    let ticket = state.store.begin_request(route, signal.protocol());
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<ConnectionHandle>().cloned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let encoding = content_type.and_then(Encoding::from_content_type);
    let mut answers = OtlpAnswers {
        signal,
        encoding: encoding.unwrap_or(Encoding::Json),
        rejected: Rejections::default(),
    };
    let decoded = match encoding {
        None => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {:?}; OTLP/HTTP accepts application/x-protobuf or application/json",
                content_type.unwrap_or_default()
            ),
        )),
        Some(encoding) => {
            match front_door::read_body(&parts.headers, body, state.max_body_bytes).await {
                Err(rejection) => Err(rejection),
                Ok(bytes) => match decode(signal, encoding, &bytes) {
                    Ok(Decoded { events, rejected }) => {
                        answers.rejected = rejected;
                        Ok(events)
                    }
                    Err(error) => Err(Rejection::bad_request(error.detail())),
                },
            }
        }
    };
    let intake = Intake {
        route,
        protocol: signal.protocol(),
        ticket,
        rejected: answers.rejected.count,
    };
    front_door::serve_batch(&state, connection, intake, decoded, &answers).await
}

/// Any other method on a signal's route: `405` with `Allow: POST`.
pub(crate) fn method_not_allowed(signal: Signal, state: &AppState, method: &str) -> Response {
    front_door::method_not_allowed(state, signal.route(), method, |message| {
        into_response(error_response(Encoding::Json, 405, &message))
    })
}

/// How OTLP words each answer: in the request's encoding, errors as `google.rpc.Status`.
struct OtlpAnswers {
    signal: Signal,
    encoding: Encoding,
    /// The records rejected while decoding, reported in a successful answer.
    rejected: Rejections,
}

impl Answers for OtlpAnswers {
    fn stored(&self, _outcome: StoreOutcome) -> Response {
        into_response(success_response(self.signal, self.encoding, &self.rejected))
    }

    fn refused(&self, rejection: Rejection) -> Response {
        into_response(error_response(
            self.encoding,
            rejection.status.as_u16(),
            &rejection.error,
        ))
    }

    fn injected(&self, status: StatusCode) -> Response {
        into_response(error_response(
            self.encoding,
            status.as_u16(),
            "injected fault",
        ))
    }

    fn all_rejected(&self, records: usize) -> Response {
        let rejected = Rejections {
            count: records as u64 + self.rejected.count,
            first_reason: Some("rejected by an injected fault".to_owned()),
        };
        into_response(success_response(self.signal, self.encoding, &rejected))
    }
}

fn into_response(response: super::Response) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, response.content_type)],
        response.body,
    )
        .into_response()
}
