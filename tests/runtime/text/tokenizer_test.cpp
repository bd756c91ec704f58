// Byte-level BPE ("gpt2") vocabularies: merges, special tokens, BOS/EOS, decoding, errors.

#include "runtime/text/tokenizer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <variant>

#include "tests/runtime/text/test_vocabularies.hpp"

namespace aibox::text {
namespace {

using testing::bytePairVocabulary;
using testing::makeTokenizer;
using testing::tokenOf;
using Tokens = std::vector<Token>;

const std::vector<std::string> kHelloMerges = {"h e", "l l",   "he ll", "hell o", "Ġ w",
                                               "o r", "Ġw or", "l d",   "Ġwor ld"};

std::string errorOf(Vocabulary vocabulary) {
  auto tokenizer = Tokenizer::create(std::move(vocabulary));
  const auto* error = std::get_if<Error>(&tokenizer);
  return error ? error->message : "";
}

TEST(BytePairTokenizerTest, MergesBuildWordsWithinPreTokenizedPieces) {
  const Tokenizer tokenizer = makeTokenizer(bytePairVocabulary("qwen2", kHelloMerges));
  EXPECT_EQ(tokenizer.encode("hello world", false, false),
            (Tokens{tokenOf(tokenizer, "hello"), tokenOf(tokenizer, "Ġworld")}));
  // "helloworld" is one piece: no "oĠ" anywhere, so the merges stop at "hello" + bytes.
  EXPECT_EQ(tokenizer.encode("hellowor", false, false),
            (Tokens{tokenOf(tokenizer, "hello"), 'w', tokenOf(tokenizer, "or")}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("hello world", false, false)), "hello world");
}

TEST(BytePairTokenizerTest, TheBestRankedPairMergesFirst) {
  const Tokenizer abFirst = makeTokenizer(bytePairVocabulary("gpt2", {"a b", "b c"}));
  EXPECT_EQ(abFirst.encode("abc", false, false), (Tokens{tokenOf(abFirst, "ab"), 'c'}));
  const Tokenizer bcFirst = makeTokenizer(bytePairVocabulary("gpt2", {"b c", "a b"}));
  EXPECT_EQ(bcFirst.encode("abc", false, false), (Tokens{'a', tokenOf(bcFirst, "bc")}));
}

TEST(BytePairTokenizerTest, EqualPairsMergeLeftmostFirst) {
  const Tokenizer tokenizer = makeTokenizer(bytePairVocabulary("gpt2", {"a a"}));
  const Token aa = tokenOf(tokenizer, "aa");
  EXPECT_EQ(tokenizer.encode("aaa", false, false), (Tokens{aa, 'a'}));
  EXPECT_EQ(tokenizer.encode("aaaa", false, false), (Tokens{aa, aa}));
}

TEST(BytePairTokenizerTest, Llama3TakesAWholeWordTokenWithoutMerging) {
  // "abc" is a token no merge spells: Llama 3's ignore_merges finds it, the others do not.
  auto vocabulary = bytePairVocabulary("llama-bpe", {"a b"});
  vocabulary.tokens.emplace_back("abc");
  vocabulary.types.push_back(TokenType::Normal);
  const Tokenizer llama3 = makeTokenizer(vocabulary);
  EXPECT_EQ(llama3.encode("abc", false, false), (Tokens{tokenOf(llama3, "abc")}));
  vocabulary.pre = "qwen2";
  const Tokenizer qwen2 = makeTokenizer(vocabulary);
  EXPECT_EQ(qwen2.encode("abc", false, false), (Tokens{tokenOf(qwen2, "ab"), 'c'}));
}

TEST(BytePairTokenizerTest, EveryByteHasAToken) {
  const Tokenizer tokenizer = makeTokenizer(bytePairVocabulary("llama-bpe", kHelloMerges));
  EXPECT_EQ(tokenizer.encode("\n\xFF é", false, false), (Tokens{'\n', 0xFF, ' ', 0xC3, 0xA9}));
  EXPECT_EQ(tokenizer.piece(' '), " ");
  EXPECT_EQ(tokenizer.piece(0xC3) + tokenizer.piece(0xA9), "é");
}

Vocabulary chatVocabulary() {
  return bytePairVocabulary("qwen2", kHelloMerges,
                            {{"<|im_start|>", TokenType::Control},
                             {"<|im_end|>", TokenType::Control},
                             {"<|endoftext|>", TokenType::Control},
                             {"<think>", TokenType::UserDefined},
                             {"<tag>", TokenType::Control},
                             {"<tag>long", TokenType::Control}});
}

TEST(BytePairTokenizerTest, ControlTokensAreParsedOnlyWhenAsked) {
  const Tokenizer tokenizer = makeTokenizer(chatVocabulary());
  const Token start = tokenOf(tokenizer, "<|im_start|>");
  const Token end = tokenOf(tokenizer, "<|im_end|>");
  EXPECT_EQ(tokenizer.encode("<|im_start|>hello<|im_end|>", false, true),
            (Tokens{start, tokenOf(tokenizer, "hello"), end}));
  const Tokens plain = tokenizer.encode("<|im_start|>hello<|im_end|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), start), 0);
  EXPECT_EQ(tokenizer.decode(plain), "<|im_start|>hello<|im_end|>");
}

TEST(BytePairTokenizerTest, UserDefinedTokensAreAlwaysWhole) {
  const Tokenizer tokenizer = makeTokenizer(chatVocabulary());
  const Token think = tokenOf(tokenizer, "<think>");
  EXPECT_EQ(tokenizer.encode("<think>hello", false, false),
            (Tokens{think, tokenOf(tokenizer, "hello")}));
  EXPECT_EQ(tokenizer.decode({think}), "<think>");
}

TEST(BytePairTokenizerTest, TheLongestSpecialTokenWins) {
  const Tokenizer tokenizer = makeTokenizer(chatVocabulary());
  EXPECT_EQ(tokenizer.encode("<tag>longer", false, true),
            (Tokens{tokenOf(tokenizer, "<tag>long"), 'e', 'r'}));
  EXPECT_EQ(tokenizer.encode("<tag>lon", false, true),
            (Tokens{tokenOf(tokenizer, "<tag>"), 'l', 'o', 'n'}));
}

TEST(BytePairTokenizerTest, ControlTokensRenderOnlyWhenAsked) {
  const Tokenizer tokenizer = makeTokenizer(chatVocabulary());
  const Tokens tokens = tokenizer.encode("<|im_start|>hello", false, true);
  EXPECT_EQ(tokenizer.decode(tokens), "hello");
  EXPECT_EQ(tokenizer.decode(tokens, true), "<|im_start|>hello");
  EXPECT_EQ(tokenizer.piece(tokens.front()), "");
  EXPECT_EQ(tokenizer.piece(tokens.front(), true), "<|im_start|>");
  EXPECT_EQ(tokenizer.piece(-1), "");
  EXPECT_EQ(tokenizer.piece(static_cast<Token>(tokenizer.size())), "");
}

TEST(BytePairTokenizerTest, AddSpecialAddsBosAndEosAsTheVocabularyAsks) {
  auto vocabulary = chatVocabulary();
  vocabulary.bos = tokenOf(makeTokenizer(vocabulary), "<|im_start|>");
  vocabulary.eos = tokenOf(makeTokenizer(vocabulary), "<|endoftext|>");
  vocabulary.addBos = true;
  const Tokenizer withBos = makeTokenizer(vocabulary);
  const Token hello = tokenOf(withBos, "hello");
  EXPECT_EQ(withBos.encode("hello", true, false), (Tokens{vocabulary.bos, hello}));
  EXPECT_EQ(withBos.encode("hello", false, false), (Tokens{hello}));
  EXPECT_EQ(withBos.encode("", true, false), (Tokens{vocabulary.bos}));
  vocabulary.addEos = true;
  const Tokenizer withBoth = makeTokenizer(vocabulary);
  EXPECT_EQ(withBoth.encode("hello", true, false), (Tokens{vocabulary.bos, hello, vocabulary.eos}));
}

TEST(BytePairTokenizerTest, EndOfGenerationCoversEosEotAndKnownEndTokens) {
  auto vocabulary = chatVocabulary();
  vocabulary.eos = 'x';  // odd, but the vocabulary says so
  const Tokenizer tokenizer = makeTokenizer(vocabulary);
  EXPECT_EQ(tokenizer.vocabulary().eot, tokenOf(tokenizer, "<|im_end|>"));  // found by text
  EXPECT_TRUE(tokenizer.isEndOfGeneration(tokenOf(tokenizer, "<|im_end|>")));
  EXPECT_TRUE(tokenizer.isEndOfGeneration(tokenOf(tokenizer, "<|endoftext|>")));
  EXPECT_TRUE(tokenizer.isEndOfGeneration('x'));
  EXPECT_FALSE(tokenizer.isEndOfGeneration(tokenOf(tokenizer, "<|im_start|>")));
  EXPECT_FALSE(tokenizer.isEndOfGeneration(tokenOf(tokenizer, "hello")));
  EXPECT_FALSE(tokenizer.isEndOfGeneration(-1));
}

TEST(BytePairTokenizerTest, AnyBytesRoundTrip) {
  std::mt19937 random(11);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> pick(0, 5);
  const std::vector<std::string> fragments = {"hello",      " world", "'s", "  ", "\n",
                                              "<|im_end|>", "中文",   "😀",  "123"};
  std::uniform_int_distribution<std::size_t> fragment(0, fragments.size() - 1);
  for (const char* pre : {"gpt2", "llama-bpe", "qwen2"}) {
    auto vocabulary = chatVocabulary();
    vocabulary.pre = pre;
    const Tokenizer tokenizer = makeTokenizer(vocabulary);
    for (int round = 0; round < 300; ++round) {
      std::string text;
      for (int i = 0; i < 40; ++i) {
        if (pick(random) == 0) {
          text += fragments[fragment(random)];
        } else {
          text.push_back(static_cast<char>(byte(random)));
        }
      }
      const Tokens tokens = tokenizer.encode(text, false, false);
      ASSERT_EQ(tokenizer.decode(tokens), text) << pre;
      ASSERT_EQ(tokenizer.encode(tokenizer.decode(tokens), false, false), tokens);
      ASSERT_EQ(tokenizer.decode(tokenizer.encode(text, false, true), true), text);
    }
  }
}

TEST(BytePairTokenizerTest, PathologicalInputsStayFast) {
  auto vocabulary = bytePairVocabulary("llama-bpe", {"a a", "aa aa", "aaaa aaaa", "Ġ Ġ", "1 1"});
  const Tokenizer tokenizer = makeTokenizer(vocabulary);
  for (const std::string& text :
       {std::string(20000, 'a'), std::string(20000, ' '), std::string(20000, '1'),
        std::string(20000, '\n'), std::string(20000, '<')}) {
    const Tokens tokens = tokenizer.encode(text, false, true);
    EXPECT_EQ(tokenizer.decode(tokens), text);
  }
  EXPECT_EQ(tokenizer.encode(std::string(20000, 'a'), false, false).size(), 20000u / 8);
}

TEST(BytePairTokenizerTest, ManySpecialTokensStayFast) {
  std::vector<std::pair<std::string, TokenType>> specials;
  specials.reserve(1000);
  for (int i = 0; i < 1000; ++i) {
    specials.emplace_back("<|reserved_special_token_" + std::to_string(i) + "|>",
                          TokenType::Control);
  }
  const Tokenizer tokenizer = makeTokenizer(bytePairVocabulary("llama-bpe", {}, specials));
  std::string text;
  while (text.size() < 40000) {
    text += "<|reserved_special_token_<|<<";
  }
  text += "<|reserved_special_token_999|>";
  const Tokens tokens = tokenizer.encode(text, false, true);
  EXPECT_EQ(tokens.back(), tokenOf(tokenizer, "<|reserved_special_token_999|>"));
  EXPECT_EQ(tokenizer.decode(tokens, true), text);
}

TEST(BytePairTokenizerTest, BadVocabulariesAreErrorsThatSayWhy) {
  auto vocabulary = bytePairVocabulary("qwen2", kHelloMerges);
  auto bad = vocabulary;
  bad.model = "bert";
  EXPECT_NE(errorOf(bad).find("'bert'"), std::string::npos);
  EXPECT_NE(errorOf(bad).find("gpt2"), std::string::npos);

  bad = vocabulary;
  bad.pre = "falcon";
  EXPECT_NE(errorOf(bad).find("'falcon'"), std::string::npos);
  EXPECT_NE(errorOf(bad).find("llama-bpe, llama3, llama-v3, qwen2, deepseek-r1-qwen"),
            std::string::npos);

  bad = vocabulary;
  bad.merges.emplace_back("hello Ġzz");
  EXPECT_NE(errorOf(bad).find("'Ġzz'"), std::string::npos);
  bad = vocabulary;
  bad.merges.emplace_back("helloworld");
  EXPECT_NE(errorOf(bad).find("not two tokens"), std::string::npos);

  bad = vocabulary;
  bad.eos = static_cast<Token>(bad.tokens.size());
  EXPECT_NE(errorOf(bad).find("eos_token_id"), std::string::npos);
  bad = vocabulary;
  bad.bos = -7;
  EXPECT_NE(errorOf(bad).find("bos_token_id -7"), std::string::npos);
  bad = vocabulary;
  bad.addBos = true;
  EXPECT_NE(errorOf(bad).find("add_bos_token"), std::string::npos);

  bad = vocabulary;
  bad.types.pop_back();
  EXPECT_NE(errorOf(bad).find("token_type"), std::string::npos);
  bad = vocabulary;
  bad.types[3] = static_cast<TokenType>(9);
  EXPECT_NE(errorOf(bad).find("unknown token type 9"), std::string::npos);
  bad = vocabulary;
  bad.scores = {1.0f};
  EXPECT_NE(errorOf(bad).find("scores"), std::string::npos);

  bad = Vocabulary{};
  bad.model = "gpt2";
  EXPECT_NE(errorOf(bad).find("no tokens"), std::string::npos);
}

TEST(BytePairTokenizerTest, SupportedPreTokenizersAreListed) {
  const auto names = supportedPreTokenizers();
  for (const std::string_view name :
       {"llama-bpe", "qwen2", "deepseek-r1-qwen", "default", "gpt2"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

TEST(BytePairTokenizerTest, CopiesShareTheirTables) {
  const Tokenizer original = makeTokenizer(bytePairVocabulary("qwen2", kHelloMerges));
  const Tokenizer copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(copy.encode("hello world", false, false), original.encode("hello world", false, false));
  EXPECT_EQ(copy.size(), original.size());
}

}  // namespace
}  // namespace aibox::text
