//! `member add|remove|update|list|promote`: etcdctl's checks of their
//! arguments (before the client is made, in etcdctl's order), clientv3's
//! check of peer URLs (after it), the Cluster service's calls, and the
//! answer in each output format.
//!
//! Of the formats, `fields` and `table` print only `member list`: for the
//! other member commands etcdctl refuses them (`... not supported as
//! output format`, exit 4) once the request has been carried out, so a
//! member is added even when `member add -w table` then fails.

use ferret_gocompat::strconv::{parse_uint, quote};
use ferret_proto::etcdserverpb::cluster_client::ClusterClient;
use ferret_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberListResponse, MemberPromoteRequest,
    MemberRemoveRequest, MemberUpdateRequest, ResponseHeader,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};
use super::gojson::GoJson;
use super::printer::{Display, Format};
use super::table;

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

/// The member id argument of `remove`, `update` and `promote`: exactly
/// one, in hexadecimal.
fn member_id_arg(args: &[String]) -> Result<u64, Exit> {
    let [arg] = args else {
        return Err(bad_args("member ID is not provided"));
    };
    parse_uint(arg, 16)
        .map_err(|e| bad_args(format!("bad member ID arg ({e}), expecting ID in Hex")))
}

/// clientv3's `types.NewURLs` check of peer URLs, made before the request
/// is sent (its error is exit 1, as any failed request).
fn check_peer_urls(urls: &[String]) -> Result<(), Exit> {
    crate::api::check_urls(urls)
        .map(|_| ())
        .map_err(|e| Exit::new(exit::ERROR, e.to_string()))
}

fn cluster_id(h: &Option<ResponseHeader>) -> u64 {
    h.as_ref().map_or(0, |h| h.cluster_id)
}

pub fn add(inv: &Invocation) -> Result<(), Exit> {
    let args = &inv.args;
    if args.is_empty() {
        return Err(bad_args("member name not provided"));
    }
    if args.len() > 1 {
        let mut ev = String::from("too many arguments");
        for s in args {
            if s.to_lowercase().starts_with("http") {
                ev.push_str(&format!(", did you mean --peer-urls={s}"));
            }
        }
        return Err(bad_args(ev));
    }
    let name = &args[0];
    let peer_urls = inv.str("peer-urls");
    if peer_urls.is_empty() {
        return Err(bad_args("member peer urls not provided"));
    }
    let urls: Vec<String> = peer_urls.split(',').map(str::to_string).collect();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    check_peer_urls(&urls)?;
    let req = MemberAddRequest {
        peer_ur_ls: urls,
        is_learner: inv.bool("learner"),
    };
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { ClusterClient::new(ch).member_add(req).await }
    })?;
    let printed = match display.format {
        Format::Simple => {
            let new_id = resp.member.as_ref().map_or(0, |m| m.id);
            display.line(&format!(
                "Member {new_id:16x} added to cluster {:16x}",
                cluster_id(&resp.header)
            ));
            // The environment the new member is to be started with.
            let mut conf = Vec::new();
            for m in &resp.members {
                let n = if m.id == new_id { name } else { &m.name };
                for u in &m.peer_ur_ls {
                    conf.push(format!("{n}={u}"));
                }
            }
            display.line("");
            display.line(&format!("ETCD_NAME={}", quote(name)));
            display.line(&format!("ETCD_INITIAL_CLUSTER={}", quote(conf.join(","))));
            display.line(&format!(
                "ETCD_INITIAL_ADVERTISE_PEER_URLS={}",
                quote(&peer_urls)
            ));
            display.line("ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
            Ok(())
        }
        _ => display.whole(&resp),
    };
    display.flush();
    printed
}

pub fn remove(inv: &Invocation) -> Result<(), Exit> {
    let id = member_id_arg(&inv.args)?;
    let (cfg, display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(MemberRemoveRequest { id });
        async move { ClusterClient::new(ch).member_remove(req).await }
    })?;
    print_change(display, &resp, &resp.header, id, "removed from")
}

pub fn update(inv: &Invocation) -> Result<(), Exit> {
    let id = member_id_arg(&inv.args)?;
    let peer_urls = inv.str("peer-urls");
    if peer_urls.is_empty() {
        return Err(bad_args("member peer urls not provided"));
    }
    let urls: Vec<String> = peer_urls.split(',').map(str::to_string).collect();
    let (cfg, display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    check_peer_urls(&urls)?;
    let req = MemberUpdateRequest {
        id,
        peer_ur_ls: urls,
    };
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { ClusterClient::new(ch).member_update(req).await }
    })?;
    print_change(display, &resp, &resp.header, id, "updated in")
}

pub fn promote(inv: &Invocation) -> Result<(), Exit> {
    let id = member_id_arg(&inv.args)?;
    let (cfg, display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(MemberPromoteRequest { id });
        async move { ClusterClient::new(ch).member_promote(req).await }
    })?;
    print_change(display, &resp, &resp.header, id, "promoted in")
}

