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

use super::status;

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

impl ClusterService {
    fn header(&self) -> oxcd_proto::etcdserverpb::ResponseHeader {
        self.server
            .header(self.server.store.get().current_revision())
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let req = req.into_inner();
        let (member, members) = self
            .server
            .member_add(req.peer_ur_ls, req.is_learner)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.header()),
            member: Some(to_proto(member)),
            members: members.into_iter().map(to_proto).collect(),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let members = self
            .server
            .member_remove(req.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.header()),
            members: members.into_iter().map(to_proto).collect(),
        }))
    }

    async fn member_update(
        &self,
        req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let req = req.into_inner();
        let members = self
            .server
            .member_update(req.id, req.peer_ur_ls)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberUpdateResponse {
            header: Some(self.header()),
            members: members.into_iter().map(to_proto).collect(),
        }))
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
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let members = self
            .server
            .member_promote(req.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.header()),
            members: members.into_iter().map(to_proto).collect(),
        }))
    }
}
