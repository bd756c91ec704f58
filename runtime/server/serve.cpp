// The life of `aibox-runtime serve`: bind, load the model on its own thread (progress through
// /health), run the scheduler, drain on SIGTERM.
#include <systemd/sd-daemon.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/http/server.hpp"
#include "common/log/log.hpp"
#include "runtime/server/front.hpp"
#include "runtime/server/server.hpp"

namespace aibox::server {
namespace {

namespace net = boost::asio;

// Reads every page of the weights once, so the first requests do not wait on the disk, and so
// /health can say how far the load is.
void readWeights(const engine::GgufFile& file, Front& front, const std::atomic<bool>& stop) {
  const auto& info = file.info();
  std::uint64_t total = std::max<std::uint64_t>(info.tensorDataBytes, 1);
  std::uint64_t done = 0;
  unsigned char sink = 0;
  for (const auto& tensor : info.tensors) {
    const auto* bytes = static_cast<const unsigned char*>(file.data(tensor));
    for (std::uint64_t at = 0; at < tensor.bytes && !stop; at += 4096) {
      sink ^= *static_cast<const volatile unsigned char*>(bytes + at);
      if (((done + at) & ((16u << 20) - 1)) < 4096) {
        front.setProgress(0.99 * static_cast<double>(done + at) / static_cast<double>(total));
      }
    }
    done += tensor.bytes;
  }
  (void)sink;
}

struct Loaded {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Backend> backend;
  std::unique_ptr<TokenFilter> filter;
  std::unique_ptr<Scheduler> scheduler;
};

// Loads the model and starts the scheduler; the reason when it cannot.
std::variant<LoadedModel, std::string> load(const ServeOptions& o, Front& front, Loaded& out,
                                            const std::atomic<bool>& stop) {
  auto file = engine::GgufFile::open(o.model);
  if (auto* error = std::get_if<engine::Error>(&file)) {
    return o.model + ": " + error->message;
  }
  auto loaded = engine::Model::load(std::get<0>(file));
  if (auto* error = std::get_if<engine::Error>(&loaded)) {
    return o.model + ": " + error->message;
  }
  out.model = std::move(std::get<0>(loaded));
  const auto& model = *out.model;
  readWeights(model.file(), front, stop);
  std::uint32_t trained = model.config().trainedContext;
  std::uint32_t context = o.context == 0 ? std::min<std::uint32_t>(trained, 4096) : o.context;
  if (context > trained) {
    return "--context " + std::to_string(context) + " is more than the " + std::to_string(trained) +
           " tokens the model was trained for";
  }
  LoadedModel result;
  result.model = out.model.get();
  auto chosen = text::chooseChatTemplate(model.chatTemplate(), o.chatTemplate);
  if (auto* error = std::get_if<text::Error>(&chosen)) {
    result.chatTemplateError = error->message;
  } else {
    auto chatTemplate = std::get<text::ChatTemplate>(chosen);
    result.chatTemplate = chatTemplate;
    result.chatOptions.variant = text::detectChatVariant(chatTemplate, model.chatTemplate());
    const auto& vocabulary = model.tokenizer().vocabulary();
    if (vocabulary.bos >= 0) {
      result.chatOptions.bosText = model.tokenizer().piece(vocabulary.bos, true);
    }
    if (vocabulary.eos >= 0) {
      result.chatOptions.eosText = model.tokenizer().piece(vocabulary.eos, true);
    }
    bool r1 = chatTemplate == text::ChatTemplate::DeepSeekR1;
    result.splitReasoning = o.reasoningSplit.value_or(r1);
    result.openThinking = r1 && result.chatOptions.variant.openThinking;
  }
  auto kvType = o.kvHalf ? engine::KvType::F16 : engine::KvType::F32;
  std::uint32_t kvBlocks = 0;
  if (o.kvMemoryMiB > 0) {
    auto blockBytes = engine::KvPool::blockBytes(model.config(), kvType);
    kvBlocks = static_cast<std::uint32_t>(
        std::min<std::uint64_t>((std::uint64_t{o.kvMemoryMiB} << 20) / blockBytes, UINT32_MAX));
    std::uint64_t oneContext =
        (context + engine::KvPool::kBlockPositions - 1) / engine::KvPool::kBlockPositions;
    if (kvBlocks < oneContext) {
      return "--kv-memory " + std::to_string(o.kvMemoryMiB) + " MiB holds " +
             std::to_string(std::uint64_t{kvBlocks} * engine::KvPool::kBlockPositions) +
             " tokens of this model, less than one context of " + std::to_string(context) +
             ": give at least " + std::to_string((oneContext * blockBytes + (1u << 20) - 1) >> 20) +
             " MiB or lower --context";
    }
  }
  out.backend = engine::makeCpuBackend(o.threads);
  out.scheduler = std::make_unique<Scheduler>(model, *out.backend,
                                              SchedulerOptions{.parallel = o.parallel,
                                                               .context = context,
                                                               .stepTokens = o.stepTokens,
                                                               .queue = o.queue,
                                                               .kvBlocks = kvBlocks,
                                                               .kvType = kvType});
  result.scheduler = out.scheduler.get();
  out.filter = std::make_unique<TokenFilter>(model.tokenizer());
  result.filter = out.filter.get();
  return result;
}

engine::Result<std::string> readToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return engine::Error{"cannot read --api-token-file " + path};
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string::npos) {
    return engine::Error{"--api-token-file " + path + " must hold one token on one line"};
  }
  return token;
}

}  // namespace

