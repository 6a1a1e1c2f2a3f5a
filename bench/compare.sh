#!/usr/bin/env bash
# Side-by-side benchmark: a 3-member etcd 3.4 and a 3-member ferretcd on
# loopback, the same ferret-bench workloads against each, alternating etcd,
# ferretcd, etcd, ferretcd, ... per workload, fresh clusters per workload.
# Prints Markdown tables and writes them (and the raw JSON) under
# bench/results/ (git-ignored).
#
#   bench/compare.sh            full run (REPS=3 repetitions, 1,000,000-key loads, 1 GiB compaction)
#   bench/compare.sh --quick    smoke version (1 repetition, 3 s runs, small loads): validates, measures nothing
#   bench/compare.sh --reps N   N repetitions
#
# Environment: ETCD (default /usr/bin/etcd), FERRETCD / FERRET_BENCH
# (default target/release/{ferretcd,ferret-bench}, built if missing),
# SNAPSHOT_COUNT (default 100000, both servers), ETCD_PORT / FERRET_PORT
# (first client port of each cluster, default 17379 / 18379; members use
# port, port+4, port+8 for clients and +1 for peers), DURATION (seconds per
# timed run, default 20), WORKLOADS (a space-separated subset of the keys
# below, or the groups v2 and v3; default: all).
#   v2: put64 put1 get64s get64l memory watch
#   v3: v3put v3put1 v3rangel v3ranges v3txn v3watch v3lease v3keys1m v3compact v3defrag
# v3keys1m, v3compact and v3defrag are measurements (once per server; restarts are
# repeated REPS times): see BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QUICK=0
REPS=${REPS:-3}
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --reps) REPS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

ETCD=${ETCD:-/usr/bin/etcd}
FERRETCD=${FERRETCD:-$ROOT/target/release/ferretcd}
BENCH=${FERRET_BENCH:-$ROOT/target/release/ferret-bench}
SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-100000}
ETCD_PORT=${ETCD_PORT:-17379}
FERRET_PORT=${FERRET_PORT:-18379}
V2_WORKLOADS="put64 put1 get64s get64l memory watch"
V3_WORKLOADS="v3put v3put1 v3rangel v3ranges v3txn v3watch v3lease v3keys1m v3compact v3defrag"
expanded=""
for w in ${WORKLOADS:-v2 v3}; do
  case $w in
    v2) expanded+=" $V2_WORKLOADS" ;;
    v3) expanded+=" $V3_WORKLOADS" ;;
    *) expanded+=" $w" ;;
  esac
done
WORKLOADS=$expanded

# V3_KEYS: the 1M-key measurement's load; COMPACT_BYTES: revisions loaded
# before the compaction (key + value bytes); COMPACT_RATE: puts/s of the
# load measured around it; V3_WATCHERS / V3_WATCH_RATE / V3_WATCH_KEYS: the
# watch-latency workload (each put reaches V3_WATCHERS / V3_WATCH_KEYS
# watchers).
if [[ $QUICK == 1 ]]; then
  REPS=${QUICK_REPS:-1}; DUR=3; MEM_KEYS=100000; WATCH_WRITES=200; GET_KEYS=10000
  V3_KEYS=${V3_KEYS:-100000}; COMPACT_BYTES=${COMPACT_BYTES:-$((64 << 20))}; COMPACT_PHASE=3
  DEFRAG_KEYS=${DEFRAG_KEYS:-50000}
  COMPACT_RATE=${COMPACT_RATE:-300}
else
  DUR=${DURATION:-20}; MEM_KEYS=1000000; WATCH_WRITES=2000; GET_KEYS=100000
  V3_KEYS=${V3_KEYS:-1000000}; COMPACT_BYTES=${COMPACT_BYTES:-$((1 << 30))}; COMPACT_PHASE=10
  DEFRAG_KEYS=${DEFRAG_KEYS:-1000000}
fi
# A steady load well below either server's capacity, so that the p99 around
# the compaction is not a queue's.
COMPACT_RATE=${COMPACT_RATE:-1000}
DEFRAG_VALUE=${DEFRAG_VALUE:-1024}
V3_WATCHERS=${V3_WATCHERS:-10000}
V3_WATCH_KEYS=${V3_WATCH_KEYS:-10}
V3_WATCH_RATE=${V3_WATCH_RATE:-20}

[[ -x $ETCD ]] || { echo "compare.sh: no etcd at $ETCD" >&2; exit 1; }
if [[ ! -x $FERRETCD || ! -x $BENCH ]]; then
  echo "building ferretcd and ferret-bench (release)" >&2
  cargo build --release -p ferretcd -p ferret-bench
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

STAMP=$(date +%Y%m%d-%H%M%S)-$([[ $QUICK == 1 ]] && echo quick || echo full)
OUT=$ROOT/bench/results/$STAMP
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferret-compare.XXXXXX")
PIDS=()

stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -ltn "( sport = :$1 )" 2>/dev/null | grep -q LISTEN; }

# start_member <etcd|ferretcd> <first client port> <index>: starts member m<index>
# (in its existing data dir if any: a restart), sets MEMBER_PID.
start_member() {
  local kind=$1 base=$2 i=$3 bin cluster="" j cp pp dir
  [[ $kind == etcd ]] && bin=$ETCD || bin=$FERRETCD
  for j in 0 1 2; do
    cluster+="${cluster:+,}m$j=http://127.0.0.1:$((base + 4 * j + 1))"
  done
  cp=$((base + 4 * i)); pp=$((cp + 1)); dir=$WORK/$kind/m$i
  mkdir -p "$dir"
  "$bin" --name "m$i" --data-dir "$dir/data" --enable-v2 \
    --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$kind" \
    --snapshot-count "$SNAPSHOT_COUNT" >>"$dir/log" 2>&1 &
  MEMBER_PID=$!
  PIDS+=("$MEMBER_PID")
}

# start_cluster <etcd|ferretcd> <first client port>: fresh data dirs; sets
# MEMBER_PIDS, ENDPOINTS.
start_cluster() {
  local kind=$1 base=$2 i cp pp
  for i in 0 1 2; do
    cp=$((base + 4 * i)); pp=$((cp + 1))
    port_free "$cp" && port_free "$pp" || { echo "compare.sh: port $cp or $pp is in use (set ${kind^^}_PORT)" >&2; exit 1; }
  done
  rm -rf "${WORK:?}/$kind"
  MEMBER_PIDS=(); ENDPOINTS=""
  for i in 0 1 2; do
    start_member "$kind" "$base" "$i"
    MEMBER_PIDS+=("$MEMBER_PID")
    ENDPOINTS+="${ENDPOINTS:+,}http://127.0.0.1:$((base + 4 * i))"
  done
  wait_healthy "$kind" "$ENDPOINTS"
}

