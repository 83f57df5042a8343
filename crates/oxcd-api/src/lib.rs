//! Client-facing front ends on the client port: the v3 gRPC services and the HTTP endpoints
//! (`/health`, `/version`), served together on one listener (gRPC is HTTP/2 with a
//! `application/grpc` body; everything else is plain HTTP).

mod client_service;
mod grpc;
mod http;
mod kv_unary;

pub use client_service::ClientService;

use std::sync::Arc;

use oxcd_server::EtcdServer;

/// The router for a client listener: every gRPC service plus the HTTP endpoints.
pub fn client_router(server: Arc<EtcdServer>) -> axum::Router {
    grpc::routes(server.clone()).merge(http::routes(server))
}

/// What a client listener serves: the router, with a direct path to the KV service.
pub fn client_service(server: Arc<EtcdServer>) -> ClientService {
    ClientService::new(
        server.clone(),
        grpc::kv_server(server.clone()),
        client_router(server),
    )
}
