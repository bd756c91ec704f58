#include "runtime/text/tokenizer.hpp"

#include <array>
#include <optional>
#include <unordered_map>
#include <utility>

#include "runtime/text/tables.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

constexpr std::string_view kSpaceMark = "▁";  // U+2581, SentencePiece's space

// Control tokens that end a turn or a text in the supported families.
constexpr std::array<std::string_view, 9> kEndTexts = {
    "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>",           "<|endoftext|>",
    "<|end|>",    "<end_of_turn>",   "</s>",       "<｜end▁of▁sentence｜>"};
// The end-of-turn token when tokenizer.ggml.eot_token_id is absent, by preference.
constexpr std::array<std::string_view, 6> kEndOfTurnTexts = {
    "<|eot_id|>",   "<|im_end|>", "<|end|>", "<end_of_turn>", "<｜end▁of▁sentence｜>",
    "<|endoftext|>"};

std::string joinNames(const std::vector<std::string_view>& names) {
  std::string joined;
  for (const std::string_view name : names) {
    if (!joined.empty()) {
      joined += ", ";
    }
    joined += name;
  }
  return joined;
}

bool isKnownType(TokenType type) {
  const auto value = static_cast<std::int32_t>(type);
  return value >= static_cast<std::int32_t>(TokenType::Undefined) &&
         value <= static_cast<std::int32_t>(TokenType::Byte);
}

// "<0x0A>" -> 0x0A
std::optional<std::uint8_t> byteTokenValue(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>') {
    return std::nullopt;
  }
  unsigned value = 0;
  for (const char digit : text.substr(3, 2)) {
    value <<= 4;
    if (digit >= '0' && digit <= '9') {
      value |= static_cast<unsigned>(digit - '0');
    } else if (digit >= 'A' && digit <= 'F') {
      value |= static_cast<unsigned>(digit - 'A' + 10);
    } else if (digit >= 'a' && digit <= 'f') {
      value |= static_cast<unsigned>(digit - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return static_cast<std::uint8_t>(value);
}

std::string byteTokenText(std::uint8_t byte) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  return std::string("<0x") + kHex[byte >> 4] + kHex[byte & 0xF] + ">";
}

// The bytes a byte-level BPE token's characters stand for.
std::string unmapBytes(std::string_view text) {
  std::string bytes;
  for (std::size_t offset = 0; offset < text.size();) {
    const unicode::Char c = unicode::decodeAt(text, offset);
    const int byte = unicode::unicodeToByte(c.codePoint);
    if (byte >= 0) {
      bytes.push_back(static_cast<char>(byte));
    } else {
      bytes.append(text.substr(offset, c.length));  // not of the alphabet: kept as written
    }
    offset += c.length;
  }
  return bytes;
}

std::string replaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string result;
  for (std::size_t offset = 0;;) {
    const std::size_t found = text.find(from, offset);
    result.append(text.substr(offset, found - offset));
    if (found == std::string_view::npos) {
      return result;
    }
    result.append(to);
    offset = found + from.size();
  }
}

std::optional<Error> checkSpecialId(const char* key, Token id, std::size_t size) {
  if (id >= -1 && id < static_cast<Token>(size)) {
    return std::nullopt;
  }
  return Error{std::string(key) + " " + std::to_string(id) + " is outside the vocabulary of " +
               std::to_string(size) + " tokens: the model file's tokenizer metadata is corrupt"};
}

