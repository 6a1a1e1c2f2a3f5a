//! Every command of etcdctl 3.4.23 (Debian's build, with cobra's `help`
//! and `completion`), with its flags and help texts.
//!
//! The texts are etcdctl's own (`etcdctl/ctlv3/ctl.go` and
//! `ctlv3/command/*.go`) and cobra 1.6.1's (`help`, `completion`), byte
//! for byte: `tests/v3_help.rs` compares every command's `--help` with the
//! real etcdctl. Sub-commands are listed in the order etcdctl adds them
//! (cobra suggests commands in that order); help shows them sorted.
//!
//! Every runnable command runs [`not_yet`] until its implementation is
//! wired in by command path; only cobra's `help` runs here ([`help`]).

use std::io::Write;

use super::cli::{self, Command, Exit, Flag, Invocation, Kind};

/// What a command not implemented yet answers: a refusal, never a
/// pretended success.
pub fn not_yet(inv: &Invocation) -> Result<(), Exit> {
    Err(Exit::new(
        super::cli::exit::ERROR,
        format!(
            "{} is not implemented in ferretctl yet (etcdctl v3 is being built command by command; see crates/ferretctl/README.md)",
            inv.command_path().replacen("etcdctl", "ferretctl", 1)
        ),
    ))
}

/// cobra's `help [command]`: the help of the command the words name
/// (found as the command line would find it, prefixes included), on
/// stdout, exit 0. Words that name no command (cobra's `Find` fails: an
/// unknown word right after the root) print `Unknown help topic` and the
/// words (Go's `%#q` of the slice) on stderr, then the root's help on
/// stdout (without `-h, --help`, which cobra has not given the root at
/// that point), and still exit 0.
pub fn help(inv: &Invocation) -> Result<(), Exit> {
    let text = match cli::find(inv.root, &inv.args) {
        Ok((path, _)) => cli::usage(&path),
        Err(_) => {
            let topics: Vec<String> = inv.args.iter().map(|a| go_quote_alt(a)).collect();
            eprintln!("Unknown help topic [{}]", topics.join(" "));
            cli::usage_without_help_flag(&[inv.root])
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(())
}

/// Go's `%#q` of a string: in backquotes when `strconv.CanBackquote`
/// allows (no backquote, no ASCII control character but tab, no U+FEFF),
/// else `strconv.Quote`.
fn go_quote_alt(s: &str) -> String {
    let can_backquote = s
        .chars()
        .all(|c| !matches!(c, '`' | '\u{7f}' | '\u{feff}') && (c >= ' ' || c == '\t'));
    if can_backquote {
        format!("`{s}`")
    } else {
        ferret_gocompat::strconv::quote(s)
    }
}

/// The global flags (etcdctl's root persistent flags).
fn global_flags() -> Vec<Flag> {
    vec![
        Flag::new("endpoints", Kind::StrSlice, "[127.0.0.1:2379]", "gRPC endpoints"),
        Flag::bool("debug", "enable client-side debug logging"),
        Flag::new(
            "write-out",
            Kind::Str,
            "simple",
            "set the output format (fields, json, protobuf, simple, table)",
        )
        .short('w'),
        Flag::bool("hex", "print byte strings as hex encoded strings"),
        Flag::new("dial-timeout", Kind::Duration, "2s", "dial timeout for client connections"),
        Flag::new(
            "command-timeout",
            Kind::Duration,
            "5s",
            "timeout for short running command (excluding dial timeout)",
        ),
        Flag::new(
            "keepalive-time",
            Kind::Duration,
            "2s",
            "keepalive time for client connections",
        ),
        Flag::new(
            "keepalive-timeout",
            Kind::Duration,
            "6s",
            "keepalive timeout for client connections",
        ),
        Flag::new(
            "insecure-transport",
            Kind::Bool,
            "true",
            "disable transport security for client connections",
        ),
        Flag::new(
            "insecure-discovery",
            Kind::Bool,
            "true",
            "accept insecure SRV records describing cluster endpoints",
        ),
        Flag::bool(
            "insecure-skip-tls-verify",
            "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)",
        ),
        Flag::new("cert", Kind::Str, "", "identify secure client using this TLS certificate file"),
        Flag::new("key", Kind::Str, "", "identify secure client using this TLS key file"),
        Flag::new(
            "cacert",
            Kind::Str,
            "",
            "verify certificates of TLS-enabled secure servers using this CA bundle",
        ),
        Flag::new(
            "user",
            Kind::Str,
            "",
            "username[:password] for authentication (prompt if password is not supplied)",
        ),
        Flag::new(
            "password",
            Kind::Str,
            "",
            "password for authentication (if this option is used, --user option shouldn't include password)",
        ),
        Flag::new(
            "discovery-srv",
            Kind::Str,
            "",
            "domain name to query for SRV records describing cluster endpoints",
        )
        .short('d'),
        Flag::new(
            "discovery-srv-name",
            Kind::Str,
            "",
            "service name to query when using DNS discovery",
        ),
    ]
}

/// The whole tree: etcdctl's root with its commands in the order
/// `ctl.go` adds them, then cobra's `help` and `completion`, which cobra
/// adds when it runs.
pub fn root() -> Command {
    Command::new("etcdctl", "", "A simple command line client for etcd3.")
        .suggest_for(&["etcdctl"])
        .persistent(global_flags())
        .subs(vec![
            get(),
            put(),
            del(),
            txn(),
            compaction(),
            alarm(),
            defrag(),
            endpoint(),
            move_leader(),
            watch(),
            version(),
            lease(),
            member(),
            snapshot(),
            make_mirror(),
            migrate(),
            lock(),
            elect(),
            auth(),
            user(),
            role(),
            check(),
            help_command(),
            completion(),
        ])
}

/// `get`: a key or a range of keys.
fn get() -> Command {
    Command::new(
        "get",
        "[options] <key> [range_end]",
        "Gets the key or a range of keys",
    )
    .flags(vec![
        Flag::new(
            "consistency",
            Kind::Str,
            "l",
            "Linearizable(l) or Serializable(s)",
        ),
        Flag::new(
            "order",
            Kind::Str,
            "",
            "Order of results; ASCEND or DESCEND (ASCEND by default)",
        ),
        Flag::new(
            "sort-by",
            Kind::Str,
            "",
            "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION",
        ),
        Flag::new("limit", Kind::Int, "0", "Maximum number of results"),
        Flag::bool("prefix", "Get keys with matching prefix"),
        Flag::bool(
            "from-key",
            "Get keys that are greater than or equal to the given key using byte compare",
        ),
        Flag::new("rev", Kind::Int, "0", "Specify the kv revision"),
        Flag::bool("keys-only", "Get only the keys"),
        Flag::bool(
            "print-value-only",
            "Only write values when using the \"simple\" output format",
        ),
    ])
    .run(not_yet)
}

/// `put`'s description (its `Long`).
const PUT_LONG: &str = "
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
";

/// `put`: a key and its value (from stdin when not given).
fn put() -> Command {
    Command::new(
        "put",
        "[options] <key> <value> (<value> can also be given from stdin)",
        "Puts the given key into the store",
    )
    .long(PUT_LONG)
    .flags(vec![
        Flag::new(
            "lease",
            Kind::Str,
            "0",
            "lease ID (in hexadecimal) to attach to the key",
        ),
        Flag::bool(
            "prev-kv",
            "return the previous key-value pair before modification",
        ),
        Flag::bool("ignore-value", "updates the key using its current value"),
        Flag::bool("ignore-lease", "updates the key using its current lease"),
    ])
    .run(not_yet)
}

/// `del`: a key or a range of keys.
fn del() -> Command {
    Command::new(
        "del",
        "[options] <key> [range_end]",
        "Removes the specified key or range of keys [key, range_end)",
    )
    .flags(vec![
        Flag::bool("prefix", "delete keys with matching prefix"),
        Flag::bool("prev-kv", "return deleted key-value pairs"),
        Flag::bool(
            "from-key",
            "delete keys that are greater than or equal to the given key using byte compare",
        ),
    ])
    .run(not_yet)
}

/// `txn`: a transaction read from stdin.
fn txn() -> Command {
    Command::new(
        "txn",
        "[options]",
        "Txn processes all the requests in one transaction",
    )
    .flags(vec![Flag::bool(
        "interactive",
        "Input transaction in interactive mode",
    )
    .short('i')])
    .run(not_yet)
}

/// `compaction`: the history up to a revision.
fn compaction() -> Command {
    Command::new(
        "compaction",
        "[options] <revision>",
        "Compacts the event history in etcd",
    )
    .flags(vec![Flag::bool(
        "physical",
        "'true' to wait for compaction to physically remove all old revisions",
    )])
    .run(not_yet)
}

/// `alarm`: `disarm` and `list`.
fn alarm() -> Command {
    Command::new("alarm", "<subcommand>", "Alarm related commands").subs(vec![
        Command::new("disarm", "", "Disarms all alarms").run(not_yet),
        Command::new("list", "", "Lists all alarms").run(not_yet),
    ])
}

/// `endpoint`'s and `defrag`'s `--cluster` (a persistent flag of both).
fn cluster_flag() -> Flag {
    Flag::bool("cluster", "use all endpoints from the cluster member list")
}

/// `defrag`: the members' backends, or a data directory not in use.
fn defrag() -> Command {
    Command::new(
        "defrag",
        "",
        "Defragments the storage of the etcd members with given endpoints",
    )
    .persistent(vec![cluster_flag()])
    .flags(vec![Flag::new(
        "data-dir",
        Kind::Str,
        "",
        "Optional. If present, defragments a data directory not in use by etcd.",
    )])
    .run(not_yet)
}

/// `endpoint`: `health`, `status` and `hashkv`, all taking `--cluster`.
fn endpoint() -> Command {
    Command::new("endpoint", "<subcommand>", "Endpoint related commands")
        .persistent(vec![cluster_flag()])
        .subs(vec![
            Command::new(
                "health",
                "",
                "Checks the healthiness of endpoints specified in `--endpoints` flag",
            )
            .run(not_yet),
            Command::new(
                "status",
                "",
                "Prints out the status of endpoints specified in `--endpoints` flag",
            )
            .long(
                "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
",
            )
            .run(not_yet),
            Command::new(
                "hashkv",
                "",
                "Prints the KV history hash for each endpoint in --endpoints",
            )
            .persistent(vec![Flag::new(
                "rev",
                Kind::Int,
                "0",
                "maximum revision to hash (default: all revisions)",
            )])
            .run(not_yet),
        ])
}

/// `move-leader`: leadership to another member.
fn move_leader() -> Command {
    Command::new(
        "move-leader",
        "<transferee-member-id>",
        "Transfers leadership to another etcd cluster member.",
    )
    .run(not_yet)
}

/// `watch`: events on a key or a range, optionally running a command.
fn watch() -> Command {
    Command::new(
        "watch",
        "[options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
        "Watches events stream on keys or prefixes",
    )
    .flags(vec![
        Flag::bool("interactive", "Interactive mode").short('i'),
        Flag::bool("prefix", "Watch on a prefix if prefix is set"),
        Flag::new("rev", Kind::Int, "0", "Revision to start watching"),
        Flag::bool(
            "prev-kv",
            "get the previous key-value pair before the event happens",
        ),
    ])
    .run(not_yet)
}

/// `version`: etcdctl's version and API version.
fn version() -> Command {
    Command::new("version", "", "Prints the version of etcdctl").run(not_yet)
}

/// `lease`: `grant`, `revoke`, `timetolive`, `list` and `keep-alive`.
fn lease() -> Command {
    Command::new("lease", "<subcommand>", "Lease related commands").subs(vec![
        Command::new("grant", "<ttl>", "Creates leases").run(not_yet),
        Command::new("revoke", "<leaseID>", "Revokes leases").run(not_yet),
        Command::new("timetolive", "<leaseID> [options]", "Get lease information")
            .flags(vec![Flag::bool("keys", "Get keys attached to this lease")])
            .run(not_yet),
        Command::new("list", "", "List all active leases").run(not_yet),
        Command::new(
            "keep-alive",
            "[options] <leaseID>",
            "Keeps leases alive (renew)",
        )
        .flags(vec![Flag::bool(
            "once",
            "Resets the keep-alive time to its original value and exits immediately",
        )])
        .run(not_yet),
    ])
}

/// `member`: `add`, `remove`, `update`, `list` and `promote`.
fn member() -> Command {
    Command::new("member", "<subcommand>", "Membership related commands").subs(vec![
        Command::new(
            "add",
            "<memberName> [options]",
            "Adds a member into the cluster",
        )
        .flags(vec![
            Flag::new(
                "peer-urls",
                Kind::Str,
                "",
                "comma separated peer URLs for the new member.",
            ),
            Flag::bool("learner", "indicates if the new member is raft learner"),
        ])
        .run(not_yet),
        Command::new("remove", "<memberID>", "Removes a member from the cluster").run(not_yet),
        Command::new(
            "update",
            "<memberID> [options]",
            "Updates a member in the cluster",
        )
        .flags(vec![Flag::new(
            "peer-urls",
            Kind::Str,
            "",
            "comma separated peer URLs for the updated member.",
        )])
        .run(not_yet),
        Command::new("list", "", "Lists all members in the cluster")
            .long(
                "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
",
            )
            .run(not_yet),
        Command::new(
            "promote",
            "<memberID>",
            "Promotes a non-voting member in the cluster",
        )
        .long("Promotes a non-voting learner member to a voting one in the cluster.\n")
        .run(not_yet),
    ])
}

/// `snapshot`: `save`, `restore` and `status`.
fn snapshot() -> Command {
    Command::new("snapshot", "<subcommand>", "Manages etcd node snapshots").subs(vec![
        Command::new(
            "save",
            "<filename>",
            "Stores an etcd node backend snapshot to a given file",
        )
        .run(not_yet),
        Command::new(
            "restore",
            "<filename> [options]",
            "Restores an etcd member snapshot to an etcd directory",
        )
        .flags(vec![
            Flag::new("data-dir", Kind::Str, "", "Path to the data directory"),
            Flag::new(
                "wal-dir",
                Kind::Str,
                "",
                "Path to the WAL directory (use --data-dir if none given)",
            ),
            Flag::new(
                "initial-cluster",
                Kind::Str,
                "default=http://localhost:2380",
                "Initial cluster configuration for restore bootstrap",
            ),
            Flag::new(
                "initial-cluster-token",
                Kind::Str,
                "etcd-cluster",
                "Initial cluster token for the etcd cluster during restore bootstrap",
            ),
            Flag::new(
                "initial-advertise-peer-urls",
                Kind::Str,
                "http://localhost:2380",
                "List of this member's peer URLs to advertise to the rest of the cluster",
            ),
            Flag::new(
                "name",
                Kind::Str,
                "default",
                "Human-readable name for this member",
            ),
            Flag::bool(
                "skip-hash-check",
                "Ignore snapshot integrity hash value (required if copied from data directory)",
            ),
        ])
        .run(not_yet),
        Command::new(
            "status",
            "<filename>",
            "Gets backend snapshot status of a given file",
        )
        .long(
            "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
",
        )
        .run(not_yet),
    ])
}

/// `make-mirror`: keys copied to another cluster, then kept in sync.
fn make_mirror() -> Command {
    Command::new(
        "make-mirror",
        "[options] <destination>",
        "Makes a mirror at the destination etcd cluster",
    )
    .flags(vec![
        Flag::new("prefix", Kind::Str, "", "Key-value prefix to mirror"),
        Flag::new(
            "dest-prefix",
            Kind::Str,
            "",
            "destination prefix to mirror a prefix to a different prefix in the destination cluster",
        ),
        Flag::bool(
            "no-dest-prefix",
            "mirror key-values to the root of the destination cluster",
        ),
        Flag::new(
            "dest-cert",
            Kind::Str,
            "",
            "Identify secure client using this TLS certificate file for the destination cluster",
        ),
        Flag::new(
            "dest-key",
            Kind::Str,
            "",
            "Identify secure client using this TLS key file",
        ),
        Flag::new(
            "dest-cacert",
            Kind::Str,
            "",
            "Verify certificates of TLS enabled secure servers using this CA bundle",
        ),
        Flag::new(
            "dest-insecure-transport",
            Kind::Bool,
            "true",
            "Disable transport security for client connections",
        ),
    ])
    .run(not_yet)
}

/// `migrate`: a v2 store's keys into the v3 store.
fn migrate() -> Command {
    Command::new("migrate", "", "Migrates keys in a v2 store to a mvcc store")
        .flags(vec![
            Flag::bool("no-ttl", "Do not convert TTL keys"),
            Flag::new("data-dir", Kind::Str, "", "Path to the data directory"),
            Flag::new("wal-dir", Kind::Str, "", "Path to the WAL directory"),
            Flag::new(
                "transformer",
                Kind::Str,
                "",
                "Path to the user-provided transformer program",
            ),
        ])
        .run(not_yet)
}

/// `lock`: holds a named lock (while a command runs, if one is given).
fn lock() -> Command {
    Command::new(
        "lock",
        "<lockname> [exec-command arg1 arg2 ...]",
        "Acquires a named lock",
    )
    .flags(vec![Flag::new(
        "ttl",
        Kind::Int,
        "10",
        "timeout for session",
    )])
    .run(not_yet)
}

/// `elect`: campaigns in an election, or observes it (`-l`).
fn elect() -> Command {
    Command::new(
        "elect",
        "<election-name> [proposal]",
        "Observes and participates in leader election",
    )
    .flags(vec![Flag::bool("listen", "observation mode").short('l')])
    .run(not_yet)
}

/// `auth`: `enable` and `disable`.
fn auth() -> Command {
    Command::new(
        "auth",
        "<enable or disable>",
        "Enable or disable authentication",
    )
    .subs(vec![
        Command::new("enable", "", "Enables authentication").run(not_yet),
        Command::new("disable", "", "Disables authentication").run(not_yet),
    ])
}

/// `user`: `add`, `delete`, `get`, `list`, `passwd`, `grant-role` and
/// `revoke-role`.
fn user() -> Command {
    Command::new("user", "<subcommand>", "User related commands").subs(vec![
        Command::new(
            "add",
            "<user name or user:password> [options]",
            "Adds a new user",
        )
        .flags(vec![
            Flag::new(
                "interactive",
                Kind::Bool,
                "true",
                "Read password from stdin instead of interactive terminal",
            ),
            Flag::new(
                "new-user-password",
                Kind::Str,
                "",
                "Supply password from the command line flag",
            ),
            Flag::bool(
                "no-password",
                "Create a user without password (CN based auth only)",
            ),
        ])
        .run(not_yet),
        Command::new("delete", "<user name>", "Deletes a user").run(not_yet),
        Command::new(
            "get",
            "<user name> [options]",
            "Gets detailed information of a user",
        )
        .flags(vec![Flag::bool(
            "detail",
            "Show permissions of roles granted to the user",
        )])
        .run(not_yet),
        Command::new("list", "", "Lists all users").run(not_yet),
        Command::new(
            "passwd",
            "<user name> [options]",
            "Changes password of user",
        )
        .flags(vec![Flag::new(
            "interactive",
            Kind::Bool,
            "true",
            "If true, read password from stdin instead of interactive terminal",
        )])
        .run(not_yet),
        Command::new(
            "grant-role",
            "<user name> <role name>",
            "Grants a role to a user",
        )
        .run(not_yet),
        Command::new(
            "revoke-role",
            "<user name> <role name>",
            "Revokes a role from a user",
        )
        .run(not_yet),
    ])
}

/// `role`: `add`, `delete`, `get`, `list`, `grant-permission` and
/// `revoke-permission`.
fn role() -> Command {
    Command::new("role", "<subcommand>", "Role related commands").subs(vec![
        Command::new("add", "<role name>", "Adds a new role").run(not_yet),
        Command::new("delete", "<role name>", "Deletes a role").run(not_yet),
        Command::new("get", "<role name>", "Gets detailed information of a role").run(not_yet),
        Command::new("list", "", "Lists all roles").run(not_yet),
        Command::new(
            "grant-permission",
            "[options] <role name> <permission type> <key> [endkey]",
            "Grants a key to a role",
        )
        .flags(vec![
            Flag::bool("prefix", "grant a prefix permission"),
            Flag::bool(
                "from-key",
                "grant a permission of keys that are greater than or equal to the given key using byte compare",
            ),
        ])
        .run(not_yet),
        Command::new(
            "revoke-permission",
            "<role name> <key> [endkey]",
            "Revokes a key from a role",
        )
        .flags(vec![
            Flag::bool("prefix", "revoke a prefix permission"),
            Flag::bool(
                "from-key",
                "revoke a permission of keys that are greater than or equal to the given key using byte compare",
            ),
        ])
        .run(not_yet),
    ])
}

/// `check`'s `--auto-compact` and `--auto-defrag` (both sub-commands take
/// them).
fn check_auto_flags() -> [Flag; 2] {
    [
        Flag::bool(
            "auto-compact",
            "Compact storage with last revision after test is finished.",
        ),
        Flag::bool("auto-defrag", "Defragment storage after test is finished."),
    ]
}

/// `check`: `perf` and `datascale`.
fn check() -> Command {
    Command::new(
        "check",
        "<subcommand>",
        "commands for checking properties of the etcd cluster",
    )
    .subs(vec![
        Command::new(
            "perf",
            "[options]",
            "Check the performance of the etcd cluster",
        )
        .flags(vec![
            Flag::new(
                "load",
                Kind::Str,
                "s",
                "The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)",
            ),
            Flag::new(
                "prefix",
                Kind::Str,
                "/etcdctl-check-perf/",
                "The prefix for writing the performance check's keys.",
            ),
        ])
        .flags(check_auto_flags().to_vec())
        .run(not_yet),
        Command::new(
            "datascale",
            "[options]",
            "Check the memory usage of holding data for different workloads on a given server endpoint.",
        )
        .long("If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.")
        .flags(vec![
            Flag::new(
                "load",
                Kind::Str,
                "s",
                "The datascale check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)",
            ),
            Flag::new(
                "prefix",
                Kind::Str,
                "/etcdctl-check-datascale/",
                "The prefix for writing the datascale check's keys.",
            ),
        ])
        .flags(check_auto_flags().to_vec())
        .run(not_yet),
    ])
}

/// cobra's `help [command]` (added to every root with sub-commands).
fn help_command() -> Command {
    Command::new("help", "[command]", "Help about any command")
        .long(
            "Help provides help for any command in the application.
Simply type etcdctl help [path to command] for full details.",
        )
        .run(help)
}

/// cobra's `--no-descriptions` of each `completion <shell>`.
fn no_descriptions() -> Flag {
    Flag::bool("no-descriptions", "disable completion descriptions")
}

/// `completion bash`'s description.
const BASH_LONG: &str = "Generate the autocompletion script for the bash shell.

This script depends on the 'bash-completion' package.
If it is not installed already, you can install it via your OS's package manager.

To load completions in your current shell session:

\tsource <(etcdctl completion bash)

To load completions for every new session, execute once:

#### Linux:

\tetcdctl completion bash > /etc/bash_completion.d/etcdctl

#### macOS:

\tetcdctl completion bash > $(brew --prefix)/etc/bash_completion.d/etcdctl

You will need to start a new shell for this setup to take effect.
";

/// `completion zsh`'s description.
const ZSH_LONG: &str = "Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

\techo \"autoload -U compinit; compinit\" >> ~/.zshrc

To load completions in your current shell session:

\tsource <(etcdctl completion zsh); compdef _etcdctl etcdctl

To load completions for every new session, execute once:

#### Linux:

\tetcdctl completion zsh > \"${fpath[1]}/_etcdctl\"

#### macOS:

\tetcdctl completion zsh > $(brew --prefix)/share/zsh/site-functions/_etcdctl

You will need to start a new shell for this setup to take effect.
";

/// `completion fish`'s description.
const FISH_LONG: &str = "Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

\tetcdctl completion fish | source

To load completions for every new session, execute once:

\tetcdctl completion fish > ~/.config/fish/completions/etcdctl.fish

You will need to start a new shell for this setup to take effect.
";

/// `completion powershell`'s description.
const POWERSHELL_LONG: &str = "Generate the autocompletion script for powershell.

To load completions in your current shell session:

\tetcdctl completion powershell | Out-String | Invoke-Expression

To load completions for every new session, add the output of the above command
to your powershell profile.
";

/// cobra's `completion` (added to every root with sub-commands): not
/// runnable itself (its help), one runnable sub-command per shell. All
/// take no arguments (cobra's `NoArgs`); `bash` leaves `[flags]` out of
/// its usage line.
fn completion() -> Command {
    let shell = |name: &'static str, short: &'static str, long: &'static str| {
        Command::new(name, "", short)
            .long(long)
            .flags(vec![no_descriptions()])
            .no_args()
            .run(not_yet)
    };
    Command::new(
        "completion",
        "",
        "Generate the autocompletion script for the specified shell",
    )
    .long(
        "Generate the autocompletion script for etcdctl for the specified shell.
See each sub-command's help for details on how to use the generated script.
",
    )
    .no_args()
    .subs(vec![
        shell(
            "bash",
            "Generate the autocompletion script for bash",
            BASH_LONG,
        )
        .disable_flags_in_use_line(),
        shell(
            "zsh",
            "Generate the autocompletion script for zsh",
            ZSH_LONG,
        ),
        shell(
            "fish",
            "Generate the autocompletion script for fish",
            FISH_LONG,
        ),
        shell(
            "powershell",
            "Generate the autocompletion script for powershell",
            POWERSHELL_LONG,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::cli::Outcome;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    /// Every command path below `cmd`, and whether each is runnable.
    fn paths(cmd: &Command, prefix: &str, out: &mut Vec<(String, bool)>) {
        for s in &cmd.subs {
            let p = format!("{prefix}{}", s.name);
            out.push((p.clone(), s.run.is_some()));
            paths(s, &format!("{p} "), out);
        }
    }

    #[test]
    fn the_tree_has_every_command_of_etcdctl() {
        let mut all = Vec::new();
        paths(&root(), "", &mut all);
        // 22 etcdctl commands, help and completion, and 39 sub-commands.
        assert_eq!(all.len(), 63);
        let groups = [
            "alarm",
            "auth",
            "check",
            "completion",
            "endpoint",
            "lease",
            "member",
            "role",
            "snapshot",
            "user",
        ];
        for (p, runnable) in &all {
            assert_eq!(*runnable, !groups.contains(&p.as_str()), "{p}");
        }
    }

    #[test]
    fn unknown_commands_are_suggested_in_etcdctls_order() {
        let t = root();
        let Outcome::Error { msg, .. } = cli::parse(&t, &args("set a b")) else {
            panic!("set is no command");
        };
        // The order etcdctl adds them in, not the names' order.
        assert!(msg.ends_with("Did you mean this?\n\tget\n\tput\n\tdel\n\tuser\n"));
        // Never cobra's help.
        let Outcome::Error { msg, .. } = cli::parse(&t, &args("hemp")) else {
            panic!("hemp is no command");
        };
        assert!(!msg.contains("Did you mean"), "{msg}");
    }

    #[test]
    fn completion_scripts_take_no_arguments() {
        let t = root();
        let Outcome::Error { msg, .. } = cli::parse(&t, &args("completion bash x")) else {
            panic!("completion bash takes no argument");
        };
        assert_eq!(msg, "unknown command \"x\" for \"etcdctl completion bash\"");
        assert!(matches!(
            cli::parse(&t, &args("completion x")),
            Outcome::Help(_)
        ));
    }

    #[test]
    fn help_topics_quote_as_go_does() {
        assert_eq!(go_quote_alt("nosuch"), "`nosuch`");
        assert_eq!(go_quote_alt("a b\tc"), "`a b\tc`");
        assert_eq!(go_quote_alt("a`b"), "\"a`b\"");
        assert_eq!(go_quote_alt("a\nb"), "\"a\\nb\"");
        // Only ASCII controls need quotes: C1 controls stay in backquotes.
        assert_eq!(go_quote_alt("a\u{85}"), "`a\u{85}`");
    }
}
