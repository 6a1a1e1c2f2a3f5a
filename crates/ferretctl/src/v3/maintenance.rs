//! `alarm list|disarm`, `defrag` and `move-leader`: the Maintenance
//! service as etcdctl drives it.
//!
//! - `alarm disarm` is clientv3's `AlarmDisarm` of no particular alarm:
//!   the alarms are listed, then each is deactivated; what is printed is
//!   the deactivated alarms, in an answer without a header.
//! - `defrag` defragments each endpoint in turn (or with `--cluster` each
//!   member's client URL), reporting each; a failure makes it exit 1
//!   without a message once all were tried. `--data-dir` defragments the
//!   backend of a ferretcd data directory that no member is using: its
//!   database is redb, not bbolt, so ferretcd's own defragmentation runs
//!   on it (`ferret_mvcc`), and redb's lock on the file stands for bbolt's
//!   (a running member holds it: the command waits, as etcdctl does).
//! - `move-leader` asks each endpoint's status in turn until one says it
//!   leads, then sends `MoveLeader` to it; all of it within one command
//!   timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use ferret_gocompat::strconv::{parse_uint, quote};
use ferret_mvcc::{Mvcc, MvccConfig, MvccError, Storage};
use ferret_proto::etcdserverpb::alarm_request::AlarmAction;
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest, MoveLeaderRequest,
    StatusRequest,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Config, Retry};
use super::endpoint::{endpoints_from_cluster, exit_quietly};
use super::printer::{Display, Format};

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

pub fn alarm_list(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(bad_args("alarm list command accepts no arguments"));
    }
    let (cfg, mut display) = client::config(inv)?;
    let deadline = Instant::now() + cfg.command_timeout;
    let mut c = Client::new(cfg)?;
    let resp = list_alarms(&mut c, deadline)?;
    let printed = print_alarms(&mut display, &resp);
    display.flush();
    printed
}

pub fn alarm_disarm(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(bad_args("alarm disarm command accepts no arguments"));
    }
    let (cfg, mut display) = client::config(inv)?;
    let deadline = Instant::now() + cfg.command_timeout;
    let mut c = Client::new(cfg)?;
    // clientv3's AlarmDisarm of no particular member and alarm: every
    // alarm raised, one request each, under the one context.
    let listed = list_alarms(&mut c, deadline)?;
    let mut resp = AlarmResponse::default();
    for a in listed.alarms {
        let req = AlarmRequest {
            action: AlarmAction::Deactivate as i32,
            member_id: a.member_id,
            alarm: a.alarm,
        };
        let r = c.unary_until(Retry::Repeatable, deadline, |ch, auth| {
            let req = auth.req(req);
            async move { MaintenanceClient::new(ch).alarm(req).await }
        })?;
        resp.alarms.extend(r.alarms);
    }
    let printed = print_alarms(&mut display, &resp);
    display.flush();
    printed
}

fn list_alarms(c: &mut Client, deadline: Instant) -> Result<AlarmResponse, Exit> {
    c.unary_until(Retry::Repeatable, deadline, |ch, auth| {
        let req = auth.req(AlarmRequest {
            action: AlarmAction::Get as i32,
            member_id: 0,
            alarm: AlarmType::None as i32,
        });
        async move { MaintenanceClient::new(ch).alarm(req).await }
    })
}

/// gogoproto's `String()` of an `AlarmMember` (protobuf's compact text
/// format: each field that is set, then a space), which etcdctl prints.
pub fn alarm_text(a: &AlarmMember) -> String {
    let mut s = String::new();
    if a.member_id != 0 {
        s.push_str(&format!("memberID:{} ", a.member_id));
    }
    if a.alarm != 0 {
        s.push_str(&format!("alarm:{} ", alarm_name(a.alarm)));
    }
    s
}

/// The enum's name as Go's generated `String()` gives it; the number for
/// one it does not know.
fn alarm_name(alarm: i32) -> String {
    match AlarmType::try_from(alarm) {
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => alarm.to_string(),
    }
}

