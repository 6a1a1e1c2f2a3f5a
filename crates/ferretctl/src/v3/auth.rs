//! `auth enable` and `auth disable`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/auth_command.go`). The passwords etcdctl reads are
//! `prompt`'s.
//!
//! `auth enable` makes the root role and grants it to the root user when
//! the server answers that root has no root role, then asks again, as
//! etcdctl does; all its requests share one `--command-timeout` (read
//! before the `ETCDCTL_*` variables are applied, as etcdctl's
//! `commandCtx` reads it before the client is made). Both print their
//! line whatever `-w` says, though an unknown format is still refused
//! when the client is made.

use std::time::Instant;

use ferret_proto::etcdserverpb::auth_client::AuthClient;
use ferret_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthUserGrantRoleRequest,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};

/// etcd's `ErrRootRoleNotExist`, which `auth enable` answers by making
/// the root role.
const ROOT_ROLE_NOT_GRANTED: &str = "etcdserver: root user does not have root role";

pub fn enable(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "auth enable command does not accept any arguments",
        ));
    }
    let deadline = Instant::now() + inv.duration("command-timeout");
    let (cfg, _display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    loop {
        let enabled = c.unary_until(Retry::NonRepeatable, deadline, |ch, auth| {
            let req = auth.req(AuthEnableRequest {});
            async move { AuthClient::new(ch).auth_enable(req).await }
        });
        match enabled {
            Ok(_) => break,
            Err(e) if e.msg == ROOT_ROLE_NOT_GRANTED => {
                c.unary_until(Retry::NonRepeatable, deadline, |ch, auth| {
                    let req = auth.req(AuthRoleAddRequest {
                        name: "root".into(),
                    });
                    async move { AuthClient::new(ch).role_add(req).await }
                })?;
                c.unary_until(Retry::NonRepeatable, deadline, |ch, auth| {
                    let req = auth.req(AuthUserGrantRoleRequest {
                        user: "root".into(),
                        role: "root".into(),
                    });
                    async move { AuthClient::new(ch).user_grant_role(req).await }
                })?;
            }
            Err(e) => return Err(e),
        }
    }
    println!("Authentication Enabled");
    Ok(())
}

pub fn disable(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "auth disable command does not accept any arguments",
        ));
    }
    let deadline = Instant::now() + inv.duration("command-timeout");
    let (cfg, _display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    c.unary_until(Retry::NonRepeatable, deadline, |ch, auth| {
        let req = auth.req(AuthDisableRequest {});
        async move { AuthClient::new(ch).auth_disable(req).await }
    })?;
    println!("Authentication Disabled");
    Ok(())
}
