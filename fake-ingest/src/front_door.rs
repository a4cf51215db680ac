//! The pipeline every data route runs, whatever its wire format: the one place faults are applied.
//!
//! A front door (`POST /ingest`, the OTLP routes, the PostHog routes) does three things:
//! 1. `state.store.begin_request(route, protocol)` as soon as the request arrives: counts it and gives its fault
//!    indexes;
//! 2. decodes the body into `Result<Vec<IncomingEvent>, Rejection>` (using [`read_body`] or [`read_raw_body`] and
//!    [`require_content_type`] for the shared HTTP rules: encodings, the body limit before and after decompression);
//! 3. calls [`serve_batch`] with an [`Intake`] and its [`Answers`], which word every answer in its protocol (the
//!    success body, refusals, injected statuses).
//!
//! [`serve_batch`] decides the request's fault ([`crate::FaultPlan::decide`]), in proxy mode forwards a request on
//! its way to storage to the upstream (`crate::proxy`), applies the delay, then stores, answers (or relays the
//! upstream's answer), resets, hangs or crashes, and counts the response and the fault. Invalid requests still go through the
//! decision (an outage answers `503` whatever the body), but actions that need a stored batch (`store`,
//! `reset_after_store`, `crash_after_store`) answer the rejection instead.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::connection::ConnectionHandle;
use crate::error::error_chain;
use crate::event::{IncomingEvent, Protocol};
use crate::fault_kinds::FaultKind;
use crate::faults::{Action, FaultContext};
use crate::proxy::{self, Forward};
use crate::query::RequestRecord;
use crate::state::{AppState, CrashBehavior};
use crate::store::{RequestTicket, StoreOutcome};

/// The header every injected response carries, naming the fault.
pub(crate) const FAULT_HEADER: &str = "x-fake-ingest-fault";

/// A request refused before storing: a status and `{"error": ..., "index": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) index: Option<usize>,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            index: None,
        }
    }

    pub(crate) fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    pub(crate) fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = match self.index {
            Some(index) => json!({ "error": self.error, "index": index }),
            None => json!({ "error": self.error }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// What the request log keeps of a request's headers and body, and what proxy mode forwards of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestFacts {
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    /// The body's size as sent, once it was read.
    pub(crate) body_bytes: Option<u64>,
    /// The path, query and headers to forward in proxy mode (`None`: the request is never forwarded).
    pub(crate) forward: Option<Forward>,
    /// The body as sent, once it was read (under the body limit), for proxy mode.
    pub(crate) raw_body: Option<Bytes>,
}

impl RequestFacts {
    /// The facts of an HTTP request; with `forwarding` (proxy mode), forwardable as it was sent (its path, query
    /// and headers are copied only then).
    pub(crate) fn from_parts(parts: &axum::http::request::Parts, forwarding: bool) -> Self {
        let forward = forwarding.then(|| Forward {
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
            headers: parts.headers.clone(),
        });
        Self {
            forward,
            ..Self::from_headers(&parts.headers)
        }
    }

    /// Notes the body as sent: its size, and the bytes for forwarding.
    pub(crate) fn note_body(&mut self, body: &Bytes) {
        self.body_bytes = Some(body.len() as u64);
        self.raw_body = Some(body.clone());
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            content_type: text(header::CONTENT_TYPE),
            content_encoding: text(header::CONTENT_ENCODING),
            body_bytes: None,
            forward: None,
            raw_body: None,
        }
    }
}

/// What the request log records of one request once its outcome is known.
struct Logged<'a> {
    intake: &'a Intake,
    facts: RequestFacts,
    rule: Option<usize>,
    delayed: bool,
    events: Option<u64>,
    /// Proxy mode: what the upstream answered.
    upstream: Option<String>,
}

