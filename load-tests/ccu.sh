#!/usr/bin/env bash
# The CCU benchmark: how many bots one core of the Skirmish server sustains, and what each costs,
# as a multiple of this machine's floor measured in the same run. See BENCHMARKS.md, "CCU".
#
#   load-tests/ccu.sh                 # floor at 1000 and 2000, then 500 1000 2000 3000 4000 6000 8000 bots
#   load-tests/ccu.sh --quick         # floor at 1000 (10 s), then 500 and 1000 bots, 5 s ramp, 10 s window
#   load-tests/ccu.sh --steps "3000 4000" --no-floor
#   load-tests/ccu.sh --server-quota 50   # the server under a cgroup CPU quota of 50% of core 0
#   options: --quick --steps "N ..." --floor-steps "N ..." --no-floor --ramp 10s --measure 30s
#            --server-quota PCT --keep-going --no-build (use the binaries in $CARGO_TARGET_DIR) --out DIR
#   environment: CARGO_TARGET_DIR (default ./target),
#            CCU_SCHED=fifo|autogroup|none and CCU_NICE (how the processes are kept from other work, below)
#
# The floor: `skirmish-bots floor` (load-tests/src/floor.rs), one plain read and one write of a 350-byte
# state per client per tick on loopback, server on core 0 and epoll clients on core 1, nothing else.
#
# Each step: a fresh release server pinned to core 0 (taskset -c 0) on an embedded SQLite database in a
# temporary directory, skirmish-bots pinned to core 1, rooms of 16, 20 Hz ticks, 20 inputs per second per
# bot with a random-walk direction, joins spread over the ramp, then the measured window. The run stops at
# the first step that is not sustained: every bot connected, p99 input-ack latency <= 60 ms, no
# disconnects, late-tick p99 < 5 ms. Everything goes to 127.0.0.1 only.
#
# Output: a markdown table on stdout, and every step's JSON and logs in load-tests/results/ccu-DATE/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STEPS="500 1000 2000 3000 4000 6000 8000"
FLOOR_STEPS="1000 2000"
FLOOR_SECS=20
RAMP=10s
MEASURE=30s
QUOTA=""
KEEP_GOING=0
NO_BUILD=0
MAX_P99_MS=60
MAX_LATE_P99_MS=5
OUT=""

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS="500 1000"; FLOOR_STEPS="1000"; FLOOR_SECS=10; RAMP=5s; MEASURE=10s ;;
    --steps) STEPS="$2"; shift ;;
    --floor-steps) FLOOR_STEPS="$2"; shift ;;
    --no-floor) FLOOR_STEPS="" ;;
    --ramp) RAMP="$2"; shift ;;
    --measure) MEASURE="$2"; shift ;;
    --server-quota) QUOTA="$2"; shift ;;
    --keep-going) KEEP_GOING=1 ;;
    --no-build) NO_BUILD=1 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ccu.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
  shift
done

for tool in jq taskset cargo curl; do
  command -v "$tool" >/dev/null || { echo "ccu.sh: needs $tool" >&2; exit 69; }
done
[ "$(nproc)" -ge 2 ] || { echo "ccu.sh: needs 2 cores (server on 0, bots on 1)" >&2; exit 69; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${OUT:-$ROOT/load-tests/results/ccu-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
log() { echo "[ccu $(date -u +%H:%M:%S)] $*" >&2; }

# Other work on the machine skews every figure here: say so.
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
awk '{ exit !($1 > 0.5) }' /proc/loadavg && log "warning: load average is $LOAD_START; other processes will skew the figures"

# Other processes on the machine (builds, say) preempt the server and the bots for milliseconds at a
# time, which shows as late ticks and ack latency. As root, CCU_SCHED picks how they are kept out:
#   fifo (default): SCHED_FIFO priority 1 (chrt -f 1): nothing of the normal class preempts them; a
#             saturated step then starves other work on its core (within the kernel's RT throttling
#             of 95%) for its minute, and the run stops at the first such step;
#   autogroup: each runs in a session of its own (setsid) whose autogroup gets nice CCU_NICE
#             (default -10), since with autogroups on a plain `nice` only orders processes inside one
#             session (gentler, but the scheduler's slices still delay a wakeup by a few ms under load);
#   none:     the default priority.
SCHED="${CCU_SCHED:-fifo}"
PRIO="${CCU_NICE:--10}"
[ "$(id -u)" = 0 ] || SCHED=none
PREFIX=(setsid)
case "$SCHED" in
  fifo) PREFIX=(setsid chrt -f 1) ;;
  autogroup|none) ;;
  *) echo "ccu.sh: CCU_SCHED must be autogroup, fifo or none" >&2; exit 64 ;;
