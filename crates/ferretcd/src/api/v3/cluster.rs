//! `etcdserverpb.Cluster`: `MemberList` so far, as etcd 3.4 answers it:
//! this member's view of the membership (not a linearizable read), sorted
//! by id, under a header without a revision. Adding, removing, updating
//! and promoting members come with runtime membership; until then those
//! methods answer `UNIMPLEMENTED` with a message, and nothing changes.

use ferret_proto::etcdserverpb::{
    cluster_server::Cluster, Member, MemberAddRequest, MemberAddResponse, MemberListRequest,
    MemberListResponse, MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::V3;

pub struct ClusterService(pub V3);

fn not_yet(method: &str) -> Status {
    V3Error::Unimplemented(format!(
        "ferretcd does not serve etcdserverpb.Cluster/{method} yet (membership changes at runtime come in a later release)"
    ))
    .into()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(not_yet("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(not_yet("MemberRemove"))
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(not_yet("MemberUpdate"))
    }

    /// etcd's `ClusterServer.MemberList`: every member by id; one that has
    /// not published its attributes yet has no name and no client URLs
    /// (etcdctl lists it as `unstarted`). No member is a learner until
    /// learners exist.
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let v3 = &self.0;
        let members = v3
            .server
            .members()
            .into_iter()
            .map(|m| Member {
                id: m.id,
                name: m.name,
                peer_ur_ls: m.peer_urls,
                client_ur_ls: m.client_urls,
                is_learner: false,
            })
            .collect();
        Ok(Response::new(MemberListResponse {
            // As etcd's Cluster answers: no revision.
            header: v3.header_exact(0),
            members,
        }))
    }

    async fn member_promote(
        &self,
        _: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(not_yet("MemberPromote"))
    }
}
