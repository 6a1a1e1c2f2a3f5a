//! The lessor: leases, the keys attached to them, and when they expire.
//!
//! Two kinds of state, kept apart on purpose:
//!
//! - **Replicated** (changed only by applying log entries, identical on
//!   every member): each lease's id, granted TTL, checkpointed remaining
//!   TTL and attached keys. Persisted in the backend's `lease` table.
//! - **Local** (never affects applied state): when each lease expires.
//!   Only the leader (the *primary* lessor) tracks expiry; it renews on
//!   keep-alives and, when a lease runs out, *proposes* its revocation
//!   through the log like any other write. Followers hold every lease
//!   "forever". So time enters the state machine only through entries.
//!
//! A new leader [`Lessor::promote`]s: every lease gets its full TTL (or its
//! checkpointed remaining TTL) plus the election timeout, as etcd 3.4 does,
//! and expiries piling up in one second are spread out so that revoking
//! them cannot flood the log. Times are passed in (`now`), so tests drive
//! the clock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_proto::leasepb;
use ferret_proto::Message;

/// etcd's largest TTL (`MaxLeaseTTL`, seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// Revocations the leader proposes per second at most (etcd's
/// `leaseRevokeRate`); each expiry check proposes at most half of it.
pub const LEASE_REVOKE_RATE: usize = 1000;
/// etcd's default checkpoint interval.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// A lease whose revocation was proposed but not applied yet is proposed
/// again after this long (etcd's `expiredLeaseRetryInterval`).
pub const EXPIRED_RETRY_INTERVAL: Duration = Duration::from_secs(3);
/// Checkpoints per proposal at most (etcd's `maxLeaseCheckpointBatchSize`).
pub const MAX_CHECKPOINT_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct Lease {
    pub id: i64,
    /// The granted TTL, seconds (raised to the minimum).
    pub ttl: i64,
    /// The last checkpointed remaining TTL, seconds; 0 means unset (use
    /// `ttl`).
    pub remaining_ttl: i64,
    /// Attached keys, sorted: a revocation deletes them in this order on
    /// every member.
    pub keys: BTreeSet<Bytes>,
    /// Local: when it expires; `None` while this member is not primary.
    expiry: Option<Instant>,
}

impl Lease {
    fn effective_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }

    fn refresh(&mut self, now: Instant, extend: Duration) {
        self.expiry = Some(now + extend + Duration::from_secs(self.effective_ttl().max(0) as u64));
    }

    /// Time left, `None` for "forever" (not primary).
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.expiry.map(|e| e.saturating_duration_since(now))
    }

    fn expired(&self, now: Instant) -> bool {
        self.expiry.is_some_and(|e| e <= now)
    }

    pub(crate) fn encode(&self) -> Bytes {
        leasepb::Lease {
            id: self.id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
        .encode_to_vec()
        .into()
    }
}

/// What [`Lessor::renew`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed; the TTL it now has, seconds.
    Renewed(i64),
    /// No such lease.
    NotFound,
    /// Expired and about to be revoked: etcd answers once the revocation
    /// is applied (then the lease is not found).
    Expired,
    /// This member is not the leader.
    NotPrimary,
    /// The lease carries a checkpointed remaining TTL, which a renewal
    /// must clear on every member first: propose a checkpoint of 0
    /// through the log, then renew again (etcd does the same).
    ClearCheckpointFirst,
}

pub struct Lessor {
    leases: HashMap<i64, Lease>,
    primary: bool,
    /// ceil(1.5 × election timeout) in seconds, etcd's `minLeaseTTL`.
    min_ttl: i64,
    /// `--experimental-enable-lease-checkpoint`: the leader checkpoints
    /// remaining TTLs through the log at this interval.
    checkpoint_interval: Option<Duration>,
    /// Expiry candidates (primary only): lazily pruned.
    expiry_heap: BinaryHeap<Reverse<(Instant, i64)>>,
    /// Checkpoint due times (primary only, with checkpointing).
    checkpoint_heap: BinaryHeap<Reverse<(Instant, i64)>>,
}

