//! The Lock and Election services, one scenario run against each server
//! and written down as text normalised for comparison: revisions relative
//! to the server's revision at the start, leases chosen by the scenario
//! (so the session keys, `<name>/<lease in hex>`, are the same), the
//! header's revision only.

use std::time::Duration;

use ferret_proto::etcdserverpb::{
    lease_client::LeaseClient, LeaseGrantRequest, LeaseTimeToLiveRequest, ResponseHeader,
};
use ferret_proto::mvccpb::KeyValue;
use ferret_proto::v3electionpb::{
    election_client::ElectionClient, CampaignRequest, LeaderKey, LeaderRequest, ProclaimRequest,
    ResignRequest,
};
use ferret_proto::v3lockpb::{lock_client::LockClient, LockRequest, UnlockRequest};
use tonic::transport::Channel;

const L1: i64 = 0x1111;
const L2: i64 = 0x2222;

/// How long a call that must wait is given to show it does not return.
const STILL_WAITING: Duration = Duration::from_millis(300);

struct Writer {
    base: i64,
    text: String,
}

impl Writer {
    fn rev(&self, h: &Option<ResponseHeader>) -> String {
        match h {
            Some(h) => format!("base{:+}", h.revision - self.base),
            None => "no header".into(),
        }
    }

    fn kv(&self, kv: &Option<KeyValue>) -> String {
        match kv {
            Some(kv) => format!(
                "{}={} create base{:+} mod base{:+} version {} lease {:x}",
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value),
                kv.create_revision - self.base,
                kv.mod_revision - self.base,
                kv.version,
                kv.lease
            ),
            None => "no kv".into(),
        }
    }

    fn leader(&self, l: &Option<LeaderKey>) -> String {
        match l {
            Some(l) => format!(
                "name {} key {} rev base{:+} lease {:x}",
                String::from_utf8_lossy(&l.name),
                String::from_utf8_lossy(&l.key),
                l.rev - self.base,
                l.lease
            ),
            None => "no leader key".into(),
        }
    }

    fn line<T>(
        &mut self,
        step: &str,
        r: Result<T, tonic::Status>,
        show: impl Fn(&Self, T) -> String,
    ) {
        let s = match r {
            Ok(v) => show(self, v),
            Err(st) => format!("{:?}: {}", st.code(), st.message()),
        };
        self.text.push_str(&format!("{step}: {s}\n"));
    }
}

fn status<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, tonic::Status> {
    r.map(|r| r.into_inner())
}

