//! Against etcd's own tools (Debian's etcd 3.4): a snapshot built by the
//! writer passes `etcdctl snapshot status` and `restore`, and a restored
//! etcd serves its keys; a snapshot saved from a real etcd is read back by
//! the reader, and copied through the writer it keeps etcd's status hash.
//!
//! etcd is found as the other suites find it ($ETCD_BIN, else `etcd` on
//! PATH, else /usr/bin/etcd), etcdctl next to it. Without them the tests
//! are skipped with a message, or fail when `CI` is set. Each etcd is a
//! one-member [`Cluster`] of the test kit: free loopback ports, killed
//! when it drops.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ferret_bbolt::{strip_sha256, Db, Writer};
use ferret_proto::mvccpb::KeyValue;
use ferret_proto::Message;
use ferret_testkit::cluster::{Cluster, Options};

/// Keys and values of one bucket, in order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// etcd's timers for these tests: a one-member cluster elects itself
/// after one election timeout, so a short one makes the tests quicker.
const HEARTBEAT_MS: u64 = 20;
const ELECTION_MS: u64 = 200;

/// The reference etcd and its etcdctl.
struct Tools {
    etcd: PathBuf,
    etcdctl: PathBuf,
}

impl Tools {
    /// etcd and the etcdctl beside it; `None` (after saying so) where
    /// either is missing, a failure when `CI` is set.
    fn find(test: &str) -> Option<Tools> {
        let tools = ferret_testkit::bin::find_etcd().and_then(|etcd| {
            let etcdctl = etcd.with_file_name("etcdctl");
            etcdctl.is_file().then_some(Tools { etcd, etcdctl })
        });
        if tools.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: etcd or etcdctl not found (set ETCD_BIN, put etcd on PATH or install \
                 Debian's etcd-server and etcd-client); required when CI is set"
            );
            // Written past libtest's capture so that it shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED {test}: etcd or etcdctl not found \
                 (set ETCD_BIN or apt-get install etcd-server etcd-client) !!!!!!!!\n"
            );
        }
        tools
    }

    /// A one-member etcd cluster, serving and led.
    fn start_etcd(&self) -> Etcd<'_> {
        let cluster = Cluster::start(Options {
            binary: self.etcd.clone(),
            size: 1,
            heartbeat_ms: HEARTBEAT_MS,
            election_ms: ELECTION_MS,
            snapshot_count: None,
            extra: Vec::new(),
            peer_tls: false,
            https_client: false,
        });
        Etcd {
            tools: self,
            cluster,
        }
    }

    fn etcdctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        // No inherited ETCDCTL_* variable (endpoints, credentials) applies.
        let mut child = Command::new(&self.etcdctl)
            .env_clear()
            .env("ETCDCTL_API", "3")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// `etcdctl snapshot status FILE -w json`: (hash, revision, totalKey,
    /// totalSize).
    fn snapshot_status(&self, path: &Path) -> (u32, i64, usize, u64) {
        let json = self.etcdctl(
            &["snapshot", "status", path.to_str().unwrap(), "-w", "json"],
            None,
        );
        let status: serde_json::Value = serde_json::from_slice(&json).unwrap();
        (
            status["hash"].as_u64().unwrap() as u32,
            status["revision"].as_i64().unwrap(),
            status["totalKey"].as_u64().unwrap() as usize,
            status["totalSize"].as_u64().unwrap(),
        )
    }
}

/// A running etcd member (the cluster's only one), killed when dropped.
struct Etcd<'a> {
    tools: &'a Tools,
    cluster: Cluster,
}

