//! etcdctl v3's command tree, help and command-line errors, against the
//! real etcdctl (Debian's 3.4.23): for every command path (the root,
//! every group, every sub-command, cobra's `help` and `completion`),
//! `<path> --help` and `help <path>` must print the same stdout and stderr
//! and exit with the same code from `ETCDCTL_API=3 ferretctl` as from
//! etcdctl; so must the errors that need no server (unknown commands and
//! their suggestions, ambiguous prefixes, unknown flags, missing or bad
//! flag values, `help` of unknown topics, stray arguments).
//!
//! The command paths are read from etcdctl's own root help (its COMMANDS
//! list names every runnable command by path; their groups are the
//! prefixes), so a command missing from ferretctl's tree fails the test.
//!
//! Without /usr/bin/etcdctl the test is skipped loudly, and fails when
//! `CI` is set.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::thread;

const ETCDCTL: &str = "/usr/bin/etcdctl";

/// What a run printed and how it exited.
#[derive(Debug, PartialEq, Eq)]
struct Output {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// Runs `program args` with no `ETCDCTL_*` variable but `api`'s.
fn run(program: &str, api: Option<&str>, args: &[String]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(k);
        }
    }
    if let Some(api) = api {
        cmd.env("ETCDCTL_API", api);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

/// etcdctl (`ETCDCTL_API` unset: v3) and `ETCDCTL_API=3 ferretctl` on the
/// same arguments; a description of the difference, if any.
fn compare(args: &[String]) -> Option<String> {
    let want = run(ETCDCTL, None, args);
    let got = run(env!("CARGO_BIN_EXE_ferretctl"), Some("3"), args);
    if want == got {
        return None;
    }
    let mut d = format!("\n==== {args:?}\n");
    for (what, w, g) in [
        ("stdout", &want.stdout, &got.stdout),
        ("stderr", &want.stderr, &got.stderr),
    ] {
        if w != g {
            d.push_str(&format!(
                "---- {what}: etcdctl\n{w}---- {what}: ferretctl\n{g}"
            ));
            let (wl, gl): (Vec<&str>, Vec<&str>) = (w.lines().collect(), g.lines().collect());
            let line = (0..wl.len().max(gl.len())).find(|&i| wl.get(i) != gl.get(i));
            d.push_str(&format!("---- first differing {what} line: {line:?}\n"));
        }
    }
    if want.code != got.code {
        d.push_str(&format!(
            "---- exit code: etcdctl {:?}, ferretctl {:?}\n",
            want.code, got.code
        ));
    }
    Some(d)
}

/// Compares every command line, on two threads (the machine has two
/// cores), and fails with all the differences.
fn compare_all(lines: Vec<Vec<String>>) {
    let half = lines.len().div_ceil(2);
    let diffs: Vec<String> = thread::scope(|s| {
        let workers: Vec<_> = lines
            .chunks(half.max(1))
            .map(|chunk| {
                s.spawn(move || chunk.iter().filter_map(|a| compare(a)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    assert!(
        diffs.is_empty(),
        "{} of {} command lines differ from etcdctl:{}",
        diffs.len(),
        lines.len(),
        diffs.concat()
    );
}

/// Whether etcdctl is installed; without it the test is skipped loudly,
/// or fails under CI (which installs it).
fn reference_available(test: &str) -> bool {
    if Path::new(ETCDCTL).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {ETCDCTL} is missing, and CI is set: install etcd-client");
    }
    eprintln!("\n========================================================================");
    eprintln!("SKIPPED {test}: {ETCDCTL} is not installed");
    eprintln!("(apt-get install etcd-client to run it)");
    eprintln!("========================================================================\n");
    false
}

/// Every command path of etcdctl, from its root help: the root (empty),
/// each runnable command of the COMMANDS list and each group above one.
fn command_paths() -> Vec<Vec<String>> {
    let help = run(ETCDCTL, None, &["--help".to_string()]).stdout;
    let list = help
        .split("\nCOMMANDS:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("etcdctl --help has a COMMANDS list");
    let mut paths = BTreeSet::new();
    paths.insert(Vec::new());
    for line in list.lines() {
        let name = line
            .trim_start_matches('\t')
            .split('\t')
            .next()
            .expect("a command name");
        let words: Vec<String> = name.split(' ').map(str::to_string).collect();
        for n in 1..=words.len() {
            paths.insert(words[..n].to_vec());
        }
    }
    paths.into_iter().collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn every_command_help_matches_etcdctl() {
    if !reference_available("every_command_help_matches_etcdctl") {
        return;
    }
    let paths = command_paths();
    // The root, 22 etcdctl commands and cobra's help and completion, and
    // the sub-commands of the ten groups.
    assert_eq!(paths.len(), 64, "etcdctl's command paths: {paths:?}");
    for expected in ["endpoint hashkv", "completion", "completion zsh", "help"] {
        assert!(paths.contains(&words(expected)), "{expected} is listed");
    }
    let mut lines = Vec::new();
    for p in &paths {
        let mut help_flag = p.clone();
        help_flag.push("--help".to_string());
        lines.push(help_flag);
        let mut help_cmd = vec!["help".to_string()];
        help_cmd.extend(p.iter().cloned());
        lines.push(help_cmd);
    }
    compare_all(lines);
}

#[test]
fn command_line_errors_match_etcdctl() {
    if !reference_available("command_line_errors_match_etcdctl") {
        return;
    }
    let mut lines: Vec<Vec<String>> = [
        // Unknown commands, with and without suggestions (in the order
        // etcdctl adds its commands), and ambiguous prefixes (`l` is del,
        // lease and lock; `comp` compaction and completion).
        "set a b",
        "foo",
        "l",
        "c",
        "comp",
        "hel",
        "--endpoints 127.0.0.1:1 sett a",
        "--write-out json foo",
        // Unique prefixes and `-h`.
        "me li -h",
        "-h",
        "ro grant-p -h",
        "endpoint hash --help",
        "snap rest -h",
        "snap --cluster",
        // Non-runnable groups: their help, stray words or not.
        "member",
        "member foo",
        "completion",
        "completion foo",
        "snapshot --cluster",
        // cobra's help command.
        "help",
        "help get",
        "help me li",
        "help nosuch",
        "help foo bar",
        "help member nosuch",
        "help get --prefix",
        "help -- get",
        // cobra's NoArgs of the completion scripts.
        "completion bash foo",
        "completion zsh --no-descriptions a b",
        "completion fish --no-descriptions=maybe",
        // Unknown flags, local and global, long and short.
        "get --foo a",
        "get -x a",
        "get -px a",
        "--nosuch get a",
        "member list --prefix",
        "put ---x a b",
        // Missing values.
        "get --endpoints",
        "get -w",
        "get a --consistency",
        "lock --ttl",
        // Bad int, uint, bool, duration and string slice values.
        "get --limit x a",
        "get --limit 99999999999999999999 a",
        "lock --ttl 1.5 a",
        "endpoint hashkv --rev x",
        "get --prefix=maybe a",
        "defrag --cluster=2",
        "--dial-timeout 1x get a",
        "--command-timeout -- get a",
        "user add --interactive=yes u",
    ]
    .iter()
    .map(|s| words(s))
    .collect();
    // Words with spaces and backquotes, which cobra's `%#q` quotes apart.
    lines.push(vec!["help".into(), "a b".into()]);
    lines.push(vec!["help".into(), "a`b".into(), "c\"d".into()]);
    lines.push(vec!["help".into(), "a\u{7f}".into(), "b\u{85}".into()]);
    lines.push(
        words("get --endpoints")
            .into_iter()
            .chain(["\"a".into()])
            .collect(),
    );
    compare_all(lines);
}

/// cobra's hidden `__complete` and `__completeNoDesc` (what the completion
/// scripts run): the candidates, the directive line and the stderr line,
/// for chosen lines (`''` is an empty word: the partial word the shell
/// sends for a fresh one) and, for every command path, the sub-commands
/// and the flag names.
#[test]
fn complete_requests_match_etcdctl() {
    if !reference_available("complete_requests_match_etcdctl") {
        return;
    }
    let chosen = [
        "__complete ''",
        "__completeNoDesc ''",
        "__complete g",
        "__complete m",
        "__complete me",
        "__complete mem ''",
        "__complete member ''",
        "__complete member l",
        "__complete member list ''",
        "__complete member list -",
        "__complete member list --",
        "__complete member list --h",
        "__complete member list -w ''",
        "__complete member list -w j",
        "__complete member list --write-out=j",
        "__complete member list --hex ''",
        "__complete member list --hex=",
        "__complete get ''",
        "__complete get -",
        "__completeNoDesc get -",
        "__complete get --p",
        "__complete get --prefix --p",
        "__complete get --prefix -",
        "__complete get --endpoints x -",
        "__complete get --endpoints=x -",
        "__complete get a ''",
        "__complete get a -",
        "__complete get -- -",
        "__complete get -- ''",
        "__complete -- ''",
        "__complete -- -",
        "__complete nosuch ''",
        "__complete get --foo=",
        "__complete get --foo ''",
        "__complete get --foo=x -",
        "__complete get --bogus ''",
        "__complete get -h ''",
        "__complete --help ''",
        "__complete -h -",
        "__complete help ''",
        "__complete help m",
        "__complete help member ''",
        "__complete help member li",
        "__complete help nosuch ''",
        "__complete help get ''",
        "__complete completion ''",
        "__complete completion b",
        "__complete completion bash ''",
        "__complete completion bash -",
        "__complete completion fish --no-descriptions ''",
        "__complete --endpoints x ''",
        "__complete --endpoints ''",
        "__complete --debug ''",
        "__complete --debug=",
        "__complete -w ''",
        "__complete -w=",
        "__complete --w=",
        "__complete --x=",
        "__complete -",
        "__complete --",
        "__complete ---",
        "__complete --=",
        "__complete -=",
        "__complete lease ''",
        "__complete lease grant -",
        "__complete snap ''",
        "__complete snapshot save -",
        "__complete auth ''",
        "__complete user add -",
        "__complete role grant-permission -",
        "__complete txn -",
        "__complete watch -",
        "__complete lock -",
        "__complete elect -",
        "__complete check ''",
        "__complete check perf -",
        "__complete make-mirror -",
        "__complete put k v -",
        "__complete del -",
        "__complete endpoint status --cluster -",
        "__complete endpoint --cluster ''",
        "__complete get --rev x ''",
        "__complete get --limit 3 --limit ''",
        "__complete get --endpoints a --endpoints b -",
        "__complete -d x get -",
        "__complete get é=",
        "__complete get -é=",
        "__complete version ''",
        "__complete defrag -",
        "__complete alarm ''",
        "__complete move-leader ''",
        "__completeNoDesc member ''",
        "__completeNoDesc get --",
        "__completeNoDesc help ''",
        "__complete get -é",
        "__complete get --é ''",
        "__complete get -xé ''",
        "__complete a-é ''",
        "__complete get a-b ''",
        "__complete help -",
        "__complete help --",
        "__complete help get -",
        "__complete completion --no-descriptions ''",
        "__complete completion bash --no-descriptions -",
        "__complete get --consistency=s ''",
        "__complete get --prefix=true -",
        "__complete member list --help ''",
        "__complete get --endpoints",
    ];
    let mut lines: Vec<Vec<String>> = chosen
        .iter()
        .map(|l| {
            l.split_whitespace()
                .map(|w| {
                    if w == "''" {
                        String::new()
                    } else {
                        w.to_string()
                    }
                })
                .collect()
        })
        .collect();
    for path in command_paths() {
        for (req, last) in [
            ("__complete", ""),
            ("__complete", "-"),
            ("__completeNoDesc", ""),
            ("__complete", "--h"),
        ] {
            let mut l = vec![req.to_string()];
            l.extend(path.iter().cloned());
            l.push(last.to_string());
            lines.push(l);
        }
    }
    // The scripts that run them, with and without descriptions.
    for shell in ["bash", "zsh", "fish", "powershell"] {
        lines.push(words(&format!("completion {shell}")));
        lines.push(words(&format!("completion {shell} --no-descriptions")));
    }
    assert!(lines.len() > 300);
    compare_all(lines);
}

/// etcdctl v2's command names, from its own help (`ETCDCTL_API=2 etcdctl
/// --help`, the COMMANDS block), but cobra's `help`.
fn v2_command_names() -> Vec<String> {
    let help = run(ETCDCTL, Some("2"), &words("--help")).stdout;
    help.lines()
        .skip_while(|l| !l.starts_with("COMMANDS:"))
        .skip(1)
        .take_while(|l| l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.trim_end_matches(',').to_string())
        .filter(|n| n != "help")
        .collect()
}

#[test]
fn without_etcdctl_api_ferretctl_speaks_v3_and_hints_at_v2() {
    if !reference_available("without_etcdctl_api_ferretctl_speaks_v3_and_hints_at_v2") {
        return;
    }
    let ferretctl = env!("CARGO_BIN_EXE_ferretctl");
    // The default is v3: the same as etcdctl with the variable unset.
    for line in ["--help", "get", "put --help", "nosuch", "snapshot --help"] {
        let args = words(line);
        assert_eq!(
            run(ferretctl, None, &args),
            run(ETCDCTL, None, &args),
            "{line}"
        );
    }
    let names = v2_command_names();
    assert!(
        names.len() >= 17,
        "v2 commands from etcdctl's help: {names:?}"
    );
    const HINT: &str = "hint: this is an etcdctl v2 command; run it with ETCDCTL_API=2\n";
    let mut hinted = 0;
    for name in &names {
        // (A flag no command has: no server is asked.)
        let args = vec![name.clone(), "--no-such-flag".to_string()];
        let want = run(ETCDCTL, None, &args);
        // Chosen explicitly, v3 is etcdctl's exactly.
        assert_eq!(
            run(ferretctl, Some("3"), &args),
            want,
            "ETCDCTL_API=3 {name}"
        );
        let got = run(ferretctl, None, &args);
        if want
            .stderr
            .starts_with(&format!("Error: unknown command \"{name}\""))
        {
            // A v2-only name: etcdctl's error, then the hint.
            hinted += 1;
            assert_eq!(got.stdout, want.stdout, "{name}");
            assert_eq!(got.code, want.code, "{name}");
            assert_eq!(got.stderr, format!("{}{HINT}", want.stderr), "{name}");
        } else {
            // A name v3 has too (get, watch, member, ...) is v3's.
            assert_eq!(got, want, "{name}");
        }
    }
    assert!(hinted >= 12, "{hinted} v2-only names hinted");
}
