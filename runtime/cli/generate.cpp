#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "runtime/cli/commands.hpp"
#include "runtime/server/scheduler.hpp"
#include "runtime/text/chat.hpp"

namespace aibox::runtime {
namespace {

namespace po = boost::program_options;
using engine::Error;

// --chat takes a JSON array of {"role","content"} objects, or @FILE holding one.
std::variant<std::vector<text::Message>, Error> parseChat(const std::string& argument) {
  std::string json = argument;
  if (!argument.empty() && argument.front() == '@') {
    std::ifstream in(argument.substr(1));
    if (!in) {
      return Error{"cannot read " + argument.substr(1)};
    }
    std::ostringstream text;
    text << in.rdbuf();
    json = text.str();
  }
  boost::system::error_code ec;
  auto value = boost::json::parse(json, ec);
  const char* shape = "--chat must be a JSON array of {\"role\": ..., \"content\": ...} objects";
  if (ec || !value.is_array()) {
    return Error{shape};
  }
  std::vector<text::Message> messages;
  for (const auto& item : value.as_array()) {
    const auto* object = item.if_object();
    const auto* role = object ? object->if_contains("role") : nullptr;
    const auto* content = object ? object->if_contains("content") : nullptr;
    if (role == nullptr || content == nullptr || !role->is_string() || !content->is_string()) {
      return Error{shape};
    }
    messages.push_back({std::string(role->as_string()), std::string(content->as_string())});
  }
  return messages;
}

// validate() names the fields of SamplingParams; say the options instead.
std::string optionNames(std::string message) {
  static const std::pair<std::string_view, std::string_view> kNames[] = {
      {"temperature", "--temperature"},
      {"topK", "--top-k"},
      {"topP", "--top-p"},
      {"minP", "--min-p"},
      {"repeatPenalty", "--repeat-penalty"},
      {"presencePenalty", "--presence-penalty"},
      {"frequencyPenalty", "--frequency-penalty"},
      {"penaltyLastN", "--penalty-last-n"},
  };
  for (const auto& [field, option] : kNames) {
    if (message.starts_with(field)) {
      return std::string(option) + message.substr(field.size());
    }
  }
  return message;
}

}  // namespace

int generateCommand(const std::vector<std::string>& args) {
  po::options_description options(
      "Usage: aibox-runtime generate --model FILE (--prompt TEXT | --chat JSON) [OPTIONS]\n\n"
      "Streams the generated text to stdout; load and speed figures go to stderr. The request\n"
      "runs on the same scheduler as `aibox-runtime serve`.\n\nOptions");
  std::string model, prompt, chat, chatTemplate;
  std::vector<std::string> stops;
  server::SchedulerOptions schedule{.parallel = 1};
  std::uint32_t maxTokens = 256;
  unsigned threads = 0;
  std::uint32_t context = 0;
  std::uint64_t seed = 0;
  engine::SamplingParams sampling;
  // clang-format off
  options.add_options()
    ("help,h", "show this help")
    ("model,m", po::value(&model)->required(), "the GGUF model file")
    ("prompt,p", po::value(&prompt), "plain text to continue (special token texts are honoured)")
    ("chat", po::value(&chat), "messages as JSON, e.g. '[{\"role\":\"user\",\"content\":\"Hi\"}]', or @FILE; rendered with the model's chat template")
    ("chat-template", po::value(&chatTemplate), "force a built-in chat template (chatml, llama3, deepseek-r1, llama2) instead of the model's own")
    ("max-tokens,n", po::value(&maxTokens)->default_value(256), "stop after this many new tokens")
    ("seed", po::value(&seed), "random seed; the same seed gives the same output (default: random, printed at the end)")
    ("temperature", po::value(&sampling.temperature)->default_value(0.8f, "0.8"), "0 picks the most likely token every time (greedy)")
    ("top-k", po::value(&sampling.topK)->default_value(40), "sample among the K most likely tokens (0: off)")
    ("top-p", po::value(&sampling.topP)->default_value(0.95f, "0.95"), "nucleus sampling (1: off)")
    ("min-p", po::value(&sampling.minP)->default_value(0.05f, "0.05"), "drop tokens below this fraction of the best one's probability (0: off)")
    ("repeat-penalty", po::value(&sampling.repeatPenalty)->default_value(1.0f, "1.0"), "penalise repeating recent tokens (1: off)")
    ("presence-penalty", po::value(&sampling.presencePenalty)->default_value(0.0f, "0"), "OpenAI presence penalty, -2..2")
    ("frequency-penalty", po::value(&sampling.frequencyPenalty)->default_value(0.0f, "0"), "OpenAI frequency penalty, -2..2")
    ("penalty-last-n", po::value(&sampling.penaltyLastN)->default_value(64), "how many recent tokens the penalties look at")
    ("stop", po::value(&stops)->composing(), "stop when this text appears (repeatable); it is not printed")
    ("threads,t", po::value(&threads)->default_value(0), "compute threads (0: one per core)")
    ("context,c", po::value(&context)->default_value(0), "context size in tokens (0: the model's, at most 4096)")
    ("batch,b", po::value(&schedule.stepTokens)->default_value(256), "prompt tokens per forward pass");
  // clang-format on
  auto parsed = parseArguments(args, options);
  if (!parsed) {
    return kOk;
  }
  const auto& vm = *parsed;
  if ((vm.count("prompt") != 0) == (vm.count("chat") != 0)) {
    std::cerr << "aibox-runtime generate: give either --prompt or --chat\n";
    return kUsageError;
  }
  sampling.seed = vm.count("seed") != 0 ? seed : std::random_device{}();
  if (auto problem = engine::validate(sampling); !problem.empty()) {
    std::cerr << "aibox-runtime generate: " << optionNames(problem) << '\n';
    return kUsageError;
  }

  auto started = std::chrono::steady_clock::now();
  auto loaded = loadModel(model);
  if (!loaded) {
    return kFailed;
  }
  const engine::Model& m = *loaded;
  const auto& tokenizer = m.tokenizer();

  std::vector<engine::Token> tokens;
  if (vm.count("chat") != 0) {
    auto messages = parseChat(chat);
    if (auto* error = std::get_if<Error>(&messages)) {
      std::cerr << "aibox-runtime generate: " << error->message << '\n';
      return kUsageError;
    }
    auto chosen = text::chooseChatTemplate(m.chatTemplate(), chatTemplate);
    if (auto* error = std::get_if<Error>(&chosen)) {
      std::cerr << "aibox-runtime generate: " << error->message << '\n';
      return kFailed;
    }
    const auto& vocabulary = tokenizer.vocabulary();
    text::ChatOptions chatOptions;
    chatOptions.variant =
        text::detectChatVariant(std::get<text::ChatTemplate>(chosen), m.chatTemplate());
    if (vocabulary.bos >= 0) {
      chatOptions.bosText = tokenizer.piece(vocabulary.bos, true);
    }
    if (vocabulary.eos >= 0) {
      chatOptions.eosText = tokenizer.piece(vocabulary.eos, true);
    }
    auto rendered = text::renderChat(std::get<text::ChatTemplate>(chosen),
                                     std::get<std::vector<text::Message>>(messages), chatOptions);
    if (auto* error = std::get_if<Error>(&rendered)) {
      std::cerr << "aibox-runtime generate: " << error->message << '\n';
      return kUsageError;
    }
    tokens = tokenizer.encode(std::get<std::string>(rendered), false, true);
  } else {
    tokens = tokenizer.encode(prompt, true, true);
  }

  if (context == 0) {
    context = std::min<std::uint32_t>(m.config().trainedContext, 4096);
  }
  if (context > m.config().trainedContext) {
    std::cerr << "aibox-runtime generate: --context " << context << " is more than the "
              << m.config().trainedContext << " tokens the model was trained for\n";
    return kUsageError;
  }
  if (tokens.size() + 1 > context) {
    std::cerr << "aibox-runtime generate: the prompt has " << tokens.size()
              << " tokens but the context holds " << context
              << ": shorten the prompt or raise --context\n";
    return kFailed;
  }
  auto backend = engine::makeCpuBackend(threads);
  schedule.context = context;
  server::Scheduler scheduler(m, *backend, schedule);
  double loadSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr.precision(2);
  std::cerr << std::fixed << "loaded " << (m.config().name.empty() ? model : m.config().name)
            << " (" << m.config().architecture << ", " << m.config().layers << " layers, "
            << m.file().info().quantization << ") in " << loadSeconds << " s; "
            << (threads == 0 ? std::thread::hardware_concurrency() : threads) << " threads, "
            << kernels::isaName(kernels::activeIsa()) << " kernels, context " << context << '\n';

  // The scheduler's thread calls back; this one waits for the finish.
  using Clock = std::chrono::steady_clock;
  const bool terminal = ::isatty(STDOUT_FILENO) != 0;
  const auto submitted = Clock::now();
  std::optional<Clock::time_point> firstToken;
  std::shared_ptr<server::Ticket> ticket;
  std::promise<server::Finish> finished;
  server::Job job;
  job.prompt = tokens;
  job.sampling = sampling;
  job.maxTokens = maxTokens;
  job.stops = stops;
  job.onPiece = [&](server::Piece piece) {
    if (!firstToken) {
      firstToken = Clock::now();
    }
    std::cout << piece.text;
    if (terminal) {
      std::cout.flush();
    }
    if (!std::cout) {
      ticket->cancel();  // stdout went away: stop
    }
  };
  job.onFinish = [&finished](const server::Finish& f) { finished.set_value(f); };
  ticket = scheduler.submit(std::move(job));
  const auto f = finished.get_future().get();
  const auto ended = Clock::now();
  std::cout << std::endl;
  if (f.reason == "error") {
    std::cerr << "aibox-runtime generate: " << f.error << '\n';
    return kFailed;
  }
  auto seconds = [](Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
  };
  const auto first = firstToken.value_or(ended);
  const double promptRate = static_cast<double>(f.promptTokens) / seconds(submitted, first);
  const double generateRate =
      f.completionTokens > 1 ? static_cast<double>(f.completionTokens - 1) / seconds(first, ended)
                             : 0.0;
  std::cerr.precision(1);
  std::cerr << "prompt: " << f.promptTokens << " tokens, " << promptRate
            << " tokens/s; generation: " << f.completionTokens << " tokens, " << generateRate
            << " tokens/s; finish: " << (f.reason == "cancelled" ? "stop" : f.reason) << "; seed "
            << sampling.seed << '\n';
  return kOk;
}

}  // namespace aibox::runtime
