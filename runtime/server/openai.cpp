#include "runtime/server/openai.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <cctype>
#include <charconv>
#include <cmath>

namespace aibox::server {
namespace {

// Reads the fields of one request object; the first problem wins and names its field.
class Fields {
 public:
  explicit Fields(const boost::json::object& object) : object_(object) {}

  const boost::json::value* get(std::string_view key) const {
    const auto* value = object_.if_contains(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  }

  std::optional<double> number(std::string_view key, double min, double max) {
    const auto* v = get(key);
    if (v == nullptr || problem_) {
      return std::nullopt;
    }
    if (!v->is_number()) {
      fail(key, "must be a number");
      return std::nullopt;
    }
    double d = v->to_number<double>();
    if (!(d >= min && d <= max)) {
      fail(key, "must be between " + plain(min) + " and " + plain(max) + ", not " + plain(d));
      return std::nullopt;
    }
    return d;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const auto* v = get(key);
    if (v == nullptr || problem_) {
      return std::nullopt;
    }
    std::optional<std::int64_t> value;
    if (v->is_int64()) {
      value = v->as_int64();
    } else if (v->is_uint64()) {
      value = v->as_uint64() > static_cast<std::uint64_t>(max) ? max + 1 : v->as_int64();
    } else if (v->is_double() && std::floor(v->as_double()) == v->as_double() &&
               std::abs(v->as_double()) < 9e15) {
      value = static_cast<std::int64_t>(v->as_double());
    }
    if (!value) {
      fail(key, "must be an integer");
      return std::nullopt;
    }
    if (*value < min || *value > max) {
      fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                    ", not " + std::to_string(*value));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> boolean(std::string_view key) {
    const auto* v = get(key);
    if (v == nullptr || problem_) {
      return std::nullopt;
    }
    if (!v->is_bool()) {
      fail(key, "must be true or false");
      return std::nullopt;
    }
    return v->as_bool();
  }

  std::optional<std::string> string(std::string_view key) {
    const auto* v = get(key);
    if (v == nullptr || problem_) {
      return std::nullopt;
    }
    if (!v->is_string()) {
      fail(key, "must be a string");
      return std::nullopt;
    }
    return std::string(v->as_string());
  }

  void fail(std::string_view key, std::string message) {
    if (!problem_) {
      problem_ = ApiError{.message = "'" + std::string(key) + "' " + std::move(message),
                          .param = std::string(key)};
    }
  }

  static std::string plain(double d) {
    std::array<char, 32> buffer{};
    auto end = std::to_chars(buffer.data(), buffer.data() + buffer.size(), d).ptr;
    return {buffer.data(), end};
  }

  std::optional<ApiError> problem_;

 private:
  const boost::json::object& object_;
};

void readStops(Fields& f, std::vector<std::string>& stops) {
  const auto* v = f.get("stop");
  if (v == nullptr) {
    return;
  }
  if (v->is_string()) {
    if (!v->as_string().empty()) {
      stops.emplace_back(v->as_string());
    }
    return;
  }
  if (v->is_array() && v->as_array().size() <= 16) {
    for (const auto& item : v->as_array()) {
      if (!item.is_string()) {
        f.fail("stop", "must be a string or a list of strings");
        return;
      }
      if (!item.as_string().empty()) {
        stops.emplace_back(item.as_string());
      }
    }
    return;
  }
  f.fail("stop", "must be a string or a list of at most 16 strings");
}

void readLogitBias(Fields& f, std::map<std::int32_t, float>& bias) {
  const auto* v = f.get("logit_bias");
  if (v == nullptr) {
    return;
  }
  if (!v->is_object()) {
    f.fail("logit_bias", "must be an object of token ids to numbers from -100 to 100");
    return;
  }
  for (const auto& [key, value] : v->as_object()) {
    std::int32_t token = 0;
    auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), token);
    if (ec != std::errc() || end != key.data() + key.size() || token < 0) {
      f.fail("logit_bias", "has the key '" + std::string(key) + "', which is not a token id");
      return;
    }
    if (!value.is_number() || value.to_number<double>() < -100 || value.to_number<double>() > 100) {
      f.fail("logit_bias", "values must be numbers from -100 to 100");
      return;
    }
    bias[token] = static_cast<float>(value.to_number<double>());
  }
}

// The fields every completion request shares. OpenAI's defaults: temperature 1, top_p 1, no
// top-k or min-p.
GenerationRequest readGeneration(Fields& f, bool chat) {
  GenerationRequest g;
  auto& s = g.sampling;
  s.temperature = 1.0f;
  s.topK = 0;
  s.topP = 1.0f;
  s.minP = 0.0f;
  if (auto model = f.string("model")) {
    g.model = *model;
  }
  if (auto n = f.integer("n", 1, 1000); n && *n != 1) {
    f.fail("n", "must be 1: this server returns one choice per request (send several requests)");
  }
  auto maxTokens = f.integer("max_tokens", 1, 1 << 30);
  if (chat) {
    if (auto m = f.integer("max_completion_tokens", 1, 1 << 30)) {
      maxTokens = m;
    }
  }
  if (maxTokens) {
    g.maxTokens = static_cast<std::uint32_t>(*maxTokens);
  }
  if (auto t = f.number("temperature", 0, 2)) {
    s.temperature = static_cast<float>(*t);
  }
  if (const auto* v = f.get("top_p");
      v != nullptr && v->is_number() && v->to_number<double>() <= 0) {
    f.fail("top_p", "must be more than 0 and at most 1");
  }
  if (auto p = f.number("top_p", 0, 1)) {
    s.topP = static_cast<float>(*p);
  }
  if (auto seed = f.integer("seed", INT64_MIN, INT64_MAX)) {
    s.seed = static_cast<std::uint64_t>(*seed);
  } else {
    RAND_bytes(reinterpret_cast<unsigned char*>(&s.seed), sizeof s.seed);
  }
  readStops(f, g.stops);
  if (auto p = f.number("presence_penalty", -2, 2)) {
    s.presencePenalty = static_cast<float>(*p);
  }
  if (auto p = f.number("frequency_penalty", -2, 2)) {
    s.frequencyPenalty = static_cast<float>(*p);
  }
  readLogitBias(f, g.logitBias);
  if (chat) {
    auto logprobs = f.boolean("logprobs");
    auto top = f.integer("top_logprobs", 0, 20);
    if (top && !logprobs.value_or(false)) {
      f.fail("top_logprobs", "needs \"logprobs\": true");
    }
    if (logprobs.value_or(false)) {
      g.topLogprobs = static_cast<int>(top.value_or(0));
    }
  } else if (auto logprobs = f.integer("logprobs", 0, 5)) {
    g.topLogprobs = static_cast<int>(*logprobs);
  }
  g.tokensAsIds = f.boolean("return_tokens_as_token_ids").value_or(false);
  g.ignoreEos = f.boolean("ignore_eos").value_or(false);
  g.stream = f.boolean("stream").value_or(false);
  if (const auto* options = f.get("stream_options")) {
    const auto* usage =
        options->is_object() ? options->as_object().if_contains("include_usage") : nullptr;
    if (!options->is_object() || (usage != nullptr && !usage->is_bool())) {
      f.fail("stream_options", "must be an object such as {\"include_usage\": true}");
    } else if (usage != nullptr) {
      g.includeUsage = usage->as_bool();
    }
  }
  if (auto user = f.string("user")) {
    g.user = *user;
  }
  if (auto k = f.integer("top_k", -1, 1 << 20)) {
    s.topK = static_cast<int>(std::max<std::int64_t>(*k, 0));
  }
  if (auto p = f.number("min_p", 0, 1)) {
    s.minP = static_cast<float>(*p);
  }
  if (const auto* v = f.get("repetition_penalty");
      v != nullptr && v->is_number() && v->to_number<double>() <= 0) {
    f.fail("repetition_penalty", "must be more than 0 and at most 2");
  }
  if (auto r = f.number("repetition_penalty", 0, 2)) {
    s.repeatPenalty = static_cast<float>(*r);
  }
  if (const auto* format = f.get("response_format")) {
    const auto* type = format->is_object() ? format->as_object().if_contains("type") : nullptr;
    if (type == nullptr || !type->is_string()) {
      f.fail("response_format", "must be an object with a \"type\"");
    } else if (type->as_string() == "json_object") {
      g.schema = JsonSchema::anyObject();
    } else if (type->as_string() == "json_schema") {
      const auto* spec = format->as_object().if_contains("json_schema");
      const auto* schema =
          spec != nullptr && spec->is_object() ? spec->as_object().if_contains("schema") : nullptr;
      if (schema == nullptr) {
        f.fail("response_format",
               "json_schema must be {\"name\": ..., \"schema\": {...}} with the schema");
      } else {
        auto compiled = JsonSchema::compile(*schema);
        if (auto* problem = std::get_if<std::string>(&compiled)) {
          f.fail("response_format", *problem);
        } else {
          g.schema = std::get<0>(compiled);
        }
      }
    } else if (type->as_string() != "text") {
      f.fail("response_format", "type '" + std::string(type->as_string()) +
                                    "' is not one of text, json_object and json_schema");
    }
  }
  return g;
}

// A message's content: a string, or a list of {"type":"text","text":...} parts (joined with
// newlines).
std::optional<std::string> readContent(const boost::json::value& content, std::string& problem) {
  if (content.is_string()) {
    return std::string(content.as_string());
  }
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content.as_array()) {
      const auto* object = part.if_object();
      const auto* type = object != nullptr ? object->if_contains("type") : nullptr;
      const auto* text = object != nullptr ? object->if_contains("text") : nullptr;
      if (type == nullptr || !type->is_string() || type->as_string() != "text" || text == nullptr ||
          !text->is_string()) {
        problem =
            "content parts must be {\"type\": \"text\", \"text\": \"...\"} (this model "
            "reads text only)";
        return std::nullopt;
      }
      if (!out.empty()) {
        out += '\n';
      }
      out += text->as_string();
    }
    return out;
  }
  problem = "content must be a string or a list of text parts";
  return std::nullopt;
}

