//! The cluster's membership as a replicated state machine: who the
//! members are, which ids were removed, and the configuration changes
//! that move from one to the next, with etcd 3.4's rules.
//!
//! A change travels through the log as a raft-rs `ConfChange` (etcd's
//! own entry type) whose context is etcd's JSON of the member
//! (`{"id":..,"peerURLs":[..],"isLearner":true}`, with `"isPromote":true`
//! for a promotion: etcd's `ConfigChangeContext`). Applying it
//! ([`Membership::validate`], then [`Membership::apply`]) is
//! deterministic: every member decides alike, from the membership at the
//! entry's index, whether it stands (etcd's
//! `ValidateConfigurationChange`). The Ready loop hands an accepted one to
//! raft-rs and to the peer network.
//!
//! Where it is kept: in memory here, owned by the state machines; in the
//! v3 backend's `members` and `members_removed` tables (etcd's buckets,
//! written with each change, [`Membership::backend_rows`]); in every
//! snapshot file, with raft's configuration, so a restart replays the log
//! from the snapshot onwards on the membership as it was there. The v2
//! store also gets etcd's `/0/members` records, as etcd 3.4 writes them:
//! they keep the v2 index identical to etcd's, and nothing reads them.

use std::collections::{BTreeMap, BTreeSet};

use ferret_proto::ferretpb;
use serde::{Deserialize, Serialize};

/// etcd 3.4 allows one learner at a time (`maxLearners`).
pub const MAX_LEARNERS: usize = 1;

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    pub id: u64,
    /// Empty until the member publishes its attributes (it has started).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl Member {
    /// etcd's `IsStarted`: it published its name.
    pub fn is_started(&self) -> bool {
        !self.name.is_empty()
    }
}

/// etcd's JSON of a member (`membership.Member`, and with `isPromote` its
/// `ConfigChangeContext`): the context of a configuration change and the
/// value of a `members` row.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct MemberJson {
    #[serde(default)]
    id: u64,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Option<Vec<String>>,
    #[serde(rename = "isLearner", default, skip_serializing_if = "is_false")]
    is_learner: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(rename = "clientURLs", default, skip_serializing_if = "Vec::is_empty")]
    client_urls: Vec<String>,
    #[serde(rename = "isPromote", default, skip_serializing_if = "Option::is_none")]
    is_promote: Option<bool>,
    /// ferretcd's: marks an update (see [`RaftChange::UpdateNode`]).
    #[serde(rename = "isUpdate", default, skip_serializing_if = "is_false")]
    is_update: bool,
}

impl MemberJson {
    /// etcd's JSON of a member (no promotion or update marker).
    fn of(m: &Member) -> MemberJson {
        MemberJson {
            id: m.id,
            peer_urls: Some(m.peer_urls.clone()),
            is_learner: m.is_learner,
            name: m.name.clone(),
            client_urls: m.client_urls.clone(),
            is_promote: None,
            is_update: false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A configuration change, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new member (a learner if `is_learner`).
    Add(Member),
    /// A learner becomes a voter.
    Promote(u64),
    Remove(u64),
    /// New peer URLs for a member.
    Update {
        id: u64,
        peer_urls: Vec<String>,
    },
}

/// Why a change does not stand (etcd's `membership` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("membership: ID removed")]
    IdRemoved,
    #[error("membership: ID exists")]
    IdExists,
    #[error("membership: ID not found")]
    IdNotFound,
    #[error("membership: peerURL exists")]
    PeerUrlExists,
    #[error("membership: can only promote a learner member")]
    NotLearner,
    #[error("membership: too many learner members in cluster")]
    TooManyLearners,
}

/// raft-rs's kinds of configuration change, as this module encodes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftChange {
    AddNode,
    AddLearnerNode,
    RemoveNode,
    /// etcd's `ConfChangeUpdateNode`, which raft-rs lacks: it travels as
    /// an `AddNode` entry whose context says `"isUpdate":true`, and the
    /// Ready loop never hands it to raft-rs (new peer URLs are no change
    /// of raft's configuration).
    UpdateNode,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Add(m) if m.is_learner => {
                write!(f, "add learner {:x} {:?}", m.id, m.peer_urls)
            }
            Change::Add(m) => write!(f, "add {:x} {:?}", m.id, m.peer_urls),
            Change::Promote(id) => write!(f, "promote {id:x}"),
            Change::Remove(id) => write!(f, "remove {id:x}"),
            Change::Update { id, peer_urls } => write!(f, "update {id:x} {peer_urls:?}"),
        }
    }
}

