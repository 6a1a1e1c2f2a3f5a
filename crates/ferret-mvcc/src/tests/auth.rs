//! v3 auth through the applier: changes committed with the consistent
//! index and restored at a restart, permission checks at apply, no KV
//! revision for auth changes, and the Hash covering the auth tables.

use std::time::Instant;

use ferret_proto::authpb::{permission, Permission};
use ferret_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest, InternalAuthenticateRequest, InternalRaftRequest, PutRequest,
};

use super::{b, config, Harness};
use crate::{AuthError, AuthInfo, AuthResponse, MvccError, Storage, V3Request, V3Response};

fn entries() -> Vec<InternalRaftRequest> {
    let user = |name: &str| InternalRaftRequest {
        auth_user_add: Some(AuthUserAddRequest {
            name: name.into(),
            hashed_password: format!("hash of {name}"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let grant = |user: &str, role: &str| InternalRaftRequest {
        auth_user_grant_role: Some(AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        }),
        ..Default::default()
    };
    vec![
        user("root"),
        grant("root", "root"),
        user("u"),
        InternalRaftRequest {
            auth_role_add: Some(AuthRoleAddRequest { name: "r".into() }),
            ..Default::default()
        },
        InternalRaftRequest {
            auth_role_grant_permission: Some(AuthRoleGrantPermissionRequest {
                name: "r".into(),
                perm: Some(Permission {
                    perm_type: permission::Type::Write as i32,
                    key: b("k/"),
                    range_end: b("k0"),
                }),
            }),
            ..Default::default()
        },
        grant("u", "r"),
        InternalRaftRequest {
            auth_enable: Some(AuthEnableRequest {}),
            ..Default::default()
        },
    ]
}

fn apply_as(h: &mut Harness, who: &AuthInfo, r: V3Request<'_>) -> Result<V3Response, MvccError> {
    h.index += 1;
    h.a.apply_as(h.index, r, who, Instant::now()).unwrap()
}

#[test]
fn auth_state_is_committed_checked_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let file = || Storage::File(dir.path().join("db"));
    let (rev, hash_before) = {
        let mut h = Harness::open(file(), config());
        h.put("x", "1");
        let (hash_before, _) = h.m.hash().unwrap();
        let rev = h.rev();
        for e in entries() {
            apply_as(&mut h, &AuthInfo::default(), V3Request::Auth(&e)).unwrap();
        }
        assert_eq!(h.rev(), rev, "auth changes make no KV revision");
        let auth_rev = h.m.auth().revision();
        let u = AuthInfo {
            user: "u".into(),
            revision: auth_rev,
        };
        let put = |key: &str| PutRequest {
            key: b(key),
            value: b("v"),
            ..Default::default()
        };
        apply_as(&mut h, &u, V3Request::Put(&put("k/1"))).expect("u may write k/");
        assert_eq!(
            apply_as(&mut h, &u, V3Request::Put(&put("x"))).unwrap_err(),
            MvccError::Auth(AuthError::PermissionDenied)
        );
        assert_eq!(
            apply_as(&mut h, &AuthInfo::default(), V3Request::Put(&put("k/1"))).unwrap_err(),
            MvccError::Auth(AuthError::UserEmpty)
        );
        let stale = AuthInfo {
            revision: auth_rev - 1,
            ..u.clone()
        };
        assert_eq!(
            apply_as(&mut h, &stale, V3Request::Put(&put("k/1"))).unwrap_err(),
            MvccError::Auth(AuthError::OldRevision)
        );
        // Only root administers; a simple token is registered at apply.
        let add = InternalRaftRequest {
            auth_role_add: Some(AuthRoleAddRequest { name: "r2".into() }),
            ..Default::default()
        };
        assert_eq!(
            apply_as(&mut h, &u, V3Request::Auth(&add)).unwrap_err(),
            MvccError::Auth(AuthError::PermissionDenied)
        );
        let login = InternalRaftRequest {
            authenticate: Some(InternalAuthenticateRequest {
                name: "u".into(),
                password: String::new(),
                simple_token: "abcdefghijklmnop".into(),
            }),
            ..Default::default()
        };
        match apply_as(&mut h, &AuthInfo::default(), V3Request::Auth(&login)).unwrap() {
            V3Response::Auth(AuthResponse::Authenticate(resp, user, revision)) => {
                assert_eq!(resp.token, format!("abcdefghijklmnop.{}", h.index));
                assert_eq!((user.as_str(), revision), ("u", auth_rev));
            }
            other => panic!("{other:?}"),
        }
        h.m.flush().unwrap();
        (h.rev(), hash_before)
    };
    let h = Harness::open(file(), config());
    let auth = h.m.auth();
    assert!(auth.is_enabled());
    assert_eq!(auth.user_list(), ["root", "u"]);
    assert_eq!(auth.user("u").unwrap().password.as_ref(), b"hash of u");
    assert_eq!(h.rev(), rev, "the put by u is kept");
    drop(auth);
    let (hash_after, _) = h.m.hash().unwrap();
    assert_ne!(hash_before, hash_after, "the Hash covers the auth tables");
    assert!(h.m.tokens().is_empty(), "a restart forgets simple tokens");
}
