// SentencePiece-style ("llama") vocabularies: score-driven merges, the space prefix, byte
// fallback, special tokens and decoding.

#include <gtest/gtest.h>

#include <random>

#include "runtime/text/tokenizer.hpp"
#include "tests/runtime/text/test_vocabularies.hpp"

namespace aibox::text {
namespace {

using testing::makeTokenizer;
using testing::sentencePieceVocabulary;
using testing::tokenOf;
using Tokens = std::vector<Token>;

Vocabulary helloVocabulary() {
  return sentencePieceVocabulary({{"▁", -10},
                                  {"H", -10},
                                  {"e", -10},
                                  {"l", -10},
                                  {"o", -10},
                                  {"w", -10},
                                  {"r", -10},
                                  {"d", -10},
                                  {"▁H", -3},
                                  {"ll", -2},
                                  {"llo", -4},
                                  {"▁He", -5},
                                  {"▁Hello", -1},
                                  {"▁w", -3},
                                  {"or", -2},
                                  {"ld", -2},
                                  {"▁wor", -4},
                                  {"▁world", -1}});
}

TEST(SentencePieceTokenizerTest, SpacesBecomeMarksAndTheTextGetsALeadingOne) {
  const Tokenizer tokenizer = makeTokenizer(helloVocabulary());
  const Tokens tokens = tokenizer.encode("Hello world", true, false);
  EXPECT_EQ(tokens, (Tokens{1, tokenOf(tokenizer, "▁Hello"), tokenOf(tokenizer, "▁world")}));
  EXPECT_EQ(tokenizer.decode(tokens), "Hello world");
  EXPECT_EQ(tokenizer.piece(tokens[1]), " Hello");
}

TEST(SentencePieceTokenizerTest, WithoutTheSpacePrefixTheFirstWordHasNoMark) {
  auto vocabulary = helloVocabulary();
  vocabulary.addSpacePrefix = false;
  const Tokenizer tokenizer = makeTokenizer(vocabulary);
  EXPECT_EQ(tokenizer.encode("Hello world", false, false),
            (Tokens{tokenOf(tokenizer, "H"), tokenOf(tokenizer, "e"), tokenOf(tokenizer, "llo"),
                    tokenOf(tokenizer, "▁world")}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(" Hello", false, false)), " Hello");
}

TEST(SentencePieceTokenizerTest, TheBestScoredPairMergesFirst) {
  const Tokenizer abBetter = makeTokenizer(sentencePieceVocabulary(
      {{"▁", -9}, {"a", -9}, {"b", -9}, {"c", -9}, {"ab", -0.5}, {"bc", -1}}));
  EXPECT_EQ(abBetter.encode("abc", false, false),
            (Tokens{tokenOf(abBetter, "▁"), tokenOf(abBetter, "ab"), tokenOf(abBetter, "c")}));
  const Tokenizer bcBetter = makeTokenizer(sentencePieceVocabulary(
      {{"▁", -9}, {"a", -9}, {"b", -9}, {"c", -9}, {"ab", -2}, {"bc", -1}}));
  EXPECT_EQ(bcBetter.encode("abc", false, false),
            (Tokens{tokenOf(bcBetter, "▁"), tokenOf(bcBetter, "a"), tokenOf(bcBetter, "bc")}));
}

TEST(SentencePieceTokenizerTest, UnknownCharactersFallBackToBytes) {
  const Tokenizer tokenizer = makeTokenizer(helloVocabulary());
  const Tokens tokens = tokenizer.encode("Hé", false, false);
  EXPECT_EQ(tokens, (Tokens{tokenOf(tokenizer, "▁H"), tokenOf(tokenizer, "<0xC3>"),
                            tokenOf(tokenizer, "<0xA9>")}));
  EXPECT_EQ(tokenizer.decode(tokens), "Hé");
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("\xFF\x80x", false, false)), "\xFF\x80x");
}

TEST(SentencePieceTokenizerTest, WithoutByteTokensUnknownCharactersAreUnk) {
  auto vocabulary = helloVocabulary();
  for (std::size_t i = 3; i < 3 + 256; ++i) {
    vocabulary.tokens[i] = "byte" + std::to_string(i);
  }
  const Tokenizer tokenizer = makeTokenizer(vocabulary);
  EXPECT_EQ(tokenizer.encode("Hé", false, false), (Tokens{tokenOf(tokenizer, "▁H"), 0, 0}));
}

TEST(SentencePieceTokenizerTest, SpecialTokensSplitTheTextAndRestartTheSpacePrefix) {
  const Tokenizer tokenizer = makeTokenizer(helloVocabulary());
  const Token hello = tokenOf(tokenizer, "▁Hello");
  EXPECT_EQ(tokenizer.encode("Hello</s>Hello", false, true), (Tokens{hello, 2, hello}));
  EXPECT_EQ(tokenizer.decode({1, hello}), "Hello");
  EXPECT_EQ(tokenizer.decode({1, hello}, true), "<s> Hello");
  EXPECT_TRUE(tokenizer.isEndOfGeneration(2));
  EXPECT_FALSE(tokenizer.isEndOfGeneration(1));
  EXPECT_EQ(tokenizer.piece(0), "");
  EXPECT_EQ(tokenizer.piece(0, true), "<unk>");
}

TEST(SentencePieceTokenizerTest, TextsRoundTrip) {
  const Tokenizer tokenizer = makeTokenizer(helloVocabulary());
  const std::vector<std::string> fragments = {"Hello", " ", "world", "  ", "\n", "é",   "中",
                                              "😀",     "l", "o",     "w",  "\t", "\xFF"};
  std::mt19937 random(5);
  std::uniform_int_distribution<std::size_t> pick(0, fragments.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int i = 0; i < 12; ++i) {
      text += fragments[pick(random)];
    }
    const Tokens tokens = tokenizer.encode(text, true, false);
    ASSERT_EQ(tokenizer.decode(tokens), text);
    ASSERT_EQ(tokenizer.encode(tokenizer.decode(tokens), true, false), tokens);
  }
}

TEST(SentencePieceTokenizerTest, LongRunsStayFast) {
  const Tokenizer tokenizer = makeTokenizer(
      sentencePieceVocabulary({{"▁", -1}, {"a", -1}, {"aa", -1}, {"aaaa", -1}, {"▁▁", -1}}));
  for (const std::string& text : {std::string(20000, 'a'), std::string(20000, ' ')}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false, false)), text);
  }
  EXPECT_EQ(tokenizer.encode(std::string(20000, 'a'), false, false).size(), 1u + 20000u / 4);
}

}  // namespace
}  // namespace aibox::text
