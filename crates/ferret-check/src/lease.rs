//! The lease check: a key attached to a lease vanishes only once the lease
//! expired or was revoked, never while it is kept alive.
//!
//! # What a client can prove
//!
//! A lease grant answered with TTL `t`, or a keep-alive answered with TTL
//! `t > 0`, means the leader (re)started the lease's clock at some moment
//! after the request was sent: the lease lives at least until the request's
//! **invocation + `t`** (a [`Promise`]). A keep-alive answered TTL 0 says
//! the lease is gone and promises nothing.
//!
//! Whether the key is there is learnt from linearizable reads of it
//! ([`Probe`]): an absent read means the key was deleted before the read
//! completed. So a read that completed before some promise ran out, and
//! found the key absent, proves the key vanished while the lease was
//! promised alive, unless a revoke was sent before the read completed.
//! That holds whatever the order of the two: a keep-alive renewed *after*
//! the key vanished is a lease that outlived its key, as wrong.
//!
//! Also: a key read present after a revoke of its lease was acknowledged
//! outlived its lease; and a key read present after it was read absent came
//! back (the workload never writes a leased key twice).
//!
//! Keep-alives that failed or got no answer promise nothing and are not
//! given to the check. Expiry itself is not required to be prompt: a new
//! leader restarts every lease's clock, so a lease may outlive its TTL.

/// A lease promised alive until at least `invoke_ns + ttl_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    pub invoke_ns: u64,
    pub complete_ns: u64,
    /// The TTL the answer gave, in seconds (etcd may raise a requested
    /// TTL to its minimum).
    pub ttl_s: i64,
}

impl Promise {
    fn until_ns(&self) -> u64 {
        self.invoke_ns
            .saturating_add((self.ttl_s.max(0) as u64).saturating_mul(1_000_000_000))
    }
}

/// A linearizable read of the key, answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub present: bool,
}

/// A revoke of the lease: `acknowledged`, or sent without a conclusive
/// answer (it may have happened). Revokes that definitely failed are left
/// out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revoke {
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub acknowledged: bool,
}

