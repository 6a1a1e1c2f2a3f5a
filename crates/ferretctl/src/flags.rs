//! Command-line parsing as etcdctl's urfave/cli v1.22 and Go's `flag`
//! package do it, so that every command line written for
//! `ETCDCTL_API=2 etcdctl` means the same thing to ferretctl.
//!
//! Why by hand rather than clap: Go's `flag` rules are not clap's. A flag
//! may be `-name` or `--name` (one or two dashes, same meaning), a value may
//! follow as `-name value` or `-name=value`, a bool flag never takes a
//! separate value (`--sort false` is a flag and an argument), parsing stops
//! at the first non-flag argument, and `--` ends the flags. On top of that
//! urfave/cli moves a command's known flags in front of its arguments
//! (`set /k v --ttl 5` works) while anything after `--` stays an argument
//! (`set -- /k -v` sets `-v`). Reproducing that, plus the exact error
//! texts (`flag provided but not defined: -x`, `invalid value "abc" for
//! flag -ttl: parse error`), is smaller with a hundred lines of our own than
//! by bending clap.

use std::collections::HashMap;
use std::time::Duration;

use ferret_gocompat::flag::parse_int as parse_go_int;
use ferret_gocompat::strconv::{parse_bool as parse_go_bool, quote as go_quote};

/// How a flag takes its value, as the Go flag types etcdctl uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `cli.BoolFlag`: present means true; `-f=false` is the only way to give a value.
    Bool,
    /// `cli.StringFlag`.
    Str,
    /// `cli.IntFlag`: Go's `strconv.ParseInt(s, 0, 64)` (so `0x10` and `010` too).
    Int,
    /// `cli.DurationFlag`: Go's `time.ParseDuration` (`2s`, `1m30s`, `500ms`).
    Duration,
    /// `cli.StringSliceFlag`: each occurrence appends one value.
    StrSlice,
}

/// One flag as a command declares it; `names` is urfave's "long, short" list.
#[derive(Clone, Copy, Debug)]
pub struct FlagSpec {
    pub names: &'static str,
    pub kind: Kind,
    /// The default as text (shown in help, used when the flag is absent).
    pub default: &'static str,
    pub usage: &'static str,
}

impl FlagSpec {
    pub const fn new(names: &'static str, kind: Kind, usage: &'static str) -> FlagSpec {
        FlagSpec {
            names,
            kind,
            default: "",
            usage,
        }
    }

    pub const fn with_default(mut self, default: &'static str) -> FlagSpec {
        self.default = default;
        self
    }

    fn name_list(&self) -> impl Iterator<Item = &'static str> {
        self.names.split(',').map(str::trim)
    }

    fn primary(&self) -> &'static str {
        self.name_list().next().unwrap_or("")
    }

    fn has_name(&self, name: &str) -> bool {
        self.name_list().any(|n| n == name)
    }

    /// The line urfave/cli prints for this flag in help, before tab
    /// alignment: `--ttl value<TAB>key time-to-live in seconds (default: 0)`.
    pub fn help_line(&self) -> String {
        let (placeholder, usage) = unquote_usage(self.usage);
        let (placeholder, default_text) = match self.kind {
            Kind::Bool => (placeholder, String::new()),
            Kind::StrSlice => (placeholder.or(Some("value".into())), String::new()),
            Kind::Str => (
                placeholder.or(Some("value".into())),
                if self.default.is_empty() {
                    String::new()
                } else {
                    format!(" (default: {})", go_quote(self.default))
                },
            ),
            Kind::Int => (
                placeholder.or(Some("value".into())),
                format!(
                    " (default: {})",
                    if self.default.is_empty() {
                        "0"
                    } else {
                        self.default
                    }
                ),
            ),
            Kind::Duration => (
                placeholder.or(Some("value".into())),
                format!(" (default: {})", self.default),
            ),
        };
        let names: Vec<String> = self
            .name_list()
            .map(|n| {
                let dash = if n.len() == 1 { "-" } else { "--" };
                match &placeholder {
                    Some(p) if !p.is_empty() => format!("{dash}{n} {p}"),
                    _ => format!("{dash}{n}"),
                }
            })
            .collect();
        format!(
            "{}\t{}",
            names.join(", "),
            format!("{usage}{default_text}").trim()
        )
    }
}

