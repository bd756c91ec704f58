# Sourced by the bench scripts: installs and builds what is missing, makes a work dir that is
# removed with every process started in it, and starts the agent there.
# Needs: top (the checkout) and build (the build dir) set by the caller.

"$top/scripts/install-deps.sh"
# The binaries a script needs (it may set bench_binaries before sourcing this file).
bench_binaries=("${bench_binaries[@]:-agent/aibox-agent bench/aibox-bench-history-fill}")
for binary in ${bench_binaries[*]}; do
  if [ ! -x "$build/$binary" ]; then
    (cd "$top" && cmake --preset release >/dev/null && cmake --build --preset release)
    break
  fi
done

ctl="$build/agent/ctl/aiboxctl"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_agent ARGS...: the agent in $work/root, TLS off, on a free loopback port; sets
# agent_pid and agent_port.
start_agent() {
  "$build/agent/aibox-agent" --root "$work/root" --listen 127.0.0.1:0 --tls.enabled=false "$@" \
    2>"$work/agent.log" &
  agent_pid=$!
  pids+=("$agent_pid")
  agent_port=""
  for _ in $(seq 1 100); do
    agent_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/agent.log" | head -n1)
    [ -n "$agent_port" ] && return 0
    sleep 0.1
  done
  cat "$work/agent.log" >&2
  echo "bench: the agent did not start" >&2
  exit 1
}
