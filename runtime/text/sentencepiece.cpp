// SentencePiece-style BPE as llama.cpp runs "llama" vocabularies: every UTF-8 character starts
// as a symbol, and the adjacent pair whose joined text is the token with the best score is merged
// (leftmost first on ties) until no joined pair is a token. Symbols that are not tokens fall back
// to <0xNN> byte tokens.

#include <queue>

#include "runtime/text/tables.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

struct Symbol {
  std::uint32_t offset;
  std::uint32_t length;  // 0 once merged into its left
  std::int32_t prev;
  std::int32_t next;
};

struct Candidate {
  float score;
  std::int32_t left;
  std::int32_t right;
  std::uint32_t leftLength;
  std::uint32_t rightLength;

  // std::priority_queue keeps the greatest on top: the best score, then the leftmost.
  bool operator<(const Candidate& other) const {
    return score != other.score ? score < other.score : left > other.left;
  }
};

void appendBytes(const TokenizerTables& tables, std::string_view bytes, std::vector<Token>& out) {
  for (const char byte : bytes) {
    const Token token = tables.byteTokens[static_cast<std::uint8_t>(byte)];
    if (token >= 0) {
      out.push_back(token);
    } else if (tables.unk >= 0) {
      out.push_back(tables.unk);
    }
  }
}

}  // namespace

void encodeSentencePiece(const TokenizerTables& tables, std::string_view text,
                         std::vector<Token>& out) {
  std::vector<Symbol> symbols;
  for (std::size_t offset = 0; offset < text.size();) {
    const std::uint32_t length = unicode::decodeAt(text, offset).length;
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back({static_cast<std::uint32_t>(offset), length, index - 1, index + 1});
    offset += length;
  }
  if (symbols.empty()) {
    return;
  }
  symbols.back().next = -1;

  std::priority_queue<Candidate> candidates;
  const auto consider = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) {
      return;
    }
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[right];
    const auto found = tables.pieceIds.find(text.substr(a.offset, a.length + b.length));
    if (found == tables.pieceIds.end()) {
      return;
    }
    candidates.push(
        {tables.scores[static_cast<std::size_t>(found->second)], left, right, a.length, b.length});
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) {
    consider(i, i + 1);
  }

  while (!candidates.empty()) {
    const Candidate best = candidates.top();
    candidates.pop();
    Symbol& left = symbols[best.left];
    Symbol& right = symbols[best.right];
    // A symbol only ever grows, so unchanged lengths mean the pair is still the one queued.
    if (left.next != best.right || left.length != best.leftLength ||
        right.length != best.rightLength) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) {
      symbols[right.next].prev = best.left;
    }
    consider(left.prev, best.left);
    consider(best.left, left.next);
  }

  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    if (const auto found = tables.pieceIds.find(piece); found != tables.pieceIds.end()) {
      out.push_back(found->second);
    } else {
      appendBytes(tables, piece, out);
    }
  }
}

}  // namespace aibox::text
