//! Alarms (etcd's `alarmStore`): raised per member, replicated through
//! the log, persisted in the backend's `alarm` table. While a NOSPACE
//! alarm is raised, writes that would grow the database are refused (etcd's
//! "capped" applier); while a CORRUPT alarm is raised, every request is.

use std::collections::BTreeSet;

use ferret_proto::etcdserverpb::{
    alarm_request::AlarmAction, AlarmMember, AlarmRequest, AlarmType,
};

#[derive(Debug, Default, Clone)]
pub struct Alarms {
    /// (alarm type, member id).
    set: BTreeSet<(i32, u64)>,
}

impl Alarms {
    pub(crate) fn restore(&mut self, m: AlarmMember) {
        self.set.insert((m.alarm, m.member_id));
    }

    /// Alarms of a type; `NONE` means every alarm.
    pub fn get(&self, alarm: i32) -> Vec<AlarmMember> {
        self.set
            .iter()
            .filter(|(a, _)| alarm == AlarmType::None as i32 || *a == alarm)
            .map(|&(alarm, member_id)| AlarmMember { member_id, alarm })
            .collect()
    }

    pub fn is_active(&self, alarm: AlarmType) -> bool {
        self.set.iter().any(|(a, _)| *a == alarm as i32)
    }

    /// Applies a request: the alarms to answer with, and what changed for
    /// the backend (`Some(true)`: insert, `Some(false)`: remove).
    pub(crate) fn apply(
        &mut self,
        r: &AlarmRequest,
    ) -> (Vec<AlarmMember>, Option<(AlarmMember, bool)>) {
        let m = AlarmMember {
            member_id: r.member_id,
            alarm: r.alarm,
        };
        match AlarmAction::try_from(r.action) {
            Ok(AlarmAction::Get) | Err(_) => (self.get(r.alarm), None),
            Ok(AlarmAction::Activate) => {
                if r.alarm == AlarmType::None as i32 {
                    return (Vec::new(), None);
                }
                let new = self.set.insert((r.alarm, r.member_id));
                (vec![m], new.then_some((m, true)))
            }
            Ok(AlarmAction::Deactivate) => {
                if self.set.remove(&(r.alarm, r.member_id)) {
                    (vec![m], Some((m, false)))
                } else {
                    (Vec::new(), None)
                }
            }
        }
    }
}