impl Logged<'_> {
    /// Logs the request with the fault it got (`None`: none besides a delay) and what the client got.
    fn log(
        &self,
        state: &AppState,
        fault: Option<FaultKind>,
        outcome: String,
        stored: Option<&StoreOutcome>,
        answered: bool,
    ) {
        let fault = fault.or(self.delayed.then_some(FaultKind::Latency));
        state.store.log_request(RequestRecord {
            index: self.intake.ticket.index,
            time: self.intake.ticket.arrived_at.to_string(),
            method: "POST".to_owned(),
            route: self.intake.route.to_owned(),
            protocol: self.intake.protocol,
            content_type: self.facts.content_type.clone(),
            content_encoding: self.facts.content_encoding.clone(),
            body_bytes: self.facts.body_bytes,
            events: self.events,
            duplicates: stored.map(|stored| stored.duplicates),
            duplicate_seqs: stored
                .map(|stored| stored.duplicate_seqs.clone())
                .unwrap_or_default(),
            fault: fault.map(|kind| kind.name().to_owned()),
            rule: self.rule,
            outcome,
            latency_ms: answered
                .then(|| self.intake.ticket.arrived.elapsed().as_secs_f64() * 1000.0),
            upstream: self.upstream.clone(),
        });
    }
}

/// Which route and protocol a batch came through, and its request ticket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Intake {
    pub(crate) route: &'static str,
    pub(crate) protocol: Protocol,
    pub(crate) ticket: RequestTicket,
    /// Records the decoder rejected on their own (OTLP partial success), counted when the answer reports them.
    pub(crate) rejected: u64,
}

/// How a front door words its answers. [`serve_batch`] decides which answer a request gets; the front door only
/// renders it (headers such as `Retry-After` and the fault header are added by `serve_batch`).
pub(crate) trait Answers {
    /// The answer when the batch was stored (duplicates included).
    fn stored(&self, outcome: StoreOutcome) -> Response;

    /// The answer to a request refused before storing.
    fn refused(&self, rejection: Rejection) -> Response {
        rejection.into_response()
    }

    /// The answer of an injected status.
    fn injected(&self, status: StatusCode) -> Response {
        (status, Json(json!({ "error": "injected fault" }))).into_response()
    }

    /// The answer of an injected status that asks the client to wait `retry_after_secs` before retrying; by
    /// default [`Answers::injected`] (the HTTP front doors add `Retry-After` to it in `serve_batch`).
    fn injected_retry_after(&self, status: StatusCode, retry_after_secs: Option<u64>) -> Response {
        let _ = retry_after_secs;
        self.injected(status)
    }

    /// Proxy mode, for a front door that forwards requests itself (gRPC): forwards this request to its upstream and
    /// gives the answer; `None` (the default) when it does not, and the HTTP forwarding of [`RequestFacts`] applies.
    fn forward_upstream(&self) -> impl Future<Output = Option<proxy::Relayed>> + Send + '_ {
        std::future::ready(None)
    }

    /// What the request log records as the outcome of an answer; by default its HTTP status code.
    fn outcome(&self, response: &Response) -> String {
        response.status().as_u16().to_string()
    }

    /// The answer when a `reject` fault rejects every one of the `records` decoded; by default an injected `400`
    /// (only OTLP has a way to say "accepted, but these records were rejected").
    fn all_rejected(&self, records: usize) -> Response {
        let _ = records;
        self.injected(StatusCode::BAD_REQUEST)
    }
}

/// Refuses a request whose `Content-Type` media type is not one of `accepted` (parameters are ignored).
pub(crate) fn require_content_type(
    headers: &HeaderMap,
    accepted: &[&str],
) -> Result<(), Rejection> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().trim());
    match media_type {
        Some(media_type)
            if accepted
                .iter()
                .any(|known| media_type.eq_ignore_ascii_case(known)) =>
        {
            Ok(())
        }
        Some(media_type) => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type \"{media_type}\"; expected {}",
                accepted.join(" or ")
            ),
        )),
        None => Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("missing Content-Type; expected {}", accepted.join(" or ")),
        )),
    }
}