fn print_alarms(display: &mut Display, r: &AlarmResponse) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            for a in &r.alarms {
                display.line(&alarm_text(a));
            }
            Ok(())
        }
        Format::Fields => {
            if r.header.is_none() {
                return Err(no_header());
            }
            display.header_fields(&r.header);
            for a in &r.alarms {
                display.line(&format!("\"MemberID\" : {}", a.member_id));
                display.line(&format!("\"AlarmType\" : {}", alarm_name(a.alarm)));
                display.line("");
            }
            Ok(())
        }
        _ => display.whole(r),
    }
}

/// etcdctl 3.4's fields printer reads the header of an alarm answer,
/// which etcd 3.4 never sets (nor, as etcd, ferretcd): etcdctl crashes
/// there (a nil pointer, exit 2). ferretctl refuses the format instead.
fn no_header() -> Exit {
    Exit::new(
        exit::BAD_FEATURE,
        "fields not supported as output format for alarms: the answer has no header (etcdctl 3.4 crashes on it: nil pointer dereference)",
    )
}

pub fn defrag(inv: &Invocation) -> Result<(), Exit> {
    let data_dir = inv.str("data-dir");
    if !data_dir.is_empty() {
        if let Err(e) = defrag_data_dir(Path::new(&data_dir)) {
            eprintln!("Failed to defragment etcd data[{data_dir}] ({e})");
            std::process::exit(exit::ERROR);
        }
        return Ok(());
    }
    let (cfg, mut display, flags) = client::config_and_flags(inv)?;
    let mut failures = 0usize;
    for ep in endpoints_from_cluster(&flags, &cfg)? {
        let mut c = Client::direct(&cfg, &ep)?;
        let r = c.unary(Retry::NonRepeatable, |ch, auth| {
            let req = auth.req(DefragmentRequest {});
            async move { MaintenanceClient::new(ch).defragment(req).await }
        });
        // Each as it is done: a defragmentation can take long.
        match r {
            Ok(_) => println!("Finished defragmenting etcd member[{ep}]"),
            Err(e) => {
                eprintln!("Failed to defragment etcd member[{ep}] ({})", e.msg);
                failures += 1;
            }
        }
    }
    if failures != 0 {
        exit_quietly(&mut display, exit::ERROR);
    }
    Ok(())
}

/// redb's refusal to open a database another process holds open.
const REDB_LOCKED: &str = "Database already open. Cannot acquire lock.";

/// After this long waiting for the lock, say so (etcdctl's second).
const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);
/// How often the lock is tried again meanwhile.
const LOCK_RETRY_EVERY: Duration = Duration::from_millis(100);