# wait_healthy <kind> <endpoints>: every endpoint's /health says true (30 s).
wait_healthy() {
  local kind=$1 url ok
  for _ in $(seq 150); do
    ok=1
    for url in ${2//,/ }; do
      curl -sf "$url/health" 2>/dev/null | grep -q '"health":"true"' || { ok=0; break; }
    done
    [[ $ok == 1 ]] && return 0
    sleep 0.2
  done
  echo "compare.sh: $kind cluster did not become healthy; logs in $WORK/$kind" >&2
  tail -n 5 "$WORK/$kind"/*/log >&2
  exit 1
}

# leader_index <first client port>: the index of the member that leads (v2 stats).
leader_index() {
  local i
  for _ in $(seq 100); do
    for i in 0 1 2; do
      curl -sf "http://127.0.0.1:$(($1 + 4 * i))/v2/stats/self" 2>/dev/null | grep -q StateLeader && { echo "$i"; return 0; }
    done
    sleep 0.1
  done
  echo "compare.sh: no leader on port $1's cluster" >&2
  exit 1
}

# stop_pid <pid>: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Workload definitions: a label and ferret-bench arguments.
declare -A LABEL ARGS
LABEL[put64]="PUT, 64 conns"
ARGS[put64]="put --conns 64 --clients 64 --duration $DUR --target leader"
LABEL[put1]="PUT, 1 conn"
ARGS[put1]="put --conns 1 --clients 1 --duration $DUR --target leader"
LABEL[get64s]="GET local, 64 conns"
ARGS[get64s]="get --conns 64 --clients 64 --duration $DUR --consistency s --key-space-size $GET_KEYS --target all"
LABEL[get64l]="GET quorum, 64 conns"
ARGS[get64l]="get --conns 64 --clients 64 --duration $DUR --consistency l --key-space-size $GET_KEYS --target all"
LABEL[memory]="memory: $MEM_KEYS keys × 256 B"
ARGS[memory]="put --conns 64 --clients 64 --sequential-keys --key-space-size $MEM_KEYS --total $MEM_KEYS --target leader"
LABEL[watch]="watch latency, 1,000 watchers"
ARGS[watch]="watch-latency --watchers 1000 --watch-keys 10 --total $WATCH_WRITES --rate 200 --target all"
# v3: 1000 clients over 100 connections, 8-byte keys, 256-byte values,
# 100,000 keys (GET_KEYS in --quick) unless the label says otherwise.
LABEL[v3put]="v3 put, 1000 clients"
ARGS[v3put]="v3 put --conns 100 --clients 1000 --duration $DUR --key-space-size 100000 --target leader"
LABEL[v3put1]="v3 put, 1 client"
ARGS[v3put1]="v3 put --conns 1 --clients 1 --duration $DUR --key-space-size 100000 --target leader"
LABEL[v3rangel]="v3 range linearizable, 1000 clients"
ARGS[v3rangel]="v3 range --consistency l --conns 100 --clients 1000 --duration $DUR --key-space-size $GET_KEYS --target all"
LABEL[v3ranges]="v3 range serializable, 1000 clients"
ARGS[v3ranges]="v3 range --consistency s --conns 100 --clients 1000 --duration $DUR --key-space-size $GET_KEYS --target all"
LABEL[v3txn]="v3 txn-put (compare + put), 1000 clients"
ARGS[v3txn]="v3 txn-put --conns 100 --clients 1000 --duration $DUR --key-space-size 100000 --sequential-keys --target leader"
LABEL[v3watch]="v3 watch latency, $V3_WATCHERS watchers"
ARGS[v3watch]="v3 watch-latency --watchers $V3_WATCHERS --conns 100 --watch-keys $V3_WATCH_KEYS --rate $V3_WATCH_RATE --total $(( V3_WATCH_RATE * DUR )) --target all"
LABEL[v3lease]="v3 lease keep-alive, 1000 clients"
ARGS[v3lease]="v3 lease-keepalive --conns 100 --clients 1000 --duration $DUR --target leader"

FILES=()

# bench <json base name> <ferret-bench arguments...>: runs ferret-bench with
# --json/--quiet, its summary in <base>.txt, the key lines on stderr.
bench() {
  local base=$1; shift
  "$BENCH" "$@" --json "$OUT/$base.json" >"$OUT/$base.txt"
  grep -E "throughput|writes:|Latency|latency, |Summary \(v3 (ready|compact)|before |during |after |MiB on disk \(|RSS " "$OUT/$base.txt" >&2 || true
  FILES+=("$OUT/$base.json")
}

# v3keys1m, per server on a fresh cluster: load V3_KEYS keys of 256 bytes
# (each once), then the members' RSS and data dirs; restart a follower REPS
# times (time to a served serializable Range); compact at the current
# revision; the data dirs again.
measure_keys1m() {
  local srv base pids ep f r t0 i tag="v3 $V3_KEYS keys × 256 B"
  echo "== $tag: load, RSS, restart to ready, disk (fresh cluster per server)" >&2
  for srv in etcd ferretcd; do
    [[ $srv == etcd ]] && base=$ETCD_PORT || base=$FERRET_PORT
    start_cluster "$srv" "$base"
    ep=$ENDPOINTS; pids=$(IFS=,; echo "${MEMBER_PIDS[*]}")
    echo "-- $srv" >&2
    bench "v3keys1m-$srv-load" v3 put --conns 100 --clients 1000 --sequential-keys \
      --key-space-size "$V3_KEYS" --total "$V3_KEYS" --target leader \
      --endpoints "$ep" --pids "$pids" --server "$srv" --name "$tag: load" --quiet
    sleep 2
    bench "v3keys1m-$srv-rss" rss --pids "$pids" --server "$srv" --name "$tag: memory"
    bench "v3keys1m-$srv-disk-load" disk-usage "$WORK/$srv"/m{0,1,2}/data \
      --server "$srv" --name "$tag: disk after the load"
    f=$(( ($(leader_index "$base") + 1) % 3 ))
    for r in $(seq "$REPS"); do
      stop_pid "${MEMBER_PIDS[$f]}"
      t0=$(date +%s%N)
      start_member "$srv" "$base" "$f"
      MEMBER_PIDS[f]=$MEMBER_PID
      bench "v3keys1m-$srv-ready-$r" v3 ready --endpoint "http://127.0.0.1:$((base + 4 * f))" \
        --since-unix-ns "$t0" --pid "$MEMBER_PID" --server "$srv" --name "$tag: restart of a follower"
      wait_healthy "$srv" "$ep"
    done
    bench "v3keys1m-$srv-compact" v3 compact --endpoints "$ep" --target leader \
      --server "$srv" --name "$tag: compaction" --quiet
    sleep 5
    bench "v3keys1m-$srv-disk-compacted" disk-usage "$WORK/$srv"/m{0,1,2}/data \
      --server "$srv" --name "$tag: disk after a compaction"
    stop_all
  done
}

# v3compact, per server on a fresh cluster: load COMPACT_BYTES of revisions
# by overwriting 100,000 keys, then a put load at COMPACT_RATE; compact at
# the current revision after COMPACT_PHASE seconds; COMPACT_PHASE seconds
# more after the compaction's answer. Both servers keep the default backend
# quota (2 GiB): 1 GiB of
# revisions fits in it, and a NOSPACE would show as errors.
measure_compact() {
  local srv base mib=$((COMPACT_BYTES >> 20)) tag
  tag="v3 put p99 around a compaction of $mib MiB of revisions"
  echo "== $tag (fresh cluster per server)" >&2
  for srv in etcd ferretcd; do
    [[ $srv == etcd ]] && base=$ETCD_PORT || base=$FERRET_PORT
    start_cluster "$srv" "$base"
    echo "-- $srv" >&2
    bench "v3compact-$srv" v3 compact-latency --load-bytes "$COMPACT_BYTES" --key-space-size 100000 \
      --conns 100 --clients 1000 --rate "$COMPACT_RATE" --before "$COMPACT_PHASE" --after "$COMPACT_PHASE" \
      --target leader --endpoints "$ENDPOINTS" --pids "$(IFS=,; echo "${MEMBER_PIDS[*]}")" \
      --server "$srv" --name "$tag" --quiet
    sleep 5
    bench "v3compact-$srv-disk" disk-usage "$WORK/$srv"/m{0,1,2}/data \
      --server "$srv" --name "$tag: disk after it"
    stop_all
  done
}

# v3defrag, per server on a fresh cluster: DEFRAG_KEYS keys of
# DEFRAG_VALUE bytes (about 1 GiB of live data by default), a fifth of them
# written twice, compacted at the end of the load (not measured); then a
# put load at COMPACT_RATE, and after COMPACT_PHASE seconds the leader is
# defragmented (Maintenance.Defragment, as `etcdctl defrag`), which copies
# the live GiB into a new file; COMPACT_PHASE seconds more after its answer.
measure_defrag() {
  local srv base tag load=$(( DEFRAG_KEYS * (DEFRAG_VALUE + 16) * 6 / 5 ))
  tag="v3 put p99 around a defragmentation of $(( DEFRAG_KEYS * DEFRAG_VALUE >> 20 )) MiB of live data"
  echo "== $tag (fresh cluster per server)" >&2
  for srv in etcd ferretcd; do
    [[ $srv == etcd ]] && base=$ETCD_PORT || base=$FERRET_PORT
    start_cluster "$srv" "$base"
    echo "-- $srv" >&2
    bench "v3defrag-$srv" v3 compact-latency --defrag --load-bytes "$load" \
      --key-space-size "$DEFRAG_KEYS" --val-size "$DEFRAG_VALUE" --key-size 16 \
      --conns 100 --clients 1000 --rate "$COMPACT_RATE" --before "$COMPACT_PHASE" --after "$COMPACT_PHASE" \
      --target leader --endpoints "$ENDPOINTS" --pids "$(IFS=,; echo "${MEMBER_PIDS[*]}")" \
      --server "$srv" --name "$tag"
    stop_all
  done
}

for w in $WORKLOADS; do
  case $w in
    v3keys1m) measure_keys1m; continue ;;
    v3compact) measure_compact; continue ;;
    v3defrag) measure_defrag; continue ;;
  esac
  [[ -n ${ARGS[$w]:-} ]] || { echo "compare.sh: unknown workload $w" >&2; exit 2; }
  reps=$REPS
  [[ $w == memory ]] && reps=1
  echo "== ${LABEL[$w]} (fresh clusters, $reps repetition(s))" >&2
  start_cluster etcd "$ETCD_PORT"; E_PIDS=$(IFS=,; echo "${MEMBER_PIDS[*]}"); E_EP=$ENDPOINTS
  start_cluster ferretcd "$FERRET_PORT"; F_PIDS=$(IFS=,; echo "${MEMBER_PIDS[*]}"); F_EP=$ENDPOINTS
  for r in $(seq "$reps"); do
    for srv in etcd ferretcd; do
      if [[ $srv == etcd ]]; then pids=$E_PIDS; ep=$E_EP; else pids=$F_PIDS; ep=$F_EP; fi
      extra=()
      [[ ($w == get64s || $w == get64l || $w == v3rangel || $w == v3ranges) && $r == 1 ]] && extra=(--populate)
      echo "-- $srv, repetition $r" >&2
      # shellcheck disable=SC2086
      bench "$w-$srv-$r" ${ARGS[$w]} "${extra[@]}" --endpoints "$ep" --pids "$pids" \
        --server "$srv" --name "${LABEL[$w]}" --quiet
    done
  done
  stop_all
done

{
  echo "# ferretcd vs etcd 3.4 ($STAMP)"
  echo
  echo "Command: \`bench/compare.sh $([[ $QUICK == 1 ]] && echo --quick) --reps $REPS\`; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/^Mem/{print $2}') GiB RAM; etcd $("$ETCD" --version | awk '/etcd Version/{print $3}'), ferretcd $(cd "$ROOT" && git rev-parse --short HEAD)."
  echo
  "$BENCH" table "${FILES[@]}"
} | tee "$OUT.md"
echo "results: $OUT.md (raw JSON and text in $OUT/)" >&2
