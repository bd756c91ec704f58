// The official OpenAI client (npm "openai") against a real aibox-gateway: chat with and
// without streaming, completions, an engine's refusal passed through, the model list, and the gateway's refusals
// raised as the client's own error classes. Run by gateway_test.cpp with BASE (the gateway's
// /v1 URL), KEY, LIMITED_KEY (one request a minute) and MODEL and EMBED_MODEL (an embedding model); NODE_EXTRA_CA_CERTS trusts the
// box's certificate. Prints one JSON line.
import OpenAI from "openai";
import assert from "node:assert/strict";

const {BASE: baseURL, KEY: apiKey, LIMITED_KEY: limitedKey, MODEL: model} = process.env;
const embedModel = process.env.EMBED_MODEL;
const client = new OpenAI({baseURL, apiKey, maxRetries: 0});
const messages = [{role: "user", content: "hello there"}];

const answer = await client.chat.completions.create({model, messages, max_tokens: 8});
assert.equal(answer.object, "chat.completion");
assert.equal(typeof answer.choices[0].message.content, "string");
assert.ok(answer.usage.completion_tokens > 0);

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 8, stream: true, stream_options: {include_usage: true},
});
let chunks = 0;
let text = "";
let usage = null;
for await (const chunk of stream) {
  chunks++;
  text += chunk.choices[0]?.delta?.content ?? "";
  usage = chunk.usage ?? usage;
}
assert.ok(chunks > 2, `only ${chunks} chunks`);
assert.ok(usage && usage.completion_tokens > 0, "the usage chunk");

// Without include_usage the client gets no usage chunk (the gateway drops the one it asked for).
let sawUsage = false;
for await (const chunk of await client.chat.completions.create({
  model, messages, max_tokens: 4, stream: true,
})) {
  sawUsage ||= chunk.usage != null;
}
assert.equal(sawUsage, false);

const completion = await client.completions.create({model, prompt: "Once upon", max_tokens: 4});
assert.equal(completion.object, "text_completion");
// The engine's own refusal comes through as it sent it (this chat model has no pooling).
await assert.rejects(client.embeddings.create({model, input: "hello"}), (e) =>
  e instanceof OpenAI.BadRequestError && e.code === "model_not_embedding");
const embedding = await client.embeddings.create({model: embedModel, input: ["hello", "box"]});
assert.equal(embedding.data.length, 2);
assert.ok(embedding.data[0].embedding.length > 0);
assert.ok(embedding.usage.prompt_tokens > 0);
const models = (await client.models.list()).data.map((m) => m.id);
assert.ok(models.includes(model), `models: ${models}`);

const wrong = new OpenAI({baseURL, apiKey: "sk-aibox-000000000000-wrong", maxRetries: 0});
await assert.rejects(wrong.chat.completions.create({model, messages}), (e) =>
  e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === "invalid_api_key");
await assert.rejects(client.chat.completions.create({model: "no-such-model", messages}), (e) =>
  e instanceof OpenAI.NotFoundError && e.code === "model_not_found");
const limited = new OpenAI({baseURL, apiKey: limitedKey, maxRetries: 0});
await limited.chat.completions.create({model, messages, max_tokens: 2});
await assert.rejects(limited.chat.completions.create({model, messages, max_tokens: 2}), (e) =>
  e instanceof OpenAI.RateLimitError && e.code === "rate_limit_requests" &&
  Number(e.headers.get("retry-after")) >= 1 && e.headers.get("x-ratelimit-limit-requests") === "1");

console.log(JSON.stringify({ok: true, chunks, text, usage, models}));
