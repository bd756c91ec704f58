// A byte-level BPE trainer for test vocabularies: counts the words the pre-tokenizer cuts the
// corpus into, then repeatedly merges the most frequent adjacent pair of symbols. Pair counts are
// updated only in the words that hold the merged pair, and a lazily invalidated heap finds the
// next best pair, so training a few thousand merges on a few KB takes milliseconds.

#include <algorithm>
#include <map>
#include <queue>
#include <set>
#include <unordered_map>

#include "runtime/text/tables.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

struct Word {
  std::vector<Token> symbols;
  std::int64_t count;
};

struct PairEntry {
  std::int64_t count;
  Token left;
  Token right;

  // std::priority_queue keeps the greatest on top: the highest count, then the lowest ids.
  bool operator<(const PairEntry& other) const {
    if (count != other.count) {
      return count < other.count;
    }
    if (left != other.left) {
      return left > other.left;
    }
    return right > other.right;
  }
};

class Trainer {
 public:
  explicit Trainer(const std::map<std::string_view, std::int64_t>& wordCounts) {
    for (int byte = 0; byte < 256; ++byte) {
      texts_.emplace_back(unicode::byteToUnicode(static_cast<std::uint8_t>(byte)));
      ids_.emplace(texts_.back(), static_cast<Token>(byte));
    }
    for (const auto& [text, count] : wordCounts) {
      Word word{{}, count};
      for (const char byte : text) {
        word.symbols.push_back(static_cast<std::uint8_t>(byte));
      }
      words_.push_back(std::move(word));
    }
    for (std::uint32_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (std::size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const std::uint64_t key = TokenizerTables::mergeKey(word.symbols[i], word.symbols[i + 1]);
        pairCounts_[key] += word.count;
        pairWords_[key].push_back(w);
      }
    }
    for (const auto& [key, count] : pairCounts_) {
      queue_.push(entryFor(key, count));
    }
  }

  // Learns merges until the vocabulary holds `limit` tokens or no pair is left.
  void run(std::size_t limit) {
    std::vector<std::uint32_t> mergedIn(words_.size(), 0);
    for (std::uint32_t step = 1; texts_.size() < limit && !queue_.empty(); ++step) {
      const PairEntry best = queue_.top();
      queue_.pop();
      const std::uint64_t key = TokenizerTables::mergeKey(best.left, best.right);
      const auto current = pairCounts_.find(key);
      if (current == pairCounts_.end() || current->second != best.count || best.count <= 0) {
        continue;  // an entry from before the count changed
      }
      const Token result = tokenFor(texts_[best.left] + texts_[best.right]);
      merges_.push_back(texts_[best.left] + " " + texts_[best.right]);

      std::set<std::uint64_t> changed;
      const std::vector<std::uint32_t> holders = std::move(pairWords_[key]);
      pairWords_.erase(key);
      for (const std::uint32_t w : holders) {
        if (mergedIn[w] == step) {
          continue;
        }
        mergedIn[w] = step;
        mergeInWord(w, best, result, changed);
      }
      for (const std::uint64_t changedKey : changed) {
        const std::int64_t count = pairCounts_[changedKey];
        if (count > 0) {
          queue_.push(entryFor(changedKey, count));
        } else {
          pairCounts_.erase(changedKey);
        }
      }
    }
  }

  const std::vector<std::string>& texts() const { return texts_; }
  const std::vector<std::string>& merges() const { return merges_; }

 private:
  static PairEntry entryFor(std::uint64_t key, std::int64_t count) {
    return {count, static_cast<Token>(key >> 32), static_cast<Token>(key & 0xFFFFFFFFu)};
  }

  // Two merges can spell the same text ("a bc", "ab c"): both name the one token.
  Token tokenFor(const std::string& text) {
    if (const auto found = ids_.find(text); found != ids_.end()) {
      return found->second;
    }
    const auto token = static_cast<Token>(texts_.size());
    texts_.push_back(text);
    ids_.emplace(text, token);
    return token;
  }

