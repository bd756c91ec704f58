#!/usr/bin/env bash
# Model store benchmark (docs/bench.md), release build:
#  - import of a SIZE_MIB (default 2048) MiB GGUF file through the agent (read once, hashed and
#    written in the same pass, fsynced) vs `openssl dgst -sha256` and `cp` + fsync of the same
#    file, in the same run, the file in the page cache for all three;
#  - verify of a model of 4 x SHARD_MIB (default 512) MiB safetensors shards (files hashed in
#    parallel) vs `openssl dgst -sha256` of the 4 files one after another.
# Targets: import >= 0.9x the throughput of openssl dgst; parallel verify >= 1.7x serial (on 2
# cores). Exit code 1 when one is missed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AIBOX_BUILD:-$top/build/release}
size_mib=${SIZE_MIB:-2048}
shard_mib=${SHARD_MIB:-512}
. "$top/bench/common.sh"

usb="$work/usb"
mkdir -p "$usb/sharded"
# A GGUF of one F32 tensor of 4096 x N values, then its data.
python3 - "$usb/big.gguf" "$size_mib" <<'PY'
import struct, sys
path, mib = sys.argv[1], int(sys.argv[2])
def s(x):
    b = x.encode(); return struct.pack('<Q', len(b)) + b
kv = [s('general.architecture') + struct.pack('<I', 8) + s('llama')]
for key, value in (('llama.block_count', 1), ('llama.context_length', 512),
                   ('llama.embedding_length', 4096), ('llama.attention.head_count', 32)):
    kv.append(s(key) + struct.pack('<II', 4, value))
rows = mib * 1024 * 1024 // (4096 * 4)
tensor = s('token_embd.weight') + struct.pack('<IQQIQ', 2, 4096, rows, 0, 0)
head = b'GGUF' + struct.pack('<IQQ', 3, 1, len(kv)) + b''.join(kv) + tensor
head += b'\0' * (-len(head) % 32)
with open(path, 'wb') as f:
    f.write(head)
PY
head -c "$(( size_mib * 1024 * 1024 ))" /dev/urandom >>"$usb/big.gguf"
# A safetensors model of 4 shards.
python3 - "$usb/sharded" "$shard_mib" <<'PY'
import json, struct, sys
path, mib = sys.argv[1], int(sys.argv[2])
n = mib * 1024 * 1024 // 2
for i in range(4):
    header = json.dumps({f"layer{i}.weight": {"dtype": "BF16", "shape": [n], "data_offsets": [0, n * 2]}}).encode()
    with open(f"{path}/model-0000{i + 1}-of-00004.safetensors", 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 4,
           "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 4096,
           "torch_dtype": "bfloat16"}, open(f"{path}/config.json", 'w'))
PY
for i in 1 2 3 4; do head -c "$(( shard_mib * 1024 * 1024 ))" /dev/urandom >>"$usb/sharded/model-0000$i-of-00004.safetensors"; done

start_agent "--models.import_dirs=$usb" --models.reserve_bytes=0
sock="$work/root/run/aibox/agent.sock"
api() { curl -sf --unix-socket "$sock" "$@"; }
# Waits for a job; prints its seconds from the request to the end.
wait_job() {
  local id=$1 state
  while true; do
    # grep, not python: the poll must cost next to nothing on a 2-core box
    state=$(api "http://localhost/api/v1/jobs/$id" | grep -o '"state":"[a-z]*"' | cut -d'"' -f4)
    case "$state" in queued|running) sleep 0.05 ;; succeeded) return 0 ;; *) echo "bench: job $id $state" >&2; return 1 ;; esac
  done
}
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN {print b - a}'; }

cat "$usb/big.gguf" "$usb"/sharded/* >/dev/null  # into the page cache
bytes=$(stat -c %s "$usb/big.gguf")
t0=$(now); openssl dgst -sha256 "$usb/big.gguf" >/dev/null; t1=$(now)
openssl_s=$(seconds "$t0" "$t1")
t0=$(now); cp "$usb/big.gguf" "$work/copy.gguf"; sync "$work/copy.gguf"; t1=$(now)
cp_s=$(seconds "$t0" "$t1")
rm -f "$work/copy.gguf"
t0=$(now)
job=$(api -H 'Content-Type: application/json' -d "{\"source\":\"$usb/big.gguf\",\"name\":\"big\"}" \
  http://localhost/api/v1/models | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])')
wait_job "$job"
t1=$(now)
import_s=$(seconds "$t0" "$t1")

job=$(api -H 'Content-Type: application/json' -d "{\"source\":\"$usb/sharded\",\"name\":\"sharded\"}" \
  http://localhost/api/v1/models | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])')
wait_job "$job"
blobs=$(api http://localhost/api/v1/models/sharded | python3 -c '
import json, sys
for f in json.load(sys.stdin)["files"]:
    if f["path"].endswith(".safetensors"): print("sha256-" + f["sha256"])')
cat $(for b in $blobs; do echo "$work/root/var/lib/aibox/models/blobs/$b"; done) >/dev/null
t0=$(now)
for b in $blobs; do openssl dgst -sha256 "$work/root/var/lib/aibox/models/blobs/$b" >/dev/null; done
t1=$(now)
serial_s=$(seconds "$t0" "$t1")
t0=$(now)
job=$(api -X POST http://localhost/api/v1/models/sharded/verify | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])')
wait_job "$job"
t1=$(now)
verify_s=$(seconds "$t0" "$t1")

awk -v b="$bytes" -v o="$openssl_s" -v c="$cp_s" -v i="$import_s" -v s="$serial_s" -v v="$verify_s" \
    -v mib="$size_mib" -v shard="$shard_mib" -v cores="$(nproc)" '
BEGIN {
  mb = b / 1048576
  printf "%-40s %10s %10s\n", "on a " mib " MiB file (page cache)", "seconds", "MiB/s"
  printf "%-40s %10.2f %10.0f\n", "openssl dgst -sha256", o, mb / o
  printf "%-40s %10.2f %10.0f\n", "cp + fsync", c, mb / c
  printf "%-40s %10.2f %10.0f\n", "aibox import (copy + SHA-256 + fsync)", i, mb / i
  printf "verify of 4 x %d MiB on %d cores: %.2f s parallel, %.2f s serial (openssl dgst)\n", shard, cores, v, s
  ratio = o / i; speedup = s / v
  printf "import throughput vs openssl dgst: %.2fx   parallel verify vs serial: %.2fx\n", ratio, speedup
  miss = 0
  printf "target import >= 0.9x openssl dgst:   %s\n", (ratio >= 0.9 ? "met" : "MISSED"); if (ratio < 0.9) miss = 1
  printf "target verify >= 1.7x serial:         %s\n", (speedup >= 1.7 ? "met" : "MISSED"); if (speedup < 1.7) miss = 1
  exit miss
}'
