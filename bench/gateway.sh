#!/usr/bin/env bash
# Gateway benchmark (docs/bench.md), release build: aibox-gateway against nginx proxy_pass, both
# in front of the same fixed-answer upstream (nginx answering every POST with one chat
# completion, so no engine dominates), in the same run:
# - requests/s and latency p50/p99 of POST /v1/chat/completions with wrk at CONNECTIONS (64)
#   connections and at one, the added latency being each proxy's figure less the upstream's own;
# - STREAMS (1000) streamed completions open at once for HOLD seconds (20) through each proxy
#   to an upstream that sends a chunk a second (bench/gateway_streams.mjs): errors, and the
#   proxies' RSS when all are open and at the end (flat: at most 5 % more).
# Targets: >= 0.8x nginx's requests/s, <= 0.2 ms added p50 (at one connection: at 64 the added
# figure is queueing, 3 ms for nginx too), the streams with no error and flat memory. Exit 1
# when one is missed.
# The gateway runs without an agent, from a snapshot written to its state directory (one key,
# one instance per upstream); TLS off on both proxies, a new upstream connection per request on
# both (nginx's proxy_pass default, and the gateway's way: closing it cancels the engine).
# Environment: DURATION (seconds per wrk run, 10), CONNECTIONS, STREAMS, HOLD, GATEWAY_THREADS
# (the gateway's, default a thread per core), AIBOX_BUILD (default build/release, built when
# missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
streams=${STREAMS:-1000}
hold=${HOLD:-20}
build=${AIBOX_BUILD:-$top/build/release}
bench_binaries=(runtime/gateway/aibox-gateway)
. "$top/bench/common.sh"
ulimit -n "$(ulimit -Hn)"

upstream_port=$(free_port)
stream_port=$(free_port)
nginx_port=$(free_port)
gateway_port=$(free_port)
answer='{"id":"chatcmpl-bench","object":"chat.completion","created":1796600000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}'

# The upstream (one worker) and nginx as the proxy in front of it (a worker per core, no
# buffering of event streams).
cat >"$work/upstream.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/upstream.pid;
error_log $work/upstream-error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$upstream_port;
    location / { default_type application/json; return 200 '$answer'; }
  }
}
CONF
cat >"$work/proxy.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/proxy.pid;
error_log $work/proxy-error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  proxy_buffering off;
  proxy_read_timeout 600s;
  server {
    listen 127.0.0.1:$nginx_port;
    location /stream/ { proxy_pass http://127.0.0.1:$stream_port/; }
    location / { proxy_pass http://127.0.0.1:$upstream_port; }
  }
}
CONF
nginx -c "$work/upstream.conf" -p "$work" &
pids+=("$!")
nginx -c "$work/proxy.conf" -p "$work" &
pids+=("$!")
node "$top/bench/gateway_streams.mjs" upstream "$stream_port" 1000 "$hold" &
pids+=("$!")

# The gateway's snapshot: one key for every model; "bench" on the fixed upstream,
# "bench-stream" on the streaming one.
key_id=0123456789ab
secret=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
key="sk-aibox-$key_id-$secret"
hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
mkdir -p "$work/root/var/lib/aibox/gateway"
cat >"$work/root/var/lib/aibox/gateway/snapshot.json" <<JSON
{"generated_at": "bench", "max_concurrency": null,
 "keys": [{"id": "$key_id", "name": "bench", "secret_hash": "$hash", "models": []}],
 "instances": [
  {"id": "bench0000001", "name": "bench", "model": "bench", "names": ["bench"],
   "served_name": "bench", "port": $upstream_port, "token": "t"},
  {"id": "bench0000002", "name": "bench-stream", "model": "bench-stream",
   "names": ["bench-stream"], "served_name": "bench-stream", "port": $stream_port, "token": "t"}]}
JSON
"$build/runtime/gateway/aibox-gateway" --root "$work/root" --gateway.listen="127.0.0.1:$gateway_port" \
  --gateway.tls=false --gateway.threads="${GATEWAY_THREADS:-$(nproc)}" --gateway.log_level=warning 2>"$work/gateway.log" &
gateway_pid=$!
pids+=("$gateway_pid")

body='{"model":"bench","messages":[{"role":"user","content":"Say hello."}]}'
for url in "http://127.0.0.1:$upstream_port/v1/chat/completions" \
  "http://127.0.0.1:$nginx_port/v1/chat/completions" "http://127.0.0.1:$gateway_port/v1/chat/completions"; do
  for _ in $(seq 1 100); do
    curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" "$url" \
      -o /dev/null && continue 2
    sleep 0.1
  done
  cat "$work/gateway.log" >&2
  echo "bench: $url does not answer" >&2
  exit 1
done

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
# wrk prints "Requests/sec: N" and, with --latency, "50%  1.23ms" and "99%  ...".
measure() {
  local url=$1 c=$2 out
  out=$(wrk -t"$((c < 2 ? 1 : 2))" -c"$c" -d"${duration}s" --latency -s "$work/post.lua" "$url")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "bench: $url answered errors: $(grep 'Non-2xx' <<<"$out")" >&2
    exit 1
  fi
  awk 'function ms(v) { if (v ~ /us$/) {sub(/us$/,"",v); return v/1000} if (v ~ /ms$/) {sub(/ms$/,"",v); return v}
                        if (v ~ /s$/) {sub(/s$/,"",v); return v*1000} return v }
       /^Requests\/sec:/ {rps=$2} $1 == "50%" {p50=ms($2)} $1 == "99%" {p99=ms($2)}
       END {print rps, p50, p99}' <<<"$out"
}
echo "bench: wrk -d${duration}s (2 threads, 1 for 1 connection) POST /v1/chat/completions (a ${#answer}-byte answer)"
declare -A rps p50 p99
for c in "$connections" 1; do
  read -r "rps[up$c]" "p50[up$c]" "p99[up$c]" < <(measure "http://127.0.0.1:$upstream_port/v1/chat/completions" "$c")
  read -r "rps[ng$c]" "p50[ng$c]" "p99[ng$c]" < <(measure "http://127.0.0.1:$nginx_port/v1/chat/completions" "$c")
  read -r "rps[gw$c]" "p50[gw$c]" "p99[gw$c]" < <(measure "http://127.0.0.1:$gateway_port/v1/chat/completions" "$c")