// "tools" and "tool_choice".
void readTools(Fields& f, ChatRequest& request) {
  if (const auto* tools = f.get("tools")) {
    if (!tools->is_array()) {
      f.fail("tools", "must be a list of {\"type\": \"function\", \"function\": {...}}");
      return;
    }
    std::size_t index = 0;
    for (const auto& tool : tools->as_array()) {
      const std::string param = "tools[" + std::to_string(index++) + "]";
      const auto* object = tool.if_object();
      const auto* type = object != nullptr ? object->if_contains("type") : nullptr;
      const auto* function = object != nullptr ? object->if_contains("function") : nullptr;
      if (type != nullptr && !(type->is_string() && type->as_string() == "function")) {
        f.fail(param + ".type", "must be \"function\" (the only kind of tool)");
        return;
      }
      if (function == nullptr || !function->is_object()) {
        f.fail(param + ".function", "must be an object with the function's \"name\"");
        return;
      }
      const auto& fn = function->as_object();
      const auto* name = fn.if_contains("name");
      const bool nameOk =
          name != nullptr && name->is_string() && !name->as_string().empty() &&
          name->as_string().size() <= 64 &&
          std::all_of(name->as_string().begin(), name->as_string().end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
          });
      if (!nameOk) {
        f.fail(param + ".function.name", "must be 1 to 64 letters, digits, underscores and dashes");
        return;
      }
      const auto* description = fn.if_contains("description");
      if (description != nullptr && !description->is_string()) {
        f.fail(param + ".function.description", "must be a string");
        return;
      }
      const auto* parameters = fn.if_contains("parameters");
      if (parameters != nullptr && !parameters->is_object()) {
        f.fail(param + ".function.parameters", "must be a JSON schema object");
        return;
      }
      request.tools.push_back(boost::json::object{{"type", "function"}, {"function", fn}});
    }
  }
  const auto* choice = f.get("tool_choice");
  if (choice == nullptr) {
    return;
  }
  if (choice->is_string() && (choice->as_string() == "auto" || choice->as_string() == "none" ||
                              choice->as_string() == "required")) {
    request.toolChoice = choice->as_string() == "auto"   ? ToolChoice::Auto
                         : choice->as_string() == "none" ? ToolChoice::None
                                                         : ToolChoice::Required;
  } else if (const auto* object = choice->if_object()) {
    const auto* function = object->if_contains("function");
    const auto* name = function != nullptr && function->is_object()
                           ? function->as_object().if_contains("name")
                           : nullptr;
    if (name == nullptr || !name->is_string()) {
      f.fail("tool_choice",
             "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
             "\"function\": {\"name\": ...}}");
      return;
    }
    request.toolChoice = ToolChoice::Named;
    request.toolName = name->as_string();
    const bool known = std::any_of(request.tools.begin(), request.tools.end(), [&](const auto& t) {
      return t.at("function").at("name") == *name;
    });
    if (!known) {
      f.fail("tool_choice",
             "names the function '" + request.toolName + "', which is not in 'tools'");
      return;
    }
  } else {
    f.fail("tool_choice",
           "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
           "\"function\": {\"name\": ...}}");
    return;
  }
  if (request.toolChoice == ToolChoice::Required && request.tools.empty()) {
    f.fail("tool_choice", "is \"required\" but no 'tools' are given");
  }
}

