#include "runtime/engine/test_model.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

#include "runtime/engine/gguf_writer.hpp"
#include "runtime/text/tokenizer.hpp"

namespace aibox::engine {
namespace {

using kernels::Type;

struct TypeName {
  std::string_view name;
  Type type;
  std::uint32_t fileType;  // general.file_type (llama_ftype)
};

constexpr TypeName kTypes[] = {
    {"f32", Type::F32, 0},    {"f16", Type::F16, 1},      {"bf16", Type::BF16, 32},
    {"q8_0", Type::Q8_0, 7},  {"q4_0", Type::Q4_0, 2},    {"q4_k", Type::Q4_K, 15},
    {"q6_k", Type::Q6_K, 18}, {"q4_k_m", Type::Q4_K, 15},
};

const TypeName* findType(std::string_view name) {
  for (const auto& type : kTypes) {
    if (type.name == name) {
      return &type;
    }
  }
  return nullptr;
}

// Normal deviates from a 64-bit generator by Box-Muller, so the same seed gives the same
// weights with any standard library.
class Normal {
 public:
  explicit Normal(std::uint64_t seed) : random_(seed) {}
  float operator()() {
    double u1 = (static_cast<double>(random_() >> 11) + 1.0) / 9007199254740993.0;
    double u2 = static_cast<double>(random_() >> 11) / 9007199254740992.0;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  std::mt19937_64 random_;
};

std::string quantized(Type type, const std::vector<float>& values, std::size_t cols) {
  std::size_t rows = values.size() / cols;
  std::size_t rowBytes = kernels::rowBytes(type, cols);
  std::string out(rowBytes * rows, '\0');
  for (std::size_t r = 0; r < rows; ++r) {
    kernels::quantizeRow(type, values.data() + r * cols, out.data() + r * rowBytes, cols);
  }
  return out;
}

// Our own short templates that carry each family's markers and tool format, so the engine
// picks the same built-in renderer (with tools) as for Qwen2.5 and Llama 3.1, and a Jinja
// renderer (llama.cpp's) writes the same text.
const char* kChatMlTemplate =
    R"j({%- if tools %}{{- '<|im_start|>system\n' }}{%- if messages[0]['role'] == 'system' %})j"
    R"j({{- messages[0]['content'] }}{%- endif %}{{- '\n\n# Tools\n\nYou may call one or more )j"
    R"j(functions to assist with the user query.\n\nYou are provided with function signatures )j"
    R"j(within <tools></tools> XML tags:\n<tools>' }}{%- for tool in tools %}{{- '\n' }})j"
    R"j({{- tool | tojson }}{%- endfor %}{{- '\n</tools>\n\nFor each function call, return a )j"
    R"j(json object with function name and arguments within <tool_call></tool_call> XML tags:)j"
    R"j(\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>)j"
    R"j(<|im_end|>\n' }}{%- elif messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + )j"
    R"j(messages[0]['content'] + '<|im_end|>\n' }}{%- endif %}{%- for message in messages %})j"
    R"j({%- if message.role == 'user' or (message.role == 'system' and not loop.first) or )j"
    R"j((message.role == 'assistant' and not message.tool_calls) %}{{- '<|im_start|>' + )j"
    R"j(message.role + '\n' + message.content + '<|im_end|>\n' }}{%- elif message.role == )j"
    R"j('assistant' %}{{- '<|im_start|>assistant' }}{%- if message.content %}{{- '\n' + )j"
    R"j(message.content }}{%- endif %}{%- for call in message.tool_calls %}{%- if call.function )j"
    R"j(is defined %}{%- set call = call.function %}{%- endif %}{{- '\n<tool_call>\n{"name": "' )j"
    R"j(+ call.name + '", "arguments": ' }}{{- call.arguments | tojson }}{{- '}\n</tool_call>' }})j"
    R"j({%- endfor %}{{- '<|im_end|>\n' }}{%- elif message.role == 'tool' %}{%- if loop.first or )j"
    R"j(messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %})j"
    R"j({{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}{%- if loop.last )j"
    R"j(or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %})j"
    R"j({%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }})j"
    R"j({%- endif %})j";
const char* kLlama3Template =
    R"j({{- bos_token }}{%- if not tools is defined %}{%- set tools = none %}{%- endif %})j"
    R"j({%- set date_string = "26 Jul 2024" %}{%- if messages[0]['role'] == 'system' %})j"
    R"j({%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] )j"
    R"j(%}{%- else %}{%- set system_message = '' %}{%- endif %})j"
    R"j({{- '<|start_header_id|>system<|end_header_id|>\n\n' }}{%- if tools is not none %})j"
    R"j({{- 'Environment: ipython\n' }}{%- endif %}{{- 'Cutting Knowledge Date: December 2023\n' )j"
    R"j(}}{{- 'Today Date: ' + date_string + '\n\n' }}{{- system_message }}{{- '<|eot_id|>' }})j"
    R"j({%- if tools is not none %}{%- set first_user_message = messages[0]['content'] | trim %})j"
    R"j({%- set messages = messages[1:] %}{{- '<|start_header_id|>user<|end_header_id|>\n\n' }})j"
    R"j({{- 'Given the following functions, please respond with a JSON for a function call with )j"
    R"j(its proper arguments that best answers the given prompt.\n\nRespond in the format )j"
    R"j({"name": function name, "parameters": dictionary of argument name and its value}.Do not )j"
    R"j(use variables.\n\n' }}{%- for t in tools %}{{- t | tojson(indent=4) }}{{- '\n\n' }})j"
    R"j({%- endfor %}{{- first_user_message + '<|eot_id|>' }}{%- endif %}{%- for message in )j"
    R"j(messages %}{%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' )j"
    R"j(in message) %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + )j"
    R"j(message['content'] | trim + '<|eot_id|>' }}{%- elif 'tool_calls' in message %})j"
    R"j({%- set call = message.tool_calls[0].function %})j"
    R"j({{- '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "' + call.name + )j"
    R"j('", "parameters": ' }}{{- call.arguments | tojson }}{{- '}<|eot_id|>' }}{%- else %})j"
    R"j({{- '<|start_header_id|>ipython<|end_header_id|>\n\n' }}{{- message.content | tojson }})j"
    R"j({{- '<|eot_id|>' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %})j"
    R"j({{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %})j";

}  // namespace

