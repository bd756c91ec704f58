#!/usr/bin/env bash
# Installs what is missing, builds a release and runs aibox on this machine in ./demo-root
# (kept between runs) until Ctrl-C. AIBOX_DEMO_LISTEN overrides the admin API's address
# (0.0.0.0:8443), AIBOX_DEMO_GATEWAY_LISTEN the OpenAI-compatible gateway's (0.0.0.0:8000).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release

root="$top/demo-root"
listen="${AIBOX_DEMO_LISTEN:-0.0.0.0:8443}"
port="${listen##*:}"
agent="$top/build/release/agent/aibox-agent"
ctl="$top/build/release/agent/ctl/aiboxctl"
runtime="$top/build/release/runtime/aibox-runtime"
gateway="$top/build/release/runtime/gateway/aibox-gateway"
gateway_listen="${AIBOX_DEMO_GATEWAY_LISTEN:-0.0.0.0:8000}"
gateway_port="${gateway_listen##*:}"
gateway_pid=""
import_dir="$root/import"
builtin_model="$import_dir/aibox-demo-qwen2-q8_0.gguf"
mkdir -p "$root/etc/aibox"
[ -f "$root/etc/aibox/aibox.conf" ] || cp packaging/aibox.conf "$root/etc/aibox/aibox.conf"

# The demo box has no sensors, GPUs or UPSes of its own: it watches the simulated box, and the
# API, the CLI and /metrics all say "simulated".
"$agent" --root "$root" --listen "$listen" --hardware.sources=sim \
  --models.import_dirs="/media,/mnt,/srv,$import_dir" \
  --runtimes.engines_dir="$top/packaging/engines" --runtimes.engine_path="$(dirname "$runtime")" &
pid=$!
stop() {
  trap - INT TERM EXIT
  # Instances outlive the agent by design (it re-adopts them); the demo stops its own.
  "$ctl" --root "$root" runtimes stop demo-chat >/dev/null 2>&1 || true
  [ -z "$gateway_pid" ] || kill -TERM "$gateway_pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "aibox demo stopped; its state stays in $root"
}
trap stop INT TERM EXIT

for _ in $(seq 1 100); do
  "$ctl" --root "$root" status >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "demo: aibox-agent exited; see the log above" >&2; exit 1; }
  sleep 0.1
done

# The store holds a small built-in model (about 30 MB, qwen2 architecture, Q8_0, random
# weights: it talks nonsense, but every part of the engine and the store runs on it).
if ! "$ctl" --root "$root" models show aibox-demo >/dev/null 2>&1; then
  mkdir -p "$import_dir"
  [ -f "$builtin_model" ] || "$runtime" make-test-model --arch qwen2 --type q8_0 --layers 8 \
    --dim 512 --ff 1536 --heads 8 --kv-heads 2 --vocab 4000 "$builtin_model"
  "$ctl" --root "$root" models import "$builtin_model" --name aibox-demo --label origin=built-in
fi

# The demo box is licensed like a real one: a simulated machine identity (DMI ids under the
# root), its fingerprint, and a trial license issued for it with the test vendor key, which
# this build trusts (a shipped build does not).
dmi="$root/sys/class/dmi/id"
if [ ! -f "$dmi/product_uuid" ]; then
  mkdir -p "$dmi"
  cat /proc/sys/kernel/random/uuid >"$dmi/product_uuid"
  echo "DEMO-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')" >"$dmi/board_serial"
fi
if "$ctl" --root "$root" --json license show | grep -q '"state":"none"'; then
  license_dir="$root/license-issue"
  mkdir -p "$license_dir"
  "$ctl" --root "$root" --json license fingerprint >"$license_dir/fingerprint.json"
  cat >"$license_dir/request.json" <<'JSON'
{"id": "DEMO-TRIAL", "customer": "aibox demo", "days": 90, "grace_days": 14, "trial": true,
 "entitlements": {"max_gpus": 8, "max_instances": 4, "max_models": 20, "max_concurrency": 64,
                  "modules": ["gateway"]}}
JSON
  "$top/build/release/provisioning/license/aibox-license" issue \
    --key "$top/tests/support/license/test-vendor.key" --request "$license_dir/request.json" \
    --fingerprint "$license_dir/fingerprint.json" --out "$license_dir/demo.lic" 2>/dev/null
  "$ctl" --root "$root" license install "$license_dir/demo.lic" >/dev/null
fi

# One instance of the built-in model on the built-in engine, so that a new user can chat at once.
if ! "$ctl" --root "$root" runtimes show demo-chat >/dev/null 2>&1; then
  "$ctl" --root "$root" runtimes create demo-chat --model aibox-demo --context 1024 \
    >/dev/null
else
  "$ctl" --root "$root" runtimes start demo-chat >/dev/null
fi

# The gateway, the applications' front door (its own process, as on a box), and an inference API
# key for the demo application: shown once by aiboxctl, so the demo keeps it in a 0600 file.
"$gateway" --root "$root" --gateway.listen="$gateway_listen" &
gateway_pid=$!
key_file="$root/demo-api-key"
if [ ! -s "$key_file" ]; then
  (umask 077 && "$ctl" --root "$root" --json keys add demo-app --models aibox-demo |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])' >"$key_file")
fi

host=$(hostname)
password_file="$root/var/lib/aibox/initial-admin-password"
if [ -f "$password_file" ]; then
  login="one-time password $(cat "$password_file") (change it at the first login:
              POST /api/v1/auth/password; until then other routes answer 403)"
else
  login="the password you chose (reset: $ctl --root $root users passwd admin)"
fi
cert="$root/var/lib/aibox/identity/https.crt"
cat <<MSG

aibox demo is running (box root: $root)

  Admin API   https://$host:$port/api/v1/system
              self-signed certificate: $cert
              try: curl --cacert $cert https://localhost:$port/healthz
  Local CLI   $ctl --root $root status
              (add --json for machine output; the CLI is an admin as the same user)
  Hardware    $ctl --root $root hw        (SIMULATED box: 8 GPUs, 2 PSUs, 2 UPSes)
              $ctl --root $root hw gpus | hw power | hw sensors --watch | hw events
  Models      $ctl --root $root models ls
  License     $ctl --root $root license show   (a 90-day trial signed with the test key)
  Runtimes    $ctl --root $root runtimes ls   (demo-chat: the built-in model, ready to chat)
              $ctl --root $root runtimes logs demo-chat -f
  Engine      $runtime generate --model $builtin_model \\
                --chat '[{"role":"user","content":"Hello"}]' --max-tokens 32
  Metrics     curl --unix-socket $root/run/aibox/agent.sock http://localhost/metrics

  OpenAI API  https://$host:$gateway_port/v1 (the gateway; key in $key_file)
              try: curl --cacert $cert https://localhost:$gateway_port/v1/chat/completions \\
                -H "Authorization: Bearer \$(cat $key_file)" -H 'Content-Type: application/json' \\
                -d '{"model":"aibox-demo","messages":[{"role":"user","content":"Hello"}],"max_tokens":32}'
  Usage       $ctl --root $root usage show

  Login       user admin, $login

Press Ctrl-C to stop.
MSG
"$ctl" --root "$root" status
sleep 1
echo
"$ctl" --root "$root" hw
wait "$pid"
