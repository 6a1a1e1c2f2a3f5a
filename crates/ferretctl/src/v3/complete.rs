//! cobra 1.6.1's hidden `__complete` and `__completeNoDesc` commands, which
//! the `completion` scripts run: `etcdctl __complete <words...> <partial>`
//! prints the candidates for the partial word (one a line, `name\tdescription`
//! unless `__completeNoDesc`), then `:<directive>`, and on stderr
//! `Completion ended with directive: ...`.
//!
//! The rules follow cobra's `completions.go` (Apache-2.0) as etcdctl meets
//! them: its commands and flags have no `ValidArgs`, no completion
//! functions, no required or hidden flags; cobra's own `help` completes
//! command names, `completion` and its shells complete nothing (and no
//! files). Candidates are sub-commands (sorted by name, when no positional
//! word and no local flag precede), or flag names (inherited ones first,
//! each set sorted by name; a flag already set is left out unless it is a
//! slice) when the partial word starts with `-` before any `--`.

use super::cli::{find, flag_sets, parse_flags, Command, Flag, Kind};

/// cobra's `ShellCompDirective`s ferretctl's tree can give.
const DEFAULT: u32 = 0;
const NO_SPACE: u32 = 2;
const NO_FILE_COMP: u32 = 4;

/// cobra's `ShellCompDirective.string()` for the values above.
fn directive_name(d: u32) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (1, "ShellCompDirectiveError"),
        (NO_SPACE, "ShellCompDirectiveNoSpace"),
        (NO_FILE_COMP, "ShellCompDirectiveNoFileComp"),
        (8, "ShellCompDirectiveFilterFileExt"),
        (16, "ShellCompDirectiveFilterDirs"),
    ] {
        if d & bit != 0 {
            names.push(name);
        }
    }
    if names.is_empty() {
        names.push("ShellCompDirectiveDefault");
    }
    names.join(", ")
}

/// What a completion request printed.
pub struct Reply {
    pub stdout: String,
    pub stderr: Vec<u8>,
}

/// pflag's "is this word a flag" test of cobra's `isFlagArg` (its bytes,
/// quirks and all: any word of 3 bytes or more whose second is `-`).
fn is_flag_arg(arg: &str) -> bool {
    let b = arg.as_bytes();
    (b.len() >= 3 && b[1] == b'-') || (b.len() >= 2 && b[0] == b'-' && b[1] != b'-')
}

/// cobra's `findFlag`: a one-byte name is a shorthand. Names are bytes:
/// cobra cuts a shorthand as the byte before `=` (or the last one).
fn find_flag(path: &[&Command], name: &[u8]) -> Option<Flag> {
    let (local, inherited) = flag_sets(path);
    if let [b] = name {
        return local
            .iter()
            .chain(&inherited)
            .find(|f| f.short.is_some_and(|c| c.is_ascii() && c as u8 == *b))
            .cloned();
    }
    local
        .into_iter()
        .chain(inherited)
        .find(|f| f.name.as_bytes() == name)
}

/// The result of cobra's `checkIfFlagCompletion`.
struct FlagCheck {
    /// The flag whose value is being completed.
    flag: Option<Flag>,
    args: Vec<String>,
    to_complete: String,
    /// cobra's `flagCompError` (bytes: the name may be part of a rune).
    error: Option<Vec<u8>>,
}