/// Reads the body under `limit` bytes, then decompresses it (gzip or identity) under `limit` bytes again; notes
/// the size as sent in `facts`.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    facts: &mut RequestFacts,
) -> Result<Bytes, Rejection> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(HeaderValue::to_str)
    {
        None => false,
        Some(Ok(value)) if value.trim().eq_ignore_ascii_case("identity") => false,
        Some(Ok(value)) if value.trim().eq_ignore_ascii_case("gzip") => true,
        Some(value) => {
            let shown = value.unwrap_or("(not text)");
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding \"{shown}\"; expected gzip or identity"),
            ));
        }
    };
    let bytes = read_raw_body(headers, body, limit).await?;
    facts.note_body(&bytes);
    if !gzip {
        return Ok(bytes);
    }
    match crate::web_body::gunzip_limited(&bytes, limit) {
        Ok(decompressed) => Ok(Bytes::from(decompressed)),
        Err(crate::web_body::GunzipError::TooLarge { .. }) => Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the decompressed body exceeds the limit of {limit} bytes"),
        )),
        Err(crate::web_body::GunzipError::Invalid(error)) => Err(Rejection::bad_request(format!(
            "the body is not valid gzip: {error}"
        ))),
    }
}

/// Reads the body as sent (no decompression) under `limit` bytes.
pub(crate) async fn read_raw_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let too_large = |what: &str| {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large("the body"));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large("the body"));
        }
        Err(error) => {
            return Err(Rejection::bad_request(format!(
                "cannot read the body: {error}"
            )));
        }
    };
    Ok(bytes)
}