/// What remove, update and promote print: etcdctl's line in the simple
/// format (`Member <id> <done> cluster <cluster id>`), the whole response
/// in the others.
fn print_change<M: GoJson>(
    mut display: Display,
    resp: &M,
    header: &Option<ResponseHeader>,
    id: u64,
    done: &str,
) -> Result<(), Exit> {
    let printed = match display.format {
        Format::Simple => {
            display.line(&format!(
                "Member {id:16x} {done} cluster {:16x}",
                cluster_id(header)
            ));
            Ok(())
        }
        _ => display.whole(resp),
    };
    display.flush();
    printed
}

pub fn list(inv: &Invocation) -> Result<(), Exit> {
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::Repeatable, |ch, auth| {
        let req = auth.req(MemberListRequest {});
        async move { ClusterClient::new(ch).member_list(req).await }
    })?;
    let printed = print_list(&mut display, &resp);
    display.flush();
    printed
}

/// etcdctl's `makeMemberListTable`: a member without a name has not
/// started yet.
fn rows(members: &[Member]) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            let status = if m.name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_string(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

const LIST_HEADER: [&str; 6] = [
    "ID",
    "Status",
    "Name",
    "Peer Addrs",
    "Client Addrs",
    "Is Learner",
];

fn print_list(display: &mut Display, r: &MemberListResponse) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            for row in rows(&r.members) {
                display.line(&row.join(", "));
            }
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&r.header);
            for m in &r.members {
                display.line(&format!("\"ID\" : {}", m.id));
                display.line(&format!("\"Name\" : {}", quote(&m.name)));
                for u in &m.peer_ur_ls {
                    display.line(&format!("\"PeerURL\" : {}", quote(u)));
                }
                for u in &m.client_ur_ls {
                    display.line(&format!("\"ClientURL\" : {}", quote(u)));
                }
                display.line(&format!("\"IsLearner\" : {}", m.is_learner));
                display.line("");
            }
            Ok(())
        }
        Format::Table => {
            let t = table::render(&LIST_HEADER, &rows(&r.members));
            display.line(t.trim_end_matches('\n'));
            Ok(())
        }
        Format::Json | Format::Protobuf => display.whole(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn member_ids_are_one_hex_argument() {
        assert_eq!(
            member_id_arg(&strs(&["2e1259d415f2a040"])),
            Ok(0x2e12_59d4_15f2_a040)
        );
        let e = member_id_arg(&strs(&[])).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (128, "member ID is not provided"));
        let e = member_id_arg(&strs(&["a", "b"])).unwrap_err();
        assert_eq!(e.msg, "member ID is not provided");
        let e = member_id_arg(&strs(&["zz"])).unwrap_err();
        assert_eq!(
            e.msg,
            "bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), expecting ID in Hex"
        );
    }

    #[test]
    fn list_in_every_format_as_etcdctl() {
        // etcdctl 3.4.23 against etcd 3.4.23 with a learner added.
        let r = MemberListResponse {
            header: Some(ResponseHeader {
                cluster_id: 324952591200643719,
                member_id: 3319814642761637952,
                revision: 0,
                raft_term: 2,
            }),
            members: vec![
                Member {
                    id: 3319814642761637952,
                    name: "s1".into(),
                    peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
                    client_ur_ls: vec!["http://127.0.0.1:23790".into()],
                    is_learner: false,
                },
                Member {
                    id: 12327192428265139692,
                    name: String::new(),
                    peer_ur_ls: vec!["http://127.0.0.1:1".into()],
                    client_ur_ls: vec![],
                    is_learner: true,
                },
            ],
        };
        let out = |format: &str| {
            let mut d = Display::from_flags(format, false).unwrap();
            print_list(&mut d, &r).unwrap();
            String::from_utf8_lossy(d.printed()).into_owned()
        };
        assert_eq!(
            out("simple"),
            "2e1259d415f2a040, started, s1, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n\
             ab12fc3384a0edec, unstarted, , http://127.0.0.1:1, , true\n"
        );
        assert_eq!(
            out("table"),
            "\
+------------------+-----------+------+------------------------+------------------------+------------+
|        ID        |  STATUS   | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+-----------+------+------------------------+------------------------+------------+
| 2e1259d415f2a040 |   started |   s1 | http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |
| ab12fc3384a0edec | unstarted |      |     http://127.0.0.1:1 |                        |       true |
+------------------+-----------+------+------------------------+------------------------+------------+
"
        );
        assert_eq!(
            out("fields"),
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\
             \"Revision\" : 0\n\"RaftTerm\" : 2\n\"ID\" : 3319814642761637952\n\"Name\" : \"s1\"\n\
             \"PeerURL\" : \"http://127.0.0.1:23800\"\n\"ClientURL\" : \"http://127.0.0.1:23790\"\n\
             \"IsLearner\" : false\n\n\"ID\" : 12327192428265139692\n\"Name\" : \"\"\n\
             \"PeerURL\" : \"http://127.0.0.1:1\"\n\"IsLearner\" : true\n\n"
        );
    }
}
