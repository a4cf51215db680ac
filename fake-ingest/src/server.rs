//! [`app`], the accept loop, and the embeddable [`Server`] handle.
//!
//! The accept loop is our own (not `axum::serve`) so that each connection is served by hyper with a
//! [`ConnectionHandle`] in its requests' extensions and a [`ResettableStream`] underneath: that is what lets a
//! handler end its connection with a TCP RST. Every task selects on one stop signal, so shutdown (and an injected
//! crash of an embedded server) drops every connection at once, hung requests included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::Config;
use crate::connection::{ConnectionHandle, ResettableStream};
use crate::error::Error;
use crate::event::CapturedEvent;
use crate::expect::{self, Expectation, ExpectationFailed};
use crate::faults::FaultPlan;
use crate::front_door::Rejection;
use crate::query::{
    EventFilter, EventsPage, EventsQuery, RequestsPage, RequestsQuery, WaitOutcome,
};
use crate::rate_history::RateHistory;
use crate::state::{AppState, CrashBehavior};
use crate::stats::Stats;
use crate::{control, grpc, ingest, otlp, posthog, web};

/// The whole service as a router, without a socket: drive it with `tower::ServiceExt::oneshot`.
///
/// Faults that need a connection or a server (`reset_*`, `crash_*`) answer `503` with an `x-fake-ingest-fault`
/// header here instead; `reset_after_store` and `crash_after_store` still store the batch first.
///
/// ```
/// use tower::ServiceExt;
/// use axum::{body::Body, http::Request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = fake_ingest::app(fake_ingest::Config::default())?;
/// let request = Request::get("/_fake/health").body(Body::empty())?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] or [`Error::Plan`] for an invalid config; the data-directory errors when
/// `data_dir` is set and its log cannot be opened, locked or replayed.
pub fn app(config: Config) -> Result<Router, Error> {
    config.validate()?;
    Ok(router(AppState::new(&config, CrashBehavior::Respond)?))
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            ingest::ROUTE,
            post(ingest::handle).fallback(ingest::method_not_allowed),
        )
        .merge(otlp::http::routes())
        .merge(posthog::http::routes())
        .merge(web::routes())
        .merge(control::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(State(state): State<Arc<AppState>>, request: Request) -> Response {
    state
        .store
        .count_unknown_route(request.method().as_str(), request.uri().path());
    Rejection::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
    .into_response()
}

/// What an injected crash (`crash_before_store`, `crash_after_store`) does to a running [`Server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CrashMode {
    /// Stop this server at once: every connection is dropped with no response and the port is closed; the handle
    /// stays readable. The default for embedded servers, so a test process survives its server's crash.
    #[default]
    StopServer,
    /// Abort the whole process (`std::process::abort`), as the `fake-ingest` binary does.
    AbortProcess,
}

