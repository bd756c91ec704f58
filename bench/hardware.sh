#!/usr/bin/env bash
# Hardware benchmark of aibox-agent (docs/bench.md), on the simulated box with >= 200 sensors:
#  - GET /metrics scrapes/s of the agent vs prometheus-node-exporter (default collectors), same
#    wrk settings, both on loopback, and the RSS of both;
#  - the agent's CPU over IDLE seconds (default 60) of 1 Hz sampling, no requests;
#  - the DB size after 30 days of synthetic history for SENSORS sensors, and the time of a
#    24-hour history query on it.
# Targets: >= 10x node_exporter's scrapes/s, <= 0.5x its RSS, <= 1 % of a core idle, query
# <= 50 ms, DB <= 1 GiB. Exit code 1 when one is missed.
# Environment: DURATION (wrk seconds, default 10), IDLE (60), SENSORS (200), AIBOX_BUILD
# (build dir, default build/release, built when missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
idle=${IDLE:-60}
sensors=${SENSORS:-200}
build=${AIBOX_BUILD:-$top/build/release}

. "$top/bench/common.sh"

echo "bench: writing 30 days of synthetic history for $sensors sensors"
mkdir -p "$work/root/var/lib/aibox"
db="$work/root/var/lib/aibox/aibox.db"
fill_s=$( { /usr/bin/time -f %e "$build/bench/aibox-bench-history-fill" "$db" "$sensors" 30 2>&1 >/dev/null; } | tail -n1)
db_bytes=$(( $(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))

# The agent on the simulated box, grown to >= 200 sensors, TLS off on loopback.
start_agent --hardware.sources=sim --hardware.sim_sensors=100
token=$("$ctl" --root "$work/root" --json tokens add bench --role viewer |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
sleep 2
readings=$("$ctl" --root "$work/root" --json hw | python3 -c 'import json,sys; print(json.load(sys.stdin)["sensors"])')

node_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" >"$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$node_port/metrics" >/dev/null && break; sleep 0.1; done

measure() {
  local url=$1
  shift
  wrk -t2 -c8 -d"${duration}s" "$@" "$url" | awk '/^Requests\/sec:/ {print $2}'
}
agent_url="http://127.0.0.1:$agent_port/metrics"
agent_bytes=$(curl -sf -H "Authorization: Bearer $token" "$agent_url" | wc -c)
node_bytes=$(curl -sf "http://127.0.0.1:$node_port/metrics" | wc -c)
echo "bench: wrk -t2 -c8 -d${duration}s on /metrics ($readings readings; agent $agent_bytes bytes, node_exporter $node_bytes bytes)"
agent_rps=$(measure "$agent_url" -H "Authorization: Bearer $token")
node_rps=$(measure "http://127.0.0.1:$node_port/metrics")
agent_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
node_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$node_pid/status")
# Private memory (what the process alone costs the box): RSS less the pages of shared
# libraries that other processes map too. node_exporter is one static binary, so for it the
# two are nearly the same; the agent's RSS is mostly libcrypto, libstdc++, libc and SQLite.
uss() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
agent_uss=$(uss "$agent_pid")
node_uss=$(uss "$node_pid")

# 24-hour history of one sensor (the minute tier, 720 points), best and median of 10.
query="http://127.0.0.1:$agent_port/api/v1/hardware/sensors/bench-virtual-0/temp1/history?from=$(( $(date +%s) - 86400 ))"
times=()
for _ in $(seq 1 10); do
  times+=("$(curl -sf -o "$work/history.json" -w '%{time_total}' -H "Authorization: Bearer $token" "$query")")
done
points=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["points"]))' "$work/history.json")
query_ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] * 1000}')

kill -TERM "$node_pid"
echo "bench: agent idle for ${idle}s (1 Hz sampling of $readings readings, no requests)"
ticks=$(getconf CLK_TCK)
cpu_before=$(awk '{print $14 + $15}' "/proc/$agent_pid/stat")
sleep "$idle"
cpu_after=$(awk '{print $14 + $15}' "/proc/$agent_pid/stat")

awk -v ar="$agent_rps" -v nr="$node_rps" -v arss="$agent_rss" -v nrss="$node_rss" \
    -v auss="$agent_uss" -v nuss="$node_uss" \
    -v c0="$cpu_before" -v c1="$cpu_after" -v ticks="$ticks" -v idle="$idle" \
    -v qms="$query_ms" -v points="$points" -v dbb="$db_bytes" -v fill="$fill_s" -v n="$sensors" '
BEGIN {
  ratio = ar / nr; rss = arss / nrss; cpu = (c1 - c0) / ticks / idle * 100; dbmb = dbb / 1048576
  printf "%-36s %12s %10s %12s\n", "GET /metrics", "scrapes/s", "RSS MB", "private MB"
  printf "%-36s %12.0f %10.1f %12.1f\n", "aibox-agent", ar, arss / 1024, auss / 1024
  printf "%-36s %12.0f %10.1f %12.1f\n", "prometheus-node-exporter", nr, nrss / 1024, nuss / 1024
  printf "ratio agent/node_exporter: %.1fx scrapes/s, %.2fx RSS, %.2fx private memory\n", ratio, rss, auss / nuss
  printf "agent CPU idle: %.2f %% of a core\n", cpu
  printf "24 h history query: %.1f ms median (%d points)\n", qms, points
  printf "DB after 30 days of %d sensors: %.0f MB (written in %s s)\n", n, dbmb, fill
  miss = 0
  printf "target scrapes/s >= 10x node_exporter: %s\n", (ratio >= 10 ? "met" : "MISSED"); if (ratio < 10) miss = 1
  printf "target RSS <= 0.5x node_exporter:      %s\n", (rss <= 0.5 ? "met" : "MISSED"); if (rss > 0.5) miss = 1
  printf "target idle CPU <= 1 %%:                %s\n", (cpu <= 1 ? "met" : "MISSED"); if (cpu > 1) miss = 1
  printf "target history query <= 50 ms:         %s\n", (qms <= 50 ? "met" : "MISSED"); if (qms > 50) miss = 1
  printf "target DB <= 1 GiB:                    %s\n", (dbmb <= 1024 ? "met" : "MISSED"); if (dbmb > 1024) miss = 1
  exit miss
}'
