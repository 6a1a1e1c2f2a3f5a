//! ferretcd's logs, in etcd 3.4's two shapes (`--logger`), at the level
//! `--log-level` asks for, to the places `--log-outputs` names.
//!
//! Every crate logs through `tracing`; this module only decides how a
//! line looks and where it goes. The two shapes:
//!
//! - **capnslog** (etcd 3.4's default): one readable line per event,
//!   `2026-11-27 23:45:07.796769 I | ferretcd: ready to serve client
//!   requests`, then the event's fields as ` key=value`. The letter is the
//!   level (`D`, `I`, `W`, `E`), as capnslog's; the word before the colon
//!   is the event's target (its module, `::` written `/`).
//! - **zap** (`--logger zap`): one JSON object per line with etcd's keys,
//!   `level` (lowercase), `ts` (ISO 8601 with milliseconds and the offset:
//!   zap's `ISO8601TimeEncoder`), `caller` (`crate/file.rs:line`), `msg`,
//!   then the fields, each under its name with `_` written `-` (etcd's
//!   keys are hyphenated: `local_member_id` becomes `local-member-id`).
//!   Integers and booleans are JSON numbers and booleans, anything else a
//!   string.
//!
//! A few lines read differently in the two shapes in etcd (the start-up
//! lines tools wait for): such an event carries the capnslog text in a
//! field named [`CAPNSLOG_MSG`], which the capnslog shape prints instead
//! of the message and fields, and the zap shape leaves out. The helpers
//! below write the start-up lines that ferretcd's `main` writes.
//!
//! The time is the local time, with the offset the process found at start
//! (zap and capnslog use local time too; a change of offset while running,
//! such as daylight saving, is not followed).
//!
//! Outputs, as etcd's `setupLogging`: `default` and `stderr` are standard
//! error, `stdout` standard output; with zap, any other value is a file,
//! opened for appending (created if missing, as zap's sinks), and several
//! outputs each get every line. The checks of which combinations etcd
//! accepts are the config's (`config::build`); opening a file that cannot
//! be opened fails the start with etcd's message.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use time::{OffsetDateTime, UtcOffset};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Config, Logger};

/// The field whose text the capnslog shape prints as the whole message
/// (and the zap shape leaves out); see the module docs.
pub const CAPNSLOG_MSG: &str = "capnslog_msg";

/// The shape chosen at start, for the start-up line helpers.
static SHAPE: OnceLock<Logger> = OnceLock::new();

/// Sets up logging from `--logger`, `--log-level` (or `--debug`) and
/// `--log-outputs`. `FERRETCD_LOG`, when set, replaces the level with a
/// `tracing` filter (`ferret_server=debug,info`). The error is the line
/// etcd prints when an output cannot be opened.
pub fn init(cfg: &Config) -> Result<(), String> {
    let outputs = Outputs::open(cfg)?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRETCD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter_for(cfg)));
    let format = EtcdFormat {
        shape: cfg.logger,
        offset: local_offset(),
    };
    let _ = SHAPE.set(cfg.logger);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(outputs)
        .event_format(format)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

/// The `tracing` filter for `--log-level`: at `debug`, ferretcd's own
/// crates and raft-rs (target `raft`) log their debug lines, while the
/// libraries under them (hyper, h2, tonic, mio) stay at `info`: their
/// debug lines are every frame on every connection, which drowns what an
/// operator looks for. `tracing` has no level above `error`, so etcd's
/// `dpanic`, `panic` and `fatal` show errors.
pub fn filter_for(cfg: &Config) -> String {
    match cfg.log_filter() {
        "debug" => [
            "info",
            "ferretcd=debug",
            "ferret_server=debug",
            "ferret_mvcc=debug",
            "ferret_wal=debug",
            "ferret_v2store=debug",
            "raft=debug",
        ]
        .join(","),
        level => level.to_string(),
    }
}

/// The local offset from UTC, read once at start, before any other thread
/// runs (the `time` crate reads it only then, as reading the environment
/// while another thread may change it is unsound); UTC if it cannot.
fn local_offset() -> UtcOffset {
    UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC)
}