fn check_flag_completion(path: &[&Command], args: &[String], last: &str) -> FlagCheck {
    let mut name: Vec<u8> = Vec::new();
    let mut trimmed = args.to_vec();
    let mut with_equal = false;
    let mut to_complete = last.to_string();
    if last.starts_with('-') {
        let Some(at) = last.find('=') else {
            return FlagCheck {
                flag: None,
                args: args.to_vec(),
                to_complete,
                error: None,
            };
        };
        let head = &last[..at];
        name = match head.strip_prefix("--") {
            Some(n) => n.as_bytes().to_vec(),
            None => head.as_bytes()[at - 1..].to_vec(),
        };
        to_complete = last[at + 1..].to_string();
        with_equal = true;
    }
    if name.is_empty() {
        if let Some(prev) = args.last() {
            if is_flag_arg(prev) && !prev.contains('=') {
                name = match prev.strip_prefix("--") {
                    Some(n) => n.as_bytes().to_vec(),
                    None => prev.as_bytes()[prev.len() - 1..].to_vec(),
                };
                trimmed = args[..args.len() - 1].to_vec();
            }
        }
    }
    if name.is_empty() {
        return FlagCheck {
            flag: None,
            args: trimmed,
            to_complete,
            error: None,
        };
    }
    let cmd_name = path.last().map(|c| c.name).unwrap_or("");
    let Some(flag) = find_flag(path, &name) else {
        return FlagCheck {
            flag: None,
            args: args.to_vec(),
            to_complete: last.to_string(),
            error: Some(
                [
                    format!("Subcommand '{cmd_name}' does not support flag '").as_bytes(),
                    &name,
                    b"'",
                ]
                .concat(),
            ),
        };
    };
    if !with_equal && flag.kind == Kind::Bool {
        return FlagCheck {
            flag: None,
            args: args.to_vec(),
            to_complete,
            error: None,
        };
    }
    FlagCheck {
        flag: Some(flag),
        args: trimmed,
        to_complete,
        error: None,
    }
}

/// A flag's name candidates (`--name` and `-s`) for `partial`.
fn flag_names(f: &Flag, cmd: &Command, partial: &str, out: &mut Vec<String>) {
    let usage = if f.name == "help" && f.usage.is_empty() {
        format!("help for {}", cmd.name)
    } else {
        f.usage.to_string()
    };
    let long = format!("--{}", f.name);
    if long.starts_with(partial) {
        out.push(format!("{long}\t{usage}"));
    }
    if let Some(c) = f.short {
        let short = format!("-{c}");
        if short.starts_with(partial) {
            out.push(format!("{short}\t{usage}"));
        }
    }
}

/// The sub-commands of `cmd` that start with `partial`, sorted by name.
fn sub_names(cmd: &Command, partial: &str) -> Vec<String> {
    let mut subs: Vec<&Command> = cmd.subs.iter().collect();
    subs.sort_by_key(|c| c.name);
    subs.iter()
        .filter(|c| c.name.starts_with(partial))
        .map(|c| format!("{}\t{}", c.name, c.short))
        .collect()
}

