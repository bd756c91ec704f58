#include "runtime/text/unicode.hpp"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>

namespace aibox::text::unicode {
namespace {

// GPT-2's choice: these bytes keep their own code point; the others, in byte order, take
// U+0100 onwards.
bool isPrintableByte(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct ByteAlphabet {
  std::array<std::string, 256> utf8;
  std::array<std::int16_t, 0x144> byteOf{};  // code points below U+0144; -1 = not in the alphabet
};

ByteAlphabet makeByteAlphabet() {
  ByteAlphabet alphabet;
  alphabet.byteOf.fill(-1);
  char32_t next = 0x100;
  for (int byte = 0; byte < 256; ++byte) {
    const char32_t codePoint = isPrintableByte(byte) ? static_cast<char32_t>(byte) : next++;
    appendUtf8(alphabet.utf8[static_cast<std::size_t>(byte)], codePoint);
    alphabet.byteOf[codePoint] = static_cast<std::int16_t>(byte);
  }
  return alphabet;
}

const ByteAlphabet& byteAlphabet() {
  static const ByteAlphabet alphabet = makeByteAlphabet();
  return alphabet;
}

std::int8_t category(char32_t c) {
  return u_charType(static_cast<UChar32>(c));
}

bool isAsciiLetter(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

Char decodeAt(std::string_view text, std::size_t offset) {
  const auto byteAt = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned lead = byteAt(offset);
  if (lead < 0x80) {
    return {lead, 1};
  }
  // The sequence the lead byte starts: its length, the lead's payload bits, and the smallest
  // code point it may carry (anything below is an overlong form).
  struct Form {
    std::uint32_t length;
    unsigned payload;
    char32_t minimum;
  };
  Form form{};
  if (lead >= 0xC2 && lead <= 0xDF) {
    form = {2, lead & 0x1Fu, 0x80};
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    form = {3, lead & 0x0Fu, 0x800};
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    form = {4, lead & 0x07u, 0x10000};
  } else {
    return {kInvalid, 1};
  }
  if (text.size() - offset < form.length) {
    return {kInvalid, 1};
  }
  char32_t codePoint = form.payload;
  for (std::uint32_t i = 1; i < form.length; ++i) {
    const unsigned byte = byteAt(offset + i);
    if ((byte & 0xC0u) != 0x80u) {
      return {kInvalid, 1};
    }
    codePoint = (codePoint << 6) | (byte & 0x3Fu);
  }
  if (codePoint < form.minimum || codePoint > 0x10FFFF ||
      (codePoint >= 0xD800 && codePoint <= 0xDFFF)) {
    return {kInvalid, 1};
  }
  return {codePoint, form.length};
}

void appendUtf8(std::string& out, char32_t c) {
  const auto put = [&out](char32_t value) { out.push_back(static_cast<char>(value)); };
  if (c < 0x80) {
    put(c);
    return;
  }
  if (c < 0x800) {
    put(0xC0 | (c >> 6));
  } else if (c < 0x10000) {
    put(0xE0 | (c >> 12));
    put(0x80 | ((c >> 6) & 0x3F));
  } else {
    put(0xF0 | (c >> 18));
    put(0x80 | ((c >> 12) & 0x3F));
    put(0x80 | ((c >> 6) & 0x3F));
  }
  put(0x80 | (c & 0x3F));
}

bool isLetter(char32_t c) {
  if (c < 0x80) {
    return isAsciiLetter(c);
  }
  if (c == kInvalid) {
    return false;
  }
  switch (category(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return true;
    default:
      return false;
  }
}

bool isNumber(char32_t c) {
  if (c < 0x80) {
    return c >= '0' && c <= '9';
  }
  if (c == kInvalid) {
    return false;
  }
  switch (category(c)) {
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return true;
    default:
      return false;
  }
}

bool isWhitespace(char32_t c) {
  if (c < 0x80) {
    return c == ' ' || (c >= '\t' && c <= '\r');
  }
  return c != kInvalid && u_isUWhiteSpace(static_cast<UChar32>(c));
}

bool isPythonSpace(char32_t c) {
  return isWhitespace(c) || (c >= 0x1C && c <= 0x1F);
}

std::string_view byteToUnicode(std::uint8_t byte) {
  return byteAlphabet().utf8[byte];
}

int unicodeToByte(char32_t c) {
  const auto& byteOf = byteAlphabet().byteOf;
  return c < byteOf.size() ? byteOf[c] : -1;
}

std::string_view pythonStrip(std::string_view text) {
  std::size_t begin = text.size();
  std::size_t end = 0;
  for (std::size_t offset = 0; offset < text.size();) {
    const unicode::Char c = decodeAt(text, offset);
    if (!isPythonSpace(c.codePoint)) {
      begin = std::min(begin, offset);
      end = offset + c.length;
    }
    offset += c.length;
  }
  return begin < end ? text.substr(begin, end - begin) : std::string_view{};
}

}  // namespace aibox::text::unicode
