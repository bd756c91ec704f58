// The byte-level BPE trainer that make-test-model uses: deterministic, exact sizes, vocabularies
// that load and round-trip any text.

#include <gtest/gtest.h>

#include <random>
#include <variant>

#include "runtime/text/tokenizer.hpp"
#include "tests/runtime/text/test_vocabularies.hpp"

namespace aibox::text {
namespace {

using testing::makeTokenizer;

const std::vector<std::string> kSpecials = {"<|begin_of_text|>", "<|eot_id|>", "<|im_start|>",
                                            "<|im_end|>", "<|endoftext|>"};

Vocabulary train(std::size_t size, std::string_view pre,
                 const std::vector<std::string>& specials = kSpecials) {
  auto vocabulary = trainByteLevelBpe(builtinCorpus(), size, pre, specials);
  if (const auto* error = std::get_if<Error>(&vocabulary)) {
    ADD_FAILURE() << error->message;
    return {};
  }
  return std::get<Vocabulary>(std::move(vocabulary));
}

std::string errorOf(std::size_t size, std::string_view pre,
                    const std::vector<std::string>& specials) {
  auto vocabulary = trainByteLevelBpe("some text", size, pre, specials);
  const auto* error = std::get_if<Error>(&vocabulary);
  return error ? error->message : "";
}

TEST(TrainerTest, TheBuiltinCorpusIsVaried) {
  const std::string_view corpus = builtinCorpus();
  EXPECT_GT(corpus.size(), 4000u);
  for (const std::string_view part : {"don't", "中文", "42", "#include", "def ", "😀", "\t"}) {
    EXPECT_NE(corpus.find(part), std::string_view::npos) << part;
  }
}

TEST(TrainerTest, TheVocabularyHasBytesThenMergesThenSpecials) {
  const Vocabulary vocabulary = train(1000, "llama-bpe");
  ASSERT_EQ(vocabulary.tokens.size(), 1000u);
  ASSERT_EQ(vocabulary.types.size(), 1000u);
  EXPECT_EQ(vocabulary.model, "gpt2");
  EXPECT_EQ(vocabulary.pre, "llama-bpe");
  EXPECT_EQ(vocabulary.tokens[' '], "Ġ");
  EXPECT_EQ(vocabulary.tokens['a'], "a");
  EXPECT_EQ(vocabulary.merges.size(), 1000u - 256u - kSpecials.size());
  for (std::size_t i = 0; i < kSpecials.size(); ++i) {
    EXPECT_EQ(vocabulary.tokens[995 + i], kSpecials[i]);
    EXPECT_EQ(vocabulary.types[995 + i], TokenType::Control);
  }
  EXPECT_EQ(vocabulary.types[994], TokenType::Normal);
  EXPECT_EQ(vocabulary.bos, 995);
  EXPECT_EQ(vocabulary.eos, 996);
  EXPECT_TRUE(vocabulary.addBos);
}

TEST(TrainerTest, TrainingIsDeterministic) {
  const Vocabulary first = train(1500, "qwen2");
  const Vocabulary second = train(1500, "qwen2");
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_EQ(first.merges, second.merges);
}

TEST(TrainerTest, ReservedTokensFillWhatTheCorpusCannot) {
  auto vocabulary = trainByteLevelBpe("abab abab", 300, "gpt2", {"<|endoftext|>"});
  ASSERT_TRUE(std::holds_alternative<Vocabulary>(vocabulary));
  const auto& tokens = std::get<Vocabulary>(vocabulary).tokens;
  ASSERT_EQ(tokens.size(), 300u);
  EXPECT_EQ(tokens[256], "ab");
  EXPECT_EQ(tokens[257], "abab");
  EXPECT_EQ(tokens[258], "Ġabab");
  EXPECT_EQ(tokens[259], "<|endoftext|>");
  EXPECT_EQ(tokens[260], "<|reserved_special_token_0|>");
  EXPECT_EQ(std::get<Vocabulary>(vocabulary).eos, 259);
}

TEST(TrainerTest, TrainedVocabulariesRoundTripAnyText) {
  std::mt19937 random(3);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string_view corpus = builtinCorpus();
  std::uniform_int_distribution<std::size_t> start(0, corpus.size() - 200);
  for (const char* pre : {"llama-bpe", "qwen2", "gpt2"}) {
    const Tokenizer tokenizer = makeTokenizer(train(2000, pre));
    const auto corpusTokens = tokenizer.encode(corpus, false, false);
    EXPECT_EQ(tokenizer.decode(corpusTokens), corpus);
    EXPECT_LT(corpusTokens.size(), corpus.size() / 3) << pre << ": the merges are used";
    for (int round = 0; round < 100; ++round) {
      std::string text(corpus.substr(start(random), 150));  // may cut a character in two
      for (int i = 0; i < 20; ++i) {
        text.push_back(static_cast<char>(byte(random)));
      }
      text += "<|im_start|>user\n";
      const auto tokens = tokenizer.encode(text, false, false);
      ASSERT_EQ(tokenizer.decode(tokens), text) << pre;
      ASSERT_EQ(tokenizer.encode(tokenizer.decode(tokens), false, false), tokens) << pre;
      const auto special = tokenizer.encode(text, true, true);
      ASSERT_EQ(tokenizer.decode(special, true), "<|begin_of_text|>" + text) << pre;
    }
  }
}

TEST(TrainerTest, SpecialTokensOfATrainedVocabularyParse) {
  const Tokenizer tokenizer = makeTokenizer(train(1000, "qwen2"));
  const auto tokens = tokenizer.encode("<|im_start|>user\nhi<|im_end|>", false, true);
  ASSERT_GE(tokens.size(), 3u);
  EXPECT_EQ(tokens.front(), 997);
  EXPECT_EQ(tokens.back(), 998);
  EXPECT_TRUE(tokenizer.isEndOfGeneration(998));
  EXPECT_TRUE(tokenizer.isEndOfGeneration(996));
  EXPECT_FALSE(tokenizer.isEndOfGeneration(997));
}

TEST(TrainerTest, BadRequestsAreErrors) {
  EXPECT_NE(errorOf(1000, "falcon", {}).find("'falcon'"), std::string::npos);
  EXPECT_NE(errorOf(1000, "qwen2", {"<a>", "<a>"}).find("distinct"), std::string::npos);
  EXPECT_NE(errorOf(1000, "qwen2", {""}).find("not empty"), std::string::npos);
  EXPECT_NE(errorOf(257, "qwen2", {"<a>", "<b>"}).find("257"), std::string::npos);
}

}  // namespace
}  // namespace aibox::text