esac
boost() { # PID: give the process's autogroup the priority
  if [ "$SCHED" = autogroup ]; then
    echo "$PRIO" > "/proc/$1/autogroup" 2>/dev/null || true
  fi
}
# CFS bandwidth quotas do not apply to SCHED_FIFO tasks: under --server-quota the server runs in the
# normal class, in its own autogroup of nice CCU_NICE (the bots and the floor stay as chosen).
SERVER_PREFIX=("${PREFIX[@]}")
if [ -n "$QUOTA" ]; then SERVER_PREFIX=(setsid); fi
case "$SCHED" in
  autogroup) SCHED_TEXT="in autogroups of nice $PRIO" ;;
  fifo) SCHED_TEXT="at SCHED_FIFO priority 1" ;;
  *) SCHED_TEXT="at the default priority" ;;
esac

# Thousands of sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 20000 ] || log "warning: open-file limit is $(ulimit -n); large steps may fail"

if [ "$NO_BUILD" = 1 ]; then
  log "using the binaries already in $CARGO_TARGET_DIR/release"
else
  log "building release binaries (target dir $CARGO_TARGET_DIR)"
  (cd "$ROOT" && cargo build --release -q -p server -p load-tests)
fi
SERVER_BIN="$CARGO_TARGET_DIR/release/skirmish"
BOTS_BIN="$CARGO_TARGET_DIR/release/skirmish-bots"

# ---------------------------------------------------------------- the floor, in this same run
FLOOR_MEAN=""
if [ -n "$FLOOR_STEPS" ]; then
  sum=0; count=0
  for n in $FLOOR_STEPS; do
    log "floor: $n clients for ${FLOOR_SECS}s"
    # It pins itself (server on core 0, its clients' process on core 1), like the steps below.
    "${PREFIX[@]}" "$BOTS_BIN" floor --clients "$n" --state-bytes 350 --duration "${FLOOR_SECS}s" \
      --server-core 0 --client-core 1 > "$OUT/floor-$n.out" 2>&1 &
    fpid=$!
    boost "$fpid"
    wait "$fpid" || { log "floor run failed: $(tail -3 "$OUT/floor-$n.out")"; exit 1; }
    line="$(grep '^{' "$OUT/floor-$n.out" | tail -1)"
    echo "$line" > "$OUT/floor-$n.json"
    us="$(jq -r .server_cpu_us_per_client_s <<<"$line")"
    log "floor: $n clients: $us us per client-second"
    sum="$(jq -n "$sum + $us")"; count=$((count + 1))
  done
  FLOOR_MEAN="$(jq -n "$sum / $count * 10 | round / 10")"
fi

# ---------------------------------------------------------------- cgroup CPU quota for the server
CGROUP=""
if [ -n "$QUOTA" ]; then
  if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then        # cgroup v1
    CGROUP="/sys/fs/cgroup/cpu/skirmish-ccu-$$"
    mkdir -p "$CGROUP"
    echo 10000 > "$CGROUP/cpu.cfs_period_us"
    echo $((QUOTA * 100)) > "$CGROUP/cpu.cfs_quota_us"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then                       # cgroup v2
    CGROUP="/sys/fs/cgroup/skirmish-ccu-$$"
    mkdir -p "$CGROUP"
    echo "$((QUOTA * 100)) 10000" > "$CGROUP/cpu.max"
  else
    echo "ccu.sh: --server-quota needs a writable cgroup cpu controller" >&2; exit 69
  fi
  # A 10 ms period: throttling then delays a tick by at most a few ms, not by tens of ms.
  log "server CPU quota: ${QUOTA}% of a core in 10 ms periods ($CGROUP)"
fi

