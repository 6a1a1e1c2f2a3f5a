#!/usr/bin/env bash
# Patroni (etcd3 DCS) HA smoke test against an etcd-compatible server.
#
# usage: scripts/patroni-ha.sh [ETCD_BINARY]   default: target/release/ferretcd (also works with /usr/bin/etcd)
#
# Needs Debian's patroni (3.x) and PostgreSQL (apt-get install patroni postgresql); runs as root
# (PostgreSQL runs as OSUSER). About 80 s with the default holds; crates/ferretcd/tests/patroni.rs
# runs it in the test suite with shorter ones (about 55 s).
#
#   1. starts a 3-member cluster of ETCD_BINARY (by default clients 24379/24381/24383, peers 24380/24382/24384; see PORTS),
#      two Patroni 3.x nodes p0/p1 (PostgreSQL 24432/24433, REST 24008/24009), waits for one
#      primary + one streaming replica, checks that a row written on the primary reaches the replica;
#   2. SIGKILLs the raft leader of the etcd cluster and checks for STABLE_SECS that the primary stays
#      primary (no demotion, no second primary), restarts that member; then (2b) does the same with
#      the member the primary's Patroni is talking to;
#   3. SIGKILLs the primary's Patroni and postmaster and checks that the replica is promoted within
#      PROMOTE_LIMIT seconds and is writable and has the data.
# Exits 0 on success, 1 with "FAIL: ..." otherwise. All processes it starts are stopped on exit.
#
# environment knobs: WORK (default a new directory under /tmp), OSUSER (default postgres, created
# if missing), STABLE_SECS (30), STABLE2_SECS (20; 0 skips step 2b), PROMOTE_LIMIT (ttl+loop_wait+5=17),
# PG_BIN (directory of initdb/postgres/pg_ctl; autodetected), KEEP_WORK (1 = keep logs/data, default 1),
# EXTRA (1 = also step 4: restart the crashed old primary, check it rejoins as a replica (pg_rewind),
# then a planned `patronictl switchover` back to it; default 0)

set -u -o pipefail

BIN=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/release/ferretcd}
NAME=$(basename "$BIN")
WORK=${WORK:-$(mktemp -d "/tmp/patroni-ha.$NAME.XXXXXX")}
OSUSER=${OSUSER:-postgres}
TTL=10 LOOP_WAIT=2 RETRY_TIMEOUT=5
STABLE_SECS=${STABLE_SECS:-30}
STABLE2_SECS=${STABLE2_SECS:-20}
PROMOTE_LIMIT=${PROMOTE_LIMIT:-$((TTL + LOOP_WAIT + 5))}
KEEP_WORK=${KEEP_WORK:-1}
EXTRA=${EXTRA:-0}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# Ports: these defaults, or PORTS="c0 c1 c2 p0 p1 p2 pg0 pg1 api0 api1" (the test picks free ones).
if [ -n "${PORTS:-}" ]; then
    read -r -a _p <<< "$PORTS"
    CPORTS=("${_p[0]}" "${_p[1]}" "${_p[2]}")
    PPORTS=("${_p[3]}" "${_p[4]}" "${_p[5]}")
    PGPORTS=("${_p[6]}" "${_p[7]}")
    APIPORTS=("${_p[8]}" "${_p[9]}")
else
    CPORTS=(24379 24381 24383)
    PPORTS=(24380 24382 24384)
    PGPORTS=(24432 24433)
    APIPORTS=(24008 24009)
fi
SCOPE=ferret-ha
SUPW=supersecret
INITIAL_CLUSTER="f0=http://127.0.0.1:${PPORTS[0]},f1=http://127.0.0.1:${PPORTS[1]},f2=http://127.0.0.1:${PPORTS[2]}"

FPID=("" "" "")   # etcd member pids
PPID_=("" "")     # patroni pids
EXTRA_PIDS=()     # postgres processes we saw (children of killed postmasters)
FAILED=0
T_START=$(date +%s.%N)

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)/1000}'; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

dump_logs() {
    echo "----- diagnostics (logs in $WORK) -----"
    for i in 0 1; do
        [ -f "$WORK/p$i.log" ] || continue
        echo "== p$i.log (last 40 non-DEBUG lines) =="
        grep -v ' DEBUG: ' "$WORK/p$i.log" | tail -n 40
    done
    for i in 0 1 2; do
        for f in "$WORK"/f$i.log "$WORK"/f$i.restart*.log; do
            [ -f "$f" ] || continue
            echo "== $(basename "$f") (last 15 lines) =="
            tail -n 15 "$f"
        done
    done
    echo "----- end of diagnostics -----"
}