/// urfave/cli's `unquoteUsage`: the first back-quoted word of a usage text
/// is the value's placeholder, shown without its quotes.
fn unquote_usage(usage: &str) -> (Option<String>, String) {
    if let Some(i) = usage.find('`') {
        if let Some(j) = usage[i + 1..].find('`') {
            let name = &usage[i + 1..i + 1 + j];
            let rest = format!("{}{}{}", &usage[..i], name, &usage[i + 2 + j..]);
            return (Some(name.to_string()), rest);
        }
    }
    (None, usage.to_string())
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

/// The flags of one level (global, a command) after parsing, defaults
/// filled in, looked up by any of a flag's names.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Value>,
    specs: Vec<FlagSpec>,
}

impl Parsed {
    fn get(&self, name: &str) -> Option<&Value> {
        let spec = self.specs.iter().find(|s| s.has_name(name))?;
        self.values.get(spec.primary())
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    pub fn string(&self, name: &str) -> String {
        match self.get(name) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }

    pub fn duration(&self, name: &str) -> Duration {
        match self.get(name) {
            Some(Value::Duration(d)) => *d,
            _ => Duration::ZERO,
        }
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Value::StrSlice(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// A parse failure, with Go's `flag` package's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError(pub String);

/// Go's `flag.FlagSet.Parse`: flags until the first non-flag argument or
/// `--` (which is dropped); returns the values and the remaining arguments.
pub fn parse(specs: &[FlagSpec], args: &[String]) -> Result<(Parsed, Vec<String>), FlagError> {
    let mut parsed = Parsed {
        values: HashMap::new(),
        specs: specs.to_vec(),
    };
    for s in specs {
        let v = match s.kind {
            Kind::Bool => Value::Bool(false),
            Kind::Str => Value::Str(s.default.to_string()),
            Kind::Int => Value::Int(s.default.parse().unwrap_or(0)),
            Kind::Duration => Value::Duration(parse_go_duration(s.default).unwrap_or_default()),
            Kind::StrSlice => Value::StrSlice(Vec::new()),
        };
        parsed.values.insert(s.primary(), v);
    }
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let mut minuses = 1;
        if arg.as_bytes()[1] == b'-' {
            minuses = 2;
            if arg.len() == 2 {
                i += 1;
                break;
            }
        }
        let name_value = &arg[minuses..];
        if name_value.is_empty() || name_value.starts_with('-') || name_value.starts_with('=') {
            return Err(FlagError(format!("bad flag syntax: {arg}")));
        }
        i += 1;
        let (name, value) = match name_value.find('=') {
            Some(eq) => (&name_value[..eq], Some(name_value[eq + 1..].to_string())),
            None => (name_value, None),
        };
        let Some(spec) = specs.iter().find(|s| s.has_name(name)) else {
            if name == "help" || name == "h" {
                return Err(FlagError("flag: help requested".into()));
            }
            return Err(FlagError(format!("flag provided but not defined: -{name}")));
        };
        let primary = spec.primary();
        let v = if spec.kind == Kind::Bool {
            match value {
                None => Value::Bool(true),
                Some(v) => match parse_go_bool(&v) {
                    Some(b) => Value::Bool(b),
                    None => {
                        return Err(FlagError(format!(
                            "invalid boolean value {} for -{name}: parse error",
                            go_quote(&v)
                        )))
                    }
                },
            }
        } else {
            let v = match value {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(FlagError(format!("flag needs an argument: -{name}"))),
            };
            let invalid = |why: &str| {
                FlagError(format!(
                    "invalid value {} for flag -{name}: {why}",
                    go_quote(&v)
                ))
            };
            match spec.kind {
                Kind::Str => Value::Str(v.clone()),
                Kind::Int => Value::Int(parse_go_int(&v).map_err(&invalid)?),
                Kind::Duration => {
                    Value::Duration(parse_go_duration(&v).ok_or_else(|| invalid("parse error"))?)
                }
                Kind::StrSlice => {
                    let mut all = match parsed.values.get(primary) {
                        Some(Value::StrSlice(prev)) => prev.clone(),
                        _ => Vec::new(),
                    };
                    all.push(v.clone());
                    Value::StrSlice(all)
                }
                Kind::Bool => unreachable!("bool flags are handled above"),
            }
        };
        parsed.values.insert(primary, v);
    }
    Ok((parsed, args[i..].to_vec()))
}

/// urfave/cli v1.22's `reorderArgs`: a command's own flags (and the value
/// after a flag given without `=`) move in front of its other arguments, so
/// `set /k v --ttl 5` reads as `set --ttl 5 /k v`; everything after the
/// first `--` stays put, behind a leading `--`.
pub fn reorder(specs: &[FlagSpec], args: &[String]) -> Vec<String> {
    let is_flag = |arg: &str| -> bool {
        if arg == "-" || arg == "--" || !arg.starts_with('-') {
            return false;
        }
        let name = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        let name = name.split('=').next().unwrap_or("");
        specs.iter().any(|s| s.has_name(name))
    };
    let mut reordered = Vec::new();
    let mut remaining: Vec<String> = Vec::new();
    let mut next_may_be_value = false;
    for (i, arg) in args.iter().enumerate() {
        if next_may_be_value && !is_flag(arg) {
            next_may_be_value = false;
            reordered.push(arg.clone());
        } else if arg == "--" {
            remaining.insert(0, "--".to_string());
            remaining.extend(args[i + 1..].iter().cloned());
            break;
        } else if is_flag(arg) {
            reordered.push(arg.clone());
            next_may_be_value = !arg.contains('=');
        } else {
            remaining.push(arg.clone());
        }
    }
    reordered.extend(remaining);
    reordered
}

/// A duration flag: Go's `time.ParseDuration`. Negative durations become
/// zero (no flag here has a use for them).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let ns = ferret_gocompat::time::parse_duration(s).ok()?;
    Some(Duration::from_nanos(ns.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    const SET: &[FlagSpec] = &[
        FlagSpec::new("ttl", Kind::Int, "key time-to-live in seconds"),
        FlagSpec::new("swap-with-value", Kind::Str, "previous value"),
        FlagSpec::new("recursive, r", Kind::Bool, "recursive"),
    ];

    #[test]
    fn go_flag_forms() {
        let (p, rest) = parse(
            SET,
            &v(&["-ttl", "5", "--swap-with-value=a", "-r", "/k", "-x"]),
        )
        .unwrap();
        assert_eq!(p.int("ttl"), 5);
        assert_eq!(p.string("swap-with-value"), "a");
        assert!(p.bool("recursive") && p.bool("r"));
        assert_eq!(rest, v(&["/k", "-x"]));
        let (p, rest) = parse(SET, &v(&["--r=false", "--", "-k"])).unwrap();
        assert!(!p.bool("r"));
        assert_eq!(rest, v(&["-k"]));
    }

    #[test]
    fn go_flag_errors() {
        let e = |a: &[&str]| parse(SET, &v(a)).unwrap_err().0;
        assert_eq!(e(&["-nope"]), "flag provided but not defined: -nope");
        assert_eq!(
            e(&["--ttl", "abc"]),
            "invalid value \"abc\" for flag -ttl: parse error"
        );
        assert_eq!(e(&["--ttl"]), "flag needs an argument: -ttl");
        assert_eq!(e(&["---ttl"]), "bad flag syntax: ---ttl");
        assert_eq!(
            e(&["-r=maybe"]),
            "invalid boolean value \"maybe\" for -r: parse error"
        );
        assert_eq!(
            e(&["--ttl", "99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -ttl: value out of range"
        );
    }

    #[test]
    fn reorder_like_urfave() {
        assert_eq!(
            reorder(SET, &v(&["/k", "v", "--ttl", "5"])),
            v(&["--ttl", "5", "/k", "v"])
        );
        assert_eq!(
            reorder(SET, &v(&["/k", "--", "-v"])),
            v(&["--", "/k", "-v"])
        );
        assert_eq!(reorder(SET, &v(&["/k", "-v"])), v(&["/k", "-v"]));
        assert_eq!(
            reorder(SET, &v(&["-r", "/app", "--", "sh", "-c", "x"])),
            v(&["-r", "/app", "--", "sh", "-c", "x"])
        );
    }

    #[test]
    fn numbers_and_durations() {
        let p = |a: &[&str]| parse(SET, &v(a)).map(|(p, _)| p.int("ttl"));
        assert_eq!(p(&["--ttl", "0x10"]), Ok(16));
        assert_eq!(p(&["--ttl", "010"]), Ok(8));
        assert_eq!(p(&["--ttl", "-7"]), Ok(-7));
        assert_eq!(p(&["--ttl", "1_0"]), Ok(10));
        assert_eq!(
            p(&["--ttl", "1__0"]).unwrap_err().0,
            "invalid value \"1__0\" for flag -ttl: parse error"
        );
        assert_eq!(parse_go_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("-5s"), Some(Duration::ZERO));
    }

    #[test]
    fn help_lines() {
        let out = FlagSpec::new(
            "output, o",
            Kind::Str,
            "output response in the given format (`simple`, `extended` or `json`)",
        )
        .with_default("simple");
        assert_eq!(
            out.help_line(),
            "--output simple, -o simple\toutput response in the given format (simple, `extended` or `json`) (default: \"simple\")"
        );
        assert_eq!(
            SET[0].help_line(),
            "--ttl value\tkey time-to-live in seconds (default: 0)"
        );
        assert_eq!(SET[2].help_line(), "--recursive, -r\trecursive");
    }
}
