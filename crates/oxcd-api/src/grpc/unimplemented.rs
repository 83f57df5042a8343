//! Services whose implementation comes in later work answer `Unimplemented`, so clients get a
//! clear gRPC status instead of an HTTP 404.

use std::pin::Pin;

use futures::Stream;
use oxcd_proto::etcdserverpb as pb;
use oxcd_proto::v3electionpb as el;
use oxcd_proto::v3lockpb as lk;
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, Copy)]
pub struct Unimplemented;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!("{what} is not supported yet")))
}

macro_rules! stubs {
    ($($name:ident: $req:ty => $resp:ty;)*) => {
        $(
            async fn $name(&self, _req: Request<$req>) -> Result<Response<$resp>, Status> {
                unimplemented(stringify!($name))
            }
        )*
    };
}

#[tonic::async_trait]
impl pb::watch_server::Watch for Unimplemented {
    type WatchStream = BoxStream<pb::WatchResponse>;
    stubs! { watch: Streaming<pb::WatchRequest> => Self::WatchStream; }
}

#[tonic::async_trait]
impl pb::lease_server::Lease for Unimplemented {
    type LeaseKeepAliveStream = BoxStream<pb::LeaseKeepAliveResponse>;
    stubs! {
        lease_grant: pb::LeaseGrantRequest => pb::LeaseGrantResponse;
        lease_revoke: pb::LeaseRevokeRequest => pb::LeaseRevokeResponse;
        lease_keep_alive: Streaming<pb::LeaseKeepAliveRequest> => Self::LeaseKeepAliveStream;
        lease_time_to_live: pb::LeaseTimeToLiveRequest => pb::LeaseTimeToLiveResponse;
        lease_leases: pb::LeaseLeasesRequest => pb::LeaseLeasesResponse;
    }
}

#[tonic::async_trait]
impl pb::auth_server::Auth for Unimplemented {
    stubs! {
        auth_enable: pb::AuthEnableRequest => pb::AuthEnableResponse;
        auth_disable: pb::AuthDisableRequest => pb::AuthDisableResponse;
        authenticate: pb::AuthenticateRequest => pb::AuthenticateResponse;
        user_add: pb::AuthUserAddRequest => pb::AuthUserAddResponse;
        user_get: pb::AuthUserGetRequest => pb::AuthUserGetResponse;
        user_list: pb::AuthUserListRequest => pb::AuthUserListResponse;
        user_delete: pb::AuthUserDeleteRequest => pb::AuthUserDeleteResponse;
        user_change_password: pb::AuthUserChangePasswordRequest => pb::AuthUserChangePasswordResponse;
        user_grant_role: pb::AuthUserGrantRoleRequest => pb::AuthUserGrantRoleResponse;
        user_revoke_role: pb::AuthUserRevokeRoleRequest => pb::AuthUserRevokeRoleResponse;
        role_add: pb::AuthRoleAddRequest => pb::AuthRoleAddResponse;
        role_get: pb::AuthRoleGetRequest => pb::AuthRoleGetResponse;
        role_list: pb::AuthRoleListRequest => pb::AuthRoleListResponse;
        role_delete: pb::AuthRoleDeleteRequest => pb::AuthRoleDeleteResponse;
        role_grant_permission: pb::AuthRoleGrantPermissionRequest => pb::AuthRoleGrantPermissionResponse;
        role_revoke_permission: pb::AuthRoleRevokePermissionRequest => pb::AuthRoleRevokePermissionResponse;
    }
}

#[tonic::async_trait]
impl lk::lock_server::Lock for Unimplemented {
    stubs! {
        lock: lk::LockRequest => lk::LockResponse;
        unlock: lk::UnlockRequest => lk::UnlockResponse;
    }
}

#[tonic::async_trait]
impl el::election_server::Election for Unimplemented {
    type ObserveStream = BoxStream<el::LeaderResponse>;
    stubs! {
        campaign: el::CampaignRequest => el::CampaignResponse;
        proclaim: el::ProclaimRequest => el::ProclaimResponse;
        leader: el::LeaderRequest => el::LeaderResponse;
        observe: el::LeaderRequest => Self::ObserveStream;
        resign: el::ResignRequest => el::ResignResponse;
    }
}