impl Change {
    pub fn id(&self) -> u64 {
        match self {
            Change::Add(m) => m.id,
            Change::Promote(id) | Change::Remove(id) | Change::Update { id, .. } => *id,
        }
    }

    /// The raft-rs change kind and etcd's JSON context.
    pub fn encode(&self) -> (RaftChange, Vec<u8>) {
        let (kind, json) = match self {
            Change::Add(m) => (
                if m.is_learner {
                    RaftChange::AddLearnerNode
                } else {
                    RaftChange::AddNode
                },
                MemberJson::of(m),
            ),
            Change::Promote(id) => (
                RaftChange::AddNode,
                MemberJson {
                    id: *id,
                    peer_urls: None,
                    is_promote: Some(true),
                    ..Default::default()
                },
            ),
            Change::Remove(id) => (
                RaftChange::RemoveNode,
                MemberJson {
                    id: *id,
                    ..Default::default()
                },
            ),
            Change::Update { id, peer_urls } => (
                RaftChange::UpdateNode,
                MemberJson {
                    id: *id,
                    peer_urls: Some(peer_urls.clone()),
                    is_update: true,
                    ..Default::default()
                },
            ),
        };
        let body = match kind {
            // etcd proposes a removal without a context.
            RaftChange::RemoveNode => Vec::new(),
            _ => serde_json::to_vec(&json).unwrap_or_default(),
        };
        (kind, body)
    }

    /// Decodes a change from its raft-rs kind, node id and context.
    pub fn decode(kind: RaftChange, node_id: u64, context: &[u8]) -> Result<Change, String> {
        if kind == RaftChange::RemoveNode {
            return Ok(Change::Remove(node_id));
        }
        let json: MemberJson = serde_json::from_slice(context)
            .map_err(|e| format!("configuration change context: {e}"))?;
        if json.id != node_id {
            return Err(format!(
                "configuration change for {node_id:x} names member {:x}",
                json.id
            ));
        }
        Ok(match kind {
            _ if json.is_update => Change::Update {
                id: node_id,
                peer_urls: json.peer_urls.unwrap_or_default(),
            },
            _ if json.is_promote == Some(true) => Change::Promote(node_id),
            _ => Change::Add(Member {
                id: node_id,
                name: json.name,
                peer_urls: json.peer_urls.unwrap_or_default(),
                client_urls: json.client_urls,
                is_learner: kind == RaftChange::AddLearnerNode,
            }),
        })
    }
}

/// A `members` row: the key, and the value to put (`None`: delete).
pub type MemberRow = (Vec<u8>, Option<Vec<u8>>);

/// The members and the removed ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    members: BTreeMap<u64, Member>,
    removed: BTreeSet<u64>,
}

impl Membership {
    /// Every member, by id.
    pub fn members(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    pub fn voters(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.is_learner)
    }

    /// etcd's `IsReadyToAddVotingMember`: after adding a voter, the
    /// started voters still make a quorum (or the cluster is one started
    /// member being restored).
    pub fn ready_to_add_voter(&self) -> bool {
        let started = self.voters().filter(|m| m.is_started()).count();
        let members = self.voters().count() + 1;
        (started == 1 && members == 2) || started > members / 2
    }

    /// etcd's `IsReadyToRemoveVotingMember`: without member `id`, the
    /// started voters still make a quorum of the rest.
    pub fn ready_to_remove_voter(&self, id: u64) -> bool {
        let rest = || self.voters().filter(|m| m.id != id);
        let started = rest().filter(|m| m.is_started()).count();
        started > rest().count() / 2
    }