/// The candidates, the directive, and cobra's error message if any.
fn candidates(root: &Command, args: &[String]) -> (Vec<String>, u32, Option<Vec<u8>>) {
    let (last, words) = match args.split_last() {
        Some((l, w)) => (l.as_str(), w),
        None => ("", args),
    };
    let Ok((path, rest)) = find(root, words) else {
        return (
            Vec::new(),
            DEFAULT,
            Some(
                format!(
                    "Unable to find a command for arguments: [{}]",
                    words.join(" ")
                )
                .into_bytes(),
            ),
        );
    };
    let cmd = *path.last().unwrap_or(&root);
    let check = check_flag_completion(&path, &rest, last);
    let partial = check.to_complete.as_str();
    let mut with_dd = check.args.clone();
    with_dd.push("--".to_string());
    let new_count = parse_flags(&path, &with_dd).map(|p| p.positional.len());
    let parsed = match parse_flags(&path, &check.args) {
        Ok(p) => p,
        Err(e) => {
            return (
                Vec::new(),
                DEFAULT,
                Some(
                    format!(
                        "Error while parsing flags from args [{}]: {e}",
                        check.args.join(" ")
                    )
                    .into_bytes(),
                ),
            )
        }
    };
    let flag_completion = !matches!(new_count, Ok(n) if n > parsed.positional.len());
    if let (Some(e), true) = (check.error, flag_completion) {
        return (Vec::new(), DEFAULT, Some(e));
    }
    let changed = |name: &str| parsed.values.get(name).is_some_and(|(_, c)| *c);
    if parsed.help || changed("help") {
        return (Vec::new(), NO_FILE_COMP, None);
    }
    let positional = &parsed.positional;
    let mut out = Vec::new();
    if check.flag.is_none() && partial.starts_with('-') && !partial.contains('=') && flag_completion
    {
        let (mut local, mut inherited) = flag_sets(&path);
        inherited.sort_by_key(|f| f.name);
        local.sort_by_key(|f| f.name);
        for f in inherited.iter().chain(&local) {
            if !changed(f.name) || f.kind == Kind::StrSlice {
                flag_names(f, cmd, partial, &mut out);
            }
        }
        let directive = if out.len() == 1 && out[0].ends_with('=') {
            NO_SPACE
        } else {
            NO_FILE_COMP
        };
        return (out, directive, None);
    }
    let mut directive = DEFAULT;
    if check.flag.is_none() {
        let local_set = cmd.flags.iter().any(|f| changed(f.name));
        if positional.is_empty() && !local_set && !cmd.subs.is_empty() {
            out.extend(sub_names(cmd, partial));
            directive = NO_FILE_COMP;
        }
    }
    if !(check.flag.is_some() && flag_completion) {
        // cobra's own commands' `ValidArgsFunction`s.
        let is_completion =
            path.len() >= 2 && path[1].name == "completion" && std::ptr::eq(path[0], root);
        let is_help = path.len() == 2 && path[1].name == "help";
        if is_completion {
            directive = NO_FILE_COMP;
        } else if is_help {
            if let Ok((p, _)) = find(root, positional) {
                out.extend(sub_names(p.last().copied().unwrap_or(root), partial));
            }
            directive = NO_FILE_COMP;
        }
    }
    (out, directive, None)
}

/// Answers `__complete` (`descriptions`) or `__completeNoDesc` for `args`
/// (the words after it; at least one).
pub fn complete(root: &Command, args: &[String], descriptions: bool) -> Reply {
    let (comps, directive, error) = candidates(root, args);
    let mut stdout = String::new();
    let mut stderr = Vec::new();
    if let Some(e) = error {
        stderr.extend_from_slice(b"[Debug] [Error] ");
        stderr.extend_from_slice(&e);
        stderr.push(b'\n');
    }
    for comp in comps {
        let mut c = comp.as_str();
        if !descriptions {
            c = c.split('\t').next().unwrap_or("");
        }
        c = c.split('\n').next().unwrap_or("").trim();
        stdout.push_str(c);
        stdout.push('\n');
    }
    stdout.push_str(&format!(":{directive}\n"));
    stderr.extend_from_slice(
        format!(
            "Completion ended with directive: {}\n",
            directive_name(directive)
        )
        .as_bytes(),
    );
    Reply { stdout, stderr }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::tree::root;

    fn ask(line: &[&str]) -> Reply {
        let args: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        complete(&root(), &args, true)
    }

    #[test]
    fn sub_commands_and_flags() {
        let r = ask(&["member", ""]);
        assert!(r
            .stdout
            .starts_with("add\tAdds a member into the cluster\n"));
        assert!(r.stdout.ends_with(":4\n"));
        let r = ask(&["get", "--pre"]);
        assert!(r.stdout.starts_with("--prefix\t"));
        let r = ask(&["get", "--", "-"]);
        assert_eq!(r.stdout, ":0\n");
    }

    #[test]
    fn odd_words_do_not_panic() {
        for line in [
            &[""][..],
            &["-"],
            &["--="],
            &["-="],
            &["-\u{e9}="],
            &["\u{e9}-", ""],
            &["get", "-\u{e9}", ""],
            &["get", "--", "--", "-"],
            &["help", "help", "help", ""],
            &["---", "-"],
        ] {
            let r = ask(line);
            assert!(r.stdout.ends_with('\n'));
        }
    }
}
