#pragma once
// The server's share of the paged KV cache: which blocks of the pool are free, which belong to
// running sequences, and which hold a cached prompt prefix. A full block is published under
// the hash of every token up to its end (its parent block's hash and its own tokens), so two
// sequences that start with the same tokens share the blocks read-only. Published blocks stay
// after their sequences end and are evicted least recently used when a block is needed.
// Used from the scheduler's thread only.

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/engine/model.hpp"

namespace aibox::server {

class BlockManager {
 public:
  static constexpr std::uint32_t kPositions = engine::KvPool::kBlockPositions;

  explicit BlockManager(std::uint32_t blocks);

  std::uint32_t total() const { return static_cast<std::uint32_t>(refs_.size()); }
  // Blocks that allocate() can hand out: free ones and unreferenced cached ones.
  std::uint32_t available() const {
    return static_cast<std::uint32_t>(free_.size() + evictable_.size());
  }
  // Blocks referenced by at least one sequence.
  std::uint32_t inUse() const { return total() - available(); }
  // Blocks holding a published prefix (referenced or not).
  std::uint32_t cached() const { return static_cast<std::uint32_t>(published_.size()); }

  // The published blocks holding the longest run of whole blocks at the start of `tokens`, each
  // referenced once more for the caller; `hashes` gets their hashes, in order.
  std::vector<std::uint32_t> match(std::span<const engine::Token> tokens,
                                   std::vector<std::uint64_t>& hashes);
  // A block to write, referenced once; evicts the least recently used cached block when no
  // block is free. Nullopt when every block is referenced.
  std::optional<std::uint32_t> allocate();
  // Publishes `block`, now full with `tokens` (kPositions of them) after the prefix whose
  // hash is `parent` (0 for the first block). Returns the prefix's hash. When another block
  // already holds that prefix, `block` stays private (it is freed at its last release).
  std::uint64_t publish(std::uint32_t block, std::uint64_t parent,
                        std::span<const engine::Token> tokens);
  // One reference less; at none a published block is kept (evictable), any other freed.
  void release(std::uint32_t block);

 private:
  struct Entry {
    std::uint32_t block;
    std::uint64_t parent;
    std::vector<engine::Token> tokens;
  };
  static std::uint64_t hash(std::uint64_t parent, std::span<const engine::Token> tokens);
  void forget(std::uint32_t block);

  std::vector<std::uint32_t> refs_;
  std::vector<std::optional<std::uint64_t>> hashOf_;  // published blocks' hashes
  std::vector<std::uint64_t> lastUsed_;
  std::vector<std::uint32_t> free_;
  std::set<std::pair<std::uint64_t, std::uint32_t>> evictable_;  // (last used, block)
  std::unordered_map<std::uint64_t, Entry> published_;
  std::uint64_t clock_ = 0;
};

}  // namespace aibox::server
