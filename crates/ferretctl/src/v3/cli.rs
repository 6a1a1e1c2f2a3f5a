//! The command line machinery of etcdctl v3: cobra's command tree and
//! pflag's flags, as Debian's etcdctl 3.4.23 is built with them, and
//! etcdctl's own help template.
//!
//! What shows to a user is reproduced: how a command is found (exact
//! name, else a unique prefix: etcdctl turns cobra's prefix matching on),
//! how flags are read (`--name=value`, `--name value`, `-n value`, `-nvalue`,
//! bools without a value, flags anywhere among the arguments, `--` ending
//! them), the errors of both and their exit code, the suggestions for an
//! unknown command, and the help text, aligned by Go's `text/tabwriter`.

use std::collections::BTreeMap;
use std::time::Duration;

use ferret_gocompat::strconv::{self, quote};
use ferret_gocompat::tabwriter;
use ferret_gocompat::time::{format_duration, parse_duration};

/// The etcdctl version ferretctl answers to.
pub const VERSION: &str = "3.4.23";
/// The API version etcdctl 3.4 prints.
pub const API_VERSION: &str = "3.4";

/// etcdctl's exit codes (`command/error.go`).
pub mod exit {
    pub const ERROR: i32 = 1;
    pub const BAD_CONNECTION: i32 = 2;
    pub const INVALID_INPUT: i32 = 3;
    pub const BAD_FEATURE: i32 = 4;
    pub const INTERRUPTED: i32 = 5;
    pub const BAD_ARGS: i32 = 128;
}

/// What ends a command early: etcdctl's `ExitWithError(code, err)`, which
/// prints `Error: <msg>` to stderr and exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub msg: String,
}

impl Exit {
    pub fn new(code: i32, msg: impl Into<String>) -> Exit {
        Exit {
            code,
            msg: msg.into(),
        }
    }
}

/// The kinds of pflag values etcdctl uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    /// Go `int` and `int64`: `strconv.ParseInt(s, 0, 64)`.
    Int,
    Duration,
    /// `StringSlice`: comma-separated values; the first use replaces the
    /// default, later uses append.
    StrSlice,
}

impl Kind {
    /// pflag's `Value.Type()`, which etcdctl's help quotes only for "string".
    fn is_string(self) -> bool {
        self == Kind::Str
    }
}

/// A flag definition.
#[derive(Clone, Debug)]
pub struct Flag {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// The default, as pflag's `DefValue` spells it (`"2s"`, `"false"`,
    /// `"[127.0.0.1:2379]"` for a slice).
    pub default: &'static str,
    pub usage: &'static str,
}

impl Flag {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        usage: &'static str,
    ) -> Flag {
        Flag {
            name,
            short: None,
            kind,
            default,
            usage,
        }
    }

    pub const fn bool(name: &'static str, usage: &'static str) -> Flag {
        Flag::new(name, Kind::Bool, "false", usage)
    }

    pub const fn short(mut self, c: char) -> Flag {
        self.short = Some(c);
        self
    }

    /// pflag's `NoOptDefVal`: bools take `true` when given without a value.
    fn no_opt(&self) -> Option<&'static str> {
        (self.kind == Kind::Bool).then_some("true")
    }
}

/// A parsed flag value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Str(String),
    Int(i64),
    Duration(Duration),
    StrSlice(Vec<String>),
}

/// The run function of a command: flags and the arguments left.
pub type RunFn = fn(&Invocation) -> Result<(), Exit>;

/// A command of the tree (cobra's `Command`).
pub struct Command {
    pub name: &'static str,
    /// What follows the name in cobra's `Use` (`"[options] <key> [range_end]"`).
    pub args_usage: &'static str,
    pub short: &'static str,
    pub long: &'static str,
    pub flags: Vec<Flag>,
    /// Flags this command and all below it take (cobra's persistent flags).
    pub persistent: Vec<Flag>,
    /// Sorted by name, as cobra lists them; `added` keeps the order they
    /// were added in.
    pub subs: Vec<Command>,
    pub run: Option<RunFn>,
    pub suggest_for: &'static [&'static str],
    /// cobra's `Args: NoArgs`: any argument is an error (`unknown command`).
    pub no_args: bool,
    /// cobra's `DisableFlagsInUseLine`: no ` [flags]` after the usage line.
    pub disable_flags_in_use_line: bool,
    /// Where this command was added among its parent's sub-commands
    /// (cobra suggests commands in that order).
    added: usize,
}

