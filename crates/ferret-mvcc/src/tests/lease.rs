//! Leases through the applier: grant, attach, revoke, checkpoint.

use ferret_proto::etcdserverpb::{LeaseCheckpoint, LeaseCheckpointRequest, PutRequest};

use super::{b, Harness};
use crate::{MvccError, V3Request, MAX_LEASE_TTL};

#[test]
fn grant_rules() {
    let mut h = Harness::memory();
    assert_eq!(h.grant(1, 1).unwrap(), 2, "raised to the minimum TTL");
    assert_eq!(h.grant(1, 10), Err(MvccError::LeaseExists));
    assert_eq!(
        h.grant(2, MAX_LEASE_TTL + 1),
        Err(MvccError::LeaseTtlTooLarge)
    );
    assert_eq!(h.grant(0, 10), Err(MvccError::LeaseNotFound));
    assert_eq!(h.rev(), 1, "leases do not change the revision");
}

#[test]
fn revoke_deletes_attached_keys_in_one_revision() {
    let mut h = Harness::memory();
    h.grant(9, 60).unwrap();
    for k in ["b", "a", "c"] {
        h.put_req(PutRequest {
            key: b(k),
            value: b("v"),
            lease: 9,
            ..Default::default()
        })
        .unwrap();
    }
    h.put("other", "v"); // 5
                         // Moving a key to no lease detaches it.
    h.put("c", "v2"); // 6
    assert_eq!(h.m.lessor().get(9).unwrap().keys.len(), 2);
    let rev = h.revoke(9).unwrap();
    assert_eq!(rev, 7);
    assert_eq!(
        h.all(0),
        vec![("c".into(), "v2".into()), ("other".into(), "v".into())]
    );
    assert!(h.m.lessor().get(9).is_none());
    assert_eq!(h.revoke(9), Err(MvccError::LeaseNotFound));
    // A revocation with no keys does not change the revision.
    h.grant(10, 60).unwrap();
    assert_eq!(h.revoke(10).unwrap(), 7);
}

#[test]
fn deleting_a_key_detaches_it() {
    let mut h = Harness::memory();
    h.grant(3, 60).unwrap();
    h.put_req(PutRequest {
        key: b("k"),
        value: b("v"),
        lease: 3,
        ..Default::default()
    })
    .unwrap();
    h.del("k", "");
    assert!(h.m.lessor().get(3).unwrap().keys.is_empty());
    // ignore_lease keeps the lease across a put.
    h.put_req(PutRequest {
        key: b("k"),
        value: b("v"),
        lease: 3,
        ..Default::default()
    })
    .unwrap();
    h.put_req(PutRequest {
        key: b("k"),
        value: b("w"),
        ignore_lease: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(h.get("k").unwrap().lease, 3);
    assert_eq!(h.m.lessor().get(3).unwrap().keys.len(), 1);
}

#[test]
fn checkpoints_apply_to_existing_leases() {
    let mut h = Harness::memory();
    h.grant(4, 100).unwrap();
    let c = LeaseCheckpointRequest {
        checkpoints: vec![
            LeaseCheckpoint {
                id: 4,
                remaining_ttl: 42,
            },
            LeaseCheckpoint {
                id: 5,
                remaining_ttl: 1,
            },
        ],
    };
    h.apply(V3Request::LeaseCheckpoint(&c)).unwrap();
    assert_eq!(h.m.lessor().get(4).unwrap().remaining_ttl, 42);
}
