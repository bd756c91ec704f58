#include "tests/runtime/text/test_vocabularies.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <variant>

namespace aibox::text::testing {

std::string byteChar(unsigned char byte) {
  const bool printable =
      (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
  unsigned codePoint = byte;
  if (!printable) {
    codePoint = 0x100;
    for (unsigned other = 0; other < byte; ++other) {
      const bool otherPrintable =
          (other >= '!' && other <= '~') || (other >= 0xA1 && other <= 0xAC) || other >= 0xAE;
      if (!otherPrintable) {
        ++codePoint;
      }
    }
  }
  std::string text;
  if (codePoint < 0x80) {
    text.push_back(static_cast<char>(codePoint));
  } else {
    text.push_back(static_cast<char>(0xC0 | (codePoint >> 6)));
    text.push_back(static_cast<char>(0x80 | (codePoint & 0x3F)));
  }
  return text;
}

Vocabulary bytePairVocabulary(std::string pre, const std::vector<std::string>& merges,
                              const std::vector<std::pair<std::string, TokenType>>& specials) {
  Vocabulary vocabulary;
  vocabulary.model = "gpt2";
  vocabulary.pre = std::move(pre);
  for (int byte = 0; byte < 256; ++byte) {
    vocabulary.tokens.push_back(byteChar(static_cast<unsigned char>(byte)));
  }
  for (const std::string& merge : merges) {
    const std::size_t space = merge.find(' ');
    std::string joined = merge.substr(0, space) + merge.substr(space + 1);
    if (std::find(vocabulary.tokens.begin(), vocabulary.tokens.end(), joined) ==
        vocabulary.tokens.end()) {
      vocabulary.tokens.push_back(std::move(joined));
    }
  }
  vocabulary.merges = merges;
  vocabulary.types.assign(vocabulary.tokens.size(), TokenType::Normal);
  for (const auto& [text, type] : specials) {
    vocabulary.tokens.push_back(text);
    vocabulary.types.push_back(type);
  }
  return vocabulary;
}

Vocabulary sentencePieceVocabulary(const std::vector<Piece>& pieces) {
  Vocabulary vocabulary;
  vocabulary.model = "llama";
  vocabulary.tokens = {"<unk>", "<s>", "</s>"};
  vocabulary.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  vocabulary.scores = {0, 0, 0};
  for (int byte = 0; byte < 256; ++byte) {
    constexpr std::string_view kHex = "0123456789ABCDEF";
    vocabulary.tokens.push_back(std::string("<0x") + kHex[byte >> 4] + kHex[byte & 0xF] + ">");
    vocabulary.types.push_back(TokenType::Byte);
    vocabulary.scores.push_back(0);
  }
  for (const Piece& piece : pieces) {
    vocabulary.tokens.push_back(piece.text);
    vocabulary.types.push_back(TokenType::Normal);
    vocabulary.scores.push_back(piece.score);
  }
  vocabulary.unk = 0;
  vocabulary.bos = 1;
  vocabulary.eos = 2;
  vocabulary.addBos = true;
  return vocabulary;
}

Tokenizer makeTokenizer(Vocabulary vocabulary) {
  auto tokenizer = Tokenizer::create(std::move(vocabulary));
  if (const auto* error = std::get_if<Error>(&tokenizer)) {
    ADD_FAILURE() << error->message;
    std::abort();
  }
  return std::get<Tokenizer>(std::move(tokenizer));
}

Token tokenOf(const Tokenizer& tokenizer, std::string_view text) {
  const auto& tokens = tokenizer.vocabulary().tokens;
  const auto found = std::find(tokens.begin(), tokens.end(), text);
  EXPECT_NE(found, tokens.end()) << "no token '" << text << "'";
  return static_cast<Token>(found - tokens.begin());
}

}  // namespace aibox::text::testing