int serve(const ServeOptions& o) {
  auto endpoint = http::parseEndpoint(o.listen);
  if (!endpoint) {
    log::error("--listen must be ADDR:PORT, e.g. 127.0.0.1:8080", {{"listen", o.listen}});
    return 1;
  }
  std::string token;
  if (!o.apiTokenFile.empty()) {
    auto read = readToken(o.apiTokenFile);
    if (auto* error = std::get_if<engine::Error>(&read)) {
      log::error(error->message);
      return 1;
    }
    token = std::move(std::get<std::string>(read));
  }
  std::string name =
      o.servedName.empty() ? std::filesystem::path(o.model).stem().string() : o.servedName;

  net::io_context io;
  http::Router router;
  Front front(name, token);
  front.install(router);
  http::HttpMetrics httpMetrics;
  http::ServerOptions serverOptions;
  serverOptions.maxBodyBytes = 16UL << 20;               // long prompts
  serverOptions.bodyTimeout = std::chrono::minutes(10);  // a slow stream is not a dead one
  serverOptions.drainTimeout = o.drain;
  http::Server server(io, router, httpMetrics, serverOptions);
  try {
    auto bound = server.listenTcp(*endpoint, nullptr);
    log::info("listening",
              {{"address", bound.address().to_string() + ":" + std::to_string(bound.port())},
               {"model", o.model}});
  } catch (const std::exception& e) {
    log::error(e.what());
    return 1;
  }

  int exitCode = 0;
  std::atomic<bool> stop{false};
  Loaded loaded;
  auto started = std::chrono::steady_clock::now();
  std::thread loader([&] {
    auto result = load(o, front, loaded, stop);
    net::post(io, [&, result = std::move(result)]() mutable {
      if (auto* reason = std::get_if<std::string>(&result)) {
        if (stop) {
          return;
        }
        log::error("the model cannot be served", {{"error", *reason}});
        front.setFailed(*reason);
        exitCode = 1;
        io.stop();
        return;
      }
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      auto& ready = std::get<LoadedModel>(result);
      log::info("model ready", {{"model", name},
                                {"context", std::to_string(ready.scheduler->options().context)},
                                {"parallel", std::to_string(ready.scheduler->options().parallel)},
                                {"kv_blocks", std::to_string(ready.scheduler->options().kvBlocks)},
                                {"load_seconds", std::to_string(seconds)}});
      front.setReady(std::move(ready), seconds);
      sd_notify(0, ("READY=1\nSTATUS=serving " + name).c_str());
    });
  });

  net::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) {
      return;
    }
    log::info("draining: finishing the requests in flight",
              {{"drain_ms", std::to_string(o.drain.count())}});
    sd_notify(0, "STOPPING=1");
    stop = true;
    front.setDraining();  // new requests get 503; those running finish
    server.drain([&io] { io.stop(); });
  });
  std::signal(SIGPIPE, SIG_IGN);

  std::thread second([&io] { io.run(); });
  io.run();
  second.join();
  stop = true;
  loader.join();
  loaded.scheduler.reset();  // cancels what is left (before the filter its jobs use)
  log::info("stopped");
  return exitCode;
}

}  // namespace aibox::server