/// A fake-ingest server running on a real socket. Dropping it shuts it down.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    otlp_addr: Option<SocketAddr>,
    otlp_grpc_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    /// The runtime thread of [`Server::start_blocking`].
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a server on the current tokio runtime (`config.listen` with port 0 picks a free port).
    ///
    /// # Errors
    /// As [`app`], plus [`Error::Bind`] when the address cannot be bound.
    pub async fn start(config: Config) -> Result<Server, Error> {
        Self::start_with_crash_mode(config, CrashMode::StopServer).await
    }

    /// Starts a server whose injected crashes do what `crash_mode` says.
    ///
    /// # Errors
    /// As [`Server::start`].
    pub async fn start_with_crash_mode(
        config: Config,
        crash_mode: CrashMode,
    ) -> Result<Server, Error> {
        config.validate()?;
        let (stop, stopped) = watch::channel(false);
        let crash = match crash_mode {
            CrashMode::StopServer => CrashBehavior::StopServer(stop.clone()),
            CrashMode::AbortProcess => CrashBehavior::AbortProcess,
        };
        let state = AppState::new(&config, crash)?;
        let (listener, addr) = bind(config.listen).await?;
        let otlp_listener = match config.otlp_listen {
            Some(otlp_listen) => Some(bind(otlp_listen).await?),
            None => None,
        };
        let grpc_listener = match config.otlp_grpc_listen {
            Some(grpc_listen) => Some(bind(grpc_listen).await?),
            None => None,
        };
        let otlp_addr = otlp_listener.as_ref().map(|(_, addr)| *addr);
        let otlp_grpc_addr = grpc_listener.as_ref().map(|(_, addr)| *addr);
        let router = router(Arc::clone(&state));
        if let Some((otlp_listener, _)) = otlp_listener {
            let serving = accept_loop(otlp_listener, router.clone(), stopped.clone(), Wire::Http1);
            tokio::spawn(serving);
        }
        if let Some((grpc_listener, _)) = grpc_listener {
            let upstream = config
                .upstream_grpc
                .as_deref()
                .map(|url| grpc::GrpcUpstream::new(url, config.upstream_timeout));
            let grpc_router = grpc::router(Arc::clone(&state), upstream);
            tokio::spawn(accept_loop(
                grpc_listener,
                grpc_router,
                stopped.clone(),
                Wire::Http2,
            ));
        }
        tokio::spawn(accept_loop(listener, router, stopped, Wire::Http1));
        Ok(Server {
            addr,
            otlp_addr,
            otlp_grpc_addr,
            state,
            stop,
            thread: None,
        })
    }

    /// Starts a server on its own runtime thread, for plain synchronous code and tests.
    ///
    /// # Errors
    /// As [`Server::start`], plus [`Error::Runtime`] when the thread or runtime cannot be created.
    pub fn start_blocking(config: Config) -> Result<Server, Error> {
        let (started_sender, started) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-ingest".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_sender.send(Err(Error::Runtime(error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Server::start(config).await {
                        Ok(server) => {
                            let mut stopped = server.stop.subscribe();
                            if started_sender.send(Ok(server)).is_ok() {
                                let _ = stopped.wait_for(|stop| *stop).await;
                            }
                        }
                        Err(error) => {
                            let _ = started_sender.send(Err(error));
                        }
                    }
                });
                // Bounded: connection tasks end on the stop signal; this only guards against a stuck task.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(Error::Runtime)?;
        match started.recv() {
            Ok(Ok(mut server)) => {
                server.thread = Some(thread);
                Ok(server)
            }
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Runtime(std::io::Error::other(
                    "the server thread ended before starting",
                )))
            }
        }
    }

    /// The base URL, `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the second listener (`Config::otlp_listen`), `http://HOST:PORT`, when there is one.
    pub fn otlp_url(&self) -> Option<String> {
        self.otlp_addr.map(|addr| format!("http://{addr}"))
    }

    /// The base URL of the OTLP/gRPC listener (`Config::otlp_grpc_listen`), `http://HOST:PORT`, when there is one:
    /// the endpoint for an OTLP/gRPC exporter.
    pub fn otlp_grpc_url(&self) -> Option<String> {
        self.otlp_grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// A snapshot of the counters (as `GET /_fake/stats`).
    pub fn stats(&self) -> Stats {
        self.state.store.stats()
    }

    /// Every captured event, in arrival order.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.state.store.events()
    }

    /// One page of the captured events that match `query` (as `GET /_fake/events`: paging, filters, search, the
    /// events of one request).
    pub fn events_page(&self, query: &EventsQuery) -> EventsPage {
        self.state.store.page(query)
    }

    /// Events received and errors answered per interval since start or the last reset (as `GET /_fake/history`).
    pub fn history(&self) -> RateHistory {
        self.state.store.history()
    }

    /// Waits until at least `min` captured events match `filter`, or `timeout` passes; answers what matched either
    /// way (as `GET /_fake/wait`). Blocks the calling thread; from async code use
    /// [`Server::wait_for_events_async`].
    pub fn wait_for_events(
        &self,
        filter: &EventFilter,
        min: usize,
        timeout: Duration,
    ) -> WaitOutcome {
        self.state
            .store
            .wait_until_blocking(timeout, expect::Look::new(filter, min))
    }

    /// As [`Server::wait_for_events`], for async code.
    pub async fn wait_for_events_async(
        &self,
        filter: &EventFilter,
        min: usize,
        timeout: Duration,
    ) -> WaitOutcome {
        self.state
            .store
            .wait_until(timeout, expect::Look::new(filter, min))
            .await
    }

    /// Checks `expectation` against what is captured now.
    ///
    /// # Errors
    /// [`ExpectationFailed`], whose message lists the failed checks and what was captured.
    pub fn check(&self, expectation: &Expectation) -> Result<(), ExpectationFailed> {
        self.expect_within(expectation, Duration::ZERO)
    }

    /// Waits until `expectation` holds, or `timeout` passes. Blocks the calling thread; from async code use
    /// [`Server::expect_within_async`]. An expectation with upper bounds (`exactly`, `at_most`, `none_named`)
    /// holds as soon as it holds, so call it once the code under test is done sending.
    ///
    /// # Errors
    /// [`ExpectationFailed`] when it still fails at the timeout, with what was captured then.
    pub fn expect_within(
        &self,
        expectation: &Expectation,
        timeout: Duration,
    ) -> Result<(), ExpectationFailed> {
        self.state
            .store
            .wait_until_blocking(timeout, expect::Expecting::new(expectation))
    }

    /// As [`Server::expect_within`], for async code.
    ///
    /// # Errors
    /// As [`Server::expect_within`].
    pub async fn expect_within_async(
        &self,
        expectation: &Expectation,
        timeout: Duration,
    ) -> Result<(), ExpectationFailed> {
        self.state
            .store
            .wait_until(timeout, expect::Expecting::new(expectation))
            .await
    }

    /// One page of the request log (as `GET /_fake/requests`).
    pub fn requests(&self, query: &RequestsQuery) -> RequestsPage {
        self.state.store.requests(query)
    }

    /// The current fault plan.
    pub fn faults(&self) -> FaultPlan {
        FaultPlan::clone(&self.state.faults())
    }

    /// Replaces the fault plan (as `PUT /_fake/faults`). Validate hand-built plans with [`FaultPlan::validate`].
    pub fn set_faults(&self, plan: FaultPlan) {
        self.state.set_faults(plan);
    }

    /// Forgets events, counters, the request index and the clock, as `POST /_fake/reset`.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the batch log cannot be truncated.
    pub fn reset(&self) -> Result<(), Error> {
        self.state.store.reset()
    }

    /// Stops the server: no new connections, every open one dropped. Returns within a few seconds at most.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds a listener, warning when the address is reachable from other machines.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    if !local.ip().is_loopback() {
        tracing::warn!(addr = %local, "listening on a non-loopback address: anyone who can reach it can read the captured events and change the fault plan");
    }
    Ok((listener, local))
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the server is being dropped, so stop too.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The HTTP version a listener speaks: HTTP/1 for the HTTP routes, HTTP/2 (prior knowledge) for gRPC.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Http1,
    Http2,
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    wire: Wire,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = ConnectionHandle::default();
        let service = {
            let router = router.clone();
            let handle = handle.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(handle.clone());
                router.clone().oneshot(request)
            })
        };
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(ResettableStream::new(stream, handle.clone()));
            let connection = async move {
                match wire {
                    Wire::Http1 => {
                        let http1 = hyper::server::conn::http1::Builder::new();
                        http1.serve_connection(io, service).await
                    }
                    Wire::Http2 => {
                        let http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                        http2.serve_connection(io, service).await
                    }
                }
            };
            tokio::select! {
                served = connection => {
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                () = handle.reset_requested() => tracing::debug!("connection reset"),
                () = stopped(&mut stop) => {}
            }
        });
    }
    tracing::debug!("accept loop stopped");
}
