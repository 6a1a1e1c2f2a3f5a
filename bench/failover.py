#!/usr/bin/env python3
"""Failover after SIGKILL of the leader, etcd 3.4 and ferretcd side by side.

    bench/failover.py [--rounds N] [--ferretcd PATH] [--etcd PATH] [--out FILE]

For each server, a 3-member cluster runs on loopback with the default
timings (--heartbeat-interval 100, --election-timeout 1000) and --enable-v2.
Each round:

1. waits until the cluster is healthy and has a leader, and writes a key;
2. SIGKILLs the leader's process;
3. from that instant, a client starts a v2 PUT to one surviving member
   every 5 ms (each in its own thread, 5 s timeout), and polls both
   survivors' /v2/stats/self every 5 ms;
4. records when a survivor first names a new leader ("elected") and when
   the first of those PUTs is acknowledged ("writes resume"), both in ms
   after the kill;
5. restarts the killed member on its data dir.

Prints the median, min and max over the rounds of both times for each
server, and their ratio (ferretcd / etcd). Rounds default to 7 (the issue
asks for at least 5). Every process it starts, it stops.

    bench/failover.py --stability SECONDS [--ferretcd PATH]

checks instead that a healthy ferretcd cluster elects no one: idle for the
first half of SECONDS, under a steady write load (a PUT every 2 ms through
each member in turn) for the second half, polling every member's
/v2/stats/self every 200 ms; it prints the leader changes seen (the fast
path must add none).
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def http(method, url, body=None, timeout=5.0):
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Cluster:
    def __init__(self, binary, label, base_port):
        self.binary = binary
        self.label = label
        self.dir = tempfile.mkdtemp(prefix=f"failover-{label}-")
        self.names = ["f0", "f1", "f2"]
        self.client = {n: base_port + 2 * i for i, n in enumerate(self.names)}
        self.peer = {n: base_port + 2 * i + 1 for i, n in enumerate(self.names)}
        self.procs = {}
        self.initial = ",".join(
            f"{n}=http://127.0.0.1:{self.peer[n]}" for n in self.names
        )

    def start(self, name):
        c, p = self.client[name], self.peer[name]
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        args = [
            self.binary,
            "--enable-v2",
            "--name", name,
            "--data-dir", os.path.join(self.dir, f"{name}.etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{c}",
            "--advertise-client-urls", f"http://127.0.0.1:{c}",
            "--listen-peer-urls", f"http://127.0.0.1:{p}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
            "--initial-cluster", self.initial,
            "--initial-cluster-state", "new",
        ]
        self.procs[name] = subprocess.Popen(
            args, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )

    def url(self, name, path):
        return f"http://127.0.0.1:{self.client[name]}{path}"

    def leader(self, among):
        """The name of the member the members in `among` agree leads."""
        ids = {}
        leaders = set()
        for n in among:
            try:
                _, body = http("GET", self.url(n, "/v2/stats/self"), timeout=1)
                s = json.loads(body)
            except Exception:
                return None
            ids[s["id"]] = n
            leaders.add(s.get("leaderInfo", {}).get("leader", ""))
        if len(leaders) != 1:
            return None
        lid = leaders.pop()
        return ids.get(lid)

    def wait_healthy(self, limit=60):
        end = time.time() + limit
        while time.time() < end:
            lead = self.leader(self.names)
            if lead is not None:
                try:
                    http("PUT", self.url(lead, "/v2/keys/warm"), b"value=1", timeout=2)
                    return lead
                except Exception:
                    pass
            time.sleep(0.05)
        raise SystemExit(f"{self.label}: the cluster did not become healthy")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def one_round(c, leader):
    survivors = [n for n in c.names if n != leader]
    target = survivors[0]
    done = threading.Event()
    first_ack = []
    lock = threading.Lock()

    def put(i, t0):
        try:
            st, _ = http(
                "PUT", c.url(target, f"/v2/keys/after{i}"), b"value=x", timeout=5
            )
            if st in (200, 201):
                with lock:
                    first_ack.append(time.monotonic() - t0)
                done.set()
        except Exception:
            pass

    c.procs[leader].send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    c.procs[leader].wait()
    elected = None
    threads = []
    i = 0
    while time.monotonic() - t0 < 10 and not (done.is_set() and elected is not None):
        if not done.is_set():
            th = threading.Thread(target=put, args=(i, t0), daemon=True)
            th.start()
            threads.append(th)
            i += 1
        if elected is None:
            lead = c.leader(survivors)
            if lead is not None and lead != leader:
                elected = time.monotonic() - t0
        time.sleep(0.005)
    for th in threads:
        th.join(timeout=6)
    resumed = min(first_ack) if first_ack else None
    c.start(leader)
    return elected, resumed


def run(binary, label, rounds, base_port):
    c = Cluster(binary, label, base_port)
    results = []
    try:
        for n in c.names:
            c.start(n)
        for r in range(rounds):
            leader = c.wait_healthy()
            # A settled cluster: every member caught up.
            time.sleep(1.0)
            leader = c.wait_healthy()
            elected, resumed = one_round(c, leader)
            print(
                f"{label} round {r + 1}: leader {leader} killed; elected "
                f"{ms(elected)}, writes resume {ms(resumed)}",
                flush=True,
            )
            results.append((elected, resumed))
    finally:
        c.stop()
    return results


def ms(v):
    return "n/a" if v is None else f"{v * 1000:.0f} ms"


def summary(label, results):
    out = {}
    for i, what in enumerate(["elected", "writes resume"]):
        vals = [r[i] for r in results if r[i] is not None]
        if vals:
            out[what] = statistics.median(vals)
            print(
                f"{label:9} {what:14} median {ms(out[what]):>8}  "
                f"min {ms(min(vals)):>8}  max {ms(max(vals)):>8}  (n={len(vals)})"
            )
    return out


def stability(binary, seconds, base_port):
    c = Cluster(binary, "ferretcd", base_port)
    try:
        for n in c.names:
            c.start(n)
        c.wait_healthy()
        stop = threading.Event()
        acked = [0]

        def load():
            i = 0
            while not stop.is_set():
                n = c.names[i % 3]
                try:
                    http("PUT", c.url(n, f"/v2/keys/s{i % 1000}"), b"value=x", timeout=5)
                    acked[0] += 1
                except Exception:
                    pass
                i += 1
                time.sleep(0.002)

        seen = {n: set() for n in c.names}
        start = time.time()
        loader = None
        while time.time() - start < seconds:
            if loader is None and time.time() - start >= seconds / 2:
                loader = threading.Thread(target=load, daemon=True)
                loader.start()
            for n in c.names:
                try:
                    _, body = http("GET", c.url(n, "/v2/stats/self"), timeout=2)
                    info = json.loads(body).get("leaderInfo", {})
                    if info.get("leader"):
                        seen[n].add((info.get("leader"), info.get("startTime")))
                except Exception:
                    pass
            time.sleep(0.2)
        stop.set()
        if loader is not None:
            loader.join(timeout=10)
        # Each member's view: the leader it follows, and since when.
        changes = max(len(v) for v in seen.values()) - 1
        print(
            f"ferretcd stability: {seconds:.0f} s (idle, then {acked[0]} writes): "
            f"{changes} leader change(s)"
        )
        return 0 if changes == 0 else 1
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--stability", type=float)
    ap.add_argument("--ferretcd", default=os.path.join(ROOT, "target/release/ferretcd"))
    ap.add_argument("--etcd", default=shutil.which("etcd") or "/usr/bin/etcd")
    ap.add_argument("--out")
    a = ap.parse_args()
    base = random.randrange(20000, 30000, 10)
    if a.stability:
        return stability(a.ferretcd, a.stability, base + 200)
    etcd = run(a.etcd, "etcd", a.rounds, base)
    ferret = run(a.ferretcd, "ferretcd", a.rounds, base + 100)
    print()
    e = summary("etcd", etcd)
    f = summary("ferretcd", ferret)
    for what in ["elected", "writes resume"]:
        if what in e and what in f:
            print(f"ratio {what}: {f[what] / e[what]:.2f}x (ferretcd / etcd)")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"etcd": etcd, "ferretcd": ferret}, fh)


if __name__ == "__main__":
    sys.exit(main())
