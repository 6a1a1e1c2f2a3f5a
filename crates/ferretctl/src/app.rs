//! The command tree, help texts and dispatch, laid out as etcdctl v2's
//! urfave/cli application so that usage errors, help and exit codes match.

use std::io::Write;

use crate::ctx::{exit, Ctx, EXIT_BAD_ARGS, EXIT_BAD_AUTH, EXIT_SUCCESS};
use crate::flags::{self, FlagSpec, Kind, Parsed};
use crate::{auth, keys, member, watch};

const APP: &str = "ferretctl";
const APP_USAGE: &str = "A simple command line client for etcd.";

pub type Action = fn(&Ctx);

pub struct Cmd {
    pub name: &'static str,
    pub usage: &'static str,
    pub args_usage: &'static str,
    pub description: &'static str,
    pub flags: &'static [FlagSpec],
    pub action: Option<Action>,
    pub subcommands: &'static [Cmd],
}

const fn cmd(
    name: &'static str,
    usage: &'static str,
    args_usage: &'static str,
    flags: &'static [FlagSpec],
    action: Action,
) -> Cmd {
    Cmd {
        name,
        usage,
        args_usage,
        description: "",
        flags,
        action: Some(action),
        subcommands: &[],
    }
}

const fn group(name: &'static str, usage: &'static str, subcommands: &'static [Cmd]) -> Cmd {
    Cmd {
        name,
        usage,
        args_usage: "",
        description: "",
        flags: &[],
        action: None,
        subcommands,
    }
}

use Kind::{Bool, Duration as Dur, Int, Str, StrSlice};

const HELP_FLAG: FlagSpec = FlagSpec::new("help, h", Bool, "show help");
const VERSION_FLAG: FlagSpec = FlagSpec::new("version, v", Bool, "print the version");

pub const GLOBAL_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("debug", Bool, "output cURL commands which can be used to reproduce the request"),
    FlagSpec::new("no-sync", Bool, "don't synchronize cluster information before sending request"),
    FlagSpec::new(
        "output, o",
        Str,
        "output response in the given format (`simple`, `extended` or `json`)",
    )
    .with_default("simple"),
    FlagSpec::new("discovery-srv, D", Str, "domain name to query for SRV records describing cluster endpoints"),
    FlagSpec::new("insecure-discovery", Bool, "accept insecure SRV records describing cluster endpoints"),
    FlagSpec::new("peers, C", Str, "DEPRECATED - \"--endpoints\" should be used instead"),
    FlagSpec::new("endpoint", Str, "DEPRECATED - \"--endpoints\" should be used instead"),
    FlagSpec::new(
        "endpoints",
        Str,
        "a comma-delimited list of machine addresses in the cluster (default: \"http://127.0.0.1:2379,http://127.0.0.1:4001\")",
    ),
    FlagSpec::new("cert-file", Str, "identify HTTPS client using this SSL certificate file"),
    FlagSpec::new("key-file", Str, "identify HTTPS client using this SSL key file"),
    FlagSpec::new("ca-file", Str, "verify certificates of HTTPS-enabled servers using this CA bundle"),
    FlagSpec::new("username, u", Str, "provide username[:password] and prompt if password is not supplied."),
    FlagSpec::new("timeout", Dur, "connection timeout per request").with_default("2s"),
    FlagSpec::new("total-timeout", Dur, "timeout for the command execution (except watch)").with_default("5s"),
];

const TTL: FlagSpec = FlagSpec::new("ttl", Int, "key time-to-live in seconds");
const SORT: FlagSpec = FlagSpec::new("sort", Bool, "returns result in sorted order");
const QUORUM: FlagSpec = FlagSpec::new("quorum, q", Bool, "require quorum for get request");
const AFTER_INDEX: FlagSpec = FlagSpec::new("after-index", Int, "watch after the given index");
const ROLES: FlagSpec = FlagSpec::new("roles", StrSlice, "List of roles to grant or revoke");

/// Whether `name` is one of etcdctl v2's commands.
pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|c| c.name == name)
}

