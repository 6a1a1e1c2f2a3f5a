//! etcd's v2 auth model (`v2auth.User`, `Role`, `Permissions`): the
//! records, how an update request merges into them, and which keys a
//! permission pattern covers.

use crate::api::v2::auth::error::AuthError;

/// The name of the role that holds every permission, and of the user that
/// always has it.
pub const ROOT: &str = "root";
/// The role of requests without credentials.
pub const GUEST: &str = "guest";

/// A user as etcd stores it (`v2auth.User`). `grant` and `revoke` appear
/// only in update requests. `None` is Go's nil slice, which etcd writes as
/// `null` and which is not "equal" to an empty one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub user: String,
    /// The bcrypt hash once stored; the clear password in requests.
    pub password: String,
    pub roles: Option<Vec<String>>,
    pub grant: Option<Vec<String>>,
    pub revoke: Option<Vec<String>>,
}

/// A role as etcd stores it (`v2auth.Role`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    pub role: String,
    pub permissions: Permissions,
    pub grant: Option<Permissions>,
    pub revoke: Option<Permissions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub kv: RwPermission,
}

/// Key patterns: a pattern ending in `*` matches every key it prefixes,
/// any other pattern matches only itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RwPermission {
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

pub(crate) fn root_role() -> Role {
    let all = || Some(vec!["/*".to_string()]);
    Role {
        role: ROOT.into(),
        permissions: Permissions {
            kv: RwPermission {
                read: all(),
                write: all(),
            },
        },
        grant: None,
        revoke: None,
    }
}

/// The role etcd creates when auth is enabled without one: full access,
/// so enabling auth locks nobody out until the operator narrows it.
pub(crate) fn default_guest_role() -> Role {
    Role {
        role: GUEST.into(),
        ..root_role()
    }
}

/// Go's `sort.Strings` of a set's values: deduplicated, byte order, and
/// never nil (`[]`, not `null`).
fn sorted_set(set: std::collections::BTreeSet<String>) -> Option<Vec<String>> {
    Some(set.into_iter().collect())
}

impl User {
    /// The root user always has the root role, stored or not.
    pub(crate) fn with_root_role(mut self) -> User {
        let roles = self.roles.get_or_insert_with(Vec::new);
        if !roles.iter().any(|r| r == ROOT) {
            roles.push(ROOT.into());
        }
        self
    }

    /// Applies an update request (`User.merge`): a new password if one is
    /// given (hashed by `hash`), then the grants, then the revokes. Granting
    /// a held role or revoking a missing one is an error.
    pub(crate) fn merge(&self, req: &User, new_hash: Option<String>) -> Result<User, AuthError> {
        if self.user != req.user {
            return Err(AuthError::UserNameConflict(
                self.user.clone(),
                req.user.clone(),
            ));
        }
        let mut roles: std::collections::BTreeSet<String> =
            self.roles.iter().flatten().cloned().collect();
        for g in req.grant.iter().flatten() {
            if !roles.insert(g.clone()) {
                return Err(AuthError::DuplicateRole(g.clone(), req.user.clone()));
            }
        }
        for r in req.revoke.iter().flatten() {
            if !roles.remove(r) {
                return Err(AuthError::UngrantedRole(r.clone(), req.user.clone()));
            }
        }
        Ok(User {
            user: self.user.clone(),
            password: new_hash.unwrap_or_else(|| self.password.clone()),
            roles: sorted_set(roles),
            grant: None,
            revoke: None,
        })
    }

    pub(crate) fn has_role(&self, name: &str) -> bool {
        self.roles.iter().flatten().any(|r| r == name)
    }
}

impl Permissions {
    /// Go's `(*Permissions).IsEmpty`: nil, or no patterns at all.
    pub(crate) fn is_empty(p: Option<&Permissions>) -> bool {
        p.is_none_or(|p| {
            p.kv.read.as_ref().is_none_or(Vec::is_empty)
                && p.kv.write.as_ref().is_none_or(Vec::is_empty)
        })
    }
}

