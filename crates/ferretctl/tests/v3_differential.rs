//! Differential test of etcdctl v3: every command line of the corpus is
//! run by Debian's etcdctl 3.4 (v3 by default) against a fresh etcd and by
//! `ETCDCTL_API=3 ferretctl` against a fresh ferretcd, in the same order;
//! stdout, stderr and exit codes must agree once the cluster and member
//! ids, the endpoint and clientv3's log lines (time, client id) are
//! normalised. Revisions need no normalising: both servers start empty and
//! see the same requests.
//!
//! Lease ids differ between the servers: each side's leases are learnt
//! after every `lease grant` line (from `lease list`, as the protobuf and
//! table formats do not print them) and printed ids, in hex, in decimal
//! and as protobuf varints, become `LEASE_<n>` by the order they were
//! granted; a line names a side's lease as `LEASE_HEX` (the last one) or
//! `LEASE<n>_HEX`. etcd lists leases and a lease's keys in random order (Go
//! maps), so those are compared sorted.
//!
//! The corpus grows with the commands ferretctl implements; a command not
//! implemented yet has no line here (it refuses with a clear error).

mod common;

use common::{reference_available, Run, Server};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferret_testkit::process::Proc;

/// A corpus line: the arguments (split as a shell would, by the test's
/// `split`) and what goes to stdin.
struct Line {
    args: &'static str,
    stdin: Option<&'static str>,
    /// A command that runs until interrupted (`watch`): stopped with
    /// SIGINT after this many milliseconds.
    interrupt_ms: Option<u64>,
    /// What it prints comes in the server's order (etcd lists leases in
    /// Go's map order, which is random): its lines, and the elements of a
    /// JSON `leases` list, are compared sorted.
    unordered: bool,
    /// Variables set for the command (`ETCDCTL_*`).
    env: &'static [(&'static str, &'static str)],
}

const fn run(args: &'static str) -> Line {
    Line {
        args,
        stdin: None,
        interrupt_ms: None,
        unordered: false,
        env: &[],
    }
}

const fn run_in(args: &'static str, stdin: &'static str) -> Line {
    Line {
        stdin: Some(stdin),
        ..run(args)
    }
}

/// A command run until SIGINT after `ms` milliseconds.
const fn run_for(args: &'static str, ms: u64) -> Line {
    Line {
        interrupt_ms: Some(ms),
        ..run(args)
    }
}

/// A command run with variables set (and stdin).
const fn run_env(
    args: &'static str,
    env: &'static [(&'static str, &'static str)],
    stdin: &'static str,
) -> Line {
    Line {
        env,
        ..run_in(args, stdin)
    }
}

/// A command run with `stdin` written and kept open (`watch -i`), until
/// SIGINT after `ms` milliseconds.
const fn run_in_for(args: &'static str, stdin: &'static str, ms: u64) -> Line {
    Line {
        interrupt_ms: Some(ms),
        ..run_in(args, stdin)
    }
}

/// A line whose output is compared sorted.
const fn run_unordered(args: &'static str) -> Line {
    Line {
        unordered: true,
        ..run(args)
    }
}

/// get, put and del: their flags, output formats and errors.
const KV: &[Line] = &[
    // put: arguments, stdin, flags
    run("put foo bar"),
    run("put foo2 'b\"az'"),
    run("put"),
    run_in("put fromstdin", "value from stdin"),
    run_in("put emptystdin", ""),
    run("put foo bar2 --prev-kv"),
    run("put foo --ignore-value --prev-kv"),
    run("put foo x --ignore-value"),
    run("put nokey --ignore-value"),
    run("put foo x --lease zz"),
    run("put foo x --lease 1234"),
    run("put '' x"),
    run("put -w fields foo f1 --prev-kv"),
    run("put -w table foo t1"),
    run("put --hex --prev-kv foo h1"),
    run("put pre/a 1"),
    run("put pre/b 2"),
    run("put pre/c 3"),
    run("put prf 4"),
    run("put 'sp ace' 'v\nline'"),
    run("put -w json foo j1"),
    run("put -w json foo j2 --prev-kv"),
    run("put -w json 'a<b>&c' 'v\u{2028}\x01'"),
    // get: ranges, prefixes, sorting, limits, revisions, formats
    run("get foo"),
    run("get nokey"),
    run("get"),
    run("get foo fop"),
    run("get pre/ pre0"),
    run("get --prefix pre"),
    run("get --prefix pre/ --limit 2"),
    run("get --prefix ''"),
    run("get --from-key pre/b"),
    run("get --from-key ''"),
    run("get --prefix --from-key pre"),
    run("get --prefix pre/ x"),
    run("get --prefix pre/ --keys-only"),
    run("get --prefix pre/ --print-value-only"),
    run("get --prefix pre/ --print-value-only -w fields"),
    run("get --prefix pre/ --sort-by=VALUE --order=DESCEND"),
    run("get --prefix pre/ --sort-by=create --order=descend"),
    run("get --prefix pre/ --sort-by=MODIFY"),
    run("get --prefix pre/ --sort-by=VERSION --order=ASCEND"),
    run("get --prefix pre/ --sort-by=KEY --order=DESCEND"),
    run("get --prefix pre/ --sort-by=nope"),
    run("get --prefix pre/ --order=up"),
    run("get foo --rev 2"),
    run("get foo --rev 1"),
    run("get foo --rev 1000"),
    run("get foo --consistency s"),
    run("get foo --consistency x"),
    run("get foo -w fields"),
    run("get --prefix pre/ -w fields --limit 1"),
    run("get foo -w table"),
    run("get foo -w json"),
    run("get --prefix pre/ -w json"),
    run("get --prefix pre/ -w json --keys-only --limit 1"),
    run("get nokey -w json"),
    run("get 'a<b>&c' -w json"),
    run("get foo -w xml"),
    run("get foo --hex"),
    run("get 'sp ace'"),
    run("get 'sp ace' --hex --print-value-only"),
    run("get foo --limit x"),
    run("get foo --prefix=maybe"),
    // del
    run("del"),
    run("del a b c"),
    run("del nokey"),
    run("del --prefix --from-key a"),
    run("del pre/a --prev-kv"),
    run("del --prefix pre/ x"),
    run("del --prefix pre/ --prev-kv -w fields"),
    run("del prf -w json --prev-kv"),
    run("del nokey -w json"),
    run("del --from-key 'sp ace'"),
    run("get --prefix ''"),
    run("del --prefix ''"),
    run("get --from-key ''"),
];

/// txn: comparisons, both branches, every format, and the errors of its
/// input.
const TXN: &[Line] = &[
    run("put foo bar"),
    run("put k1 v1"),
    run_in(
        "txn",
        "mod(\"foo\") > \"0\"\n\nput foo txn1\nget foo\n\ndel foo\n\n",
    ),
    run_in(
        "txn",
        "value(\"foo\") = \"nope\"\n\nput foo x\n\nget foo\nget --prefix k\n\n",
    ),
    run_in(
        "txn -i",
        "ver(\"k1\") = \"1\"\n\nput k1 v2 --prev-kv\ndel k1 --prev-kv\n\nget k1\n\n",
    ),
    run_in("txn --interactive", "\n\n\n"),
    run_in(
        "txn",
        "c(\"k1\") > \"0\"\nm(\"k1\") < \"1000\"\nval(`k1`) != \"z\"\n\nget k1\n\n\n",
    ),
    run_in(
        "txn -w json",
        "create(\"foo\") > \"0\"\n\nput foo j\nget foo\n\ndel foo\n\n",
    ),
    run_in(
        "txn -w fields",
        "version(\"foo\") > \"0\"\n\nput foo f --prev-kv\nget foo\ndel nokey\n\n\n",
    ),
    run_in("txn -w table", "\n\n\n"),
    run_in("txn", "mod(foo) > \"0\"\n\n\n"),
    run_in("txn", "mod(\"foo\") > 0\n\n\n"),
    run_in("txn", "nothing\n\n\n"),
    run_in("txn", "bogus(\"foo\") = \"1\"\n\n\n"),
    run_in("txn", "ver(\"foo\") = \"x\"\n\n\n"),
    run_in("txn", "mod(\"foo\") > \"0\""),
    run_in("txn", "mod(\"foo\") > \"0\"\n\nput foo x"),
    run_in("txn", ""),
    run_in("txn", "\n\nfoo bar\n\n\n"),
    run_in("txn", "\n\nput\n\n\n"),
    run_in("txn", "\n\nput onlykey\n\n\n"),
    run_in("txn", "\n\nget\n\n\n"),
    run_in("txn", "\n\nget --prefix k --limit 1 -w json\n\n\n"),
    run_in("txn", "\n\nget --prefix k --limit 1\n\n\n"),
    run_in(
        "txn",
        "\n\nput \"sp ace\" \"two words\"\nget \"sp ace\"\n\n\n",
    ),
    run_in("txn", "\n\nput 'q1' v\n\n\n"),
    run_in("txn", "\n\ng k1\np k2 v\nd k2 --prev-kv\n\n\n"),
    run_in("txn", "\n\ndel --prefix --from-key k\n\n\n"),
    run_in("txn", "\n\nput k3 v --lease zz\n\n\n"),
    run_in("txn", "\n\nput --foo\n\n\n"),
    run_in("txn", "\n\nget k1 --limit x\n\n\n"),
    run_in("txn", "\n\ndel k1 --prefix=maybe\n\n\n"),
    run("txn extra"),
    run_in("txn", "\n\nput k4 v\n\n\n"),
    run("get --prefix k"),
];

/// watch: history from a revision, ranges, prefixes, previous values,
/// every format, a command per event, and the argument errors.
const WATCH: &[Line] = &[
    run("put w/a 1"),
    run("put w/b 2"),
    run("put w/a 3"),
    run("del w/b"),
    run("put wz 4"),
    run_for("watch --rev 1 --prefix w/", 1500),
    run_for("watch --rev 1 w/a --prev-kv", 1500),
    run_for("watch --rev 1 w/a w/c", 1500),
    run_for("watch --rev 1 --prefix w/ -w json", 1500),
    run_for("watch --rev 1 --prefix w/ -w fields --prev-kv", 1500),
    run_for("watch --rev 1 --prefix w/ --hex", 1500),
    run_for("watch --rev 1 --prefix ''", 1500),
    run_for(
        "watch --rev 1 --prefix w/ -- sh -c 'echo $ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE'",
        1500,
    ),
    run("watch --rev 1 --prefix w/ -- false"),
    run("watch --rev 1 --prefix w/ -- /nonexistent/cmd"),
    run("watch --rev 1 --prefix w/ -w table"),
    run("watch"),
    run("watch w/a --"),
    run("watch --prefix"),
    run("watch a b --prefix"),
    run_for("watch a b c", 800),
    run("watch --rev x a"),
];