SERVER_PID=""
bots_pid=""
cleanup() {
  if [ -n "$bots_pid" ] && kill -0 "$bots_pid" 2>/dev/null; then kill -INT "$bots_pid" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null || true
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -INT "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    log "server $SERVER_PID did not stop within 20 s; killing it"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

API_KEY="ccu-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
PORT_BASE=$((18000 + $$ % 1000))
ROWS=()
SUSTAINED_MAX=0
STOP_REASON=""
i=0
for n in $STEPS; do
  i=$((i + 1))
  step="$OUT/step-$n"
  mkdir -p "$step"
  port=$((PORT_BASE + i))
  log "step $n bots: starting a fresh server on 127.0.0.1:$port (core 0)"
  SKIRMISH_LISTEN="127.0.0.1:$port" \
  SKIRMISH_API_KEY="$API_KEY" \
  SKIRMISH_DATABASE_URL="sqlite://$step/skirmish.db?mode=rwc" \
  SKIRMISH_LOG="${SKIRMISH_LOG:-warn}" \
    "${SERVER_PREFIX[@]}" taskset -c 0 "$SERVER_BIN" > "$step/server.log" 2>&1 &
  SERVER_PID=$!
  boost "$SERVER_PID"
  if [ -n "$QUOTA" ] && [ "$(id -u)" = 0 ]; then echo "$PRIO" > "/proc/$SERVER_PID/autogroup" 2>/dev/null || true; fi
  [ -n "$CGROUP" ] && echo "$SERVER_PID" > "$CGROUP/cgroup.procs"
  up=0
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$up" != 1 ]; then
    log "server did not come up; see $step/server.log"; tail -5 "$step/server.log" >&2
    exit 1
  fi
  sleep 1
  idle_rss="$(rss_kib "$SERVER_PID")"

  log "step $n bots: ramp $RAMP, measure $MEASURE (bots on core 1)"
  "${PREFIX[@]}" taskset -c 1 "$BOTS_BIN" --url "http://127.0.0.1:$port" --api-key "$API_KEY" \
    --bots "$n" --room-size 16 --input-rate 20 --ramp "$RAMP" --duration "$MEASURE" \
    --server-pid "$SERVER_PID" --scrape-metrics --quiet --json "$step/bots.json" \
    > "$step/bots.txt" 2> "$step/bots.err" &
  bots_pid=$!
  boost "$bots_pid"
  rc=0
  wait "$bots_pid" || rc=$?
  stop_server
  if [ ! -s "$step/bots.json" ]; then
    log "skirmish-bots failed (exit $rc): $(tail -3 "$step/bots.err")"
    exit 1
  fi

  # One row of figures from the step's JSON report.
  row="$(jq -r --arg n "$n" --arg idle "$idle_rss" --arg floor "$FLOOR_MEAN" \
        --arg maxp99 "$MAX_P99_MS" --arg maxlate "$MAX_LATE_P99_MS" --arg quota "$QUOTA" '
    def r1: if . == null then null else (. * 10 | round / 10) end;
    def show: if . == null then "n/a" else tostring end;
    (.server_process) as $s | (.server_ticks // {}) as $t |
    ($n | tonumber) as $N |
    (($s.rss_kib_end - ($idle | tonumber)) / $N) as $rss_per |
    ([.disconnects[]] | add // 0) as $disc |
    (.bots.live_at_end == $N and .bots.connected == $N) as $all |
    ((.ack_latency_ms.p99 // 1e9) <= ($maxp99 | tonumber)) as $lat |
    ($disc == 0) as $nodisc |
    (($t.lateness_p99_ms // 0) < ($maxlate | tonumber)) as $late |
    {
      n: $N,
      cpu_pct: $s.cpu_pct,
      us: $s.cpu_us_per_client_s,
      floor_x: (if $floor == "" or $s.cpu_us_per_client_s == null then null
                else ($s.cpu_us_per_client_s / ($floor | tonumber) * 100 | round / 100) end),
      rss_mib: ($s.rss_kib_end / 1024 | r1),
      idle_mib: (($idle | tonumber) / 1024 | r1),
      rss_per_kib: ($rss_per | r1),
      p50: .ack_latency_ms.p50, p99: .ack_latency_ms.p99, max: .ack_latency_ms.max,
      states: .rates.states_per_bot_s,
      late_p99: $t.lateness_p99_ms,
      # The late-tick counter appears at its first increment: none yet is 0 when lateness is there.
      late_ticks: ($t.late_ticks // (if $t.lateness_metric then 0 else null end)),
      disc: $disc, errors: .errors.total,
      bots_cpu: .bot_process.cpu_pct,
      bots_lag: .bot_input_lag_ms.p99,
      per_core: (if $quota == "" then null else ($N / (($quota | tonumber) / 100) | round) end),
      sustained: ($all and $lat and $nodisc and $late),
      why: ([ (if $all then empty else "\(.bots.live_at_end)/\($N) connected" end),
              (if $lat then empty else "p99 \(.ack_latency_ms.p99) ms" end),
              (if $nodisc then empty else "\($disc) disconnects" end),
              (if $late then empty else "late-tick p99 \($t.lateness_p99_ms) ms" end) ]
             | join(", ") | if . == "" then "-" else . end)
    } | [.n, .cpu_pct, .us, .floor_x, .rss_mib, .idle_mib, .rss_per_kib, .p50, .p99, .max, .states,
         .late_p99, .late_ticks, .disc, .errors, .bots_cpu, .per_core, .sustained, .why, .bots_lag] | map(show) | join("|")
  ' "$step/bots.json")"
  echo "$row" > "$step/row.tsv"
  IFS='|' read -r -a f <<<"$row"
  log "step $n: server ${f[1]}% CPU, ${f[2]} us/client-s (${f[3]}x floor), ${f[6]} KiB/client, p99 ${f[8]} ms, states/bot/s ${f[10]}, bots ${f[15]}% CPU, sustained ${f[17]} ${f[18]}"
  ROWS+=("$row")
  if [ "${f[17]}" = "true" ]; then
    SUSTAINED_MAX="$n"
  else
    STOP_REASON="$n bots not sustained: ${f[18]}"
    [ "$KEEP_GOING" = 1 ] || break
  fi
done

# ---------------------------------------------------------------- the table
{
  echo
  echo "CCU run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)."
  echo "Load average at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg); server, bots and floor $SCHED_TEXT."
  echo "Server on core 0$( [ -n "$QUOTA" ] && echo " under a ${QUOTA}% CPU quota (10 ms periods; normal class, autogroup nice $PRIO)"), bots on core 1; rooms of 16, 20 Hz, 20 inputs/s per bot, ramp $RAMP, window $MEASURE."
  if [ -n "$FLOOR_MEAN" ]; then
    echo -n "Floor (skirmish-bots floor, same run):"
    for n in $FLOOR_STEPS; do echo -n " $n clients $(jq -r .server_cpu_us_per_client_s "$OUT/floor-$n.json") us/client-s;"; done
    echo " mean $FLOOR_MEAN us per client-second."
  fi
  echo
  echo "| bots | server CPU % | µs per client-s | x floor | RSS MiB (idle) | KiB per client | ack p50 / p99 / max ms | states per bot/s | late-tick p99 ms (late ticks) | disconnects | errors | bots CPU % (timer lag p99 ms) |$( [ -n "$QUOTA" ] && echo " N per core |") sustained |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$( [ -n "$QUOTA" ] && echo "---:|"):---:|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r -a f <<<"$row"
    verdict="yes"; [ "${f[17]}" = "true" ] || verdict="**no**: ${f[18]}"
    echo "| ${f[0]} | ${f[1]} | ${f[2]} | ${f[3]} | ${f[4]} (${f[5]}) | ${f[6]} | ${f[7]} / ${f[8]} / ${f[9]} | ${f[10]} | ${f[11]} (${f[12]}) | ${f[13]} | ${f[14]} | ${f[15]} (${f[19]}) |$( [ -n "$QUOTA" ] && echo " ${f[16]} |") $verdict |"
  done
  echo
  echo "Highest sustained step: $SUSTAINED_MAX bots.${STOP_REASON:+ Stopped: $STOP_REASON.}"
  echo "Reports: $OUT"
} | tee "$OUT/table.md"