// ---------------------------------------------------------------------------
// The start-up lines
// ---------------------------------------------------------------------------

fn zap() -> bool {
    SHAPE.get() == Some(&Logger::Zap)
}

/// The line etcd writes for each client listener once it serves:
/// `secure` is whether the listener speaks TLS.
pub fn serving_clients(address: &str, secure: bool) {
    match (zap(), secure) {
        (true, false) => tracing::info!(
            address,
            "serving client traffic insecurely; this is strongly discouraged!"
        ),
        (true, true) => tracing::info!(address, "serving client traffic securely"),
        (false, false) => tracing::info!(
            capnslog_msg = format!(
                "serving insecure client requests on {address}, this is strongly discouraged!"
            ),
            address,
            "serving client traffic insecurely; this is strongly discouraged!"
        ),
        (false, true) => tracing::info!(
            capnslog_msg = format!("serving client requests on {address}"),
            address,
            "serving client traffic securely"
        ),
    }
}

/// capnslog's `ready to serve client requests`, written once every client
/// listener serves (etcd's zap logger has no such line).
pub fn ready_to_serve() {
    if !zap() {
        tracing::info!("ready to serve client requests");
    }
}

// ---------------------------------------------------------------------------
// The line format
// ---------------------------------------------------------------------------

/// Formats an event as capnslog or zap would.
struct EtcdFormat {
    shape: Logger,
    offset: UtcOffset,
}

impl<S, N> FormatEvent<S, N> for EtcdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        let meta = event.metadata();
        let line = match self.shape {
            Logger::Capnslog => capnslog_line(now, *meta.level(), meta.target(), &fields),
            Logger::Zap => zap_line(
                now,
                *meta.level(),
                &caller(meta.file(), meta.line()),
                &fields,
            ),
        };
        writer.write_str(&line)
    }
}

/// A field's value, kept in its type for zap's JSON.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// An event's message and fields, in the order given.
#[derive(Default, Debug)]
struct Fields {
    message: String,
    capnslog_msg: Option<String>,
    fields: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Str(s)) => self.message = s,
            (CAPNSLOG_MSG, Value::Str(s)) => self.capnslog_msg = Some(s),
            (name, value) => self.fields.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here too, as their `Display`.
        self.push(field, Value::Str(format!("{value:?}")));
    }
}

/// capnslog's letter for a level.
fn level_letter(level: Level) -> char {
    match level {
        Level::ERROR => 'E',
        Level::WARN => 'W',
        Level::INFO => 'I',
        Level::DEBUG => 'D',
        Level::TRACE => 'T',
    }
}

/// zap's lowercase level name.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG | Level::TRACE => "debug",
    }
}

/// capnslog's time: `2006-01-02 15:04:05.000000`.
fn capnslog_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// zap's ISO 8601 time: `2006-01-02T15:04:05.000Z0700` (`Z` for UTC,
/// else the offset as `+0100`).
fn zap_time(t: OffsetDateTime) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    let offset = t.offset();
    if offset.is_utc() {
        s.push('Z');
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        let _ = write!(s, "{sign}{:02}{:02}", h.unsigned_abs(), m.unsigned_abs());
    }
    s
}

/// zap's short caller, `package/file.go:line`: here the crate's directory
/// and the file under its `src/` (`ferret-server/raft_node.rs:376`), or
/// the last two parts of a path outside the workspace.
fn caller(file: Option<&str>, line: Option<u32>) -> String {
    let Some(file) = file else {
        return "unknown".to_string();
    };
    let short = match file.split_once("crates/") {
        Some((_, rest)) => rest.replacen("/src/", "/", 1),
        None => {
            let parts: Vec<&str> = file.rsplitn(3, '/').collect();
            match parts.as_slice() {
                [name, dir, _] | [name, dir] => format!("{dir}/{name}"),
                _ => file.to_string(),
            }
        }
    };
    match line {
        Some(l) => format!("{short}:{l}"),
        None => short,
    }
}

