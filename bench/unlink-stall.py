#!/usr/bin/env python3
"""How deleting a large file stalls a concurrent fdatasync on this disk.

A thread appends 4 KiB and fdatasyncs it every millisecond, as a WAL under
load does, while the main thread frees a 64 MiB file (a released WAL
segment) in one of three ways:

  none    nothing (the baseline)
  unlink  unlink, then fsync the directory (what ferretcd's wal-purge does)
  trunc   ftruncate it down STEP_KIB at a time (default 256, as ferretcd's
          wal-purge does) with a PAUSE_MS pause (default 5), then unlink and
          fsync the directory

It prints how long the deletion took and the slowest fdatasync before and
while it ran. Usage: bench/unlink-stall.py DIR none|unlink|trunc [STEP_KIB
[PAUSE_MS]] (DIR on the disk to test; it is created, and the files are
removed).
"""
import os
import sys
import threading
import time

SEGMENT_MIB = 64


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("none", "unlink", "trunc"):
        sys.exit(__doc__)
    d, mode = sys.argv[1], sys.argv[2]
    step = int(sys.argv[3]) << 10 if len(sys.argv) > 3 else 256 << 10
    pause = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0.005
    os.makedirs(d, exist_ok=True)
    big = os.path.join(d, "segment")
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(SEGMENT_MIB):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    wal_path = os.path.join(d, "wal")
    wal = os.open(wal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    syncs, stop = [], threading.Event()

    def wal_loop():
        buf = os.urandom(4096)
        while not stop.is_set():
            t = time.perf_counter()
            os.write(wal, buf)
            os.fdatasync(wal)
            syncs.append((t, time.perf_counter() - t))
            time.sleep(0.001)

    th = threading.Thread(target=wal_loop)
    th.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    if mode == "trunc":
        fd = os.open(big, os.O_WRONLY)
        left = SEGMENT_MIB << 20
        while left > 0:
            left = max(0, left - step)
            os.ftruncate(fd, left)
            if left > 0:
                time.sleep(pause)
        os.close(fd)
    if mode in ("unlink", "trunc"):
        os.unlink(big)
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    t1 = time.perf_counter()
    time.sleep(1.0)
    stop.set()
    th.join()
    os.close(wal)
    os.unlink(wal_path)
    if os.path.exists(big):
        os.unlink(big)
    before = [s for t, s in syncs if t < t0]
    during = [s for t, s in syncs if t0 - 0.05 <= t <= t1 + 0.05]
    print(
        f"{mode}: deletion {1000 * (t1 - t0):.1f} ms; slowest fdatasync "
        f"before {1000 * max(before):.1f} ms, while deleting "
        f"{1000 * max(during, default=0):.1f} ms ({len(during)} syncs)"
    )


if __name__ == "__main__":
    main()