impl Etcd<'_> {
    /// Stops the member, replaces its data dir with `snapshot` restored by
    /// `etcdctl snapshot restore` (under the member's own name, peer URL
    /// and cluster), and starts it again on that data.
    fn restore(&mut self, snapshot: &Path) {
        self.cluster.kill(0);
        self.cluster.wipe(0);
        let member = &self.cluster.members[0];
        let peer_url = member.peer_url();
        let initial_cluster = format!("{}={peer_url}", member.name);
        self.tools.etcdctl(
            &[
                "snapshot",
                "restore",
                snapshot.to_str().unwrap(),
                "--data-dir",
                member.data_dir.to_str().unwrap(),
                "--name",
                &member.name,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &initial_cluster,
            ],
            None,
        );
        self.cluster.restart(0);
        self.cluster.wait_ready(0);
    }

    fn ctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let endpoint = self.cluster.members[0].client_url();
        let mut all = vec!["--endpoints", &endpoint];
        all.extend_from_slice(args);
        self.tools.etcdctl(&all, stdin)
    }

    /// `etcdctl get --prefix ""`: the live keys and the revision.
    fn get_all(&self) -> (i64, BTreeMap<Vec<u8>, KeyValue>) {
        let json = self.ctl(&["get", "", "--prefix", "-w", "json"], None);
        parse_range_response(&json)
    }
}

// ---------------------------------------------------------------------
// etcd's key bucket: revision keys and mvccpb.KeyValue.

/// etcd's revision key: main rev (8 bytes BE), '_', sub rev (8 bytes BE),
/// and 't' for a tombstone.
fn revision_key(main: i64, sub: i64, tombstone: bool) -> Vec<u8> {
    let mut key = main.to_be_bytes().to_vec();
    key.push(b'_');
    key.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        key.push(b't');
    }
    key
}

