//! Against etcd's own tools (Debian's etcd 3.4): a snapshot built by the
//! writer passes `etcdctl snapshot status` and `restore`, and a restored
//! etcd serves its keys; a snapshot saved from a real etcd is read back by
//! the reader, and copied through the writer it keeps etcd's status hash.
//!
//! Skipped, with a message, where /usr/bin/etcd is absent (CI installs
//! it). Every etcd runs on loopback ports chosen by binding port 0 and is
//! killed when its guard drops.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferret_bbolt::{strip_sha256, Db, Writer};

/// Keys and values of one bucket, in order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";

/// How long an etcd may take to answer /health: it elects itself after
/// one election timeout (200 ms here) but a loaded CI machine is slow.
const ETCD_START_TIMEOUT: Duration = Duration::from_secs(30);

fn etcd_installed(test: &str) -> bool {
    let installed = Path::new(ETCD).exists() && Path::new(ETCDCTL).exists();
    if !installed {
        println!("{test}: skipped, {ETCD} or {ETCDCTL} is not installed");
    }
    installed
}

// ---------------------------------------------------------------------
// etcd's key bucket: revisions and mvccpb.KeyValue, by hand.

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

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct KeyValue {
    key: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: Vec<u8>,
    lease: i64,
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl KeyValue {
    /// Protobuf, as gogo-proto marshals it: fields in order, zero values
    /// left out.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let bytes_field = |out: &mut Vec<u8>, tag: u8, bytes: &[u8]| {
            if !bytes.is_empty() {
                out.push(tag);
                put_varint(out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
        };
        bytes_field(&mut out, 0x0a, &self.key);
        for (tag, number) in [
            (0x10, self.create_revision),
            (0x18, self.mod_revision),
            (0x20, self.version),
        ] {
            if number != 0 {
                out.push(tag);
                put_varint(&mut out, number as u64);
            }
        }
        bytes_field(&mut out, 0x2a, &self.value);
        if self.lease != 0 {
            out.push(0x30);
            put_varint(&mut out, self.lease as u64);
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> KeyValue {
        fn varint(bytes: &mut &[u8]) -> u64 {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let (&byte, rest) = bytes.split_first().expect("truncated varint");
                *bytes = rest;
                value |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return value;
                }
            }
            panic!("varint too long")
        }
        let mut kv = KeyValue::default();
        while !bytes.is_empty() {
            let tag = varint(&mut bytes);
            match tag & 7 {
                0 => {
                    let number = varint(&mut bytes) as i64;
                    match tag >> 3 {
                        2 => kv.create_revision = number,
                        3 => kv.mod_revision = number,
                        4 => kv.version = number,
                        6 => kv.lease = number,
                        _ => {}
                    }
                }
                2 => {
                    let len = varint(&mut bytes) as usize;
                    let (field, rest) = bytes.split_at(len);
                    bytes = rest;
                    match tag >> 3 {
                        1 => kv.key = field.to_vec(),
                        5 => kv.value = field.to_vec(),
                        _ => {}
                    }
                }
                wire => panic!("unexpected wire type {wire}"),
            }
        }
        kv
    }
}

/// The live keys of a key bucket, replayed revision by revision.
fn live_keys(entries: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<Vec<u8>, KeyValue> {
    let mut live = BTreeMap::new();
    for (revision, value) in entries {
        assert!(revision.len() == 17 || revision.len() == 18, "{revision:?}");
        let kv = KeyValue::decode(value);
        if revision.len() == 18 {
            assert_eq!(revision[17], b't');
            live.remove(&kv.key);
        } else {
            live.insert(kv.key.clone(), kv);
        }
    }
    live
}

/// `etcdctl snapshot status`'s hash: CRC-32C over each bucket's name and
/// then its keys and values, in order.
fn etcd_status_hash<S: ferret_bbolt::ReadAt>(db: &Db<S>) -> (u32, usize) {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut crc = i as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
        *slot = crc;
    }
    let mut crc = !0u32;
    let mut update = |bytes: &[u8]| {
        for &byte in bytes {
            crc = table[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
        }
    };
    let mut total_keys = 0;
    for name in db.bucket_names().unwrap() {
        update(&name);
        for entry in db.bucket(&name).unwrap().unwrap().entries() {
            let entry = entry.unwrap();
            update(&entry.key);
            update(&entry.value);
            total_keys += 1;
        }
    }
    (!crc, total_keys)
}

// ---------------------------------------------------------------------
// Processes.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running etcd, killed when dropped.
struct Etcd {
    child: Child,
    client_url: String,
    log_path: PathBuf,
}

/// The flags that make one member named `n1` on the given peer URL.
fn cluster_flags(peer_url: &str) -> Vec<String> {
    vec![
        "--name".into(),
        "n1".into(),
        "--initial-advertise-peer-urls".into(),
        peer_url.into(),
        "--initial-cluster".into(),
        format!("n1={peer_url}"),
    ]
}

impl Etcd {
    fn start(data_dir: &Path, peer_url: &str, log_path: PathBuf) -> Etcd {
        let client_url = format!("http://127.0.0.1:{}", free_port());
        let log = File::create(&log_path).unwrap();
        // No inherited ETCD_* variable may change the member.
        let child = Command::new(ETCD)
            .env_clear()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", peer_url])
            .args(cluster_flags(peer_url))
            .args(["--heartbeat-interval", "20", "--election-timeout", "200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut etcd = Etcd {
            child,
            client_url,
            log_path,
        };
        etcd.wait_healthy();
        etcd
    }

    fn wait_healthy(&mut self) {
        let address = self.client_url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + ETCD_START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("etcd exited ({status}):\n{}", self.log());
            }
            if health_is_true(&address) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn ctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut all = vec!["--endpoints", &self.client_url];
        all.extend_from_slice(args);
        etcdctl(&all, stdin)
    }

    /// `etcdctl get --prefix ""`: the live keys and the revision.
    fn get_all(&self) -> (i64, BTreeMap<Vec<u8>, KeyValue>) {
        let json = self.ctl(&["get", "", "--prefix", "-w", "json"], None);
        parse_range_response(&json)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET /health answers `{"health":"true"}` once the member has a leader.
fn health_is_true(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

fn etcdctl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    // No inherited ETCDCTL_* variable (endpoints, credentials) applies.
    let mut child = Command::new(ETCDCTL)
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

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &c)| bits | value(c) << (18 - 6 * i));
        out.extend_from_slice(&bits.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn parse_range_response(json: &[u8]) -> (i64, BTreeMap<Vec<u8>, KeyValue>) {
    let response: serde_json::Value = serde_json::from_slice(json).unwrap();
    let revision = response["header"]["revision"].as_i64().unwrap();
    let mut kvs = BTreeMap::new();
    for kv in response["kvs"].as_array().into_iter().flatten() {
        let number = |field: &str| kv[field].as_i64().unwrap_or(0);
        let bytes = |field: &str| kv[field].as_str().map(base64_decode).unwrap_or_default();
        let kv = KeyValue {
            key: bytes("key"),
            create_revision: number("create_revision"),
            mod_revision: number("mod_revision"),
            version: number("version"),
            value: bytes("value"),
            lease: number("lease"),
        };
        kvs.insert(kv.key.clone(), kv);
    }
    (revision, kvs)
}

/// `etcdctl snapshot status FILE -w json`: (hash, revision, totalKey,
/// totalSize).
fn snapshot_status(path: &Path) -> (u32, i64, usize, u64) {
    let json = etcdctl(
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
                            value: value.clone(),
                            ..old.clone()
                        },
                        None => KeyValue {
                            key: key.clone(),
                            create_revision: self.revision,
                            mod_revision: self.revision,
                            version: 1,
                            value: value.clone(),
                            lease: 0,
                        },
                    };
                    self.key_bucket
                        .push((revision_key(self.revision, sub, false), kv.encode()));
                    self.live.insert(key.clone(), kv);
                }
                None => {
                    let tombstone = KeyValue {
                        key: key.clone(),
                        ..KeyValue::default()
                    };
                    self.key_bucket
                        .push((revision_key(self.revision, sub, true), tombstone.encode()));
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
                    .push((key.clone(), old.mod_revision, old.value));
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
    if !etcd_installed("writer_snapshot_is_accepted_by_etcdctl_and_etcd") {
        return;
    }
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
    let (status_hash, status_revision, status_keys, status_size) = snapshot_status(&snapshot_path);
    println!(
        "etcdctl snapshot status on the writer's file: hash {status_hash:#x}, revision {status_revision}, \
         totalKey {status_keys}, totalSize {status_size}"
    );
    assert_eq!(status_hash, hash);
    assert_eq!(status_revision, history.revision);
    assert_eq!(status_keys, total_keys);
    assert_eq!(status_size, bytes.len() as u64 - 32);

    // etcdctl snapshot restore, then etcd serves the keys.
    let data_dir = dir.path().join("restored");
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let mut restore = vec!["snapshot", "restore", snapshot_path.to_str().unwrap()];
    restore.extend(["--data-dir", data_dir.to_str().unwrap()]);
    let flags = cluster_flags(&peer_url);
    restore.extend(flags.iter().map(String::as_str));
    etcdctl(&restore, None);

    let etcd = Etcd::start(&data_dir, &peer_url, dir.path().join("etcd-restored.log"));
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
    if !etcd_installed("etcd_snapshot_is_read_back_and_rewritten") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let etcd = Etcd::start(
        &dir.path().join("etcd"),
        &peer_url,
        dir.path().join("etcd.log"),
    );

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
    let (status_hash, status_revision, status_keys, _) = snapshot_status(&snapshot_path);

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
    let (copy_hash, copy_revision, copy_keys, copy_size) = snapshot_status(&copy_path);
    println!(
        "etcd's snapshot: hash {status_hash:#x}, revision {status_revision}, totalKey {status_keys}, \
         {db_len} bytes; rewritten: hash {copy_hash:#x}, totalKey {copy_keys}, {copy_size} bytes"
    );
    assert_eq!(
        (copy_hash, copy_revision, copy_keys),
        (status_hash, status_revision, status_keys)
    );
}