pub static COMMANDS: &[Cmd] = &[
    Cmd {
        flags: &[
            FlagSpec::new("data-dir", Str, "Path to the etcd data dir"),
            FlagSpec::new("wal-dir", Str, "Path to the etcd wal dir"),
            FlagSpec::new("backup-dir", Str, "Path to the backup dir"),
            FlagSpec::new("backup-wal-dir", Str, "Path to the backup wal dir"),
            FlagSpec::new("with-v3", Bool, "Backup v3 backend data"),
        ],
        ..cmd("backup", "backup an etcd directory", " ", &[], member::backup)
    },
    cmd(
        "cluster-health",
        "check the health of the etcd cluster",
        " ",
        &[FlagSpec::new("forever, f", Bool, "forever check the health every 10 second until CTRL+C")],
        member::cluster_health,
    ),
    cmd(
        "mk",
        "make a new key with a given value",
        "<key> <value>",
        &[FlagSpec::new("in-order", Bool, "create in-order key under directory <key>"), TTL],
        keys::mk,
    ),
    cmd("mkdir", "make a new directory", "<key>", &[TTL], keys::mkdir),
    cmd(
        "rm",
        "remove a key or a directory",
        "<key>",
        &[
            FlagSpec::new("dir", Bool, "removes the key if it is an empty directory or a key-value pair"),
            FlagSpec::new("recursive, r", Bool, "removes the key and all child keys(if it is a directory)"),
            FlagSpec::new("with-value", Str, "previous value"),
            FlagSpec::new("with-index", Int, "previous index"),
        ],
        keys::rm,
    ),
    cmd(
        "rmdir",
        "removes the key if it is an empty directory or a key-value pair",
        "<key>",
        &[],
        keys::rmdir,
    ),
    cmd("get", "retrieve the value of a key", "<key>", &[SORT, QUORUM], keys::get),
    cmd(
        "ls",
        "retrieve a directory",
        "[key]",
        &[
            SORT,
            FlagSpec::new("recursive, r", Bool, "returns all key names recursively for the given path"),
            FlagSpec::new("p", Bool, "append slash (/) to directories"),
            QUORUM,
        ],
        keys::ls,
    ),
    Cmd {
        description: "Set sets the value of a key.\n\n   When <value> begins with '-', <value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>",
        ..cmd(
            "set",
            "set the value of a key",
            "<key> <value>",
            &[
                TTL,
                FlagSpec::new("swap-with-value", Str, "previous value"),
                FlagSpec::new("swap-with-index", Int, "previous index"),
            ],
            keys::set,
        )
    },
    cmd(
        "setdir",
        "create a new directory or update an existing directory TTL",
        "<key>",
        &[TTL],
        keys::setdir,
    ),
    cmd("update", "update an existing key with a given value", "<key> <value>", &[TTL], keys::update),
    cmd("updatedir", "update an existing directory", "<key> <value>", &[TTL], keys::updatedir),
    cmd(
        "watch",
        "watch a key for changes",
        "<key>",
        &[
            FlagSpec::new("forever, f", Bool, "forever watch a key until CTRL+C"),
            AFTER_INDEX,
            FlagSpec::new("recursive, r", Bool, "returns all values for key and child keys"),
        ],
        watch::watch,
    ),
    cmd(
        "exec-watch",
        "watch a key for changes and exec an executable",
        "<key> <command> [args...]",
        &[AFTER_INDEX, FlagSpec::new("recursive, r", Bool, "watch all values for key and child keys")],
        watch::exec_watch,
    ),
    group(
        "member",
        "member add, remove and list subcommands",
        &[
            cmd("list", "enumerate existing cluster members", " ", &[], member::list),
            cmd("add", "add a new member to the etcd cluster", "<name> <peerURL>", &[], member::add),
            cmd("remove", "remove an existing member from the etcd cluster", "<memberID>", &[], member::remove),
            cmd(
                "update",
                "update an existing member in the etcd cluster",
                "<memberID> <peerURLs>",
                &[],
                member::update,
            ),
        ],
    ),
    group(
        "user",
        "user add, grant and revoke subcommands",
        &[
            cmd("add", "add a new user for the etcd cluster", "<user>", &[], auth::user_add),
            cmd("get", "get details for a user", "<user>", &[], auth::user_get),
            cmd("list", "list all current users", "<user>", &[], auth::user_list),
            cmd("remove", "remove a user for the etcd cluster", "<user>", &[], auth::user_remove),
            cmd("grant", "grant roles to an etcd user", "<user>", &[ROLES], auth::user_grant),
            cmd("revoke", "revoke roles for an etcd user", "<user>", &[ROLES], auth::user_revoke),
            cmd("passwd", "change password for a user", "<user>", &[], auth::user_passwd),
        ],
    ),
    group(
        "role",
        "role add, grant and revoke subcommands",
        &[
            cmd("add", "add a new role for the etcd cluster", "<role> ", &[], auth::role_add),
            cmd("get", "get details for a role", "<role>", &[], auth::role_get),
            cmd("list", "list all roles", " ", &[], auth::role_list),
            cmd("remove", "remove a role from the etcd cluster", "<role>", &[], auth::role_remove),
            cmd(
                "grant",
                "grant path matches to an etcd role",
                "<role>",
                &[
                    FlagSpec::new("path", Str, "Path granted for the role to access"),
                    FlagSpec::new("read", Bool, "Grant read-only access"),
                    FlagSpec::new("write", Bool, "Grant write-only access"),
                    FlagSpec::new("readwrite, rw", Bool, "Grant read-write access"),
                ],
                auth::role_grant,
            ),
            cmd(
                "revoke",
                "revoke path matches for an etcd role",
                "<role>",
                &[
                    FlagSpec::new("path", Str, "Path revoked for the role to access"),
                    FlagSpec::new("read", Bool, "Revoke read access"),
                    FlagSpec::new("write", Bool, "Revoke write access"),
                    FlagSpec::new("readwrite, rw", Bool, "Revoke read-write access"),
                ],
                auth::role_revoke,
            ),
        ],
    ),
    group(
        "auth",
        "overall auth controls",
        &[
            cmd("enable", "enable auth access controls", " ", &[], auth::enable),
            cmd("disable", "disable auth access controls", " ", &[], auth::disable),
        ],
    ),
];

