// The serving benchmark's measurements (run by bench/serve.sh): aibox-runtime serve at BASE
// against llama.cpp (node-llama-cpp, its CPU build) on the same GGUF file, with the same
// prompts. Prints one JSON object.
const {getLlama, LlamaLogLevel} = await import(process.env.NODE_LLAMA_CPP);
const [base, modelPath] = [process.env.BASE, process.env.MODEL];
const threads = Number(process.env.THREADS || 2);
const promptTokens = Number(process.env.PROMPT_TOKENS || 256);
const newTokens = Number(process.env.NEW_TOKENS || 128);
const levels = (process.env.STREAMS || "1 4 8 16").split(" ").map(Number);

const now = () => performance.now() / 1000;
const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

// A prompt of exactly `count` tokens of the model's vocabulary (varied by `salt`, so the
// prefix cache does not serve it unless asked to).
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath});
const vocabulary = model.tokens.bos != null ? Math.max(model.tokens.bos, 1000) : 1000;
function prompt(count, salt) {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(100 + ((salt * 7919 + i * 104729) % (vocabulary - 200)));
  }
  return out;
}

// One streamed completion from the server: time to first token and tokens.
async function serverStream(tokens, max) {
  const start = now();
  const reply = await fetch(`${base}/v1/completions`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({prompt: tokens, max_tokens: max, temperature: 0, stream: true,
                          stream_options: {include_usage: true}, ignore_eos: true}),
  });
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let first = null, generated = 0, buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let at;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.usage) generated = chunk.usage.completion_tokens;
      else if (first === null) first = now();
    }
  }
  const end = now();
  return {ttft: (first ?? end) - start, seconds: end - start, generated, decode: end - (first ?? end)};
}

// One generation on a llama.cpp context sequence: time to first token and tokens.
async function llamaStream(sequence, tokens, max) {
  const start = now();
  let first = null, generated = 0;
  for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
    if (first === null) first = now();
    if (++generated >= max) break;
  }
  const end = now();
  await sequence.clearHistory();
  return {ttft: first - start, seconds: end - start, generated, decode: end - first};
}

async function concurrent(run, streams) {
  const start = now();
  const results = await Promise.all(Array.from({length: streams}, (_, i) => run(i)));
  const seconds = now() - start;
  const generated = results.reduce((sum, r) => sum + r.generated, 0);
  return {
    aggregate: generated / seconds,
    ttftP50: quantile(results.map((r) => r.ttft), 0.5),
    ttftP99: quantile(results.map((r) => r.ttft), 0.99),
  };
}

const out = {server: {}, llama: {}};
// Single stream: prompt tokens/s (time to first token) and generation tokens/s.
let salt = 1;
{
  await serverStream(prompt(32, salt++), 4);  // warm up
  const r = await serverStream(prompt(promptTokens, salt++), newTokens);
  out.server.promptPerSecond = promptTokens / r.ttft;
  out.server.generatePerSecond = (r.generated - 1) / r.decode;
}
const maxStreams = Math.max(...levels);
const context = await model.createContext({contextSize: (promptTokens + newTokens + 16) * maxStreams,
                                           sequences: maxStreams, threads, batchSize: 512});
const sequences = Array.from({length: maxStreams}, () => context.getSequence());
{
  await llamaStream(sequences[0], prompt(32, salt++), 4);
  const r = await llamaStream(sequences[0], prompt(promptTokens, salt++), newTokens);
  out.llama.promptPerSecond = promptTokens / r.ttft;
  out.llama.generatePerSecond = (r.generated - 1) / r.decode;
}
// Concurrent streams.
out.server.streams = {};
out.llama.streams = {};
for (const n of levels) {
  const s = salt;
  salt += n;
  out.server.streams[n] = await concurrent((i) => serverStream(prompt(promptTokens, s + i), newTokens), n);
  out.llama.streams[n] = await concurrent((i) => llamaStream(sequences[i], prompt(promptTokens, s + i), newTokens), n);
}
// A repeated 1,000-token system prompt: the second request's time to first token.
{
  const system = prompt(1000, salt++);
  const cold = await serverStream(system.concat(prompt(16, salt++)), 1);
  const warm = await serverStream(system.concat(prompt(16, salt++)), 1);
  out.server.sharedPrefix = {coldTtft: cold.ttft, warmTtft: warm.ttft, speedup: cold.ttft / warm.ttft};
}
console.log(JSON.stringify(out));
process.exit(0);