std::string testModelTypes() {
  std::string names;
  for (const auto& type : kTypes) {
    names += (names.empty() ? "" : ", ") + std::string(type.name);
  }
  return names;
}

std::string validate(const TestModelSpec& spec) {
  if (spec.architecture != "llama" && spec.architecture != "qwen2") {
    return "--arch must be llama or qwen2";
  }
  const TypeName* type = findType(spec.type);
  if (type == nullptr) {
    return "--type must be one of " + testModelTypes();
  }
  if (!spec.pooling.empty() && spec.pooling != "mean" && spec.pooling != "cls" &&
      spec.pooling != "last") {
    return "--pooling must be mean, cls or last";
  }
  if (spec.layers == 0 || spec.layers > 256 || spec.heads == 0 || spec.kvHeads == 0 ||
      spec.heads % spec.kvHeads != 0 || spec.embedding % spec.heads != 0 ||
      (spec.embedding / spec.heads) % 2 != 0) {
    return "the sizes do not make a model: --layers 1..256, --heads a multiple of --kv-heads, "
           "--dim a multiple of --heads with an even head size";
  }
  if (spec.vocabulary < 300 || spec.vocabulary > 65536) {
    return "--vocab must be between 300 and 65536";
  }
  if (spec.context < 16 || spec.context > (1u << 20)) {
    return "--context must be between 16 and 1048576";
  }
  std::uint32_t block = kernels::typeInfo(static_cast<std::uint32_t>(type->type))->blockElements;
  if (spec.type == "q4_k_m") {
    block = 256;
  }
  if (spec.embedding % block != 0 || spec.feedForward % block != 0 || spec.feedForward == 0) {
    return "--dim and --ff must be multiples of " + std::to_string(block) + " for " + spec.type;
  }
  return {};
}

