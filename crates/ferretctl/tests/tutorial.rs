//! The seed tutorial ("etcd on CoreOS", /work/shared/seed/), replayed
//! command by command with ferretctl on a 3-member ferretcd cluster:
//! writes through one member, reads through another, watches on a third.
//!
//! The cluster is the test kit's (`ferret_testkit::cluster`).

mod common;

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{ferretcd, wait_watchers_above, watchers, Run, Tool};
use ferret_testkit::cluster::Options;
use scenario::split;

mod scenario;

/// The tutorial's etcdctl lines, in its order (checked against the seed
/// file when it is there).
const TUTORIAL: &[&str] = &[
    "etcdctl set /myKey Hello",
    "etcdctl rm /myKey",
    "etcdctl mkdir /myApplication",
    "etcdctl set /myApplication/myApp value1",
    "etcdctl ls /myApplication",
    "etcdctl watch --recursive /myApplication",
    r#"etcdctl exec-watch --recursive /myApplication -- sh -c 'echo "\"$ETCD_WATCH_KEY\" key was updated to \"$ETCD_WATCH_VALUE\" value by \"$ETCD_WATCH_ACTION\" action"'"#,
    r#"etcdctl set /myKey "B" --swap-with-value "A""#,
    r#"etcdctl set /myKey "value1" --ttl 20"#,
];

/// The test kit's 3-member cluster, with etcd's default timers.
struct Cluster(ferret_testkit::cluster::Cluster);

impl Cluster {
    fn start() -> Cluster {
        Cluster(ferret_testkit::cluster::Cluster::start(Options {
            binary: ferretcd(),
            heartbeat_ms: 100,
            election_ms: 1000,
            ..Options::default()
        }))
    }

    fn url(&self, i: usize) -> String {
        self.0.members[i].client_url()
    }

    fn watchers(&self, i: usize) -> u64 {
        watchers(&self.url(i))
    }

    fn wait_watchers_above(&self, i: usize, before: u64) {
        wait_watchers_above(&self.url(i), before)
    }
}

/// A tutorial line as ferretctl's arguments, pinned to the member it is
/// sent to: `--no-sync` keeps the endpoint given (a sync would replace it
/// by all members' URLs and send everything to the first).
fn line_args(line: &str) -> Vec<String> {
    let mut a = vec!["--no-sync".to_string()];
    a.extend(split(
        line.strip_prefix("etcdctl ").expect("an etcdctl line"),
    ));
    a
}

/// Runs one tutorial line (`etcdctl` replaced by ferretctl) through member `i`.
fn ctl(c: &Cluster, i: usize, line: &str) -> Run {
    Tool::ferretctl().run(&c.url(i), &line_args(line), None)
}

/// Runs `line` through member `i` until it prints `want` (a read on a
/// member that has not applied the latest write yet), bounded.
fn read_until(c: &Cluster, i: usize, line: &str, want: &str) -> Run {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ctl(c, i, line);
        if r.stdout == want || Instant::now() > deadline {
            return r;
        }
        sleep(Duration::from_millis(50));
    }
}

fn ok(r: &Run, stdout: &str) {
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, stdout, ""),
        "unexpected result"
    );
}

