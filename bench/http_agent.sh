#!/usr/bin/env bash
# HTTP benchmark of aibox-agent (docs/bench.md): wrk against the agent's GET /healthz over plain
# TCP (TLS off), the same with a login session cookie, the authenticated GET /api/v1/system,
# and, in the same run, nginx serving a static JSON file of the same size as /healthz.
# Prints them, the ratios and the targets: >= 0.5x nginx's requests/s at 64 connections,
# p99 <= 5 ms, agent RSS <= 15 MB after the run, session lookup <= 10 % of throughput; and the
# time of one login (the scrypt password hash). Exit code 1 when a target is missed.
# Environment: DURATION (seconds per run, default 10), CONNECTIONS (64), AIBOX_BUILD (build dir,
# default build/release, built when missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
build=${AIBOX_BUILD:-$top/build/release}

. "$top/bench/common.sh"

# The agent, TLS off, in a temp root.
start_agent

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
  shift
  out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$@" "$url")
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  echo "$rps $p99"
}

# A login session: the first admin's one-time password, then a chosen one.
base="http://127.0.0.1:$agent_port"
once=$(cat "$work/root/var/lib/aibox/initial-admin-password")
login_s=$(curl -s -o "$work/login.json" -D "$work/login.headers" -w '%{time_total}' \
  -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$once\"}" "$base/api/v1/auth/login")
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(aibox_session=[^;]*\).*/\1/p' "$work/login.headers")
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/login.json")
curl -sf -o /dev/null -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
  -d "{\"old_password\":\"$once\",\"new_password\":\"bench passphrase 2026\"}" "$base/api/v1/auth/password"

echo "bench: wrk -t2 -c$connections -d${duration}s ($(stat -c %s "$work/www/healthz")-byte JSON body for /healthz)"
read -r agent_rps agent_p99 < <(measure "$base/healthz")
read -r session_rps session_p99 < <(measure "$base/healthz" -H "Cookie: $cookie")
read -r system_rps system_p99 < <(measure "$base/api/v1/system" -H "Cookie: $cookie")
read -r nginx_rps nginx_p99 < <(measure "http://127.0.0.1:$nginx_port/healthz")
agent_rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")

awk -v ar="$agent_rps" -v ap="$agent_p99" -v sr="$session_rps" -v sp="$session_p99" \
    -v yr="$system_rps" -v yp="$system_p99" -v nr="$nginx_rps" -v np="$nginx_p99" \
    -v rss="$agent_rss_kb" -v login="$login_s" '
BEGIN {
  ratio = ar / nr; rssmb = rss / 1024; overhead = 1 - sr / ar
  printf "%-34s %12s %10s\n", "GET", "requests/s", "p99 ms"
  printf "%-34s %12.0f %10.2f\n", "agent /healthz", ar, ap
  printf "%-34s %12.0f %10.2f\n", "agent /healthz with a session", sr, sp
  printf "%-34s %12.0f %10.2f\n", "agent /api/v1/system with a session", yr, yp
  printf "%-34s %12.0f %10.2f\n", "nginx /healthz (static file)", nr, np
  printf "ratio agent/nginx: %.2f   session lookup cost: %.1f %%   agent RSS: %.1f MB\n", ratio, overhead * 100, rssmb
  printf "one login (scrypt N=2^17, r=8, p=1): %.0f ms\n", login * 1000
  miss = 0
  printf "target requests/s >= 0.5x nginx:   %s\n", (ratio >= 0.5 ? "met" : "MISSED"); if (ratio < 0.5) miss = 1
  printf "target p99 <= 5 ms:               %s\n", (ap <= 5 ? "met" : "MISSED"); if (ap > 5) miss = 1
  printf "target RSS <= 15 MB:              %s\n", (rssmb <= 15 ? "met" : "MISSED"); if (rssmb > 15) miss = 1
  printf "target session lookup <= 10 %%:    %s\n", (overhead <= 0.10 ? "met" : "MISSED"); if (overhead > 0.10) miss = 1
  exit miss
}'