/// Defragments the backend of the ferretcd data directory `dir`, which
/// no member may be using: ferretcd's online defragmentation, on the
/// store opened alone. Waits while a member holds the database.
fn defrag_data_dir(dir: &Path) -> Result<(), String> {
    // A data dir converted from etcd keeps ferretcd's files under
    // `ferretcd/` (ferret-server's `migrate::CONVERTED_DIR`).
    let converted = dir.join("ferretcd");
    let db = if ferret_mvcc::backend::path_in(&converted).is_file() {
        ferret_mvcc::backend::path_in(&converted)
    } else {
        ferret_mvcc::backend::path_in(dir)
    };
    if !db.is_file() {
        // etcdctl would create an empty bbolt file here (or crash if the
        // directory is missing); a data directory without a backend is
        // not ferretcd's.
        return Err(format!(
            "no ferretcd backend at {}: not a ferretcd data directory",
            quote(db.display().to_string())
        ));
    }
    let started = Instant::now();
    let mut told = false;
    let store = loop {
        match Mvcc::open(Storage::File(db.clone()), MvccConfig::default()) {
            Ok((m, _)) => break m,
            Err(MvccError::Backend { detail, .. }) if detail == REDB_LOCKED => {
                if !told && started.elapsed() >= LOCK_NOTICE_AFTER {
                    eprintln!(
                        "waiting for etcd to close and release its lock on {}. To defrag a running etcd instance, omit --data-dir.",
                        quote(db.display().to_string())
                    );
                    told = true;
                }
                std::thread::sleep(LOCK_RETRY_EVERY);
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let done = store.defragment();
    store.close();
    done.map(|_| ()).map_err(|e| e.to_string())
}

pub fn move_leader(inv: &Invocation) -> Result<(), Exit> {
    let [arg] = inv.args.as_slice() else {
        return Err(bad_args("move-leader command needs 1 argument"));
    };
    let target = parse_uint(arg, 16).map_err(|e| bad_args(e.to_string()))?;
    let (cfg, mut display) = client::config(inv)?;
    let deadline = Instant::now() + cfg.command_timeout;

    // The leader, from the endpoints' own statuses.
    let mut leader = None;
    for ep in &cfg.endpoints {
        let mut c = Client::direct(&cfg, ep)?;
        let st = c.unary_until(Retry::Repeatable, deadline, |ch, auth| {
            let req = auth.req(StatusRequest {});
            async move { MaintenanceClient::new(ch).status(req).await }
        })?;
        let member_id = st.header.as_ref().map_or(0, |h| h.member_id);
        if member_id == st.leader {
            leader = Some((ep.clone(), st.leader));
            break;
        }
    }
    let Some((ep, leader_id)) = leader else {
        return Err(bad_args(format!(
            "no leader endpoint given at [{}]",
            cfg.endpoints.join(" ")
        )));
    };
    let mut c = Client::new(Config {
        endpoints: vec![ep],
        ..cfg.clone()
    })?;
    let resp = c.unary_until(Retry::Repeatable, deadline, |ch, auth| {
        let req = auth.req(MoveLeaderRequest { target_id: target });
        async move { MaintenanceClient::new(ch).move_leader(req).await }
    })?;
    let printed = match display.format {
        Format::Simple => {
            display.line(&format!(
                "Leadership transferred from {leader_id:x} to {target:x}"
            ));
            Ok(())
        }
        _ => display.whole(&resp),
    };
    display.flush();
    printed
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_proto::etcdserverpb::ResponseHeader;

    #[test]
    fn alarms_as_gogoproto_prints_them() {
        let a = AlarmMember {
            member_id: 3319814642761637952,
            alarm: AlarmType::Nospace as i32,
        };
        assert_eq!(
            alarm_text(&a),
            "memberID:3319814642761637952 alarm:NOSPACE "
        );
        assert_eq!(alarm_text(&AlarmMember::default()), "");
        assert_eq!(
            alarm_text(&AlarmMember {
                member_id: 0,
                alarm: 7
            }),
            "alarm:7 "
        );
        let r = AlarmResponse {
            header: Some(ResponseHeader::default()),
            alarms: vec![a],
        };
        let printed = |format: &str| {
            let mut d = Display::from_flags(format, false).unwrap();
            print_alarms(&mut d, &r).unwrap();
            String::from_utf8_lossy(d.printed()).into_owned()
        };
        assert_eq!(
            printed("simple"),
            "memberID:3319814642761637952 alarm:NOSPACE \n"
        );
        // A header given (not etcd's case) is printed.
        assert_eq!(
            printed("fields"),
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 0\n\"RaftTerm\" : 0\n\
             \"MemberID\" : 3319814642761637952\n\"AlarmType\" : NOSPACE\n\n"
        );
        let mut d = Display::from_flags("table", false).unwrap();
        assert_eq!(print_alarms(&mut d, &r).unwrap_err().code, 4);
        // etcd's answer, without a header.
        let mut d = Display::from_flags("fields", false).unwrap();
        let e = print_alarms(&mut d, &AlarmResponse::default()).unwrap_err();
        assert_eq!(e.code, 4, "{}", e.msg);
        assert!(d.printed().is_empty());
    }
}