/// The live keys of a key bucket, replayed revision by revision.
fn live_keys(entries: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<Vec<u8>, KeyValue> {
    let mut live = BTreeMap::new();
    for (revision, value) in entries {
        assert!(revision.len() == 17 || revision.len() == 18, "{revision:?}");
        let kv = KeyValue::decode(value.as_slice()).unwrap();
        if revision.len() == 18 {
            assert_eq!(revision[17], b't');
            live.remove(kv.key.as_ref());
        } else {
            live.insert(kv.key.to_vec(), kv);
        }
    }
    live
}

/// `etcdctl snapshot status`'s hash: CRC-32C over each bucket's name and
/// then its keys and values, in order.
fn etcd_status_hash<S: ferret_bbolt::ReadAt>(db: &Db<S>) -> (u32, usize) {
    let mut crc = 0;
    let mut total_keys = 0;
    for name in db.bucket_names().unwrap() {
        crc = crc32c::crc32c_append(crc, &name);
        for entry in db.bucket(&name).unwrap().unwrap().entries() {
            let entry = entry.unwrap();
            crc = crc32c::crc32c_append(crc, &entry.key);
            crc = crc32c::crc32c_append(crc, &entry.value);
            total_keys += 1;
        }
    }
    (crc, total_keys)
}

fn parse_range_response(json: &[u8]) -> (i64, BTreeMap<Vec<u8>, KeyValue>) {
    let response: serde_json::Value = serde_json::from_slice(json).unwrap();
    let revision = response["header"]["revision"].as_i64().unwrap();
    let mut kvs = BTreeMap::new();
    for kv in response["kvs"].as_array().into_iter().flatten() {
        let number = |field: &str| kv[field].as_i64().unwrap_or(0);
        let bytes = |field: &str| match kv[field].as_str() {
            Some(text) => BASE64.decode(text).unwrap(),
            None => Vec::new(),
        };
        let kv = KeyValue {
            key: bytes("key").into(),
            create_revision: number("create_revision"),
            mod_revision: number("mod_revision"),
            version: number("version"),
            value: bytes("value").into(),
            lease: number("lease"),
        };
        kvs.insert(kv.key.to_vec(), kv);
    }
    (revision, kvs)
}

fn create_file(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap()
}

// ---------------------------------------------------------------------
// (a) The writer's snapshot in etcd's tools.

/// A history of puts, updates, multi-key transactions and deletes, as
/// etcd's key bucket would record it from revision 2 on.
struct History {
    /// (revision key, KeyValue protobuf) in revision order.
    key_bucket: Pairs,
    live: BTreeMap<Vec<u8>, KeyValue>,
    revision: i64,
    /// (key, revision, value) of a key overwritten later, to read back
    /// with `get --rev`.
    past: Vec<(Vec<u8>, i64, Vec<u8>)>,
}

impl History {
    fn new() -> History {
        History {
            key_bucket: Vec::new(),
            live: BTreeMap::new(),
            revision: 1,
            past: Vec::new(),
        }
    }

    /// One revision: each (key, Some(value)) a put, (key, None) a delete.
    fn commit(&mut self, changes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        self.revision += 1;
        for (sub, (key, value)) in changes.iter().enumerate() {
            let sub = sub as i64;
            match value {
                Some(value) => {
                    let kv = match self.live.get(key) {
                        Some(old) => KeyValue {
                            mod_revision: self.revision,
                            version: old.version + 1,
                            value: value.clone().into(),
                            ..old.clone()
                        },
                        None => KeyValue {
                            key: key.clone().into(),
                            create_revision: self.revision,
                            mod_revision: self.revision,
                            version: 1,
                            value: value.clone().into(),
                            lease: 0,
                        },
                    };
                    self.key_bucket
                        .push((revision_key(self.revision, sub, false), kv.encode_to_vec()));
                    self.live.insert(key.clone(), kv);
                }
                None => {
                    let tombstone = KeyValue {
                        key: key.clone().into(),
                        ..KeyValue::default()
                    };
                    self.key_bucket.push((
                        revision_key(self.revision, sub, true),
                        tombstone.encode_to_vec(),
                    ));
                    self.live.remove(key);
                }
            }
        }
    }
}

fn example_history() -> History {
    let mut history = History::new();
    let value = |i: usize, len: usize| -> Vec<u8> {
        (0..len)
            .map(|j| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + j) % 36])
            .collect()
    };
    // Some keys are binary (etcdctl prints them in base64).
    let app_key = |i: usize| -> Vec<u8> {
        let mut key = format!("app/{:03}/item-{i:04}", i % 17).into_bytes();
        if i.is_multiple_of(50) {
            key.extend_from_slice(&[0, 0xff, i as u8]);
        }
        key
    };
    // 400 single puts, enough for branch pages.
    for i in 0..400usize {
        history.commit(&[(app_key(i), Some(value(i, 20 + i % 180)))]);
    }
    // Values over 4 KiB: overflow pages.
    for (i, len) in [4097usize, 9000, 20_000, 70_000].into_iter().enumerate() {
        history.commit(&[(format!("big/{i}").into_bytes(), Some(value(i, len)))]);
    }
    // Updates: versions and mod revisions move.
    for round in 0..3 {
        for i in (0..400usize).step_by(9) {
            let key = app_key(i);
            if round == 0 {
                let old = history.live[&key].clone();
                history
                    .past
                    .push((key.clone(), old.mod_revision, old.value.to_vec()));
            }
            history.commit(&[(key, Some(value(i + round, 30)))]);
        }
    }
    // Transactions: several keys at one revision (sub revisions).
    for t in 0..5usize {
        let changes: Vec<_> = (0..20usize)
            .map(|j| {
                (
                    format!("txn/{t}/{j:02}").into_bytes(),
                    Some(value(t * j, 40)),
                )
            })
            .collect();
        history.commit(&changes);
    }
    // 8000 small keys in transactions of 100: the key bucket's tree
    // grows a third level (about 120 children per branch page).
    for t in 0..80usize {
        let changes: Vec<_> = (0..100usize)
            .map(|j| {
                (
                    format!("bulk/{t:02}/{j:03}").into_bytes(),
                    Some(value(t + j, 24)),
                )
            })
            .collect();
        history.commit(&changes);
    }
    // Deletes: tombstones, one of them in a transaction with a put.
    for i in (0..400usize).step_by(13) {
        let key = app_key(i);
        if history.live.contains_key(&key) {
            history.commit(&[(key, None)]);
        }
    }
    history.commit(&[
        (b"txn/0/00".to_vec(), None),
        (b"txn/new".to_vec(), Some(b"after delete".to_vec())),
    ]);
    history
}

