//! The three sources of flag values, all read through the flag table: the
//! command line (Go's `flag` package), `ETCD_*` variables (etcd's
//! `flags.SetFlagsFromEnv`) and the YAML config file (etcd's `configYAML`,
//! read as Go's JSON decoder reads it).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::flags::{self, lookup, value_from_text, Field, Flag, Kind, Val, Yaml};
use super::model::{ConfigError, Note, NoteLevel, PROGRAM};
use super::url::parse_url_list;

/// How a flag's value reached us, for messages that name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    CommandLine,
    /// The variable's name.
    Env(String),
    /// The key as written in the file (`client-transport-security.cert-file`).
    File(String),
}

/// Values gathered from one source, before defaults are applied.
#[derive(Default)]
pub(super) struct Settings {
    vals: HashMap<&'static str, Val>,
    /// The text each value was given as, and where it came from.
    given: HashMap<&'static str, (String, Origin)>,
    /// Flags counted as set (Go's `flag.FlagSet.Visit`).
    set: BTreeSet<&'static str>,
}

impl Settings {
    pub(super) fn put(&mut self, flag: &'static Flag, raw: &str, val: Val, origin: Origin) {
        self.set.insert(flag.name);
        self.given.insert(flag.name, (raw.to_string(), origin));
        if val != Val::Unchanged {
            self.vals.insert(flag.name, val);
        }
    }

    pub(super) fn is_set(&self, name: &str) -> bool {
        self.set.contains(name)
    }

    /// The value given for a flag, if any.
    pub(super) fn get(&self, name: &str) -> Option<&Val> {
        self.vals.get(name)
    }

    /// The text a flag was given as, and where.
    pub(super) fn given(&self, name: &str) -> Option<&(String, Origin)> {
        self.given.get(name)
    }

    pub(super) fn str(&self, name: &str) -> Option<&str> {
        match self.vals.get(name) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub(super) fn bool(&self, name: &str) -> Option<bool> {
        match self.vals.get(name) {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn replace(&mut self, name: &'static str, val: Option<Val>) {
        match val {
            Some(v) => self.vals.insert(name, v),
            None => self.vals.remove(name),
        };
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

pub(super) enum CommandLine {
    Help,
    Parsed { positional: Vec<String> },
}

/// Parses arguments the way Go's `flag.FlagSet.Parse` does: flags until the
/// first non-flag argument or `--`.
pub(super) fn parse_command_line(
    args: &[String],
    st: &mut Settings,
    notes: &mut Vec<Note>,
) -> Result<CommandLine, ConfigError> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        i += 1;
        let body = match arg.strip_prefix("--") {
            Some("") => break, // "--" ends the flags
            Some(body) => body,
            None => &arg[1..],
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::Usage(format!("bad flag syntax: {arg}")));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };

        let Some(flag) = lookup(name) else {
            if name == "help" || name == "h" {
                return Ok(CommandLine::Help);
            }
            return Err(ConfigError::Usage(format!(
                "flag provided but not defined: -{name}"
            )));
        };

        let text = if flag.kind.takes_no_value() {
            match inline_value {
                Some(v) => {
                    if flag.kind == Kind::Bool && super::gosyntax::parse_bool(v).is_none() {
                        return Err(ConfigError::Usage(format!(
                            "invalid boolean value {v:?} for -{name}: parse error"
                        )));
                    }
                    v.to_string()
                }
                None => "true".to_string(),
            }
        } else {
            match inline_value {
                Some(v) => v.to_string(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(ConfigError::Usage(format!(
                        "flag needs an argument: -{name}"
                    )))
                }
            }
        };
        let val = value_from_text(flag.kind, &text).map_err(|reason| {
            ConfigError::Usage(format!("invalid value {text:?} for flag -{name}: {reason}"))
        })?;
        note_ignored_flag(flag, notes);
        st.put(flag, &text, val, Origin::CommandLine);
    }
    Ok(CommandLine::Parsed {
        positional: args[i..].to_vec(),
    })
}

/// The warning etcd prints when a retired flag is set.
fn note_ignored_flag(flag: &Flag, notes: &mut Vec<Note>) {
    if matches!(flag.field, Field::Ignored) {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "pkg/flags",
            message: format!("flag \"-{}\" is no longer supported - ignoring.", flag.name),
        });
    }
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// Fills flags not given on the command line from `ETCD_*` variables, as
/// etcd's `flags.SetFlagsFromEnv` does.
pub(super) fn apply_env(
    env: &[(String, String)],
    st: &mut Settings,
    notes: &mut Vec<Note>,
) -> Result<(), ConfigError> {
    let env_map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let shadowed: BTreeSet<String> = st.set.iter().map(|f| flags::env_key(f)).collect();
    let mut used = BTreeSet::new();
    let mut error = None;

    // Go visits flags in name order.
    let mut sorted: Vec<&'static Flag> = flags::FLAGS.iter().collect();
    sorted.sort_by_key(|f| f.name);
    for flag in sorted {
        let key = flags::env_key(flag.name);
        if shadowed.contains(&key) {
            continue;
        }
        let Some(&text) = env_map.get(key.as_str()) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        used.insert(key.clone());
        match value_from_text(flag.kind, text) {
            Ok(val) => {
                note_ignored_flag(flag, notes);
                st.put(flag, text, val, Origin::Env(key.clone()));
                notes.push(Note {
                    level: NoteLevel::Info,
                    source: "pkg/flags",
                    message: format!("recognized and used environment variable {key}={text}"),
                });
            }
            // etcd keeps the last error, and reports it after the checks below.
            Err(reason) => error = Some(format!("invalid value {text:?} for {key}: {reason}")),
        }
    }

    for (key, value) in env {
        if used.contains(key) {
            continue;
        }
        if shadowed.contains(key) {
            return Err(ConfigError::Fatal(format!(
                "conflicting environment variable {key:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
            )));
        }
        if key.starts_with("ETCD_") {
            notes.push(Note {
                level: NoteLevel::Warn,
                source: "pkg/flags",
                message: format!("unrecognized environment variable {key}={value}"),
            });
        }
    }
    match error {
        Some(message) => Err(ConfigError::invalid(message)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Config file
// ---------------------------------------------------------------------------

/// Reads a config file as etcd does (YAML, keys named like the flags, read
/// case-insensitively, unknown keys ignored).
pub(super) fn settings_from_file(
    path: &Path,
    notes: &mut Vec<Note>,
) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        ConfigError::invalid(format!("open {}: {reason}", path.display()))
    })?;
    settings_from_yaml(&text, notes)
}

/// Go's JSON type error, for a field of `structure` (`configYAML`, or
/// `securityConfig` for a key in a TLS mapping).
fn type_error(found: &str, structure: &str, key: &str, go_type: &str) -> ConfigError {
    ConfigError::invalid(format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {found} into Go struct field {structure}.{key} of type {go_type}"
    ))
}