impl Command {
    pub fn new(name: &'static str, args_usage: &'static str, short: &'static str) -> Command {
        Command {
            name,
            args_usage,
            short,
            long: "",
            flags: Vec::new(),
            persistent: Vec::new(),
            subs: Vec::new(),
            run: None,
            suggest_for: &[],
            no_args: false,
            disable_flags_in_use_line: false,
            added: 0,
        }
    }

    pub fn long(mut self, long: &'static str) -> Command {
        self.long = long;
        self
    }

    pub fn flags(mut self, flags: Vec<Flag>) -> Command {
        self.flags.extend(flags);
        self
    }

    pub fn persistent(mut self, flags: Vec<Flag>) -> Command {
        self.persistent.extend(flags);
        self
    }

    /// Adds sub-commands, after those already added.
    pub fn subs(mut self, subs: Vec<Command>) -> Command {
        let base = self.subs.len();
        for (i, mut c) in subs.into_iter().enumerate() {
            c.added = base + i;
            self.subs.push(c);
        }
        self.subs.sort_by_key(|c| c.name);
        self
    }

    pub fn run(mut self, run: RunFn) -> Command {
        self.run = Some(run);
        self
    }

    pub fn suggest_for(mut self, words: &'static [&'static str]) -> Command {
        self.suggest_for = words;
        self
    }

    /// cobra's `Args: NoArgs`.
    pub fn no_args(mut self) -> Command {
        self.no_args = true;
        self
    }

    /// cobra's `DisableFlagsInUseLine`.
    pub fn disable_flags_in_use_line(mut self) -> Command {
        self.disable_flags_in_use_line = true;
        self
    }

    /// cobra's `-h, --help`, whose usage (`help for <name>`) the help
    /// text fills in.
    fn help_flag(&self) -> Flag {
        Flag::bool("help", "").short('h')
    }

    /// The sub-command `word` names: its exact name, else the only one it
    /// is a prefix of.
    fn find_sub(&self, word: &str) -> Option<usize> {
        if let Some(i) = self.subs.iter().position(|c| c.name == word) {
            return Some(i);
        }
        let prefixed: Vec<usize> = (0..self.subs.len())
            .filter(|&i| self.subs[i].name.starts_with(word))
            .collect();
        (prefixed.len() == 1).then(|| prefixed[0])
    }

    /// cobra's `SuggestionsFor`: names within Levenshtein distance 2
    /// (case-insensitive), names `word` is a prefix of, and names that
    /// list `word` among their suggestions, in the order the commands were
    /// added; never cobra's `help` command (not an "available" command).
    fn suggestions(&self, word: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut subs: Vec<&Command> = self.subs.iter().filter(|c| c.name != "help").collect();
        subs.sort_by_key(|c| c.added);
        for c in subs {
            let lower = word.to_lowercase();
            let near = levenshtein(&lower, &c.name.to_lowercase()) <= 2;
            if near || c.name.to_lowercase().starts_with(&lower) {
                out.push(c.name);
            }
            for s in c.suggest_for {
                if s.eq_ignore_ascii_case(word) {
                    out.push(c.name);
                }
            }
        }
        out
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A command found and its flags parsed: what its run function gets.
#[derive(Clone)]
pub struct Invocation<'a> {
    pub root: &'a Command,
    /// The command and its ancestors, root first.
    pub path: Vec<&'a Command>,
    values: BTreeMap<&'static str, (Value, bool)>,
    /// The flags inherited from ancestors (for `ETCDCTL_*` variables).
    inherited: Vec<Flag>,
    pub args: Vec<String>,
    /// The whole command line as given (without the program name).
    pub raw: Vec<String>,
}

