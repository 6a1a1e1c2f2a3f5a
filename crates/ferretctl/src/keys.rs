//! The key commands: set, get, mk, mkdir, setdir, update, updatedir, rm,
//! rmdir, ls (etcdctl's ctlv2/command/*_command.go, one function each).

use crate::api::{self, DeleteOptions, KeysResponse, Node, SetOptions};
use crate::client::Error;
use crate::ctx::{
    arg_or_stdin, exit, handle_error, must_new_client, Ctx, EXIT_BAD_ARGS, EXIT_SERVER_ERROR,
};
use crate::output::print_response_key;

fn bad_args(msg: &str) -> ! {
    handle_error(EXIT_BAD_ARGS, &Error::Other(msg.into()))
}

fn key_arg(ctx: &Ctx) -> String {
    match ctx.args.first() {
        Some(k) => k.clone(),
        None => bad_args("key required"),
    }
}

fn value_arg(ctx: &Ctx) -> String {
    arg_or_stdin(&ctx.args, 1).unwrap_or_else(|| bad_args("value required"))
}

/// `--ttl` as the client sends it: whole seconds, only when positive.
fn ttl(ctx: &Ctx) -> u64 {
    u64::try_from(ctx.flags.int("ttl")).unwrap_or(0)
}

/// An int flag as Go's `uint64(int)` cast: negative numbers wrap.
fn index_flag(ctx: &Ctx, name: &str) -> u64 {
    ctx.flags.int(name) as u64
}

fn done(r: Result<KeysResponse, Error>) -> KeysResponse {
    r.unwrap_or_else(|e| handle_error(EXIT_SERVER_ERROR, &e))
}

pub fn set(ctx: &Ctx) {
    let key = key_arg(ctx);
    let value = value_arg(ctx);
    let mut c = must_new_client(ctx);
    let o = SetOptions {
        prev_value: ctx.flags.string("swap-with-value"),
        prev_index: index_flag(ctx, "swap-with-index"),
        ttl_secs: ttl(ctx),
        ..SetOptions::default()
    };
    let r = done(api::set(&mut c, &key, &value, &o, ctx.deadline()));
    print_response_key(&r, &ctx.output());
}

pub fn get(ctx: &Ctx) {
    let key = key_arg(ctx);
    let mut c = must_new_client(ctx);
    let r = done(api::get(
        &mut c,
        &key,
        false,
        ctx.flags.bool("sort"),
        ctx.flags.bool("quorum"),
        ctx.deadline(),
    ));
    if r.node.dir {
        eprintln!("{}: is a directory", r.node.key);
        exit(EXIT_BAD_ARGS);
    }
    print_response_key(&r, &ctx.output());
}

pub fn mk(ctx: &Ctx) {
    let key = key_arg(ctx);
    let value = value_arg(ctx);
    let mut c = must_new_client(ctx);
    let r = if ctx.flags.bool("in-order") {
        api::create_in_order(&mut c, &key, &value, ttl(ctx), ctx.deadline())
    } else {
        let o = SetOptions {
            prev_exist: Some(false),
            ttl_secs: ttl(ctx),
            ..SetOptions::default()
        };
        api::set(&mut c, &key, &value, &o, ctx.deadline())
    };
    print_response_key(&done(r), &ctx.output());
}

/// mkdir, setdir and updatedir: a directory set, printed only outside
/// the simple format.
fn dir_set(ctx: &Ctx, prev_exist: Option<bool>) {
    let key = key_arg(ctx);
    let mut c = must_new_client(ctx);
    let o = SetOptions {
        prev_exist,
        ttl_secs: ttl(ctx),
        dir: true,
        ..SetOptions::default()
    };
    let r = done(api::set(&mut c, &key, "", &o, ctx.deadline()));
    if ctx.output() != "simple" {
        print_response_key(&r, &ctx.output());
    }
}

pub fn mkdir(ctx: &Ctx) {
    dir_set(ctx, Some(false));
}

pub fn setdir(ctx: &Ctx) {
    dir_set(ctx, None);
}

pub fn updatedir(ctx: &Ctx) {
    dir_set(ctx, Some(true));
}

pub fn update(ctx: &Ctx) {
    let key = key_arg(ctx);
    let value = value_arg(ctx);
    let mut c = must_new_client(ctx);
    let o = SetOptions {
        prev_exist: Some(true),
        ttl_secs: ttl(ctx),
        ..SetOptions::default()
    };
    let r = done(api::set(&mut c, &key, &value, &o, ctx.deadline()));
    print_response_key(&r, &ctx.output());
}

fn delete(ctx: &Ctx, o: DeleteOptions) {
    let key = key_arg(ctx);
    let mut c = must_new_client(ctx);
    let r = done(api::delete(&mut c, &key, &o, ctx.deadline()));
    if !r.node.dir || ctx.output() != "simple" {
        print_response_key(&r, &ctx.output());
    }
}

pub fn rm(ctx: &Ctx) {
    delete(
        ctx,
        DeleteOptions {
            prev_value: ctx.flags.string("with-value"),
            prev_index: index_flag(ctx, "with-index"),
            dir: ctx.flags.bool("dir"),
            recursive: ctx.flags.bool("recursive"),
        },
    );
}

pub fn rmdir(ctx: &Ctx) {
    delete(
        ctx,
        DeleteOptions {
            dir: true,
            ..DeleteOptions::default()
        },
    );
}

pub fn ls(ctx: &Ctx) {
    let key = ctx.args.first().cloned().unwrap_or_else(|| "/".into());
    let mut c = must_new_client(ctx);
    let r = done(api::get(
        &mut c,
        &key,
        ctx.flags.bool("recursive"),
        ctx.flags.bool("sort"),
        ctx.flags.bool("quorum"),
        ctx.deadline(),
    ));
    if ctx.output() != "simple" {
        print_response_key(&r, &ctx.output());
        return;
    }
    let slash = ctx.flags.bool("p");
    let mut out = String::new();
    if !r.node.dir {
        out.push_str(&r.node.key);
        out.push('\n');
    }
    fn walk(n: &Node, slash: bool, out: &mut String) {
        out.push_str(&n.key);
        if n.dir && slash {
            out.push('/');
        }
        out.push('\n');
        for child in n.nodes.iter().flatten() {
            walk(child, slash, out);
        }
    }
    for child in r.node.nodes.iter().flatten() {
        walk(child, slash, &mut out);
    }
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(out.as_bytes());
    let _ = o.flush();
}
