//! Requests one member asks another over the peer streams, and their
//! answers: the lease keep-alives and TimeToLive queries a follower
//! forwards to the leader, and whether a learner caught up (for a
//! promotion asked of a follower, which etcd forwards to the leader too).
//!
//! Only the leader tracks when leases expire (`ferret_mvcc::Lessor`,
//! primary on the leader only), so a keep-alive or a TimeToLive that a
//! client sends to a follower must be answered by the leader, as etcd
//! forwards them (`etcdserver/v3_server.go` `LeaseRenew`,
//! `LeaseTimeToLive`, over `v3lease/leasehttp`). The follower's Raft
//! thread sends a request frame on its stream to the leader; the leader's
//! Raft thread answers from its lessor at once, on its own stream back
//! (see `transport` for the frames, byte by byte). Nothing waits on the
//! leader: an answer that needs time (a lease expired but not revoked yet,
//! a checkpoint to clear, a leader not yet promoted) is "retry", and the
//! asker asks again a moment later, within its request timeout.
//!
//! This module holds the requests and answers, their bodies on the wire,
//! and [`answer`], which the leader uses for forwarded queries and for its
//! own clients alike.

use std::time::Instant;

use bytes::Bytes;
use ferret_mvcc::{Lessor, Renewal};

/// What a follower asks the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderQuery {
    /// A keep-alive.
    Renew(i64),
    /// A lease's remaining time, with its keys if `keys`.
    TimeToLive { id: i64, keys: bool },
    /// Whether learner `id` caught up with the leader's log.
    LearnerReady(u64),
}

/// What the leader answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderAnswer {
    /// Renewed; the lease's TTL, seconds.
    Renewed { ttl: i64 },
    /// No such lease (or it expired and its revocation is applied).
    NotFound,
    /// The lease's remaining and granted TTL, seconds, and its keys if
    /// asked for (sorted).
    TimeToLive {
        ttl: i64,
        granted_ttl: i64,
        keys: Vec<Bytes>,
    },
    /// Not now: ask again in a moment (the leader is not promoted yet,
    /// the lease expired and its revocation is not applied yet, a
    /// checkpoint must be cleared first, or the request or its answer was
    /// lost on the way).
    Retry,
    /// The asked member does not lead (any more): ask the new leader.
    NotLeader,
    /// The keys of the lease do not fit in one answer
    /// ([`MAX_ANSWER_BYTES`]).
    TooLarge,
    /// Whether the learner asked about caught up.
    LearnerReady(bool),
}

impl LeaderAnswer {
    /// Whether this can answer `query` (a renewal gets no TTL, a
    /// TimeToLive no renewal): a peer's answer that does not is dropped.
    pub fn fits(&self, query: &LeaderQuery) -> bool {
        match self {
            LeaderAnswer::Renewed { .. } => matches!(query, LeaderQuery::Renew(_)),
            LeaderAnswer::TimeToLive { .. } | LeaderAnswer::TooLarge => {
                matches!(query, LeaderQuery::TimeToLive { .. })
            }
            LeaderAnswer::LearnerReady(_) => matches!(query, LeaderQuery::LearnerReady(_)),
            LeaderAnswer::NotFound => !matches!(query, LeaderQuery::LearnerReady(_)),
            LeaderAnswer::Retry | LeaderAnswer::NotLeader => true,
        }
    }
}

/// A request on the wire: the asker's id for it and the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRequest {
    pub id: u64,
    pub query: LeaderQuery,
}

/// An answer on the wire: the id of the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnswer {
    pub id: u64,
    pub answer: LeaderAnswer,
}

/// The body of a request frame is exactly this long.
pub const REQUEST_BYTES: usize = 18;
/// An answer's fixed part; keys follow.
pub const ANSWER_HEAD_BYTES: usize = 29;
/// The largest answer body: a TimeToLive whose keys need more is answered
/// [`LeaderAnswer::TooLarge`]. 16 MiB holds the keys of a lease with some
/// 100 000 keys of 150 bytes; one answer must stay well under the 64 MiB
/// a peer's output buffer takes before it drops messages.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

const OP_RENEW: u8 = 1;
const OP_TIME_TO_LIVE: u8 = 2;
const OP_LEARNER_READY: u8 = 3;
const FLAG_KEYS: u8 = 1;

const STATUS_RENEWED: u8 = 1;
const STATUS_NOT_FOUND: u8 = 2;
const STATUS_TIME_TO_LIVE: u8 = 3;
const STATUS_RETRY: u8 = 4;
const STATUS_NOT_LEADER: u8 = 5;
const STATUS_TOO_LARGE: u8 = 6;
const STATUS_LEARNER_READY: u8 = 7;
const STATUS_LEARNER_NOT_READY: u8 = 8;

