//! The flags ferretcd accepts and does not act on, in one list.
//!
//! Each is accepted only with a value that asks for nothing ferretcd
//! would do differently (any other value is refused: see
//! [`super::unsupported`]), yet where etcd would act on it, ferretcd does
//! not: `--max-wals 5` makes etcd keep five WAL files, and ferretcd
//! releases its WAL segments after each snapshot whatever the value. When
//! such flags are given (on the command line, as `ETCD_*` variables or in
//! the config file), the start logs **one** warning that names them all
//! and says why; README "Limitations" lists them too (a unit test keeps
//! the two in step).
//!
//! **Whoever makes one of these flags act removes its entry here.**

use super::model::{Config, Note, NoteLevel};
use super::sources::{Origin, Settings};

/// One flag ferretcd accepts without acting on it.
pub struct NoEffect {
    /// The flag, as etcd names it.
    pub flag: &'static str,
    /// Why it has no effect, in a few words.
    pub reason: &'static str,
    /// Whether the value `config` holds is one ferretcd does not act on.
    pub applies: fn(&Config) -> bool,
}

/// Every flag ferretcd accepts and does not act on.
pub const NO_EFFECT: &[NoEffect] = &[
    NoEffect {
        flag: "initial-election-tick-advance",
        reason: "ferretcd never fast-forwards its first election",
        applies: |c| c.initial_election_tick_advance,
    },
    NoEffect {
        flag: "max-wals",
        reason: "WAL segments are released after each snapshot",
        applies: |_| true,
    },
    NoEffect {
        flag: "grpc-keepalive-min-time",
        reason: "clients' pings are not policed",
        applies: |_| true,
    },
    NoEffect {
        flag: "experimental-warning-apply-duration",
        reason: "slow applies are not warned about",
        applies: |_| true,
    },
    NoEffect {
        flag: "experimental-backend-bbolt-freelist-type",
        reason: "the backend is redb, not bbolt",
        applies: |_| true,
    },
];

/// The one warning naming the flags given that have no effect, if any.
pub(super) fn note(cfg: &Config, st: &Settings) -> Option<Note> {
    let named: Vec<String> = NO_EFFECT
        .iter()
        .filter(|n| (n.applies)(cfg))
        .filter_map(|n| {
            let (_, origin) = st.given(n.flag)?;
            let name = match origin {
                Origin::CommandLine => format!("--{}", n.flag),
                Origin::Env(key) => key.clone(),
                Origin::File(key) => format!("config key {key}"),
            };
            Some(format!("{name} ({})", n.reason))
        })
        .collect();
    if named.is_empty() {
        return None;
    }
    Some(Note {
        level: NoteLevel::Warn,
        source: "ferretcd",
        message: format!(
            "these flags have no effect in ferretcd: {} (see README \"Limitations\")",
            named.join(", ")
        ),
    })
}