/// Decides the request's fault and carries it out; `answers` words every answer in the front door's protocol.
pub(crate) async fn serve_batch(
    state: &Arc<AppState>,
    connection: Option<ConnectionHandle>,
    intake: Intake,
    facts: RequestFacts,
    decoded: Result<Vec<IncomingEvent>, Rejection>,
    answers: &impl Answers,
) -> Response {
    let decision = state.faults().decide(
        state.seed,
        &FaultContext {
            request_index: intake.ticket.index,
            route_index: intake.ticket.route_index,
            protocol_index: intake.ticket.protocol_index,
            route: intake.route,
            protocol: intake.protocol,
            since_start: intake.ticket.since_start,
            events: decoded.as_deref().ok(),
        },
    );
    // Proxy mode: a request on its way to storage goes to the upstream first; the delay is added on the way back.
    let on_its_way_to_storage = decoded.is_ok()
        && matches!(
            decision.action,
            Action::Store | Action::ResetAfterStore | Action::CrashAfterStore
        );
    let upstream = match (on_its_way_to_storage, &state.upstream, &facts) {
        (false, _, _) => None,
        (
            true,
            Some(upstream),
            RequestFacts {
                forward: Some(forward),
                raw_body: Some(body),
                ..
            },
        ) => Some(proxy::Relayed::Http(
            upstream.forward(forward, body.clone()).await,
        )),
        (true, _, _) => answers.forward_upstream().await,
    };
    if let Some(relayed) = &upstream {
        state.store.count_upstream(&relayed.label());
    }
    if let Some(delay) = decision.latency {
        state.store.count_fault(FaultKind::Latency);
        tokio::time::sleep(delay).await;
    }
    let logged = Logged {
        intake: &intake,
        facts,
        rule: decision.rule,
        delayed: decision.latency.is_some(),
        events: decoded.as_ref().ok().map(|events| events.len() as u64),
        upstream: upstream.as_ref().map(proxy::Relayed::label),
    };
    let status_of = |response: &Response| answers.outcome(response);
    let response = match (decision.action, decoded) {
        (
            Action::Status {
                status,
                retry_after_secs,
                retry_after_as_date,
            },
            _,
        ) => {
            state.store.count_fault(FaultKind::Status);
            let response = injected_status(answers, status, retry_after_secs, retry_after_as_date);
            logged.log(
                state,
                Some(FaultKind::Status),
                status_of(&response),
                None,
                true,
            );
            response
        }
        (Action::ResetBeforeStore, _) => {
            state.store.count_fault(FaultKind::ResetBeforeStore);
            let kind = Some(FaultKind::ResetBeforeStore);
            logged.log(state, kind, "reset".to_owned(), None, true);
            reset(connection, "reset_before_store").await
        }
        (Action::Hang, _) => {
            state.store.count_fault(FaultKind::Hang);
            logged.log(state, Some(FaultKind::Hang), "hang".to_owned(), None, false);
            std::future::pending().await
        }
        (Action::CrashBeforeStore, _) => {
            state.store.count_fault(FaultKind::CrashBeforeStore);
            let kind = Some(FaultKind::CrashBeforeStore);
            logged.log(state, kind, "crash".to_owned(), None, true);
            crash(state, connection, "crash_before_store").await
        }
        (_, Err(rejection)) => {
            let response = answers.refused(rejection);
            logged.log(state, None, status_of(&response), None, true);
            response
        }
        (Action::Reject, Ok(events)) => {
            state.store.count_fault(FaultKind::Reject);
            state
                .store
                .count_rejected(events.len() as u64 + intake.rejected);
            let mut response = answers.all_rejected(events.len());
            response
                .headers_mut()
                .insert(FAULT_HEADER, HeaderValue::from_static("reject"));
            logged.log(
                state,
                Some(FaultKind::Reject),
                status_of(&response),
                None,
                true,
            );
            response
        }
        (
            action @ (Action::Store | Action::ResetAfterStore | Action::CrashAfterStore),
            Ok(events),
        ) => match store(state, intake, logged.upstream.clone(), events).await {
            Err(response) => {
                logged.log(state, None, status_of(&response), None, true);
                response
            }
            Ok(outcome) => {
                let duplicates = Some(&outcome);
                // Proxy mode: the upstream's answer is the client's, after a plain store and after a
                // `reset_after_store` the upstream did not acknowledge (there is no acknowledgement to lose).
                let relayed = match (&action, upstream) {
                    (Action::Store, Some(relayed)) => Some(relayed),
                    (Action::ResetAfterStore, Some(relayed)) if !relayed.is_success() => {
                        Some(relayed)
                    }
                    _ => None,
                };
                match (action, relayed) {
                    (_, Some(relayed)) => {
                        state.store.count_rejected(intake.rejected);
                        let response = relay(answers, relayed);
                        logged.log(state, None, status_of(&response), duplicates, true);
                        response
                    }
                    (Action::ResetAfterStore, None) => {
                        state.store.count_fault(FaultKind::ResetAfterStore);
                        let kind = Some(FaultKind::ResetAfterStore);
                        logged.log(state, kind, "reset".to_owned(), duplicates, true);
                        reset(connection, "reset_after_store").await
                    }
                    (Action::CrashAfterStore, None) => {
                        state.store.count_fault(FaultKind::CrashAfterStore);
                        let kind = Some(FaultKind::CrashAfterStore);
                        logged.log(state, kind, "crash".to_owned(), duplicates, true);
                        crash(state, connection, "crash_after_store").await
                    }
                    (_, None) => {
                        state.store.count_rejected(intake.rejected);
                        let response = answers.stored(outcome.clone());
                        logged.log(state, None, status_of(&response), duplicates, true);
                        response
                    }
                }
            }
        },
    };
    state
        .store
        .count_response(intake.route, response.status().as_u16());
    response
}

/// The answer relayed from the upstream: its own, or the front door's `502`/`504` when it gave none.
fn relay(answers: &impl Answers, upstream: proxy::Relayed) -> Response {
    match upstream {
        proxy::Relayed::Worded { response, .. } => response,
        proxy::Relayed::Http(Ok(answered)) => answered.into_response(),
        proxy::Relayed::Http(Err(error)) => {
            tracing::warn!(error = %error_chain(&error), "the upstream gave no answer");
            let header = proxy::failure_header(&error);
            let mut response = answers.refused(Rejection::new(error.status(), error_chain(&error)));
            response
                .headers_mut()
                .insert(proxy::UPSTREAM_HEADER, header);
            response
        }
    }
}