impl PeerRequest {
    /// Appends the body (see `transport` for the layout).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        let (op, lease, flags) = match self.query {
            LeaderQuery::Renew(id) => (OP_RENEW, id, 0),
            LeaderQuery::TimeToLive { id, keys } => {
                (OP_TIME_TO_LIVE, id, if keys { FLAG_KEYS } else { 0 })
            }
            LeaderQuery::LearnerReady(member) => (OP_LEARNER_READY, member as i64, 0),
        };
        out.push(op);
        out.extend_from_slice(&lease.to_le_bytes());
        out.push(flags);
    }

    pub fn decode(body: &[u8]) -> Result<PeerRequest, String> {
        if body.len() != REQUEST_BYTES {
            return Err(format!("a peer request of {} bytes", body.len()));
        }
        let id = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
        let lease = i64::from_le_bytes(body[9..17].try_into().expect("8 bytes"));
        let flags = body[17];
        if flags & !FLAG_KEYS != 0 {
            return Err(format!("a peer request with flags {flags:#x}"));
        }
        let query = match body[8] {
            OP_RENEW if flags == 0 => LeaderQuery::Renew(lease),
            OP_TIME_TO_LIVE => LeaderQuery::TimeToLive {
                id: lease,
                keys: flags & FLAG_KEYS != 0,
            },
            OP_LEARNER_READY if flags == 0 => LeaderQuery::LearnerReady(lease as u64),
            op => return Err(format!("a peer request of op {op} with flags {flags:#x}")),
        };
        Ok(PeerRequest { id, query })
    }
}

impl PeerAnswer {
    /// Appends the body (see `transport` for the layout).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        let none: &[Bytes] = &[];
        let (status, ttl, granted, keys) = match &self.answer {
            LeaderAnswer::Renewed { ttl } => (STATUS_RENEWED, *ttl, 0, none),
            LeaderAnswer::NotFound => (STATUS_NOT_FOUND, 0, 0, none),
            LeaderAnswer::TimeToLive {
                ttl,
                granted_ttl,
                keys,
            } => (STATUS_TIME_TO_LIVE, *ttl, *granted_ttl, &keys[..]),
            LeaderAnswer::Retry => (STATUS_RETRY, 0, 0, none),
            LeaderAnswer::NotLeader => (STATUS_NOT_LEADER, 0, 0, none),
            LeaderAnswer::TooLarge => (STATUS_TOO_LARGE, 0, 0, none),
            LeaderAnswer::LearnerReady(true) => (STATUS_LEARNER_READY, 0, 0, none),
            LeaderAnswer::LearnerReady(false) => (STATUS_LEARNER_NOT_READY, 0, 0, none),
        };
        out.push(status);
        out.extend_from_slice(&ttl.to_le_bytes());
        out.extend_from_slice(&granted.to_le_bytes());
        out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
        for k in keys {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
        }
    }

    pub fn decode(body: &[u8]) -> Result<PeerAnswer, String> {
        if body.len() < ANSWER_HEAD_BYTES || body.len() > MAX_ANSWER_BYTES {
            return Err(format!("a peer answer of {} bytes", body.len()));
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let id = u64_at(0);
        let ttl = u64_at(9) as i64;
        let granted_ttl = u64_at(17) as i64;
        let count = u32::from_le_bytes(body[25..29].try_into().expect("4 bytes")) as usize;
        let mut rest = &body[ANSWER_HEAD_BYTES..];
        // Each key takes at least its 4-byte length: a count the body
        // cannot hold is refused before anything is allocated for it.
        if count > rest.len() / 4 {
            return Err(format!("a peer answer announcing {count} keys"));
        }
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let Some((len, after)) = rest.split_first_chunk::<4>() else {
                return Err("a peer answer cut inside a key length".into());
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > after.len() {
                return Err("a peer answer cut inside a key".into());
            }
            keys.push(Bytes::copy_from_slice(&after[..len]));
            rest = &after[len..];
        }
        if !rest.is_empty() {
            return Err(format!("{} bytes after a peer answer's keys", rest.len()));
        }
        let status = body[8];
        if status != STATUS_TIME_TO_LIVE && (count != 0 || granted_ttl != 0) {
            return Err(format!("a peer answer of status {status} with keys"));
        }
        let answer = match status {
            STATUS_RENEWED => LeaderAnswer::Renewed { ttl },
            STATUS_NOT_FOUND => LeaderAnswer::NotFound,
            STATUS_TIME_TO_LIVE => LeaderAnswer::TimeToLive {
                ttl,
                granted_ttl,
                keys,
            },
            STATUS_RETRY => LeaderAnswer::Retry,
            STATUS_NOT_LEADER => LeaderAnswer::NotLeader,
            STATUS_TOO_LARGE => LeaderAnswer::TooLarge,
            STATUS_LEARNER_READY => LeaderAnswer::LearnerReady(true),
            STATUS_LEARNER_NOT_READY => LeaderAnswer::LearnerReady(false),
            s => return Err(format!("a peer answer of status {s}")),
        };
        Ok(PeerAnswer { id, answer })
    }
}

