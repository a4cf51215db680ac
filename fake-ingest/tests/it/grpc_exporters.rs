//! What the tests of foreign OTLP/gRPC exporters (Node, Python) share: a server with the gRPC listener and a fault
//! plan, and what it captured and answered on the traces route.

use std::net::{Ipv4Addr, SocketAddr};

use fake_ingest::{Config, FaultPlan, RequestsQuery, Server};

/// The gRPC traces route, as the request log names it.
pub(crate) const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A server with OTLP/gRPC on a free loopback port and the fault plan `plan` (JSON).
pub(crate) fn grpc_server(plan: &str) -> Server {
    Server::start_blocking(Config {
        faults: FaultPlan::from_json(plan).expect("a valid plan"),
        otlp_grpc_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        ..Config::default()
    })
    .expect("the server starts")
}

/// The names of the captured events (spans), in order.
pub(crate) fn span_names(server: &Server) -> Vec<String> {
    server
        .events()
        .into_iter()
        .map(|captured| captured.event.name)
        .collect()
}

/// The outcome of each request to the traces route, in order.
pub(crate) fn outcomes(server: &Server) -> Vec<String> {
    let query = RequestsQuery {
        route: Some(TRACES.to_owned()),
        ..RequestsQuery::default()
    };
    server
        .requests(&query)
        .requests
        .into_iter()
        .map(|request| request.outcome)
        .collect()
}