#[test]
fn the_seed_tutorial_on_a_three_member_cluster() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed");
    if let Ok(dir) = std::fs::read_dir(&seed) {
        for f in dir.flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with("etcdctl ")) {
                assert!(
                    TUTORIAL.contains(&line),
                    "seed line not replayed here: {line}"
                );
            }
        }
    }

    let c = Cluster::start();
    let (w, r, x) = (0, 1, 2); // write through a, read through b, watch on c

    // Set a key; any member answers with the same value.
    ok(&ctl(&c, w, TUTORIAL[0]), "Hello\n");
    for i in 0..3 {
        ok(
            &read_until(&c, i, "etcdctl get /myKey", "Hello\n"),
            "Hello\n",
        );
    }
    ok(&ctl(&c, r, "etcdctl get --quorum /myKey"), "Hello\n");

    // Delete it.
    ok(&ctl(&c, w, TUTORIAL[1]), "PrevNode.Value: Hello\n");
    let gone = ctl(&c, r, "etcdctl get --quorum /myKey");
    assert_eq!(gone.code, 4);
    assert!(
        gone.stderr
            .starts_with("Error:  100: Key not found (/myKey) ["),
        "{gone:?}"
    );

    // A directory, a key in it, a listing from another member.
    ok(&ctl(&c, w, TUTORIAL[2]), "");
    ok(&ctl(&c, w, TUTORIAL[3]), "value1\n");
    ok(
        &read_until(&c, r, TUTORIAL[4], "/myApplication/myApp\n"),
        "/myApplication/myApp\n",
    );

    // Watch the directory on one member, change it through another.
    let before = c.watchers(x);
    let mut watch = Tool::ferretctl().spawn(&c.url(x), &line_args(TUTORIAL[5]));
    c.wait_watchers_above(x, before);
    ok(
        &ctl(&c, w, "etcdctl set /myApplication/myKey2 value2"),
        "value2\n",
    );
    let out = watch
        .wait_output(Duration::from_secs(10))
        .expect("the watch ends after one change");
    assert_eq!(
        Run::from(out).stdout,
        "[set] /myApplication/myKey2\nvalue2\n"
    );

    // exec-watch: run a command on each change.
    let dir = common::TempDir::new("ferretctl-tutorial");
    let out_path = dir.0.join("out");
    let before = c.watchers(r);
    let mut cmd = Tool::ferretctl().command(&c.url(r), &line_args(TUTORIAL[6]));
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null());
    let mut exec = common::Proc(Some(cmd.spawn().unwrap()));
    c.wait_watchers_above(r, before);
    ok(
        &ctl(&c, w, "etcdctl set /myApplication/myKey3 value3"),
        "value3\n",
    );
    let want = "\"/myApplication/myKey3\" key was updated to \"value3\" value by \"set\" action\n";
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out_path).unwrap_or_default() != want
        && Instant::now() < deadline
    {
        sleep(Duration::from_millis(20));
    }
    let o = exec.interrupt();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), want);

    // Test and set: B only if the value is A.
    ok(&ctl(&c, w, "etcdctl set /myKey A"), "A\n");
    ok(&ctl(&c, w, TUTORIAL[7]), "B\n");
    let failed = ctl(&c, w, TUTORIAL[7]);
    assert_eq!(failed.code, 4);
    assert!(
        failed
            .stderr
            .starts_with("Error:  101: Compare failed ([A != B]) ["),
        "{failed:?}"
    );
    ok(&read_until(&c, r, "etcdctl get /myKey", "B\n"), "B\n");

    // A TTL: the key carries it on every member, then expires (2 s here).
    ok(&ctl(&c, w, TUTORIAL[8]), "value1\n");
    let ext = ctl(&c, r, "etcdctl -o extended get --quorum /myKey");
    assert_eq!(ext.code, 0, "{ext:?}");
    let ttl: u64 = ext
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TTL: "))
        .and_then(|t| t.parse().ok())
        .expect("a TTL line");
    assert!((1..=20).contains(&ttl), "{ext:?}");
    ok(&ctl(&c, w, "etcdctl set /myKey value1 --ttl 2"), "value1\n");
    sleep(Duration::from_millis(3500));
    let expired = read_until(&c, r, "etcdctl get /myKey", "");
    assert_eq!(expired.code, 4, "{expired:?}");
    assert!(
        expired
            .stderr
            .starts_with("Error:  100: Key not found (/myKey) ["),
        "{expired:?}"
    );

    // The members as etcdctl lists them, through each member.
    // Without --no-sync, as etcdctl by default: the endpoint list is
    // replaced by the members' published URLs first.
    let list = Tool::ferretctl().run(&c.url(r), &split("member list"), None);
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(list.stdout.lines().count(), 3, "{list:?}");
    assert_eq!(list.stdout.matches("isLeader=true").count(), 1, "{list:?}");
    let health = ctl(&c, x, "etcdctl cluster-health");
    assert_eq!(health.code, 0, "{health:?}");
    assert!(
        health.stdout.ends_with("cluster is healthy\n"),
        "{health:?}"
    );
}
