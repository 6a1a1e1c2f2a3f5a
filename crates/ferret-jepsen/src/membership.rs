//! The membership fault (`--faults member`): a member is replaced as if its
//! disk had died, while the workloads run and, chosen by the seed, while
//! another fault holds.
//!
//! One `Replace` fault, on a target the seed picks (the leader a third of
//! the time), goes through what an operator does:
//!
//! 1. `MemberRemove` of the target, sent to another member;
//! 2. the target's process is killed (a removed member should stop
//!    itself: whether it did within 5 s is noted) and its data dir wiped;
//! 3. `MemberAdd` of a learner with the same name and peer URL;
//! 4. the target started empty with `--initial-cluster-state existing`
//!    (and so at every later restart), catching up from the leader;
//! 5. `MemberPromote` once it is in sync (refusals while it is not are
//!    retried).
//!
//! A side fault, drawn by the seed, is injected before step 1, after step
//! 1 or after step 4, and healed once its hold is over, whatever step the
//! replacement has reached: SIGKILL of another member (the leader or not),
//! or that member's peer links cut. Every request is retried through the
//! side fault; one whose outcome is unknown (no answer) is settled from
//! `MemberList` before it is sent again (and a repeat on a stale list is
//! refused: the id is gone, the peer URL is taken).
//!
//! Afterwards every member must list the same voting members, no learner,
//! at the peer URLs the run started with. A step that has not completed
//! 30 s after it began (or after the side fault healed) is a violation; so
//! is a member list that does not settle.
//!
//! etcd 3.4 can fail that: after a partition heals, a member may keep its
//! peer marked inactive although the streams to it work again ("became
//! inactive (message send to peer failed)" after "established a TCP
//! streaming connection"), and then refuses every reconfiguration with
//! "etcdserver: unhealthy cluster" (seen with `--etcd` and
//! `--faults member,kill,partition --seed 6`).

use std::future::Future;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::cluster_client::ClusterClient;
use ferret_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
};
use tonic::transport::Channel;

use crate::cluster::Cluster;
use crate::report::Report;
use crate::rng::Rng;
use crate::v3::conn::{from_server, Conns};

/// How long one membership request may take before its outcome is unknown.
const REQUEST: Duration = Duration::from_secs(3);
/// How long each step may take once no side fault holds.
const STEP: Duration = Duration::from_secs(30);
/// How long a removed member gets to stop on its own.
const SELF_STOP: Duration = Duration::from_secs(5);

/// The fault held alongside a replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SideKind {
    Kill,
    Isolate,
}

/// When the side fault starts, relative to the replacement's steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    BeforeRemove,
    AfterRemove,
    AfterStart,
}

struct Side {
    kind: SideKind,
    phase: Phase,
    /// The member the side fault hits (never the target).
    member: usize,
    hold: Duration,
    /// Set while it holds: when it heals.
    until: Option<Instant>,
    done: bool,
}

/// What one request came to.
enum Answer<T> {
    Ok(T),
    /// The server answered with an error: nothing was done.
    Refused(String),
    /// No answer, or no connection: it may or may not have been done.
    Lost(String),
}

/// The replacement in progress: the cluster, the side fault and a client.
struct Replace<'a> {
    cluster: &'a mut Cluster,
    side: Option<Side>,
    target: usize,
    rt: tokio::runtime::Runtime,
    conns: Conns,
    t0: Instant,
}