/// How Go's JSON decoder names a YAML value's kind in its errors.
fn json_kind(v: &serde_yaml_ng::Value) -> &'static str {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => "null",
        Y::Bool(_) => "bool",
        Y::Number(_) => "number",
        Y::String(_) => "string",
        Y::Sequence(_) => "array",
        Y::Mapping(_) | Y::Tagged(_) => "object",
    }
}

fn yaml_scalar_text(v: &serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => String::new(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        Y::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    }
}

/// The integer a YAML number stands for, if it is a whole number.
fn yaml_integer(n: &serde_yaml_ng::Number) -> Option<i128> {
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128)
}

/// Reads one config-file value for a flag. URL lists are only split here;
/// they are checked afterwards, in etcd's order. `structure` and `key` name
/// the field in type errors.
fn value_from_yaml(
    flag: &Flag,
    structure: &str,
    key: &str,
    v: &serde_yaml_ng::Value,
) -> Result<Val, ConfigError> {
    use serde_yaml_ng::Value as Y;
    let kind = flag.kind;
    let err = || type_error(json_kind(v), structure, key, flag.go_type);
    match (kind, v) {
        (Kind::Bool, Y::Bool(b)) => Ok(Val::Bool(*b)),
        // etcd's YAML reader follows YAML 1.1, where these words are booleans.
        (Kind::Bool, Y::String(s)) => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(Val::Bool(true)),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(Val::Bool(false)),
            _ => Err(err()),
        },
        (Kind::Uint | Kind::Uint32 | Kind::Int | Kind::Duration, Y::Number(n)) => {
            let number_error = || type_error(&format!("number {n}"), structure, key, flag.go_type);
            let i = yaml_integer(n).ok_or_else(number_error)?;
            let fits = match kind {
                Kind::Uint => u64::try_from(i).is_ok(),
                Kind::Uint32 => u32::try_from(i).is_ok(),
                _ => i64::try_from(i).is_ok(),
            };
            if !fits {
                return Err(number_error());
            }
            Ok(match kind {
                Kind::Uint | Kind::Uint32 => Val::Uint(i as u64),
                Kind::Int => Val::Int(i as i64),
                // A time.Duration in etcd's config file is a count of nanoseconds.
                _ => Val::Duration(super::gosyntax::GoDuration::from_nanos(i as i64)),
            })
        }
        (
            Kind::Str | Kind::Choice(_) | Kind::Urls | Kind::Cors | Kind::UniqueStringsCsv,
            Y::String(s),
        ) => Ok(match kind {
            // etcd reads a non-empty string only.
            Kind::UniqueStringsCsv if s.is_empty() => Val::Unchanged,
            Kind::UniqueStringsCsv => value_from_text(kind, s).unwrap_or(Val::Unchanged),
            _ => Val::Str(s.clone()),
        }),
        (Kind::UniqueStrings | Kind::Strings, Y::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Y::String(s) => Ok(s.clone()),
                other => Err(type_error(json_kind(other), structure, key, "string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Val::List),
        _ => Err(err()),
    }
}

pub(super) fn settings_from_yaml(
    text: &str,
    notes: &mut Vec<Note>,
) -> Result<Settings, ConfigError> {
    use serde_yaml_ng::Value as Y;
    let doc: Y = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError::invalid(format!("error converting YAML to JSON: yaml: {e}")))?;
    let mut st = Settings::default();
    let map = match doc {
        Y::Null => return Ok(st),
        Y::Mapping(map) => map,
        other => {
            return Err(ConfigError::invalid(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type embed.configYAML",
                json_kind(&other)
            )))
        }
    };

    let mut first_error = None;
    let unknown_key = |notes: &mut Vec<Note>, key: &str| {
        notes.push(Note {
            level: NoteLevel::Debug,
            source: PROGRAM,
            message: format!("ignoring unknown config file key {key:?}"),
        })
    };
    for (k, v) in &map {
        let key = yaml_scalar_text(k);
        // Go's JSON decoder matches field names case-insensitively.
        let name = key.to_ascii_lowercase();
        if v.is_null() {
            continue;
        }
        if flags::YAML_SECURITY_BLOCKS.contains(&name.as_str()) {
            let fields = match v {
                Y::Mapping(fields) => fields,
                other => {
                    first_error.get_or_insert(type_error(
                        json_kind(other),
                        "configYAML",
                        &name,
                        "embed.securityConfig",
                    ));
                    continue;
                }
            };
            for (fk, fv) in fields {
                let field_key = yaml_scalar_text(fk);
                let field_name = field_key.to_ascii_lowercase();
                let flag = flags::FLAGS.iter().find(
                    |f| matches!(f.yaml, Yaml::In(block, k) if block == name && k == field_name),
                );
                let Some(flag) = flag else {
                    unknown_key(notes, &format!("{key}.{field_key}"));
                    continue;
                };
                if fv.is_null() {
                    continue;
                }
                let label = format!("{name}.{field_name}");
                match value_from_yaml(flag, "securityConfig", &label, fv) {
                    Ok(val) => st.put(flag, &yaml_scalar_text(fv), val, Origin::File(label)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            continue;
        }
        let Some(flag) = lookup(&name).filter(|f| f.yaml == Yaml::Key) else {
            unknown_key(notes, &key);
            continue;
        };
        match value_from_yaml(flag, "configYAML", &name, v) {
            Ok(val) => st.put(flag, &yaml_scalar_text(v), val, Origin::File(name.clone())),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // URL lists are strings in the file; etcd splits and checks them after
    // reading the whole file, and exits on the first bad one.
    for (name, label) in [
        ("listen-peer-urls", "listen-peer-urls"),
        ("listen-client-urls", "listen-client-urls"),
        ("initial-advertise-peer-urls", "initial-advertise-peer-urls"),
        // (sic: etcd 3.4 names the wrong flag in this message)
        ("advertise-client-urls", "advertise-peer-urls"),
        ("listen-metrics-urls", "listen-metrics-urls"),
    ] {
        let Some(text) = st.str(name).map(str::to_string) else {
            continue;
        };
        if text.is_empty() {
            st.replace(name, None);
            continue;
        }
        let urls = parse_url_list(&text)
            .map_err(|e| ConfigError::Fatal(format!("unexpected error setting up {label}: {e}")))?;
        st.replace(name, Some(Val::Urls(urls)));
    }
    if let Some(text) = st.str("cors").map(str::to_string) {
        match value_from_text(Kind::Cors, &text) {
            Ok(val) => st.replace("cors", Some(val)),
            Err(e) => {
                return Err(ConfigError::Fatal(format!(
                    "new UniqueURLs should never fail: {e}"
                )))
            }
        }
    }
    for (name, label) in [
        ("discovery-fallback", "discovery-fallback flag"),
        ("proxy", "proxyFlag"),
    ] {
        if let Some(text) = st.str(name) {
            let kind = lookup(name).expect("in the flag table").kind;
            if !text.is_empty() && value_from_text(kind, text).is_err() {
                return Err(ConfigError::Fatal(format!(
                    "unexpected error setting up {label}: invalid value"
                )));
            }
        }
    }
    Ok(st)
}