// ---- help, as urfave/cli's templates ----

/// Go's text/tabwriter as urfave/cli configures it (padding 2): the text
/// before each line's tab is padded to the widest in its run of lines.
fn tabwrite(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].contains('\t') {
            out.push_str(lines[i]);
            if i + 1 < lines.len() {
                out.push('\n');
            }
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && lines[j].contains('\t') {
            j += 1;
        }
        let width = lines[i..j]
            .iter()
            .map(|l| l.split('\t').next().unwrap_or("").chars().count())
            .max()
            .unwrap_or(0);
        for l in &lines[i..j] {
            let (a, b) = l.split_once('\t').unwrap_or((l, ""));
            out.push_str(&format!("{a:width$}  {b}", width = width));
            out.push('\n');
        }
        if j == lines.len() {
            out.pop();
        }
        i = j;
    }
    out
}

fn app_help() -> String {
    let mut s = format!(
        "NAME:\n   {APP} - {APP_USAGE}\n\nUSAGE:\n   {APP} [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:",
        env!("CARGO_PKG_VERSION")
    );
    for c in COMMANDS {
        s.push_str(&format!("\n   {}\t{}", c.name, c.usage));
    }
    s.push_str("\n   help, h\tShows a list of commands or help for one command");
    s.push_str("\n\nGLOBAL OPTIONS:");
    for f in GLOBAL_FLAGS.iter().chain([&HELP_FLAG, &VERSION_FLAG]) {
        s.push_str(&format!("\n   {}", f.help_line()));
    }
    s.push('\n');
    tabwrite(&s)
}

fn command_help(help_name: &str, c: &Cmd) -> String {
    let mut s = format!(
        "NAME:\n   {help_name} - {}\n\nUSAGE:\n   {help_name}",
        c.usage
    );
    if !c.flags.is_empty() {
        s.push_str(" [command options]");
    }
    s.push(' ');
    s.push_str(if c.args_usage.is_empty() {
        "[arguments...]"
    } else {
        c.args_usage
    });
    if !c.description.is_empty() {
        s.push_str(&format!("\n\nDESCRIPTION:\n   {}", c.description));
    }
    if !c.flags.is_empty() {
        s.push_str("\n\nOPTIONS:\n   ");
        for f in c.flags {
            s.push_str(&f.help_line());
            s.push_str("\n   ");
        }
    }
    s.push('\n');
    tabwrite(&s)
}

fn subcommand_help(help_name: &str, c: &Cmd) -> String {
    let mut s = format!(
        "NAME:\n   {help_name} - {}\n\nUSAGE:\n   {help_name} command [command options] [arguments...]\n\nCOMMANDS:",
        c.usage
    );
    s.push_str(&subcommand_lines(c));
    s.push_str(&format!(
        "\n\nOPTIONS:\n   {}\n   \n",
        HELP_FLAG.help_line()
    ));
    tabwrite(&s)
}

/// The COMMANDS lines of a group's help: name, tab, usage.
fn subcommand_lines(c: &Cmd) -> String {
    c.subcommands
        .iter()
        .map(|sc| format!("\n   {}\t{}", sc.name, sc.usage))
        .collect()
}

/// `<group> help`: urfave/cli shows the group as an application of its own.
fn group_app_help(help_name: &str, c: &Cmd) -> String {
    let mut s = format!(
        "NAME:\n   {help_name} - {}\n\nUSAGE:\n   {help_name} [global options] command [command options] [arguments...]\n\nVERSION:\n   {}\n\nCOMMANDS:",
        c.usage,
        env!("CARGO_PKG_VERSION")
    );
    s.push_str(&subcommand_lines(c));
    s.push_str(&format!(
        "\n\nGLOBAL OPTIONS:\n   {}\n",
        HELP_FLAG.help_line()
    ));
    tabwrite(&s)
}

fn print_out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn no_help_topic(name: &str) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("No help topic for '{name}'");
    exit(EXIT_BAD_AUTH) // urfave/cli's exit code 3 for an unknown topic
}

fn find<'a>(cmds: &'a [Cmd], name: &str) -> Option<&'a Cmd> {
    cmds.iter().find(|c| c.name == name)
}