impl Replace<'_> {
    fn log(&self, what: &str) {
        eprintln!(
            "[{:>6.1}s] nemesis: {what}",
            self.t0.elapsed().as_secs_f64()
        );
    }

    /// Starts the side fault if its phase has come.
    fn side_starts(&mut self, phase: Phase) {
        let Some(s) = &self.side else { return };
        if s.phase != phase || s.done || s.until.is_some() {
            return;
        }
        let (kind, member, hold) = (s.kind, s.member, s.hold);
        let n = self.cluster.members.len();
        match kind {
            SideKind::Kill => self.cluster.kill(member),
            SideKind::Isolate => {
                for b in (0..n).filter(|b| *b != member) {
                    self.cluster.links.block(member, b);
                    self.cluster.links.block(b, member);
                }
            }
        }
        let name = self.cluster.members[member].name.clone();
        self.log(&format!("side fault {kind:?} {name} for {hold:?}"));
        if let Some(s) = &mut self.side {
            s.until = Some(Instant::now() + hold);
        }
    }

    /// Heals the side fault once its hold is over (or now, with `force`).
    fn side_heals(&mut self, force: bool) {
        let Some(s) = &self.side else { return };
        let Some(until) = s.until else { return };
        if !force && Instant::now() < until {
            return;
        }
        let (kind, member) = (s.kind, s.member);
        match kind {
            SideKind::Kill => {
                if let Err(e) = self.cluster.spawn(member) {
                    eprintln!("nemesis: restart after the side fault: {e}");
                }
            }
            SideKind::Isolate => self.cluster.links.heal(),
        }
        let name = self.cluster.members[member].name.clone();
        self.log(&format!("side fault healed: {name}"));
        if let Some(s) = &mut self.side {
            s.until = None;
            s.done = true;
        }
    }

    /// When a step that began at `began` must be done by: `STEP` after
    /// that, or after the side fault heals if it holds.
    fn deadline(&self, began: Instant) -> Instant {
        let heals = self.side.as_ref().and_then(|s| s.until);
        heals.map_or(began, |h| h.max(began)) + STEP
    }

    /// Waits `d`, healing the side fault if its time comes.
    fn pause(&mut self, d: Duration) {
        sleep(d);
        self.side_heals(false);
    }

    /// Sends one Cluster request to the members other than the target, in
    /// turn, until one answers.
    fn ask<T, F, Fut>(&mut self, f: F) -> Answer<T>
    where
        F: Fn(ClusterClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let target = self.target;
        let others: Vec<usize> = (0..self.cluster.members.len())
            .filter(|i| *i != target)
            .collect();
        self.ask_among(&others, f)
    }

    /// Sends one Cluster request to `members`, in turn, until one answers.
    fn ask_among<T, F, Fut>(&mut self, members: &[usize], f: F) -> Answer<T>
    where
        F: Fn(ClusterClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut last = String::from("no member to ask");
        for &i in members {
            if !self.cluster.is_running(i) || self.cluster.members[i].paused {
                continue;
            }
            let conns = &mut self.conns;
            let answer = self.rt.block_on(async {
                let ch = match conns.channel(i).await {
                    Ok(ch) => ch,
                    Err(e) => return Answer::Lost(e),
                };
                match tokio::time::timeout(REQUEST, f(ClusterClient::new(ch))).await {
                    Ok(Ok(r)) => Answer::Ok(r.into_inner()),
                    Ok(Err(st)) if from_server(&st) => Answer::Refused(st.message().to_string()),
                    Ok(Err(st)) => {
                        conns.forget(i);
                        Answer::Lost(format!("{:?}: {}", st.code(), st.message()))
                    }
                    Err(_) => {
                        conns.forget(i);
                        Answer::Lost(format!("no answer within {REQUEST:?}"))
                    }
                }
            });
            match answer {
                Answer::Lost(e) => last = format!("{}: {e}", self.cluster.members[i].name),
                other => return other,
            }
        }
        Answer::Lost(last)
    }

    /// The members as a member other than the target lists them. etcd
    /// 3.4 lists what that member has applied, which may lag: a request
    /// repeated on a stale list is refused (the id is gone, the peer URL
    /// exists), and the next look sees the change.
    fn members(&mut self) -> Result<Vec<Member>, String> {
        let list = |mut c: ClusterClient<Channel>| async move {
            c.member_list(MemberListRequest {}).await
        };
        match self.ask(list) {
            Answer::Ok(r) => Ok(r.members),
            Answer::Refused(e) | Answer::Lost(e) => Err(e),
        }
    }

    /// The members as member `i` lists them.
    fn members_of(&mut self, i: usize) -> Result<Vec<Member>, String> {
        let list = |mut c: ClusterClient<Channel>| async move {
            c.member_list(MemberListRequest {}).await
        };
        match self.ask_among(&[i], list) {
            Answer::Ok(r) => Ok(r.members),
            Answer::Refused(e) | Answer::Lost(e) => Err(e),
        }
    }

    fn target_url(&self) -> String {
        format!("http://{}", self.cluster.members[self.target].peer_proxy)
    }

    /// The target's entry in the member list, if it has one.
    fn target_entry(&mut self) -> Result<Option<Member>, String> {
        let url = self.target_url();
        Ok(self
            .members()?
            .into_iter()
            .find(|m| m.peer_ur_ls.contains(&url)))
    }

    /// Repeats `step` (which says whether it is done) until it is, or
    /// until the deadline: then an error naming what it last saw.
    fn until_done(
        &mut self,
        what: &str,
        mut step: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<(), String> {
        let (began, mut last) = (Instant::now(), String::new());
        loop {
            match step(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) if e != last => {
                    self.log(&format!("{what}: {e}; retrying"));
                    last = e;
                }
                Err(_) => {}
            }
            if Instant::now() > self.deadline(began) {
                return Err(format!("{what} did not complete: {last}"));
            }
            self.pause(Duration::from_millis(200));
        }
    }

    /// Steps 1 to 5 (see the module's documentation).
    fn run(&mut self, report: &mut Report) -> Result<(), String> {
        let i = self.target;
        let name = self.cluster.members[i].name.clone();
        self.side_starts(Phase::BeforeRemove);
        // 1. Remove: settled by the member list when an answer is lost.
        let mut old_id = None;
        self.until_done(&format!("MemberRemove of {name}"), |r| {
            let Some(m) = r.target_entry()? else {
                return Ok(true);
            };
            old_id = Some(m.id);
            let id = m.id;
            match r.ask(|mut c| async move { c.member_remove(MemberRemoveRequest { id }).await }) {
                Answer::Ok(_) => Ok(true),
                Answer::Refused(e) | Answer::Lost(e) => Err(e),
            }
        })?;
        self.log(&format!(
            "removed {name} ({:x})",
            old_id.unwrap_or_default()
        ));
        self.side_starts(Phase::AfterRemove);
        // 2. The removed member should stop; then its disk dies.
        let since = Instant::now();
        let stopped = loop {
            if self.cluster.exited(i).is_some() || !self.cluster.is_running(i) {
                break true;
            }
            if since.elapsed() > SELF_STOP {
                break false;
            }
            self.pause(Duration::from_millis(100));
        };
        report.notes.push(format!(
            "Replace {name}: {}",
            if stopped {
                format!("stopped itself {:.1?} after its removal", since.elapsed())
            } else {
                format!("still running {SELF_STOP:?} after its removal; killed")
            }
        ));
        self.cluster.kill(i);
        self.cluster.wipe(i);
        // 3. Add it back as a learner, once.
        let url = self.target_url();
        let mut new_id = 0;
        self.until_done(&format!("MemberAdd of {name} as a learner"), |r| {
            if let Some(m) = r.target_entry()? {
                new_id = m.id;
                return Ok(true);
            }
            let peer_ur_ls = vec![url.clone()];
            match r.ask(|mut c| {
                let peer_ur_ls = peer_ur_ls.clone();
                async move {
                    c.member_add(MemberAddRequest {
                        peer_ur_ls,
                        is_learner: true,
                    })
                    .await
                }
            }) {
                Answer::Ok(resp) => {
                    new_id = resp.member.map_or(0, |m| m.id);
                    Ok(new_id != 0)
                }
                Answer::Refused(e) | Answer::Lost(e) => Err(e),
            }
        })?;
        self.cluster.links.set_id(new_id, i);
        self.log(&format!("added {name} as learner {new_id:x}"));
        // 4. Start it empty, joining the running cluster.
        self.cluster.members[i].join = true;
        self.cluster.spawn(i)?;
        self.side_starts(Phase::AfterStart);
        // 5. Promote it once it has caught up.
        self.until_done(&format!("MemberPromote of {name}"), |r| {
            match r.target_entry()? {
                None => return Err(format!("{name} is no member any more")),
                Some(m) if !m.is_learner => return Ok(true),
                Some(_) => {}
            }
            if !r.cluster.is_running(i) {
                let st = r.cluster.exited(i);
                return Err(format!(
                    "{name} is not running ({st:?}): {}",
                    r.cluster.log_tail(i, 10)
                ));
            }
            let id = new_id;
            match r.ask(|mut c| async move { c.member_promote(MemberPromoteRequest { id }).await })
            {
                Answer::Ok(_) => Ok(true),
                Answer::Refused(e) | Answer::Lost(e) => Err(e),
            }
        })?;
        self.log(&format!("promoted {name}"));
        self.side_heals(true);
        // Every member lists the run's members, all voting.
        let want: Vec<String> = {
            let mut v: Vec<String> = (0..self.cluster.members.len())
                .map(|j| format!("http://{}", self.cluster.members[j].peer_proxy))
                .collect();
            v.sort();
            v
        };
        self.until_done("the member list to settle", |r| {
            for j in 0..r.cluster.members.len() {
                let ms = r.members_of(j)?;
                let mut got: Vec<String> = ms.iter().flat_map(|m| m.peer_ur_ls.clone()).collect();
                got.sort();
                let learners = ms.iter().filter(|m| m.is_learner).count();
                if got != want || learners != 0 {
                    let name = &r.cluster.members[j].name;
                    return Err(format!("{name} lists {got:?}, {learners} learners"));
                }
            }
            Ok(true)
        })
    }
}