// An assistant message's "tool_calls": [{"id", "type": "function", "function": {"name",
// "arguments"}}].
bool readToolCalls(Fields& f, const boost::json::value& calls, const std::string& param,
                   std::vector<text::ToolCall>& out) {
  if (!calls.is_array()) {
    f.fail(param, "must be a list of tool calls");
    return false;
  }
  std::size_t index = 0;
  for (const auto& call : calls.as_array()) {
    const std::string at = param + "[" + std::to_string(index++) + "]";
    const auto* object = call.if_object();
    const auto* function = object != nullptr ? object->if_contains("function") : nullptr;
    const auto* fn = function != nullptr ? function->if_object() : nullptr;
    const auto* name = fn != nullptr ? fn->if_contains("name") : nullptr;
    const auto* arguments = fn != nullptr ? fn->if_contains("arguments") : nullptr;
    if (name == nullptr || !name->is_string() || arguments == nullptr || !arguments->is_string()) {
      f.fail(at,
             "must be {\"id\": ..., \"type\": \"function\", \"function\": {\"name\": ..., "
             "\"arguments\": \"JSON text\"}}");
      return false;
    }
    const auto* id = object->if_contains("id");
    out.push_back({.id = id != nullptr && id->is_string() ? std::string(id->as_string()) : "",
                   .name = std::string(name->as_string()),
                   .arguments = std::string(arguments->as_string())});
  }
  return true;
}

