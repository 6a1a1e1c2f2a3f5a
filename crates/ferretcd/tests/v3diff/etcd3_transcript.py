"""Drives a v3 server with the python `etcd3` client (0.12) and prints a
transcript that tests/v3_clients.rs compares between the reference etcd and
the candidate.

Usage: python etcd3_transcript.py HOST PORT

The transcript is normalised here: revisions are printed relative to the
server's revision when the script started (B+N), lease ids as lease#N in
order of first appearance, remaining TTLs as they are (the Rust side
accepts a difference of 1 s). Every failure of a call is printed as the
exception's class and message, so a candidate that errs differently shows.
"""

import os
import sys
import threading
import time

import etcd3

HOST, PORT = sys.argv[1], int(sys.argv[2])
client = etcd3.client(host=HOST, port=PORT, timeout=10)
out = []
leases = {}
BASE = None


def rev(r):
    return "0" if r == 0 else "B%+d" % (r - BASE)


def lease(i):
    if i == 0:
        return "0"
    return leases.setdefault(i, "lease#%d" % (len(leases) + 1))


def meta(m):
    if m is None:
        return "(none)"
    return "key=%r create=%s mod=%s version=%d lease=%s" % (
        m.key, rev(m.create_revision), rev(m.mod_revision), m.version, lease(m.lease_id))


def failure(e):
    """An exception as its class and, for gRPC errors, code and details."""
    if callable(getattr(e, "code", None)) and callable(getattr(e, "details", None)):
        return "raised %s: %s: %s" % (type(e).__name__, e.code(), e.details())
    return "raised %s: %s" % (type(e).__name__, e)


def step(name, fn):
    try:
        out.append("%s: %s" % (name, fn()))
    except Exception as e:  # noqa: BLE001 - every failure is part of the transcript
        out.append("%s: %s" % (name, failure(e)))


def txn(result):
    """transaction()'s (succeeded, responses): get responses are lists of
    (value, metadata); put/delete responses are protobuf messages."""
    succeeded, responses = result
    shown = []
    for r in responses:
        if isinstance(r, list):
            shown.append(listing(r))
        else:
            which = r.WhichOneof("response")
            shown.append("%s(%s)" % (which, header(getattr(r, which))))
    return "succeeded=%s responses=[%s]" % (succeeded, "; ".join(shown))


def header(r):
    return "revision=%s" % rev(r.header.revision)


def get(key, **kw):
    value, m = client.get(key, **kw)
    return "value=%r %s" % (value, meta(m))


def listing(items):
    return "[" + ", ".join("value=%r %s" % (v, meta(m)) for v, m in items) + "]"


BASE = client.get_all_response().header.revision
KVMetadata = sys.modules["etcd3.client"].KVMetadata

# ---- KV -------------------------------------------------------------------
step("put a", lambda: header(client.put("py/a", "1")))
step("put b", lambda: header(client.put("py/b", "2")))
step("put a again prev_kv", lambda: "%s prev=%s" % (
    header(r := client.put("py/a", "11", prev_kv=True)), meta(
        KVMetadata(r.prev_kv, r.header) if r.HasField("prev_kv") else None)))
step("put bytes", lambda: header(client.put(b"py/\x00bin", b"\xff\x00")))
step("get a", lambda: get("py/a"))
step("get missing", lambda: get("py/missing"))
step("get bytes", lambda: get(b"py/\x00bin"))
step("get_prefix", lambda: listing(client.get_prefix("py/")))
step("get_prefix desc by key", lambda: listing(
    client.get_prefix("py/", sort_order="descend", sort_target="key")))
step("get_prefix by mod", lambda: listing(
    client.get_prefix("py/", sort_order="ascend", sort_target="mod")))
step("get_prefix keys_only", lambda: listing(client.get_prefix("py/", keys_only=True)))
step("get_range", lambda: listing(client.get_range("py/a", "py/c")))
step("get_all", lambda: listing(client.get_all()))
step("get serializable", lambda: get("py/a", serializable=True))
step("get_prefix at B+1", lambda: listing(client.get_prefix("py/", revision=BASE + 1)))
step("get_prefix limit", lambda: listing(client.get_prefix("py/", limit=1)))
step("delete b", lambda: client.delete("py/b"))
step("delete b again", lambda: client.delete("py/b"))
step("delete b prev_kv", lambda: client.delete("py/a", prev_kv=True, return_response=True).deleted)
step("delete_prefix", lambda: client.delete_prefix("py/").deleted)
step("get_prefix after", lambda: listing(client.get_prefix("py/")))
step("put empty key", lambda: header(client.put("", "x")))