/// lock and elect (clientv3's concurrency recipes): arguments, a lock
/// held until SIGINT or SIGTERM in every format, a command run under the
/// lock, its failures, and a campaign resigned on SIGINT. The session's
/// lease (learnt after each line, as for `lease grant`) names the keys:
/// `<name>/<lease id>`.
const LOCK_ELECT: &[Line] = &[
    run("lock"),
    run("lock --ttl x l1"),
    run("lock --ttl 1.5 l1"),
    run("lock l1 -w xml"),
    run_for("lock l1", 1500),
    run("get --prefix l1/"),
    run_for("lock l1 -w json", 1500),
    run_for("lock l1 -w fields", 1500),
    // No `-w protobuf`: the key's length is in it, and a lease id of
    // ferretcd may have fewer hex digits than etcd's.
    run_for("lock --ttl 0 l1", 1500),
    run_for("lock --ttl 30 'sp ace'", 1500),
    run("lock l1 -- sh -c 'echo key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV'"),
    run("lock l1 -- sh -c 'echo out; echo err >&2; exit 3'"),
    run("lock l1 -- /nonexistent/cmd"),
    run("lock l1 -- ferretctl-no-such-command"),
    run("lock l1 echo no dashes"),
    run("lock lt -w table"),
    run("get --prefix l1/"),
    run("elect"),
    run("elect e1"),
    run("elect -l e1 p1"),
    run("elect e1 p1 extra"),
    run("elect e1 p1 -w xml"),
    run_for("elect e1 p1", 1500),
    run_for("elect e1 'two words' -w json", 1500),
    run_for("elect e1 p3 -w fields", 1500),
    run_for("elect -l e1", 1000),
    run_for("elect --listen e1 -w json", 1000),
    run("get --prefix e1/"),
];

/// watch -i: lines of stdin, each `watch` line a watch of its own (one
/// of them with history, so that the outputs do not interleave), and the
/// lines refused: on stderr, or ending it (exit 128); the end of stdin
/// ends it (exit 3).
const WATCH_INTERACTIVE: &[Line] = &[
    run("put w/a 1"),
    run("put w/b 2"),
    run("put w/a 3"),
    run_in_for(
        "watch -i",
        "watch --rev 1 w/a\n\nfoo bar\nwatch\nwatch a b --prefix\nwatch -- echo hi\nwatch --rev 1 x1 x2 x3\n",
        1500,
    ),
    run_in_for("watch -i -w json", "watch --rev 1 --prefix w/ --prev-kv\n", 1500),
    run_in_for("watch -i", "watch --rev=2 -i w/ w0\n", 1500),
    run_in_for(
        "watch -i",
        "watch --rev 1 w/b -- sh -c \"echo $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\"\n",
        1500,
    ),
    run_in_for("watch -i", "watch nothing/here\nprogress\n", 1500),
    run_in_for("watch --interactive -w fields", "watch --rev 3 w/a\n", 1500),
    run_in("watch -i", "watch --foo\n"),
    run_in("watch -i", "watch -w json a\n"),
    run_in("watch -i", "watch --rev x a\n"),
    run_in("watch -i", "watch a --\n"),
    run_in("watch -i", "watch -h\n"),
    run_in("watch -i", "watch a"),
    run_in("watch -i", ""),
    run_in("watch -i", "\nnope\n"),
    run_in("watch -i extra args", "watch \"q k\" --rev 1\n"),
];

/// member add, remove, update, list, promote: their arguments, peer URL
/// checks, formats and the server's refusals. Members are added as
/// learners and removed at once (a voter that never starts would leave
/// the member without quorum); the one voter added is the last line.
/// `NEW_HEX` is the member added last, `MEMBER_HEX` the server's own.
/// Each member added has peer URLs of its own: a member's id is a hash of
/// its peer URLs and the second it is added at, and an id removed cannot
/// come back (`member not found`).
const MEMBER: &[Line] = &[
    run("member list"),
    run("member list -w fields"),
    run("member list -w json"),
    run("member list -w table"),
    run("member list -w protobuf"),
    run("member list -w xml"),
    run("member list --hex extra"),
    // add: arguments first, then the client, then clientv3's URL check
    run("member add"),
    run("member add a b"),
    run("member add a http://127.0.0.1:1 HTTPS://x"),
    run("member add a"),
    run("member add a --peer-urls ''"),
    run("member add a --peer-urls foo -w xml"),
    run("member add a --peer-urls foo"),
    run("member add a --peer-urls ftp://127.0.0.1:1"),
    run("member add a --peer-urls http://127.0.0.1"),
    run("member add a --peer-urls http://127.0.0.1:1/path"),
    run("member add a --peer-urls http://127.0.0.1:1,"),
    // a learner, every format, each removed again
    run("member add l1 --learner --peer-urls http://127.0.0.1:11"),
    run("member list"),
    run("member list -w fields"),
    run("member list -w json"),
    run("member list -w table"),
    run("member list -w protobuf"),
    run("member add l2 --learner --peer-urls http://127.0.0.1:12"),
    run("member promote NEW_HEX"),
    run("member promote NEW_HEX -w json"),
    // A learner cannot lead.
    run("move-leader NEW_HEX"),
    run("member update NEW_HEX --peer-urls http://127.0.0.1:13"),
    run("member remove NEW_HEX"),
    run("member remove NEW_HEX"),
    run("member list"),
    run("member add l3 --learner --peer-urls http://127.0.0.1:14,http://127.0.0.1:15 -w json"),
    run("member remove NEW_HEX -w json"),
    run("member add l4 --learner --peer-urls http://127.0.0.1:16 -w fields"),
    run("member remove NEW_HEX -w fields"),
    run("member add l5 --learner --peer-urls http://127.0.0.1:17 -w table"),
    run("member update NEW_HEX --peer-urls http://127.0.0.1:18 -w table"),
    run("member remove NEW_HEX -w table"),
    run("member add l6 --learner --peer-urls http://127.0.0.1:19 -w protobuf"),
    run("member promote NEW_HEX -w protobuf"),
    run("member remove NEW_HEX -w protobuf"),
    run("member list -w json"),
    // remove, update, promote: arguments and refusals
    run("member remove"),
    run("member remove a b"),
    run("member remove zz"),
    run("member remove 1234"),
    run("member remove MEMBER_HEX"),
    run("member update"),
    run("member update zz --peer-urls foo"),
    run("member update 1234"),
    run("member update 1234 --peer-urls foo"),
    run("member update 1234 --peer-urls http://127.0.0.1:9"),
    run("member update MEMBER_HEX --peer-urls PEER_URL"),
    run("member update MEMBER_HEX --peer-urls PEER_URL -w json"),
    run("member update MEMBER_HEX --peer-urls PEER_URL -w protobuf"),
    run("member update MEMBER_HEX --peer-urls PEER_URL -w fields"),
    run("member promote"),
    run("member promote zz"),
    run("member promote 1234"),
    run("member promote MEMBER_HEX"),
    run("member promote MEMBER_HEX -w fields"),
    // a voter that never starts: the member has no quorum from here on
    run("member add v1 --peer-urls http://127.0.0.1:20"),
];

/// endpoint health, status, hashkv: every format, `--cluster`, `--rev`,
/// and several endpoints, one of them dead (each asked on its own; the
/// dead one is waited for until the command timeout).
const ENDPOINT: &[Line] = &[
    run("endpoint health"),
    run("endpoint health -w json"),
    run("endpoint health -w fields"),
    run("endpoint health -w table"),
    run("endpoint health -w protobuf"),
    run("endpoint health -w xml"),
    run("endpoint health --cluster"),
    run("endpoint health --cluster -w json"),
    run("endpoint health -w xml --cert ''"),
    run("endpoint status"),
    run("endpoint status -w json"),
    run("endpoint status -w fields"),
    run("endpoint status -w table"),
    run("endpoint status -w protobuf"),
    run("endpoint status -w xml --cert ''"),
    run("endpoint status --cluster"),
    run("endpoint status --cluster -w table"),
    run("endpoint status extra"),
    run("endpoint hashkv"),
    run("endpoint hashkv -w json"),
    run("endpoint hashkv -w fields"),
    run("endpoint hashkv -w table"),
    run("endpoint hashkv -w protobuf"),
    run("put k1 v1"),
    run("put k2 v2"),
    run("put k1 v3"),
    run("endpoint hashkv"),
    run("endpoint hashkv --rev 2"),
    run("endpoint hashkv --rev 3 -w json"),
    run("endpoint hashkv --rev 100"),
    run("endpoint hashkv --rev 100 -w json"),
    run("endpoint hashkv --rev x"),
    run("endpoint hashkv --cluster -w fields"),
    // several endpoints, one dead
    run("endpoint health --command-timeout 1s --endpoints ENDPOINT,127.0.0.1:1"),
    run("endpoint health --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT -w json"),
    run("endpoint health --command-timeout 1s --endpoints 127.0.0.1:1 -w table"),
    run("endpoint status --command-timeout 1s --endpoints ENDPOINT,127.0.0.1:1"),
    run("endpoint status --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT -w table"),
    run("endpoint status --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT -w json"),
    run("endpoint hashkv --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT"),
    run("endpoint status --cluster --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT"),
    run("endpoint status --cluster --command-timeout 1s --endpoints 127.0.0.1:1"),
    run("endpoint health --cluster --command-timeout 1s --endpoints 127.0.0.1:1"),
    run("endpoint status --endpoints ENDPOINT,ENDPOINT -w fields"),
];

/// alarm list and disarm (with a NOSPACE alarm raised), defrag and
/// move-leader.
const MAINTENANCE: &[Line] = &[
    run("alarm list"),
    run("alarm list -w json"),
    run("alarm list -w table"),
    run("alarm list -w protobuf"),
    run("alarm list x"),
    run("alarm disarm"),
    run("alarm disarm -w json"),
    run("alarm disarm x"),
    run("!alarm NOSPACE"),
    run("alarm list"),
    run("alarm list -w json"),
    run("alarm list -w protobuf"),
    run("endpoint status"),
    run("endpoint status -w fields"),
    run("endpoint status -w table"),
    run("endpoint status -w json"),
    run("put k v"),
    run("alarm disarm -w json"),
    run("alarm list"),
    run("put k v"),
    run("!alarm NOSPACE"),
    run("alarm disarm"),
    run("!alarm NOSPACE"),
    run("alarm disarm -w protobuf"),
    run("alarm list"),
    // defrag
    run("defrag"),
    run("defrag -w json"),
    run("defrag -w xml"),
    run("defrag --cluster"),
    run("defrag extra"),
    run("defrag --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT"),
    run("get k"),
    // move-leader
    run("move-leader"),
    run("move-leader a b"),
    run("move-leader zz"),
    run("move-leader zz -w xml"),
    run("move-leader MEMBER_HEX"),
    run("move-leader MEMBER_HEX -w json"),
    run("move-leader MEMBER_HEX -w protobuf"),
    run("move-leader MEMBER_HEX -w fields"),
    run("move-leader MEMBER_HEX -w table"),
    run("move-leader 1234"),
    run("move-leader MEMBER_HEX --endpoints ENDPOINT,127.0.0.1:1"),
    run("move-leader MEMBER_HEX --command-timeout 1s --endpoints 127.0.0.1:1,ENDPOINT"),
];