std::optional<text::Message> readMessage(Fields& f, const boost::json::value& item,
                                         const std::string& param) {
  const auto* m = item.if_object();
  const auto* role = m != nullptr ? m->if_contains("role") : nullptr;
  if (role == nullptr || !role->is_string()) {
    f.fail(param, "must be an object with a \"role\"");
    return std::nullopt;
  }
  text::Message message{.role = std::string(role->as_string())};
  if (message.role == "developer") {
    message.role = "system";  // the newer name of the system role
  }
  const std::string& name = message.role;
  if (name != "system" && name != "user" && name != "assistant" && name != "tool") {
    f.fail(param + ".role",
           "'" + name + "' is not supported; use system, developer, user, assistant or tool");
    return std::nullopt;
  }
  const auto* calls = m->if_contains("tool_calls");
  const bool hasCalls = calls != nullptr && !calls->is_null();
  if (hasCalls && name != "assistant") {
    f.fail(param + ".tool_calls", "is for assistant messages only");
    return std::nullopt;
  }
  if (hasCalls && !readToolCalls(f, *calls, param + ".tool_calls", message.toolCalls)) {
    return std::nullopt;
  }
  if (name == "tool") {
    const auto* id = m->if_contains("tool_call_id");
    if (id == nullptr || !id->is_string()) {
      f.fail(param + ".tool_call_id", "is required: the id of the call this result answers");
      return std::nullopt;
    }
    message.toolCallId = id->as_string();
  }
  const auto* content = m->if_contains("content");
  if (content != nullptr && !content->is_null()) {
    std::string problem;
    auto read = readContent(*content, problem);
    if (!read) {
      f.fail(param + ".content", problem);
      return std::nullopt;
    }
    message.content = std::move(*read);
  } else if (name != "assistant") {
    f.fail(param + ".content", "is required");
    return std::nullopt;
  }
  return message;
}

}  // namespace

boost::json::object errorBody(const ApiError& error) {
  boost::json::object inner{{"message", error.message}, {"type", error.type}};
  inner["param"] =
      error.param.empty() ? boost::json::value(nullptr) : boost::json::value(error.param);
  inner["code"] = error.code.empty() ? boost::json::value(nullptr) : boost::json::value(error.code);
  return {{"error", inner}};
}

std::variant<boost::json::object, ApiError> parseBody(std::string_view body) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec) {
    return ApiError{.message = "the request body is not valid JSON: " + ec.message()};
  }
  if (!value.is_object()) {
    return ApiError{.message = "the request body must be a JSON object"};
  }
  return std::move(value.as_object());
}

namespace {

// A list of token ids, or nullopt when an item is not one.
std::optional<std::vector<std::int32_t>> tokens(const boost::json::array& array) {
  std::vector<std::int32_t> out;
  for (const auto& item : array) {
    if (!item.is_int64() || item.as_int64() < 0 || item.as_int64() > INT32_MAX) {
      return std::nullopt;
    }
    out.push_back(static_cast<std::int32_t>(item.as_int64()));
  }
  return out;
}

// Reads a JSON object body with `read(fields, request)`; the first problem found is the answer.
template <typename Request, typename Read>
std::variant<Request, ApiError> readRequest(std::string_view body, Read read) {
  auto parsed = parseBody(body);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    return *error;
  }
  Fields f(std::get<boost::json::object>(parsed));
  Request request;
  read(f, request);
  if (f.problem_) {
    return *f.problem_;
  }
  return request;
}

}  // namespace