impl Invocation<'_> {
    pub fn command(&self) -> &Command {
        self.path.last().copied().unwrap_or(self.root)
    }

    /// Space-separated names from the root (cobra's `CommandPath`).
    pub fn command_path(&self) -> String {
        self.path
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name).map(|(v, _)| v)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.value(name), Some(Value::Bool(true)))
    }

    pub fn str(&self, name: &str) -> String {
        match self.value(name) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        }
    }

    pub fn duration(&self, name: &str) -> Duration {
        match self.value(name) {
            Some(Value::Duration(d)) => *d,
            _ => Duration::ZERO,
        }
    }

    pub fn strs(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::StrSlice(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// The inherited flags as `ETCDCTL_<NAME>=<value>` pairs, sorted by
    /// name, as etcdctl's `--debug` prints them.
    pub fn inherited_for_debug(&self) -> Vec<(String, String)> {
        let mut flags: Vec<&Flag> = self.inherited.iter().collect();
        flags.sort_by_key(|f| f.name);
        flags
            .into_iter()
            .map(|f| {
                let v = match self.value(f.name) {
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::Str(s)) => s.clone(),
                    Some(Value::Int(i)) => i.to_string(),
                    Some(Value::Duration(d)) => format_duration(*d),
                    Some(Value::StrSlice(v)) => format!("[{}]", v.join(",")),
                    None => String::new(),
                };
                (env_key(f.name), v)
            })
            .collect()
    }

    /// Whether the flag was given (pflag's `Changed`).
    pub fn changed(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|(_, c)| *c)
    }

    /// etcd's `flags.SetPflagsFromEnv("ETCDCTL", cmd.InheritedFlags())`:
    /// an `ETCDCTL_<FLAG>` variable sets an inherited flag that was not
    /// given; one that was given too is fatal (etcd's logger, exit 1).
    /// A value that does not parse is ignored, as etcdctl ignores the
    /// error. `env` is the environment (a parameter for the tests).
    /// Returns the warnings to print (unknown `ETCDCTL_*` variables).
    pub fn apply_env(&mut self, env: &[(String, String)]) -> Result<Vec<String>, Exit> {
        let mut used = Vec::new();
        let mut shadowed = Vec::new();
        for f in self.inherited.clone() {
            let key = env_key(f.name);
            if self.changed(f.name) {
                shadowed.push(key);
                continue;
            }
            if let Some((_, v)) = env.iter().find(|(k, v)| *k == key && !v.is_empty()) {
                used.push(key);
                let old = self.values.get(f.name).map(|(v, _)| v.clone());
                if let Ok(v) = set_value(&f, old.as_ref(), false, v) {
                    self.values.insert(f.name, (v, true));
                }
            }
        }
        let mut warnings = Vec::new();
        for (k, v) in env {
            if used.contains(k) {
                continue;
            }
            if shadowed.contains(k) {
                return Err(Exit::new(
                    exit::ERROR,
                    format!(
                        "conflicting environment variable {} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)",
                        quote(k)
                    ),
                ));
            }
            if k.starts_with("ETCDCTL_") {
                warnings.push(format!("unrecognized environment variable {k}={v}"));
            }
        }
        Ok(warnings)
    }
}

/// `ETCDCTL_` and the flag's name in capitals, `-` as `_`.
pub fn env_key(flag: &str) -> String {
    format!("ETCDCTL_{}", flag.replace('-', "_").to_uppercase())
}

/// pflag's `Value.Set`: the new value, or the reason it is refused (the
/// text after `invalid argument "x" for "--f" flag: `).
fn set_value(f: &Flag, old: Option<&Value>, changed: bool, s: &str) -> Result<Value, String> {
    Ok(match f.kind {
        Kind::Bool => {
            Value::Bool(strconv::parse_bool(s).ok_or_else(|| {
                format!("strconv.ParseBool: parsing {}: invalid syntax", quote(s))
            })?)
        }
        Kind::Str => Value::Str(s.to_string()),
        Kind::Int => Value::Int(strconv::parse_int(s, 0).map_err(|e| e.to_string())?),
        Kind::Duration => {
            let ns = parse_duration(s)?;
            Value::Duration(Duration::from_nanos(ns.max(0) as u64))
        }
        Kind::StrSlice => {
            let mut items = read_csv_line(s)?;
            if changed {
                if let Some(Value::StrSlice(prev)) = old {
                    let mut all = prev.clone();
                    all.append(&mut items);
                    items = all;
                }
            }
            Value::StrSlice(items)
        }
    })
}

/// The default of a flag as a value.
fn default_value(f: &Flag) -> Value {
    match f.kind {
        Kind::StrSlice => {
            let inner = f.default.trim_start_matches('[').trim_end_matches(']');
            Value::StrSlice(if inner.is_empty() {
                Vec::new()
            } else {
                inner.split(',').map(str::to_string).collect()
            })
        }
        _ => set_value(f, None, false, f.default).unwrap_or(Value::Str(String::new())),
    }
}