    /// etcd's `IsReadyToPromoteMember`: counting the learner as a started
    /// voter, the started voters make a quorum.
    pub fn ready_to_promote(&self) -> bool {
        let started = self.voters().filter(|m| m.is_started()).count() + 1;
        let members = self.voters().count() + 1;
        started > members / 2
    }

    /// etcd's `ValidateConfigurationChange`: whether `change` stands on
    /// this membership.
    pub fn validate(&self, change: &Change) -> Result<(), MemberError> {
        let id = change.id();
        if self.removed.contains(&id) {
            return Err(MemberError::IdRemoved);
        }
        let urls_of_others = |except: Option<u64>| -> BTreeSet<&str> {
            self.members
                .values()
                .filter(|m| Some(m.id) != except)
                .flat_map(|m| m.peer_urls.iter().map(String::as_str))
                .collect()
        };
        match change {
            Change::Promote(id) => match self.members.get(id) {
                None => Err(MemberError::IdNotFound),
                Some(m) if !m.is_learner => Err(MemberError::NotLearner),
                Some(_) => Ok(()),
            },
            Change::Add(m) => {
                if self.members.contains_key(&m.id) {
                    return Err(MemberError::IdExists);
                }
                let urls = urls_of_others(None);
                if m.peer_urls.iter().any(|u| urls.contains(u.as_str())) {
                    return Err(MemberError::PeerUrlExists);
                }
                let learners = self.members.values().filter(|m| m.is_learner).count();
                if m.is_learner && learners + 1 > MAX_LEARNERS {
                    return Err(MemberError::TooManyLearners);
                }
                Ok(())
            }
            Change::Remove(id) => {
                if self.members.contains_key(id) {
                    Ok(())
                } else {
                    Err(MemberError::IdNotFound)
                }
            }
            Change::Update { id, peer_urls } => {
                if !self.members.contains_key(id) {
                    return Err(MemberError::IdNotFound);
                }
                let urls = urls_of_others(Some(*id));
                if peer_urls.iter().any(|u| urls.contains(u.as_str())) {
                    return Err(MemberError::PeerUrlExists);
                }
                Ok(())
            }
        }
    }

