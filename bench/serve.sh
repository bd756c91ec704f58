#!/usr/bin/env bash
# Serving benchmark (docs/bench.md), release build: aibox-runtime serve against llama.cpp
# (node-llama-cpp 3.21.1's prebuilt CPU build, installed in tests/runtime/llamacpp) on the same
# generated ~0.5 B qwen2 GGUF (LAYERS, default 40, width 1024) in Q8_0 and Q4_K at THREADS
# (default 2), in the same run: prompt tokens/s, single-stream generation tokens/s (and
# `aibox-runtime generate`'s), aggregate generation tokens/s and p50/p99 time to first token at
# STREAMS (default 1 4 8 16) concurrent streams of PROMPT_TOKENS (256) prompts and NEW_TOKENS
# (128) new tokens, and the time to first token after a repeated 1,000-token system prompt.
# Targets: server single stream >= 0.95x generate; every figure >= 1.0x llama.cpp's; 8 streams
# >= 3x one stream; the repeated prompt cuts time to first token >= 5x. Exit 1 when one is missed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AIBOX_BUILD:-$top/build/release}
layers=${LAYERS:-40}
dim=${DIM:-1024}
threads=${THREADS:-2}
export PROMPT_TOKENS=${PROMPT_TOKENS:-256} NEW_TOKENS=${NEW_TOKENS:-128} STREAMS=${STREAMS:-1 4 8 16}
export THREADS=$threads
bench_binaries=(runtime/aibox-runtime)
. "$top/bench/common.sh"

llamacpp=$top/tests/runtime/llamacpp
if [ ! "$llamacpp/node_modules/.package-lock.json" -nt "$llamacpp/package-lock.json" ]; then
  npm ci --prefix "$llamacpp" --omit=optional --no-audit --no-fund
fi
export NODE_LLAMA_CPP=$llamacpp/node_modules/node-llama-cpp/dist/index.js
runtime="$build/runtime/aibox-runtime"
max_streams=$(echo "$STREAMS" | tr ' ' '\n' | sort -n | tail -n1)
missed=0
for type in ${TYPES:-q8_0 q4_k}; do
  model="$work/serve-$type.gguf"
  "$runtime" make-test-model --arch qwen2 --type "$type" --layers "$layers" --dim "$dim" \
    --ff $((dim * 11 / 4)) --heads 16 --kv-heads 4 --vocab 4000 --context 4096 "$model" 2>/dev/null
  # generate: the CLI on the same scheduler, one stream.
  prompt=$(for _ in $(seq 1 8); do printf 'The box keeps its models on local disks and serves them to applications on the site network. '; done)
  gen_tps=$("$runtime" generate --model "$model" --prompt "$prompt" --max-tokens "$NEW_TOKENS" \
    --temperature 0 --threads "$threads" 2>&1 >/dev/null |
    sed -nE 's/^prompt: .* generation: [0-9]+ tokens, ([0-9.]+) tokens\/s.*/\1/p')
  port=$(free_port)
  "$runtime" serve --model "$model" --listen "127.0.0.1:$port" --threads "$threads" \
    --parallel "$max_streams" --context $((PROMPT_TOKENS + NEW_TOKENS + 1100)) 2>"$work/serve.log" &
  pids+=($!)
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.2
  done
  result=$(BASE="http://127.0.0.1:$port" MODEL="$model" node "$top/bench/serve.mjs")
  kill -TERM "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
  echo "== qwen2 $type, ${layers} layers of width $dim, $threads threads"
  GEN_TPS=$gen_tps RESULT=$result python3 - <<'PY' || missed=1
import json, os
r = json.loads(os.environ["RESULT"]); s, l = r["server"], r["llama"]
gen = float(os.environ["GEN_TPS"] or 0)
ok = True
def row(name, ours, theirs, target, lower_better=False):
    global ok
    ratio = (theirs / ours if ours else 0) if lower_better else (ours / theirs if theirs else 0)
    met = ratio >= target
    ok = ok and met
    print(f"{name:<34} {ours:10.2f} {theirs:10.2f} {ratio:7.2f}x  (target >= {target}x){'' if met else '  MISSED'}")
print(f"{'':<34} {'aibox':>10} {'llama.cpp':>10} {'ratio':>8}  (times: llama.cpp's / ours)")
row("prompt tokens/s", s["promptPerSecond"], l["promptPerSecond"], 1.0)
row("generation tokens/s, one stream", s["generatePerSecond"], l["generatePerSecond"], 1.0)
row("  vs aibox-runtime generate", s["generatePerSecond"], gen, 0.95)
for n, v in s["streams"].items():
    t = l["streams"][n]
    row(f"aggregate tokens/s, {n} streams", v["aggregate"], t["aggregate"], 1.0)
    row(f"  time to first token p50 s, {n}", v["ttftP50"], t["ttftP50"], 1.0, True)
    row(f"  time to first token p99 s, {n}", v["ttftP99"], t["ttftP99"], 1.0, True)
if "8" in s["streams"] and "1" in s["streams"]:
    row("8 streams vs 1 (aibox)", s["streams"]["8"]["aggregate"], s["streams"]["1"]["aggregate"], 3.0)
p = s["sharedPrefix"]
print(f"repeated 1,000-token system prompt: TTFT {p['coldTtft']:.3f} s cold, {p['warmTtft']:.3f} s cached: {p['speedup']:.1f}x (target >= 5x){'' if p['speedup'] >= 5 else '  MISSED'}")
ok = ok and p["speedup"] >= 5
raise SystemExit(0 if ok else 1)
PY
done
if [ "$missed" = 1 ]; then
  echo "a target was missed (see MISSED above)" >&2
  exit 1
fi
echo "every target met"
