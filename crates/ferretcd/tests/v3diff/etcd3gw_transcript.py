"""Drives a server's JSON gateway with python's `etcd3gw` client (2.7)
and prints a transcript that tests/v3_clients.rs compares between the
reference etcd and the candidate.

Usage: python etcd3gw_transcript.py HOST PORT

Normalised here: revisions relative to the server's revision when the
script started (B+N), lease ids as lease#N in order of appearance, the
member's id, name and URLs replaced. Every failed call prints the
exception's class and message.
"""

import sys
import threading
import time

import etcd3gw

HOST, PORT = sys.argv[1], int(sys.argv[2])
client = etcd3gw.client(host=HOST, port=PORT, timeout=10)
out = []
leases = {}
BASE = None


def rev(r):
    return "B%+d" % (int(r) - BASE)


def lease(i):
    i = int(i)
    if i == 0:
        return "0"
    return leases.setdefault(i, "lease#%d" % (len(leases) + 1))


def meta(m):
    if not m:
        return "(none)"
    return "key=%r create=%s mod=%s version=%s lease=%s" % (
        m.get("key"),
        rev(m.get("create_revision", 0)),
        rev(m.get("mod_revision", 0)),
        m.get("version"),
        lease(m.get("lease", 0)),
    )


def step(name, f):
    try:
        out.append("%s: %s" % (name, f()))
    except Exception as e:  # noqa: BLE001 - every failure is part of the transcript
        out.append("%s: %s %s" % (name, type(e).__name__, e))


def values(items):
    return [(v, meta(m)) for v, m in items]


BASE = int(client.status()["header"]["revision"])
step("api path", lambda: client.api_path)
step("members", lambda: [(len(m.get("peerURLs", [])), len(m.get("clientURLs", []))) for m in client.members()])
step("put", lambda: client.put("/gw/a", "1"))
step("create exists", lambda: client.create("/gw/a", "2"))
step("create new", lambda: client.create("/gw/b", "2"))
step("get", lambda: client.get("/gw/a"))
step("get metadata", lambda: values(client.get("/gw/a", metadata=True)))
step("get missing", lambda: client.get("/gw/none"))
step("get prefix", lambda: values(client.get_prefix("/gw/", sort_order="ascend", sort_target="key")))
step("get all", lambda: len(client.get_all()))
step("replace ok", lambda: client.replace("/gw/a", "1", "3"))
step("replace stale", lambda: client.replace("/gw/a", "1", "4"))
step("get after", lambda: client.get("/gw/a"))
step("delete", lambda: client.delete("/gw/b"))
step("delete missing", lambda: client.delete("/gw/b"))
l = client.lease(ttl=60)
step("lease id", lambda: lease(l.id))
step("lease ttl", lambda: 59 <= l.ttl() <= 60)
step("put with lease", lambda: client.put("/gw/l", "x", lease=l))
step("lease keys", lambda: l.keys())
step("lease refresh", lambda: l.refresh())
step("lease revoke", lambda: l.revoke())
step("leased key gone", lambda: client.get("/gw/l"))
step(
    "txn",
    lambda: client.transaction(
        {
            "compare": [
                {
                    "key": etcd3gw.utils._encode("/gw/a"),
                    "result": "EQUAL",
                    "target": "VALUE",
                    "value": etcd3gw.utils._encode("3"),
                }
            ],
            "success": [
                {
                    "request_put": {
                        "key": etcd3gw.utils._encode("/gw/t"),
                        "value": etcd3gw.utils._encode("yes"),
                    }
                }
            ],
            "failure": [],
        }
    ).get("succeeded"),
)
lock = client.lock(id="gw-lock", ttl=30)
step("lock acquire", lambda: lock.acquire())
step("lock is acquired", lambda: lock.is_acquired())
step("lock release", lambda: lock.release())


def writer():
    time.sleep(0.5)
    client.put("/gw/w", "watched")


threading.Thread(target=writer, daemon=True).start()
step("watch once", lambda: (lambda e: (e.get("type", "PUT"), meta(e.get("kv"))))(client.watch_once("/gw/w", timeout=10)))
step("delete prefix", lambda: client.delete_prefix("/gw/"))
step("after delete prefix", lambda: client.get_prefix("/gw/"))
print("\n".join(out))
