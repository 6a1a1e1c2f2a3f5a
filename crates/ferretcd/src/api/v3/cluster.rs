//! `etcdserverpb.Cluster`, as etcd 3.4's `ClusterServer` answers it: the
//! membership changes go through the server core's `add_member`,
//! `remove_member`, `update_member` and `promote_member` (etcd's checks,
//! then a configuration change through the log), and every answer lists
//! the members after it, sorted by id, under a header without a revision.
//! `MemberList` is this member's view (not a linearizable read).

use ferret_proto::etcdserverpb::{
    cluster_server::Cluster, Member, MemberAddRequest, MemberAddResponse, MemberListRequest,
    MemberListResponse, MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use ferret_server::ids;
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::V3;
use crate::config::Url;

pub struct ClusterService(pub V3);

/// etcd's `membersToProtoMembers`.
fn to_proto(members: Vec<ferret_server::Member>) -> Vec<Member> {
    members
        .into_iter()
        .map(|m| Member {
            id: m.id,
            name: m.name,
            peer_ur_ls: m.peer_urls,
            client_ur_ls: m.client_urls,
            is_learner: m.is_learner,
        })
        .collect()
}

/// etcd's `types.NewURLs`: every URL valid, at least one; sorted, as
/// etcd prints them.
pub fn peer_urls(given: &[String]) -> Result<Vec<String>, V3Error> {
    if given.is_empty() {
        return Err(V3Error::MemberBadUrls);
    }
    let mut urls = given
        .iter()
        .map(|u| Url::parse(u).map(|u| u.to_string()))
        .collect::<Result<Vec<String>, String>>()
        .map_err(|_| V3Error::MemberBadUrls)?;
    urls.sort();
    Ok(urls)
}

impl ClusterService {
    /// As etcd's Cluster answers: no revision.
    fn header(&self) -> Option<ResponseHeader> {
        self.0.header_exact(0)
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    /// etcd's `MemberAdd`: a member with the given peer URLs (a learner if
    /// asked), its id from the URLs and the time (etcd's `NewMember`).
    async fn member_add(
        &self,
        req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        // etcd's `checkMembershipOperationPermission`: root only.
        let caller = self.0.caller(req.metadata()).await?;
        self.0.check_admin(&caller)?;
        let r = req.into_inner();
        let urls = peer_urls(&r.peer_ur_ls)?;
        let id = ids::new_member_id(&urls, "", ferret_server::now_ns() / 1_000_000_000);
        let member = ferret_server::Member {
            id,
            peer_urls: urls.clone(),
            is_learner: r.is_learner,
            ..Default::default()
        };
        let members = self
            .0
            .server
            .add_member(member)
            .await
            .map_err(V3Error::from)?;
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member: Some(Member {
                id,
                peer_ur_ls: urls,
                is_learner: r.is_learner,
                ..Default::default()
            }),
            members: to_proto(members),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        // etcd's `checkMembershipOperationPermission`: root only.
        let caller = self.0.caller(req.metadata()).await?;
        self.0.check_admin(&caller)?;
        let id = req.into_inner().id;
        let members = self
            .0
            .server
            .remove_member(id)
            .await
            .map_err(V3Error::from)?;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members: to_proto(members),
        }))
    }

    /// etcd's `MemberUpdate` takes the URLs as given (no check).
    async fn member_update(
        &self,
        req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        // etcd's `checkMembershipOperationPermission`: root only.
        let caller = self.0.caller(req.metadata()).await?;
        self.0.check_admin(&caller)?;
        let r = req.into_inner();
        let members = self
            .0
            .server
            .update_member(r.id, r.peer_ur_ls)
            .await
            .map_err(V3Error::from)?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members: to_proto(members),
        }))
    }

    /// etcd's `ClusterServer.MemberList`: every member by id; one that has
    /// not published its attributes yet has no name and no client URLs
    /// (etcdctl lists it as `unstarted`).
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: to_proto(self.0.server.members()),
        }))
    }

    async fn member_promote(
        &self,
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        // etcd's `checkMembershipOperationPermission`: root only.
        let caller = self.0.caller(req.metadata()).await?;
        self.0.check_admin(&caller)?;
        let id = req.into_inner().id;
        let members = self
            .0
            .server
            .promote_member(id)
            .await
            .map_err(V3Error::from)?;
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members: to_proto(members),
        }))
    }
}
