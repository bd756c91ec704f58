#!/usr/bin/env bash
# HTTP benchmark of aibox-agent (docs/bench.md): wrk against the agent's GET /healthz over plain
# TCP (TLS off) and, in the same run, against nginx serving a static JSON file of the same size.
# Prints both, the ratio, and the targets: >= 0.5x nginx's requests/s at 64 connections,
# p99 <= 5 ms, agent RSS <= 15 MB after the run. Exit code 1 when a target is missed.
# Environment: DURATION (seconds per run, default 10), CONNECTIONS (64), AIBOX_BUILD (build dir,
# default build/release, built when missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
build=${AIBOX_BUILD:-$top/build/release}

"$top/scripts/install-deps.sh"
if [ ! -x "$build/agent/aibox-agent" ]; then
  (cd "$top" && cmake --preset release >/dev/null && cmake --build --preset release)
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The agent, TLS off, in a temp root.
"$build/agent/aibox-agent" --root "$work/root" --listen 127.0.0.1:0 --tls.enabled=false 2>"$work/agent.log" &
agent_pid=$!
pids+=("$agent_pid")
agent_port=""
for _ in $(seq 1 100); do
  agent_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log" | head -n1)
  [ -n "$agent_port" ] && break
  sleep 0.1
done
[ -n "$agent_port" ] || { cat "$work/agent.log" >&2; echo "bench: the agent did not start" >&2; exit 1; }

# nginx with the same body bytes and content type.
mkdir -p "$work/www"
curl -sf "http://127.0.0.1:$agent_port/healthz" -o "$work/www/healthz"
nginx_port=$(free_port)
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    location = /healthz { default_type application/json; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=("$!")
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$nginx_port/healthz" >/dev/null && break; sleep 0.1; done

# wrk prints "Requests/sec: N" and, with --latency, a line "99%  1.23ms".
measure() {
  local url=$1 out
  out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$url")
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99"
}

echo "bench: wrk -t2 -c$connections -d${duration}s GET /healthz ($(stat -c %s "$work/www/healthz")-byte JSON body)"
read -r agent_rps agent_p99 < <(measure "http://127.0.0.1:$agent_port/healthz")
read -r nginx_rps nginx_p99 < <(measure "http://127.0.0.1:$nginx_port/healthz")
agent_rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")

awk -v ar="$agent_rps" -v ap="$agent_p99" -v nr="$nginx_rps" -v np="$nginx_p99" -v rss="$agent_rss_kb" '
BEGIN {
  ratio = ar / nr; rssmb = rss / 1024
  printf "%-12s %12s %10s %10s\n", "server", "requests/s", "p99 ms", "RSS MB"
  printf "%-12s %12.0f %10.2f %10.1f\n", "aibox-agent", ar, ap, rssmb
  printf "%-12s %12.0f %10.2f %10s\n", "nginx", nr, np, "-"
  printf "ratio agent/nginx: %.2f\n", ratio
  miss = 0
  printf "target requests/s >= 0.5x nginx: %s\n", (ratio >= 0.5 ? "met" : "MISSED"); if (ratio < 0.5) miss = 1
  printf "target p99 <= 5 ms:             %s\n", (ap <= 5 ? "met" : "MISSED"); if (ap > 5) miss = 1
  printf "target RSS <= 15 MB:            %s\n", (rssmb <= 15 ? "met" : "MISSED"); if (rssmb > 15) miss = 1
  exit miss
}'