/// One line of Go's `encoding/csv` (how pflag reads a string slice):
/// fields split at commas, a field in double quotes may hold commas and
/// `""` for a quote.
fn read_csv_line(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            s.len() + 1
                        ))
                    }
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => {
                    return Err(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    s.len()
                ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field);
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// How a command line ended without running a command.
pub enum Outcome<'a> {
    /// Run this command.
    Run(Invocation<'a>),
    /// Print this to stdout and exit 0 (help).
    Help(String),
    /// cobra's error: `stderr` to print, `stdout` (the usage, for flag
    /// errors), then etcdctl prints `Error: <msg>` again and exits 1.
    /// `flag_error` tells a flag error (after which cobra prints the
    /// command's usage) from a command not found.
    Error {
        stdout: String,
        stderr: String,
        msg: String,
        flag_error: Option<Vec<&'a Command>>,
    },
}

/// The flags a command parses: its own, its persistent ones, its
/// ancestors' persistent ones, and help; and which of those are inherited.
pub fn flag_sets(path: &[&Command]) -> (Vec<Flag>, Vec<Flag>) {
    let me = path.last().copied();
    let mut local: Vec<Flag> = Vec::new();
    if let Some(c) = me {
        local.extend(c.flags.iter().cloned());
        local.extend(c.persistent.iter().cloned());
    }
    let mut inherited: Vec<Flag> = Vec::new();
    for c in &path[..path.len().saturating_sub(1)] {
        for f in &c.persistent {
            if !local.iter().any(|l| l.name == f.name)
                && !inherited.iter().any(|l| l.name == f.name)
            {
                inherited.push(f.clone());
            }
        }
    }
    if let Some(c) = me {
        if !local.iter().chain(&inherited).any(|f| f.name == "help") {
            local.push(c.help_flag());
        }
    }
    (local, inherited)
}

/// cobra's `stripFlags`: the words of `args` that are not flags or their
/// values, as cobra guesses them while looking for a sub-command.
fn strip_flags(args: &[String], flags: &[Flag]) -> Vec<String> {
    let takes_value_long = |name: &str| {
        flags
            .iter()
            .find(|f| f.name == name)
            .is_none_or(|f| f.no_opt().is_none())
    };
    let takes_value_short = |c: char| {
        flags
            .iter()
            .find(|f| f.short == Some(c))
            .is_none_or(|f| f.no_opt().is_none())
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s == "--" {
            break;
        }
        let long_with_value = s.starts_with("--") && !s.contains('=') && takes_value_long(&s[2..]);
        let short_with_value = s.starts_with('-')
            && !s.starts_with("--")
            && !s.contains('=')
            && s.chars().count() == 2
            && takes_value_short(s.chars().nth(1).unwrap_or('-'));
        if long_with_value || short_with_value {
            if args.len() - i <= 1 {
                break;
            }
            i += 1;
            continue;
        }
        if !s.is_empty() && !s.starts_with('-') {
            out.push(s.clone());
        }
    }
    out
}

/// cobra's `Find`: the command `args` name (its path, root first) and the
/// arguments left, or cobra's error for a stray word after the root
/// (`unknown command "x" for "etcdctl"` and the suggestions).
pub fn find<'a>(
    root: &'a Command,
    args: &[String],
) -> Result<(Vec<&'a Command>, Vec<String>), String> {
    // Walk down while the first non-flag word names a sub-command.
    let mut path: Vec<&Command> = vec![root];
    let mut rest: Vec<String> = args.to_vec();
    loop {
        let cur = *path.last().unwrap_or(&root);
        let (local, inherited) = flag_sets(&path);
        let all: Vec<Flag> = local.into_iter().chain(inherited).collect();
        let words = strip_flags(&rest, &all);
        let Some(word) = words.first() else { break };
        let Some(i) = cur.find_sub(word) else { break };
        if let Some(at) = rest.iter().position(|a| a == word) {
            rest.remove(at);
        }
        path.push(&cur.subs[i]);
    }
    let cmd = *path.last().unwrap_or(&root);
    // cobra's legacyArgs: the root takes no stray words.
    if path.len() == 1 && !cmd.subs.is_empty() {
        let (local, inherited) = flag_sets(&path);
        let all: Vec<Flag> = local.into_iter().chain(inherited).collect();
        if let Some(word) = strip_flags(&rest, &all).first() {
            let mut msg = format!("unknown command {} for {}", quote(word), quote(root.name));
            let sugg = cmd.suggestions(word);
            if !sugg.is_empty() {
                msg.push_str("\n\nDid you mean this?\n");
                for s in sugg {
                    msg.push_str(&format!("\t{s}\n"));
                }
            }
            return Err(msg);
        }
    }
    Ok((path, rest))
}

/// What [`parse_flags`] found: every flag's value and whether it was
/// set, the inherited flags, the positional words, and `--help`.
pub struct Parsed {
    pub values: BTreeMap<&'static str, (Value, bool)>,
    pub inherited: Vec<Flag>,
    pub positional: Vec<String>,
    pub help: bool,
}

