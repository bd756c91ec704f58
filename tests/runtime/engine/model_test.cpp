// Loading checks, errors, and generation behaviour of the engine on generated models.
#include "runtime/engine/model.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>

#include "runtime/engine/test_model.hpp"
#include "tests/support/files.hpp"
#include "tests/support/gguf_writer.hpp"

namespace aibox::engine {
namespace {

class ModelFiles : public testing::Test {
 protected:
  std::filesystem::path write(const std::string& name, TestModelSpec spec = {}) {
    spec.embedding = 256;
    spec.feedForward = 512;
    spec.vocabulary = 400;
    auto path = dir_.path() / name;
    writeTestModel(spec, path);
    return path;
  }

  static std::string load(const std::filesystem::path& path) {
    auto file = GgufFile::open(path);
    if (auto* error = std::get_if<Error>(&file)) {
      return error->message;
    }
    auto model = Model::load(std::get<0>(file));
    if (auto* error = std::get_if<Error>(&model)) {
      return error->message;
    }
    return "loaded";
  }

  static std::unique_ptr<Model> open(const std::filesystem::path& path) {
    auto file = GgufFile::open(path);
    EXPECT_TRUE(std::holds_alternative<std::shared_ptr<const GgufFile>>(file));
    auto model = Model::load(std::get<0>(file));
    EXPECT_TRUE(std::holds_alternative<std::unique_ptr<Model>>(model))
        << std::get<Error>(model).message;
    return std::move(std::get<0>(model));
  }

  // Rewrites bytes of a model file in place: `patch` gets the whole file.
  static void edit(const std::filesystem::path& path,
                   const std::function<void(std::string&)>& patch) {
    std::string bytes = test::readFile(path);
    patch(bytes);
    test::writeFile(path, bytes);
  }

  test::TempDir dir_;
};

TEST_F(ModelFiles, GeneratedModelsOfEveryTypeLoad) {
  for (std::string arch : {"llama", "qwen2"}) {
    for (std::string type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"}) {
      TestModelSpec spec;
      spec.architecture = arch;
      spec.type = type;
      EXPECT_EQ(load(write(arch + type + ".gguf", spec)), "loaded") << arch << " " << type;
    }
  }
}

TEST_F(ModelFiles, AnUnsupportedArchitectureListsTheSupportedOnes) {
  auto path = dir_.path() / "mamba.gguf";
  test::writeFile(path, test::GgufWriter().string("general.architecture", "mamba").bytes());
  std::string message = load(path);
  EXPECT_NE(message.find("'mamba'"), std::string::npos) << message;
  EXPECT_NE(message.find("llama, qwen2"), std::string::npos) << message;
  EXPECT_NE(message.find("Q4_K"), std::string::npos) << message;
}

TEST_F(ModelFiles, AnUnsupportedTensorTypeListsTheSupportedOnes) {
  auto path = write("q5k.gguf");
  // blk.0.attn_q.weight: name, 2 dims, then the type; Q5_K (13) takes fewer bytes than
  // Q8_0, so the header stays valid and only the engine can object.
  edit(path, [](std::string& bytes) {
    std::string name = "blk.0.attn_q.weight";
    auto at = bytes.find(name);
    ASSERT_NE(at, std::string::npos);
    std::uint32_t q5k = 13;
    std::memcpy(&bytes[at + name.size() + 4 + 16], &q5k, 4);
  });
  std::string message = load(path);
  EXPECT_NE(message.find("Q5_K"), std::string::npos) << message;
  EXPECT_NE(message.find("F32, F16"), std::string::npos) << message;
}

TEST_F(ModelFiles, AMissingTensorIsNamed) {
  auto path = write("missing.gguf");
  edit(path, [](std::string& bytes) {
    auto at = bytes.find("blk.1.ffn_up.weight");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 18] = 'X';
  });
  EXPECT_NE(load(path).find("no tensor blk.1.ffn_up.weight"), std::string::npos) << load(path);
}

TEST_F(ModelFiles, AShapeThatContradictsTheMetadataIsRefused) {
  auto path = write("shape.gguf");
  edit(path, [](std::string& bytes) {
    std::string key = "llama.feed_forward_length";
    auto at = bytes.find(key);
    ASSERT_NE(at, std::string::npos);
    std::uint32_t value = 1024;
    std::memcpy(&bytes[at + key.size() + 4], &value, 4);  // after the value type
  });
  std::string message = load(path);
  EXPECT_NE(message.find("metadata implies"), std::string::npos) << message;
}

TEST_F(ModelFiles, TruncatedAndCorruptFilesAreRefusedWithoutACrash) {
  std::string whole = test::readFile(write("whole.gguf"));
  auto path = dir_.path() / "broken.gguf";
  for (std::size_t size :
       {std::size_t{0}, std::size_t{3}, std::size_t{24}, whole.size() / 3, whole.size() - 1}) {
    test::writeFile(path, whole.substr(0, size));
    EXPECT_NE(load(path), "loaded") << size;
  }
  // A tensor count of 2^62 and a string length past the end.
  std::string huge = whole;
  std::uint64_t count = 1ull << 62;
  std::memcpy(&huge[8], &count, 8);
  test::writeFile(path, huge);
  EXPECT_NE(load(path), "loaded");
  std::string longString = whole;
  std::memcpy(&longString[24], &count, 8);
  test::writeFile(path, longString);
  EXPECT_NE(load(path), "loaded");
}

TEST_F(ModelFiles, APromptLongerThanTheContextNamesBothNumbers) {
  auto model = open(write("ctx.gguf"));
  auto backend = makeCpuBackend(1);
  Forward forward(*model, *backend);
  KvCache cache(model->config(), 16);
  std::vector<Token> prompt(20, 5);
  SequenceInput tooLong{&cache, prompt, true};
  auto result = forward.run(std::span<const SequenceInput>(&tooLong, 1));
  ASSERT_TRUE(std::holds_alternative<Error>(result));
  EXPECT_NE(std::get<Error>(result).message.find("20 tokens"), std::string::npos);
  EXPECT_NE(std::get<Error>(result).message.find("holds 16"), std::string::npos);
  EXPECT_EQ(cache.used(), 0u);

  Token token = 5;
  SequenceInput twice[] = {{&cache, std::span<const Token>(&token, 1), true},
                           {&cache, std::span<const Token>(&token, 1), true}};
  auto shared = forward.run(twice);
  ASSERT_TRUE(std::holds_alternative<Error>(shared));
  EXPECT_NE(std::get<Error>(shared).message.find("share one KV cache"), std::string::npos);
  EXPECT_EQ(cache.used(), 0u);

  Token outside = static_cast<Token>(model->config().vocabulary);
  SequenceInput input{&cache, std::span<const Token>(&outside, 1), true};
  auto run = forward.run(std::span<const SequenceInput>(&input, 1));
  ASSERT_TRUE(std::holds_alternative<Error>(run));
  EXPECT_NE(std::get<Error>(run).message.find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace aibox::engine
