//! The axum side of the PostHog front door: the capture routes through the shared pipeline
//! ([`front_door::serve_batch`]), worded as PostHog answers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::{ROUTES, SUCCESS_BODY, decode, decompress, error_body_for};
use crate::connection::ConnectionHandle;
use crate::event::Protocol;
use crate::front_door::{self, Answers, Intake, Rejection, RequestFacts};
use crate::state::AppState;
use crate::store::StoreOutcome;

/// The capture routes ([`ROUTES`]); other methods get `405`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    ROUTES.into_iter().fold(Router::new(), |router, route| {
        let handler = move |State(state): State<Arc<AppState>>, request: Request| {
            handle(route, state, request)
        };
        let other_methods = move |State(state): State<Arc<AppState>>, request: Request| async move {
            method_not_allowed(route, &state, request.method().as_str())
        };
        router.route(route, post(handler).fallback(other_methods))
    })
}

/// `POST` on one of the capture routes.
pub(crate) async fn handle(
    route: &'static str,
    state: Arc<AppState>,
    request: Request,
) -> Response {
    let ticket = state.store.begin_request(route, Protocol::Posthog);
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<ConnectionHandle>().cloned();
    let limit = state.max_body_bytes;
    let mut facts = RequestFacts::from_parts(&parts, state.upstream.is_some());
    let decoded = match front_door::read_raw_body(&parts.headers, body, limit).await {
        Err(rejection) => Err(rejection),
        Ok(bytes) => {
            facts.note_body(&bytes);
            let content_encoding = parts
                .headers
                .get(header::CONTENT_ENCODING)
                .and_then(|value| value.to_str().ok());
            decompress(content_encoding, parts.uri.query(), &bytes, limit)
                .and_then(|plain| decode(&plain))
                .map(|batch| batch.events)
                .map_err(|error| {
                    let status =
                        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    let rejection = Rejection::new(status, error.detail());
                    match error.attr() {
                        Some(index) => rejection.at(index),
                        None => rejection,
                    }
                })
        }
    };
    let intake = Intake {
        route,
        protocol: Protocol::Posthog,
        ticket,
        rejected: 0,
    };
    front_door::serve_batch(&state, connection, intake, facts, decoded, &PosthogAnswers).await
}

/// Any other method on a capture route: `405` with `Allow: POST`.
pub(crate) fn method_not_allowed(route: &'static str, state: &AppState, method: &str) -> Response {
    front_door::method_not_allowed(state, route, Protocol::Posthog, method, |detail| {
        PosthogAnswers.refused(Rejection::new(StatusCode::METHOD_NOT_ALLOWED, detail))
    })
}

/// How PostHog words each answer: `200 {"status": 1}`, errors as `{"type", "code", "detail", "attr"}`.
struct PosthogAnswers;

impl Answers for PosthogAnswers {
    fn stored(&self, _outcome: StoreOutcome) -> Response {
        json_response(StatusCode::OK, SUCCESS_BODY.to_owned())
    }

    fn refused(&self, rejection: Rejection) -> Response {
        json_response(
            rejection.status,
            error_body_for(rejection.status.as_u16(), &rejection.error, rejection.index),
        )
    }

    fn injected(&self, status: StatusCode) -> Response {
        json_response(
            status,
            error_body_for(status.as_u16(), "injected fault", None),
        )
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
