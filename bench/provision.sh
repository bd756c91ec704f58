#!/usr/bin/env bash
# Provisioning benchmark (docs/bench.md), release build: one full `aibox-provision run` on the
# simulated box without the model copy (every other step as a station runs it: inventory, the
# self-tests with 3 s of random reads and a 64-token burn-in of the built-in engine, identity
# from a factory CA, admin and settings, the signed report), then a re-run of the same manifest,
# which must find everything done. Targets: the run <= 120 s, the re-run <= 10 s; exit 1 when
# one is missed.
# Environment: AIBOX_BUILD (default build/release, built when missing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AIBOX_BUILD:-$top/build/release}
bench_binaries=(provisioning/aibox-provision runtime/aibox-runtime agent/aibox-agent)
source "$top/bench/common.sh"

root=$work/root station=$work/station
mkdir -p "$root/etc/aibox" "$root/proc" "$root/sys/class/dmi/id" "$station"
printf '[hardware]\nsources = sim\n' >"$root/etc/aibox/aibox.conf"
cp /proc/cpuinfo /proc/meminfo "$root/proc/"
echo BENCH0001 >"$root/sys/class/dmi/id/product_serial"
provision="$build/provisioning/aibox-provision"
"$provision" ca init --key "$station/ca.key" --cert "$station/ca.crt" >/dev/null
"$build/runtime/aibox-runtime" make-test-model "$station/burn-in.gguf" >/dev/null 2>&1
cat >"$station/manifest.json" <<JSON
{"version": 1,
 "sku": {"name": "SIM-8G", "gpus": [{"model": "H20", "count": 8}], "psus": 2, "fans": 6, "ups": 2},
 "self_tests": {"iops_min": 1000, "iops_path": "/var/lib/aibox", "iops_seconds": 3,
                "sensors": true, "gpu_health": true, "ups_online": true,
                "burn_in": {"model": "$station/burn-in.gguf", "tokens": 64, "min_tokens_per_second": 1}},
 "factory_ca": {"certificate": "$station/ca.crt", "key": "$station/ca.key"},
 "admin": {"one_time_password": "bench-label-0001"},
 "network": {"hostname": "bench0001"}, "ntp": {"servers": ["10.0.0.1"]}}
JSON

timed() {  # timed LOG: runs the provisioning, prints milliseconds
  local start end
  start=$(date +%s%N)
  PATH="$build/runtime:$PATH" "$provision" run --manifest "$station/manifest.json" --root "$root" \
    --station bench --json >"$1" || { cat "$1" >&2; echo "bench: provisioning failed" >&2; exit 1; }
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
first=$(timed "$work/first.jsonl")
again=$(timed "$work/again.jsonl")
done_steps=$(grep -c '"already_done":true' "$work/again.jsonl" || true)
"$provision" report --root "$root" --verify --ca "$station/ca.crt" >/dev/null

printf '%-34s %8s %8s\n' "" "seconds" "target"
seconds() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
printf '%-34s %8s %8s\n' "full run (no model copy)" "$(seconds "$first")" "<= 120"
printf '%-34s %8s %8s\n' "re-run ($done_steps steps already done)" "$(seconds "$again")" "<= 10"
echo "per step, first run:"
grep '"event":"end"' "$work/first.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print("  %-12s %-8s %7.3f s" % (e["step"], e["status"], e["seconds"]))'
status=0
if ((first > 120000)); then echo "MISSED: the run took more than 120 s"; status=1; fi
if ((again > 10000)); then echo "MISSED: the re-run took more than 10 s"; status=1; fi
exit $status
