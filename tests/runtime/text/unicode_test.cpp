// UTF-8 decoding (every byte belongs to one character, malformed ones alone), the character
// classes, and GPT-2's byte alphabet.

#include "runtime/text/unicode.hpp"

#include <gtest/gtest.h>

#include <set>

namespace aibox::text::unicode {
namespace {

TEST(UnicodeTest, WellFormedCharactersDecode) {
  EXPECT_EQ(decodeAt("a", 0).codePoint, U'a');
  EXPECT_EQ(decodeAt("é", 0).codePoint, U'é');
  EXPECT_EQ(decodeAt("中", 0).length, 3u);
  EXPECT_EQ(decodeAt("😀", 0).codePoint, U'😀');
  EXPECT_EQ(decodeAt("x😀", 1).length, 4u);
}

TEST(UnicodeTest, MalformedBytesStandAlone) {
  for (const std::string_view bad : {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",
                                     "\xF4\x90\x80\x80", "\xE4\xB8", "\xFF", "\xC3("}) {
    const Char c = decodeAt(bad, 0);
    EXPECT_EQ(c.codePoint, kInvalid) << bad.size();
    EXPECT_EQ(c.length, 1u);
  }
}

TEST(UnicodeTest, EncodingRoundTrips) {
  for (const char32_t c :
       {U'\0', U'a', U'\u07FF', U'\u0800', U'\uFFFD', U'\U00010000', U'\U0010FFFF'}) {
    std::string text;
    appendUtf8(text, c);
    EXPECT_EQ(decodeAt(text, 0).codePoint, c);
    EXPECT_EQ(decodeAt(text, 0).length, text.size());
  }
}

TEST(UnicodeTest, Classes) {
  EXPECT_TRUE(isLetter(U'a') && isLetter(U'中') && isLetter(U'ǅ') && isLetter(U'ʰ'));
  EXPECT_FALSE(isLetter(U'1') || isLetter(U'_') || isLetter(U'\u0301') || isLetter(kInvalid));
  EXPECT_TRUE(isNumber(U'7') && isNumber(U'٣') && isNumber(U'²') && isNumber(U'Ⅻ'));
  EXPECT_FALSE(isNumber(U'a') || isNumber(kInvalid));
  EXPECT_TRUE(isWhitespace(U' ') && isWhitespace(U'\t') && isWhitespace(U'\u3000') &&
              isWhitespace(U'\u00A0') && isWhitespace(U'\u2028'));
  EXPECT_FALSE(isWhitespace(U'\u200B') || isWhitespace(U'\x1C') || isWhitespace(kInvalid));
  EXPECT_TRUE(isPythonSpace(U'\x1C') && isPythonSpace(U'\u3000'));
}

TEST(UnicodeTest, ByteAlphabetIsABijectionOfPrintableCharacters) {
  EXPECT_EQ(byteToUnicode(' '), "Ġ");
  EXPECT_EQ(byteToUnicode('\n'), "Ċ");
  EXPECT_EQ(byteToUnicode('A'), "A");
  EXPECT_EQ(byteToUnicode(0xFF), "ÿ");
  std::set<std::string_view> characters;
  for (int byte = 0; byte < 256; ++byte) {
    const std::string_view character = byteToUnicode(static_cast<std::uint8_t>(byte));
    characters.insert(character);
    EXPECT_EQ(unicodeToByte(decodeAt(character, 0).codePoint), byte);
    EXPECT_FALSE(isWhitespace(decodeAt(character, 0).codePoint));
  }
  EXPECT_EQ(characters.size(), 256u);
  EXPECT_EQ(unicodeToByte(U'中'), -1);
}

}  // namespace
}  // namespace aibox::text::unicode
