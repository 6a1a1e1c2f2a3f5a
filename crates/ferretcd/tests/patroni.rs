//! Patroni, the PostgreSQL HA manager, in its `etcd3` mode on a 3-member
//! ferretcd cluster: `scripts/patroni-ha.sh` bootstraps a primary and a
//! streaming replica, SIGKILLs the Raft leader and then the member the
//! primary's Patroni talks to (the primary must stay primary, with no
//! second one), then SIGKILLs the primary (the replica must be promoted
//! within Patroni's TTL and loop wait, and have the data).
//!
//! Needs Debian's `patroni` and `postgresql` (`.ci/run` installs them) and
//! root (PostgreSQL runs as the `postgres` user). Without them the test
//! says so and passes, except under CI, where it fails. It gives the
//! script free loopback ports below the ephemeral range.

use std::path::Path;
use std::process::Command;

fn patroni_present() -> Result<(), String> {
    let patroni = Command::new("patroni").arg("--version").output();
    if !patroni.is_ok_and(|o| o.status.success()) {
        return Err("patroni is not installed".into());
    }
    let pg = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL in /usr/lib/postgresql: {e}"))?;
    if !pg.flatten().any(|d| d.path().join("bin/initdb").exists()) {
        return Err("no initdb under /usr/lib/postgresql/*/bin".into());
    }
    Ok(())
}

#[test]
fn patroni_keeps_its_primary_and_fails_over() {
    if let Err(why) = patroni_present() {
        if std::env::var_os("CI").is_some() {
            panic!("{why}: CI needs the Patroni test (apt-get install patroni postgresql)");
        }
        eprintln!("\n!!!!!!!! SKIPPED: {why}: no Patroni test !!!!!!!!\n");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/patroni-ha.sh");
    let bin = ferret_testkit::bin::ferretcd();
    let work = ferret_testkit::dir::TempDir::new("patroni-ha");
    // Free loopback ports below the ephemeral range, rather than the
    // script's fixed defaults, which another process may hold.
    let ports: Vec<String> = ferret_testkit::ports::free_ports(10)
        .iter()
        .map(u16::to_string)
        .collect();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&bin)
        .env("PORTS", ports.join(" "))
        .env("WORK", work.path())
        .env("KEEP_WORK", "0")
        // Both hold longer than Patroni's TTL (10 s): a primary that lost
        // its lock would have been demoted by then.
        .env("STABLE_SECS", "15")
        .env("STABLE2_SECS", "12")
        .output()
        .expect("run scripts/patroni-ha.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    for step in [
        "step 1: OK",
        "step2-leader-kill: OK",
        "step2b-connected-member-kill: OK",
        "step 3: OK",
        "PASS: Patroni etcd3 HA test succeeded",
    ] {
        assert!(text.contains(step), "no {step:?} in the Patroni run");
    }
    assert!(
        out.status.success(),
        "scripts/patroni-ha.sh: {}",
        out.status
    );
}