/// The lease commands: every flag, error and format. `LEASE_HEX` is the
/// lease granted last (ids are normalised by order of appearance).
const LEASE: &[Line] = &[
    // grant: arguments, then the client (a bad -w), then the server
    run("lease grant"),
    run("lease grant 10 20"),
    run("lease grant x"),
    run("lease grant 0x10"),
    run("lease grant 99999999999999999999"),
    run("lease grant x -w xml"),
    run("lease grant 100 -w xml"),
    run("lease grant 9999999999"),
    run("lease grant 100 -w table"),
    run("lease grant 100 -w protobuf"),
    run("lease grant 100 -w fields"),
    run("lease grant 100 -w json"),
    run("lease grant 100 --hex"),
    run("--user root:x lease grant 100"),
    run("le gr 100"),
    run("put k1 v1 --lease LEASE_HEX"),
    run("put k2 v2 --lease LEASE_HEX"),
    run("get k1 -w json"),
    run("get k2 -w fields"),
    // timetolive: the client is made before the lease id is read
    run("lease timetolive LEASE_HEX"),
    run("lease timetolive LEASE_HEX --keys"),
    run("lease timetolive LEASE_HEX --keys -w fields"),
    run("lease timetolive LEASE_HEX --keys -w json"),
    run("lease timetolive LEASE_HEX -w json"),
    run("lease timetolive LEASE_HEX -w protobuf"),
    run("lease timetolive LEASE_HEX -w table"),
    run("lease ti LEASE_HEX --keys=false"),
    run("lease timetolive LEASE_HEX --keys=maybe"),
    run("lease timetolive 1234"),
    run("lease timetolive 1234 -w json"),
    run("lease timetolive 1234 -w fields"),
    run("lease timetolive -- -1"),
    run("lease timetolive"),
    run("lease timetolive a b"),
    run("lease timetolive zz"),
    run("lease timetolive zz -w xml"),
    // keep-alive --once, and keep-alives that end at once (no lease)
    run("lease keep-alive --once LEASE_HEX"),
    run("lease keep-alive --once LEASE_HEX -w fields"),
    run("lease keep-alive --once LEASE_HEX -w json"),
    run("lease keep-alive --once LEASE_HEX -w protobuf"),
    run("lease keep-alive --once LEASE_HEX -w table"),
    run("lease keep-alive --once=true LEASE_HEX"),
    run("lease keep-alive --once 1234"),
    run("lease keep-alive --once 1234 -w json"),
    run("lease keep-alive --once zz -w xml"),
    run("lease keep-alive --once=false"),
    run("lease keep-alive 1234"),
    run("lease keep-alive 1234 -w json"),
    run("lease keep-alive 1234 -w fields"),
    run("lease keep-alive -w table 1234"),
    run("lease keep-alive -- -1"),
    run("lease keep-alive"),
    run("lease keep-alive a b"),
    run("lease keep-alive 1234 -w xml"),
    // list: every lease granted above
    run_unordered("lease list"),
    run_unordered("lease list -w fields"),
    run_unordered("lease list -w json"),
    run("lease list -w protobuf"),
    run("lease list -w table"),
    run("lease list -w xml"),
    run_unordered("lease list extra args"),
    // revoke: arguments first, then the client, then the server
    run("lease revoke"),
    run("lease revoke a b"),
    run("lease revoke zz"),
    run("lease revoke zz -w xml"),
    run("lease revoke 1234"),
    run("lease revoke 1234 -w xml"),
    run("lease revoke -- -1"),
    run("lease revoke LEASE_HEX -w protobuf"),
    run("get k1"),
    run("get --prefix k -w fields"),
    run("lease timetolive LEASE_HEX --keys"),
    run("lease revoke LEASE_HEX"),
    run("lease grant 100 -w json"),
    run("lease revoke LEASE_HEX -w json"),
    run("lease grant 100 -w fields"),
    run("lease revoke LEASE_HEX -w fields"),
    run("lease grant 100"),
    run("lease revoke LEASE_HEX -w table"),
    run("lease grant 100"),
    run("lease re LEASE_HEX"),
    run("lease revoke LEASE_HEX"),
    run("lease revoke LEASE2_HEX -w fields"),
    run_unordered("lease list"),
    // the server's smallest TTL
    run("lease grant 1"),
    run("lease grant -- -5"),
    run("lease grant 0 -w fields"),
];

/// With authentication enabled (root:rootpw): clientv3 authenticates
/// when it is made, so a refused password ends any command there (exit 2),
/// before `timetolive` reads its lease id.
const LEASE_AUTH: &[Line] = &[
    run("--user root:bad lease grant 10"),
    run("--user root:bad lease timetolive zz"),
    run("--user root:bad lease keep-alive 1234"),
    run("--user root:bad --dial-timeout 1s lease list"),
    run("--user root:bad get x"),
    run("--user root:bad compaction 1"),
    run("--user root:rootpw lease grant 100"),
    run("--user root --password rootpw lease timetolive LEASE_HEX"),
    run("--user root:rootpw lease keep-alive --once LEASE_HEX"),
    run_unordered("--user root:rootpw lease list"),
    run("--user root:rootpw put a 1"),
    run("--user root:rootpw compaction 2 --physical"),
    run("--user root:rootpw lease revoke LEASE_HEX -w fields"),
    run("--user root:rootpw -w json version"),
    run("--user nobody:x version"),
];

/// auth, user and role: every sub-command, their arguments, flags,
/// password prompts (stdin is no terminal: stty's complaint is part of
/// etcdctl's output), every output format and the server's errors; then
/// authentication enabled (the root role made by `auth enable`), used,
/// refused and disabled.
const AUTH: &[Line] = &[
    // auth with no root user; arguments
    run("auth enable x"),
    run("auth disable x"),
    run("auth enable"),
    run("auth disable"),
    // user add: arguments and every way to give the password
    run("user add"),
    run("user add a b"),
    run("user add ':pw'"),
    run_in("user add u1", "pw\npw\n"),
    run_in("user add u2", "pw\npx\n"),
    run_in("user add u2", ""),
    run_in("user add u2", "pw\n"),
    run_in("user add u2", "  pw \r\n pw\n"),
    run_in("user add u3 --interactive=false", "  pw3 rest\n"),
    run_in("user add u4 --interactive=false", "\npw\n"),
    run_in("user add u5 --interactive=false", ""),
    run("user add u6:pw6 -w fields"),
    run("user add u7 --new-user-password=secret -w json"),
    run("user add u8:ignored --new-user-password secret"),
    run_in("user add u9 --new-user-password=", "p\np\n"),
    run("user add u10 --no-password -w protobuf"),
    run("user add u11:a:b -w table"),
    run("user add 'u12:'"),
    run("user add u1:again"),
    run_in("user add ''", "p\np\n"),
    run("user add u13 -w xml --new-user-password x"),
    // user list and get
    run("user list"),
    run("user list x"),
    run("user list -w json"),
    run("user list -w fields"),
    run("user list -w protobuf"),
    run("user list -w table"),
    run("user get"),
    run("user get nobody"),
    run("user get u1"),
    run("user get u1 -w json"),
    run("user get u1 -w fields"),
    run("user get u1 -w protobuf"),
    run("user get u1 --detail"),
    // role add, list, get
    run("role add"),
    run("role add r1"),
    run("role add r1"),
    run("role add ''"),
    run("role add r2 -w fields"),
    run("role add r3 -w json"),
    run("role add r4 -w protobuf"),
    run("role add r5 -w table"),
    run("role list"),
    run("role list x"),
    run("role list -w fields"),
    run("role list -w json"),
    run("role list -w protobuf"),
    run("role list -w table"),
    run("role get"),
    run("role get nope"),
    run("role get r1"),
    // role grant-permission: types, ranges, flags
    run("role grant-permission r1 read"),
    run("role grant-permission r1 rw foo"),
    run("role grant-permission r1 readwrite foo"),
    run("role grant-permission r1 read --prefix p"),
    run("role grant-permission r1 Write --from-key zz"),
    run("role grant-permission r1 read a b"),
    run("role grant-permission r1 read --prefix ''"),
    run("role grant-permission r1 write ''"),
    run("role grant-permission r1 read 'k \"q\"' 'k~'"),
    run("role grant-permission r1 read --prefix 'é'"),
    run("role grant-permission r1 read --prefix --from-key x"),
    run("role grant-permission r1 read --prefix --from-key ''"),
    run("role grant-permission r1 read --prefix a b"),
    run("role grant-permission r1 read --from-key a b"),
    run("role grant-permission r1 write '' ignored"),
    run("role grant-permission r1 read c d e"),
    run("role grant-permission nope read x"),
    run("role grant-permission r2 write k1 -w fields"),
    run("role grant-permission r2 read k2 -w json"),
    run("role grant-permission r2 READ k3 -w protobuf"),
    run("role grant-permission r2 read k4 -w table"),
    run("role get r1"),
    run("role get r1 -w fields"),
    run("role get r1 -w json"),
    run("role get r1 -w protobuf"),
    run("role get r1 -w table"),
    run("role get r2"),
    // role revoke-permission
    run("role revoke-permission r1"),
    run("role revoke-permission r1 nope"),
    run("role revoke-permission r1 foo"),
    run("role revoke-permission r1 p --prefix"),
    run("role revoke-permission r1 zz --from-key -w fields"),
    run("role revoke-permission r1 a b -w json"),
    run("role revoke-permission r1 ''"),
    run("role revoke-permission r1 '' --prefix -w protobuf"),
    run("role revoke-permission r1 x --prefix --from-key"),
    run("role revoke-permission r1 x y --from-key"),
    run("role revoke-permission r1 c d -w table"),
    run("role revoke-permission nope x"),
    run("role get r1"),
    // user grant-role, revoke-role, get --detail
    run("user grant-role u1"),
    run("user grant-role u1 r1 x"),
    run("user grant-role u1 nope"),
    run("user grant-role nobody r1"),
    run("user grant-role u1 r1"),
    run("user grant-role u1 r1"),
    run("user grant-role u1 r2 -w fields"),
    run("user grant-role u1 r3 -w json"),
    run("user grant-role u1 r4 -w protobuf"),
    run("user grant-role u1 r5 -w table"),
    run("user get u1"),
    run("user get u1 -w json"),
    run("user get u1 --detail"),
    run("user get u1 --detail -w fields"),
    run("user get u1 --detail -w json"),
    run("user get u1 --detail -w table"),
    run("user get nobody --detail"),
    run("user get u6 --detail -w table"),
    run("user revoke-role u1"),
    run("user revoke-role u1 nope"),
    run("user revoke-role u6 r1"),
    run("user revoke-role u1 r5 -w protobuf"),
    run("user revoke-role u1 r3 -w fields"),
    run("user revoke-role u1 r2 -w json"),
    run("user revoke-role u1 r4 -w table"),
    run("user revoke-role u1 r4"),
    // user passwd
    run("user passwd"),
    run("user passwd a b"),
    run_in("user passwd u1", "npw\nnpw\n"),
    run_in("user passwd u1", "npw\nother\n"),
    run_in("user passwd u1", "\n"),
    run_in("user passwd nobody", "a\na\n"),
    run_in("user passwd nobody --interactive=false", "a\n"),
    run_in("user passwd u1 --interactive=false -w fields", "pw\n"),
    run_in("user passwd u6 -w json", "x\nx\n"),
    run_in("user passwd u6 --interactive=false -w table", "pw6"),
    // delete
    run("user delete"),
    run("user delete nobody"),
    run("user delete u7 -w fields"),
    run("user delete u8 -w json"),
    run("user delete u9 -w protobuf"),
    run("user delete u10 -w table"),
    run("user delete u10"),
    run("role delete"),
    run("role delete nope"),
    run("role delete r5 -w json"),
    run("role delete r4 -w fields"),
    run("role delete r3 -w protobuf"),
    run("role delete r2 -w table"),
    run("user get u1 --detail"),
    run("user list"),
    run("role list"),
    // auth enable: the root user, then its role
    run("auth enable"),
    run("user add root:rootpw"),
    run("role add root"),
    run("auth enable"),
    run("role delete root"),
    run("auth enable -w xml"),
    run("auth enable -w json"),
    run("role get root"),
    // with authentication
    run("user list"),
    run("role add r9"),
    run("--user root:bad user list"),
    run("--user nobody:x role list"),
    run("--user u1:npw user list"),
    run("--user u1:pw user list"),
    run("--user u1:pw user get u1"),
    run("--user u1:pw role get r1"),
    run("--user u1:pw get foo"),
    run("--user u1:pw put foo x"),
    run("--user u1:pw put nofoo x"),
    run("--user u1:pw auth disable"),
    run("--user root:rootpw user list"),
    run("--user root:rootpw role list -w fields"),
    run("--user root:rootpw role get root"),
    run("--user root:rootpw user get root --detail"),
    run("--user root:rootpw user get root --detail -w json"),
    run("--user root:rootpw auth enable"),
    run_in("--user root user list", "rootpw\n"),
    run_in("--user root user list", "bad\n"),
    run_in("--user root -w xml user list", "rootpw\n"),
    run_in(
        "--user root user add viaprompt --interactive=false",
        "vp\nrootpw\n",
    ),
    run_in("--user root user add viaprompt2", "vp\nvp\nrootpw\n"),
    run("--user root --password rootpw user get viaprompt"),
    run("--user viaprompt:vp user get viaprompt"),
    run("--user viaprompt2:vp user get viaprompt2"),
    run_env("user list", &[("ETCDCTL_USER", "root:rootpw")], ""),
    run_env(
        "role list -w json",
        &[("ETCDCTL_USER", "root"), ("ETCDCTL_PASSWORD", "rootpw")],
        "",
    ),
    run_env("user list", &[("ETCDCTL_USER", "root")], "rootpw\n"),
    run_env(
        "user list --user root:rootpw",
        &[("ETCDCTL_USER", "root:rootpw")],
        "",
    ),
    run_env(
        "user add envuser --interactive=false",
        &[
            ("ETCDCTL_USER", "root:rootpw"),
            ("ETCDCTL_INTERACTIVE", "true"),
        ],
        "ep\n",
    ),
    run("--user root:rootpw user revoke-role root root"),
    run("--user root:rootpw user delete root"),
    run("--user root:rootpw role delete root"),
    run("--user root:rootpw role revoke-permission root x"),
    run("--user root:rootpw user passwd u1 --interactive=false"),
    run("--user root:rootpw user passwd u1 --interactive=false -w protobuf"),
    run("auth disable"),
    run("--user root:rootpw auth disable -w json"),
    run("auth disable"),
    run("--user root:rootpw user list"),
    run("user list -w json"),
];