/// Runs the scenario on a fresh server whose revision is `base`.
pub async fn transcript(ch: Channel, base: i64) -> String {
    let mut w = Writer {
        base,
        text: String::new(),
    };
    let mut lease = LeaseClient::new(ch.clone());
    let mut lock = LockClient::new(ch.clone());
    let mut el = ElectionClient::new(ch.clone());
    for id in [L1, L2] {
        let r = status(lease.lease_grant(LeaseGrantRequest { ttl: 60, id }).await);
        w.line(&format!("grant {id:x}"), r, |_, r| {
            format!("id {:x} ttl {}", r.id, r.ttl)
        });
    }

    // Lock: the uncontended path, the same session again, a waiter.
    let lk = |lease: i64| LockRequest {
        name: "lk".into(),
        lease,
    };
    let r = status(lock.lock(lk(L1)).await);
    w.line("lock lk with L1", r, |w, r| {
        format!(
            "key {} at {}",
            String::from_utf8_lossy(&r.key),
            w.rev(&r.header)
        )
    });
    let r = status(lock.lock(lk(L1)).await);
    w.line("lock lk with L1 again", r, |w, r| {
        format!(
            "key {} at {}",
            String::from_utf8_lossy(&r.key),
            w.rev(&r.header)
        )
    });
    let mut waiter = {
        let mut l = LockClient::new(ch.clone());
        tokio::spawn(async move { status(l.lock(lk(L2)).await) })
    };
    let early = tokio::time::timeout(STILL_WAITING, &mut waiter)
        .await
        .is_ok();
    w.text.push_str(&format!(
        "lock lk with L2 returned before the unlock: {early}\n"
    ));
    let r = status(
        lock.unlock(UnlockRequest {
            key: "lk/1111".into(),
        })
        .await,
    );
    w.line("unlock lk/1111", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = match tokio::time::timeout(Duration::from_secs(10), waiter).await {
        Ok(joined) => joined.expect("the waiting lock's task"),
        Err(_) => Err(tonic::Status::deadline_exceeded("still waiting after 10 s")),
    };
    w.line("lock lk with L2, after the unlock", r, |w, r| {
        format!(
            "key {} at {}",
            String::from_utf8_lossy(&r.key),
            w.rev(&r.header)
        )
    });
    let r = status(lock.lock(lk(0x9999)).await);
    w.line("lock with a lease that does not exist", r, |w, r| {
        format!(
            "key {} at {}",
            String::from_utf8_lossy(&r.key),
            w.rev(&r.header)
        )
    });
    let r = status(lock.unlock(UnlockRequest { key: "".into() }).await);
    w.line("unlock without a key", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(
        lock.unlock(UnlockRequest {
            key: "lk/none".into(),
        })
        .await,
    );
    w.line("unlock a key that is not there", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    // Without a lease, the session grants one of 60 s.
    let r = status(
        lock.lock(LockRequest {
            name: "lk0".into(),
            lease: 0,
        })
        .await,
    );
    let granted = match &r {
        Ok(r) => String::from_utf8_lossy(&r.key)
            .strip_prefix("lk0/")
            .and_then(|h| i64::from_str_radix(h, 16).ok()),
        Err(_) => None,
    };
    w.line("lock lk0 without a lease", r, |w, r| {
        let k = String::from_utf8_lossy(&r.key).into_owned();
        format!(
            "key under lk0/: {} at {}",
            k.starts_with("lk0/"),
            w.rev(&r.header)
        )
    });
    if let Some(id) = granted {
        let r = status(
            lease
                .lease_time_to_live(LeaseTimeToLiveRequest { id, keys: true })
                .await,
        );
        w.line("its lease", r, |_, r| {
            format!("granted ttl {}, {} key(s)", r.granted_ttl, r.keys.len())
        });
    }

    // Election: no leader, a campaign, proclaims, a second campaign of
    // the same session with another value, resign.
    let leader = |name: &'static str| LeaderRequest { name: name.into() };
    let r = status(el.leader(leader("el")).await);
    w.line("leader of el before any campaign", r, |w, r| w.kv(&r.kv));
    let r = status(
        el.campaign(CampaignRequest {
            name: "el".into(),
            lease: L1,
            value: "a".into(),
        })
        .await,
    );
    let elected = r.as_ref().ok().and_then(|r| r.leader.clone());
    w.line("campaign el with L1 for a", r, |w, r| {
        format!("{} at {}", w.leader(&r.leader), w.rev(&r.header))
    });
    let r = status(el.leader(leader("el")).await);
    w.line("leader of el", r, |w, r| {
        format!("{} at {}", w.kv(&r.kv), w.rev(&r.header))
    });
    let r = status(
        el.proclaim(ProclaimRequest {
            leader: elected.clone(),
            value: "b".into(),
        })
        .await,
    );
    w.line("proclaim b", r, |w, r| format!("at {}", w.rev(&r.header)));
    let r = status(el.leader(leader("el")).await);
    w.line("leader of el", r, |w, r| {
        format!("{} at {}", w.kv(&r.kv), w.rev(&r.header))
    });
    let r = status(
        el.campaign(CampaignRequest {
            name: "el".into(),
            lease: L1,
            value: "c".into(),
        })
        .await,
    );
    w.line("campaign el with L1 again, for c", r, |w, r| {
        format!("{} at {}", w.leader(&r.leader), w.rev(&r.header))
    });
    let r = status(el.leader(leader("el")).await);
    w.line("leader of el", r, |w, r| {
        format!("{} at {}", w.kv(&r.kv), w.rev(&r.header))
    });
    let stale = elected.clone().map(|mut l| {
        l.rev += 100;
        l
    });
    let r = status(
        el.proclaim(ProclaimRequest {
            leader: stale.clone(),
            value: "x".into(),
        })
        .await,
    );
    w.line("proclaim with a stale leader key", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(
        el.proclaim(ProclaimRequest {
            leader: None,
            value: "x".into(),
        })
        .await,
    );
    w.line("proclaim without a leader key", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(el.resign(ResignRequest { leader: stale }).await);
    w.line("resign with a stale leader key", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(el.resign(ResignRequest { leader: None }).await);
    w.line("resign without a leader key", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(el.resign(ResignRequest { leader: elected }).await);
    w.line("resign", r, |w, r| format!("at {}", w.rev(&r.header)));
    let r = status(el.leader(leader("el")).await);
    w.line("leader of el after the resign", r, |w, r| w.kv(&r.kv));

    // A second candidate waits for the first, and an observer sees both.
    // The observer runs on its own: etcd sends the stream's headers only
    // with its first message.
    let observer = {
        let mut e = ElectionClient::new(ch.clone());
        tokio::spawn(async move {
            let w = Writer {
                base,
                text: String::new(),
            };
            let mut lines = Vec::new();
            let mut stream = match e.observe(leader("el2")).await {
                Ok(s) => s.into_inner(),
                Err(st) => return vec![format!("observe el2: {:?}: {}", st.code(), st.message())],
            };
            // Three leader values, then nothing more.
            for i in 0..4 {
                let wait = if i < 3 {
                    Duration::from_secs(10)
                } else {
                    STILL_WAITING
                };
                let s = match tokio::time::timeout(wait, stream.message()).await {
                    Ok(Ok(Some(r))) => format!("{} at {}", w.kv(&r.kv), w.rev(&r.header)),
                    Ok(Ok(None)) => "the stream ended".into(),
                    Ok(Err(st)) => format!("{:?}: {}", st.code(), st.message()),
                    Err(_) => "nothing yet".into(),
                };
                lines.push(format!("observed el2 #{i}: {s}"));
            }
            lines
        })
    };
    // Let the observer read that there is no leader yet.
    tokio::time::sleep(STILL_WAITING).await;
    let r = status(
        el.campaign(CampaignRequest {
            name: "el2".into(),
            lease: L1,
            value: "first".into(),
        })
        .await,
    );
    let first = r.as_ref().ok().and_then(|r| r.leader.clone());
    w.line("campaign el2 with L1", r, |w, r| {
        format!("{} at {}", w.leader(&r.leader), w.rev(&r.header))
    });
    let mut second = {
        let mut e = ElectionClient::new(ch.clone());
        tokio::spawn(async move {
            status(
                e.campaign(CampaignRequest {
                    name: "el2".into(),
                    lease: L2,
                    value: "second".into(),
                })
                .await,
            )
        })
    };
    let early = tokio::time::timeout(STILL_WAITING, &mut second)
        .await
        .is_ok();
    w.text.push_str(&format!(
        "campaign el2 with L2 returned while L1 leads: {early}\n"
    ));
    let r = status(
        el.proclaim(ProclaimRequest {
            leader: first.clone(),
            value: "first again".into(),
        })
        .await,
    );
    w.line("proclaim el2 by L1", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = status(el.resign(ResignRequest { leader: first }).await);
    w.line("resign el2 by L1", r, |w, r| {
        format!("at {}", w.rev(&r.header))
    });
    let r = match tokio::time::timeout(Duration::from_secs(10), second).await {
        Ok(joined) => joined.expect("the waiting campaign's task"),
        Err(_) => Err(tonic::Status::deadline_exceeded("still waiting after 10 s")),
    };
    w.line("campaign el2 with L2, after the resign", r, |w, r| {
        format!("{} at {}", w.leader(&r.leader), w.rev(&r.header))
    });
    for line in observer.await.expect("the observer's task") {
        w.text.push_str(&line);
        w.text.push('\n');
    }
    w.text
}