die() {
    log "FAIL: $*"
    FAILED=1
    dump_logs
    exit 1
}

stop_pid() {  # stop_pid PID [grace seconds]; TERM, then KILL
    local pid=$1 grace=${2:-10} n=0
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    while alive "$pid" && [ $n -lt $((grace * 10)) ]; do sleep 0.1; n=$((n + 1)); done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
}

postmaster_pid() {  # postmaster_pid DATADIR -> pid if that postmaster is running
    local d=$1 pid
    [ -f "$d/postmaster.pid" ] || return 1
    pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null)
    alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$d" && echo "$pid"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    log "cleanup: stopping Patroni, PostgreSQL and $NAME processes started by this script"
    for i in 0 1; do stop_pid "${PPID_[$i]}" 15; done
    for i in 0 1; do
        local pm
        pm=$(postmaster_pid "$WORK/pg$i") && { kill -QUIT "$pm" 2>/dev/null; sleep 1; stop_pid "$pm" 5; }
    done
    for p in "${EXTRA_PIDS[@]}"; do
        alive "$p" && grep -q '^postgres' "/proc/$p/cmdline" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    for i in 0 1 2; do stop_pid "${FPID[$i]}" 10; done
    [ "$KEEP_WORK" = 1 ] || rm -rf "$WORK"
    local total
    total=$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')
    if [ $rc -eq 0 ] && [ $FAILED -eq 0 ]; then
        log "PASS: Patroni etcd3 HA test succeeded against $BIN (total ${total}s; logs in $WORK)"
    else
        log "RESULT: FAILED against $BIN (exit $rc, total ${total}s; logs in $WORK)"
        [ $rc -eq 0 ] && rc=1
    fi
    exit $rc
}
trap cleanup EXIT
trap 'FAILED=1; log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
[ -x "$BIN" ] || die "etcd binary '$BIN' not found or not executable"
for c in patroni patronictl curl ss awk setpriv; do
    command -v "$c" >/dev/null || die "'$c' not found (apt-get install -y patroni curl iproute2 util-linux)"
done
if [ -z "${PG_BIN:-}" ]; then
    if command -v initdb >/dev/null; then PG_BIN=$(dirname "$(readlink -f "$(command -v initdb)")")
    else PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1); fi
fi
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL binaries not found in '$PG_BIN' (set PG_BIN)"
PSQL=$PG_BIN/psql; [ -x "$PSQL" ] || PSQL=$(command -v psql) || die "psql not found"
if [ "$(id -u)" = 0 ]; then
    id "$OSUSER" >/dev/null 2>&1 || useradd -r -M -d "$WORK" -s /bin/bash "$OSUSER" || die "cannot create user $OSUSER"
    RUNAS=(setpriv --reuid="$OSUSER" --regid="$(id -g "$OSUSER")" --init-groups)
else
    RUNAS=()
fi
for p in "${CPORTS[@]}" "${PPORTS[@]}" "${PGPORTS[@]}" "${APIPORTS[@]}"; do
    [ -z "$(ss -ltnH "sport = :$p" 2>/dev/null)" ] || die "TCP port $p is already in use on this machine (another test running?)"
done

rm -rf "$WORK"; mkdir -p "$WORK" || die "cannot create $WORK"
chmod 755 "$(dirname "$WORK")" 2>/dev/null
log "binary: $BIN ($("$BIN" --version 2>&1 | head -n 1)); patroni $(patroni --version 2>&1 | awk '{print $2}'); PostgreSQL in $PG_BIN; work dir $WORK"

# ---------------------------------------------------------------- helpers
start_member() {  # start_member I [logsuffix]
    local i=$1 lf="$WORK/f$1${2:-}.log"
    "$BIN" --name "f$i" --data-dir "$WORK/f$i.etcd" \
        --listen-client-urls "http://127.0.0.1:${CPORTS[$i]}" --advertise-client-urls "http://127.0.0.1:${CPORTS[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${PPORTS[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${PPORTS[$i]}" \
        --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-state new >"$lf" 2>&1 &
    FPID[$i]=$!
}