/// compaction and version.
const MISC: &[Line] = &[
    run("version"),
    run("version extra args"),
    run("version -w json"),
    run("version -w xml --hex"),
    run("compaction"),
    run("compaction 1 2"),
    run("compaction x"),
    run("compaction 99999999999999999999"),
    run("compaction 0x10"),
    run("compaction x -w xml"),
    run("compaction 1 -w xml"),
    run("put a 1"),
    run("put a 2"),
    run("put a 3"),
    run("put b 1"),
    // A store never compacted takes one compaction at 0 (etcd's compacted
    // revision starts at -1).
    run("compaction 0"),
    run("compaction 0"),
    run("compaction -- -1"),
    run("compaction 100"),
    run("compaction 1"),
    run("compaction 0"),
    run("compaction 2 -w json"),
    run("compaction 2"),
    run("compaction 1"),
    run("compaction 3 --physical"),
    run("compaction --physical=false 4 -w table"),
    run("compaction --physical=maybe 4"),
    run("get a --rev 3"),
    run("get a --rev 4"),
    run("get a -w fields"),
    run("compac 5 -w protobuf"),
    run("compaction 6"),
];

/// completion: cobra's bash, zsh, fish and powershell scripts, byte for
/// byte, with and without descriptions; the arguments refused.
const COMPLETION: &[Line] = &[
    run("completion bash"),
    run("completion bash --no-descriptions"),
    run("completion zsh"),
    run("completion zsh --no-descriptions"),
    run("completion fish"),
    run("completion fish --no-descriptions"),
    run("completion powershell"),
    run("completion powershell --no-descriptions"),
    run("completion powershell y"),
    run("completion bash x"),
    run("completion zsh --no-descriptions=maybe"),
];

/// check perf: the refusals that come before its 60 s run (an unknown
/// load, a prefix that holds keys, a bad format).
const CHECK: &[Line] = &[
    run("check perf --load x"),
    run("check perf --load xLarge -w xml"),
    run("put /etcdctl-check-perf/k v"),
    run("check perf"),
    run("check perf --load small --prefix /etcdctl-check-perf/"),
    run("put mine/k v"),
    run("check perf --prefix mine/ --auto-compact"),
];

/// Words of `line` as a shell splits them (single and double quotes; `\n`
/// inside quotes is a newline).
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                let q = c;
                while let Some(d) = chars.next() {
                    if d == q {
                        break;
                    }
                    if d == '\\' && q == '"' {
                        match chars.next() {
                            Some('n') => cur.push('\n'),
                            Some(e) => cur.push(e),
                            None => {}
                        }
                        continue;
                    }
                    if d == '\\' && chars.peek() == Some(&'n') {
                        chars.next();
                        cur.push('\n');
                        continue;
                    }
                    cur.push(d);
                }
            }
            ' ' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// One side: a tool and the server it talks to.
struct Side {
    label: &'static str,
    bin: PathBuf,
    api3: bool,
    endpoint: String,
}

impl Side {
    /// Runs a corpus line with its arguments as expanded for this side.
    fn run_line(&self, line: &Line, args: &[String]) -> std::process::Output {
        match line.interrupt_ms {
            None => self.run_raw_env(args, line.stdin, line.env),
            Some(ms) => {
                let mut c = self.command(args);
                c.stdin(if line.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                let mut child = c.spawn().expect("spawn");
                // Written, and kept open until the process is stopped.
                let mut sin = child.stdin.take();
                if let (Some(w), Some(text)) = (sin.as_mut(), line.stdin) {
                    let _ = w.write_all(text.as_bytes());
                    let _ = w.flush();
                }
                let mut p = Proc(Some(child));
                std::thread::sleep(Duration::from_millis(ms));
                let out = p.interrupt();
                drop(sin);
                out
            }
        }
    }

    /// The tool with `args` and the side's environment. etcdctl refuses a
    /// flag that its variable also sets: a line with its own
    /// `--endpoints` runs without ETCDCTL_ENDPOINTS.
    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(&self.bin);
        if !args.iter().any(|a| a.starts_with("--endpoints")) {
            c.env("ETCDCTL_ENDPOINTS", &self.endpoint);
        }
        c.args(args)
            .env_remove("ETCDCTL_API")
            .env_remove("ETCDCTL_USER");
        if self.api3 {
            c.env("ETCDCTL_API", "3");
        }
        c
    }

    fn run(&self, args: &[String], stdin: Option<&str>) -> Run {
        Run::from(self.run_raw(args, stdin))
    }

    /// What the tool printed, as bytes (`-w protobuf` is binary).
    fn run_raw(&self, args: &[String], stdin: Option<&str>) -> std::process::Output {
        self.run_raw_env(args, stdin, &[])
    }

    /// [`Side::run_raw`] with variables set.
    fn run_raw_env(
        &self,
        args: &[String],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> std::process::Output {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        {
            let mut sin = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                let _ = sin.write_all(s.as_bytes());
            }
        }
        let mut p = Proc(Some(child));
        p.wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {args:?} did not finish in 30 s", self.label))
    }

    /// The cluster and member ids, from a `-w fields` header.
    fn ids(&self) -> (String, String) {
        let r = self.run(
            &["get".into(), "x".into(), "-w".into(), "fields".into()],
            None,
        );
        let field = |name: &str| {
            r.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("\"{name}\" : ")))
                .unwrap_or_else(|| panic!("{}: no {name} in {:?}", self.label, r))
                .to_string()
        };
        (field("ClusterID"), field("MemberID"))
    }
}

/// Replaces what may differ between the two sides.
struct Normaliser {
    endpoint: String,
    cluster_id: String,
    member_id: String,
    /// The member's peer address (`host:port`), printed by `member` commands.
    peer: String,
    /// Member and cluster ids, in decimal and in hex, and their
    /// placeholders: the cluster, the member, then each member added
    /// (`NEW_ID_1`, ...) as `member list` shows it after a `member add`.
    ids: Vec<(u64, String)>,
}

impl Normaliser {
    fn apply(&self, s: &str) -> String {
        // The longer address first: one may be a prefix of the other.
        let mut addresses = [(&self.endpoint, "ENDPOINT"), (&self.peer, "PEER")];
        addresses.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
        let mut out = s.to_string();
        for (from, to) in addresses {
            if !from.is_empty() {
                out = out.replace(from.as_str(), to);
            }
        }
        out = out.replace(&self.cluster_id, "CLUSTER_ID");
        out = out.replace(&self.member_id, "MEMBER_ID");
        out = self.replace_ids(&out);
        let lines: Vec<String> = out
            .split('\n')
            .map(|l| {
                if l.starts_with("{\"level\":\"warn\"") {
                    // clientv3's zap line: its time and client id vary.
                    let ts_end = l.find("\",\"caller\"").unwrap_or(0);
                    let mut l = format!("{{\"level\":\"warn\",\"ts\":\"TS{}", &l[ts_end..]);
                    if let Some(a) = l.find("endpoint://client-") {
                        if let Some(b) = l[a..]
                            .find('/')
                            .and_then(|i| l[a + i + 2..].find('/').map(|j| a + i + 2 + j))
                        {
                            l.replace_range(a..b, "endpoint://client-ID");
                        }
                    }
                    l
                } else if is_capnslog_line(l) {
                    // capnslog's line (`pkg/flags` warnings): its time varies.
                    format!("TS{}", &l["2006-01-02 15:04:05.000000".len()..])
                } else {
                    l.to_string()
                }
            })
            .collect();
        canonical(&lines.join("\n"))
    }

    /// A member added: `NEW_ID_<n>` from now on.
    fn learn(&mut self, id: u64) {
        let n = self
            .ids
            .iter()
            .filter(|(_, p)| p.starts_with("NEW_ID_"))
            .count();
        self.ids.push((id, format!("NEW_ID_{}", n + 1)));
    }

    /// A lease granted: `LEASE_<n>` from now on.
    fn learn_lease(&mut self, id: i64) {
        let n = self.leases().len();
        self.ids.push((id as u64, format!("LEASE_{}", n + 1)));
    }

    /// The leases granted, in order.
    fn leases(&self) -> Vec<i64> {
        self.ids
            .iter()
            .filter(|(_, p)| p.starts_with("LEASE_"))
            .map(|(id, _)| *id as i64)
            .collect()
    }

