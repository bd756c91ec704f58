#pragma once
// The lookup tables a Tokenizer is built into, and the two merge algorithms that use them
// (internal to runtime/text).

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/text/pretokenizer.hpp"
#include "runtime/text/tokenizer.hpp"

namespace aibox::text {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return std::hash<std::string_view>{}(text);
  }
};
using TokenIds = std::unordered_map<std::string, Token, StringHash, std::equal_to<>>;

// Finds special and added tokens in a text: a trie over their bytes, so looking at a position
// costs at most the length of the longest one, however many there are (Llama 3 has 256).
class SpecialTokenMatcher {
 public:
  // A text added twice keeps its first token.
  void add(std::string_view text, Token token, bool control);

  struct Match {
    Token token;
    std::size_t length;
  };
  // The longest token whose text starts at `offset`; CONTROL ones only when allowControl.
  std::optional<Match> longestAt(std::string_view text, std::size_t offset,
                                 bool allowControl) const;

 private:
  struct Node {
    Token token = -1;
    bool control = false;
  };
  std::vector<Node> nodes_{1};                              // 0 is the root
  std::unordered_map<std::uint64_t, std::uint32_t> edges_;  // (node << 8 | byte) -> node
};

struct TokenizerTables {
  enum class Kind { BytePairs, SentencePiece };

  struct Merge {
    std::int32_t rank;
    Token result;
  };

  Kind kind = Kind::BytePairs;
  PreTokenizer preTokenizer = PreTokenizer::Gpt2;
  bool ignoreMerges = false;   // Llama 3: a word that is a token as a whole is not merged
  bool addSpacePrefix = true;  // SentencePiece

  std::size_t tokenCount = 0;
  TokenIds pieceIds;  // the texts merges may produce (NORMAL and UNDEFINED tokens)
  std::unordered_map<std::uint64_t, Merge> merges;  // BytePairs: (left << 32 | right)
  std::vector<float> scores;                        // SentencePiece, one per token
  std::array<Token, 256> byteTokens{};  // BytePairs: each byte's character; else <0xNN>; -1
  Token unk = -1;

  std::vector<std::string> pieces;        // the bytes each token stands for
  std::vector<bool> hiddenUnlessSpecial;  // CONTROL, UNKNOWN and UNUSED tokens
  std::vector<bool> normal;               // NORMAL and UNDEFINED tokens
  std::vector<bool> endOfGeneration;

  SpecialTokenMatcher specials;  // CONTROL and USER_DEFINED tokens

  static std::uint64_t mergeKey(Token left, Token right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
};

// Byte-level BPE of one pre-tokenized word, appended to `out`.
void encodeBytePairWord(const TokenizerTables& tables, std::string_view word,
                        std::vector<Token>& out);

// SentencePiece BPE of a text whose spaces are already "▁", appended to `out`.
void encodeSentencePiece(const TokenizerTables& tables, std::string_view text,
                         std::vector<Token>& out);

}  // namespace aibox::text
