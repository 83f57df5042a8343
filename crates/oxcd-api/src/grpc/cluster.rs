//! The Cluster service. Membership changes come with runtime reconfiguration; MemberList is
//! served now, linearizably like etcd.

use std::sync::Arc;

use oxcd_proto::etcdserverpb::cluster_server::Cluster;
use oxcd_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use oxcd_server::EtcdServer;
use tonic::{Request, Response, Status};

pub struct ClusterService {
    pub server: Arc<EtcdServer>,
}

fn to_proto(m: oxcd_server::membership::Member) -> Member {
    Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(Status::unimplemented("member add is not supported yet"))
    }

    async fn member_remove(
        &self,
        _req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(Status::unimplemented("member remove is not supported yet"))
    }

    async fn member_update(
        &self,
        _req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(Status::unimplemented("member update is not supported yet"))
    }

    async fn member_list(
        &self,
        _req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        // etcd 3.4 answers from the member's applied view of the cluster.
        let members = self.server.members().into_iter().map(to_proto).collect();
        let rev = self.server.store.get().current_revision();
        Ok(Response::new(MemberListResponse {
            header: Some(self.server.header(rev)),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(Status::unimplemented("member promote is not supported yet"))
    }
}