std::variant<ChatRequest, ApiError> parseChatRequest(std::string_view body) {
  return readRequest<ChatRequest>(body, [](Fields& f, ChatRequest& request) {
    request.generation = readGeneration(f, true);
    if (f.get("functions") != nullptr) {
      f.fail("functions", "is the deprecated form of 'tools': send 'tools' instead");
    }
    readTools(f, request);
    const auto* messages = f.get("messages");
    if (messages == nullptr) {
      f.fail("messages", "is required");
    } else if (!messages->is_array() || messages->as_array().empty()) {
      f.fail("messages", "must be a non-empty list of messages");
    } else {
      std::size_t index = 0;
      for (const auto& item : messages->as_array()) {
        auto message = readMessage(f, item, "messages[" + std::to_string(index++) + "]");
        if (!message) {
          break;
        }
        request.messages.push_back(std::move(*message));
      }
    }
  });
}

std::variant<EmbeddingRequest, ApiError> parseEmbeddingRequest(std::string_view body) {
  return readRequest<EmbeddingRequest>(body, [](Fields& f, EmbeddingRequest& request) {
    request.model = f.string("model").value_or("");
    request.user = f.string("user").value_or("");
    request.dimensions = f.integer("dimensions", 1, 1 << 20);
    if (auto format = f.string("encoding_format")) {
      if (*format != "float" && *format != "base64") {
        f.fail("encoding_format", "must be \"float\" or \"base64\", not \"" + *format + "\"");
      }
      request.base64 = *format == "base64";
    }
    const auto* input = f.get("input");
    constexpr std::size_t kMaxInputs = 256;
    const std::string shape =
        "must be a string, a list of strings, a list of token ids or a list of such lists (at "
        "most 256), none empty";
    if (input == nullptr) {
      f.fail("input", "is required");
    } else if (input->is_string()) {
      request.inputs.emplace_back(std::string(input->as_string()));
    } else if (input->is_array() && !input->as_array().empty() &&
               input->as_array().size() <= kMaxInputs) {
      const auto& array = input->as_array();
      if (auto ids = tokens(array); ids && array.front().is_int64()) {
        request.inputs.emplace_back(std::move(*ids));
      } else {
        for (const auto& item : array) {
          if (item.is_string()) {
            request.inputs.emplace_back(std::string(item.as_string()));
          } else if (auto each = item.is_array() ? tokens(item.as_array()) : std::nullopt) {
            request.inputs.emplace_back(std::move(*each));
          } else {
            f.fail("input", shape);
            break;
          }
        }
      }
    } else {
      f.fail("input", shape);
    }
    for (const auto& one : request.inputs) {
      const bool empty = std::visit([](const auto& v) { return v.empty(); }, one);
      if (empty) {
        f.fail("input", shape);
      }
    }
  });
}

std::variant<CompletionRequest, ApiError> parseCompletionRequest(std::string_view body) {
  return readRequest<CompletionRequest>(body, [](Fields& f, CompletionRequest& request) {
    request.generation = readGeneration(f, false);
    request.echo = f.boolean("echo").value_or(false);
    if (f.get("suffix") != nullptr) {
      f.fail("suffix", "is not supported by this model");
    }
    const auto* prompt = f.get("prompt");
    if (prompt == nullptr) {
      f.fail("prompt", "is required");
    } else if (prompt->is_string()) {
      request.prompt = std::string(prompt->as_string());
    } else if (prompt->is_array() && prompt->as_array().size() == 1 &&
               prompt->as_array()[0].is_string()) {
      request.prompt = std::string(prompt->as_array()[0].as_string());
    } else if (prompt->is_array() && prompt->as_array().size() == 1 &&
               prompt->as_array()[0].is_array() && tokens(prompt->as_array()[0].as_array())) {
      request.prompt = *tokens(prompt->as_array()[0].as_array());
    } else if (prompt->is_array() && !prompt->as_array().empty() && tokens(prompt->as_array())) {
      request.prompt = *tokens(prompt->as_array());
    } else {
      f.fail("prompt",
             "must be a string or a list of token ids (one prompt per request: send several "
             "requests for several prompts)");
    }
  });
}

