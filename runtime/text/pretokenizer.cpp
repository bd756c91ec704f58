#include "runtime/text/pretokenizer.hpp"

#include <cstdint>

#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

enum CharFlag : std::uint8_t {
  kLetter = 1,
  kNumber = 2,
  kSpace = 4,
  kNewline = 8,  // \r or \n
};

struct Char {
  std::uint32_t offset;
  char32_t codePoint;
  std::uint8_t flags;
};

// The text as characters with their classes; matchers look at index `end` and past it safely.
class Chars {
 public:
  explicit Chars(std::string_view text) {
    chars_.reserve(text.size());
    for (std::size_t offset = 0; offset < text.size();) {
      const unicode::Char c = unicode::decodeAt(text, offset);
      std::uint8_t flags = 0;
      if (unicode::isLetter(c.codePoint)) {
        flags |= kLetter;
      }
      if (unicode::isNumber(c.codePoint)) {
        flags |= kNumber;
      }
      if (unicode::isWhitespace(c.codePoint)) {
        flags |= kSpace;
      }
      if (c.codePoint == '\r' || c.codePoint == '\n') {
        flags |= kNewline;
      }
      chars_.push_back({static_cast<std::uint32_t>(offset), c.codePoint, flags});
      offset += c.length;
    }
    chars_.push_back({static_cast<std::uint32_t>(text.size()), 0, 0});  // sentinel
  }

  std::size_t size() const { return chars_.size() - 1; }
  std::uint32_t offset(std::size_t i) const { return chars_[i].offset; }
  char32_t at(std::size_t i) const { return i < size() ? chars_[i].codePoint : 0; }
  bool is(std::size_t i, std::uint8_t flag) const { return i < size() && (chars_[i].flags & flag); }
  // Neither \s, \p{L} nor \p{N}: punctuation, symbols, marks, controls, invalid bytes.
  bool isOther(std::size_t i) const {
    return i < size() && !(chars_[i].flags & (kLetter | kNumber | kSpace));
  }
  std::size_t runEnd(std::size_t i, std::uint8_t flag) const {
    while (is(i, flag)) {
      ++i;
    }
    return i;
  }
  std::size_t otherRunEnd(std::size_t i) const {
    while (isOther(i)) {
      ++i;
    }
    return i;
  }

 private:
  std::vector<Char> chars_;
};

char32_t asciiLower(char32_t c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

// 's|'t|'re|'ve|'m|'ll|'d at i: the end, or i when there is none.
std::size_t contractionEnd(const Chars& chars, std::size_t i, bool ignoreCase) {
  if (chars.at(i) != '\'') {
    return i;
  }
  const auto letter = [&](std::size_t j) {
    return ignoreCase ? asciiLower(chars.at(j)) : chars.at(j);
  };
  const char32_t first = letter(i + 1);
  if (first == 's' || first == 't' || first == 'm' || first == 'd') {
    return i + 2;
  }
  const char32_t second = letter(i + 2);
  if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
      (first == 'l' && second == 'l')) {
    return i + 3;
  }
  return i;
}

// \s+(?!\S)|\s+ at a whitespace character i: a run of spaces leaves its last one to the word
// that follows, unless the text ends there or the run is one character.
std::size_t spaceRunEnd(const Chars& chars, std::size_t i) {
  const std::size_t end = chars.runEnd(i, kSpace);
  if (end == chars.size() || end - i < 2) {
    return end;
  }
  return end - 1;
}

std::size_t gpt2WordEnd(const Chars& chars, std::size_t i) {
  if (const std::size_t end = contractionEnd(chars, i, false); end != i) {
    return end;
  }
  const bool space = chars.at(i) == ' ';
  for (const std::uint8_t flag : {kLetter, kNumber}) {
    if (space && chars.is(i + 1, flag)) {
      return chars.runEnd(i + 1, flag);
    }
    if (chars.is(i, flag)) {
      return chars.runEnd(i, flag);
    }
  }
  if (space && chars.isOther(i + 1)) {
    return chars.otherRunEnd(i + 1);
  }
  if (chars.isOther(i)) {
    return chars.otherRunEnd(i);
  }
  return spaceRunEnd(chars, i);
}

std::size_t llama3WordEnd(const Chars& chars, std::size_t i, std::size_t maxDigits) {
  if (const std::size_t end = contractionEnd(chars, i, true); end != i) {
    return end;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!chars.is(i, kNewline | kLetter | kNumber) && chars.is(i + 1, kLetter)) {
    return chars.runEnd(i + 1, kLetter);
  }
  if (chars.is(i, kLetter)) {
    return chars.runEnd(i, kLetter);
  }
  // \p{N}{1,3} or \p{N}
  if (chars.is(i, kNumber)) {
    std::size_t end = i;
    while (end - i < maxDigits && chars.is(end, kNumber)) {
      ++end;
    }
    return end;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  const std::size_t start = chars.at(i) == ' ' && chars.isOther(i + 1) ? i + 1 : i;
  if (chars.isOther(start)) {
    return chars.runEnd(chars.otherRunEnd(start), kNewline);
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last line break
  const std::size_t runEnd = chars.runEnd(i, kSpace);
  for (std::size_t j = runEnd; j > i; --j) {
    if (chars.is(j - 1, kNewline)) {
      return j;
    }
  }
  return spaceRunEnd(chars, i);
}

}  // namespace

const std::vector<std::string_view>& preTokenizerNames() {
  static const std::vector<std::string_view> names = {
      "llama-bpe", "llama3", "llama-v3", "qwen2", "deepseek-r1-qwen", "default", "gpt2", "gpt-2"};
  return names;
}

std::optional<PreTokenizer> preTokenizerFromName(std::string_view name) {
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") {
    return PreTokenizer::Llama3;
  }
  if (name == "qwen2" || name == "deepseek-r1-qwen") {
    return PreTokenizer::Qwen2;
  }
  if (name.empty() || name == "default" || name == "gpt2" || name == "gpt-2") {
    return PreTokenizer::Gpt2;
  }
  return std::nullopt;
}

void preTokenize(PreTokenizer preTokenizer, std::string_view text,
                 std::vector<std::string_view>& words) {
  const Chars chars(text);
  for (std::size_t i = 0; i < chars.size();) {
    std::size_t end = 0;
    switch (preTokenizer) {
      case PreTokenizer::Gpt2:
        end = gpt2WordEnd(chars, i);
        break;
      case PreTokenizer::Llama3:
        end = llama3WordEnd(chars, i, 3);
        break;
      case PreTokenizer::Qwen2:
        end = llama3WordEnd(chars, i, 1);
        break;
    }
    words.push_back(text.substr(chars.offset(i), chars.offset(end) - chars.offset(i)));
    i = end;
  }
}

}  // namespace aibox::text
