#!/usr/bin/env bash
# A local 3-member ferretcd cluster for trying things by hand.
#
#   scripts/cluster.sh start    start infra0..infra2 (a fresh cluster, or the
#                               existing one restarted with its data)
#   scripts/cluster.sh stop     stop them (SIGTERM, then SIGKILL after 10 s)
#   scripts/cluster.sh status   which members run, and who leads
#   scripts/cluster.sh clean    stop, then delete ./cluster-data
#
# Builds nothing: runs $FERRETCD, else target/release/ferretcd (build it with
# `cargo build --release -p ferretcd`). Members, as in etcd's Procfile:
#
#   infra0  client http://127.0.0.1:2379   peer http://127.0.0.1:2380
#   infra1  client http://127.0.0.1:22379  peer http://127.0.0.1:22380
#   infra2  client http://127.0.0.1:32379  peer http://127.0.0.1:32380
#
# Data, logs and pid files live in ./cluster-data/ (or $CLUSTER_DATA):
# <name>/ is the data dir, <name>.log the output, <name>.pid the process.
# Try:  curl -L http://127.0.0.1:2379/v2/keys/foo -XPUT -d value=bar
#       curl -L http://127.0.0.1:22379/v2/keys/foo
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FERRETCD:-$ROOT/target/release/ferretcd}
DATA=${CLUSTER_DATA:-./cluster-data}

NAMES=(infra0 infra1 infra2)
CLIENT_PORTS=(2379 22379 32379)
PEER_PORTS=(2380 22380 32380)
INITIAL_CLUSTER="infra0=http://127.0.0.1:2380,infra1=http://127.0.0.1:22380,infra2=http://127.0.0.1:32380"

# The pid of a running member, or nothing. A stale pid file whose pid now
# belongs to another program does not count.
running_pid() {
  local pidfile="$DATA/$1.pid" pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--name $1 "; then
    echo "$pid"
  fi
}

start() {
  if [[ ! -x $BIN ]]; then
    echo "cluster.sh: no ferretcd binary at $BIN" >&2
    echo "  build it (cargo build --release -p ferretcd) or set FERRETCD=/path/to/ferretcd" >&2
    exit 1
  fi
  mkdir -p "$DATA"
  local i name pid
  for i in 0 1 2; do
    name=${NAMES[$i]}
    pid=$(running_pid "$name")
    if [[ -n $pid ]]; then
      echo "$name already running (pid $pid)"
      continue
    fi
    nohup "$BIN" \
      --name "$name" \
      --data-dir "$DATA/$name" \
      --listen-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
      --initial-cluster-token etcd-cluster-1 \
      --initial-cluster "$INITIAL_CLUSTER" \
      --initial-cluster-state new \
      --enable-v2 \
      >>"$DATA/$name.log" 2>&1 </dev/null &
    echo $! >"$DATA/$name.pid"
    echo "$name started (pid $!), client http://127.0.0.1:${CLIENT_PORTS[$i]}, log $DATA/$name.log"
  done
  # A member serves clients once the cluster has a leader: wait for that.
  local deadline=$((SECONDS + 20)) ok
  while ((SECONDS < deadline)); do
    ok=0
    for i in 0 1 2; do
      if curl -fsS --max-time 1 "http://127.0.0.1:${CLIENT_PORTS[$i]}/health" 2>/dev/null | grep -q '"true"'; then
        ok=$((ok + 1))
      fi
    done
    if ((ok == 3)); then
      echo "cluster healthy"
      return 0
    fi
    for i in 0 1 2; do
      if [[ -z $(running_pid "${NAMES[$i]}") ]]; then
        echo "cluster.sh: ${NAMES[$i]} exited; last lines of $DATA/${NAMES[$i]}.log:" >&2
        tail -n 20 "$DATA/${NAMES[$i]}.log" >&2
        exit 1
      fi
    done
    sleep 0.2
  done
  echo "cluster.sh: not healthy after 20 s (see the logs in $DATA)" >&2
  exit 1
}

stop() {
  local name pid
  local -a pids=()
  for name in "${NAMES[@]}"; do
    pid=$(running_pid "$name")
    if [[ -n $pid ]]; then
      kill -TERM "$pid"
      pids+=("$pid")
      echo "$name stopping (pid $pid)"
    else
      echo "$name not running"
    fi
    rm -f "$DATA/$name.pid"
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        echo "pid $pid did not stop within 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
}

status() {
  local i name pid state
  for i in 0 1 2; do
    name=${NAMES[$i]}
    pid=$(running_pid "$name")
    if [[ -z $pid ]]; then
      echo "$name  stopped"
      continue
    fi
    state=$(curl -sS --max-time 1 "http://127.0.0.1:${CLIENT_PORTS[$i]}/v2/stats/self" 2>/dev/null |
      grep -o '"state":"[A-Za-z]*"' | cut -d'"' -f4 || true)
    echo "$name  running (pid $pid)  http://127.0.0.1:${CLIENT_PORTS[$i]}  ${state:-not serving}"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  clean)
    stop
    rm -rf "$DATA"
    echo "removed $DATA"
    ;;
  *)
    echo "usage: $0 start|stop|status|clean" >&2
    exit 2
    ;;
esac
