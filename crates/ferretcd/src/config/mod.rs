//! Server configuration, taken the way etcd 3.4 takes it.
//!
//! Three sources, as in etcd:
//!
//! 1. command-line flags in Go's `flag` syntax (`--name x`, `--name=x`,
//!    `-name x`, `-name=x`; booleans as `--enable-v2` or `--enable-v2=false`),
//! 2. one `ETCD_*` environment variable per flag (`ETCD_NAME`,
//!    `ETCD_LISTEN_CLIENT_URLS`, ...), used only for flags not given on the
//!    command line (giving both is a fatal error in etcd 3.4, and here),
//! 3. a YAML file named by `--config-file` or `ETCD_CONFIG_FILE`; when there
//!    is one, every other flag and environment variable is ignored.
//!
//! Every flag of etcd 3.4.23 is declared once, in the table `flags::FLAGS`:
//! how its value is read, its default, its config-file key, the [`Config`]
//! field it fills and its `--help` text. [`parse`] runs etcd's checks with
//! etcd's messages (`build.rs`), including the bootstrap checks on
//! `--initial-cluster` (etcd runs those only when the data directory is
//! empty; see [`parse`]).
//!
//! ferretcd never fails open: a flag it does not implement yet is refused
//! at start unless it has its default value. The list of those flags, with
//! the issue each belongs to, is [`unsupported::UNSUPPORTED`]; whoever
//! implements a flag removes it from there. Unknown flags are refused as
//! etcd refuses them.
//!
//! Flags it accepts without acting on them (`--max-wals 5`) are listed
//! in [`no_effect::NO_EFFECT`]; the start logs one warning naming those
//! given.
//!
//! Module map: `flags` (the table and `--help`), `sources` (command line,
//! environment, config file), `build` (defaults, etcd's rules and checks),
//! `unsupported` (the refusals), `no_effect` (accepted, not acted on),
//! `gosyntax` (Go's value syntax), `url`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

mod build;
mod flags;
mod gosyntax;
mod model;
pub mod no_effect;
mod sources;
pub mod unsupported;
mod url;

pub use flags::help_text;
pub use gosyntax::GoDuration;
pub use model::*;
pub use no_effect::{NoEffect, NO_EFFECT};
pub use unsupported::{Plan, Unsupported, UNSUPPORTED};
pub use url::Url;

/// Reads the configuration from the command line and the environment.
///
/// `args` is the whole command line *including the program name*, as
/// `std::env::args_os()` gives it; `env` is the process environment, as
/// `std::env::vars()` gives it.
///
/// Besides etcd's flag checks this runs the checks etcd makes on
/// `--initial-cluster` when it starts with an empty data directory (own
/// name listed, advertised peer URLs matching, no duplicate URL). etcd
/// skips those when the data directory already holds a member; ferretcd
/// always makes them. Then it refuses what ferretcd cannot honour
/// ([`unsupported`]); that check looks at the data directory for
/// `--initial-cluster-state existing`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ConfigOutcome, ConfigError> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut notes = Vec::new();

    let mut cli = sources::Settings::default();
    let positional = match sources::parse_command_line(&args, &mut cli, &mut notes)? {
        sources::CommandLine::Help => return Ok(ConfigOutcome::PrintHelp(help_text())),
        sources::CommandLine::Parsed { positional } => positional,
    };
    if let Some(first) = positional.first() {
        return Err(ConfigError::invalid(format!(
            "'{first}' is not a valid flag"
        )));
    }
    if cli.bool("version") == Some(true) {
        return Ok(ConfigOutcome::PrintVersion);
    }

    let config_file = cli
        .str("config-file")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            env.iter()
                .find(|(k, v)| k == "ETCD_CONFIG_FILE" && !v.is_empty())
                .map(|(_, v)| v.clone())
        });

    let mut cfg = if let Some(path) = &config_file {
        // Flags and environment variables are ignored from here on, except
        // for the notes already taken about them.
        notes.push(Note {
            level: NoteLevel::Info,
            source: "etcdmain",
            message: format!(
                "Loading server configuration from {path:?}. Other configuration command line flags and environment variables will be ignored if provided."
            ),
        });
        let st = sources::settings_from_file(Path::new(path), &mut notes)?;
        let mut cfg = build::build(&st, build::Source::File, &mut notes)?;
        cfg.config_file = Some(PathBuf::from(path));
        unsupported::check(&cfg, &st)?;
        notes.extend(no_effect::note(&cfg, &st));
        cfg
    } else {
        sources::apply_env(&env, &mut cli, &mut notes)?;
        let cfg = build::build(&cli, build::Source::CommandLine, &mut notes)?;
        unsupported::check(&cfg, &cli)?;
        notes.extend(no_effect::note(&cfg, &cli));
        cfg
    };
    build::check_initial_cluster(&cfg)?;
    cfg.notes = notes;
    Ok(ConfigOutcome::Run(cfg))
}

#[cfg(test)]
mod tests;
