// Byte-level BPE within one word: every byte starts as its own symbol, and the adjacent pair with
// the best merge rank is merged (leftmost first on ties) until no pair has a merge. A heap of
// candidate pairs over a linked list of symbols keeps this O(n log n) in the word's length.

#include <queue>

#include "runtime/text/tables.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

constexpr Token kMergedAway = -2;

struct Symbol {
  Token token;  // -1 for a byte without a token, kMergedAway once merged into its left
  std::int32_t prev;
  std::int32_t next;
};

struct Candidate {
  std::int32_t rank;
  std::int32_t left;
  Token leftToken;
  Token rightToken;
  Token result;

  // std::priority_queue keeps the greatest on top: the lowest rank, then the leftmost.
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : left > other.left;
  }
};

void appendUnknown(const TokenizerTables& tables, std::vector<Token>& out) {
  if (tables.unk >= 0) {
    out.push_back(tables.unk);
  }
}

}  // namespace

void encodeBytePairWord(const TokenizerTables& tables, std::string_view word,
                        std::vector<Token>& out) {
  if (word.empty()) {
    return;
  }
  if (tables.ignoreMerges) {
    std::string mapped;
    for (const char byte : word) {
      mapped += unicode::byteToUnicode(static_cast<std::uint8_t>(byte));
    }
    if (const auto found = tables.pieceIds.find(mapped); found != tables.pieceIds.end()) {
      out.push_back(found->second);
      return;
    }
  }

  std::vector<Symbol> symbols(word.size());
  for (std::size_t i = 0; i < word.size(); ++i) {
    symbols[i] = {tables.byteTokens[static_cast<std::uint8_t>(word[i])],
                  static_cast<std::int32_t>(i) - 1,
                  i + 1 < word.size() ? static_cast<std::int32_t>(i) + 1 : -1};
  }
  std::priority_queue<Candidate> candidates;
  const auto consider = [&tables, &symbols, &candidates](std::int32_t left) {
    if (left < 0) {
      return;
    }
    const std::int32_t right = symbols[left].next;
    if (right < 0 || symbols[left].token < 0 || symbols[right].token < 0) {
      return;
    }
    const auto found =
        tables.merges.find(TokenizerTables::mergeKey(symbols[left].token, symbols[right].token));
    if (found == tables.merges.end()) {
      return;
    }
    candidates.push({found->second.rank, left, symbols[left].token, symbols[right].token,
                     found->second.result});
  };
  for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(word.size()); ++i) {
    consider(i);
  }

  while (!candidates.empty()) {
    const Candidate best = candidates.top();
    candidates.pop();
    Symbol& left = symbols[best.left];
    // A token only ever grows, so matching tokens mean the pair is still the one queued.
    if (left.token != best.leftToken || left.next < 0 ||
        symbols[left.next].token != best.rightToken) {
      continue;
    }
    Symbol& right = symbols[left.next];
    left.token = best.result;
    right.token = kMergedAway;
    left.next = right.next;
    if (right.next >= 0) {
      symbols[right.next].prev = best.left;
    }
    consider(left.prev);
    consider(best.left);
  }

  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) {
    if (symbols[i].token >= 0) {
      out.push_back(symbols[i].token);
    } else {
      appendUnknown(tables, out);
    }
  }
}

}  // namespace aibox::text