    /// Applies a change that [`Membership::validate`] accepted.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Add(m) => {
                self.members.insert(m.id, m.clone());
            }
            Change::Promote(id) => {
                if let Some(m) = self.members.get_mut(id) {
                    m.is_learner = false;
                }
            }
            Change::Remove(id) => {
                self.members.remove(id);
                self.removed.insert(*id);
            }
            Change::Update { id, peer_urls } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.peer_urls = peer_urls.clone();
                }
            }
        }
    }

    /// A member published its name and client URLs (etcd's
    /// `UpdateAttributes`); ignored for an id that is not a member.
    pub fn set_attributes(&mut self, id: u64, name: String, client_urls: Vec<String>) -> bool {
        match self.members.get_mut(&id) {
            Some(m) => {
                m.name = name;
                m.client_urls = client_urls;
                true
            }
            None => false,
        }
    }

    /// The backend rows a change of member `id` writes: its `members`
    /// row (put, or deleted when it is gone) and, once removed, its
    /// `members_removed` row.
    pub fn backend_rows(&self, id: u64) -> (Vec<MemberRow>, Vec<Vec<u8>>) {
        let key = format!("{id:x}").into_bytes();
        let row = self.members.get(&id).map(member_json);
        let removed = if self.removed.contains(&id) {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        (vec![(key, row)], removed)
    }

    /// The v2 store's `raftAttributes` value of a member, as etcd writes
    /// it (`{"peerURLs":[..]}`, with `"isLearner":true` for a learner).
    pub fn raft_attributes_json(m: &Member) -> String {
        #[derive(Serialize)]
        struct RaftAttributes<'a> {
            #[serde(rename = "peerURLs")]
            peer_urls: &'a [String],
            #[serde(rename = "isLearner", skip_serializing_if = "is_false")]
            is_learner: bool,
        }
        serde_json::to_string(&RaftAttributes {
            peer_urls: &m.peer_urls,
            is_learner: m.is_learner,
        })
        .unwrap_or_default()
    }

    pub fn to_proto(&self) -> ferretpb::Membership {
        ferretpb::Membership {
            members: self
                .members
                .values()
                .map(|m| ferretpb::Member {
                    id: m.id,
                    name: m.name.clone(),
                    peer_urls: m.peer_urls.clone(),
                    client_urls: m.client_urls.clone(),
                    is_learner: m.is_learner,
                })
                .collect(),
            removed: self.removed.iter().copied().collect(),
        }
    }

    pub fn from_proto(p: &ferretpb::Membership) -> Membership {
        Membership {
            members: p
                .members
                .iter()
                .map(|m| {
                    (
                        m.id,
                        Member {
                            id: m.id,
                            name: m.name.clone(),
                            peer_urls: m.peer_urls.clone(),
                            client_urls: m.client_urls.clone(),
                            is_learner: m.is_learner,
                        },
                    )
                })
                .collect(),
            removed: p.removed.iter().copied().collect(),
        }
    }

    /// The membership etcd's v2 store records under `/0/members` and
    /// `/0/removed_members`: how snapshots of builds before runtime
    /// membership carry it. `raft_attributes` and `attributes` are the
    /// JSON values by member id.
    pub fn from_v2_records(
        raft_attributes: &[(u64, Vec<u8>)],
        attributes: &[(u64, Vec<u8>)],
        removed: &[u64],
    ) -> Membership {
        let mut out = Membership::default();
        for (id, v) in raft_attributes {
            let json: MemberJson = serde_json::from_slice(v).unwrap_or_default();
            out.members.insert(
                *id,
                Member {
                    id: *id,
                    peer_urls: json.peer_urls.unwrap_or_default(),
                    is_learner: json.is_learner,
                    ..Default::default()
                },
            );
        }
        for (id, v) in attributes {
            let json: MemberJson = serde_json::from_slice(v).unwrap_or_default();
            out.set_attributes(*id, json.name, json.client_urls);
        }
        out.removed = removed.iter().copied().collect();
        out
    }
}

/// A `members` row: etcd's JSON of the member.
fn member_json(m: &Member) -> Vec<u8> {
    serde_json::to_vec(&MemberJson::of(m)).unwrap_or_default()
}

