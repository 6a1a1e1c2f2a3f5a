//! Every command of etcdctl 3.4.23 (Debian's build, with cobra's `help`
//! and `completion`), with its flags and help texts.

use super::cli::{Command, Exit, Flag, Invocation, Kind};

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

/// The whole tree.
pub fn root() -> Command {
    Command::new("etcdctl", "", "A simple command line client for etcd3.")
        .suggest_for(&["etcdctl"])
        .persistent(global_flags())
        .subs(vec![
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
            .run(not_yet),
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
            .run(not_yet),
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
            .run(not_yet),
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
            .run(not_yet),
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
            .run(not_yet),
        ])
}

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
