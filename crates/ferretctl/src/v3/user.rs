//! `user add`, `delete`, `get`, `list`, `passwd`, `grant-role` and
//! `revoke-role`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/user_command.go`), with its printers' output.
//!
//! `add` and `passwd` read the password before the client is made: for
//! `add` from `--new-user-password`, else after the first `:` of
//! `name:password`, else from stdin (the terminal, twice, with
//! `--interactive`, its default; else the first word of stdin); `add
//! --no-password` reads none and asks the server for a user without one.
//! Each command sends its requests with `context.TODO()`: no time limit.
//!
//! Outputs: the simple format is etcdctl's sentences; the fields format
//! the response header, except for `get` and `list`, which etcdctl's
//! fields printer lacks (exit 4, after the request); json and protobuf
//! the whole response; table none (exit 4). `get --detail` prints
//! `User: <name>` itself, then for each of the user's roles an empty line
//! and the role as `role get` prints it, in the chosen format (so a
//! format that refuses refuses only once a role is to be printed).

use ferret_proto::authpb::UserAddOptions;
use ferret_proto::etcdserverpb::auth_client::AuthClient;
use ferret_proto::etcdserverpb::{
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};
use super::printer::Format;
use super::prompt::{read_password_interactive, scan_word};
use super::role;

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

pub fn add(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "user add command requires user name as its argument",
        ));
    }
    let arg = &inv.args[0];
    let no_password = inv.bool("no-password");
    let from_flag = inv.str("new-user-password");
    let (name, password) = if no_password {
        (arg.clone(), String::new())
    } else if !from_flag.is_empty() {
        (arg.clone(), from_flag)
    } else if let Some((user, password)) = arg.split_once(':') {
        if user.is_empty() {
            return Err(bad_args("empty user name is not allowed"));
        }
        (user.to_string(), password.to_string())
    } else if !inv.bool("interactive") {
        (arg.clone(), scan_word())
    } else {
        (arg.clone(), read_password_interactive(arg)?)
    };
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthUserAddRequest {
            name: name.clone(),
            password: password.clone(),
            options: Some(UserAddOptions { no_password }),
            ..Default::default()
        });
        async move { AuthClient::new(ch).user_add(req).await }
    })?;
    display.change(&format!("User {name} created"), &resp.header, &resp)
}

pub fn delete(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "user delete command requires user name as its argument",
        ));
    }
    let name = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthUserDeleteRequest { name: name.clone() });
        async move { AuthClient::new(ch).user_delete(req).await }
    })?;
    display.change(&format!("User {name} deleted"), &resp.header, &resp)
}

pub fn get(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "user get command requires user name as its argument",
        ));
    }
    let name = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::Repeatable, |ch, auth| {
        let req = auth.req(AuthUserGetRequest { name: name.clone() });
        async move { AuthClient::new(ch).user_get(req).await }
    })?;
    if inv.bool("detail") {
        display.line(&format!("User: {name}"));
        for r in &resp.roles {
            display.line("");
            let printed = role::get_role(&mut c, r)
                .and_then(|role_resp| role::print_get(&mut display, r, &role_resp));
            if let Err(e) = printed {
                display.flush();
                return Err(e);
            }
        }
        display.flush();
        return Ok(());
    }
    let printed = match display.format {
        Format::Simple => {
            display.line(&format!("User: {name}"));
            let mut roles = String::from("Roles:");
            for r in &resp.roles {
                roles.push(' ');
                roles.push_str(r);
            }
            display.line(&roles);
            Ok(())
        }
        Format::Fields | Format::Table => Err(display.unsupported()),
        Format::Json | Format::Protobuf => display.whole(&resp),
    };
    display.flush();
    printed
}

pub fn list(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(bad_args("user list command requires no arguments"));
    }
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::Repeatable, |ch, auth| {
        let req = auth.req(AuthUserListRequest {});
        async move { AuthClient::new(ch).user_list(req).await }
    })?;
    let printed = match display.format {
        Format::Simple => {
            for u in &resp.users {
                display.line(u);
            }
            Ok(())
        }
        Format::Fields | Format::Table => Err(display.unsupported()),
        Format::Json | Format::Protobuf => display.whole(&resp),
    };
    display.flush();
    printed
}

pub fn passwd(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "user passwd command requires user name as its argument",
        ));
    }
    let name = inv.args[0].clone();
    let password = if inv.bool("interactive") {
        read_password_interactive(&name)?
    } else {
        scan_word()
    };
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthUserChangePasswordRequest {
            name: name.clone(),
            password: password.clone(),
            ..Default::default()
        });
        async move { AuthClient::new(ch).user_change_password(req).await }
    })?;
    display.change("Password updated", &resp.header, &resp)
}

pub fn grant_role(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 2 {
        return Err(bad_args(
            "user grant command requires user name and role name as its argument",
        ));
    }
    let (user, role) = (inv.args[0].clone(), inv.args[1].clone());
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthUserGrantRoleRequest {
            user: user.clone(),
            role: role.clone(),
        });
        async move { AuthClient::new(ch).user_grant_role(req).await }
    })?;
    display.change(
        &format!("Role {role} is granted to user {user}"),
        &resp.header,
        &resp,
    )
}

pub fn revoke_role(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 2 {
        return Err(bad_args(
            "user revoke-role requires user name and role name as its argument",
        ));
    }
    let (name, role) = (inv.args[0].clone(), inv.args[1].clone());
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthUserRevokeRoleRequest {
            name: name.clone(),
            role: role.clone(),
        });
        async move { AuthClient::new(ch).user_revoke_role(req).await }
    })?;
    display.change(
        &format!("Role {role} is revoked from user {name}"),
        &resp.header,
        &resp,
    )
}