std::optional<Error> checkVocabulary(const Vocabulary& v) {
  if (v.model != "gpt2" && v.model != "llama") {
    return Error{"unsupported tokenizer model '" + v.model +
                 "' (tokenizer.ggml.model): this engine supports gpt2 (byte-level BPE) and llama "
                 "(SentencePiece)"};
  }
  if (v.model == "gpt2" && !preTokenizerFromName(v.pre)) {
    return Error{"unsupported pre-tokenizer '" + v.pre +
                 "' (tokenizer.ggml.pre): this engine supports " +
                 joinNames(supportedPreTokenizers())};
  }
  const std::size_t size = v.tokens.size();
  if (size == 0) {
    return Error{"the vocabulary has no tokens (tokenizer.ggml.tokens is empty)"};
  }
  if (size > 0x7FFFFFFF) {
    return Error{"the vocabulary has more tokens than token ids can number"};
  }
  if (!v.scores.empty() && v.scores.size() != size) {
    return Error{"tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " +
                 std::to_string(size) + " tokens"};
  }
  if (!v.types.empty() && v.types.size() != size) {
    return Error{"tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
                 " entries for " + std::to_string(size) + " tokens"};
  }
  for (std::size_t i = 0; i < v.types.size(); ++i) {
    if (!isKnownType(v.types[i])) {
      return Error{"token " + std::to_string(i) + " has the unknown token type " +
                   std::to_string(static_cast<std::int32_t>(v.types[i])) +
                   " (tokenizer.ggml.token_type takes 0 to 6)"};
    }
  }
  for (const auto& [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", v.bos},
                                std::pair{"tokenizer.ggml.eos_token_id", v.eos},
                                std::pair{"tokenizer.ggml.eot_token_id", v.eot},
                                std::pair{"tokenizer.ggml.unknown_token_id", v.unk},
                                std::pair{"tokenizer.ggml.padding_token_id", v.pad}}) {
    if (auto error = checkSpecialId(key, id, size)) {
      return error;
    }
  }
  if (v.addBos && v.bos < 0) {
    return Error{"tokenizer.ggml.add_bos_token is set but the vocabulary names no BOS token"};
  }
  if (v.addEos && v.eos < 0) {
    return Error{"tokenizer.ggml.add_eos_token is set but the vocabulary names no EOS token"};
  }
  return std::nullopt;
}

TokenType typeOf(const Vocabulary& v, std::size_t token) {
  return v.types.empty() ? TokenType::Normal : v.types[token];
}

std::optional<Error> addMerges(const Vocabulary& v, TokenizerTables& tables) {
  const auto missing = [](std::size_t rank, std::string_view merge, std::string_view part) {
    return Error{"merge " + std::to_string(rank) + " '" + std::string(merge) + "' names '" +
                 std::string(part) +
                 "', which is not a token of the vocabulary: the model file's tokenizer.ggml."
                 "merges do not match its tokens"};
  };
  tables.merges.reserve(v.merges.size());
  for (std::size_t rank = 0; rank < v.merges.size(); ++rank) {
    const std::string_view merge = v.merges[rank];
    const std::size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos || space + 1 == merge.size()) {
      return Error{"merge " + std::to_string(rank) + " '" + std::string(merge) +
                   "' is not two tokens separated by a space (tokenizer.ggml.merges)"};
    }
    const std::string_view left = merge.substr(0, space);
    const std::string_view right = merge.substr(space + 1);
    const auto leftId = tables.pieceIds.find(left);
    if (leftId == tables.pieceIds.end()) {
      return missing(rank, merge, left);
    }
    const auto rightId = tables.pieceIds.find(right);
    if (rightId == tables.pieceIds.end()) {
      return missing(rank, merge, right);
    }
    const std::string joined = std::string(left) + std::string(right);
    const auto result = tables.pieceIds.find(joined);
    if (result == tables.pieceIds.end()) {
      return missing(rank, merge, joined);
    }
    // The first rank of a pair wins, as in a ranked merge list.
    tables.merges.try_emplace(
        TokenizerTables::mergeKey(leftId->second, rightId->second),
        TokenizerTables::Merge{static_cast<std::int32_t>(rank), result->second});
  }
  return std::nullopt;
}

void addSpecials(const Vocabulary& v, TokenizerTables& tables) {
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    const TokenType type = typeOf(v, i);
    if ((type == TokenType::Control || type == TokenType::UserDefined) && !v.tokens[i].empty()) {
      tables.specials.add(v.tokens[i], static_cast<Token>(i), type == TokenType::Control);
    }
  }
}