/// The `Replace` fault (see the module's documentation): `pick` seeds its
/// choices, `hold` is how long the side fault holds.
pub fn replace(cluster: &mut Cluster, pick: u64, hold: Duration, t0: Instant, report: &mut Report) {
    let n = cluster.members.len();
    let mut rng = Rng::new(pick);
    let leader = cluster.leader();
    let target = match (rng.chance(33), leader) {
        (true, Some(l)) => l,
        _ => rng.below(n as u64) as usize,
    };
    let side = match rng.below(3) {
        _ if n < 2 => None,
        0 => None,
        k => {
            let member = (target + 1 + rng.below(n as u64 - 1) as usize) % n;
            Some(Side {
                kind: if k == 1 {
                    SideKind::Kill
                } else {
                    SideKind::Isolate
                },
                phase: [Phase::BeforeRemove, Phase::AfterRemove, Phase::AfterStart]
                    [rng.below(3) as usize],
                member,
                hold,
                until: None,
                done: false,
            })
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report
                .violations
                .push(format!("Replace: tokio runtime: {e}"));
            return;
        }
    };
    let addrs = Arc::new(cluster.members.iter().map(|m| m.client).collect());
    let name = cluster.members[target].name.clone();
    let is_leader = if leader == Some(target) {
        " (the leader)"
    } else {
        ""
    };
    let with = side.as_ref().map_or(String::new(), |s| {
        format!(
            ", side fault {:?} {} {:?}",
            s.kind, cluster.members[s.member].name, s.phase
        )
    });
    eprintln!(
        "[{:>6.1}s] nemesis: Replace {name}{is_leader}{with}",
        t0.elapsed().as_secs_f64()
    );
    let mut r = Replace {
        cluster,
        side,
        target,
        rt,
        conns: Conns::new(addrs),
        t0,
    };
    report.count("Replace");
    if leader == Some(target) {
        report.count("Replace (the leader)");
    }
    if let Some(s) = &r.side {
        report.count(&format!("Replace+{:?}", s.kind));
    }
    let outcome = r.run(report);
    r.side_heals(true);
    if let Err(e) = outcome {
        report.violations.push(format!("Replace {name}: {e}"));
    }
    if !r.cluster.is_running(target) {
        // A failed replacement may leave it stopped: heal_processes and
        // the convergence check then say what became of it.
        eprintln!("nemesis: {name} is not running after its replacement");
    }
}
