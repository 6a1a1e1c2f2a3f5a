#!/usr/bin/env bash
# Side-by-side benchmark: a 3-member etcd 3.4 (v2 API) and a 3-member
# ferretcd on loopback, the same ferret-bench workloads against each,
# alternating etcd, ferretcd, etcd, ferretcd, ... per workload. Prints one
# Markdown table and writes it (and the raw JSON) under bench/results/.
#
#   bench/compare.sh            full run (REPS=3 repetitions, 1,000,000-key memory load)
#   bench/compare.sh --quick    short smoke version (1 repetition, short runs, 100,000 keys)
#   bench/compare.sh --reps N   N repetitions
#
# Environment: ETCD (default /usr/bin/etcd), FERRETCD / FERRET_BENCH
# (default target/release/{ferretcd,ferret-bench}, built if missing),
# SNAPSHOT_COUNT (default 100000, both servers), ETCD_PORT / FERRET_PORT
# (first client port of each cluster, default 17379 / 18379; members use
# port, port+2, port+4 for clients and +1 for peers), WORKLOADS (a
# space-separated subset of: put64 put1 get64s get64l memory watch).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QUICK=0
REPS=${REPS:-3}
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1; shift ;;
    --reps) REPS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

ETCD=${ETCD:-/usr/bin/etcd}
FERRETCD=${FERRETCD:-$ROOT/target/release/ferretcd}
BENCH=${FERRET_BENCH:-$ROOT/target/release/ferret-bench}
SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-100000}
ETCD_PORT=${ETCD_PORT:-17379}
FERRET_PORT=${FERRET_PORT:-18379}
WORKLOADS=${WORKLOADS:-"put64 put1 get64s get64l memory watch"}

if [[ $QUICK == 1 ]]; then
  REPS=${QUICK_REPS:-1}; DUR=3; MEM_KEYS=100000; WATCH_WRITES=200; GET_KEYS=10000
else
  DUR=${DURATION:-20}; MEM_KEYS=1000000; WATCH_WRITES=2000; GET_KEYS=100000
fi

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

# start_cluster <etcd|ferretcd> <first client port>: sets MEMBER_PIDS, ENDPOINTS.
start_cluster() {
  local kind=$1 base=$2 bin i name cp pp cluster="" dir
  [[ $kind == etcd ]] && bin=$ETCD || bin=$FERRETCD
  for i in 0 1 2; do
    cp=$((base + 4 * i)); pp=$((cp + 1))
    port_free "$cp" && port_free "$pp" || { echo "compare.sh: port $cp or $pp is in use (set ${kind^^}_PORT)" >&2; exit 1; }
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$pp"
  done
  MEMBER_PIDS=(); ENDPOINTS=""
  for i in 0 1 2; do
    cp=$((base + 4 * i)); pp=$((cp + 1)); name=m$i
    dir=$WORK/$kind/$name; rm -rf "$dir"; mkdir -p "$dir"
    "$bin" --name "$name" --data-dir "$dir/data" --enable-v2 \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$kind" \
      --snapshot-count "$SNAPSHOT_COUNT" >"$dir/log" 2>&1 &
    PIDS+=($!); MEMBER_PIDS+=($!)
    ENDPOINTS+="${ENDPOINTS:+,}http://127.0.0.1:$cp"
  done
  local url ok
  for _ in $(seq 150); do
    ok=1
    for url in ${ENDPOINTS//,/ }; do
      curl -sf "$url/health" 2>/dev/null | grep -q '"health":"true"' || { ok=0; break; }
    done
    [[ $ok == 1 ]] && return 0
    sleep 0.2
  done
  echo "compare.sh: $kind cluster did not become healthy; logs in $WORK/$kind" >&2
  tail -5 "$WORK/$kind"/*/log >&2
  exit 1
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

FILES=()
for w in $WORKLOADS; do
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
      [[ ($w == get64s || $w == get64l) && $r == 1 ]] && extra=(--populate)
      json=$OUT/$w-$srv-$r.json
      echo "-- $srv, repetition $r" >&2
      # shellcheck disable=SC2086
      "$BENCH" ${ARGS[$w]} "${extra[@]}" --endpoints "$ep" --pids "$pids" \
        --server "$srv" --name "${LABEL[$w]}" --json "$json" --quiet >"$OUT/$w-$srv-$r.txt"
      grep -E "throughput|writes:|Latency|latency, ack" "$OUT/$w-$srv-$r.txt" >&2 || true
      FILES+=("$json")
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
