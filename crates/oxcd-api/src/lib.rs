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

/// What a client listener serves: the KV service on a direct path, and a router for the
/// other gRPC services and the HTTP endpoints.
pub fn client_service(server: Arc<EtcdServer>) -> ClientService {
    ClientService::new(
        server.clone(),
        grpc::kv_server(server.clone()),
        grpc::routes(server.clone()).merge(http::routes(server)),
    )
}