done

rss_mb() {  # the summed RSS of the processes given, in MB
  local total=0
  for p in "$@"; do total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done
  awk -v kb="$total" 'BEGIN {printf "%.1f", kb / 1024}'
}
nginx_processes() { echo "$(cat "$work/proxy.pid") $(pgrep -P "$(cat "$work/proxy.pid")" | tr '\n' ' ')"; }
# streams NAME URL PIDS...: opens the streams through URL, writes the client's result to
# $work/streams-NAME.json, prints the RSS of PIDS before, with all open and at the end.
streams() {
  local name=$1 url=$2 ready="$work/ready-$1" idle open end
  shift 2
  idle=$(rss_mb "$@")
  node "$top/bench/gateway_streams.mjs" open "$url" "$key" "$streams" "$ready" >"$work/streams-$name.json" &
  local client=$!
  for _ in $(seq 1 $((hold * 10))); do [ -f "$ready" ] && break; sleep 0.1; done
  open=$(rss_mb "$@")
  end=$open
  # Sampled each second while the streams are open: "end" is the last sample before they end.
  while sleep 1 && [ ! -s "$work/streams-$name.json" ]; do
    local now
    now=$(rss_mb "$@")
    [ -s "$work/streams-$name.json" ] || end=$now
  done
  wait "$client"
  echo "$idle $open $end"
}
echo "bench: $streams streams open at once for ${hold} s, a chunk a second"
read -r gw_idle gw_open gw_end < <(streams gw "http://127.0.0.1:$gateway_port/v1/chat/completions" "$gateway_pid")
# shellcheck disable=SC2046
read -r ng_idle ng_open ng_end < <(streams ng "http://127.0.0.1:$nginx_port/stream/v1/chat/completions" $(nginx_processes))

export C=$connections WORK=$work
export GW_MEM="$gw_idle $gw_open $gw_end" NG_MEM="$ng_idle $ng_open $ng_end"
export FIGURES="$(for k in "${!rps[@]}"; do echo "$k ${rps[$k]} ${p50[$k]} ${p99[$k]}"; done)"
python3 - <<'PY'
import json, os
c = os.environ["C"]
f = {k: (float(r), float(a), float(b)) for k, r, a, b in
     (line.split() for line in os.environ["FIGURES"].splitlines())}
print(f"{'POST /v1/chat/completions':34} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}")
for conns in (c, "1"):
    up = f["up" + conns]
    for name, key in (("upstream (nginx return 200)", "up"), ("nginx proxy_pass", "ng"), ("aibox-gateway", "gw")):
        r, a, b = f[key + conns]
        added = "" if key == "up" else f"{a - up[1]:8.3f} {b - up[2]:8.3f}"
        print(f"{name + ', ' + conns + ' conn.':34} {r:11.0f} {a:8.3f} {b:8.3f} {added}")
ratio = f["gw" + c][0] / f["ng" + c][0]
added50 = f["gw1"][1] - f["up1"][1]
print(f"ratio gateway/nginx requests/s at {c} connections: {ratio:.2f}")
ok = True
def target(text, met):
    global ok
    ok = ok and met
    print(f"target {text:46} {'met' if met else 'MISSED'}")
target("requests/s >= 0.8x nginx:", ratio >= 0.8)
target("added p50 <= 0.2 ms at one connection:", added50 <= 0.2)
for name, result, mem in (("aibox-gateway", "gw", "GW_MEM"), ("nginx proxy_pass", "ng", "NG_MEM")):
    r = json.load(open(f"{os.environ['WORK']}/streams-{result}.json"))
    idle, opened, end = map(float, os.environ[mem].split())
    errors = sum(r["errors"].values())
    print(f"{name}: {r['done']}/{r['streams']} streams ended with [DONE], {r['chunks']} chunks, "
          f"errors {r['errors'] or 0}, all open in {r['open_s']} s; RSS {idle} MB idle, "
          f"{opened} MB with all open, {end} MB at the end "
          f"({(opened - idle) * 1024 / r['streams']:.1f} kB a stream)")
    if name == "aibox-gateway":
        target(f"{r['streams']} streams, no error:", errors == 0 and r["done"] == r["streams"])
        target("memory flat while they are open (<= +5 %):", end <= opened * 1.05)
raise SystemExit(0 if ok else 1)
PY