void addPieces(const Vocabulary& v, TokenizerTables& tables) {
  const bool bytePairs = tables.kind == TokenizerTables::Kind::BytePairs;
  tables.pieces.resize(v.tokens.size());
  tables.hiddenUnlessSpecial.resize(v.tokens.size());
  tables.normal.resize(v.tokens.size());
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& text = v.tokens[i];
    const TokenType type = typeOf(v, i);
    tables.hiddenUnlessSpecial[i] =
        type == TokenType::Control || type == TokenType::Unknown || type == TokenType::Unused;
    tables.normal[i] = type == TokenType::Normal || type == TokenType::Undefined;
    if (type == TokenType::Byte && byteTokenValue(text)) {
      tables.pieces[i] = std::string(1, static_cast<char>(*byteTokenValue(text)));
    } else if (!tables.normal[i]) {
      tables.pieces[i] = text;
    } else if (bytePairs) {
      tables.pieces[i] = unmapBytes(text);
    } else {
      tables.pieces[i] = replaceAll(text, kSpaceMark, " ");
    }
  }
}

// EOS, EOT and the control tokens that end a turn in the supported families; EOT by its text
// when the vocabulary does not name it.
void addEndsOfGeneration(Vocabulary& v, TokenizerTables& tables) {
  std::unordered_map<std::string_view, Token> controlIds;
  for (std::size_t i = 0; i < v.tokens.size(); ++i) {
    if (typeOf(v, i) == TokenType::Control) {
      controlIds.try_emplace(v.tokens[i], static_cast<Token>(i));
    }
  }
  const auto controlToken = [&controlIds](std::string_view text) {
    const auto found = controlIds.find(text);
    return found == controlIds.end() ? Token{-1} : found->second;
  };
  for (const std::string_view text : kEndOfTurnTexts) {
    if (v.eot >= 0) {
      break;
    }
    v.eot = controlToken(text);
  }
  tables.endOfGeneration.assign(v.tokens.size(), false);
  for (const std::string_view text : kEndTexts) {
    if (const Token token = controlToken(text); token >= 0) {
      tables.endOfGeneration[static_cast<std::size_t>(token)] = true;
    }
  }
  for (const Token token : {v.eos, v.eot}) {
    if (token >= 0) {
      tables.endOfGeneration[static_cast<std::size_t>(token)] = true;
    }
  }
}

// The text split at special tokens: plain text runs and whole special tokens, in order.
struct Fragment {
  std::string_view text;
  Token special = -1;
};

std::vector<Fragment> splitAtSpecials(const TokenizerTables& tables, std::string_view text,
                                      bool parseSpecial) {
  std::vector<Fragment> fragments;
  std::size_t plainStart = 0;
  for (std::size_t offset = 0; offset < text.size();) {
    const auto match = tables.specials.longestAt(text, offset, parseSpecial);
    if (!match) {
      ++offset;
      continue;
    }
    if (offset > plainStart) {
      fragments.push_back({text.substr(plainStart, offset - plainStart)});
    }
    fragments.push_back({{}, match->token});
    offset += match->length;
    plainStart = offset;
  }
  if (plainStart < text.size()) {
    fragments.push_back({text.substr(plainStart)});
  }
  return fragments;
}

}  // namespace

std::vector<std::string_view> supportedPreTokenizers() {
  return preTokenizerNames();
}