/// The attributes a member publishes (`/0/members/<id>/attributes`):
/// its name and client URLs, from etcd's JSON.
pub fn parse_attributes(value: &[u8]) -> Option<(String, Vec<String>)> {
    let json: MemberJson = serde_json::from_slice(value).ok()?;
    Some((json.name, json.client_urls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, url: &str, learner: bool) -> Member {
        Member {
            id,
            peer_urls: vec![url.into()],
            is_learner: learner,
            ..Default::default()
        }
    }

    #[test]
    fn changes_round_trip_through_their_context() {
        for c in [
            Change::Add(member(0xabc, "http://a:1", false)),
            Change::Add(member(u64::MAX, "http://b:1", true)),
            Change::Promote(7),
            Change::Remove(9),
            Change::Update {
                id: 5,
                peer_urls: vec!["http://c:2".into()],
            },
        ] {
            let (kind, ctx) = c.encode();
            assert_eq!(Change::decode(kind, c.id(), &ctx).unwrap(), c);
        }
        // etcd's own contexts.
        let ctx = br#"{"id":12345,"peerURLs":["http://x:1"],"isLearner":true}"#;
        assert_eq!(
            Change::decode(RaftChange::AddLearnerNode, 12345, ctx).unwrap(),
            Change::Add(member(12345, "http://x:1", true))
        );
        let ctx = br#"{"id":12345,"peerURLs":null,"isPromote":true}"#;
        assert_eq!(
            Change::decode(RaftChange::AddNode, 12345, ctx).unwrap(),
            Change::Promote(12345)
        );
        assert!(Change::decode(RaftChange::AddNode, 1, ctx).is_err());
        assert!(Change::decode(RaftChange::AddNode, 1, b"{").is_err());
    }

    #[test]
    fn etcds_validation_rules() {
        let mut m = Membership::default();
        let a = member(1, "http://a:1", false);
        assert_eq!(m.validate(&Change::Add(a.clone())), Ok(()));
        m.apply(&Change::Add(a.clone()));
        assert_eq!(m.validate(&Change::Add(a)), Err(MemberError::IdExists));
        assert_eq!(
            m.validate(&Change::Add(member(2, "http://a:1", false))),
            Err(MemberError::PeerUrlExists)
        );
        let l = member(3, "http://l:1", true);
        m.apply(&Change::Add(l));
        assert_eq!(
            m.validate(&Change::Add(member(4, "http://m:1", true))),
            Err(MemberError::TooManyLearners)
        );
        assert_eq!(
            m.validate(&Change::Promote(1)),
            Err(MemberError::NotLearner)
        );
        assert_eq!(
            m.validate(&Change::Promote(8)),
            Err(MemberError::IdNotFound)
        );
        assert_eq!(m.validate(&Change::Promote(3)), Ok(()));
        m.apply(&Change::Promote(3));
        assert!(!m.get(3).unwrap().is_learner);
        // Updating a member to its own URLs is fine; to another's is not.
        let own = Change::Update {
            id: 3,
            peer_urls: vec!["http://l:1".into()],
        };
        assert_eq!(m.validate(&own), Ok(()));
        let other = Change::Update {
            id: 3,
            peer_urls: vec!["http://a:1".into()],
        };
        assert_eq!(m.validate(&other), Err(MemberError::PeerUrlExists));
        m.apply(&Change::Remove(3));
        assert_eq!(m.validate(&Change::Remove(3)), Err(MemberError::IdRemoved));
        assert_eq!(
            m.validate(&Change::Add(member(3, "http://z:1", false))),
            Err(MemberError::IdRemoved)
        );
        assert_eq!(m.validate(&Change::Remove(4)), Err(MemberError::IdNotFound));
        let back = Membership::from_proto(&m.to_proto());
        assert_eq!(back, m);
        let (rows, removed) = m.backend_rows(3);
        assert_eq!(rows, vec![(b"3".to_vec(), None)]);
        assert_eq!(removed, vec![b"3".to_vec()]);
        let (rows, _) = m.backend_rows(1);
        assert_eq!(
            rows[0].1.as_deref(),
            Some(&br#"{"id":1,"peerURLs":["http://a:1"]}"#[..])
        );
    }

    #[test]
    fn strict_reconfiguration_counts_started_voters() {
        let started = |id: u64| Member {
            name: format!("m{id}"),
            ..member(id, &format!("http://{id}:1"), false)
        };
        let mut m = Membership::default();
        m.apply(&Change::Add(started(1)));
        // One started member may add a second (restoring a cluster).
        assert!(m.ready_to_add_voter());
        m.apply(&Change::Add(member(2, "http://2:1", false)));
        // 1 of 3 started: no.
        assert!(!m.ready_to_add_voter());
        assert!(m.ready_to_remove_voter(2));
        assert!(!m.ready_to_remove_voter(1));
        assert!(m.ready_to_promote());
        m.apply(&Change::Add(started(3)));
        // 2 of 4 started after an add: no; without member 2, 2 of 2: yes.
        assert!(!m.ready_to_add_voter());
        assert!(m.ready_to_remove_voter(2));
        assert!(!m.ready_to_remove_voter(1));
    }

    #[test]
    fn published_attributes_are_read() {
        assert_eq!(
            parse_attributes(br#"{"name":"n1","clientURLs":["http://a:2379"]}"#),
            Some(("n1".into(), vec!["http://a:2379".into()]))
        );
    }

    #[test]
    fn raft_attributes_as_etcd_writes_them() {
        assert_eq!(
            Membership::raft_attributes_json(&member(1, "http://a:1", false)),
            r#"{"peerURLs":["http://a:1"]}"#
        );
        assert_eq!(
            Membership::raft_attributes_json(&member(1, "http://a:1", true)),
            r#"{"peerURLs":["http://a:1"],"isLearner":true}"#
        );
    }
}