#[test]
fn writer_snapshot_is_accepted_by_etcdctl_and_etcd() {
    let Some(tools) = Tools::find("writer_snapshot_is_accepted_by_etcdctl_and_etcd") else {
        return;
    };
    let history = example_history();
    let dir = tempfile::tempdir().unwrap();
    let snapshot_path = dir.path().join("ferret.snapshot");

    let consistent_index = 1234u64;
    let empty: Pairs = Vec::new();
    let buckets: Vec<(&[u8], Pairs)> = vec![
        (b"alarm", empty.clone()),
        (b"auth", empty.clone()),
        (b"authRoles", empty.clone()),
        (b"authUsers", empty.clone()),
        (
            b"cluster",
            vec![(b"clusterVersion".to_vec(), b"3.4.0".to_vec())],
        ),
        (b"key", history.key_bucket.clone()),
        (b"lease", empty.clone()),
        (b"members", empty.clone()),
        (b"members_removed", empty),
        (
            b"meta",
            vec![
                (
                    b"consistent_index".to_vec(),
                    consistent_index.to_be_bytes().to_vec(),
                ),
                (b"finishedCompactRev".to_vec(), revision_key(1, 0, false)),
            ],
        ),
    ];
    let mut writer = Writer::new(create_file(&snapshot_path)).unwrap();
    for (name, entries) in &buckets {
        writer.begin_bucket(name).unwrap();
        for (key, value) in entries {
            writer.put(key, value).unwrap();
        }
        writer.end_bucket().unwrap();
    }
    writer.finish_snapshot().unwrap();

    // Our reader agrees with itself first.
    let bytes = std::fs::read(&snapshot_path).unwrap();
    let db = Db::open(strip_sha256(&bytes).unwrap()).unwrap();
    let report = db.check().unwrap();
    assert!(report.max_depth >= 3, "{report:?}");
    let (hash, total_keys) = etcd_status_hash(&db);

    // etcdctl snapshot status: bbolt's Tx.Check passes, and the hash,
    // revision and counts are ours.
    let (status_hash, status_revision, status_keys, status_size) =
        tools.snapshot_status(&snapshot_path);
    println!(
        "etcdctl snapshot status on the writer's file: hash {status_hash:#x}, revision {status_revision}, \
         totalKey {status_keys}, totalSize {status_size}"
    );
    assert_eq!(status_hash, hash);
    assert_eq!(status_revision, history.revision);
    assert_eq!(status_keys, total_keys);
    assert_eq!(status_size, bytes.len() as u64 - 32);

    // etcdctl snapshot restore, then etcd serves the keys.
    let mut etcd = tools.start_etcd();
    etcd.restore(&snapshot_path);
    let (revision, kvs) = etcd.get_all();
    assert_eq!(revision, history.revision);
    assert_eq!(kvs.len(), history.live.len());
    for (key, expected) in &history.live {
        assert_eq!(kvs.get(key), Some(expected), "key {key:?}");
    }
    // History: an overwritten value at its old revision.
    let printable_past = history.past.iter().filter(|(key, _, _)| key.is_ascii());
    for (key, revision, value) in printable_past.step_by(10) {
        let json = etcd.ctl(
            &[
                "get",
                std::str::from_utf8(key).unwrap(),
                "--rev",
                &revision.to_string(),
                "-w",
                "json",
            ],
            None,
        );
        let (_, kvs) = parse_range_response(&json);
        assert_eq!(&kvs[key].value, value);
    }
    // bbolt writes into the restored file: the next revision follows.
    etcd.ctl(&["put", "after/restore", "yes"], None);
    let (revision, kvs) = etcd.get_all();
    assert_eq!(revision, history.revision + 1);
    assert_eq!(
        kvs[&b"after/restore".to_vec()].mod_revision,
        history.revision + 1
    );
    println!(
        "etcd restored from the writer's snapshot serves {} keys at revision {}",
        kvs.len(),
        history.revision
    );
}

// ---------------------------------------------------------------------
// (b) A real etcd's snapshot in the reader (and back through the writer).

