#include "runtime/server/blocks.hpp"

#include <algorithm>

namespace aibox::server {

BlockManager::BlockManager(std::uint32_t blocks)
    : refs_(blocks, 0), hashOf_(blocks), lastUsed_(blocks, 0) {
  free_.reserve(blocks);
  for (std::uint32_t b = blocks; b > 0; --b) {
    free_.push_back(b - 1);  // block 0 first
  }
}

// FNV-1a over the parent's hash and the tokens' bytes; a hit is checked against the tokens, so
// a collision costs a miss, never a wrong answer.
std::uint64_t BlockManager::hash(std::uint64_t parent, std::span<const engine::Token> tokens) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      h = (h ^ ((value >> (8 * i)) & 0xff)) * 1099511628211ULL;
    }
  };
  mix(parent);
  for (auto token : tokens) {
    mix(static_cast<std::uint32_t>(token));
  }
  return h == 0 ? 1 : h;
}

std::vector<std::uint32_t> BlockManager::match(std::span<const engine::Token> tokens,
                                               std::vector<std::uint64_t>& hashes) {
  std::vector<std::uint32_t> found;
  hashes.clear();
  std::uint64_t parent = 0;
  for (std::size_t at = 0; at + kPositions <= tokens.size(); at += kPositions) {
    auto part = tokens.subspan(at, kPositions);
    auto h = hash(parent, part);
    auto it = published_.find(h);
    if (it == published_.end() || it->second.parent != parent ||
        !std::equal(part.begin(), part.end(), it->second.tokens.begin())) {
      break;
    }
    auto block = it->second.block;
    if (refs_[block]++ == 0) {
      evictable_.erase({lastUsed_[block], block});
    }
    found.push_back(block);
    hashes.push_back(h);
    parent = h;
  }
  return found;
}

std::optional<std::uint32_t> BlockManager::allocate() {
  std::uint32_t block = 0;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (!evictable_.empty()) {
    block = evictable_.begin()->second;
    evictable_.erase(evictable_.begin());
    forget(block);
  } else {
    return std::nullopt;
  }
  refs_[block] = 1;
  return block;
}

std::uint64_t BlockManager::publish(std::uint32_t block, std::uint64_t parent,
                                    std::span<const engine::Token> tokens) {
  auto h = hash(parent, tokens);
  if (!hashOf_[block] && !published_.contains(h)) {
    published_.emplace(h, Entry{block, parent, {tokens.begin(), tokens.end()}});
    hashOf_[block] = h;
  }
  return h;
}

void BlockManager::release(std::uint32_t block) {
  if (refs_[block] == 0 || --refs_[block] > 0) {
    return;
  }
  if (hashOf_[block]) {
    lastUsed_[block] = ++clock_;
    evictable_.emplace(lastUsed_[block], block);
  } else {
    free_.push_back(block);
  }
}

void BlockManager::forget(std::uint32_t block) {
  if (hashOf_[block]) {
    published_.erase(*hashOf_[block]);
    hashOf_[block].reset();
  }
}

}  // namespace aibox::server