fn capnslog_line(now: OffsetDateTime, level: Level, target: &str, fields: &Fields) -> String {
    let mut s = format!(
        "{} {} | {}: ",
        capnslog_time(now),
        level_letter(level),
        target.replace("::", "/")
    );
    if let Some(text) = &fields.capnslog_msg {
        s.push_str(text);
    } else {
        s.push_str(&fields.message);
        for (name, value) in &fields.fields {
            let _ = write!(s, " {name}=");
            match value {
                Value::Str(v) if v.is_empty() || v.contains(char::is_whitespace) => {
                    let _ = write!(s, "{v:?}");
                }
                Value::Str(v) => s.push_str(v),
                Value::I64(v) => {
                    let _ = write!(s, "{v}");
                }
                Value::U64(v) => {
                    let _ = write!(s, "{v}");
                }
                Value::F64(v) => {
                    let _ = write!(s, "{v}");
                }
                Value::Bool(v) => {
                    let _ = write!(s, "{v}");
                }
            }
        }
    }
    s.push('\n');
    s
}

fn zap_line(now: OffsetDateTime, level: Level, caller: &str, fields: &Fields) -> String {
    // Written key by key: zap's order (level, ts, caller, msg, then the
    // fields as given), which a JSON map would sort.
    let json = |v: serde_json::Value| v.to_string();
    let mut s = format!(
        "{{\"level\":{},\"ts\":{},\"caller\":{},\"msg\":{}",
        json(level_name(level).into()),
        json(zap_time(now).into()),
        json(caller.into()),
        json(fields.message.clone().into())
    );
    for (name, value) in &fields.fields {
        let v = match value {
            Value::Str(v) => serde_json::Value::from(v.clone()),
            Value::I64(v) => (*v).into(),
            Value::U64(v) => (*v).into(),
            // NaN and infinities have no JSON number: zap writes them as
            // strings.
            Value::F64(v) if v.is_finite() => (*v).into(),
            Value::F64(v) => v.to_string().into(),
            Value::Bool(v) => (*v).into(),
        };
        let _ = write!(s, ",{}:{}", json(name.replace('_', "-").into()), json(v));
    }
    s.push_str("}\n");
    s
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

/// One place lines go to.
#[derive(Clone)]
enum Output {
    Stderr,
    Stdout,
    File(Arc<Mutex<File>>),
}

/// Every output `--log-outputs` names; each formatted line is written to
/// each, whole (the formatter hands over one line per write).
#[derive(Clone)]
struct Outputs(Vec<Output>);

impl Outputs {
    fn open(cfg: &Config) -> Result<Outputs, String> {
        let mut outputs = Vec::new();
        let mut seen_stderr = false;
        let mut seen_stdout = false;
        for name in &cfg.log_outputs {
            match name.as_str() {
                "default" | "stderr" if !seen_stderr => {
                    seen_stderr = true;
                    outputs.push(Output::Stderr);
                }
                "default" | "stderr" => {}
                "stdout" if !seen_stdout => {
                    seen_stdout = true;
                    outputs.push(Output::Stdout);
                }
                "stdout" => {}
                path => outputs.push(Output::File(Arc::new(Mutex::new(open_sink(path)?)))),
            }
        }
        if outputs.is_empty() {
            outputs.push(Output::Stderr);
        }
        Ok(Outputs(outputs))
    }
}

/// Opens a log file as zap opens a sink: append, create if missing.
/// The error is etcd's, after `error verifying flags, `.
fn open_sink(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(PathBuf::from(path))
        .map_err(|e| {
            format!(
                "error verifying flags, open sink {path:?}: open {path}: {}. See '{} --help'.",
                go_error_text(&e),
                crate::config::PROGRAM
            )
        })
}

/// An I/O error as Go words it: the system's text, lowercase first, without
/// Rust's `(os error N)`.
fn go_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Writes one formatted line to every output.
struct LineWriter<'a>(&'a Outputs);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // A log line that cannot be written is dropped: logging must not
        // stop the server (zap drops it too, after reporting to stderr).
        for out in &self.0 .0 {
            let _ = match out {
                Output::Stderr => io::stderr().lock().write_all(buf),
                Output::Stdout => io::stdout().lock().write_all(buf),
                Output::File(f) => match f.lock() {
                    Ok(mut f) => f.write_all(buf),
                    Err(_) => Ok(()),
                },
            };
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Outputs {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: UtcOffset) -> OffsetDateTime {
        // 2026-11-27 23:45:07.404602 UTC
        OffsetDateTime::from_unix_timestamp_nanos(1_795_823_107_404_602_000)
            .unwrap()
            .to_offset(offset)
    }

    fn fields(message: &str, fields: Vec<(&'static str, Value)>) -> Fields {
        Fields {
            message: message.to_string(),
            capnslog_msg: None,
            fields,
        }
    }

    #[test]
    fn times_are_capnslog_and_zap_iso8601() {
        assert_eq!(
            capnslog_time(at(UtcOffset::UTC)),
            "2026-11-27 23:45:07.404602"
        );
        assert_eq!(zap_time(at(UtcOffset::UTC)), "2026-11-27T23:45:07.404Z");
        let plus = UtcOffset::from_hms(1, 0, 0).unwrap();
        assert_eq!(zap_time(at(plus)), "2026-11-28T00:45:07.404+0100");
        let minus = UtcOffset::from_hms(-3, -30, 0).unwrap();
        assert_eq!(zap_time(at(minus)), "2026-11-27T20:15:07.404-0330");
    }

    #[test]
    fn a_zap_line_has_etcds_keys_in_order() {
        let f = fields(
            "published local member to cluster through raft",
            vec![
                ("local_member_id", Value::Str("c0cddf230c648c4e".into())),
                ("max_cpu", Value::U64(2)),
                ("ok", Value::Bool(true)),
            ],
        );
        let line = zap_line(at(UtcOffset::UTC), Level::INFO, "ferretcd/main.rs:1", &f);
        assert!(line.ends_with('\n'));
        assert!(
            line.starts_with(
                r#"{"level":"info","ts":"2026-11-27T23:45:07.404Z","caller":"ferretcd/main.rs:1","msg":"published local member to cluster through raft","#
            ),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["local-member-id"], "c0cddf230c648c4e");
        assert_eq!(v["max-cpu"], 2);
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn a_capnslog_line_reads_as_etcds() {
        let f = fields(
            "serving client traffic insecurely",
            vec![
                ("address", Value::Str("127.0.0.1:2379".into())),
                ("why", Value::Str("two words".into())),
            ],
        );
        assert_eq!(
            capnslog_line(at(UtcOffset::UTC), Level::WARN, "ferret_server::raft_node", &f),
            "2026-11-27 23:45:07.404602 W | ferret_server/raft_node: serving client traffic insecurely address=127.0.0.1:2379 why=\"two words\"\n"
        );
        let mut f = f;
        f.capnslog_msg = Some("serving insecure client requests on 127.0.0.1:2379".into());
        assert_eq!(
            capnslog_line(at(UtcOffset::UTC), Level::INFO, "ferretcd", &f),
            "2026-11-27 23:45:07.404602 I | ferretcd: serving insecure client requests on 127.0.0.1:2379\n"
        );
        // zap leaves the capnslog text out.
        let line = zap_line(at(UtcOffset::UTC), Level::INFO, "x.rs:1", &f);
        assert!(!line.contains("capnslog"), "{line}");
    }

    #[test]
    fn callers_are_short() {
        assert_eq!(
            caller(Some("crates/ferret-server/src/raft_node.rs"), Some(376)),
            "ferret-server/raft_node.rs:376"
        );
        assert_eq!(
            caller(
                Some("/root/.cargo/registry/src/x/raft-0.7.0/src/raft.rs"),
                Some(9)
            ),
            "src/raft.rs:9"
        );
        assert_eq!(caller(Some("main.rs"), None), "main.rs");
        assert_eq!(caller(None, None), "unknown");
    }

    #[test]
    fn io_errors_read_as_go_words_them() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(go_error_text(&e), "no such file or directory");
        assert_eq!(
            open_sink("/nonexistent-ferretcd-dir/x.log").unwrap_err(),
            "error verifying flags, open sink \"/nonexistent-ferretcd-dir/x.log\": open /nonexistent-ferretcd-dir/x.log: no such file or directory. See 'ferretcd --help'."
        );
    }
}
