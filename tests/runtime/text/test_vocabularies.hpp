#pragma once
// Hand-built vocabularies for the tokenizer tests.

#include <string>
#include <utility>
#include <vector>

#include "runtime/text/tokenizer.hpp"

namespace aibox::text::testing {

// GPT-2's character for a byte ("Ġ" for a space), as a byte-level vocabulary writes it.
std::string byteChar(unsigned char byte);

// A "gpt2" vocabulary: the 256 byte characters (token id = byte), one token per merge result in
// merge order, then the special tokens.
Vocabulary bytePairVocabulary(std::string pre, const std::vector<std::string>& merges,
                              const std::vector<std::pair<std::string, TokenType>>& specials = {});

struct Piece {
  std::string text;
  float score;
};
// A "llama" vocabulary: <unk>, <s>, </s>, the 256 <0xNN> byte tokens, then `pieces`.
Vocabulary sentencePieceVocabulary(const std::vector<Piece>& pieces);

Tokenizer makeTokenizer(Vocabulary vocabulary);
Token tokenOf(const Tokenizer& tokenizer, std::string_view text);

}  // namespace aibox::text::testing
