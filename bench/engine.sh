#!/usr/bin/env bash
# Built-in engine benchmark (docs/bench.md), release build: prompt and generation tokens/s of
# aibox-runtime on generated models of about 0.5 B parameters (LAYERS, default 40, of width
# 1024 and feed-forward 2816) in Q8_0 and Q4_K, at 1 and 2 threads, next to the memory
# bandwidth bound measured in the same run: the bytes of weights one token reads (from
# `aibox-runtime info`) divided by the memory read bandwidth at the same thread count
# (aibox-bench-membw). Generation follows a prompt of PROMPT_REPEAT (default 12) sentences, so
# it also reads a KV cache of about 400 tokens per step.
# Target: generation >= 60 % of that bound. Exit code 1 when it is missed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${AIBOX_BUILD:-$top/build/release}
layers=${LAYERS:-40}
gen_tokens=${GEN_TOKENS:-48}
prompt_repeat=${PROMPT_REPEAT:-12}  # sentences of about 33 tokens: ~400 tokens of context
bench_binaries=(runtime/aibox-runtime bench/aibox-bench-membw)
. "$top/bench/common.sh"

runtime="$build/runtime/aibox-runtime"
membw="$build/bench/aibox-bench-membw"
# A prompt of a few hundred tokens for prompt processing.
prompt=$(for _ in $(seq 1 "$prompt_repeat"); do printf 'The box keeps its models on local disks and serves them to applications on the site network. '; done)

missed=0
printf '%-6s %-7s %12s %12s %12s %12s %8s\n' type threads "prompt t/s" "gen t/s" "bound t/s" "MB/token" ratio
for type in q8_0 q4_k; do
  model="$work/bench-$type.gguf"
  "$runtime" make-test-model --arch qwen2 --type "$type" --layers "$layers" --dim 1024 \
    --ff 2816 --heads 16 --kv-heads 4 --vocab 4000 "$model" 2>/dev/null
  bytes=$("$runtime" info --json "$model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["weight_bytes_per_token"])')
  for threads in 1 2; do
    bandwidth=$("$membw" "$threads" 1024)
    stats=$("$runtime" generate --model "$model" --prompt "$prompt" --max-tokens "$gen_tokens" \
      --temperature 0 --threads "$threads" 2>&1 >/dev/null | grep '^prompt:')
    read -r prompt_tps gen_tps < <(echo "$stats" | sed -E 's/^prompt: [0-9]+ tokens, ([0-9.]+) tokens\/s; generation: [0-9]+ tokens, ([0-9.]+) tokens\/s.*/\1 \2/')
    read -r bound ratio ok mb < <(python3 -c "
b=$bandwidth/$bytes; r=$gen_tps/b
print(f'{b:.2f} {r:.2f} {int(r >= 0.6)} {$bytes/1e6:.0f}')")
    printf '%-6s %-7s %12s %12s %12s %12s %8s\n' "$type" "$threads" "$prompt_tps" "$gen_tps" "$bound" \
      "$mb" "$ratio"
    [ "$ok" = 1 ] || missed=1
  done
done
echo "memory bandwidth: $("$membw" 1 1024) B/s (1 thread), $("$membw" 2 1024) B/s (2 threads)"
if [ "$missed" = 1 ]; then
  echo "target missed: generation below 60 % of the memory bandwidth bound" >&2
  exit 1
fi
echo "target met: generation >= 60 % of the memory bandwidth bound"
