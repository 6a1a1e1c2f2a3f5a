//! v3 auth, one scenario run against each server and written down as text
//! normalised for comparison: Auth service calls and their errors, then
//! KV, Watch and Lease calls as several users (no token, a bad token, a
//! reader, root) allowed and denied, auth changes that make tokens stale
//! or invalid, and disabling auth. Tokens are shown by their shape only
//! (`simple`: 16 letters, a dot and a log index; `jwt`: three dotted
//! parts), revisions relative to the server's revision at the start.

use ferret_proto::authpb::{permission, Permission, UserAddOptions};
use ferret_proto::etcdserverpb::{
    auth_client::AuthClient, compare, kv_client::KvClient, lease_client::LeaseClient, request_op,
    watch_client::WatchClient, watch_request, AuthDisableRequest, AuthEnableRequest,
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGrantPermissionRequest,
    AuthRoleListRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest, AuthenticateRequest,
    CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest,
    PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest, WatchCreateRequest,
    WatchRequest,
};
use tonic::transport::Channel;
use tonic::Request;

struct Run {
    base: i64,
    text: String,
    auth: AuthClient<Channel>,
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
}

/// A request with a token (or none).
fn req<T>(t: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(t);
    if let Some(tok) = token {
        r.metadata_mut()
            .insert("token", tok.parse().expect("a token is ASCII"));
    }
    r
}

fn shape(token: &str) -> &'static str {
    let simple = token.split_once('.').is_some_and(|(p, i)| {
        p.len() == 16
            && p.bytes().all(|b| b.is_ascii_alphabetic())
            && !i.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit())
    });
    if simple {
        "simple"
    } else if token.split('.').count() == 3 {
        "jwt"
    } else if token.is_empty() {
        "empty"
    } else {
        "other"
    }
}

impl Run {
    fn rev(&self, h: &Option<ResponseHeader>) -> String {
        match h {
            Some(h) => format!("base{:+}", h.revision - self.base),
            None => "no header".into(),
        }
    }

    fn line<T>(
        &mut self,
        step: &str,
        r: Result<tonic::Response<T>, tonic::Status>,
        show: impl Fn(&Self, T) -> String,
    ) {
        let s = match r {
            Ok(v) => show(self, v.into_inner()),
            Err(st) => format!("{:?}: {}", st.code(), st.message()),
        };
        self.text.push_str(&format!("{step}: {s}\n"));
    }

    async fn authenticate(&mut self, step: &str, name: &str, password: &str) -> Option<String> {
        let r = self
            .auth
            .authenticate(AuthenticateRequest {
                name: name.into(),
                password: password.into(),
            })
            .await;
        let token = r.as_ref().ok().map(|t| t.get_ref().token.clone());
        self.line(step, r, |w, t| {
            format!("{} token, header {}", shape(&t.token), w.rev(&t.header))
        });
        token
    }

    async fn range(&mut self, step: &str, key: &str, end: &str, token: Option<&str>) {
        let r = self
            .kv
            .range(req(
                RangeRequest {
                    key: key.as_bytes().to_vec().into(),
                    range_end: end.as_bytes().to_vec().into(),
                    ..Default::default()
                },
                token,
            ))
            .await;
        self.line(step, r, |w, r| {
            format!("{} kvs, header {}", r.count, w.rev(&r.header))
        });
    }

    async fn put(&mut self, step: &str, key: &str, lease: i64, token: Option<&str>) {
        let r = self
            .kv
            .put(req(
                PutRequest {
                    key: key.as_bytes().to_vec().into(),
                    value: b"v".to_vec().into(),
                    lease,
                    ..Default::default()
                },
                token,
            ))
            .await;
        self.line(step, r, |w, r| format!("ok, header {}", w.rev(&r.header)));
    }

    /// The answer to a watch create, the stream ended after it.
    async fn watch(&mut self, step: &str, key: &str, end: &str, token: Option<&str>) {
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: key.as_bytes().to_vec().into(),
                    range_end: end.as_bytes().to_vec().into(),
                    ..Default::default()
                },
            )),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(create).await.unwrap();
        let r = self
            .watch
            .watch(req(tokio_stream::wrappers::ReceiverStream::new(rx), token))
            .await;
        let s = match r {
            Err(st) => format!("{:?}: {}", st.code(), st.message()),
            Ok(resp) => {
                let mut inbound = resp.into_inner();
                match inbound.message().await {
                    Ok(Some(w)) => format!(
                        "created {} canceled {} id {} reason {:?}, header {}",
                        w.created,
                        w.canceled,
                        w.watch_id,
                        w.cancel_reason,
                        self.rev(&w.header)
                    ),
                    Ok(None) => "stream ended".into(),
                    Err(st) => format!("{:?}: {}", st.code(), st.message()),
                }
            }
        };
        drop(tx);
        self.text.push_str(&format!("{step}: {s}\n"));
    }
}