/// pflag's parse of `rest` against the flags of `path`'s last command,
/// or pflag's error message.
pub fn parse_flags(path: &[&Command], rest: &[String]) -> Result<Parsed, String> {
    let (local, inherited) = flag_sets(path);
    let mut values: BTreeMap<&'static str, (Value, bool)> = BTreeMap::new();
    for f in local.iter().chain(&inherited) {
        values.insert(f.name, (default_value(f), false));
    }
    let all: Vec<Flag> = local.iter().chain(&inherited).cloned().collect();
    let mut positional = Vec::new();
    let mut help = false;
    let mut i = 0;
    let set = |f: &Flag, v: &str, values: &mut BTreeMap<&'static str, (Value, bool)>| {
        let (old, changed) = values
            .get(f.name)
            .map(|(v, c)| (Some(v.clone()), *c))
            .unwrap_or((None, false));
        match set_value(f, old.as_ref(), changed, v) {
            Ok(nv) => {
                values.insert(f.name, (nv, true));
                Ok(())
            }
            Err(why) => {
                let name = match f.short {
                    Some(c) => format!("-{c}, --{}", f.name),
                    None => format!("--{}", f.name),
                };
                Err(format!(
                    "invalid argument {} for {} flag: {why}",
                    quote(v),
                    quote(&name)
                ))
            }
        }
    };
    while i < rest.len() {
        let s = rest[i].clone();
        i += 1;
        if s.len() < 2 || !s.starts_with('-') {
            positional.push(s);
            continue;
        }
        if s == "--" {
            positional.extend(rest[i..].iter().cloned());
            break;
        }
        if let Some(body) = s.strip_prefix("--") {
            if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
                return Err(format!("bad flag syntax: {s}"));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let Some(f) = all.iter().find(|f| f.name == name) else {
                if name == "help" {
                    help = true;
                    continue;
                }
                return Err(format!("unknown flag: --{name}"));
            };
            let value = match (inline, f.no_opt()) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) if i < rest.len() => {
                    i += 1;
                    rest[i - 1].clone()
                }
                (None, None) => return Err(format!("flag needs an argument: {s}")),
            };
            set(f, &value, &mut values)?;
            continue;
        }
        // Short flags, possibly several in one word (`-hw json`).
        let shorts: Vec<char> = s[1..].chars().collect();
        let mut k = 0;
        while k < shorts.len() {
            let c = shorts[k];
            let rest_word: String = shorts[k..].iter().collect();
            let Some(f) = all.iter().find(|f| f.short == Some(c)) else {
                if c == 'h' {
                    help = true;
                    k += 1;
                    continue;
                }
                return Err(format!(
                    "unknown shorthand flag: {} in -{rest_word}",
                    go_quote_rune(c)
                ));
            };
            let value = if shorts.len() > k + 2 && shorts[k + 1] == '=' {
                let v: String = shorts[k + 2..].iter().collect();
                k = shorts.len();
                v
            } else if let Some(d) = f.no_opt() {
                k += 1;
                d.to_string()
            } else if shorts.len() > k + 1 {
                let v: String = shorts[k + 1..].iter().collect();
                k = shorts.len();
                v
            } else if i < rest.len() {
                i += 1;
                k += 1;
                rest[i - 1].clone()
            } else {
                return Err(format!(
                    "flag needs an argument: {} in -{rest_word}",
                    go_quote_rune(c)
                ));
            };
            set(f, &value, &mut values)?;
        }
    }
    Ok(Parsed {
        values,
        inherited,
        positional,
        help,
    })
}

/// Parses `args` (without the program name) against the tree.
pub fn parse<'a>(root: &'a Command, args: &[String]) -> Outcome<'a> {
    let (path, rest) = match find(root, args) {
        Ok(found) => found,
        Err(msg) => {
            return Outcome::Error {
                stdout: String::new(),
                stderr: format!("Error: {msg}\nRun '{} --help' for usage.\n", root.name),
                msg,
                flag_error: None,
            };
        }
    };
    let cmd = *path.last().unwrap_or(&root);
    let fail = |msg: String, path: &[&'a Command]| Outcome::Error {
        stdout: usage(path),
        stderr: format!("Error: {msg}\n\n"),
        msg,
        flag_error: Some(path.to_vec()),
    };
    let parsed = match parse_flags(&path, &rest) {
        Ok(p) => p,
        Err(msg) => return fail(msg, &path),
    };
    let Parsed {
        values,
        inherited,
        positional,
        help,
    } = parsed;
    if help || matches!(values.get("help"), Some((Value::Bool(true), _))) || cmd.run.is_none() {
        return Outcome::Help(usage(&path));
    }
    // cobra's `NoArgs`, checked once the command is known to run.
    if let (true, Some(word)) = (cmd.no_args, positional.first()) {
        let path_names: Vec<&str> = path.iter().map(|c| c.name).collect();
        return fail(
            format!(
                "unknown command {} for {}",
                quote(word),
                quote(path_names.join(" "))
            ),
            &path,
        );
    }
    Outcome::Run(Invocation {
        root,
        path,
        values,
        inherited,
        args: positional,
        raw: args.to_vec(),
    })
}