  void mergeInWord(std::uint32_t w, const PairEntry& pair, Token result,
                   std::set<std::uint64_t>& changed) {
    Word& word = words_[w];
    const auto countPairs = [&](std::int64_t sign) {
      for (std::size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const std::uint64_t key = TokenizerTables::mergeKey(word.symbols[i], word.symbols[i + 1]);
        pairCounts_[key] += sign * word.count;
        changed.insert(key);
        if (sign > 0 && (word.symbols[i] == result || word.symbols[i + 1] == result)) {
          pairWords_[key].push_back(w);
        }
      }
    };
    countPairs(-1);
    std::vector<Token> merged;
    merged.reserve(word.symbols.size());
    for (std::size_t i = 0; i < word.symbols.size(); ++i) {
      if (i + 1 < word.symbols.size() && word.symbols[i] == pair.left &&
          word.symbols[i + 1] == pair.right) {
        merged.push_back(result);
        ++i;
      } else {
        merged.push_back(word.symbols[i]);
      }
    }
    word.symbols = std::move(merged);
    countPairs(+1);
  }

  std::vector<Word> words_;
  std::vector<std::string> texts_;
  TokenIds ids_;
  std::vector<std::string> merges_;
  std::unordered_map<std::uint64_t, std::int64_t> pairCounts_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> pairWords_;
  std::priority_queue<PairEntry> queue_;
};

Token findToken(const std::vector<std::string>& tokens, std::size_t from,
                std::initializer_list<std::string_view> texts) {
  for (const std::string_view text : texts) {
    const auto found =
        std::find(tokens.begin() + static_cast<std::ptrdiff_t>(from), tokens.end(), text);
    if (found != tokens.end()) {
      return static_cast<Token>(found - tokens.begin());
    }
  }
  return -1;
}

}  // namespace

Result<Vocabulary> trainByteLevelBpe(std::string_view corpus, std::size_t vocabSize,
                                     std::string_view pre,
                                     const std::vector<std::string>& specialTokens) {
  const auto preTokenizer = preTokenizerFromName(pre);
  if (!preTokenizer) {
    return Error{"unsupported pre-tokenizer '" + std::string(pre) + "': this engine supports " +
                 [] {
                   std::string names;
                   for (const std::string_view name : supportedPreTokenizers()) {
                     names += names.empty() ? "" : ", ";
                     names += name;
                   }
                   return names;
                 }()};
  }
  const std::set<std::string> specials(specialTokens.begin(), specialTokens.end());
  if (specials.size() != specialTokens.size() || specials.contains("")) {
    return Error{"the special tokens must be distinct and not empty"};
  }
  if (vocabSize < 256 + specialTokens.size()) {
    return Error{"a vocabulary of " + std::to_string(vocabSize) + " tokens cannot hold the 256 " +
                 "byte tokens and " + std::to_string(specialTokens.size()) + " special tokens"};
  }
  const std::size_t learnedLimit = vocabSize - specialTokens.size();

  std::vector<std::string_view> pieces;
  preTokenize(*preTokenizer, corpus, pieces);
  std::map<std::string_view, std::int64_t> wordCounts;
  for (const std::string_view piece : pieces) {
    ++wordCounts[piece];
  }
  Trainer trainer(wordCounts);
  trainer.run(learnedLimit);

  Vocabulary vocabulary;
  vocabulary.model = "gpt2";
  vocabulary.pre = std::string(pre);
  vocabulary.tokens = trainer.texts();
  vocabulary.merges = trainer.merges();
  const std::size_t learned = vocabulary.tokens.size();
  vocabulary.types.assign(learned, TokenType::Normal);
  for (const std::string& special : specialTokens) {
    vocabulary.tokens.push_back(special);
    vocabulary.types.push_back(TokenType::Control);
  }
  for (std::size_t n = 0; vocabulary.tokens.size() < vocabSize; ++n) {
    std::string reserved = "<|reserved_special_token_" + std::to_string(n) + "|>";
    if (specials.contains(reserved)) {
      continue;
    }
    vocabulary.tokens.push_back(std::move(reserved));
    vocabulary.types.push_back(TokenType::Control);
  }
  vocabulary.bos = findToken(vocabulary.tokens, learned,
                             {"<|begin_of_text|>", "<｜begin▁of▁sentence｜>", "<s>"});
  vocabulary.eos = findToken(vocabulary.tokens, learned,
                             {"<|eot_id|>", "<|im_end|>", "<｜end▁of▁sentence｜>",
                              "<|end_of_text|>", "<|endoftext|>", "</s>"});
  vocabulary.addBos = vocabulary.bos >= 0;
  return vocabulary;
}

}  // namespace aibox::text