    /// Output as bytes: the ids also where `-w protobuf` prints them (as
    /// varints), then [`Normaliser::apply`].
    fn apply_bytes(&self, b: &[u8]) -> String {
        let mut b = b.to_vec();
        for (id, name) in &self.ids {
            b = replace_bytes(&b, &varint(*id), name.as_bytes());
        }
        self.apply(&String::from_utf8_lossy(&b))
    }

    /// The most recently added member's id.
    fn newest(&self) -> Option<u64> {
        self.ids
            .iter()
            .rev()
            .find(|(_, p)| p.starts_with("NEW_ID_"))
            .map(|(id, _)| *id)
    }

    fn replace_ids(&self, s: &str) -> String {
        // "Member %16x added to cluster %16x": the padding depends on how
        // many hex digits the ids have.
        let mut out: String = s
            .split('\n')
            .map(|l| {
                if l.starts_with("Member ") {
                    l.split(' ')
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for (id, name) in &self.ids {
            out = out.replace(&id.to_string(), name);
        }
        // Leases print as %016x: zero-padded first.
        for (id, name) in &self.ids {
            out = out.replace(&format!("{id:016x}"), name);
            out = out.replace(&format!("{id:x}"), name);
        }
        out
    }
}

/// A capnslog line: `2006-01-02 15:04:05.000000 W | ...`.
fn is_capnslog_line(l: &str) -> bool {
    let b = l.as_bytes();
    let shape = b"0000-00-00 00:00:00.000000 X | ";
    b.len() >= shape.len()
        && shape.iter().zip(b).all(|(s, c)| match s {
            b'0' => c.is_ascii_digit(),
            b'X' => c.is_ascii_uppercase(),
            _ => s == c,
        })
}

/// Go's `time.Duration` text (`1.5ms`, `5.000394477s`, `1m0.5s`).
fn is_go_duration(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == 'µ');
    !digits.is_empty()
        && digits != s
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || "nsuµmh".contains(c))
}

/// go-humanize's size text (`20 kB`, `8.2 kB`, `9 B`).
fn is_humanized_size(s: &str) -> bool {
    let Some((n, unit)) = s.split_once(' ') else {
        return false;
    };
    ["B", "kB", "MB", "GB", "TB", "PB", "EB"].contains(&unit)
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Replaces the value after each `marker` (up to the next `,` or `}`).
fn replace_value_after(l: &str, marker: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        out.push_str(with);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level elements of the JSON array that starts at `text[0]`
/// (`[`), and where it ends.
fn json_array_elements(text: &str) -> Option<(Vec<&str>, usize)> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut start = 1;
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    if i > start {
                        out.push(&text[start..i]);
                    }
                    return Some((out, i + 1));
                }
            }
            ',' if depth == 1 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// What differs between two servers for reasons of their own, and what
/// is ordered by member ids (random on each side), made equal:
///
/// - `took` durations of `endpoint health` become `TOOK`; the database
///   sizes and raft indexes of `endpoint status`, `SIZE` and `INDEX` (the
///   servers' storage differs, and etcd logs entries ferretcd does not,
///   such as the v2 quorum read that tells the test a server is ready);
/// - tables lose their padding (column widths follow the ids, sizes and
///   durations; table.rs's tests hold the widths);
/// - members listed in id order (`member list` in every format, the
///   `members` of member answers, `ETCD_INITIAL_CLUSTER`) are sorted.
fn canonical(text: &str) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for l in &mut lines {
        *l = canonical_line(l);
    }
    // `member list`, simple: one line per member.
    let is_member_row = |l: &str| l.contains(", started, ") || l.contains(", unstarted, ");
    sort_runs(&mut lines, is_member_row);
    // `member list -w fields`: a block per member, from "ID" to a blank line.
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("\"ID\" : ") {
            i += 1;
            continue;
        }
        let mut blocks: Vec<Vec<String>> = Vec::new();
        let mut j = i;
        while j < lines.len() && lines[j].starts_with("\"ID\" : ") {
            let end = lines[j..]
                .iter()
                .position(|l| l.is_empty())
                .map_or(lines.len(), |k| j + k + 1);
            blocks.push(lines[j..end].to_vec());
            j = end;
        }
        blocks.sort();
        lines.splice(i..j, blocks.into_iter().flatten());
        i = j.max(i + 1);
    }
    // Tables: the columns whose values differ between the servers. A
    // table is a border, its header, a border, its rows, a border.
    let is_table = |l: &str| l == "+" || l.starts_with('|');
    let mut columns: Vec<String> = Vec::new();
    for i in 0..lines.len() {
        if lines[i].len() < 2 || !lines[i].starts_with('|') || !lines[i].ends_with('|') {
            continue;
        }
        let cells: Vec<String> = lines[i][1..lines[i].len() - 1]
            .split('|')
            .map(str::to_string)
            .collect();
        if i >= 1 && lines[i - 1] == "+" && (i < 2 || !is_table(&lines[i - 2])) {
            columns = cells;
            continue;
        }
        let cells: Vec<String> = cells
            .into_iter()
            .zip(&columns)
            .map(|(c, col)| match col.as_str() {
                _ if c.is_empty() => c,
                "DB SIZE" => "SIZE".into(),
                "RAFT INDEX" | "RAFT APPLIED INDEX" => "INDEX".into(),
                "TOOK" => "TOOK".into(),
                _ => c,
            })
            .collect();
        lines[i] = format!("|{}|", cells.join("|"));
    }
    // `member list -w table`: the rows under its header.
    if let Some(h) = lines.iter().position(|l| l.contains("|PEER ADDRS|")) {
        let start = h + 2;
        let end = lines[start.min(lines.len())..]
            .iter()
            .position(|l| l == "+")
            .map_or(lines.len(), |k| start + k);
        if start < end {
            lines[start..end].sort();
        }
    }
    lines.join("\n")
}

/// Sorts each run of consecutive lines that `part` accepts.
fn sort_runs(lines: &mut [String], part: impl Fn(&str) -> bool) {
    let mut i = 0;
    while i < lines.len() {
        if !part(&lines[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && part(&lines[j]) {
            j += 1;
        }
        lines[i..j].sort();
        i = j;
    }
}

fn canonical_line(l: &str) -> String {
    let mut l = l.to_string();
    // Tables: no padding, no border widths.
    if l.starts_with('+') && l.chars().all(|c| c == '+' || c == '-') {
        return "+".into();
    }
    if l.len() > 1 && l.starts_with('|') && l.ends_with('|') {
        let cells: Vec<&str> = l[1..l.len() - 1].split('|').map(str::trim).collect();
        return format!("|{}|", cells.join("|"));
    }
    if let Some(i) = l.find(" is healthy: successfully committed proposal: took = ") {
        l = format!(
            "{} is healthy: successfully committed proposal: took = TOOK",
            &l[..i]
        );
    }
    if let Some(rest) = l.strip_prefix("\"Took\" : ") {
        if is_go_duration(rest) {
            l = "\"Took\" : TOOK".into();
        }
    }
    for (field, with) in [
        ("\"DBSize\" : ", "SIZE"),
        ("\"RaftIndex\" : ", "INDEX"),
        ("\"RaftAppliedIndex\" : ", "INDEX"),
    ] {
        if l.starts_with(field) {
            l = format!("{field}{with}");
        }
    }
    l = replace_value_after(&l, "\"took\":", "\"TOOK\"");
    for (field, with) in [
        ("\"dbSize\":", "SIZE"),
        ("\"dbSizeInUse\":", "SIZE"),
        ("\"raftIndex\":", "INDEX"),
        ("\"raftAppliedIndex\":", "INDEX"),
    ] {
        l = replace_value_after(&l, field, with);
    }
    // `endpoint status`, simple: endpoint, ID, version, db size, is
    // leader, is learner, raft term, raft index, raft applied index, errors.
    if l.starts_with("ENDPOINT, ") || l.starts_with("http://ENDPOINT, ") {
        let mut fields: Vec<String> = l.split(", ").map(str::to_string).collect();
        if fields.len() > 8 && is_humanized_size(&fields[3]) {
            fields[3] = "SIZE".into();
            fields[7] = "INDEX".into();
            fields[8] = "INDEX".into();
        }
        l = fields.join(", ");
    }
    if let Some(list) = l
        .strip_prefix("ETCD_INITIAL_CLUSTER=\"")
        .and_then(|r| r.strip_suffix('"'))
    {
        let mut items: Vec<&str> = list.split(',').collect();
        items.sort();
        l = format!("ETCD_INITIAL_CLUSTER=\"{}\"", items.join(","));
    }
    let marker = "\"members\":[";
    let mut from = 0;
    while let Some(i) = l[from..].find(marker).map(|i| from + i + marker.len() - 1) {
        let Some((mut elements, len)) = json_array_elements(&l[i..]) else {
            break;
        };
        elements.sort();
        let sorted = format!("[{}]", elements.join(","));
        l.replace_range(i..i + len, &sorted);
        from = i + sorted.len();
    }
    l
}

/// What `member list -w json` of etcdctl says the members' ids are.
fn member_ids(endpoint: &str) -> Vec<u64> {
    let out = Command::new(common::ETCDCTL)
        .args(["member", "list", "-w", "json"])
        .env("ETCDCTL_ENDPOINTS", endpoint)
        .env_remove("ETCDCTL_API")
        .output()
        .expect("etcdctl member list");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("member list of {endpoint}: {e}: {out:?}"));
    v["members"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["ID"].as_u64()).collect())
        .unwrap_or_default()
}