#[test]
fn etcd_snapshot_is_read_back_and_rewritten() {
    let Some(tools) = Tools::find("etcd_snapshot_is_read_back_and_rewritten") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let etcd = tools.start_etcd();

    // Three transactions of 100 puts (etcd's default limit is 128 ops).
    for t in 0..3 {
        let mut script = String::from("\n");
        for i in 0..100 {
            script += &format!("put bulk/{t}/{i:03} value-{t}-{i}-{}\n", "x".repeat(i * 2));
        }
        script += "\n\n";
        etcd.ctl(&["txn"], Some(script.as_bytes()));
    }
    // Values over 4 KiB, updates and deletes.
    for (i, len) in [5000usize, 20_000, 70_000].into_iter().enumerate() {
        let value: String = (0..len)
            .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
            .collect();
        etcd.ctl(&["put", &format!("big/{i}"), &value], None);
    }
    etcd.ctl(&["put", "bulk/0/000", "updated"], None);
    etcd.ctl(&["put", "bulk/0/000", "updated again"], None);
    etcd.ctl(&["del", "bulk/1/", "--prefix"], None);
    etcd.ctl(&["put", "bulk/1/050", "back"], None);

    let (revision, expected) = etcd.get_all();
    let snapshot_path = dir.path().join("etcd.snapshot");
    etcd.ctl(&["snapshot", "save", snapshot_path.to_str().unwrap()], None);
    drop(etcd);
    let (status_hash, status_revision, status_keys, _) = tools.snapshot_status(&snapshot_path);

    // The reader, from a file, after checking the trailer.
    let db = ferret_bbolt::open_snapshot_file(File::open(&snapshot_path).unwrap()).unwrap();
    let db_len = db.meta().high_water_pgid * u64::from(db.meta().page_size);
    let report = db.check().unwrap();
    println!("etcd's snapshot: {report:?}, meta {:?}", db.meta());
    let names = db.bucket_names().unwrap();
    for name in [
        "alarm",
        "auth",
        "authRoles",
        "authUsers",
        "cluster",
        "key",
        "lease",
        "members",
        "meta",
    ] {
        assert!(
            names.contains(&name.as_bytes().to_vec()),
            "no bucket {name}: {names:?}"
        );
    }
    let key_bucket: Vec<_> = db
        .bucket(b"key")
        .unwrap()
        .unwrap()
        .entries()
        .map(|e| e.map(|e| (e.key, e.value)).unwrap())
        .collect();
    assert_eq!(live_keys(&key_bucket), expected);
    let last_revision = i64::from_be_bytes(key_bucket.last().unwrap().0[..8].try_into().unwrap());
    assert_eq!(last_revision, revision);
    assert_eq!(status_revision, revision);
    let consistent_index = db
        .bucket(b"meta")
        .unwrap()
        .unwrap()
        .get(b"consistent_index")
        .unwrap();
    assert_eq!(consistent_index.unwrap().value.len(), 8);
    assert_eq!(etcd_status_hash(&db), (status_hash, status_keys));

    // Copied through the writer, etcdctl finds the same content.
    let copy_path = dir.path().join("copy.snapshot");
    let mut writer = Writer::new(create_file(&copy_path)).unwrap();
    for name in &names {
        writer.begin_bucket(name).unwrap();
        for entry in db.bucket(name).unwrap().unwrap().entries() {
            let entry = entry.unwrap();
            writer.put(&entry.key, &entry.value).unwrap();
        }
        writer.end_bucket().unwrap();
    }
    writer.finish_snapshot().unwrap();
    let (copy_hash, copy_revision, copy_keys, copy_size) = tools.snapshot_status(&copy_path);
    println!(
        "etcd's snapshot: hash {status_hash:#x}, revision {status_revision}, totalKey {status_keys}, \
         {db_len} bytes; rewritten: hash {copy_hash:#x}, totalKey {copy_keys}, {copy_size} bytes"
    );
    assert_eq!(
        (copy_hash, copy_revision, copy_keys),
        (status_hash, status_revision, status_keys)
    );
}
