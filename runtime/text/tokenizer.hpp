#pragma once
// Tokenizers of GGUF models, built from the tokenizer.ggml.* metadata:
//  - "gpt2": byte-level BPE (vocabulary of byte-mapped strings, ranked merges) after a
//    pre-tokenizer split chosen by tokenizer.ggml.pre ("llama-bpe" for Llama 3 and the
//    DeepSeek-R1 Llama distills, "qwen2" and "deepseek-r1-qwen" for Qwen2/2.5 and the
//    DeepSeek-R1 Qwen distills, "default"/"gpt2" for the GPT-2 split);
//  - "llama": SentencePiece-style BPE on scores, "▁" for spaces, <0xNN> byte fallback.
// Special and added tokens are matched whole in the text, leftmost-longest, and never produced by
// merges: USER_DEFINED tokens always (as Hugging Face and llama.cpp do, e.g. "<think>" of the R1
// distills), CONTROL tokens only when parseSpecial is set.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/modelfile/modelfile.hpp"

namespace aibox::text {

using modelfile::Error;
using modelfile::Result;
using Token = std::int32_t;

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : std::int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct Vocabulary {
  std::string model;                // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;                  // tokenizer.ggml.pre (gpt2 only; empty = "default")
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores (llama; may be empty for gpt2)
  std::vector<TokenType> types;     // tokenizer.ggml.token_type (empty = all Normal)
  std::vector<std::string> merges;  // tokenizer.ggml.merges "a b" (gpt2)
  Token bos = -1;                   // tokenizer.ggml.bos_token_id, -1 when absent
  Token eos = -1;
  Token eot = -1;  // tokenizer.ggml.eot_token_id, or found by text (<|eot_id|>, <|im_end|>, ...)
  Token unk = -1;
  Token pad = -1;
  bool addBos = false;  // tokenizer.ggml.add_bos_token (default: true for llama, false for gpt2)
  bool addEos = false;
  bool addSpacePrefix = true;  // tokenizer.ggml.add_space_prefix (llama only; default true)
};

struct TokenizerTables;

class Tokenizer {
 public:
  // Checks the vocabulary (known model and pre-tokenizer, ids in range, merges that name
  // tokens, add_bos/add_eos with a token to add) and builds the lookup tables. An unknown model
  // or pre-tokenizer is an error that lists the supported ones. vocabulary().eot is filled in
  // from the token texts when the file names none.
  static Result<Tokenizer> create(Vocabulary vocabulary);

  // Text to tokens. addSpecial adds BOS/EOS as the vocabulary asks; parseSpecial lets special
  // token texts in `text` (e.g. "<|im_start|>") become their tokens.
  std::vector<Token> encode(std::string_view text, bool addSpecial, bool parseSpecial) const;

  // The bytes one token stands for (a piece may be part of a UTF-8 character; callers join
  // pieces before showing them). Control tokens give their text only when renderSpecial.
  std::string piece(Token token, bool renderSpecial = false) const;
  // The pieces joined. For "llama" vocabularies with the space prefix, the leading space of the
  // first text piece is dropped as llama.cpp does (encode put it there), so decode(encode(s))
  // == s for any bytes s without special token texts (and, for "llama", without "▁").
  std::string decode(const std::vector<Token>& tokens, bool renderSpecial = false) const;

  // End of generation: EOS, EOT, or any control token the vocabulary marks as an end
  // (<|eot_id|>, <|end_of_text|>, <|im_end|>, <|endoftext|>, <｜end▁of▁sentence｜>).
  bool isEndOfGeneration(Token token) const;

  const Vocabulary& vocabulary() const { return vocabulary_; }
  std::size_t size() const { return vocabulary_.tokens.size(); }

 private:
  Tokenizer() = default;
  Vocabulary vocabulary_;
  // The implementation's tables (token lookup, merge ranks, special tokens, ...), shared by
  // copies: a Tokenizer is cheap to copy and safe to use from several threads at once.
  std::shared_ptr<const TokenizerTables> tables_;
};

// The pre-tokenizer names this engine knows, for messages and docs.
std::vector<std::string_view> supportedPreTokenizers();

// Trains a byte-level BPE vocabulary (model "gpt2") for test models: the 256 byte tokens (token id
// = byte value), one token per merge learned on the words `pre` splits `corpus` into (most
// frequent pair first, ties to the lowest token ids), then `specialTokens` as CONTROL tokens, and
// CONTROL "<|reserved_special_token_N|>" tokens to fill it to exactly `vocabSize` when the corpus
// runs out of pairs. The same inputs always give the same vocabulary. BOS is the first special
// token among <|begin_of_text|>, <｜begin▁of▁sentence｜>, <s> (addBos set when found); EOS the
// first among <|eot_id|>, <|im_end|>, <｜end▁of▁sentence｜>, <|end_of_text|>, <|endoftext|>,
// </s>. builtinCorpus() gives about 2,700 merges: past ~3,000 tokens the rest is reserved.
// Errors: an unknown `pre`, empty or repeated special tokens, a vocabSize below 256 plus the
// special tokens.
Result<Vocabulary> trainByteLevelBpe(std::string_view corpus, std::size_t vocabSize,
                                     std::string_view pre,
                                     const std::vector<std::string>& specialTokens);

// A few KB of varied text written for training test vocabularies: English and Simplified
// Chinese prose, numbers, code, punctuation and emoji.
std::string_view builtinCorpus();

}  // namespace aibox::text
