//! Services whose implementation comes in later work answer `Unimplemented`, so clients get a
//! clear gRPC status instead of an HTTP 404.

use oxcd_proto::etcdserverpb as pb;
use tonic::{Request, Response, Status};

#[derive(Clone, Copy)]
pub struct Unimplemented;

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{what} is not supported yet"
    )))
}

macro_rules! stub_service {
    ($tr:path { $(stream $assoc:ident = $aty:ty;)* $(fn $name:ident: $req:ty => $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl $tr for Unimplemented {
            $(type $assoc = $aty;)*
            $(
                async fn $name(&self, _req: Request<$req>) -> Result<Response<$resp>, Status> {
                    unimplemented(stringify!($name))
                }
            )*
        }
    };
}

stub_service!(pb::auth_server::Auth {
    fn auth_enable: pb::AuthEnableRequest => pb::AuthEnableResponse;
    fn auth_disable: pb::AuthDisableRequest => pb::AuthDisableResponse;
    fn authenticate: pb::AuthenticateRequest => pb::AuthenticateResponse;
    fn user_add: pb::AuthUserAddRequest => pb::AuthUserAddResponse;
    fn user_get: pb::AuthUserGetRequest => pb::AuthUserGetResponse;
    fn user_list: pb::AuthUserListRequest => pb::AuthUserListResponse;
    fn user_delete: pb::AuthUserDeleteRequest => pb::AuthUserDeleteResponse;
    fn user_change_password: pb::AuthUserChangePasswordRequest => pb::AuthUserChangePasswordResponse;
    fn user_grant_role: pb::AuthUserGrantRoleRequest => pb::AuthUserGrantRoleResponse;
    fn user_revoke_role: pb::AuthUserRevokeRoleRequest => pb::AuthUserRevokeRoleResponse;
    fn role_add: pb::AuthRoleAddRequest => pb::AuthRoleAddResponse;
    fn role_get: pb::AuthRoleGetRequest => pb::AuthRoleGetResponse;
    fn role_list: pb::AuthRoleListRequest => pb::AuthRoleListResponse;
    fn role_delete: pb::AuthRoleDeleteRequest => pb::AuthRoleDeleteResponse;
    fn role_grant_permission: pb::AuthRoleGrantPermissionRequest => pb::AuthRoleGrantPermissionResponse;
    fn role_revoke_permission: pb::AuthRoleRevokePermissionRequest => pb::AuthRoleRevokePermissionResponse;
});
