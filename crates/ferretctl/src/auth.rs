//! `user ...`, `role ...` and `auth enable|disable` (etcd v2 auth).

use ferret_gocompat::path::clean_url_path_str;

use crate::api::{self, js, js_list, Role};
use crate::client::Client;
use crate::ctx::{ask_password, fail, must_new_client, Ctx};

fn no_args(ctx: &Ctx) {
    if !ctx.args.is_empty() {
        fail("No arguments accepted");
    }
}

fn one_name(ctx: &Ctx, what: &str) -> String {
    if ctx.args.len() != 1 {
        fail(&format!("Please provide a {what}"));
    }
    ctx.args[0].clone()
}

fn user_client(ctx: &Ctx) -> (Client, String) {
    let name = one_name(ctx, "username");
    (must_new_client(ctx), name)
}

fn role_client(ctx: &Ctx) -> (Client, String) {
    let name = one_name(ctx, "role name");
    (must_new_client(ctx), name)
}

fn or_fail<T>(r: Result<T, crate::client::Error>) -> T {
    r.unwrap_or_else(|e| fail(&e.to_string()))
}

fn enable_disable(ctx: &Ctx, enable: bool) {
    no_args(ctx);
    let mut c = must_new_client(ctx);
    or_fail(api::auth_enable(&mut c, enable, ctx.deadline()));
    println!(
        "Authentication {}",
        if enable { "Enabled" } else { "Disabled" }
    );
}

pub fn enable(ctx: &Ctx) {
    enable_disable(ctx, true);
}

pub fn disable(ctx: &Ctx) {
    enable_disable(ctx, false);
}

pub fn user_list(ctx: &Ctx) {
    no_args(ctx);
    let mut c = must_new_client(ctx);
    for u in or_fail(api::users_list(&mut c, ctx.deadline())) {
        println!("{u}");
    }
}

pub fn user_add(ctx: &Ctx) {
    let (mut c, arg) = user_client(ctx);
    let deadline = ctx.deadline();
    let (user, pass) = match arg.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => {
            let p = ask_password("New password: ");
            (arg.clone(), p)
        }
    };
    or_fail(api::user_add(&mut c, &user, &pass, deadline));
    println!("User {user} created");
}

pub fn user_remove(ctx: &Ctx) {
    let (mut c, user) = user_client(ctx);
    or_fail(api::user_remove(&mut c, &user, ctx.deadline()));
    println!("User {user} removed");
}

pub fn user_passwd(ctx: &Ctx) {
    let (mut c, user) = user_client(ctx);
    let deadline = ctx.deadline();
    let pass = ask_password("New password: ");
    let body = format!(
        "{{\"user\":{},\"password\":{},\"roles\":null}}",
        js(&user),
        js(&pass)
    );
    or_fail(api::user_mod(&mut c, &user, Some(body), deadline));
    println!("Password updated");
}

fn user_grant_revoke(ctx: &Ctx, grant: bool) {
    let roles = ctx.flags.strings("roles");
    if roles.is_empty() {
        fail("No roles specified; please use `--roles`");
    }
    let deadline = ctx.deadline();
    let (mut c, user) = user_client(ctx);
    let field = if grant { "grant" } else { "revoke" };
    let body = format!(
        "{{\"user\":{},\"roles\":null,\"{field}\":{}}}",
        js(&user),
        js_list(Some(&roles))
    );
    or_fail(api::user_mod(&mut c, &user, Some(body), deadline));
    println!("User {user} updated");
}

pub fn user_grant(ctx: &Ctx) {
    user_grant_revoke(ctx, true);
}

pub fn user_revoke(ctx: &Ctx) {
    user_grant_revoke(ctx, false);
}

pub fn user_get(ctx: &Ctx) {
    let (mut c, user) = user_client(ctx);
    let u = or_fail(api::user_mod(&mut c, &user, None, ctx.deadline()));
    println!("User: {}", u.user);
    println!("Roles: {}", u.roles.join(" "));
}

pub fn role_list(ctx: &Ctx) {
    no_args(ctx);
    let mut c = must_new_client(ctx);
    for r in or_fail(api::roles_list(&mut c, ctx.deadline())) {
        println!("{r}");
    }
}

pub fn role_add(ctx: &Ctx) {
    let (mut c, role) = role_client(ctx);
    let deadline = ctx.deadline();
    if api::role_mod(&mut c, &role, None, deadline).is_ok() {
        fail(&format!("Role {role} already exists"));
    }
    or_fail(api::role_add(&mut c, &role, deadline));
    println!("Role {role} created");
}

pub fn role_remove(ctx: &Ctx) {
    let (mut c, role) = role_client(ctx);
    or_fail(api::role_remove(&mut c, &role, ctx.deadline()));
    println!("Role {role} removed");
}

fn role_grant_revoke(ctx: &Ctx, grant: bool) {
    let path = ctx.flags.string("path");
    if path.is_empty() {
        fail("No path specified; please use `--path`");
    }
    let canonical = clean_url_path_str(&path);
    if canonical != path {
        fail(&format!(
            "Not canonical path; please use `--path={canonical}`"
        ));
    }
    let (read, write, rw) = (
        ctx.flags.bool("read"),
        ctx.flags.bool("write"),
        ctx.flags.bool("readwrite"),
    );
    if [read, write, rw].iter().filter(|b| **b).count() != 1 {
        fail("Please specify exactly one of --read, --write or --readwrite");
    }
    let (mut c, role) = role_client(ctx);
    let deadline = ctx.deadline();
    let current: Role = or_fail(api::role_mod(&mut c, &role, None, deadline));
    let paths = [path];
    let kv = format!(
        "{{\"kv\":{{\"read\":{},\"write\":{}}}}}",
        js_list((read || rw).then_some(&paths[..])),
        js_list((write || rw).then_some(&paths[..]))
    );
    let field = if grant { "grant" } else { "revoke" };
    let body = format!(
        "{{\"role\":{},\"permissions\":{{\"kv\":{{\"read\":null,\"write\":null}}}},\"{field}\":{kv}}}",
        js(&role)
    );
    let updated = or_fail(api::role_mod(&mut c, &role, Some(body), deadline));
    if updated == current {
        use std::io::Write;
        print!(
            "Role unchanged; already {}",
            if grant { "granted" } else { "revoked" }
        );
        let _ = std::io::stdout().flush();
    }
    println!("Role {role} updated");
}

pub fn role_grant(ctx: &Ctx) {
    role_grant_revoke(ctx, true);
}

pub fn role_revoke(ctx: &Ctx) {
    role_grant_revoke(ctx, false);
}

pub fn role_get(ctx: &Ctx) {
    let (mut c, role) = role_client(ctx);
    let r = or_fail(api::role_mod(&mut c, &role, None, ctx.deadline()));
    println!("Role: {}", r.role);
    println!("KV Read:");
    for p in r.read.iter().flatten() {
        println!("\t{p}");
    }
    println!("KV Write:");
    for p in r.write.iter().flatten() {
        println!("\t{p}");
    }
}