/// Go's `%q` of a rune.
fn go_quote_rune(c: char) -> String {
    let q = quote(c.to_string());
    format!("'{}'", &q[1..q.len() - 1])
}

/// Help for the command at the end of `path`, as etcdctl's usage template
/// prints it (through a tabwriter with tab stops every 8 columns).
pub fn usage(path: &[&Command]) -> String {
    render_usage(path, true)
}

/// The same help without `-h, --help` among the options: cobra gives a
/// command its help flag only when it runs it or prints its help, so the
/// root's usage that `help <unknown topic>` prints has none.
pub fn usage_without_help_flag(path: &[&Command]) -> String {
    render_usage(path, false)
}

fn render_usage(path: &[&Command], with_help_flag: bool) -> String {
    let Some(&cmd) = path.last() else {
        return String::new();
    };
    let root = path[0];
    let has_parent = path.len() > 1;
    let rel_name = path[1..]
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(" ");
    let mut t = String::new();
    t.push_str("NAME:\n");
    if has_parent {
        t.push_str(&format!("\t{rel_name} - {}\n", cmd.short));
    } else {
        t.push_str(&format!("\t{} - {}\n", cmd.name, cmd.short));
    }
    t.push_str("\nUSAGE:\n");
    let (mut local, inherited) = flag_sets(path);
    if !with_help_flag {
        // The help flag flag_sets adds (its usage is filled in below).
        local.retain(|f| !(f.name == "help" && f.usage.is_empty()));
    }
    let mut use_line = path.iter().map(|c| c.name).collect::<Vec<_>>().join(" ");
    if !cmd.args_usage.is_empty() {
        use_line.push(' ');
        use_line.push_str(cmd.args_usage);
    }
    if !cmd.disable_flags_in_use_line && !use_line.contains("[flags]") {
        use_line.push_str(" [flags]");
    }
    t.push_str(&format!("\t{use_line}\n"));
    if !has_parent {
        t.push_str(&format!("\nVERSION:\n\t{}\n", VERSION));
    }
    if !cmd.subs.is_empty() {
        t.push_str(&format!("\nAPI VERSION:\n\t{}\n", API_VERSION));
        t.push_str("\n\nCOMMANDS:\n");
        let mut all = Vec::new();
        collect_subs(cmd, &mut Vec::new(), &mut all);
        for (name, short) in all {
            t.push_str(&format!("\t{name}\t{short}\n"));
        }
    }
    if !cmd.long.is_empty() {
        t.push_str("\nDESCRIPTION:\n");
        for line in cmd
            .long
            .trim_matches(|c| c == '\n' || c == '\t' || c == ' ')
            .split('\n')
        {
            t.push_str(&format!("\t{line}\n"));
        }
    }
    let help_usage = format!("help for {}", cmd.name);
    t.push_str("\nOPTIONS:\n");
    t.push_str(&flag_usages(&local, &help_usage));
    if !inherited.is_empty() {
        t.push_str("\nGLOBAL OPTIONS:\n");
        t.push_str(&flag_usages(&inherited, &help_usage));
    }
    t.push('\n');
    let _ = root;
    tabwriter::format(
        &t,
        tabwriter::Config {
            min_width: 0,
            tab_width: 8,
            padding: 1,
            pad_char: '\t',
        },
    )
}