status_of() {  # status_of I -> "member_id leader revision" or nothing
    curl -s -m 2 "http://127.0.0.1:${CPORTS[$1]}/v3/maintenance/status" -d '{}' 2>/dev/null |
        $PY -c 'import json,sys
try:
    d=json.load(sys.stdin); print(d["header"]["member_id"], d.get("leader","0"), d["header"].get("revision","0"))
except Exception: pass'
}

etcd_leader_index() {  # prints index of the member that is the raft leader
    local i s
    for i in 0 1 2; do
        alive "${FPID[$i]}" || continue
        s=$(status_of "$i"); [ -n "$s" ] || continue
        set -- $s
        [ "$1" = "$2" ] && { echo "$i"; return 0; }
    done
    return 1
}

wait_etcd() {  # wait_etcd TIMEOUT: every live member answers and all agree on a non-zero leader
    local deadline=$(( $(now_ms) + $1 * 1000 )) i s leaders ok
    while [ "$(now_ms)" -lt $deadline ]; do
        ok=1; leaders=""
        for i in 0 1 2; do
            alive "${FPID[$i]}" || continue
            s=$(status_of "$i"); [ -n "$s" ] || { ok=0; break; }
            set -- $s
            [ "$2" != 0 ] || { ok=0; break; }
            leaders="$leaders $2"
        done
        if [ $ok = 1 ] && [ "$(echo $leaders | tr ' ' '\n' | sort -u | wc -l)" = 1 ]; then return 0; fi
        sleep 0.2
    done
    return 1
}

write_patroni_config() {  # write_patroni_config I
    local i=$1
    cat >"$WORK/p$i.yml" <<EOF
scope: $SCOPE
namespace: /service/
name: p$i
log:
  level: DEBUG
  format: '%(asctime)s %(levelname)s: %(message)s'
restapi:
  listen: 127.0.0.1:${APIPORTS[$i]}
  connect_address: 127.0.0.1:${APIPORTS[$i]}
etcd3:
  hosts: 127.0.0.1:${CPORTS[0]},127.0.0.1:${CPORTS[1]},127.0.0.1:${CPORTS[2]}
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: 'on'
  initdb:
  - encoding: UTF8
  - data-checksums
postgresql:
  listen: 127.0.0.1:${PGPORTS[$i]}
  connect_address: 127.0.0.1:${PGPORTS[$i]}
  data_dir: $WORK/pg$i
  bin_dir: $PG_BIN
  pgpass: $WORK/pgpass$i
  authentication:
    superuser: {username: postgres, password: $SUPW}
    replication: {username: replicator, password: replsecret}
    rewind: {username: rewinder, password: rewindsecret}
  parameters:
    unix_socket_directories: $WORK
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 md5
  - host replication replicator 127.0.0.1/32 md5
tags: {}
EOF
}

start_patroni() {  # start_patroni I
    local i=$1
    (cd "$WORK" && exec "${RUNAS[@]}" patroni "$WORK/p$i.yml") >>"$WORK/p$i.log" 2>&1 &
    PPID_[$i]=$!
}

http_code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null; }
api() { echo "http://127.0.0.1:${APIPORTS[$1]}$2"; }
psql_at() {  # psql_at I SQL
    PGPASSWORD=$SUPW PGCONNECT_TIMEOUT=3 "$PSQL" -h 127.0.0.1 -p "${PGPORTS[$1]}" -U postgres -d postgres -X -Atqc "$2" 2>&1
}
timeline_of() { curl -s -m 2 "$(api "$1" /)" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("timeline",""))' 2>/dev/null; }

