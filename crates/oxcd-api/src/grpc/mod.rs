//! The v3 gRPC services. Each method validates, calls `EtcdServer`, and maps errors through
//! [`status`], the one place where etcd's error messages become gRPC statuses.

mod cluster;
mod election;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod unimplemented;
mod watch;

use std::sync::Arc;

use oxcd_proto::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use oxcd_proto::v3electionpb::election_server::ElectionServer;
use oxcd_proto::v3lockpb::lock_server::LockServer;
use oxcd_server::{EtcdServer, ServerError};

/// etcd accepts requests up to --max-request-bytes plus gRPC overhead; responses are bounded
/// only by the client's own limit.
const MAX_DECODING_BYTES: usize = 2 * 1024 * 1024 * 1024 - 1;

pub fn status(e: ServerError) -> tonic::Status {
    tonic::Status::new(e.code(), e.to_string())
}

pub use kv::KvService;

/// The KV service with etcd's message size limits.
pub fn kv_server(server: Arc<EtcdServer>) -> KvServer<KvService> {
    KvServer::new(KvService { server })
        .max_decoding_message_size(MAX_DECODING_BYTES)
        .max_encoding_message_size(usize::MAX)
}

/// Every gRPC service but KV, which `ClientService` reaches without the router.
pub fn routes(server: Arc<EtcdServer>) -> axum::Router {
    let cluster = ClusterServer::new(cluster::ClusterService {
        server: server.clone(),
    });
    let maintenance = MaintenanceServer::new(maintenance::MaintenanceService {
        server: server.clone(),
    });
    let watch = WatchServer::new(watch::WatchService {
        server: server.clone(),
    })
    .max_decoding_message_size(MAX_DECODING_BYTES)
    .max_encoding_message_size(usize::MAX);
    let lease = LeaseServer::new(lease::LeaseService {
        server: server.clone(),
    });
    let lock = LockServer::new(lock::LockService {
        server: server.clone(),
    });
    let election = ElectionServer::new(election::ElectionService {
        server: server.clone(),
    });
    let stub = unimplemented::Unimplemented;
    tonic::service::Routes::new(cluster)
        .add_service(maintenance)
        .add_service(watch)
        .add_service(lease)
        .add_service(AuthServer::new(stub))
        .add_service(lock)
        .add_service(election)
        .into_axum_router()
}