fn perm(t: permission::Type, key: &str, end: &str) -> Option<Permission> {
    Some(Permission {
        perm_type: t as i32,
        key: key.as_bytes().to_vec().into(),
        range_end: end.as_bytes().to_vec().into(),
    })
}

pub async fn transcript(ch: Channel, base: i64) -> String {
    let mut w = Run {
        base,
        text: String::new(),
        auth: AuthClient::new(ch.clone()),
        kv: KvClient::new(ch.clone()),
        lease: LeaseClient::new(ch.clone()),
        watch: WatchClient::new(ch),
    };
    let hdr = |w: &Run, h: &Option<ResponseHeader>| format!("ok, header {}", w.rev(h));

    // ---- setting up, auth disabled ----
    w.authenticate("authenticate while disabled", "root", "pw")
        .await;
    let r = w.auth.auth_enable(AuthEnableRequest {}).await;
    w.line("enable without root", r, |w, r| hdr(w, &r.header));
    for (name, pw) in [
        ("root", "rootpw"),
        ("reader", "rpw"),
        ("", "x"),
        ("reader", "again"),
    ] {
        let r = w
            .auth
            .user_add(AuthUserAddRequest {
                name: name.into(),
                password: pw.into(),
                ..Default::default()
            })
            .await;
        w.line(&format!("user add {name:?}"), r, |w, r| hdr(w, &r.header));
    }
    let r = w
        .auth
        .user_add(AuthUserAddRequest {
            name: "nopw".into(),
            options: Some(UserAddOptions { no_password: true }),
            ..Default::default()
        })
        .await;
    w.line("user add nopw (no password)", r, |w, r| hdr(w, &r.header));
    let r = w.auth.auth_enable(AuthEnableRequest {}).await;
    w.line("enable without the root role", r, |w, r| hdr(w, &r.header));
    for name in ["read", "", "read", "other"] {
        let r = w
            .auth
            .role_add(AuthRoleAddRequest { name: name.into() })
            .await;
        w.line(&format!("role add {name:?}"), r, |w, r| hdr(w, &r.header));
    }
    use permission::Type::*;
    for (role, p) in [
        ("read", perm(Read, "a", "c")),
        ("read", perm(Readwrite, "k", "")),
        ("read", perm(Write, "pre/", "pre0")),
        ("read", perm(Read, "z", "\0")),
        ("read", perm(Read, "a", "c")),
        ("nosuch", perm(Read, "a", "")),
        ("other", perm(Read, "o", "")),
    ] {
        let r = w
            .auth
            .role_grant_permission(AuthRoleGrantPermissionRequest {
                name: role.into(),
                perm: p,
            })
            .await;
        w.line(&format!("grant {role}"), r, |w, r| hdr(w, &r.header));
    }
    for (user, role) in [
        ("reader", "read"),
        ("reader", "read"),
        ("reader", "nosuch"),
        ("nosuch", "read"),
        ("root", "root"),
    ] {
        let r = w
            .auth
            .user_grant_role(AuthUserGrantRoleRequest {
                user: user.into(),
                role: role.into(),
            })
            .await;
        w.line(&format!("grant role {role} to {user}"), r, |w, r| {
            hdr(w, &r.header)
        });
    }
    let r = w
        .auth
        .user_get(AuthUserGetRequest {
            name: "reader".into(),
        })
        .await;
    w.line("user get reader", r, |w, r| {
        format!("{:?}, header {}", r.roles, w.rev(&r.header))
    });
    let r = w
        .auth
        .user_get(AuthUserGetRequest {
            name: "nosuch".into(),
        })
        .await;
    w.line("user get nosuch", r, |_, r| format!("{:?}", r.roles));
    let r = w.auth.user_list(AuthUserListRequest {}).await;
    w.line("user list", r, |_, r| format!("{:?}", r.users));
    let r = w.auth.role_list(AuthRoleListRequest {}).await;
    w.line("role list", r, |_, r| format!("{:?}", r.roles));
    let r = w
        .auth
        .role_get(AuthRoleGetRequest {
            role: "read".into(),
        })
        .await;
    w.line("role get read", r, |_, r| format!("{:?}", r.perm));
    let r = w
        .auth
        .role_get(AuthRoleGetRequest {
            role: "nosuch".into(),
        })
        .await;
    w.line("role get nosuch", r, |_, r| format!("{:?}", r.perm));
    w.put("put before enabling", "k", 0, None).await;

    // ---- enabled ----
    let r = w.auth.auth_enable(AuthEnableRequest {}).await;
    w.line("enable", r, |w, r| hdr(w, &r.header));
    let r = w.auth.auth_enable(AuthEnableRequest {}).await;
    w.line("enable again (no token)", r, |w, r| hdr(w, &r.header));
    w.range("range without a token", "k", "", None).await;
    w.put("put without a token", "k", 0, None).await;
    w.range("range with a bad token", "k", "", Some("bogus"))
        .await;
    w.watch("watch without a token", "a", "", None).await;
    let r = w.auth.user_list(AuthUserListRequest {}).await;
    w.line("user list without a token", r, |_, r| {
        format!("{:?}", r.users)
    });
    w.authenticate("authenticate root, wrong password", "root", "nope")
        .await;
    w.authenticate("authenticate nobody", "nobody", "x").await;
    w.authenticate("authenticate nopw", "nopw", "").await;
    let root = w
        .authenticate("authenticate root", "root", "rootpw")
        .await
        .unwrap_or_default();
    let rd = w
        .authenticate("authenticate reader", "reader", "rpw")
        .await
        .unwrap_or_default();
    let root = Some(root.as_str());
    let rd = Some(rd.as_str());

    w.range("reader: range k", "k", "", rd).await;
    w.range("reader: range [a, c)", "a", "c", rd).await;
    w.range("reader: range [b, c)", "b", "c", rd).await;
    w.range("reader: range [a, d)", "a", "d", rd).await;
    w.range("reader: range from z", "z", "\0", rd).await;
    w.range("reader: range from y", "y", "\0", rd).await;
    w.range("reader: range pre/x (write only)", "pre/x", "", rd)
        .await;
    w.put("reader: put k", "k", 0, rd).await;
    w.put("reader: put pre/x", "pre/x", 0, rd).await;
    w.put("reader: put a", "a", 0, rd).await;
    w.put("root: put a", "a", 0, root).await;
    let r =
        w.kv.delete_range(req(
            DeleteRangeRequest {
                key: b"pre/".to_vec().into(),
                range_end: b"pre0".to_vec().into(),
                prev_kv: true,
            },
            rd,
        ))
        .await;
    w.line("reader: delete pre/ with prev_kv", r, |_, r| {
        format!("{}", r.deleted)
    });
    let r =
        w.kv.delete_range(req(
            DeleteRangeRequest {
                key: b"pre/".to_vec().into(),
                range_end: b"pre0".to_vec().into(),
                ..Default::default()
            },
            rd,
        ))
        .await;
    w.line("reader: delete pre/", r, |_, r| format!("{}", r.deleted));
    for (step, cmp_key, op_key, write) in [
        ("txn compare k, put k", "k", "k", true),
        ("txn compare q, put k", "q", "k", true),
        ("txn compare a, range b", "a", "b", false),
        ("txn compare a, range q", "a", "q", false),
    ] {
        let op = if write {
            request_op::Request::RequestPut(PutRequest {
                key: op_key.as_bytes().to_vec().into(),
                value: b"t".to_vec().into(),
                ..Default::default()
            })
        } else {
            request_op::Request::RequestRange(RangeRequest {
                key: op_key.as_bytes().to_vec().into(),
                ..Default::default()
            })
        };
        let r =
            w.kv.txn(req(
                TxnRequest {
                    compare: vec![Compare {
                        key: cmp_key.as_bytes().to_vec().into(),
                        target: compare::CompareTarget::Version as i32,
                        result: compare::CompareResult::Greater as i32,
                        ..Default::default()
                    }],
                    success: vec![RequestOp { request: Some(op) }],
                    failure: vec![],
                },
                rd,
            ))
            .await;
        w.line(&format!("reader: {step}"), r, |w, r| {
            format!("succeeded {}, header {}", r.succeeded, w.rev(&r.header))
        });
    }
    w.watch("reader: watch b", "b", "", rd).await;
    w.watch("reader: watch [a, c)", "a", "c", rd).await;
    w.watch("reader: watch q", "q", "", rd).await;
    w.watch("reader: watch from a", "a", "\0", rd).await;
    w.watch("reader: watch with a bad token", "b", "", Some("bogus"))
        .await;
    let r = w
        .auth
        .user_get(req(
            AuthUserGetRequest {
                name: "reader".into(),
            },
            rd,
        ))
        .await;
    w.line("reader: user get reader", r, |_, r| {
        format!("{:?}", r.roles)
    });
    let r = w
        .auth
        .user_get(req(
            AuthUserGetRequest {
                name: "root".into(),
            },
            rd,
        ))
        .await;
    w.line("reader: user get root", r, |_, r| format!("{:?}", r.roles));
    let r = w
        .auth
        .role_get(req(
            AuthRoleGetRequest {
                role: "read".into(),
            },
            rd,
        ))
        .await;
    w.line("reader: role get read", r, |_, r| {
        format!("{} perms", r.perm.len())
    });
    let r = w
        .auth
        .role_get(req(
            AuthRoleGetRequest {
                role: "other".into(),
            },
            rd,
        ))
        .await;
    w.line("reader: role get other", r, |_, r| {
        format!("{} perms", r.perm.len())
    });
    let r = w.auth.role_list(req(AuthRoleListRequest {}, rd)).await;
    w.line("reader: role list", r, |_, r| format!("{:?}", r.roles));
    let r = w.auth.role_list(req(AuthRoleListRequest {}, root)).await;
    w.line("root: role list", r, |_, r| format!("{:?}", r.roles));

    // Leases: anyone may grant; revoking needs every attached key writable.
    let r = w
        .lease
        .lease_grant(req(LeaseGrantRequest { ttl: 60, id: 0x77 }, rd))
        .await;
    w.line("reader: lease grant", r, |_, r| {
        format!("id {:x} ttl {}", r.id, r.ttl)
    });
    w.put("root: put a with the lease", "a", 0x77, root).await;
    w.put("reader: put k with the lease", "k", 0x77, rd).await;
    let r = w
        .lease
        .lease_revoke(req(LeaseRevokeRequest { id: 0x77 }, rd))
        .await;
    w.line("reader: lease revoke", r, |w, r| hdr(w, &r.header));
    let r = w
        .lease
        .lease_revoke(req(LeaseRevokeRequest { id: 0x77 }, root))
        .await;
    w.line("root: lease revoke", r, |w, r| hdr(w, &r.header));
    let r =
        w.kv.compact(req(
            CompactionRequest {
                revision: base + 1,
                physical: false,
            },
            rd,
        ))
        .await;
    w.line("reader: compact", r, |w, r| hdr(w, &r.header));

    // Changes of the auth store.
    let r = w
        .auth
        .role_revoke_permission(req(
            AuthRoleRevokePermissionRequest {
                role: "read".into(),
                key: b"k".to_vec().into(),
                range_end: Default::default(),
            },
            root,
        ))
        .await;
    w.line("root: revoke k from read", r, |w, r| hdr(w, &r.header));
    w.range("reader: range k after the revoke", "k", "", rd)
        .await;
    w.range("reader: range b after the revoke", "b", "", rd)
        .await;
    let r = w
        .auth
        .user_revoke_role(req(
            AuthUserRevokeRoleRequest {
                name: "root".into(),
                role: "root".into(),
            },
            root,
        ))
        .await;
    w.line("root: revoke root from root", r, |w, r| hdr(w, &r.header));
    let r = w
        .auth
        .user_delete(req(
            AuthUserDeleteRequest {
                name: "root".into(),
            },
            root,
        ))
        .await;
    w.line("root: delete root", r, |w, r| hdr(w, &r.header));
    let r = w
        .auth
        .role_delete(req(
            AuthRoleDeleteRequest {
                role: "root".into(),
            },
            root,
        ))
        .await;
    w.line("root: delete the root role", r, |w, r| hdr(w, &r.header));
    let r = w
        .auth
        .user_change_password(req(
            AuthUserChangePasswordRequest {
                name: "reader".into(),
                password: "new".into(),
                ..Default::default()
            },
            root,
        ))
        .await;
    w.line("root: change reader's password", r, |w, r| {
        hdr(w, &r.header)
    });
    w.range("reader: range b with the old token", "b", "", rd)
        .await;
    w.authenticate("authenticate reader, old password", "reader", "rpw")
        .await;
    let rd2 = w
        .authenticate("authenticate reader, new password", "reader", "new")
        .await
        .unwrap_or_default();
    let rd2 = Some(rd2.as_str());
    w.range("reader: range b", "b", "", rd2).await;
    let r = w
        .auth
        .role_delete(req(
            AuthRoleDeleteRequest {
                role: "read".into(),
            },
            root,
        ))
        .await;
    w.line("root: delete role read", r, |w, r| hdr(w, &r.header));
    w.range("reader: range b without the role", "b", "", rd2)
        .await;
    let r = w
        .auth
        .user_get(req(
            AuthUserGetRequest {
                name: "reader".into(),
            },
            root,
        ))
        .await;
    w.line("root: user get reader", r, |_, r| format!("{:?}", r.roles));
    let r = w
        .auth
        .user_delete(req(
            AuthUserDeleteRequest {
                name: "reader".into(),
            },
            root,
        ))
        .await;
    w.line("root: delete reader", r, |w, r| hdr(w, &r.header));
    w.range("reader (deleted): range b", "b", "", rd2).await;
    let r = w
        .auth
        .user_delete(req(
            AuthUserDeleteRequest {
                name: "reader".into(),
            },
            root,
        ))
        .await;
    w.line("root: delete reader again", r, |w, r| hdr(w, &r.header));
    w.range(
        "root: range with a token from before the changes",
        "k",
        "",
        root,
    )
    .await;
    let root2 = w
        .authenticate("authenticate root again", "root", "rootpw")
        .await
        .unwrap_or_default();
    let root2 = Some(root2.as_str());

    // ---- disabled ----
    let r = w.auth.auth_disable(req(AuthDisableRequest {}, rd2)).await;
    w.line("disable as a deleted user", r, |w, r| hdr(w, &r.header));
    let r = w.auth.auth_disable(req(AuthDisableRequest {}, root2)).await;
    w.line("disable", r, |w, r| hdr(w, &r.header));
    w.range("range without a token", "k", "", None).await;
    w.range("range with root's token", "k", "", root2).await;
    w.authenticate("authenticate after disabling", "root", "rootpw")
        .await;
    let r = w.auth.user_list(AuthUserListRequest {}).await;
    w.line("user list", r, |_, r| format!("{:?}", r.users));
    let r = w.auth.auth_disable(AuthDisableRequest {}).await;
    w.line("disable again", r, |w, r| hdr(w, &r.header));
    w.text
}