/// cobra's own usage template (not etcdctl's), as the sub-commands of
/// `txn` print it: `Usage:`, the use line, and pflag's `FlagUsages` of
/// the local flags, names padded to one column, then an empty line.
pub fn default_usage(path: &[&Command]) -> String {
    let Some(&cmd) = path.last() else {
        return String::new();
    };
    let mut use_line = path.iter().map(|c| c.name).collect::<Vec<_>>().join(" ");
    if !cmd.args_usage.is_empty() {
        use_line.push(' ');
        use_line.push_str(cmd.args_usage);
    }
    if !use_line.contains("[flags]") {
        use_line.push_str(" [flags]");
    }
    let (local, _) = flag_sets(path);
    let mut flags: Vec<&Flag> = local.iter().collect();
    flags.sort_by_key(|f| f.name);
    let lines: Vec<(String, String)> = flags
        .iter()
        .map(|f| {
            let mut left = match f.short {
                Some(c) => format!("  -{c}, --{}", f.name),
                None => format!("      --{}", f.name),
            };
            let type_name = match f.kind {
                Kind::Bool => "",
                Kind::Str => "string",
                Kind::Int => "int",
                Kind::Duration => "duration",
                Kind::StrSlice => "strings",
            };
            if !type_name.is_empty() {
                left.push(' ');
                left.push_str(type_name);
            }
            let mut usage = if f.name == "help" && f.usage.is_empty() {
                format!("help for {}", cmd.name)
            } else {
                f.usage.to_string()
            };
            let zero = match f.kind {
                Kind::Str => f.default.is_empty(),
                Kind::Bool => f.default == "false",
                Kind::Int => f.default == "0",
                Kind::Duration => matches!(f.default, "0" | "0s"),
                Kind::StrSlice => f.default == "[]",
            };
            if !zero {
                if f.kind == Kind::Str {
                    usage.push_str(&format!(" (default {})", quote(f.default)));
                } else {
                    usage.push_str(&format!(" (default {})", f.default));
                }
            }
            (left, usage)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("Usage:\n  {use_line}\n");
    if !lines.is_empty() {
        out.push_str("\nFlags:\n");
        for (l, u) in lines {
            let pad = " ".repeat(width - l.chars().count());
            out.push_str(&format!("{l}{pad}   {u}\n"));
        }
    }
    out
}

/// Runnable commands below `cmd`, depth first in name order, named by
/// their path below `cmd`.
fn collect_subs(
    cmd: &Command,
    prefix: &mut Vec<&'static str>,
    out: &mut Vec<(String, &'static str)>,
) {
    for s in &cmd.subs {
        prefix.push(s.name);
        if s.run.is_some() {
            out.push((prefix.join(" "), s.short));
        }
        collect_subs(s, prefix, out);
        prefix.pop();
    }
}

/// etcdctl's `etcdFlagUsages`: one line per flag, sorted by name.
fn flag_usages(flags: &[Flag], help_usage: &str) -> String {
    let mut sorted: Vec<&Flag> = flags.iter().collect();
    sorted.sort_by_key(|f| f.name);
    let mut out = String::new();
    for f in sorted {
        let mut line = match f.short {
            Some(c) => format!("  -{c}, --{}", f.name),
            None => format!("      --{}", f.name),
        };
        let default = if f.kind.is_string() {
            quote(f.default)
        } else {
            f.default.to_string()
        };
        if f.no_opt().is_some() {
            line.push_str(&format!("[={default}]"));
        } else {
            line.push_str(&format!("={default}"));
        }
        let usage = if f.name == "help" && f.usage.is_empty() {
            help_usage
        } else {
            f.usage
        };
        out.push_str(&format!("{line}\t{usage}\n"));
    }
    out
}

/// etcdctl's `ExitWithError`: `Error: <msg>` on stderr, then the code.
pub fn fail(e: &Exit) -> ! {
    eprintln!("Error: {}", e.msg);
    std::process::exit(e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &Invocation) -> Result<(), Exit> {
        Ok(())
    }

    fn tree() -> Command {
        Command::new("etcdctl", "", "A simple command line client for etcd3.")
            .persistent(vec![
                Flag::new(
                    "endpoints",
                    Kind::StrSlice,
                    "[127.0.0.1:2379]",
                    "gRPC endpoints",
                ),
                Flag::new("write-out", Kind::Str, "simple", "set the output format").short('w'),
                Flag::new("dial-timeout", Kind::Duration, "2s", "dial timeout"),
            ])
            .subs(vec![
                Command::new(
                    "get",
                    "[options] <key> [range_end]",
                    "Gets the key or a range of keys",
                )
                .flags(vec![
                    Flag::bool("prefix", "Get keys with matching prefix"),
                    Flag::new("limit", Kind::Int, "0", "Maximum number of results"),
                ])
                .run(noop),
                Command::new(
                    "put",
                    "[options] <key> <value>",
                    "Puts the given key into the store",
                )
                .run(noop),
                Command::new("member", "<subcommand>", "Membership related commands").subs(vec![
                    Command::new("list", "", "Lists all members in the cluster").run(noop),
                    Command::new(
                        "add",
                        "<memberName> [options]",
                        "Adds a member into the cluster",
                    )
                    .run(noop),
                ]),
            ])
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn run<'a>(root: &'a Command, s: &str) -> Invocation<'a> {
        match parse(root, &args(s)) {
            Outcome::Run(inv) => inv,
            Outcome::Help(h) => panic!("help for {s:?}:\n{h}"),
            Outcome::Error { msg, .. } => panic!("error for {s:?}: {msg}"),
        }
    }

    fn error(root: &Command, s: &str) -> String {
        match parse(root, &args(s)) {
            Outcome::Error { msg, .. } => msg,
            _ => panic!("no error for {s:?}"),
        }
    }

    #[test]
    fn flags_anywhere_and_in_every_spelling() {
        let t = tree();
        let inv = run(&t, "get foo --prefix -w json --limit=3 bar");
        assert_eq!(inv.command_path(), "etcdctl get");
        assert_eq!(inv.args, ["foo", "bar"]);
        assert!(inv.bool("prefix"));
        assert_eq!(inv.str("write-out"), "json");
        assert_eq!(inv.int("limit"), 3);
        let inv = run(&t, "-wfields --dial-timeout 1.5s get --prefix=false a");
        assert_eq!(inv.str("write-out"), "fields");
        assert!(!inv.bool("prefix"));
        assert!(inv.changed("prefix"));
        assert_eq!(inv.duration("dial-timeout"), Duration::from_millis(1500));
        let inv = run(&t, "get -- --prefix -x");
        assert_eq!(inv.args, ["--prefix", "-x"]);
    }

    #[test]
    fn slices_replace_the_default_then_append() {
        let t = tree();
        let inv = run(&t, "get a");
        assert_eq!(inv.strs("endpoints"), ["127.0.0.1:2379"]);
        let inv = run(&t, "--endpoints a:1,b:2 get --endpoints=c:3 a");
        assert_eq!(inv.strs("endpoints"), ["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn prefixes_find_commands_when_unique() {
        let t = tree();
        assert_eq!(run(&t, "ge a").command_path(), "etcdctl get");
        assert_eq!(run(&t, "me li").command_path(), "etcdctl member list");
        // `p` is `put` only: unique.
        assert_eq!(run(&t, "p a b").command_path(), "etcdctl put");
    }

    #[test]
    fn errors_are_pflags_and_cobras() {
        let t = tree();
        assert_eq!(error(&t, "get --foo"), "unknown flag: --foo");
        assert_eq!(error(&t, "get -x"), "unknown shorthand flag: 'x' in -x");
        assert_eq!(
            error(&t, "get --endpoints"),
            "flag needs an argument: --endpoints"
        );
        assert_eq!(error(&t, "get -w"), "flag needs an argument: 'w' in -w");
        assert_eq!(
            error(&t, "get --limit x"),
            "invalid argument \"x\" for \"--limit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            error(&t, "get --prefix=maybe"),
            "invalid argument \"maybe\" for \"--prefix\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(error(&t, "get ---x"), "bad flag syntax: ---x");
        assert_eq!(
            error(&t, "set a b"),
            "unknown command \"set\" for \"etcdctl\"\n\nDid you mean this?\n\tget\n\tput\n"
        );
    }

    #[test]
    fn help_for_non_runnable_commands_and_help_flags() {
        let t = tree();
        for s in ["member", "member foo", "get --help", "get -h", "--help"] {
            assert!(
                matches!(parse(&t, &args(s)), Outcome::Help(_)),
                "{s:?} should print help"
            );
        }
    }

    #[test]
    fn env_sets_inherited_flags_and_refuses_shadowing() {
        let t = tree();
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut inv = run(&t, "get a");
        let w = inv
            .apply_env(&env(&[
                ("ETCDCTL_ENDPOINTS", "x:1"),
                ("ETCDCTL_FOO", "bar"),
            ]))
            .unwrap();
        assert_eq!(inv.strs("endpoints"), ["x:1"]);
        assert_eq!(w, ["unrecognized environment variable ETCDCTL_FOO=bar"]);
        let mut inv = run(&t, "get --endpoints y:2 a");
        let e = inv
            .apply_env(&env(&[("ETCDCTL_ENDPOINTS", "x:1")]))
            .unwrap_err();
        assert!(e
            .msg
            .starts_with("conflicting environment variable \"ETCDCTL_ENDPOINTS\""));
        // A value that does not parse is ignored, as etcdctl ignores it.
        let mut inv = run(&t, "get a");
        inv.apply_env(&env(&[("ETCDCTL_DIAL_TIMEOUT", "zz")]))
            .unwrap();
        assert_eq!(inv.duration("dial-timeout"), Duration::from_secs(2));
    }

    #[test]
    fn csv_lines() {
        assert_eq!(read_csv_line("a,b").unwrap(), ["a", "b"]);
        assert_eq!(read_csv_line("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(read_csv_line("a,").unwrap(), ["a", ""]);
        assert!(read_csv_line("\"a").is_err());
    }

    #[test]
    fn levenshtein_distances() {
        assert_eq!(levenshtein("set", "get"), 1);
        assert_eq!(levenshtein("set", "del"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
