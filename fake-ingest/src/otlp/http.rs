//! The axum side of the OTLP front door: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` and PostHog's OTLP routes
//! `/i/v1/logs`, `/i/v1/traces`, `/i/v1/metrics` through the shared pipeline ([`front_door::serve_batch`]), worded
//! as OTLP/HTTP answers.
//!
//! PostHog's routes are the same OTLP handling plus PostHog's project token: from `?token=` in the query, else an
//! `Authorization: Bearer` header. It is kept with the events as the shared property `posthog.token`; a request
//! without one is answered `401` (stored nothing), as PostHog's ingestion does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use serde_json::{Map, Value};

use super::{Decoded, Encoding, Rejections, Signal, decode_for, error_response, success_response};
use crate::connection::ConnectionHandle;
use crate::event::SharedProperties;
use crate::front_door::{self, Answers, Intake, Rejection, RequestFacts};
use crate::state::AppState;
use crate::store::StoreOutcome;

/// Who a route belongs to: OTLP itself, or PostHog's OTLP ingestion (which needs a project token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Otlp,
    Posthog,
}

/// `POST /v1/logs`, `/v1/traces`, `/v1/metrics` and `/i/v1/logs`, `/i/v1/traces`, `/i/v1/metrics`; other methods
/// get `405`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    let doors = Signal::ALL.into_iter().flat_map(|signal| {
        [
            (signal, signal.route(), Door::Otlp),
            (signal, signal.posthog_route(), Door::Posthog),
        ]
    });
    doors.fold(Router::new(), |router, (signal, route, door)| {
        let handler = move |State(state): State<Arc<AppState>>, request: Request| {
            handle(signal, route, door, state, request)
        };
        let other_methods = move |State(state): State<Arc<AppState>>, request: Request| async move {
            method_not_allowed(signal, route, &state, request.method().as_str())
        };
        router.route(route, post(handler).fallback(other_methods))
    })
}

/// `POST` on a signal's route.
async fn handle(
    signal: Signal,
    route: &'static str,
    door: Door,
    state: Arc<AppState>,
    request: Request,
) -> Response {
    let ticket = state.store.begin_request(route, signal.protocol());
    let (parts, body) = request.into_parts();
    let mut facts = RequestFacts::from_parts(&parts, state.upstream.is_some());
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
    let token = match door {
        Door::Otlp => Ok(None),
        Door::Posthog => posthog_token(&parts).map(Some),
    };
    let decoded = match (encoding, token) {
        (_, Err(rejection)) => Err(rejection),
        (None, _) => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {:?}; OTLP/HTTP accepts application/x-protobuf or application/json",
                content_type.unwrap_or_default()
            ),
        )),
        (Some(encoding), Ok(token)) => {
            let request_properties = token.map(|token| {
                Arc::new(SharedProperties {
                    properties: Map::from_iter([(
                        "posthog.token".to_owned(),
                        Value::String(token),
                    )]),
                    parent: None,
                })
            });
            let limit = state.max_body_bytes;
            match front_door::read_body(&parts.headers, body, limit, &mut facts).await {
                Err(rejection) => Err(rejection),
                Ok(bytes) => match decode_for(signal, encoding, &bytes, request_properties) {
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
    front_door::serve_batch(&state, connection, intake, facts, decoded, &answers).await
}

/// PostHog's project token: `?token=` in the query, else `Authorization: Bearer <token>`; `401` without one.
fn posthog_token(parts: &axum::http::request::Parts) -> Result<String, Rejection> {
    let from_query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|Query(mut query)| query.remove("token"))
        .filter(|token| !token.trim().is_empty());
    let from_header = || {
        parts
            .headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    };
    from_query.or_else(from_header).ok_or_else(|| {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            "no PostHog project token: send it as ?token=... or Authorization: Bearer ...",
        )
    })
}

/// Any other method on a signal's route: `405` with `Allow: POST`.
fn method_not_allowed(
    signal: Signal,
    route: &'static str,
    state: &AppState,
    method: &str,
) -> Response {
    front_door::method_not_allowed(state, route, signal.protocol(), method, |message| {
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
