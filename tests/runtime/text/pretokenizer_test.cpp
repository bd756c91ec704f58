// The pre-tokenizer splits, checked against what the models' regexes give (the expected pieces
// were produced by the regexes themselves).

#include "runtime/text/pretokenizer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace aibox::text {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(PreTokenizer preTokenizer, std::string_view text) {
  std::vector<std::string_view> words;
  preTokenize(preTokenizer, text, words);
  return {words.begin(), words.end()};
}

TEST(PreTokenizerTest, NamesMapToTheThreeSplits) {
  EXPECT_EQ(preTokenizerFromName("llama-bpe"), PreTokenizer::Llama3);
  EXPECT_EQ(preTokenizerFromName("llama3"), PreTokenizer::Llama3);
  EXPECT_EQ(preTokenizerFromName("qwen2"), PreTokenizer::Qwen2);
  EXPECT_EQ(preTokenizerFromName("deepseek-r1-qwen"), PreTokenizer::Qwen2);
  EXPECT_EQ(preTokenizerFromName(""), PreTokenizer::Gpt2);
  EXPECT_EQ(preTokenizerFromName("default"), PreTokenizer::Gpt2);
  EXPECT_EQ(preTokenizerFromName("gpt2"), PreTokenizer::Gpt2);
  EXPECT_EQ(preTokenizerFromName("deepseek-llm"), std::nullopt);
}

TEST(PreTokenizerTest, WordsTakeTheSpaceBeforeThem) {
  for (const auto pre : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2}) {
    EXPECT_EQ(split(pre, "Hello world"), (Pieces{"Hello", " world"}));
    EXPECT_EQ(split(pre, "naïve café"), (Pieces{"naïve", " café"}));
    EXPECT_EQ(split(pre, "end  "), (Pieces{"end", "  "}));
  }
}

TEST(PreTokenizerTest, ContractionsAreCaseSensitiveOnlyInGpt2) {
  EXPECT_EQ(split(PreTokenizer::Gpt2, "I'm sure they'll say DON'T"),
            (Pieces{"I", "'m", " sure", " they", "'ll", " say", " DON", "'", "T"}));
  EXPECT_EQ(split(PreTokenizer::Llama3, "I'm sure they'll say DON'T"),
            (Pieces{"I", "'m", " sure", " they", "'ll", " say", " DON", "'T"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "'sup 'RE"), (Pieces{"'s", "up", " '", "RE"}));
}

TEST(PreTokenizerTest, DigitsAreGroupedByThreeInLlama3AndOneByOneInQwen2) {
  EXPECT_EQ(split(PreTokenizer::Gpt2, "12345 678"), (Pieces{"12345", " 678"}));
  EXPECT_EQ(split(PreTokenizer::Llama3, "12345 678"), (Pieces{"123", "45", " ", "678"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "12345 678"),
            (Pieces{"1", "2", "3", "4", "5", " ", "6", "7", "8"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "$12.50?!\r\n"),
            (Pieces{"$", "1", "2", ".", "5", "0", "?!\r\n"}));
  EXPECT_EQ(split(PreTokenizer::Gpt2, "$12.50?!\r\n"),
            (Pieces{"$", "12", ".", "50", "?!", "\r\n"}));
}

TEST(PreTokenizerTest, SpaceRunsLeaveTheirLastSpaceToTheNextWord) {
  EXPECT_EQ(split(PreTokenizer::Gpt2, "a   b  \n\n  c"),
            (Pieces{"a", "  ", " b", "  \n\n ", " c"}));
  EXPECT_EQ(split(PreTokenizer::Llama3, "a   b  \n\n  c"),
            (Pieces{"a", "  ", " b", "  \n\n", " ", " c"}));
  EXPECT_EQ(split(PreTokenizer::Gpt2, "x\n\n\ty"), (Pieces{"x", "\n\n", "\t", "y"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "x\n\n\ty"), (Pieces{"x", "\n\n", "\ty"}));
}

TEST(PreTokenizerTest, CodeKeepsLineBreaksWithPunctuation) {
  EXPECT_EQ(split(PreTokenizer::Llama3, "if (x) {\n  return 42;\n}"),
            (Pieces{"if", " (", "x", ")", " {\n", " ", " return", " ", "42", ";\n", "}"}));
  EXPECT_EQ(split(PreTokenizer::Gpt2, "if (x) {\n  return 42;\n}"),
            (Pieces{"if", " (", "x", ")", " {", "\n ", " return", " 42", ";", "\n", "}"}));
}

TEST(PreTokenizerTest, ChineseAndEmoji) {
  EXPECT_EQ(split(PreTokenizer::Gpt2, "中文测试，你好。"),
            (Pieces{"中文测试", "，", "你好", "。"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "中文测试，你好。"), (Pieces{"中文测试", "，你好", "。"}));
  EXPECT_EQ(split(PreTokenizer::Llama3, "Hi 😀😀!"), (Pieces{"Hi", " 😀😀!"}));
}

TEST(PreTokenizerTest, InvalidBytesArePunctuationLike) {
  EXPECT_EQ(split(PreTokenizer::Llama3,
                  "a\xFF\xFE"
                  "b \xC3"),
            (Pieces{"a", "\xFF\xFE", "b", " \xC3"}));
}

TEST(PreTokenizerTest, PiecesCoverAnyBytesInOrder) {
  std::mt19937 random(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int i = 0; i < 64; ++i) {
      text.push_back(static_cast<char>(byte(random)));
    }
    for (const auto pre : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2}) {
      std::string joined;
      for (const std::string& piece : split(pre, text)) {
        EXPECT_FALSE(piece.empty());
        joined += piece;
      }
      EXPECT_EQ(joined, text);
    }
  }
}

}  // namespace
}  // namespace aibox::text