void writeTestModel(const TestModelSpec& spec, const std::filesystem::path& path,
                    const std::function<void(std::size_t, std::size_t)>& progress) {
  if (auto problem = validate(spec); !problem.empty()) {
    throw std::runtime_error(problem);
  }
  const TypeName* typeName = findType(spec.type);
  bool llama = spec.architecture == "llama";
  const std::string& arch = spec.architecture;

  std::vector<std::string> specials =
      llama ? std::vector<std::string>{"<|begin_of_text|>", "<|end_of_text|>",
                                       "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
            : std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  auto trained = text::trainByteLevelBpe(text::builtinCorpus(), spec.vocabulary,
                                         llama ? "llama-bpe" : "qwen2", specials);
  if (const auto* error = std::get_if<text::Error>(&trained)) {
    throw std::runtime_error("cannot train the test vocabulary: " + error->message);
  }
  text::Vocabulary vocabulary = std::move(std::get<text::Vocabulary>(trained));
  auto idOf = [&vocabulary](const std::string& token) {
    for (std::size_t i = 0; i < vocabulary.tokens.size(); ++i) {
      if (vocabulary.tokens[i] == token) {
        return static_cast<std::uint32_t>(i);
      }
    }
    throw std::runtime_error("the trained vocabulary lacks " + token);
  };
  auto vocab = static_cast<std::uint32_t>(vocabulary.tokens.size());

  GgufBuilder gguf;
  gguf.string("general.architecture", arch);
  gguf.string("general.name", "aibox test " + arch + " " + spec.type);
  gguf.u32("general.file_type", typeName->fileType);
  gguf.u32("general.quantization_version", 2);
  gguf.u32(arch + ".block_count", spec.layers);
  gguf.u32(arch + ".context_length", spec.context);
  if (!spec.pooling.empty()) {
    gguf.u32(arch + ".pooling_type", spec.pooling == "mean" ? 1 : spec.pooling == "cls" ? 2 : 3);
  }
  gguf.u32(arch + ".embedding_length", spec.embedding);
  gguf.u32(arch + ".feed_forward_length", spec.feedForward);
  gguf.u32(arch + ".attention.head_count", spec.heads);
  gguf.u32(arch + ".attention.head_count_kv", spec.kvHeads);
  gguf.f32(arch + ".attention.layer_norm_rms_epsilon", llama ? 1e-5f : 1e-6f);
  gguf.f32(arch + ".rope.freq_base", llama ? 500000.0f : 1000000.0f);
  gguf.u32(arch + ".rope.dimension_count", spec.embedding / spec.heads);
  gguf.string("tokenizer.ggml.model", "gpt2");
  gguf.string("tokenizer.ggml.pre", vocabulary.pre);
  gguf.strings("tokenizer.ggml.tokens", vocabulary.tokens);
  std::vector<std::int32_t> types;
  for (auto type : vocabulary.types) {
    types.push_back(static_cast<std::int32_t>(type));
  }
  gguf.i32s("tokenizer.ggml.token_type", types);
  gguf.strings("tokenizer.ggml.merges", vocabulary.merges);
  if (llama) {
    gguf.u32("tokenizer.ggml.bos_token_id", idOf("<|begin_of_text|>"));
    gguf.u32("tokenizer.ggml.eos_token_id", idOf("<|eot_id|>"));
    gguf.boolean("tokenizer.ggml.add_bos_token", true);
    gguf.string("tokenizer.chat_template", kLlama3Template);
  } else {
    gguf.u32("tokenizer.ggml.bos_token_id", idOf("<|endoftext|>"));
    gguf.u32("tokenizer.ggml.eos_token_id", idOf("<|im_end|>"));
    gguf.u32("tokenizer.ggml.padding_token_id", idOf("<|endoftext|>"));
    gguf.boolean("tokenizer.ggml.add_bos_token", false);
    gguf.string("tokenizer.chat_template", kChatMlTemplate);
  }

  // Each tensor draws from its own generator, seeded from the spec's seed and its index, so
  // tensors can be produced in any order.
  std::uint64_t index = 0;
  auto matrix = [&](const std::string& name, std::uint32_t cols, std::uint32_t rows, Type type,
                    float scale) {
    std::uint64_t seed = spec.seed * 1000003u + index++;
    gguf.tensor(name, {cols, rows}, type, [seed, cols, rows, type, scale] {
      Normal normal(seed);
      std::vector<float> values(std::size_t{cols} * rows);
      for (auto& value : values) {
        value = normal() * scale;
      }
      return quantized(type, values, cols);
    });
  };
  auto vector = [&](const std::string& name, std::uint32_t size, float mean, float spread) {
    std::uint64_t seed = spec.seed * 1000003u + index++;
    gguf.tensor(name, {size}, Type::F32, [seed, size, mean, spread] {
      Normal normal(seed);
      std::vector<float> values(size);
      for (auto& value : values) {
        value = mean + normal() * spread;
      }
      return quantized(Type::F32, values, size);
    });
  };
  Type main = typeName->type;
  bool mix = spec.type == "q4_k_m";
  Type sensitive = mix ? Type::Q6_K : main;  // Q4_K_M keeps these in Q6_K
  std::uint32_t e = spec.embedding;
  std::uint32_t headDim = e / spec.heads;
  std::uint32_t kvWidth = spec.kvHeads * headDim;
  float inScale = 1.0f / std::sqrt(static_cast<float>(e));
  matrix("token_embd.weight", e, vocab, main, 1.0f);
  for (std::uint32_t i = 0; i < spec.layers; ++i) {
    std::string p = "blk." + std::to_string(i) + ".";
    vector(p + "attn_norm.weight", e, 1.0f, 0.1f);
    matrix(p + "attn_q.weight", e, e, main, inScale);
    matrix(p + "attn_k.weight", e, kvWidth, main, inScale);
    matrix(p + "attn_v.weight", e, kvWidth, sensitive, inScale);
    if (!llama) {
      vector(p + "attn_q.bias", e, 0.0f, 0.1f);
      vector(p + "attn_k.bias", kvWidth, 0.0f, 0.1f);
      vector(p + "attn_v.bias", kvWidth, 0.0f, 0.1f);
    }
    matrix(p + "attn_output.weight", e, e, main, inScale);
    vector(p + "ffn_norm.weight", e, 1.0f, 0.1f);
    matrix(p + "ffn_gate.weight", e, spec.feedForward, main, inScale);
    matrix(p + "ffn_up.weight", e, spec.feedForward, main, inScale);
    matrix(p + "ffn_down.weight", spec.feedForward, e, sensitive,
           1.0f / std::sqrt(static_cast<float>(spec.feedForward)));
  }
  vector("output_norm.weight", e, 1.0f, 0.1f);
  if (!spec.tiedOutput) {
    matrix("output.weight", e, vocab, sensitive, inScale * 4.0f);
  }
  gguf.write(path, progress);
}

}  // namespace aibox::engine
