#!/usr/bin/env bash
# Runtime supervision benchmark (docs/bench.md), release build, builtin engine, small model:
#  - from a crash (SIGKILL of a ready instance) to ready again, CRASHES times, split into
#    detection (the kill to the agent's `backoff` event), respawn (the end of the backoff delay
#    to the `starting` event) and model load (`starting` to `ready`), timed from the agent's
#    event stream;
#  - the agent's CPU over IDLE seconds (default 60) with 8 ready instances supervised (a health
#    probe each per second, metrics scrapes), the instances' own CPU not counted.
# Targets: detection <= 100 ms, respawn <= 50 ms after the backoff delay, idle CPU <= 1 % of a
# core. Exit code 1 when one is missed.
# Environment: CRASHES (default 10), IDLE (60), AIBOX_BUILD (default build/release, built when
# missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
crashes=${CRASHES:-10}
idle=${IDLE:-60}
build=$(realpath -m "${AIBOX_BUILD:-$top/build/release}")
backoff_ms=200
bench_binaries=(agent/aibox-agent agent/ctl/aiboxctl runtime/aibox-runtime
                provisioning/license/aibox-license)

. "$top/bench/common.sh"

root="$work/root"
"$build/runtime/aibox-runtime" make-test-model --arch qwen2 --type q8_0 --layers 2 --dim 64 \
  --ff 128 --context 512 "$work/tiny.gguf" >/dev/null 2>&1
# The first failure waits backoff_ms; a healthy second resets the doubling; no crash loop.
start_agent --models.import_dirs="$work" --models.reserve_bytes=0 \
  --runtimes.engines_dir="$top/packaging/engines" --runtimes.engine_path="$build/runtime" \
  --runtimes.backoff_first_ms=$backoff_ms --runtimes.healthy_reset_s=1 \
  --runtimes.crash_loop_failures=1000
for _ in $(seq 1 100); do "$ctl" --root "$root" status >/dev/null 2>&1 && break; sleep 0.1; done

# A license for this simulated machine, issued with the test vendor key a release build trusts.
mkdir -p "$root/sys/class/dmi/id"
cat /proc/sys/kernel/random/uuid >"$root/sys/class/dmi/id/product_uuid"
"$ctl" --root "$root" --json license fingerprint >"$work/fingerprint.json"
echo '{"id": "BENCH", "customer": "bench", "days": 1, "entitlements": {"max_instances": 16}}' \
  >"$work/request.json"
"$build/provisioning/license/aibox-license" issue --key "$top/tests/support/license/test-vendor.key" \
  --request "$work/request.json" --fingerprint "$work/fingerprint.json" --out "$work/bench.lic" \
  2>/dev/null
"$ctl" --root "$root" license install "$work/bench.lic" >/dev/null
"$ctl" --root "$root" models import "$work/tiny.gguf" --name tiny >/dev/null
token=$("$ctl" --root "$root" --json tokens add bench --role viewer |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for n in $(seq 0 7); do
  "$ctl" --root "$root" runtimes create "bench-$n" --model tiny --threads 1 --context 256 >/dev/null
done

echo "bench: $crashes crashes of a ready builtin instance (backoff $backoff_ms ms), then ${idle}s idle with 8 instances"
python3 - "$agent_port" "$token" "$crashes" "$backoff_ms" "$agent_pid" "$idle" <<'PY' >"$work/result"
import http.client, json, os, queue, signal, sys, threading, time

port, token, crashes, backoff_ms, agent_pid, idle = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
events = queue.Queue()

def stream():
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    c.request("GET", "/api/v1/events", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    name = None
    while True:
        line = r.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:") and name == "runtime":
            events.put((time.monotonic(), json.loads(line[5:])))

def api(path):
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    return json.loads(c.getresponse().read())

def wait(name, state, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            at, e = events.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        if e["name"] == name and e["state"] == state:
            return at
    sys.exit(f"bench: no '{state}' event for {name} in {timeout} s")

threading.Thread(target=stream, daemon=True).start()
deadline = time.monotonic() + 120
while not all(r["state"] == "ready" for r in api("/api/v1/runtimes")["runtimes"]):
    if time.monotonic() > deadline:
        sys.exit("bench: the 8 instances were not ready in 120 s: " + ", ".join(
            f"{r['name']} {r['state']} {r.get('reason', '')}" for r in api("/api/v1/runtimes")["runtimes"]))
    time.sleep(0.1)

detect, respawn, load = [], [], []
for _ in range(crashes):
    time.sleep(1.2)  # ready for longer than healthy_reset_s: the next backoff is the first
    while not events.empty():
        events.get()
    pid = api("/api/v1/runtimes/bench-0")["pid"]
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    noticed = wait("bench-0", "backoff")
    started = wait("bench-0", "starting")
    ready = wait("bench-0", "ready")
    detect.append((noticed - killed) * 1000)
    respawn.append((started - noticed) * 1000 - backoff_ms)
    load.append((ready - started) * 1000)

ticks = os.sysconf("SC_CLK_TCK")
def cpu():
    with open(f"/proc/{agent_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
before = cpu()
time.sleep(idle)
idle_pct = (cpu() - before) / ticks / idle * 100
median = lambda v: sorted(v)[len(v) // 2]
print(json.dumps({"detect": [median(detect), max(detect)], "respawn": [median(respawn), max(respawn)],
                  "load": [median(load), max(load)], "idle": idle_pct}))
PY

python3 - "$work/result" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
missed = 0
def line(what, value, target, unit, extra=""):
    global missed
    ok = value <= target
    missed += not ok
    print(f"  {what:<34} {value:8.1f} {unit:<3} (target <= {target} {unit}{extra}) {'met' if ok else 'MISSED'}")
print("bench: crash -> ready, median (max) of each part")
line("detection (kill -> backoff)", r["detect"][0], 100, "ms", f"; max {r['detect'][1]:.1f}")
line("respawn (after the backoff delay)", r["respawn"][0], 50, "ms", f"; max {r['respawn'][1]:.1f}")
print(f"  {'model load (starting -> ready)':<34} {r['load'][0]:8.1f} ms  (max {r['load'][1]:.1f}; the engine's own time)")
line("agent idle CPU, 8 instances", r["idle"], 1, "%", " of a core")
sys.exit(1 if missed else 0)
PY