Result<Tokenizer> Tokenizer::create(Vocabulary vocabulary) {
  if (auto error = checkVocabulary(vocabulary)) {
    return *error;
  }
  auto tables = std::make_shared<TokenizerTables>();
  const std::size_t size = vocabulary.tokens.size();
  tables->tokenCount = size;
  tables->unk = vocabulary.unk;
  tables->byteTokens.fill(-1);
  tables->pieceIds.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    const TokenType type = typeOf(vocabulary, i);
    if ((type == TokenType::Normal || type == TokenType::Undefined) &&
        !vocabulary.tokens[i].empty()) {
      tables->pieceIds.try_emplace(vocabulary.tokens[i], static_cast<Token>(i));
    }
  }

  if (vocabulary.model == "gpt2") {
    tables->kind = TokenizerTables::Kind::BytePairs;
    tables->preTokenizer = *preTokenizerFromName(vocabulary.pre);
    tables->ignoreMerges = tables->preTokenizer == PreTokenizer::Llama3;
    for (int byte = 0; byte < 256; ++byte) {
      const auto found =
          tables->pieceIds.find(unicode::byteToUnicode(static_cast<std::uint8_t>(byte)));
      if (found != tables->pieceIds.end()) {
        tables->byteTokens[byte] = found->second;
      }
    }
    if (auto error = addMerges(vocabulary, *tables)) {
      return *error;
    }
  } else {
    tables->kind = TokenizerTables::Kind::SentencePiece;
    tables->addSpacePrefix = vocabulary.addSpacePrefix;
    tables->scores = vocabulary.scores;
    tables->scores.resize(size, 0.0f);
    TokenIds allIds;
    for (std::size_t i = 0; i < size; ++i) {
      allIds.try_emplace(vocabulary.tokens[i], static_cast<Token>(i));
    }
    for (int byte = 0; byte < 256; ++byte) {
      const auto found = allIds.find(byteTokenText(static_cast<std::uint8_t>(byte)));
      if (found != allIds.end()) {
        tables->byteTokens[byte] = found->second;
      }
    }
  }
  addSpecials(vocabulary, *tables);
  addPieces(vocabulary, *tables);
  addEndsOfGeneration(vocabulary, *tables);

  Tokenizer tokenizer;
  tokenizer.vocabulary_ = std::move(vocabulary);
  tokenizer.tables_ = std::move(tables);
  return tokenizer;
}

std::vector<Token> Tokenizer::encode(std::string_view text, bool addSpecial,
                                     bool parseSpecial) const {
  const TokenizerTables& tables = *tables_;
  std::vector<Token> tokens;
  if (addSpecial && vocabulary_.addBos) {
    tokens.push_back(vocabulary_.bos);
  }
  std::vector<std::string_view> words;
  bool afterSpecial = true;  // SentencePiece: the text start and each text after a special token
  for (const Fragment& fragment : splitAtSpecials(tables, text, parseSpecial)) {
    if (fragment.special >= 0) {
      tokens.push_back(fragment.special);
      afterSpecial = true;
      continue;
    }
    if (tables.kind == TokenizerTables::Kind::BytePairs) {
      words.clear();
      preTokenize(tables.preTokenizer, fragment.text, words);
      for (const std::string_view word : words) {
        encodeBytePairWord(tables, word, tokens);
      }
    } else {
      std::string escaped = tables.addSpacePrefix && afterSpecial ? std::string(kSpaceMark) : "";
      escaped += replaceAll(fragment.text, " ", kSpaceMark);
      encodeSentencePiece(tables, escaped, tokens);
    }
    afterSpecial = false;
  }
  if (addSpecial && vocabulary_.addEos) {
    tokens.push_back(vocabulary_.eos);
  }
  return tokens;
}

std::string Tokenizer::piece(Token token, bool renderSpecial) const {
  const TokenizerTables& tables = *tables_;
  if (token < 0 || static_cast<std::size_t>(token) >= tables.tokenCount) {
    return {};
  }
  const auto index = static_cast<std::size_t>(token);
  if (tables.hiddenUnlessSpecial[index] && !renderSpecial) {
    return {};
  }
  return tables.pieces[index];
}

std::string Tokenizer::decode(const std::vector<Token>& tokens, bool renderSpecial) const {
  const TokenizerTables& tables = *tables_;
  std::string text;
  // SentencePiece: the space the encoder put before the text is not part of it.
  bool stripSpace = tables.kind == TokenizerTables::Kind::SentencePiece && tables.addSpacePrefix;
  for (const Token token : tokens) {
    std::string piece = this->piece(token, renderSpecial);
    if (piece.empty()) {
      continue;
    }
    if (stripSpace && tables.normal[static_cast<std::size_t>(token)] && piece.front() == ' ') {
      piece.erase(0, 1);
    }
    stripSpace = false;
    text += piece;
  }
  return text;
}

bool Tokenizer::isEndOfGeneration(Token token) const {
  return token >= 0 && static_cast<std::size_t>(token) < tables_->tokenCount &&
         tables_->endOfGeneration[static_cast<std::size_t>(token)];
}

}  // namespace aibox::text
