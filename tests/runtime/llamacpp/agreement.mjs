// The built-in engine against llama.cpp (node-llama-cpp's prebuilt CPU build, pinned) on the
// same generated GGUF files, both architectures and every tensor type:
//  - tokenization: the same token ids for texts that exercise the pre-tokenizers;
//  - logits: llama.cpp decodes greedily; at each of its positions the server (fed the same
//    tokens) gives log-probabilities for its top 5 tokens within a per-type tolerance of
//    llama.cpp's;
//  - greedy: the server's next token is llama.cpp's at every position, or the two are a near
//    tie (their log-probabilities closer than the tolerance, where rounding may pick either);
//    the first 16 positions have no other outcome.
// Exits 1 with what differs. AIBOX_RUNTIME names the aibox-runtime binary.
import {spawn, spawnSync} from "node:child_process";
import {mkdtempSync, rmSync} from "node:fs";
import {createServer} from "node:net";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const runtime = process.env.AIBOX_RUNTIME;
if (!runtime) {
  console.error("set AIBOX_RUNTIME to the aibox-runtime binary");
  process.exit(2);
}
const architectures = ["llama", "qwen2"];
const types = (process.env.TYPES || "f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m").split(" ");
// Log-probability tolerance: llama.cpp keeps its KV cache in f16 and quantises activations its
// own way (q8_K for the k-quants), so quantised files differ more than float ones.
const tolerance = (type) => (type === "f32" || type === "f16" ? 0.02 : type === "bf16" ? 0.05 : 0.25);
const positions = 24;
const texts = [
  "The box runs models on the CPU, and 盒子 answers in Chinese too.",
  "Write 12345 and 3.14 in words,   please:\n\n- one\n- two",
  "don't  STOP!!! 你好，世界。 émigré naïve ...",
];

const work = mkdtempSync(join(tmpdir(), "aibox-agreement-"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const failures = [];

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const {port} = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function serve(model) {
  const port = await freePort();
  const child = spawn(runtime, ["serve", "--model", model, "--listen", `127.0.0.1:${port}`,
                                "--threads", "2", "--parallel", "1", "--context", "512"],
                      {stdio: ["ignore", "ignore", "inherit"]});
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${base}/health`)).status === 200) {
        return {child, base};
      }
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`aibox-runtime serve on ${model} did not become ready`);
}

async function post(base, path, body) {
  const reply = await fetch(base + path, {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)});
  if (reply.status !== 200) {
    throw new Error(`${path}: ${reply.status} ${await reply.text()}`);
  }
  return reply.json();
}

for (const arch of architectures) {
  for (const type of types) {
    const name = `${arch} ${type}`;
    const file = join(work, `${arch}-${type}.gguf`);
    const made = spawnSync(runtime, ["make-test-model", "--arch", arch, "--type", type, file]);
    if (made.status !== 0) {
      failures.push(`${name}: make-test-model failed: ${made.stderr}`);
      continue;
    }
    const model = await llama.loadModel({modelPath: file});
    const context = await model.createContext({contextSize: 512, batchSize: 512});
    const {child, base} = await serve(file);
    try {
      // Tokenization: ours adds the BOS the file asks for; llama.cpp's tokenize(text) does not.
      let prompt;
      for (const text of texts) {
        const ours = (await post(base, "/tokenize", {prompt: text})).tokens;
        const theirs = Array.from(model.tokenize(text, false));
        const body = ours[0] === model.tokens.bos ? ours.slice(1) : ours;
        if (JSON.stringify(body) !== JSON.stringify(theirs)) {
          failures.push(`${name}: ${JSON.stringify(text)} tokenizes to ${body.length} tokens, llama.cpp ${theirs.length}`);
        }
        prompt ??= ours;
      }
      // llama.cpp's greedy tokens and distributions.
      const sequence = context.getSequence();
      const forced = [];
      const distributions = [];
      for await (const out of sequence.evaluateWithMetadata(prompt, {probabilities: true}, {temperature: 0})) {
        forced.push(out.token);
        distributions.push(out.probabilities);
        if (forced.length >= positions) {
          break;
        }
      }
      let worst = 0;
      let strict = -1;
      let ties = 0;
      for (let i = 0; i < forced.length; i++) {
        const reply = await post(base, "/v1/completions", {
          prompt: prompt.concat(forced.slice(0, i)), max_tokens: 1, temperature: 0, logprobs: 5,
          return_tokens_as_token_ids: true,
        });
        const top = reply.choices[0].logprobs.top_logprobs[0];
        const theirs = distributions[i];
        const ln = (id) => Math.log(theirs.get(id) ?? 0);
        let oursBest = -1;
        let oursBestLp = -Infinity;
        for (const [key, lp] of Object.entries(top)) {
          const id = Number(key.slice("token_id:".length));
          if (lp > oursBestLp) {
            oursBest = id;
            oursBestLp = lp;
          }
          worst = Math.max(worst, Math.abs(lp - ln(id)));
        }
        if (oursBest !== forced[i]) {
          if (strict < 0) {
            strict = i;
          }
          const gap = Math.abs(ln(forced[i]) - ln(oursBest));
          if (gap < tolerance(type)) {
            ties++;
          } else {
            failures.push(`${name}: position ${i}: the engine picks ${oursBest}, llama.cpp ${forced[i]} (log-probabilities ${gap.toFixed(4)} apart)`);
          }
        }
      }
      if (worst > tolerance(type)) {
        failures.push(`${name}: log-probabilities differ by up to ${worst.toFixed(4)} (tolerance ${tolerance(type)})`);
      }
      console.log(`${name.padEnd(12)} top-5 log-prob max |diff| ${worst.toFixed(4)} (tolerance ${tolerance(type)}); ` +
                  `greedy: the same ${strict < 0 ? `for all ${forced.length}` : `for the first ${strict}`} tokens, ` +
                  `${ties} near tie(s)`);
    } finally {
      child.kill("SIGTERM");
      await context.dispose();
      await model.dispose();
    }
  }
}
rmSync(work, {recursive: true, force: true});
if (failures.length > 0) {
  console.error("disagreements with llama.cpp:\n  " + failures.join("\n  "));
  process.exit(1);
}
console.log("the engine agrees with llama.cpp on every file");
process.exit(0);
