// The open-streams part of bench/gateway.sh.
//   node gateway_streams.mjs upstream PORT TICK_MS HOLD_S
//     an instance stand-in: every POST gets an event stream with one chunk per TICK_MS for
//     HOLD_S seconds, then a usage chunk and [DONE].
//   node gateway_streams.mjs open URL KEY STREAMS READY_FILE
//     opens STREAMS streamed chat completions at once, writes READY_FILE when every one has its
//     first chunk, and prints one JSON object when all have ended: how many ended with [DONE],
//     the errors, the chunks, the seconds until all were open.
import http from "node:http";
import {writeFileSync} from "node:fs";

const [mode, ...args] = process.argv.slice(2);

function chunk(content) {
  return `data: ${JSON.stringify({
    id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench",
    choices: [{index: 0, delta: {content}, finish_reason: null}],
  })}\n\n`;
}

if (mode === "upstream") {
  const [port, tickMs, holdS] = args.map(Number);
  const ticks = Math.max(1, Math.round((holdS * 1000) / tickMs));
  http.createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"});
      let sent = 0;
      const timer = setInterval(() => {
        if (++sent <= ticks) {
          response.write(chunk("tick "));
          return;
        }
        clearInterval(timer);
        response.write(`data: ${JSON.stringify({
          id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1, model: "bench",
          choices: [], usage: {prompt_tokens: 9, completion_tokens: ticks, total_tokens: 9 + ticks},
        })}\n\ndata: [DONE]\n\n`);
        response.end();
      }, tickMs);
      response.on("close", () => clearInterval(timer));
    });
  }).listen(port, "127.0.0.1");
} else if (mode === "open") {
  const [url, key, count, readyFile] = [args[0], args[1], Number(args[2]), args[3]];
  const target = new URL(url);
  const agent = new http.Agent({keepAlive: false, maxSockets: Infinity});
  const body = JSON.stringify({model: "bench-stream", stream: true,
                               messages: [{role: "user", content: "Count"}]});
  const start = performance.now();
  let open = 0, openedIn = 0, done = 0, chunks = 0;
  const errors = {};
  const fail = (why) => { errors[why] = (errors[why] || 0) + 1; };
  const one = () => new Promise((resolve) => {
    let first = true, text = "";
    const request = http.request({
      host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent,
      headers: {"Content-Type": "application/json", "Authorization": `Bearer ${key}`,
                "Content-Length": Buffer.byteLength(body)},
    }, (response) => {
      if (response.statusCode !== 200) {
        fail(`HTTP ${response.statusCode}`);
        response.resume();
        response.on("end", resolve);
        return;
      }
      response.setEncoding("utf8");
      response.on("data", (data) => {
        if (first) {
          first = false;
          if (++open === count) {
            openedIn = (performance.now() - start) / 1000;
            writeFileSync(readyFile, "open\n");
          }
        }
        text += data;
        const events = text.split("\n\n");
        text = events.pop();
        for (const event of events) {
          if (event === "data: [DONE]") {
            ++done;
          } else if (event.includes("\"error\"")) {
            fail("error event");
          } else {
            ++chunks;
          }
        }
      });
      response.on("end", resolve);
      response.on("error", (e) => { fail(e.code || e.message); resolve(); });
    });
    request.on("error", (e) => { fail(e.code || e.message); resolve(); });
    request.end(body);
  });
  await Promise.all(Array.from({length: count}, one));
  if (done < count) {
    errors["ended without [DONE]"] = count - done;
  }
  console.log(JSON.stringify({streams: count, done, chunks, errors,
                              open_s: Number(openedIn.toFixed(2))}));
} else {
  console.error("usage: gateway_streams.mjs upstream PORT TICK_MS HOLD_S | open URL KEY N FILE");
  process.exit(2);
}