/// With `--auth-token ""` (etcd's "nop" token provider) no token is ever
/// issued: Authenticate fails once auth is enabled, so requests go without
/// a token and are refused, while the Auth service's own calls before the
/// enable work as usual.
pub async fn nop_transcript(ch: Channel, base: i64) -> String {
    let mut w = Run {
        base,
        text: String::new(),
        auth: AuthClient::new(ch.clone()),
        kv: KvClient::new(ch.clone()),
        lease: LeaseClient::new(ch.clone()),
        watch: WatchClient::new(ch),
    };
    let hdr = |w: &Run, h: &Option<ResponseHeader>| format!("ok, header {}", w.rev(h));
    w.authenticate("authenticate while disabled", "root", "rootpw")
        .await;
    let r = w
        .auth
        .user_add(AuthUserAddRequest {
            name: "root".into(),
            password: "rootpw".into(),
            ..Default::default()
        })
        .await;
    w.line("user add root", r, |w, r| hdr(w, &r.header));
    let r = w
        .auth
        .user_grant_role(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await;
    w.line("grant root to root", r, |w, r| hdr(w, &r.header));
    let r = w.auth.auth_enable(AuthEnableRequest {}).await;
    w.line("enable", r, |w, r| hdr(w, &r.header));
    let token = w.authenticate("authenticate root", "root", "rootpw").await;
    w.authenticate("authenticate root, wrong password", "root", "nope")
        .await;
    w.range("range without a token", "a", "", None).await;
    w.put("put without a token", "a", 0, None).await;
    w.range(
        "range with a made-up token",
        "a",
        "",
        Some("abcdefghijklmnop.1"),
    )
    .await;
    if let Some(t) = token {
        w.range("range with what Authenticate gave", "a", "", Some(&t))
            .await;
    }
    let r = w.auth.auth_disable(AuthDisableRequest {}).await;
    w.line("disable without a token", r, |w, r| hdr(w, &r.header));
    w.text
}