/// Stores a batch, off the async runtime when it waits for a disk sync.
async fn store(
    state: &Arc<AppState>,
    intake: Intake,
    upstream: Option<String>,
    events: Vec<IncomingEvent>,
) -> Result<StoreOutcome, Response> {
    let request_id = intake.ticket.index;
    let stored = if state.store.is_durable() {
        let state = Arc::clone(state);
        let task = move || {
            state
                .store
                .store_batch(request_id, intake.protocol, intake.route, upstream, events)
        };
        match tokio::task::spawn_blocking(task).await {
            Ok(stored) => stored,
            Err(join_error) => {
                tracing::error!(%join_error, "the store task failed; answering 500");
                let rejection =
                    Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "the store task failed");
                return Err(rejection.into_response());
            }
        }
    } else {
        state
            .store
            .store_batch(request_id, intake.protocol, intake.route, upstream, events)
    };
    stored.map_err(|error| {
        let chain = error_chain(&error);
        tracing::error!(error = %chain, "cannot store a batch; answering 500");
        Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the batch: {chain}"),
        )
        .into_response()
    })
}

fn injected_status(
    answers: &impl Answers,
    status: u16,
    retry_after_secs: Option<u64>,
    retry_after_as_date: bool,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = answers.injected_retry_after(code, retry_after_secs);
    let headers = response.headers_mut();
    headers.insert(FAULT_HEADER, HeaderValue::from_static("status"));
    let retry_after = match retry_after_secs {
        Some(secs) if retry_after_as_date => http_date_in(secs).and_then(|date| date.parse().ok()),
        Some(secs) => Some(HeaderValue::from(secs)),
        None => None,
    };
    if let Some(value) = retry_after {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

/// The HTTP-date (IMF-fixdate) `secs` seconds from now, rounded up to a whole second, so that a client waiting until
/// then waits at least `secs` seconds.
fn http_date_in(secs: u64) -> Option<String> {
    let now = jiff::Timestamp::now();
    let whole = now.as_second().checked_add(i64::try_from(secs).ok()?)?;
    let at = jiff::Timestamp::from_second(whole + i64::from(now.subsec_nanosecond() > 0)).ok()?;
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&at)
        .ok()
}

/// The response of a fault that cannot happen without a connection or server (`app()` driven by `oneshot`).
fn degraded(fault: &'static str, why: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": format!("injected fault: {fault} ({why}; answering 503 instead)") })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(FAULT_HEADER, HeaderValue::from_static(fault));
    response
}

async fn reset(connection: Option<ConnectionHandle>, fault: &'static str) -> Response {
    match connection {
        Some(connection) => {
            tracing::debug!(fault, "resetting the connection");
            connection.reset();
            // The connection task drops this future along with the connection.
            std::future::pending().await
        }
        None => degraded(fault, "no connection to reset"),
    }
}

async fn crash(
    state: &AppState,
    connection: Option<ConnectionHandle>,
    fault: &'static str,
) -> Response {
    match &state.crash {
        CrashBehavior::AbortProcess => {
            tracing::error!(fault, "injected crash: aborting the process");
            std::process::abort()
        }
        CrashBehavior::StopServer(stop) => {
            tracing::warn!(fault, "injected crash: stopping the embedded server");
            let _ = stop.send(true);
            if let Some(connection) = connection {
                connection.reset();
            }
            std::future::pending().await
        }
        CrashBehavior::Respond => degraded(fault, "no server to crash"),
    }
}

/// Any method but `POST` on a front door's `route`: counts the request, answers the `405` that `refuse` words from
/// the message, with `Allow: POST`, and counts the answer.
pub(crate) fn method_not_allowed(
    state: &AppState,
    route: &'static str,
    protocol: Protocol,
    method: &str,
    refuse: impl FnOnce(String) -> Response,
) -> Response {
    state.store.count_request(route);
    let mut response = refuse(format!(
        "method {method} is not allowed on {route}; use POST"
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    state
        .store
        .count_response(route, response.status().as_u16());
    state.store.log_request(RequestRecord {
        index: 0,
        time: jiff::Timestamp::now().to_string(),
        method: method.to_owned(),
        route: route.to_owned(),
        protocol,
        content_type: None,
        content_encoding: None,
        body_bytes: None,
        events: None,
        duplicates: None,
        duplicate_seqs: Vec::new(),
        fault: None,
        rule: None,
        outcome: response.status().as_u16().to_string(),
        latency_ms: None,
        upstream: None,
    });
    response
}