/// The leader's answer to a lease query, from its lessor at `now`; the
/// second value is a lease whose checkpointed remaining TTL must be
/// cleared through the log before it can be renewed (etcd proposes a
/// `LeaseCheckpoint` of 0, then renews): the caller proposes it, and the
/// asker retries. An answer whose keys would exceed `max_answer_bytes` is
/// [`LeaderAnswer::TooLarge`].
pub fn answer(
    lessor: &mut Lessor,
    query: &LeaderQuery,
    now: Instant,
    max_answer_bytes: usize,
) -> (LeaderAnswer, Option<i64>) {
    match *query {
        // Not the lessor's: the Raft loop answers it from raft's progress
        // before it gets here.
        LeaderQuery::LearnerReady(_) => (LeaderAnswer::Retry, None),
        LeaderQuery::Renew(id) => match lessor.renew(id, now) {
            Renewal::Renewed(ttl) => (LeaderAnswer::Renewed { ttl }, None),
            Renewal::NotFound => (LeaderAnswer::NotFound, None),
            // Not promoted yet (its first entry of the term is not
            // applied), or expired and about to be revoked: etcd answers
            // an expired lease once its revocation is applied ("not
            // found"), or when the leader steps down (the asker retries).
            Renewal::NotPrimary | Renewal::Expired => (LeaderAnswer::Retry, None),
            Renewal::ClearCheckpointFirst => (LeaderAnswer::Retry, Some(id)),
        },
        LeaderQuery::TimeToLive { id, keys } => {
            let Some(l) = lessor.get(id) else {
                return (LeaderAnswer::NotFound, None);
            };
            let mut size = ANSWER_HEAD_BYTES;
            let mut listed = Vec::new();
            if keys {
                listed.reserve(l.keys.len());
                for k in &l.keys {
                    size += 4 + k.len();
                    if size > max_answer_bytes {
                        return (LeaderAnswer::TooLarge, None);
                    }
                    listed.push(k.clone());
                }
            }
            let ttl = l.remaining(now).map_or(l.ttl, |d| d.as_secs() as i64);
            (
                LeaderAnswer::TimeToLive {
                    ttl,
                    granted_ttl: l.ttl,
                    keys: listed,
                },
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_answer(a: LeaderAnswer) {
        let pa = PeerAnswer { id: 77, answer: a };
        let mut body = Vec::new();
        pa.encode_into(&mut body);
        assert_eq!(PeerAnswer::decode(&body).unwrap(), pa);
    }

    #[test]
    fn requests_round_trip_byte_for_byte() {
        let r = PeerRequest {
            id: 0x0102_0304_0506_0708,
            query: LeaderQuery::TimeToLive { id: -2, keys: true },
        };
        let mut body = Vec::new();
        r.encode_into(&mut body);
        assert_eq!(
            body,
            [
                8, 7, 6, 5, 4, 3, 2, 1, // id
                2, // op: time-to-live
                0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // lease -2
                1,    // flags: keys
            ]
        );
        assert_eq!(PeerRequest::decode(&body).unwrap(), r);
        let r = PeerRequest {
            id: 1,
            query: LeaderQuery::Renew(5),
        };
        body.clear();
        r.encode_into(&mut body);
        assert_eq!(PeerRequest::decode(&body).unwrap(), r);
        body[17] = 1;
        assert!(
            PeerRequest::decode(&body).is_err(),
            "a renewal lists no keys"
        );
        body[17] = 0;
        body[8] = 9;
        assert!(PeerRequest::decode(&body).is_err());
        let r = PeerRequest {
            id: 2,
            query: LeaderQuery::LearnerReady(u64::MAX - 1),
        };
        body.clear();
        r.encode_into(&mut body);
        assert_eq!(body[8], 3);
        assert_eq!(PeerRequest::decode(&body).unwrap(), r);
        assert!(PeerRequest::decode(&body[..17]).is_err());
    }

    #[test]
    fn answers_round_trip_and_bad_ones_are_refused() {
        round_trip_answer(LeaderAnswer::Renewed { ttl: 30 });
        round_trip_answer(LeaderAnswer::NotFound);
        round_trip_answer(LeaderAnswer::Retry);
        round_trip_answer(LeaderAnswer::NotLeader);
        round_trip_answer(LeaderAnswer::TooLarge);
        round_trip_answer(LeaderAnswer::LearnerReady(true));
        round_trip_answer(LeaderAnswer::LearnerReady(false));
        round_trip_answer(LeaderAnswer::TimeToLive {
            ttl: 9,
            granted_ttl: 10,
            keys: vec![
                Bytes::from_static(b"a"),
                Bytes::new(),
                Bytes::from(vec![0xff; 300]),
            ],
        });
        let mut body = Vec::new();
        PeerAnswer {
            id: 1,
            answer: LeaderAnswer::TimeToLive {
                ttl: 1,
                granted_ttl: 2,
                keys: vec![Bytes::from_static(b"abc")],
            },
        }
        .encode_into(&mut body);
        assert_eq!(body.len(), ANSWER_HEAD_BYTES + 4 + 3);
        assert!(PeerAnswer::decode(&body[..body.len() - 1]).is_err(), "cut");
        let mut longer = body.clone();
        longer.push(0);
        assert!(PeerAnswer::decode(&longer).is_err(), "trailing bytes");
        let mut lying = body.clone();
        lying[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            PeerAnswer::decode(&lying).is_err(),
            "a count it cannot hold"
        );
        let mut status = body.clone();
        status[8] = STATUS_RENEWED;
        assert!(PeerAnswer::decode(&status).is_err(), "keys only with a TTL");
        status[8] = 0;
        assert!(PeerAnswer::decode(&status).is_err());

        let renew = LeaderQuery::Renew(1);
        let ttl = LeaderQuery::TimeToLive { id: 1, keys: false };
        assert!(LeaderAnswer::Renewed { ttl: 5 }.fits(&renew));
        assert!(!LeaderAnswer::Renewed { ttl: 5 }.fits(&ttl));
        assert!(!LeaderAnswer::TooLarge.fits(&renew));
        assert!(LeaderAnswer::NotFound.fits(&ttl) && LeaderAnswer::Retry.fits(&renew));
        let t = LeaderAnswer::TimeToLive {
            ttl: 1,
            granted_ttl: 2,
            keys: vec![],
        };
        assert!(t.fits(&ttl) && !t.fits(&renew));
    }

    #[test]
    fn the_leader_answers_from_its_lessor() {
        use std::time::Duration;
        let t0 = Instant::now();
        let mut le = Lessor::new(2, None);
        let q = LeaderQuery::Renew(1);
        assert_eq!(
            answer(&mut le, &q, t0, MAX_ANSWER_BYTES).0,
            LeaderAnswer::Retry,
            "not promoted: it cannot tell"
        );
        le.promote(t0, Duration::ZERO);
        assert_eq!(
            answer(&mut le, &q, t0, MAX_ANSWER_BYTES).0,
            LeaderAnswer::NotFound
        );
        let (mvcc, _) = ferret_mvcc::Mvcc::open(
            ferret_mvcc::Storage::Memory,
            ferret_mvcc::MvccConfig::default(),
        )
        .unwrap();
        // Grants go through the applier; use one to fill a lessor.
        let restored = ferret_mvcc::Restored {
            consistent_index: 0,
            current_rev: 1,
            compact_rev: 0,
            keys: 0,
            leases: 0,
        };
        let mut a = ferret_mvcc::Applier::new(mvcc.clone(), &restored);
        let grant = ferret_proto::etcdserverpb::LeaseGrantRequest { id: 1, ttl: 10 };
        let put = ferret_proto::etcdserverpb::PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            lease: 1,
            ..Default::default()
        };
        a.apply(1, ferret_mvcc::V3Request::LeaseGrant(&grant), t0);
        a.apply(2, ferret_mvcc::V3Request::Put(&put), t0);
        let mut le = mvcc.lessor();
        assert_eq!(
            answer(&mut le, &q, t0, MAX_ANSWER_BYTES).0,
            LeaderAnswer::Retry,
            "not promoted yet"
        );
        le.promote(t0, Duration::ZERO);
        assert_eq!(
            answer(&mut le, &q, t0, MAX_ANSWER_BYTES).0,
            LeaderAnswer::Renewed { ttl: 10 }
        );
        let ttl = LeaderQuery::TimeToLive { id: 1, keys: true };
        assert_eq!(
            answer(
                &mut le,
                &ttl,
                t0 + Duration::from_millis(2500),
                MAX_ANSWER_BYTES
            )
            .0,
            LeaderAnswer::TimeToLive {
                ttl: 7,
                granted_ttl: 10,
                keys: vec![Bytes::from_static(b"k")]
            }
        );
        assert_eq!(
            answer(&mut le, &ttl, t0, ANSWER_HEAD_BYTES + 4).0,
            LeaderAnswer::TooLarge
        );
        assert_eq!(
            answer(&mut le, &q, t0 + Duration::from_secs(11), MAX_ANSWER_BYTES).0,
            LeaderAnswer::Retry,
            "expired, not revoked yet"
        );
        drop(le);
        mvcc.close();
    }
}