impl RwPermission {
    fn grant(&self, add: &RwPermission) -> Result<RwPermission, AuthError> {
        let mut read: std::collections::BTreeSet<String> =
            self.read.iter().flatten().cloned().collect();
        for p in add.read.iter().flatten() {
            if !read.insert(p.clone()) {
                return Err(AuthError::DuplicateRead(p.clone()));
            }
        }
        let mut write: std::collections::BTreeSet<String> =
            self.write.iter().flatten().cloned().collect();
        for p in add.write.iter().flatten() {
            if !write.insert(p.clone()) {
                return Err(AuthError::DuplicateWrite(p.clone()));
            }
        }
        Ok(RwPermission {
            read: sorted_set(read),
            write: sorted_set(write),
        })
    }

    /// Revoking a pattern the role does not have is not an error (etcd
    /// only logs it).
    fn revoke(&self, remove: &RwPermission) -> RwPermission {
        let without = |have: &Option<Vec<String>>, gone: &Option<Vec<String>>| {
            let mut set: std::collections::BTreeSet<String> =
                have.iter().flatten().cloned().collect();
            for p in gone.iter().flatten() {
                set.remove(p);
            }
            sorted_set(set)
        };
        RwPermission {
            read: without(&self.read, &remove.read),
            write: without(&self.write, &remove.write),
        }
    }

    fn patterns(&self, write: bool) -> &[String] {
        let list = if write { &self.write } else { &self.read };
        list.as_deref().unwrap_or_default()
    }

    /// `HasAccess`: some pattern matches `key`.
    pub fn has_access(&self, key: &[u8], write: bool) -> bool {
        self.patterns(write).iter().any(|p| simple_match(p, key))
    }

    /// `HasRecursiveAccess`: some `*` pattern prefixes `key`, so it covers
    /// everything below it too.
    pub fn has_recursive_access(&self, key: &[u8], write: bool) -> bool {
        self.patterns(write).iter().any(|p| prefix_match(p, key))
    }
}

/// etcd's `simpleMatch`. An empty pattern makes etcd panic; here it
/// matches nothing.
fn simple_match(pattern: &str, key: &[u8]) -> bool {
    match pattern.as_bytes().split_last() {
        Some((b'*', prefix)) => key.starts_with(prefix),
        Some(_) => key == pattern.as_bytes(),
        None => false,
    }
}

/// etcd's `prefixMatch`: only `*` patterns can cover a subtree.
fn prefix_match(pattern: &str, key: &[u8]) -> bool {
    match pattern.as_bytes().split_last() {
        Some((b'*', prefix)) => key.starts_with(prefix),
        _ => false,
    }
}

impl Role {
    /// Applies an update request (`Role.merge`): grants, then revokes.
    pub(crate) fn merge(&self, req: &Role) -> Result<Role, AuthError> {
        if self.role != req.role {
            return Err(AuthError::RoleNameConflict(
                self.role.clone(),
                req.role.clone(),
            ));
        }
        let mut permissions = self.permissions.clone();
        if let Some(g) = &req.grant {
            permissions.kv = permissions.kv.grant(&g.kv)?;
        }
        if let Some(r) = &req.revoke {
            permissions.kv = permissions.kv.revoke(&r.kv);
        }
        Ok(Role {
            role: self.role.clone(),
            permissions,
            grant: None,
            revoke: None,
        })
    }

    pub fn has_key_access(&self, key: &[u8], write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_access(key, write)
    }

