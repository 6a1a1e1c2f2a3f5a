//! v3 auth on a 3-member cluster of `ferretcd` processes on loopback:
//!
//! - a simple token issued through one member works on every member (the
//!   token is assigned at apply on each, from the prefix in the log
//!   entry), with the same permission checks everywhere;
//! - a member that was down while users were added and the log was
//!   compacted past it receives them with the backend snapshot, and
//!   authenticates and checks them as the others do;
//! - users, roles and the enabled flag survive a restart.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::{Cluster, Options};
use ferret_proto::authpb::{permission, Permission};
use ferret_proto::etcdserverpb::{
    auth_client::AuthClient, kv_client::KvClient, AuthEnableRequest, AuthRoleAddRequest,
    AuthRoleGrantPermissionRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
    AuthenticateRequest, PutRequest, RangeRequest,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint URL")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .connect_lazy()
}

fn with<T>(t: T, token: &str) -> Request<T> {
    let mut r = Request::new(t);
    r.metadata_mut().insert("token", token.parse().unwrap());
    r
}

async fn authenticate(
    addr: SocketAddr,
    name: &str,
    password: &str,
) -> Result<String, tonic::Status> {
    let mut a = AuthClient::new(channel(addr));
    Ok(a.authenticate(AuthenticateRequest {
        name: name.into(),
        password: password.into(),
    })
    .await?
    .into_inner()
    .token)
}

async fn put(addr: SocketAddr, key: &str, token: &str) -> Result<(), tonic::Status> {
    KvClient::new(channel(addr))
        .put(with(
            PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|_| ())
}

async fn get(addr: SocketAddr, key: &str, token: &str) -> Result<i64, tonic::Status> {
    Ok(KvClient::new(channel(addr))
        .range(with(
            RangeRequest {
                key: key.as_bytes().to_vec().into(),
                ..Default::default()
            },
            token,
        ))
        .await?
        .into_inner()
        .count)
}

/// Root, and a user `name` who may read and write `<name>/...` only.
async fn add_user(addr: SocketAddr, name: &str, token: Option<&str>) {
    let mut a = AuthClient::new(channel(addr));
    fn r<T>(t: T, token: Option<&str>) -> Request<T> {
        match token {
            Some(tok) => with(t, tok),
            None => Request::new(t),
        }
    }
    a.user_add(r(
        AuthUserAddRequest {
            name: name.into(),
            password: format!("{name}pw"),
            ..Default::default()
        },
        token,
    ))
    .await
    .unwrap();
    a.role_add(r(
        AuthRoleAddRequest {
            name: format!("{name}-role"),
        },
        token,
    ))
    .await
    .unwrap();
    a.role_grant_permission(r(
        AuthRoleGrantPermissionRequest {
            name: format!("{name}-role"),
            perm: Some(Permission {
                perm_type: permission::Type::Readwrite as i32,
                key: format!("{name}/").into_bytes().into(),
                range_end: format!("{name}0").into_bytes().into(),
            }),
        },
        token,
    ))
    .await
    .unwrap();
    a.user_grant_role(r(
        AuthUserGrantRoleRequest {
            user: name.into(),
            role: format!("{name}-role"),
        },
        token,
    ))
    .await
    .unwrap();
}

/// `name` may write its own keys and not others, through member `addr`.
async fn assert_permissions(addr: SocketAddr, name: &str, token: &str, who: &str) {
    put(addr, &format!("{name}/k"), token)
        .await
        .unwrap_or_else(|e| panic!("{who}: {name} puts its own key: {e}"));
    assert_eq!(
        get(addr, &format!("{name}/k"), token).await.unwrap(),
        1,
        "{who}: {name} reads its key"
    );
    let denied = put(addr, "elsewhere", token).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{who}: {denied}");
    assert_eq!(denied.message(), "etcdserver: permission denied");
}

#[test]
fn auth_across_members_snapshots_and_restarts() {
    let rt = runtime();
    let _rt = rt.enter();
    let mut c = Cluster::start(Options {
        snapshot_count: Some(100),
        ..Options::default()
    });
    let l = c.leader();
    let f = c.follower_of(l);
    let other = (0..3).find(|&i| i != l && i != f).unwrap();
    let (la, fa, oa) = (c.client(l), c.client(f), c.client(other));

    rt.block_on(async {
        let mut a = AuthClient::new(channel(la));
        a.user_add(AuthUserAddRequest {
            name: "root".into(),
            password: "rootpw".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        a.user_grant_role(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await
        .unwrap();
        add_user(la, "alice", None).await;
        a.auth_enable(AuthEnableRequest {}).await.unwrap();

        // A token from a follower works on the leader and the other
        // follower, with the same checks.
        let t = authenticate(fa, "alice", "alicepw").await.unwrap();
        for (addr, who) in [
            (fa, "the issuing follower"),
            (la, "the leader"),
            (oa, "the other follower"),
        ] {
            assert_permissions(addr, "alice", &t, who).await;
        }
        let bad = authenticate(oa, "alice", "wrong").await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{bad}");
    });

    // Users added while a member is down, past a compacted log, reach it
    // with the backend snapshot.
    c.stop(f);
    rt.block_on(async {
        let root = authenticate(la, "root", "rootpw").await.unwrap();
        add_user(la, "bob", Some(&root)).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let root = root.clone();
            tasks.push(tokio::spawn(async move {
                let mut kv = KvClient::new(channel(la));
                for i in 0..700 {
                    kv.put(with(
                        PutRequest {
                            key: format!("fill/{t}/{i}").into_bytes().into(),
                            value: b"x".to_vec().into(),
                            ..Default::default()
                        },
                        &root,
                    ))
                    .await
                    .expect("a root put");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    c.restart(f);
    c.wait_ready(f);
    let log = c.members[f].last_start_log();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "m{f} caught up without a snapshot; its log:\n{log}"
    );
    rt.block_on(async {
        let t = authenticate(fa, "bob", "bobpw").await.unwrap();
        assert_permissions(fa, "bob", &t, "the member that caught up").await;
        assert_permissions(la, "bob", &t, "the leader").await;
        let empty = get(fa, "bob/k", "").await.unwrap_err();
        assert_eq!(empty.code(), Code::Unauthenticated, "{empty}");
    });

    // A restart keeps users and the enabled flag. (Simple tokens live in
    // memory: the restart keeps only those whose Authenticate entry it
    // replays from the log, after the backend's consistent index, as
    // etcd's does.)
    c.stop(other);
    c.restart(other);
    c.wait_ready(other);
    rt.block_on(async {
        let bogus = get(oa, "alice/k", "abcdefghijklmnop.1").await.unwrap_err();
        assert_eq!(bogus.code(), Code::Unauthenticated, "{bogus}");
        assert_eq!(bogus.message(), "etcdserver: invalid auth token");
        let mut kv = KvClient::new(channel(oa));
        let anonymous = kv
            .range(RangeRequest {
                key: b"alice/k".to_vec().into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(anonymous.message(), "etcdserver: user name is empty");
        let t = authenticate(oa, "alice", "alicepw").await.unwrap();
        assert_permissions(oa, "alice", &t, "the restarted member").await;
    });
}