wait_row_on() {  # wait_row_on I NOTE TIMEOUT
    local deadline=$(( $(now_ms) + $3 * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
        [ "$(psql_at "$1" "select count(*) from ha_test where note = '$2'")" = 1 ] && return 0
        sleep 0.2
    done
    return 1
}

monitor_primary() {  # monitor_primary PRIMARY OTHER SECONDS -> fails on demotion / double primary
    local pr=$1 ot=$2 secs=$3 end bad=0 samples=0 c o
    end=$(( $(now_ms) + secs * 1000 ))
    while [ "$(now_ms)" -lt $end ]; do
        c=$(http_code "$(api "$pr" /primary)")
        o=$(http_code "$(api "$ot" /primary)")
        samples=$((samples + 1))
        if [ "$c" != 200 ]; then bad=$((bad + 1)); log "  p$pr GET /primary -> $c (expected 200)"; fi
        if [ "$o" = 200 ]; then bad=$((bad + 1)); log "  p$ot GET /primary -> 200 (second primary!)"; fi
        sleep 0.5
    done
    log "  $samples samples over ${secs}s, $bad bad"
    [ $bad = 0 ]
}

kill_and_watch_member() {  # kill_and_watch_member IDX SECONDS LABEL
    local k=$1 secs=$2 label=$3 mark tl0 tl1 t0 t1 s
    mark=$(wc -l <"$WORK/p$PRIMARY.log")
    tl0=$(timeline_of "$PRIMARY")
    log "$label: SIGKILL $NAME member f$k (pid ${FPID[$k]}, client port ${CPORTS[$k]}); watching p$PRIMARY for ${secs}s"
    kill -KILL "${FPID[$k]}"; wait "${FPID[$k]}" 2>/dev/null; FPID[$k]=""
    t0=$(now_ms)
    monitor_primary "$PRIMARY" "$REPLICA" "$secs" || die "$label: primary p$PRIMARY did not stay the only primary while f$k was down"
    if tail -n +"$mark" "$WORK/p$PRIMARY.log" | grep -v ' DEBUG: ' | grep -iE 'demot|lost leader|Could not take out TTL lock' >/dev/null; then
        tail -n +"$mark" "$WORK/p$PRIMARY.log" | grep -v ' DEBUG: ' | grep -iE 'demot|lost leader|TTL lock' | head -n 5
        die "$label: p$PRIMARY log shows a demotion / lost leader lock"
    fi
    tl1=$(timeline_of "$PRIMARY")
    [ "$tl0" = "$tl1" ] || die "$label: primary timeline changed $tl0 -> $tl1"
    [ "$(psql_at "$PRIMARY" 'select pg_is_in_recovery()')" = f ] || die "$label: p$PRIMARY is in recovery"
    psql_at "$PRIMARY" "insert into ha_test values (now(), '$label')" >/dev/null || die "$label: write on primary failed"
    wait_row_on "$REPLICA" "$label" 15 || die "$label: row written on primary not visible on replica"
    grep -cE 'ERROR' <(tail -n +"$mark" "$WORK/p$PRIMARY.log") | { read -r n; log "  p$PRIMARY logged $n ERROR lines while f$k was down (reconnects)"; }
    log "$label: OK - p$PRIMARY stayed primary (timeline $tl1), writes replicate; restarting f$k"
    start_member "$k" ".restart.$(date +%H%M%S)"
    t1=$(now_ms)
    wait_etcd 30 || die "$label: cluster not healthy after restarting f$k"
    # caught up: its serializable read of the leader key shows the current primary
    local deadline=$(( $(now_ms) + 20000 )) v=""
    while [ "$(now_ms)" -lt $deadline ]; do
        v=$(curl -s -m 2 "http://127.0.0.1:${CPORTS[$k]}/v3/kv/range" \
            -d "{\"key\":\"$(printf '/service/%s/leader' "$SCOPE" | base64 -w0)\",\"serializable\":true}" |
            $PY -c 'import json,sys,base64
try: print(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"]).decode())
except Exception: pass')
        [ "$v" = "p$PRIMARY" ] && break
        sleep 0.2
    done
    [ "$v" = "p$PRIMARY" ] || die "$label: restarted f$k does not serve the leader key (got '$v')"
    log "$label: f$k rejoined and caught up in $(secs "$t1" "$(now_ms)") s"
}

# ---------------------------------------------------------------- step 1
log "step 1: starting 3-member $NAME cluster"
t0=$(now_ms)
for i in 0 1 2; do start_member "$i"; done
wait_etcd 30 || die "$NAME cluster did not elect a leader within 30 s"
T_ETCD=$(secs "$t0" "$(now_ms)")
L=$(etcd_leader_index) || die "no etcd leader found"
log "step 1: $NAME cluster up in ${T_ETCD}s, raft leader f$L"
curl -s -m 2 "http://127.0.0.1:${CPORTS[0]}/v3/cluster/member/list" -d '{}' | $PY -c 'import json,sys
for m in json.load(sys.stdin)["members"]: print("   member", m["name"], m["clientURLs"])' || die "member/list failed"

for i in 0 1; do write_patroni_config "$i"; done
chown -R "$OSUSER": "$WORK" 2>/dev/null
log "step 1: starting Patroni p0 and p1 together"
t0=$(now_ms)
start_patroni 0; start_patroni 1
PRIMARY="" REPLICA=""
deadline=$(( t0 + 150000 ))
while [ "$(now_ms)" -lt $deadline ]; do
    for i in 0 1; do alive "${PPID_[$i]}" || die "Patroni p$i exited during bootstrap"; done
    c0=$(http_code "$(api 0 /primary)"); c1=$(http_code "$(api 1 /primary)")
    r0=$(http_code "$(api 0 /replica)"); r1=$(http_code "$(api 1 /replica)")
    if [ "$c0" = 200 ] && [ "$r1" = 200 ]; then PRIMARY=0 REPLICA=1; break; fi
    if [ "$c1" = 200 ] && [ "$r0" = 200 ]; then PRIMARY=1 REPLICA=0; break; fi
    sleep 0.5
done
[ -n "$PRIMARY" ] || die "no primary+replica pair within 150 s (p0 /primary=$c0 /replica=$r0, p1 /primary=$c1 /replica=$r1)"
T_PRIMARY_SEEN=$(secs "$t0" "$(now_ms)")
deadline=$(( $(now_ms) + 30000 )); st=""
while [ "$(now_ms)" -lt $deadline ]; do
    st=$(psql_at "$PRIMARY" "select state from pg_stat_replication where application_name = 'p$REPLICA'")
    [ "$st" = streaming ] && break; sleep 0.5
done
[ "$st" = streaming ] || die "replica p$REPLICA is not streaming from p$PRIMARY (pg_stat_replication: '$st')"
T_BOOT=$(secs "$t0" "$(now_ms)")
psql_at "$PRIMARY" "create table ha_test (ts timestamptz, note text); insert into ha_test values (now(), 'bootstrap')" >/dev/null ||
    die "cannot write on primary p$PRIMARY"
wait_row_on "$REPLICA" bootstrap 15 || die "row written on p$PRIMARY did not reach p$REPLICA"
log "step 1: OK - p$PRIMARY primary, p$REPLICA streaming replica; bootstrap took ${T_BOOT}s (roles visible after ${T_PRIMARY_SEEN}s)"
patronictl -c "$WORK/p0.yml" list 2>&1 | sed 's/^/   /'

# ---------------------------------------------------------------- step 2
L=$(etcd_leader_index) || die "no etcd leader found before step 2"
kill_and_watch_member "$L" "$STABLE_SECS" "step2-leader-kill"
if [ "$STABLE2_SECS" -gt 0 ]; then
    port=$(grep -oE 'Selected new etcd server http://127.0.0.1:[0-9]+' "$WORK/p$PRIMARY.log" | tail -n 1 | grep -oE '[0-9]+$')
    K=""
    for i in 0 1 2; do [ "${CPORTS[$i]}" = "$port" ] && K=$i; done
    [ -n "$K" ] || die "cannot tell which member p$PRIMARY is connected to"
    L=$(etcd_leader_index)
    log "step 2b: p$PRIMARY talks to f$K (raft leader is f$L)"
    kill_and_watch_member "$K" "$STABLE2_SECS" "step2b-connected-member-kill"
fi

# ---------------------------------------------------------------- step 3
PM=$(postmaster_pid "$WORK/pg$PRIMARY") || die "cannot find the postmaster of p$PRIMARY"
EXTRA_PIDS+=($(pgrep -P "$PM"))
TL0=$(timeline_of "$REPLICA")
log "step 3: SIGKILL Patroni p$PRIMARY (pid ${PPID_[$PRIMARY]}) and its postmaster (pid $PM)"
t0=$(now_ms)
kill -KILL "${PPID_[$PRIMARY]}" "$PM"
wait "${PPID_[$PRIMARY]}" 2>/dev/null; PPID_[$PRIMARY]=""
promoted=0
while [ "$(now_ms)" -lt $(( t0 + 60000 )) ]; do
    [ "$(http_code "$(api "$REPLICA" /primary)")" = 200 ] && { promoted=1; break; }
    alive "${PPID_[$REPLICA]}" || die "Patroni p$REPLICA died"
    sleep 0.2
done
T_PROMOTE=$(secs "$t0" "$(now_ms)")
[ $promoted = 1 ] || die "replica p$REPLICA was not promoted within 60 s"
log "step 3: p$REPLICA promoted ${T_PROMOTE}s after the kill (limit ${PROMOTE_LIMIT}s; ttl $TTL, loop_wait $LOOP_WAIT)"
awk -v t="$T_PROMOTE" -v l="$PROMOTE_LIMIT" 'BEGIN{exit !(t <= l)}' || die "promotion took ${T_PROMOTE}s > ${PROMOTE_LIMIT}s"
deadline=$(( $(now_ms) + 20000 ))
while [ "$(now_ms)" -lt $deadline ] && [ "$(psql_at "$REPLICA" 'select pg_is_in_recovery()')" != f ]; do sleep 0.2; done
[ "$(psql_at "$REPLICA" 'select pg_is_in_recovery()')" = f ] || die "p$REPLICA still in recovery after promotion"
psql_at "$REPLICA" "insert into ha_test values (now(), 'after-failover')" >/dev/null || die "write on new primary failed"
n=$(psql_at "$REPLICA" "select count(*) from ha_test")
[ "$n" -ge 4 ] 2>/dev/null || die "new primary has $n rows in ha_test, expected >= 4"
TL1=$(timeline_of "$REPLICA")
out=$(patronictl -c "$WORK/p$REPLICA.yml" list 2>&1)
echo "$out" | sed 's/^/   /'
echo "$out" | grep -E "\| p$REPLICA .*\| Leader" >/dev/null || die "patronictl does not show p$REPLICA as Leader"
echo "$out" | grep -E "\| p$PRIMARY " >/dev/null && die "killed member p$PRIMARY still listed (its lease should have expired)"
log "step 3: OK - new primary p$REPLICA writable, timeline $TL0 -> $TL1, $n rows"

# ---------------------------------------------------------------- step 4 (optional, EXTRA=1)
if [ "$EXTRA" = 1 ]; then
    OLD=$PRIMARY NEW=$REPLICA
    log "step 4: restarting Patroni p$OLD (crashed former primary) so that it rejoins as a replica"
    t0=$(now_ms)
    start_patroni "$OLD"
    ok=0
    while [ "$(now_ms)" -lt $(( t0 + 120000 )) ]; do
        alive "${PPID_[$OLD]}" || die "Patroni p$OLD exited while rejoining"
        if [ "$(http_code "$(api "$OLD" /replica)")" = 200 ] &&
           [ "$(psql_at "$NEW" "select state from pg_stat_replication where application_name = 'p$OLD'")" = streaming ]; then ok=1; break; fi
        sleep 0.5
    done
    [ $ok = 1 ] || die "p$OLD did not rejoin as a streaming replica within 120 s"
    T_REJOIN=$(secs "$t0" "$(now_ms)")
    wait_row_on "$OLD" after-failover 15 || die "p$OLD (rejoined) does not have the row written after the failover"
    log "step 4: p$OLD rejoined as streaming replica in ${T_REJOIN}s; planned switchover p$NEW -> p$OLD"
    t0=$(now_ms)
    patronictl -c "$WORK/p$NEW.yml" switchover --leader "p$NEW" --candidate "p$OLD" --force 2>&1 | sed 's/^/   /'
    ok=0
    while [ "$(now_ms)" -lt $(( t0 + 60000 )) ]; do
        [ "$(http_code "$(api "$OLD" /primary)")" = 200 ] && [ "$(http_code "$(api "$NEW" /replica)")" = 200 ] && { ok=1; break; }
        sleep 0.3
    done
    [ $ok = 1 ] || die "switchover to p$OLD did not complete within 60 s"
    T_SWITCH=$(secs "$t0" "$(now_ms)")
    psql_at "$OLD" "insert into ha_test values (now(), 'after-switchover')" >/dev/null || die "write after switchover failed"
    wait_row_on "$NEW" after-switchover 20 || die "row written after switchover not replicated to p$NEW"
    patronictl -c "$WORK/p0.yml" list 2>&1 | sed 's/^/   /'
    log "step 4: OK - switchover took ${T_SWITCH}s; p$OLD primary, p$NEW replica, writes replicate"
fi

# ---------------------------------------------------------------- summary
log "requests Patroni sent to $NAME (from DEBUG logs):"
cat "$WORK"/p*.log | grep -oE 'http://127\.0\.0\.1:[0-9]+ "(GET|POST) /[^ ]* HTTP/1\.1" [0-9]+' |
    sed -E 's/^http:[^ ]+ //; s/ HTTP\/1\.1"/"/' | sort | uniq -c | sort -rn | sed 's/^/   /'
log "timings: cluster up ${T_ETCD}s; bootstrap ${T_BOOT}s; promotion ${T_PROMOTE}s${T_REJOIN:+; rejoin ${T_REJOIN}s; switchover ${T_SWITCH}s}"