    pub fn has_recursive_access(&self, key: &[u8], write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_recursive_access(key, write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn perm(read: &[&str], write: &[&str]) -> RwPermission {
        RwPermission {
            read: strings(read),
            write: strings(write),
        }
    }

    #[test]
    fn simple_patterns_match_as_etcd() {
        let p = perm(&["/app/*", "/exact"], &["/app/w/*"]);
        assert!(p.has_access(b"/app/x", false));
        assert!(p.has_access(b"/app/", false));
        assert!(p.has_access(b"/app/x/y", false));
        assert!(!p.has_access(b"/app", false));
        assert!(p.has_access(b"/exact", false));
        assert!(!p.has_access(b"/exact/", false));
        assert!(!p.has_access(b"/exactly", false));
        assert!(!p.has_access(b"/app/x", true));
        assert!(p.has_access(b"/app/w/1", true));
        // "/*" does not cover the key of /v2/keys itself, which is "".
        assert!(!perm(&["/*"], &[]).has_access(b"", false));
        assert!(perm(&["/*"], &[]).has_access(b"/", false));
        // A trailing star is a prefix, not a path glob.
        assert!(perm(&["/ap*"], &[]).has_access(b"/apple", false));
    }

    #[test]
    fn recursive_access_needs_a_star_pattern() {
        let p = perm(&["/app/*", "/exact"], &[]);
        assert!(p.has_recursive_access(b"/app/x", false));
        assert!(!p.has_recursive_access(b"/exact", false));
        assert!(!p.has_recursive_access(b"/", false));
    }

    #[test]
    fn empty_patterns_match_nothing() {
        let p = perm(&[""], &[""]);
        assert!(!p.has_access(b"", false));
        assert!(!p.has_recursive_access(b"/", true));
    }

    #[test]
    fn root_role_has_everything() {
        let r = root_role();
        assert!(r.has_key_access(b"", true));
        assert!(r.has_recursive_access(b"/anything", true));
        let guest = default_guest_role();
        assert!(guest.has_key_access(b"/x", true));
        assert!(!guest.has_key_access(b"", true));
    }

    #[test]
    fn user_merge_grants_revokes_and_sorts() {
        let old = User {
            user: "a".into(),
            password: "h".into(),
            roles: strings(&["z", "b", "b"]),
            ..User::default()
        };
        let req = User {
            user: "a".into(),
            grant: strings(&["c"]),
            revoke: strings(&["z"]),
            ..User::default()
        };
        let new = old.merge(&req, None).unwrap();
        assert_eq!(new.roles, strings(&["b", "c"]));
        assert_eq!(new.password, "h");
        let dup = User {
            user: "a".into(),
            grant: strings(&["b"]),
            ..User::default()
        };
        assert_eq!(
            old.merge(&dup, None).unwrap_err().to_string(),
            "auth: Granting duplicate role b for user a"
        );
        let missing = User {
            user: "a".into(),
            revoke: strings(&["q%d"]),
            ..User::default()
        };
        assert_eq!(
            old.merge(&missing, None).unwrap_err().to_string(),
            "auth: Revoking ungranted role q%!d(MISSING) for user a"
        );
    }

    #[test]
    fn user_merge_without_changes_still_turns_nil_roles_empty() {
        // etcd's DeepEqual sees nil and empty roles as different, so the
        // first no-op update of a user created without roles succeeds.
        let old = User {
            user: "a".into(),
            password: "h".into(),
            ..User::default()
        };
        let req = User {
            user: "a".into(),
            ..User::default()
        };
        let new = old.merge(&req, None).unwrap();
        assert_eq!(new.roles, Some(vec![]));
        assert_ne!(new, old);
        assert_eq!(new.merge(&req, None).unwrap(), new);
    }

    #[test]
    fn role_merge_grants_revokes_and_normalises() {
        let old = Role {
            role: "r".into(),
            permissions: Permissions {
                kv: RwPermission {
                    read: strings(&["/x"]),
                    write: None,
                },
            },
            ..Role::default()
        };
        // Revoking a pattern the role lacks is no error, but the nil write
        // list becomes empty, which counts as a change.
        let req = Role {
            role: "r".into(),
            revoke: Some(Permissions {
                kv: perm(&["/nope"], &[]),
            }),
            ..Role::default()
        };
        let new = old.merge(&req).unwrap();
        assert_eq!(new.permissions.kv, perm(&["/x"], &[]));
        assert_ne!(new, old);
        assert_eq!(new.merge(&req).unwrap(), new);

        let grant = Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: perm(&["/b", "/a"], &["/w"]),
            }),
            ..Role::default()
        };
        assert_eq!(
            new.merge(&grant).unwrap().permissions.kv,
            perm(&["/a", "/b", "/x"], &["/w"])
        );
        let dup = Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: perm(&["/x"], &[]),
            }),
            ..Role::default()
        };
        assert_eq!(
            new.merge(&dup).unwrap_err().to_string(),
            "auth: Granting duplicate read permission /x"
        );
    }

    #[test]
    fn permissions_emptiness_as_etcd() {
        assert!(Permissions::is_empty(None));
        assert!(Permissions::is_empty(Some(&Permissions::default())));
        assert!(Permissions::is_empty(Some(&Permissions {
            kv: perm(&[], &[])
        })));
        assert!(!Permissions::is_empty(Some(&Permissions {
            kv: perm(&[], &["/a"])
        })));
    }
}
