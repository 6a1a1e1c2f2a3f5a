//! The Cluster service's membership changes on a fresh single member, one
//! scenario run against each server and written down as text normalised
//! for comparison: the member's own id and peer URL as `SELF`, the id of
//! the member the scenario adds (from the URLs and the time) as `NEW`.
//! The added member is never started: it needs no process, as a learner
//! counts toward no quorum.

use ferret_proto::etcdserverpb::{
    cluster_client::ClusterClient, Member, MemberAddRequest, MemberListRequest,
    MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest, ResponseHeader,
};
use tonic::transport::Channel;

const LEARNER_URL: &str = "http://127.0.0.1:29001";

struct Names {
    me: Member,
    new: Option<u64>,
}

impl Names {
    fn id(&self, id: u64) -> String {
        if id == self.me.id {
            "SELF".into()
        } else if Some(id) == self.new {
            "NEW".into()
        } else {
            format!("{id:x}")
        }
    }

    fn members(&self, h: &Option<ResponseHeader>, members: &[Member]) -> String {
        let rev = h.as_ref().map_or(-1, |h| h.revision);
        // By id on each server, whose ids differ: sorted by name here.
        let mut list: Vec<String> = members
            .iter()
            .map(|m| {
                let urls: Vec<String> = m
                    .peer_ur_ls
                    .iter()
                    .map(|u| {
                        if self.me.peer_ur_ls.contains(u) {
                            "SELF".into()
                        } else {
                            u.clone()
                        }
                    })
                    .collect();
                format!(
                    "{}{} {:?} started={}",
                    self.id(m.id),
                    if m.is_learner { " learner" } else { "" },
                    urls,
                    !m.name.is_empty()
                )
            })
            .collect();
        list.sort();
        format!("header revision {rev}; members [{}]", list.join(", "))
    }
}

fn err(s: &tonic::Status) -> String {
    format!("error {:?} {:?}", s.code(), s.message())
}

pub async fn transcript(ch: Channel) -> String {
    let mut c = ClusterClient::new(ch);
    let list = c
        .member_list(MemberListRequest {})
        .await
        .expect("MemberList")
        .into_inner();
    let mut n = Names {
        me: list.members[0].clone(),
        new: None,
    };
    let me = n.me.id;
    let own_urls = n.me.peer_ur_ls.clone();
    let mut out = format!("list: {}\n", n.members(&list.header, &list.members));
    let mut step = |name: &str, line: String| out.push_str(&format!("{name}: {line}\n"));

    let r = c.member_promote(MemberPromoteRequest { id: 1 }).await;
    step(
        "promote unknown",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    let r = c.member_remove(MemberRemoveRequest { id: 1 }).await;
    step(
        "remove unknown",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    let r = c
        .member_update(MemberUpdateRequest {
            id: 1,
            peer_ur_ls: vec!["http://127.0.0.1:29002".into()],
        })
        .await;
    step(
        "update unknown",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    for (name, urls) in [
        ("add a bad URL", vec!["foo".to_string()]),
        ("add with a path", vec!["http://127.0.0.1:29005/x".into()]),
        ("add no URL", vec![]),
        ("add its own URL", own_urls.clone()),
    ] {
        let r = c
            .member_add(MemberAddRequest {
                peer_ur_ls: urls,
                is_learner: false,
            })
            .await;
        step(name, r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)));
    }
    let r = c.member_promote(MemberPromoteRequest { id: me }).await;
    step(
        "promote a voter",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );

    let added = c
        .member_add(MemberAddRequest {
            peer_ur_ls: vec![LEARNER_URL.into()],
            is_learner: true,
        })
        .await;
    let line = match added {
        Ok(r) => {
            let r = r.into_inner();
            let m = r.member.clone().unwrap_or_default();
            n.new = Some(m.id);
            format!(
                "member {}{} {:?}; {}",
                n.id(m.id),
                if m.is_learner { " learner" } else { "" },
                m.peer_ur_ls,
                n.members(&r.header, &r.members)
            )
        }
        Err(e) => err(&e),
    };
    let mut step = |name: &str, line: String| out.push_str(&format!("{name}: {line}\n"));
    step("add a learner", line);
    let new = n.new.unwrap_or(0);
    let r = c
        .member_add(MemberAddRequest {
            peer_ur_ls: vec!["http://127.0.0.1:29003".into()],
            is_learner: true,
        })
        .await;
    step(
        "add a second learner",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    let r = c.member_promote(MemberPromoteRequest { id: new }).await;
    step(
        "promote it",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    let r = c
        .member_update(MemberUpdateRequest {
            id: me,
            peer_ur_ls: own_urls.clone(),
        })
        .await;
    let line = match r {
        Ok(r) => {
            let r = r.into_inner();
            n.members(&r.header, &r.members)
        }
        Err(e) => err(&e),
    };
    let mut step = |name: &str, line: String| out.push_str(&format!("{name}: {line}\n"));
    step("update itself to its URLs", line);
    let r = c.member_remove(MemberRemoveRequest { id: new }).await;
    let line = match r {
        Ok(r) => {
            let r = r.into_inner();
            n.members(&r.header, &r.members)
        }
        Err(e) => err(&e),
    };
    let mut step = |name: &str, line: String| out.push_str(&format!("{name}: {line}\n"));
    step("remove the learner", line);
    let r = c.member_remove(MemberRemoveRequest { id: new }).await;
    step(
        "remove it again",
        r.map(|_| "ok".into()).unwrap_or_else(|e| err(&e)),
    );
    let r = c
        .member_add(MemberAddRequest {
            peer_ur_ls: vec![LEARNER_URL.into()],
            is_learner: true,
        })
        .await;
    // Its URL is free again. The id comes from the URL and the second:
    // in another second a new member is added (2 members); in the same one
    // the id is the removed one's, refused for good. Which happens depends
    // on each server's clock, so both read alike here.
    step(
        "add its URL again",
        match r {
            Ok(r) if r.get_ref().members.len() == 2 => "its URL is free".into(),
            Err(e) if e.message() == "etcdserver: member not found" => "its URL is free".into(),
            Ok(r) => format!("{} members", r.into_inner().members.len()),
            Err(e) => err(&e),
        },
    );
    out
}
