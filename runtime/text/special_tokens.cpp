#include "runtime/text/tables.hpp"

namespace aibox::text {
namespace {

std::uint64_t edgeKey(std::uint32_t node, char byte) {
  return (static_cast<std::uint64_t>(node) << 8) | static_cast<std::uint8_t>(byte);
}

}  // namespace

void SpecialTokenMatcher::add(std::string_view text, Token token, bool control) {
  std::uint32_t node = 0;
  for (const char byte : text) {
    const auto [edge, added] =
        edges_.try_emplace(edgeKey(node, byte), static_cast<std::uint32_t>(nodes_.size()));
    if (added) {
      nodes_.emplace_back();
    }
    node = edge->second;
  }
  if (nodes_[node].token < 0) {
    nodes_[node] = {token, control};
  }
}

std::optional<SpecialTokenMatcher::Match> SpecialTokenMatcher::longestAt(std::string_view text,
                                                                         std::size_t offset,
                                                                         bool allowControl) const {
  std::optional<Match> longest;
  std::uint32_t node = 0;
  for (std::size_t i = offset; i < text.size(); ++i) {
    const auto edge = edges_.find(edgeKey(node, text[i]));
    if (edge == edges_.end()) {
      break;
    }
    node = edge->second;
    const Node& reached = nodes_[node];
    if (reached.token >= 0 && (allowControl || !reached.control)) {
      longest = Match{reached.token, i + 1 - offset};
    }
  }
  return longest;
}

}  // namespace aibox::text