std::string newId(std::string_view prefix) {
  std::array<unsigned char, 12> bytes{};
  RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  id += '-';
  for (auto b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

bool blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// The length of the longest end of `text` that starts `tag`.
std::size_t partialTag(std::string_view text, std::string_view tag) {
  for (std::size_t n = std::min(tag.size() - 1, text.size()); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) {
      return n;
    }
  }
  return 0;
}

}  // namespace

void ReasoningSplitter::answer(std::string text, Parts& out) {
  if (trimAnswer_) {
    auto start = text.find_first_not_of('\n');
    text.erase(0, start == std::string::npos ? text.size() : start);
    trimAnswer_ = text.empty();
  }
  out.content += text;
}

ReasoningSplitter::Parts ReasoningSplitter::push(std::string_view text) {
  pending_ += text;
  Parts out;
  while (!answering_) {
    std::string_view tag = thinking_ ? kThinkClose : kThinkOpen;
    auto at = pending_.find(tag);
    if (at != std::string::npos) {
      if (thinking_) {
        out.reasoning += pending_.substr(0, at);
        pending_.erase(0, at + tag.size());
        thinking_ = false;
        answering_ = true;
        trimAnswer_ = true;  // the answer follows the tag after a blank line
      } else if (blank(std::string_view(pending_).substr(0, at))) {
        pending_.erase(0, at + tag.size());
        thinking_ = true;
      } else {
        answering_ = true;  // an answer without reasoning: the rest is plain text
      }
      continue;
    }
    std::size_t ready = pending_.size() - partialTag(pending_, tag);
    if (thinking_) {
      out.reasoning += pending_.substr(0, ready);
      pending_.erase(0, ready);
      return out;
    }
    if (!blank(std::string_view(pending_).substr(0, ready))) {
      answering_ = true;
      continue;
    }
    return out;  // only blanks so far: a <think> may still come
  }
  answer(std::exchange(pending_, {}), out);
  return out;
}

ReasoningSplitter::Parts ReasoningSplitter::flush() {
  Parts out;
  if (thinking_) {
    out.reasoning = std::exchange(pending_, {});
  } else {
    answer(std::exchange(pending_, {}), out);
  }
  return out;
}

std::variant<std::shared_ptr<const JsonSchema>, ApiError> toolCallSchema(
    const ChatRequest& request, text::ChatTemplate chatTemplate) {
  const std::string argumentsKey =
      chatTemplate == text::ChatTemplate::Llama3 ? "parameters" : "arguments";
  boost::json::value arguments = boost::json::object{{"type", "object"}};
  boost::json::value name;
  // One function to call: its name and parameters are fixed. Several: any of the names, with
  // object arguments (a schema cannot tell the functions' arguments apart by their first byte).
  std::string function = request.toolName;
  if (request.toolChoice != ToolChoice::Named && request.tools.size() == 1) {
    function = request.tools.front().at("function").at("name").as_string();
  }
  if (!function.empty()) {
    name = boost::json::object{{"const", function}};
    for (const auto& tool : request.tools) {
      const auto& fn = tool.at("function").as_object();
      if (fn.at("name") == boost::json::value(function) && fn.contains("parameters")) {
        arguments = fn.at("parameters");
      }
    }
  } else {
    boost::json::array names;
    for (const auto& tool : request.tools) {
      names.push_back(tool.at("function").at("name"));
    }
    name = boost::json::object{{"enum", names}};
  }
  boost::json::object schema{{"type", "object"},
                             {"properties", {{"name", name}, {argumentsKey, arguments}}},
                             {"required", {"name", argumentsKey}},
                             {"additionalProperties", false}};
  auto compiled = JsonSchema::compile(schema);
  if (auto* problem = std::get_if<std::string>(&compiled)) {
    return ApiError{.message = "the parameters of the function '" + function +
                               "' (tool_choice) cannot be followed by constrained decoding: " +
                               *problem + "; use tool_choice \"auto\" for it",
                    .param = "tools"};
  }
  const auto& inner = *std::get<std::shared_ptr<const JsonSchema>>(compiled);
  if (chatTemplate == text::ChatTemplate::ChatMl) {
    return JsonSchema::framed(inner, "<tool_call>\n", "\n</tool_call>");
  }
  return JsonSchema::framed(inner, "", "");
}

std::string newCallId() {
  auto id = newId("call");
  id[4] = '_';  // OpenAI's form: call_...
  return id;
}

}  // namespace aibox::server
