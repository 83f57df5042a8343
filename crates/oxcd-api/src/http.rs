//! Plain HTTP endpoints on the client port, with etcd's bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oxcd_server::EtcdServer;

/// etcd answers unhealthy when a quorum read does not complete within a second.
const HEALTH_READ_TIMEOUT: Duration = Duration::from_secs(1);

pub fn routes(server: Arc<EtcdServer>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .with_state(server)
}

async fn health(State(server): State<Arc<EtcdServer>>) -> Response {
    let healthy = !server.alarms.any()
        && server.raft.status.leader() != 0
        && matches!(
            tokio::time::timeout(HEALTH_READ_TIMEOUT, server.linearizable_read()).await,
            Ok(Ok(()))
        );
    let (code, body) = if healthy {
        (StatusCode::OK, r#"{"health":"true"}"#)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"health":"false"}"#)
    };
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn version(State(server): State<Arc<EtcdServer>>) -> Response {
    let cluster = server
        .cluster
        .read()
        .version
        .clone()
        .unwrap_or_else(|| "not_decided".into());
    let body = serde_json::json!({
        "etcdserver": oxcd_server::peer::SERVER_VERSION,
        "etcdcluster": cluster,
    });
    axum::Json(body).into_response()
}
