//! Alarms: raised through the log, persisted, and refusing writes.

use ferret_proto::etcdserverpb::{alarm_request::AlarmAction, AlarmRequest, AlarmType, PutRequest};

use super::{b, config, Harness};
use crate::{MvccError, Storage, V3Request, V3Response};

fn alarm(h: &mut Harness, action: AlarmAction, kind: AlarmType) -> Vec<(u64, i32)> {
    let r = AlarmRequest {
        action: action as i32,
        member_id: 7,
        alarm: kind as i32,
    };
    match h.apply(V3Request::Alarm(&r)).unwrap() {
        V3Response::Alarm(a) => a.alarms.iter().map(|m| (m.member_id, m.alarm)).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nospace_refuses_growth_until_cleared_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = || Storage::File(dir.path().join("db"));
    {
        let mut h = Harness::open(file(), config());
        h.put("a", "1");
        assert_eq!(
            alarm(&mut h, AlarmAction::Activate, AlarmType::Nospace),
            vec![(7, 1)]
        );
        assert_eq!(
            h.put_req(PutRequest {
                key: b("a"),
                value: b("2"),
                ..Default::default()
            }),
            Err(MvccError::NoSpace)
        );
        assert_eq!(h.grant(1, 10), Err(MvccError::NoSpace));
        // Deleting and reading still work.
        assert_eq!(h.del("a", "").deleted, 1);
    }
    let mut h = Harness::open(file(), config());
    assert_eq!(
        alarm(&mut h, AlarmAction::Get, AlarmType::None),
        vec![(7, 1)]
    );
    assert_eq!(h.grant(1, 10), Err(MvccError::NoSpace));
    assert_eq!(
        alarm(&mut h, AlarmAction::Deactivate, AlarmType::Nospace),
        vec![(7, 1)]
    );
    assert!(alarm(&mut h, AlarmAction::Get, AlarmType::None).is_empty());
    h.put("a", "3");
}