/// Runs ferretctl with `args` (without the program name).
pub fn run(args: Vec<String>) -> ! {
    let mut global_specs: Vec<FlagSpec> = GLOBAL_FLAGS.to_vec();
    global_specs.push(HELP_FLAG);
    global_specs.push(VERSION_FLAG);
    let (global, rest) = match flags::parse(&global_specs, &args) {
        Ok(v) => v,
        Err(e) => {
            print_out(&format!("Incorrect Usage. {}\n\n", e.0));
            print_out(&app_help());
            let _ = std::io::stdout().flush();
            eprintln!("{}", e.0);
            exit(EXIT_BAD_ARGS);
        }
    };
    if global.bool("help") {
        print_out(&app_help());
        exit(EXIT_SUCCESS);
    }
    if global.bool("version") {
        print_out(&format!(
            "{APP} version: {}\nAPI version: 2\n",
            env!("CARGO_PKG_VERSION")
        ));
        exit(EXIT_SUCCESS);
    }
    let Some(name) = rest.first() else {
        print_out(&app_help());
        exit(EXIT_SUCCESS);
    };
    if name == "help" || name == "h" {
        match rest.get(1) {
            None => print_out(&app_help()),
            Some(topic) => match find(COMMANDS, topic) {
                Some(c) if c.subcommands.is_empty() => {
                    print_out(&command_help(&format!("{APP} {}", c.name), c))
                }
                Some(c) => print_out(&command_help(&format!("{APP} {}", c.name), c)),
                None => no_help_topic(topic),
            },
        }
        exit(EXIT_SUCCESS);
    }
    let Some(c) = find(COMMANDS, name) else {
        no_help_topic(name);
    };
    let tail = rest[1..].to_vec();
    if c.subcommands.is_empty() {
        run_command(global, c, &format!("{APP} {}", c.name), tail)
    } else {
        run_group(global, c, tail)
    }
}

fn run_group(global: Parsed, g: &Cmd, args: Vec<String>) -> ! {
    let help_name = format!("{APP} {}", g.name);
    let (own, rest) = match flags::parse(&[HELP_FLAG], &args) {
        Ok(v) => v,
        Err(e) => {
            print_out(&format!("Incorrect Usage. {}\n\n", e.0));
            print_out(&subcommand_help(&help_name, g));
            eprintln!("{}", e.0);
            exit(EXIT_BAD_ARGS);
        }
    };
    if own.bool("help") {
        print_out(&subcommand_help(&help_name, g));
        exit(EXIT_SUCCESS);
    }
    match rest.first() {
        None => {
            print_out(&subcommand_help(&help_name, g));
            exit(EXIT_SUCCESS)
        }
        Some(name) if name == "help" || name == "h" => {
            match rest.get(1) {
                None => print_out(&group_app_help(&help_name, g)),
                Some(topic) => match find(g.subcommands, topic) {
                    Some(sc) => print_out(&command_help(&format!("{help_name} {}", sc.name), sc)),
                    None => no_help_topic(topic),
                },
            }
            exit(EXIT_SUCCESS)
        }
        Some(name) => match find(g.subcommands, name) {
            Some(sc) => run_command(
                global,
                sc,
                &format!("{help_name} {}", sc.name),
                rest[1..].to_vec(),
            ),
            None => no_help_topic(name),
        },
    }
}

fn run_command(global: Parsed, c: &Cmd, help_name: &str, args: Vec<String>) -> ! {
    let mut specs = c.flags.to_vec();
    specs.push(HELP_FLAG);
    let reordered = flags::reorder(&specs, &args);
    let (own, rest) = match flags::parse(&specs, &reordered) {
        Ok(v) => v,
        Err(e) => {
            print_out(&format!("Incorrect Usage: {}\n\n", e.0));
            print_out(&command_help(help_name, c));
            eprintln!("{}", e.0);
            exit(EXIT_BAD_ARGS);
        }
    };
    if own.bool("help") {
        print_out(&command_help(help_name, c));
        exit(EXIT_SUCCESS);
    }
    let ctx = Ctx {
        global,
        flags: own,
        args: rest,
    };
    if let Some(action) = c.action {
        action(&ctx);
    }
    exit(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_help_is_etcdctls() {
        let c = find(COMMANDS, "set").unwrap();
        assert_eq!(
            command_help("etcdctl set", c),
            "NAME:\n   etcdctl set - set the value of a key\n\nUSAGE:\n   etcdctl set [command options] <key> <value>\n\nDESCRIPTION:\n   Set sets the value of a key.\n\n   When <value> begins with '-', <value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>\n\nOPTIONS:\n   --ttl value              key time-to-live in seconds (default: 0)\n   --swap-with-value value  previous value\n   --swap-with-index value  previous index (default: 0)\n   \n"
        );
    }
}