# ---- Transactions ---------------------------------------------------------
client.put("tx/k", "v1")
step("txn value match", lambda: txn(client.transaction(
    compare=[client.transactions.value("tx/k") == "v1"],
    success=[client.transactions.put("tx/k", "v2"), client.transactions.get("tx/k")],
    failure=[client.transactions.get("tx/k")])))
step("txn value mismatch", lambda: txn(client.transaction(
    compare=[client.transactions.value("tx/k") == "v1"],
    success=[client.transactions.put("tx/k", "nope")],
    failure=[client.transactions.get("tx/k")])))
step("txn version", lambda: txn(client.transaction(
    compare=[client.transactions.version("tx/k") > 1, client.transactions.create("tx/none") == 0],
    success=[client.transactions.delete("tx/k")], failure=[])))
step("txn mod", lambda: txn(client.transaction(
    compare=[client.transactions.mod("tx/k") < 1],
    success=[], failure=[client.transactions.put("tx/k", "again")])))
step("txn duplicate", lambda: client.transaction(
    compare=[], success=[client.transactions.put("tx/d", "1"), client.transactions.put("tx/d", "2")],
    failure=[]))
step("get tx", lambda: listing(client.get_prefix("tx/")))

# ---- Watch ----------------------------------------------------------------
events = []
done = threading.Event()


def on_watch(resp):
    if isinstance(resp, Exception):
        events.append("error %s" % type(resp).__name__)
        done.set()
        return
    for e in resp.events:
        events.append("%s %r=%r mod=%s" % (
            type(e).__name__, e.key, e.value, rev(e.mod_revision)))
    if len(events) >= 3:
        done.set()


wid = client.add_watch_prefix_callback("w/", on_watch)
client.put("w/a", "1")
client.put("w/b", "2")
client.delete("w/a")
done.wait(5)
client.cancel_watch(wid)
out.append("watch events: %s" % events)
it, cancel = client.watch("w/b", start_revision=BASE + 1)
replay = []
for e in it:
    replay.append("%s %r=%r mod=%s" % (type(e).__name__, e.key, e.value, rev(e.mod_revision)))
    if len(replay) >= 1:
        break
cancel()
out.append("watch replay: %s" % replay)

# ---- Leases ---------------------------------------------------------------
l1 = client.lease(60)
out.append("lease granted: id=%s ttl=%d" % (lease(l1.id), l1.ttl))
client.put("ls/a", "1", lease=l1)
client.put("ls/b", "2", lease=l1.id)
step("lease remaining", lambda: l1.remaining_ttl)
step("lease granted ttl", lambda: l1.granted_ttl)
step("lease keys", lambda: sorted(l1.keys))
step("lease refresh", lambda: [r.TTL for r in l1.refresh()])
step("get leased", lambda: get("ls/a"))
step("revoke", lambda: l1.revoke())
step("get after revoke", lambda: listing(client.get_prefix("ls/")))
step("revoke again", lambda: client.revoke_lease(l1.id))
step("put unknown lease", lambda: header(client.put("ls/x", "1", lease=123456)))
l2 = client.lease(30, lease_id=4242)
out.append("lease with id: id=%s ttl=%d" % (l2.id, l2.ttl))
step("duplicate lease id", lambda: client.lease(30, lease_id=4242).id)
step("revoke 4242", lambda: client.revoke_lease(4242) and "revoked")

# ---- Compaction -----------------------------------------------------------
r1 = client.put("cp/k", "1").header.revision
client.put("cp/k", "2")
step("compact", lambda: client.compact(r1 + 1, physical=True))
step("get compacted rev", lambda: listing(client.get_prefix("cp/", revision=r1)))
step("get at compact rev", lambda: listing(client.get_prefix("cp/", revision=r1 + 1)))
step("compact again", lambda: client.compact(r1))

client.close()
print("\n".join(out))
sys.stdout.flush()
# The client's watch thread complains when its channel closes under it.
os._exit(0)