/// One key attached to one lease, and everything the client did to both.
/// Times are nanoseconds on the run's one monotonic clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeasedKey {
    pub key: String,
    pub lease_id: i64,
    /// When the acknowledged put that attached the key completed; only
    /// reads invoked after it are checked.
    pub put_complete_ns: u64,
    /// The grant and every keep-alive answered with a TTL above 0.
    pub promises: Vec<Promise>,
    pub revokes: Vec<Revoke>,
    pub probes: Vec<Probe>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseReport {
    pub keys: usize,
    pub probes: usize,
    /// Keys seen to vanish with no revoke sent: the lease expired.
    pub expired: usize,
    /// Keys seen to vanish after a revoke.
    pub revoked: usize,
    /// For expired keys: the longest time from the last promise running
    /// out to the first read that found the key gone, in milliseconds
    /// (how late expiry was; a new leader restarts lease clocks).
    pub expiry_late_ms_max: u64,
    pub violations: Vec<String>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

pub fn check_leases(keys: &[LeasedKey]) -> LeaseReport {
    let mut report = LeaseReport {
        keys: keys.len(),
        ..Default::default()
    };
    for k in keys {
        let probes: Vec<&Probe> = k
            .probes
            .iter()
            .filter(|p| p.invoke_ns >= k.put_complete_ns)
            .collect();
        report.probes += probes.len();
        let first_absent = probes
            .iter()
            .filter(|p| !p.present)
            .min_by_key(|p| p.complete_ns);
        let revoke_sent_before = |t: u64| k.revokes.iter().any(|r| r.invoke_ns < t);
        for a in probes.iter().filter(|p| !p.present) {
            if revoke_sent_before(a.complete_ns) {
                continue;
            }
            if let Some(p) = k
                .promises
                .iter()
                .filter(|p| p.until_ns() > a.complete_ns)
                .max_by_key(|p| p.until_ns())
            {
                report.violations.push(format!(
                    "{} (lease {:x}) vanished while kept alive: read absent by {:.3}s, \
                     but a grant or keep-alive sent at {:.3}s (answered at {:.3}s) gave it {} s, \
                     until {:.3}s; no revoke sent",
                    k.key,
                    k.lease_id,
                    secs(a.complete_ns),
                    secs(p.invoke_ns),
                    secs(p.complete_ns),
                    p.ttl_s,
                    secs(p.until_ns())
                ));
                break;
            }
        }
        for p in probes.iter().filter(|p| p.present) {
            if let Some(r) = k
                .revokes
                .iter()
                .find(|r| r.acknowledged && r.complete_ns < p.invoke_ns)
            {
                report.violations.push(format!(
                    "{} (lease {:x}) read present at {:.3}s, after the revoke of its lease was \
                     acknowledged at {:.3}s",
                    k.key,
                    k.lease_id,
                    secs(p.invoke_ns),
                    secs(r.complete_ns)
                ));
                break;
            }
            if let Some(a) = first_absent.filter(|a| a.complete_ns < p.invoke_ns) {
                report.violations.push(format!(
                    "{} (lease {:x}) came back: read absent by {:.3}s, present again at {:.3}s",
                    k.key,
                    k.lease_id,
                    secs(a.complete_ns),
                    secs(p.invoke_ns)
                ));
                break;
            }
        }
        if let Some(a) = first_absent {
            if revoke_sent_before(a.complete_ns) {
                report.revoked += 1;
            } else {
                report.expired += 1;
                let until = k.promises.iter().map(Promise::until_ns).max().unwrap_or(0);
                let late_ms = a.complete_ns.saturating_sub(until) / 1_000_000;
                report.expiry_late_ms_max = report.expiry_late_ms_max.max(late_ms);
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn promise(at_s: f64, ttl_s: i64) -> Promise {
        let t = (at_s * S as f64) as u64;
        Promise {
            invoke_ns: t,
            complete_ns: t + S / 100,
            ttl_s,
        }
    }
    fn probe(at_s: f64, present: bool) -> Probe {
        let t = (at_s * S as f64) as u64;
        Probe {
            invoke_ns: t,
            complete_ns: t + S / 100,
            present,
        }
    }
    fn key(promises: Vec<Promise>, revokes: Vec<Revoke>, probes: Vec<Probe>) -> LeasedKey {
        LeasedKey {
            key: "/l/1".into(),
            lease_id: 0x1f,
            put_complete_ns: S,
            promises,
            revokes,
            probes,
        }
    }

    #[test]
    fn a_key_kept_alive_then_left_to_expire_passes() {
        let k = key(
            vec![promise(0.5, 3), promise(2.0, 3), promise(4.0, 3)],
            vec![],
            vec![
                probe(1.5, true),
                probe(5.0, true),
                probe(7.5, true), // expiry may be late
                probe(8.0, false),
                probe(9.0, false),
            ],
        );
        let r = check_leases(&[k]);
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!((r.expired, r.revoked, r.probes), (1, 0, 5));
        assert_eq!(r.expiry_late_ms_max, 1010);
    }

    #[test]
    fn a_key_gone_while_kept_alive_fails() {
        let k = key(
            vec![promise(0.5, 3), promise(2.0, 3)],
            vec![],
            vec![probe(3.0, false)],
        );
        let r = check_leases(&[k]);
        assert_eq!(r.violations.len(), 1, "{r:?}");
        assert!(r.violations[0].contains("while kept alive"), "{r:?}");
        // A keep-alive renewed after the key was gone: as wrong.
        let k = key(
            vec![promise(0.5, 3), promise(6.0, 3)],
            vec![],
            vec![probe(5.0, false)],
        );
        assert_eq!(check_leases(&[k]).violations.len(), 1);
    }

    #[test]
    fn a_revoke_sent_explains_a_vanished_key() {
        let revoke = Revoke {
            invoke_ns: 2 * S,
            complete_ns: 2 * S + S / 10,
            acknowledged: false,
        };
        let k = key(
            vec![promise(1.5, 3)],
            vec![revoke],
            vec![probe(2.05, false)],
        );
        let r = check_leases(&[k]);
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!(r.revoked, 1);
    }

    #[test]
    fn present_after_revoke_or_after_vanishing_fails() {
        let revoke = Revoke {
            invoke_ns: 2 * S,
            complete_ns: 2 * S + S / 10,
            acknowledged: true,
        };
        let k = key(vec![promise(0.5, 3)], vec![revoke], vec![probe(2.5, true)]);
        let r = check_leases(&[k]);
        assert!(r.violations[0].contains("after the revoke"), "{r:?}");
        let k = key(
            vec![promise(0.5, 1)],
            vec![],
            vec![probe(3.0, false), probe(4.0, true)],
        );
        let r = check_leases(&[k]);
        assert!(r.violations[0].contains("came back"), "{r:?}");
    }
}