/// The leases a server holds (etcdctl's `lease list -w json`), sorted.
fn lease_ids(endpoint: &str) -> Vec<i64> {
    let out = Command::new(common::ETCDCTL)
        .args(["lease", "list", "-w", "json"])
        .env("ETCDCTL_ENDPOINTS", endpoint)
        .env_remove("ETCDCTL_API")
        .output()
        .expect("etcdctl lease list");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lease list of {endpoint}: {e}: {out:?}"));
    let mut ids: Vec<i64> = v["leases"]
        .as_array()
        .map(|ls| ls.iter().filter_map(|l| l["id"].as_i64()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// A line's placeholders for one side: `ENDPOINT` (its client address),
/// `PEER_URL` (its member's peer URL), `MEMBER_HEX` (its member's id) and
/// `NEW_HEX` (the member added last), `LEASE_HEX` (the lease granted
/// last) and `LEASE<n>_HEX` (the n-th), ids in hex.
fn expand(args: &[String], side: &Side, norm: &Normaliser) -> Vec<String> {
    let member: u64 = norm.member_id.parse().unwrap_or(0);
    args.iter()
        .map(|a| {
            let mut a = a.replace("PEER_URL", &format!("http://{}", norm.peer));
            a = a.replace("ENDPOINT", &side.endpoint);
            a = a.replace("MEMBER_HEX", &format!("{member:x}"));
            if let Some(id) = norm.newest() {
                a = a.replace("NEW_HEX", &format!("{id:x}"));
            }
            let leases = norm.leases();
            for (n, id) in leases.iter().enumerate().rev() {
                a = a.replace(&format!("LEASE{}_HEX", n + 1), &format!("{id:x}"));
            }
            if let Some(id) = leases.last() {
                a = a.replace("LEASE_HEX", &format!("{id:x}"));
            }
            a
        })
        .collect()
}

/// `-w protobuf` answers, decoded: the bytes must be the message's own
/// encoding, and its contents are compared (as Rust's `Debug` of it,
/// members in a fixed order) once ids and addresses are normalised.
fn decode_protobuf(args: &[String], raw: &[u8], member_id: u64) -> Option<String> {
    use ferret_proto::etcdserverpb as pb;
    use prost::Message;
    let w = args.iter().position(|a| a == "-w" || a == "--write-out")?;
    if args.get(w + 1).map(String::as_str) != Some("protobuf") {
        return None;
    }
    fn show<M: Message + Default + std::fmt::Debug>(raw: &[u8], sort: impl Fn(&mut M)) -> String {
        match M::decode(raw) {
            Ok(mut m) if m.encode_to_vec() == raw => {
                sort(&mut m);
                format!("{m:?}\n")
            }
            _ => format!("not a canonical encoding: {raw:?}\n"),
        }
    }
    // The member itself first, then the others (one at most here).
    let order = |ms: &mut Vec<pb::Member>| ms.sort_by_key(|m| m.id != member_id);
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    Some(match words.as_slice() {
        ["member", "list", ..] => show::<pb::MemberListResponse>(raw, |m| order(&mut m.members)),
        ["member", "add", ..] => show::<pb::MemberAddResponse>(raw, |m| order(&mut m.members)),
        ["member", "remove", ..] => {
            show::<pb::MemberRemoveResponse>(raw, |m| order(&mut m.members))
        }
        ["member", "update", ..] => {
            show::<pb::MemberUpdateResponse>(raw, |m| order(&mut m.members))
        }
        ["member", "promote", ..] => {
            show::<pb::MemberPromoteResponse>(raw, |m| order(&mut m.members))
        }
        ["alarm", ..] => show::<pb::AlarmResponse>(raw, |_| {}),
        // The auth commands: the ids' varints differ in length between the
        // servers, and so does the length of the header that holds them.
        [.., "user", "add", _, _] => show::<pb::AuthUserAddResponse>(raw, |_| {}),
        [.., "user", "delete", _, _] => show::<pb::AuthUserDeleteResponse>(raw, |_| {}),
        [.., "user", "get", _, _] => show::<pb::AuthUserGetResponse>(raw, |_| {}),
        [.., "user", "list", _] => show::<pb::AuthUserListResponse>(raw, |_| {}),
        [.., "user", "passwd", _, _] => show::<pb::AuthUserChangePasswordResponse>(raw, |_| {}),
        [.., "user", "grant-role", _, _, _] => show::<pb::AuthUserGrantRoleResponse>(raw, |_| {}),
        [.., "user", "revoke-role", _, _, _] => show::<pb::AuthUserRevokeRoleResponse>(raw, |_| {}),
        [.., "role", "add", _, _] => show::<pb::AuthRoleAddResponse>(raw, |_| {}),
        [.., "role", "delete", _, _] => show::<pb::AuthRoleDeleteResponse>(raw, |_| {}),
        [.., "role", "get", _, _] => show::<pb::AuthRoleGetResponse>(raw, |_| {}),
        [.., "role", "list", _] => show::<pb::AuthRoleListResponse>(raw, |_| {}),
        [.., "role", "grant-permission", _, _, _, _] => {
            show::<pb::AuthRoleGrantPermissionResponse>(raw, |_| {})
        }
        [.., "role", "revoke-permission", _, _, _] => {
            show::<pb::AuthRoleRevokePermissionResponse>(raw, |_| {})
        }
        ["move-leader", ..] => show::<pb::MoveLeaderResponse>(raw, |_| {}),
        _ => return None,
    })
}

/// A corpus line that is an action of the test rather than a command:
/// `!alarm NOSPACE` raises the alarm on the member (through the gRPC
/// gateway: etcdctl cannot), as a full disk would.
fn directive(line: &str, side: &Side, norm: &Normaliser) {
    let Some(alarm) = line.strip_prefix("!alarm ") else {
        panic!("unknown directive {line}");
    };
    let body = format!(
        "{{\"action\":\"ACTIVATE\",\"memberID\":\"{}\",\"alarm\":\"{alarm}\"}}",
        norm.member_id
    );
    let req = ferret_testkit::http::Request {
        method: "POST".into(),
        target: b"/v3/maintenance/alarm".to_vec(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(body.into_bytes()),
    };
    let addr = side.endpoint.parse().expect("an address");
    let r = ferret_testkit::http::send(
        addr,
        &req,
        ferret_testkit::http::BodyMode::Full,
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{}: {line}: {e}", side.label));
    assert_eq!(r.status, 200, "{}: {line}: {:?}", side.label, r);
}

/// Protobuf's varint encoding of `v`.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// The base64 `"key"`s of JSON output as text (`"key":"=l1/<id>"`), so
/// that the lease ids in them are normalised.
fn json_keys_decoded(out: &[u8]) -> Vec<u8> {
    use base64::Engine;
    if !out.starts_with(b"{") {
        return out.to_vec();
    }
    let text = String::from_utf8_lossy(out);
    let marker = "\"key\":\"";
    let mut res = String::new();
    let mut rest: &str = &text;
    while let Some(i) = rest.find(marker) {
        res.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        match base64::engine::general_purpose::STANDARD.decode(&rest[..end]) {
            Ok(b) => {
                res.push('=');
                res.push_str(&String::from_utf8_lossy(&b));
            }
            Err(_) => res.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    res.push_str(rest);
    res.into_bytes()
}

/// Output whose order is the server's: its lines sorted, and in each the
/// elements of a JSON `"leases":[...]` list sorted.
fn sorted_output(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| {
            let Some(start) = l.find("\"leases\":[").map(|i| i + "\"leases\":[".len()) else {
                return l.to_string();
            };
            let Some(len) = l[start..].find(']') else {
                return l.to_string();
            };
            let mut items: Vec<&str> = l[start..start + len].split(',').collect();
            items.sort_unstable();
            format!("{}{}{}", &l[..start], items.join(","), &l[start + len..])
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// What `lease timetolive` prints that is the server's choice: the
/// attached keys come in any order from etcd (a Go map), so they are
/// sorted; and the remaining TTL is `<remaining>` when it is at most 3 s
/// below the granted TTL: the servers count it down from the grant, and
/// the two grants were not made at the same moment (seen to differ by a
/// second when the machine is busy). Any other value (-1 for a lease that
/// is gone, one above the granted TTL) is left to compare.
fn normalise_time_to_live(out: &str) -> String {
    let sort_between = |text: &str, open: &str, close: char, sep: &str| -> String {
        let Some(start) = text.find(open).map(|i| i + open.len()) else {
            return text.to_string();
        };
        let Some(len) = text[start..].find(close) else {
            return text.to_string();
        };
        let mut items: Vec<&str> = text[start..start + len].split(sep).collect();
        items.sort_unstable();
        format!(
            "{}{}{}",
            &text[..start],
            items.join(sep),
            &text[start + len..]
        )
    };
    let text = sort_between(out, "attached keys([", ']', " ");
    let text = sort_between(&text, "\"keys\":[", ']', ",");
    // The fields format: one "Key" line per key, after the others.
    let (mut keys, others): (Vec<&str>, Vec<&str>) =
        text.split('\n').partition(|l| l.starts_with("\"Key\" : "));
    keys.sort_unstable();
    let mut lines = others;
    let end = lines
        .len()
        .saturating_sub(usize::from(text.ends_with('\n')));
    lines.splice(end..end, keys);
    fuzz_remaining(&lines.join("\n"))
}

/// See [`normalise_time_to_live`].
fn fuzz_remaining(out: &str) -> String {
    let number_after = |s: &str, marker: &str| -> Option<i64> {
        let rest = &s[s.find(marker)? + marker.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    };
    let plausible = |granted: Option<i64>, left: i64| {
        granted.is_some_and(|g| (g - 3..=g).contains(&left) && left >= 0)
    };
    // Simple: one line; fields: "TTL" and "GrantedTTL" lines; json: one
    // object.
    let granted = number_after(out, "granted with TTL(")
        .or_else(|| number_after(out, "\"GrantedTTL\" : "))
        .or_else(|| number_after(out, "\"granted-ttl\":"));
    let mut text = out.to_string();
    for (marker, end) in [
        ("remaining(", "s)"),
        ("\"TTL\" : ", "\n"),
        ("\"ttl\":", ","),
    ] {
        if let Some(left) = number_after(&text, marker) {
            if plausible(granted, left) {
                text = text.replacen(
                    &format!("{marker}{left}{end}"),
                    &format!("{marker}<remaining>{end}"),
                    1,
                );
            }
        }
    }
    text
}

/// The exit code, or minus the signal that ended the process.
fn status_code(st: ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| -s))
        .unwrap_or(i32::MIN)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Both servers, fresh, and a side for each (etcdctl against etcd,
/// ferretctl against ferretcd) with its normaliser. The servers stop when
/// it is dropped.
struct Pair {
    sides: [Side; 2],
    norms: Vec<Normaliser>,
    _servers: [Server; 2],
}

impl Pair {
    /// etcdctl against etcd, ferretctl against ferretcd.
    fn start() -> Pair {
        Pair::start_as(false)
    }

    /// The crossed pair: ferretctl against etcd, etcdctl against
    /// ferretcd. Equal answers say that each tool works with the other's
    /// server as it does with its own.
    fn start_crossed() -> Pair {
        Pair::start_as(true)
    }

    fn start_as(crossed: bool) -> Pair {
        // Both at once. bcrypt at its lowest cost on both: every
        // `--user` line authenticates (a bcrypt comparison), and what is
        // compared does not depend on the cost.
        let flags = ["--bcrypt-cost", "4"];
        let (etcd, ferret) = std::thread::scope(|scope| {
            let e = scope
                .spawn(|| Server::start_with("etcd", Path::new(common::ETCD), "v3diff", &flags));
            let f = scope
                .spawn(|| Server::start_with("ferretcd", &common::ferretcd(), "v3diff", &flags));
            let join = |h: std::thread::ScopedJoinHandle<'_, Server>| {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            };
            (join(e), join(f))
        });
        let host = |url: &str| url.trim_start_matches("http://").to_string();
        let etcdctl = |label, endpoint| Side {
            label,
            bin: PathBuf::from("/usr/bin/etcdctl"),
            api3: false,
            endpoint,
        };
        let ferretctl = |label, endpoint| Side {
            label,
            bin: common::ferretctl(),
            api3: true,
            endpoint,
        };
        let sides = if crossed {
            [
                ferretctl("ferretctl/etcd", host(&etcd.client_url)),
                etcdctl("etcdctl/ferretcd", host(&ferret.client_url)),
            ]
        } else {
            [
                etcdctl("etcdctl/etcd", host(&etcd.client_url)),
                ferretctl("ferretctl/ferretcd", host(&ferret.client_url)),
            ]
        };
        let peers = [host(&etcd.peer_url), host(&ferret.peer_url)];
        let norms: Vec<Normaliser> = sides
            .iter()
            .zip(peers)
            .map(|(s, peer)| {
                let (cluster_id, member_id) = s.ids();
                let ids = vec![
                    (cluster_id.parse().unwrap_or(0), "CLUSTER_ID".to_string()),
                    (member_id.parse().unwrap_or(0), "MEMBER_ID".to_string()),
                ];
                Normaliser {
                    endpoint: s.endpoint.clone(),
                    cluster_id,
                    member_id,
                    peer,
                    ids,
                }
            })
            .collect();
        Pair {
            sides,
            norms,
            _servers: [etcd, ferret],
        }
    }

    /// Learns the leases each server holds that are not known yet (after
    /// a `lease grant`).
    fn learn_leases(&mut self) {
        for (s, n) in self.sides.iter().zip(self.norms.iter_mut()) {
            let known = n.leases();
            for id in lease_ids(&s.endpoint) {
                if !known.contains(&id) {
                    n.learn_lease(id);
                }
            }
        }
    }

    /// A report of what differs between the two sides' normalised
    /// (stdout, stderr, exit code), if anything does.
    fn compare(&self, what: &str, norm: &[(String, String, i32)]) -> Option<String> {
        (norm[0] != norm[1]).then(|| {
            format!(
                "`{what}`:\n--- {} (exit {}):\n{}{}--- {} (exit {}):\n{}{}",
                self.sides[0].label,
                norm[0].2,
                norm[0].0,
                norm[0].1,
                self.sides[1].label,
                norm[1].2,
                norm[1].0,
                norm[1].1
            )
        })
    }
}

fn differential(test: &str, corpus: &[Line]) {
    differential_on(test, corpus, Pair::start);
}

/// The crossed pair on `corpus` (see [`Pair::start_crossed`]).
fn crossed(test: &str, corpus: &[Line]) {
    differential_on(test, corpus, Pair::start_crossed);
}

fn differential_on(test: &str, corpus: &[Line], start: fn() -> Pair) {
    if !reference_available(test) {
        return;
    }
    let mut pair = start();
    let diffs = run_corpus(&mut pair, corpus);
    drop(pair);
    assert!(
        diffs.is_empty(),
        "{test}: {} of {} lines differ:\n\n{}",
        diffs.len(),
        corpus.len(),
        diffs.join("\n")
    );
}

/// Runs `corpus` on both sides, line after line; what differs.
fn run_corpus(pair: &mut Pair, corpus: &[Line]) -> Vec<String> {
    let mut diffs = Vec::new();
    for line in corpus {
        if line.args.starts_with('!') {
            for (s, n) in pair.sides.iter().zip(&pair.norms) {
                directive(line.args, s, n);
            }
            continue;
        }
        let args = split(line.args);
        // Both sides at once: each server sees its lines in order.
        let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .sides
                .iter()
                .zip(&pair.norms)
                .map(|(s, n)| {
                    let args = expand(&args, s, n);
                    scope.spawn(move || s.run_line(line, &args))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a side's run"))
                .collect()
        });
        if args.len() > 1 && args[0] == "member" && args[1] == "add" {
            for (s, n) in pair.sides.iter().zip(pair.norms.iter_mut()) {
                let known: Vec<u64> = n.ids.iter().map(|(id, _)| *id).collect();
                for id in member_ids(&s.endpoint) {
                    if !known.contains(&id) {
                        n.learn(id);
                    }
                }
            }
        }
        let has_word = |prefix: &str| args.iter().any(|a| a.starts_with(prefix));
        let concurrency = args.first().is_some_and(|a| a == "lock" || a == "elect");
        if (has_word("le") && has_word("gr")) || concurrency {
            pair.learn_leases();
        }
        let norm: Vec<(String, String, i32)> = outputs
            .iter()
            .zip(&pair.norms)
            .map(|(o, n)| {
                let r = Run::from(o.clone());
                let member: u64 = n.member_id.parse().unwrap_or(0);
                let decoded = o
                    .status
                    .success()
                    .then(|| decode_protobuf(&args, &o.stdout, member))
                    .flatten();
                let mut stdout = match decoded {
                    Some(d) => n.apply(&d),
                    // lock and elect keys name the session's lease.
                    None if concurrency => n.apply_bytes(&json_keys_decoded(&o.stdout)),
                    None => n.apply_bytes(&o.stdout),
                };
                if line.unordered {
                    stdout = sorted_output(&stdout);
                }
                if has_word("ti") {
                    stdout = normalise_time_to_live(&stdout);
                }
                (stdout, n.apply(&r.stderr), r.code)
            })
            .collect();
        diffs.extend(pair.compare(line.args, &norm));
    }
    diffs
}

#[test]
fn get_put_del_match_etcdctl() {
    differential("etcdctl v3 get/put/del", KV);
}

#[test]
fn txn_matches_etcdctl() {
    differential("etcdctl v3 txn", TXN);
}

#[test]
fn watch_matches_etcdctl() {
    differential("etcdctl v3 watch", WATCH);
}

#[test]
fn lock_and_elect_match_etcdctl() {
    differential("etcdctl v3 lock/elect", LOCK_ELECT);
}

#[test]
fn interactive_watch_matches_etcdctl() {
    differential("etcdctl v3 watch -i", WATCH_INTERACTIVE);
}

#[test]
fn member_commands_match_etcdctl() {
    differential("etcdctl v3 member", MEMBER);
}

#[test]
fn endpoint_commands_match_etcdctl() {
    differential("etcdctl v3 endpoint", ENDPOINT);
}

#[test]
fn maintenance_commands_match_etcdctl() {
    differential("etcdctl v3 alarm/defrag/move-leader", MAINTENANCE);
}

#[test]
fn lease_commands_match_etcdctl() {
    differential("etcdctl v3 lease", LEASE);
}

#[test]
fn lease_commands_with_auth_match_etcdctl() {
    let test = "etcdctl v3 lease, with auth";
    if !reference_available(test) {
        return;
    }
    let mut pair = Pair::start();
    // etcdctl enables authentication on both servers (the AUTH corpus
    // compares ferretctl's own `user add` and `auth enable`).
    for side in &pair.sides {
        for setup in ["user add root:rootpw", "auth enable"] {
            let mut c = Command::new("/usr/bin/etcdctl");
            c.args(words(setup))
                .env("ETCDCTL_ENDPOINTS", &side.endpoint)
                .env_remove("ETCDCTL_API");
            let out = c.output().expect("run etcdctl");
            assert!(out.status.success(), "{setup} on {}: {out:?}", side.label);
        }
    }
    let diffs = run_corpus(&mut pair, LEASE_AUTH);
    assert!(
        diffs.is_empty(),
        "{test}: {} of {} lines differ:\n\n{}",
        diffs.len(),
        LEASE_AUTH.len(),
        diffs.join("\n")
    );
}

#[test]
fn auth_user_and_role_commands_match_etcdctl() {
    differential("etcdctl v3 auth/user/role", AUTH);
}

#[test]
fn compaction_and_version_match_etcdctl() {
    differential("etcdctl v3 compaction/version", MISC);
}

// The crossed pairs: ferretctl against etcd, etcdctl against ferretcd.

#[test]
fn crossed_get_put_del() {
    crossed("crossed get/put/del", KV);
}

#[test]
fn crossed_txn() {
    crossed("crossed txn", TXN);
}

#[test]
fn crossed_lease() {
    crossed("crossed lease", LEASE);
}

#[test]
fn crossed_member_endpoint_and_maintenance() {
    crossed("crossed member", MEMBER);
    crossed("crossed endpoint", ENDPOINT);
    crossed("crossed maintenance", MAINTENANCE);
}

#[test]
fn crossed_auth_user_and_role() {
    crossed("crossed auth/user/role", AUTH);
}

#[test]
fn crossed_lock_elect_and_interactive_watch() {
    crossed("crossed lock/elect", LOCK_ELECT);
    crossed("crossed watch -i", WATCH_INTERACTIVE);
}

#[test]
fn crossed_watch_compaction_and_version() {
    crossed("crossed watch", WATCH);
    crossed("crossed compaction/version", MISC);
}

#[test]
fn completion_scripts_match_etcdctl() {
    differential("etcdctl v3 completion", COMPLETION);
}

/// `migrate` works on etcd's own data dir (its v2 store and bbolt
/// backend): ferretctl refuses it, before reading anything, and says
/// what to use instead.
#[test]
fn migrate_is_refused_with_the_routes_to_use() {
    let out = Command::new(common::ferretctl())
        .args(["migrate", "--data-dir", "/nonexistent/ferretctl-migrate"])
        .env("ETCDCTL_API", "3")
        .output()
        .expect("run ferretctl");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: ferretctl migrate: "), "{err}");
    assert!(err.contains("a ferretcd data dir is not etcd's"), "{err}");
    assert!(err.contains("snapshot restore"), "{err}");
    assert!(err.contains("start ferretcd on the etcd data dir"), "{err}");
}

#[test]
fn check_perf_refusals_match_etcdctl() {
    differential("etcdctl v3 check perf (refusals)", CHECK);
}

/// `check perf --load s` on both sides at once: a minute of writes.
/// Only with FERRETCTL_CHECK_PERF=1 (it takes over 60 s). The progress
/// (pb's lines, redrawn after `\r`) and the verdict's structure must be
/// etcdctl's; the figures differ with speed.
#[test]
fn check_perf_matches_etcdctl_structure() {
    let test = "etcdctl v3 check perf";
    if std::env::var_os("FERRETCTL_CHECK_PERF").is_none() {
        eprintln!("SKIPPED {test}: set FERRETCTL_CHECK_PERF=1 to run it (over 60 s)");
        return;
    }
    if !reference_available(test) {
        return;
    }
    let pair = Pair::start();
    let outs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = pair
            .sides
            .iter()
            .map(|s| {
                scope.spawn(move || {
                    let mut c = s.command(&words("check perf --load s --auto-compact"));
                    c.stdin(Stdio::null());
                    c.output().expect("run check perf")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("side"))
            .collect()
    });
    let shape = |o: &std::process::Output| -> (Vec<String>, String, Option<i32>) {
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let last = text.rsplit('\r').next().unwrap_or("").to_string();
        let lines = last
            .lines()
            .map(|l| {
                let cut = l.find(|c: char| c.is_ascii_digit()).map_or(l, |i| &l[..i]);
                cut.to_string()
            })
            .collect();
        (
            lines,
            String::from_utf8_lossy(&o.stderr).to_string(),
            o.status.code(),
        )
    };
    let e = shape(&outs[0]);
    let f = shape(&outs[1]);
    assert_eq!(e, f, "etcdctl:\n{e:?}\nferretctl:\n{f:?}");
    drop(pair);
}

/// A command left running: its stdout read as it comes (in the pieces
/// each write makes: the protobuf format has no lines).
struct Running {
    proc: Proc,
    output: mpsc::Receiver<Vec<u8>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(side: &Side, args: &[String]) -> Running {
        let mut c = side.command(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", side.bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, output) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut buf = [0u8; 4096];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Running {
            proc: Proc(Some(child)),
            output,
            reader: Some(reader),
        }
    }

    /// What it prints next, waiting at most 10 s.
    fn next_output(&self, what: &str) -> Vec<u8> {
        self.output
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{what}: nothing printed in 10 s"))
    }

    /// Its first keep-alive response, whole: etcdctl prints the fields
    /// format a line at a time, and a signal sent after the first line
    /// cut it short when the machine was busy. The other formats are one
    /// write each.
    fn first_response(&self, what: &str, format: &str) -> Vec<u8> {
        let mut out = self.next_output(what);
        if format == "fields" {
            while !(out.ends_with(b"\n") && String::from_utf8_lossy(&out).contains("\"TTL\" : ")) {
                out.extend(self.next_output(what));
            }
        }
        out
    }

    /// Waits (at most 15 s) for the end: all it printed after what was
    /// already read, and how it ended.
    fn finish(mut self, what: &str) -> std::process::Output {
        let mut out = self
            .proc
            .wait_output(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{what}: still running after 15 s"));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        out.stdout = self.output.try_iter().flatten().collect();
        out
    }
}

/// `lease keep-alive` without `--once` runs until it is interrupted
/// (etcdctl has no handler for SIGINT and SIGTERM: it dies of them,
/// printing nothing more) or its lease is revoked (`expired or revoked.`
/// in the simple format, exit 0). Each case is started on both sides,
/// stopped after the first keep-alive, and what each printed compared.
#[test]
fn keep_alive_until_interrupted_or_revoked_matches_etcdctl() {
    let test = "etcdctl v3 lease keep-alive (running)";
    if !reference_available(test) {
        return;
    }
    let mut pair = Pair::start();
    let cases: &[(&str, &str, &str)] = &[
        // (TTL, format, how it ends)
        ("60", "simple", "SIGINT"),
        ("60", "json", "SIGINT"),
        ("60", "fields", "SIGTERM"),
        ("60", "protobuf", "SIGTERM"),
        ("3", "simple", "revoke"),
        ("3", "json", "revoke"),
    ];
    let mut diffs = Vec::new();
    for (ttl, format, end) in cases {
        let what = format!("lease keep-alive -w {format}, ended by {end} (TTL {ttl})");
        let mut firsts: Vec<Vec<u8>> = Vec::new();
        let mut runs: Vec<std::process::Output> = Vec::new();
        for side in &pair.sides {
            let granted = side.run(&words(&format!("lease grant {ttl}")), None);
            assert_eq!(granted.code, 0, "{}: {granted:?}", side.label);
        }
        pair.learn_leases();
        for i in 0..2 {
            let side = &pair.sides[i];
            let id = format!("{:x}", pair.norms[i].leases().last().copied().unwrap_or(0));
            let running =
                Running::start(side, &words(&format!("-w {format} lease keep-alive {id}")));
            firsts.push(running.first_response(&format!("{}: {what}", side.label), format));
            match *end {
                "SIGINT" => assert!(running.proc.signal(libc::SIGINT)),
                "SIGTERM" => assert!(running.proc.terminate()),
                _ => {
                    let r = side.run(&words(&format!("lease revoke {id}")), None);
                    assert_eq!(r.code, 0, "{}: {r:?}", side.label);
                }
            }
            runs.push(running.finish(&format!("{}: {what}", side.label)));
        }
        let norm: [(String, String, i32); 2] = [0, 1].map(|i| {
            let n = &pair.norms[i];
            let mut all = firsts[i].clone();
            all.extend_from_slice(&runs[i].stdout);
            (
                n.apply_bytes(&all),
                n.apply_bytes(&runs[i].stderr),
                status_code(runs[i].status),
            )
        });
        diffs.extend(pair.compare(&what, &norm));
    }
    assert!(
        diffs.is_empty(),
        "{test}: {} of {} cases differ:\n\n{}",
        diffs.len(),
        cases.len(),
        diffs.join("\n")
    );
}

/// With no server to talk to: `grant`, `revoke` and `compaction` give up
/// at `--command-timeout`, `keep-alive` gives its lease up when no answer
/// came within `--dial-timeout` + 1 s, and `timetolive`, `list` and
/// `keep-alive --once` (run by etcdctl with no time limit) wait for one.
#[test]
fn lease_commands_without_a_server_match_etcdctl() {
    let test = "etcdctl v3 lease, no server";
    if !reference_available(test) {
        return;
    }
    let port = common::free_ports(1)[0];
    let endpoint = format!("127.0.0.1:{port}");
    let sides = [
        Side {
            label: "etcdctl",
            bin: PathBuf::from("/usr/bin/etcdctl"),
            api3: false,
            endpoint: endpoint.clone(),
        },
        Side {
            label: "ferretctl",
            bin: common::ferretctl(),
            api3: true,
            endpoint: endpoint.clone(),
        },
    ];
    let norm = Normaliser {
        endpoint,
        cluster_id: "no cluster".into(),
        member_id: "no member".into(),
        peer: String::new(),
        ids: Vec::new(),
    };
    let mut diffs = Vec::new();
    // Every command below only waits (for a dial, a timeout): all of them
    // run at once, each timing its own run.
    let waiting = [
        "lease timetolive 1234",
        "lease list",
        "lease keep-alive --once 1234",
    ];
    let mut running: Vec<(&str, &Side, Running)> = waiting
        .iter()
        .flat_map(|line| {
            sides
                .iter()
                .map(move |s| (*line, s, Running::start(s, &words(line))))
        })
        .collect();
    let waiting_since = Instant::now();
    let ending = [
        "--command-timeout 1s lease grant 10",
        "--command-timeout 1s lease revoke 1234",
        "--command-timeout 1s compaction 1",
        "lease keep-alive 1234",
        "--dial-timeout 1s -w json lease keep-alive 1234",
    ];
    let results: Vec<Vec<(std::process::Output, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<Vec<_>> = ending
            .iter()
            .map(|line| {
                sides
                    .iter()
                    .map(|s| {
                        scope.spawn(move || {
                            let t = Instant::now();
                            (s.run_raw(&words(line), None), t.elapsed())
                        })
                    })
                    .collect()
            })
            .collect();
        handles
            .into_iter()
            .map(|hs| {
                hs.into_iter()
                    .map(|h| h.join().expect("a side's run"))
                    .collect()
            })
            .collect()
    });
    for (line, results) in ending.iter().zip(&results) {
        let norm: [(String, String, i32); 2] = [0, 1].map(|i| {
            let r = &results[i].0;
            (
                norm.apply_bytes(&r.stdout),
                norm.apply_bytes(&r.stderr),
                status_code(r.status),
            )
        });
        if norm[0] != norm[1] {
            diffs.push(format!("`{line}`: {norm:?}"));
        }
        // Both wait about as long (each within half a second of the other).
        let (a, b) = (results[0].1, results[1].1);
        if a.abs_diff(b) > Duration::from_millis(500) {
            diffs.push(format!("`{line}`: etcdctl took {a:?}, ferretctl {b:?}"));
        }
    }
    // The waiting ones must still be waiting 3 s after they started.
    let waited = waiting_since.elapsed();
    if waited < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_secs(3) - waited);
    }
    for (line, s, r) in running.iter_mut() {
        if let Some(st) = r.proc.exited() {
            diffs.push(format!(
                "`{line}`: {} ended ({st}) instead of waiting",
                s.label
            ));
        }
    }
    drop(running);
    assert!(diffs.is_empty(), "{test}:\n{}", diffs.join("\n"));
}

#[test]
fn split_as_a_shell() {
    assert_eq!(split("put a 'b c'"), ["put", "a", "b c"]);
    assert_eq!(split("put '' x"), ["put", "", "x"]);
    assert_eq!(split("put x 'v\\nl'"), ["put", "x", "v\nl"]);
    assert_eq!(split("put x \"q\\\"\""), ["put", "x", "q\""]);
}

#[test]
fn lease_ids_are_normalised_in_every_form() {
    let (cluster, member) = (15118495548433857066u64, 13668033151171901709u64);
    let mut n = Normaliser {
        endpoint: "127.0.0.1:1".into(),
        cluster_id: cluster.to_string(),
        member_id: member.to_string(),
        peer: "127.0.0.1:2".into(),
        ids: vec![(cluster, "CLUSTER_ID".into()), (member, "MEMBER_ID".into())],
    };
    n.learn_lease(0x390d_a21e_2e75_0005);
    n.learn_lease(0x090d_a21e_2e75_0007);
    let side = Side {
        label: "test",
        bin: PathBuf::from("etcdctl"),
        api3: false,
        endpoint: "127.0.0.1:1".into(),
    };
    assert_eq!(
        expand(&words("lease revoke LEASE_HEX"), &side, &n),
        ["lease", "revoke", "90da21e2e750007"]
    );
    assert_eq!(
        expand(&words("lease revoke LEASE1_HEX"), &side, &n),
        ["lease", "revoke", "390da21e2e750005"]
    );
    assert_eq!(
        n.apply("lease 390da21e2e750005 granted\n\"ID\" : 4111120285371269125\n"),
        "lease LEASE_1 granted\n\"ID\" : LEASE_1\n"
    );
    assert_eq!(
        n.apply("lease 090da21e2e750007 revoked"),
        "lease LEASE_2 revoked"
    );
    let mut pb = vec![0x08];
    pb.extend(varint(15118495548433857066));
    assert_eq!(n.apply_bytes(&pb), "\u{8}CLUSTER_ID");
    assert_eq!(
        fuzz_remaining("lease 1 granted with TTL(100s), remaining(98s)\n"),
        "lease 1 granted with TTL(100s), remaining(<remaining>s)\n"
    );
    assert_eq!(
        fuzz_remaining("\"ID\" : 1\n\"TTL\" : 99\n\"GrantedTTL\" : 100\n"),
        "\"ID\" : 1\n\"TTL\" : <remaining>\n\"GrantedTTL\" : 100\n"
    );
    assert_eq!(
        fuzz_remaining("{\"id\":1,\"ttl\":97,\"granted-ttl\":100,\"keys\":null}"),
        "{\"id\":1,\"ttl\":<remaining>,\"granted-ttl\":100,\"keys\":null}"
    );
    assert_eq!(
        normalise_time_to_live(
            "lease 1 granted with TTL(100s), remaining(99s), attached keys([k2 k1])\n"
        ),
        "lease 1 granted with TTL(100s), remaining(<remaining>s), attached keys([k1 k2])\n"
    );
    assert_eq!(
        normalise_time_to_live("\"GrantedTTL\" : 100\n\"Key\" : \"k2\"\n\"Key\" : \"k1\"\n"),
        "\"GrantedTTL\" : 100\n\"Key\" : \"k1\"\n\"Key\" : \"k2\"\n"
    );
    assert_eq!(
        normalise_time_to_live("{\"ttl\":-1,\"keys\":[\"azI=\",\"azE=\"]}"),
        "{\"ttl\":-1,\"keys\":[\"azE=\",\"azI=\"]}"
    );
    for exact in [
        "{\"id\":1,\"ttl\":-1,\"granted-ttl\":0,\"keys\":null}",
        "lease 1 granted with TTL(100s), remaining(101s)",
        "lease 1 granted with TTL(100s), remaining(90s)",
    ] {
        assert_eq!(fuzz_remaining(exact), exact);
    }
    assert_eq!(
        sorted_output("{\"leases\":[{\"id\":2},{\"id\":1}]}\nb\na"),
        "a\nb\n{\"leases\":[{\"id\":1},{\"id\":2}]}"
    );
}
