//! Proxy mode (`--upstream URL`): a data request whose fault decision lets it through to storage is also forwarded,
//! as it was sent, to a real backend, and the backend's answer is relayed to the client. The HTTP front doors are
//! forwarded here ([`Upstream`]); the gRPC front door forwards its calls itself (`--upstream-grpc`,
//! `crate::grpc`'s upstream) through `Answers::forward_upstream`, and both come back as a [`Relayed`].
//!
//! What each decision does with an upstream (the fault plan decides first, as without one):
//! - store: forward, store locally, relay the upstream's answer (status, headers, body);
//! - `reset_after_store`: forward, store locally; after an upstream 2xx reset the client's connection (the
//!   acknowledgement the backend gave is lost), after any other answer relay it;
//! - `crash_after_store`: forward, store locally, crash;
//! - injected statuses, `reject`, `reset_before_store`, `hang`, `crash_before_store` and invalid requests never
//!   reach the upstream;
//! - a rule's latency is added after the upstream answered, on the way back.
//!
//! An upstream that cannot be reached is answered `502`, one that does not answer within the timeout `504` (both in
//! the front door's error shape); its 5xx are relayed as they are. Every answer is counted in `Stats::upstream` by
//! status or failure, apart from injected faults, and the request log records it with the request.
//!
//! Memory stays bounded: the forwarded body is the one already read under `max_body_bytes`, and the upstream's
//! answer is read under the same limit (a larger one is a `502`).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::Response;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The headers that describe a connection, not a message: never forwarded or relayed.
const HOP_BY_HOP: [header::HeaderName; 7] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::TE,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// The backend requests are forwarded to.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// `http://host:port` plus any path prefix, without a trailing slash.
    base: String,
    timeout: Duration,
    max_body_bytes: usize,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What is forwarded of a request besides its body: the path with the query, and the headers.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
}

/// Why a forwarded request got no answer from the upstream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection could be made (refused, unreachable): the client gets `502`.
    #[error("cannot connect to the upstream {url}")]
    Refused {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No answer within the timeout: the client gets `504`.
    #[error("the upstream {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// The connection failed after it was made, or the answer was too large: the client gets `502`.
    #[error("the upstream {url} failed")]
    Failed {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl UpstreamError {
    /// The name the stats and the request log use.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            UpstreamError::Refused { .. } => "refused",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Failed { .. } => "failed",
        }
    }

    /// The status the client gets instead of an upstream answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Refused { .. } | UpstreamError::Failed { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The upstream's answer to a forwarded request, read whole.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answered {
    /// The answer as the response relayed to the client.
    pub(crate) fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = without_hop_by_hop(self.headers);
        response
    }
}

impl Upstream {
    /// An upstream at `url` (`http://host:port`, optionally with a path prefix); `None` when it is not such a URL.
    pub(crate) fn new(url: &str, timeout: Duration, max_body_bytes: usize) -> Option<Upstream> {
        if !is_upstream_url(url) {
            return None;
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Some(Upstream {
            base: url.trim_end_matches('/').to_owned(),
            timeout,
            max_body_bytes,
            client,
        })
    }

    /// Forwards a request with `body` (as the client sent it) and reads the answer under the body limit.
    ///
    /// # Errors
    /// [`UpstreamError`] when the upstream gives no (readable) answer in time.
    pub(crate) async fn forward(
        &self,
        forward: &Forward,
        body: Bytes,
    ) -> Result<Answered, UpstreamError> {
        let url = format!("{}{}", self.base, forward.path_and_query);
        let failed =
            |url: &str, source: Box<dyn std::error::Error + Send + Sync>| UpstreamError::Failed {
                url: url.to_owned(),
                source,
            };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.parse().map_err(|error| failed(&url, Box::new(error)))?;
        *request.headers_mut() = without_hop_by_hop(forward.headers.clone());
        let exchange = async {
            let response = self.client.request(request).await.map_err(|source| {
                if source.is_connect() {
                    UpstreamError::Refused {
                        url: url.clone(),
                        source,
                    }
                } else {
                    failed(&url, Box::new(source))
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body_bytes)
                .collect()
                .await
                .map_err(|source| failed(&url, source))?
                .to_bytes();
            Ok(Answered {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_elapsed) => Err(UpstreamError::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }
}

fn without_hop_by_hop(mut headers: HeaderMap) -> HeaderMap {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers
}

/// What the upstream answered a forwarded request, or how forwarding failed.
#[derive(Debug)]
pub(crate) enum Relayed {
    /// Forwarded over HTTP by [`Upstream::forward`].
    Http(Result<Answered, UpstreamError>),
    /// Forwarded by the front door itself (the gRPC services), its answer already worded for the client.
    Worded {
        /// The label in the stats and the request log (`OK`, `UNAVAILABLE`, `refused`, `timeout`, ...).
        label: String,
        /// Whether the upstream acknowledged the request.
        success: bool,
        /// The answer to relay.
        response: Response,
    },
}

impl Relayed {
    /// The label of the answer in the stats and the request log: the status, or how forwarding failed.
    pub(crate) fn label(&self) -> String {
        match self {
            Relayed::Http(Ok(answered)) => answered.status.as_u16().to_string(),
            Relayed::Http(Err(error)) => error.label().to_owned(),
            Relayed::Worded { label, .. } => label.clone(),
        }
    }

    /// Whether the upstream acknowledged the request (a 2xx, or gRPC `OK`).
    pub(crate) fn is_success(&self) -> bool {
        match self {
            Relayed::Http(answer) => answer
                .as_ref()
                .is_ok_and(|answered| answered.status.is_success()),
            Relayed::Worded { success, .. } => *success,
        }
    }
}

/// Whether `url` is an upstream proxy mode can forward to: `http://host:port`, optionally with a path, no query.
pub(crate) fn is_upstream_url(url: &str) -> bool {
    url.parse::<Uri>().is_ok_and(|uri| {
        uri.scheme_str() == Some("http") && uri.authority().is_some() && uri.query().is_none()
    })
}

/// The header a relayed upstream failure carries, naming it (as the fault header names an injected fault).
pub(crate) const UPSTREAM_HEADER: &str = "x-fake-ingest-upstream";

/// The value of [`UPSTREAM_HEADER`] for a failure.
pub(crate) fn failure_header(error: &UpstreamError) -> HeaderValue {
    HeaderValue::from_static(error.label())
}
