#pragma once
// UTF-8 and the Unicode character classes the tokenizers and chat templates need (internal to
// runtime/text). Categories come from ICU, so they follow the Unicode version Debian ships.

#include <cstdint>
#include <string>
#include <string_view>

namespace aibox::text::unicode {

// A code point that stands for one byte that is not part of well-formed UTF-8.
inline constexpr char32_t kInvalid = 0xFFFFFFFF;

// One character of a UTF-8 text. A byte that does not start a well-formed sequence (a stray
// continuation byte, an overlong form, a surrogate, a truncated end) is one `kInvalid`
// character of length 1, so every byte of the text belongs to exactly one character.
struct Char {
  char32_t codePoint;
  std::uint32_t length;  // 1 to 4 bytes
};

// The character at `offset` (< text.size()).
Char decodeAt(std::string_view text, std::size_t offset);
void appendUtf8(std::string& out, char32_t codePoint);

bool isLetter(char32_t c);       // \p{L}
bool isNumber(char32_t c);       // \p{N}
bool isWhitespace(char32_t c);   // \s of the tokenizers' regexes: the White_Space property
bool isPythonSpace(char32_t c);  // what Python's str.strip (and so Jinja's trim) removes
// Python's str.strip(), which Jinja's trim filter and the templates' .strip() call.
std::string_view pythonStrip(std::string_view text);

// GPT-2's byte-level alphabet: each byte is written as a printable character ("Ġ" for a space).
std::string_view byteToUnicode(std::uint8_t byte);  // that character in UTF-8
int unicodeToByte(char32_t c);                      // its byte, -1 when c is not in the alphabet

}  // namespace aibox::text::unicode