impl Lessor {
    pub fn new(min_ttl: i64, checkpoint_interval: Option<Duration>) -> Lessor {
        Lessor {
            leases: HashMap::new(),
            primary: false,
            min_ttl,
            checkpoint_interval,
            expiry_heap: BinaryHeap::new(),
            checkpoint_heap: BinaryHeap::new(),
        }
    }

    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Every lease id, soonest to expire first (etcd's `Leases` order;
    /// ties and followers in id order).
    pub fn ids_by_expiry(&self, now: Instant) -> Vec<i64> {
        let mut v: Vec<(Option<Duration>, i64)> = self
            .leases
            .values()
            .map(|l| (l.remaining(now), l.id))
            .collect();
        v.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        v.into_iter().map(|(_, id)| id).collect()
    }

    // ---- replicated: called while applying entries ----

    /// A lease restored from the backend at start (expiry forever).
    pub(crate) fn restore(&mut self, l: leasepb::Lease) {
        self.leases.insert(
            l.id,
            Lease {
                id: l.id,
                ttl: l.ttl.max(self.min_ttl),
                remaining_ttl: l.remaining_ttl,
                keys: BTreeSet::new(),
                expiry: None,
            },
        );
    }

    /// Grants a lease; the TTL is raised to the minimum. The caller has
    /// checked the id (non-zero, unused) and the maximum TTL.
    pub(crate) fn grant(&mut self, id: i64, ttl: i64, now: Instant) -> &Lease {
        let mut l = Lease {
            id,
            ttl: ttl.max(self.min_ttl),
            remaining_ttl: 0,
            keys: BTreeSet::new(),
            expiry: None,
        };
        if self.primary {
            l.refresh(now, Duration::ZERO);
            self.expiry_heap
                .push(Reverse((l.expiry.expect("primary"), id)));
            self.schedule_checkpoint(&l, now);
        }
        self.leases.entry(id).or_insert(l)
    }

    pub(crate) fn remove(&mut self, id: i64) -> Option<Lease> {
        self.leases.remove(&id)
    }

    pub(crate) fn attach(&mut self, id: i64, key: &[u8]) -> bool {
        match self.leases.get_mut(&id) {
            Some(l) => {
                l.keys.insert(Bytes::copy_from_slice(key));
                true
            }
            None => false,
        }
    }

    pub(crate) fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.remove(key);
        }
    }

    /// Applies a checkpoint: the lease's remaining TTL as the leader saw
    /// it. Returns the lease to persist, if it exists.
    pub(crate) fn checkpoint(
        &mut self,
        id: i64,
        remaining_ttl: i64,
        now: Instant,
    ) -> Option<&Lease> {
        let primary = self.primary;
        let l = self.leases.get_mut(&id)?;
        l.remaining_ttl = remaining_ttl;
        let l = l.clone();
        if primary {
            self.schedule_checkpoint(&l, now);
        }
        self.leases.get(&id)
    }

    // ---- local: the leader's clock ----

    /// This member became leader: every lease runs again from its full (or
    /// checkpointed) TTL plus `extend`, spread so that no more than 3/4 of
    /// the revoke rate expire in any one second.
    pub fn promote(&mut self, now: Instant, extend: Duration) {
        self.primary = true;
        self.expiry_heap.clear();
        self.checkpoint_heap.clear();
        for l in self.leases.values_mut() {
            l.refresh(now, extend);
        }
        if self.leases.len() >= LEASE_REVOKE_RATE {
            let mut ids = self.ids_by_expiry(now);
            ids.dedup();
            let target = (3 * LEASE_REVOKE_RATE / 4) as f64;
            let first = self.leases[&ids[0]].remaining(now).unwrap_or_default();
            let mut base = first;
            let mut next = base + Duration::from_secs(1);
            let mut expires = 0usize;
            for id in ids {
                let l = self.leases.get_mut(&id).expect("listed");
                let remaining = l.remaining(now).unwrap_or_default();
                if remaining > next {
                    base = remaining;
                    next = base + Duration::from_secs(1);
                    expires = 1;
                    continue;
                }
                expires += 1;
                if expires as f64 <= target {
                    continue;
                }
                let rate_delay = 1e9 * (expires as f64 / target)
                    - (remaining.as_nanos() as f64 - base.as_nanos() as f64);
                let delay = Duration::from_nanos(rate_delay.max(0.0) as u64);
                next = base + delay;
                l.refresh(now, delay + extend);
            }
        }
        let leases: Vec<Lease> = self.leases.values().cloned().collect();
        for l in &leases {
            self.expiry_heap
                .push(Reverse((l.expiry.expect("refreshed"), l.id)));
            self.schedule_checkpoint(l, now);
        }
    }

    /// This member is no longer leader: no lease expires here.
    pub fn demote(&mut self) {
        self.primary = false;
        for l in self.leases.values_mut() {
            l.expiry = None;
        }
        self.expiry_heap.clear();
        self.checkpoint_heap.clear();
    }

    /// A keep-alive (leader only).
    pub fn renew(&mut self, id: i64, now: Instant) -> Renewal {
        if !self.primary {
            return Renewal::NotPrimary;
        }
        let checkpointing = self.checkpoint_interval.is_some();
        let Some(l) = self.leases.get_mut(&id) else {
            return Renewal::NotFound;
        };
        if l.expired(now) {
            return Renewal::Expired;
        }
        if checkpointing && l.remaining_ttl > 0 {
            return Renewal::ClearCheckpointFirst;
        }
        l.refresh(now, Duration::ZERO);
        let (ttl, expiry) = (l.ttl, l.expiry.expect("primary"));
        self.expiry_heap.push(Reverse((expiry, id)));
        Renewal::Renewed(ttl)
    }

    /// Leases that ran out, at most `limit`, for the leader to propose
    /// revoking. A lease returned is asked for again only after
    /// [`EXPIRED_RETRY_INTERVAL`] (its revocation may be in flight).
    pub fn expired(&mut self, now: Instant, limit: usize) -> Vec<i64> {
        let mut out = Vec::new();
        if !self.primary {
            return out;
        }
        while out.len() < limit {
            let Some(&Reverse((at, id))) = self.expiry_heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.expiry_heap.pop();
            let Some(l) = self.leases.get(&id) else {
                continue; // revoked meanwhile
            };
            let Some(expiry) = l.expiry else {
                continue;
            };
            if expiry > now {
                // Renewed since: its newer entry is in the heap too.
                continue;
            }
            out.push(id);
            self.expiry_heap
                .push(Reverse((now + EXPIRED_RETRY_INTERVAL, id)));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn schedule_checkpoint(&mut self, l: &Lease, now: Instant) {
        let Some(interval) = self.checkpoint_interval else {
            return;
        };
        if !self.primary {
            return;
        }
        if l.effective_ttl() > interval.as_secs() as i64 {
            self.checkpoint_heap.push(Reverse((now + interval, l.id)));
        }
    }

    /// Checkpoints due (leader, with checkpointing on): `(id, remaining
    /// TTL in seconds)` for leases whose remaining TTL is below their TTL.
    pub fn due_checkpoints(&mut self, now: Instant, limit: usize) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if !self.primary || self.checkpoint_interval.is_none() {
            return out;
        }
        while out.len() < limit {
            let Some(&Reverse((at, id))) = self.checkpoint_heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.checkpoint_heap.pop();
            let Some(l) = self.leases.get(&id) else {
                continue;
            };
            let Some(expiry) = l.expiry else { continue };
            if expiry <= now {
                continue;
            }
            let remaining = (expiry - now).as_secs_f64().ceil() as i64;
            if remaining >= l.ttl {
                continue;
            }
            out.push((id, remaining));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn ttl_is_raised_to_minimum() {
        let mut le = Lessor::new(2, None);
        let now = Instant::now();
        assert_eq!(le.grant(1, 1, now).ttl, 2);
        assert_eq!(le.grant(2, 10, now).ttl, 10);
    }

    #[test]
    fn followers_never_expire_and_cannot_renew() {
        let mut le = Lessor::new(2, None);
        let now = Instant::now();
        le.grant(1, 5, now);
        assert_eq!(le.expired(now + secs(100), 10), Vec::<i64>::new());
        assert_eq!(le.renew(1, now), Renewal::NotPrimary);
        assert_eq!(le.get(1).unwrap().remaining(now), None);
    }

    #[test]
    fn primary_expires_and_renews() {
        let mut le = Lessor::new(2, None);
        let t0 = Instant::now();
        le.promote(t0, Duration::ZERO);
        le.grant(7, 5, t0);
        assert!(le.expired(t0 + secs(4), 10).is_empty());
        assert_eq!(le.renew(7, t0 + secs(4)), Renewal::Renewed(5));
        assert!(le.expired(t0 + secs(6), 10).is_empty(), "renewed at 4");
        assert_eq!(le.expired(t0 + secs(10), 10), vec![7]);
        // Asked again only after the retry interval.
        assert!(le.expired(t0 + secs(11), 10).is_empty());
        assert_eq!(le.expired(t0 + secs(14), 10), vec![7]);
        assert_eq!(le.renew(7, t0 + secs(14)), Renewal::Expired);
        assert_eq!(le.renew(8, t0), Renewal::NotFound);
    }

    #[test]
    fn promotion_extends_every_lease() {
        let mut le = Lessor::new(2, None);
        let t0 = Instant::now();
        le.grant(1, 10, t0);
        le.promote(t0, secs(1));
        assert_eq!(le.get(1).unwrap().remaining(t0), Some(secs(11)));
        le.demote();
        assert_eq!(le.get(1).unwrap().remaining(t0), None);
    }

    #[test]
    fn promotion_spreads_piled_up_expiries() {
        let mut le = Lessor::new(2, None);
        let t0 = Instant::now();
        for id in 1..=2000 {
            le.grant(id, 10, t0);
        }
        le.promote(t0, Duration::ZERO);
        // No one-second window holds more than 3/4 of the revoke rate.
        let mut at: Vec<Duration> = (1..=2000)
            .map(|id| le.get(id).unwrap().remaining(t0).unwrap())
            .collect();
        at.sort();
        for (i, a) in at.iter().enumerate() {
            let in_window = at[i..].iter().take_while(|b| **b < *a + secs(1)).count();
            assert!(
                in_window <= 751,
                "{in_window} expire within a second of {a:?}"
            );
        }
        // The limit per check is respected.
        assert_eq!(le.expired(t0 + secs(3600), 500).len(), 500);
    }

    #[test]
    fn keys_are_kept_sorted() {
        let mut le = Lessor::new(2, None);
        le.grant(1, 10, Instant::now());
        assert!(le.attach(1, b"b"));
        assert!(le.attach(1, b"a"));
        assert!(!le.attach(2, b"a"));
        le.detach(1, b"b");
        let keys: Vec<&[u8]> = le.get(1).unwrap().keys.iter().map(|k| &k[..]).collect();
        assert_eq!(keys, vec![&b"a"[..]]);
    }

    #[test]
    fn checkpoints_record_remaining_ttl() {
        let mut le = Lessor::new(2, Some(secs(5)));
        let t0 = Instant::now();
        le.promote(t0, Duration::ZERO);
        le.grant(1, 60, t0);
        le.grant(2, 3, t0); // below the interval: never checkpointed
        assert!(le.due_checkpoints(t0 + secs(4), 10).is_empty());
        assert_eq!(le.due_checkpoints(t0 + secs(5), 10), vec![(1, 55)]);
        le.checkpoint(1, 55, t0 + secs(5));
        le.demote();
        le.promote(t0 + secs(6), Duration::ZERO);
        assert_eq!(
            le.get(1).unwrap().remaining(t0 + secs(6)),
            Some(secs(55)),
            "a new leader starts from the checkpoint"
        );
        assert_eq!(le.renew(1, t0 + secs(6)), Renewal::ClearCheckpointFirst);
        le.checkpoint(1, 0, t0 + secs(6));
        assert_eq!(le.renew(1, t0 + secs(6)), Renewal::Renewed(60));
        assert_eq!(le.get(1).unwrap().remaining(t0 + secs(6)), Some(secs(60)));
    }
}
