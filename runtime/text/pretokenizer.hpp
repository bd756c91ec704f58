#pragma once
// Pre-tokenizers of byte-level BPE vocabularies: the regex split that cuts text into the words
// BPE merges run within (internal to runtime/text). Hand-written matchers over code points follow
// the regexes of the models' tokenizer.json alternative by alternative, leftmost first:
//  Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//  Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//          | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//  Qwen2:  as Llama3 with \p{N} (one digit a word) for \p{N}{1,3}
// The case-insensitive contractions are matched over ASCII letters only, as llama.cpp does.
// A byte that is not well-formed UTF-8 counts as a character outside \s, \p{L} and \p{N}.

#include <optional>
#include <string_view>
#include <vector>

namespace aibox::text {

enum class PreTokenizer { Gpt2, Llama3, Qwen2 };

// tokenizer.ggml.pre to a pre-tokenizer: "llama-bpe", "llama3", "llama-v3" -> Llama3; "qwen2",
// "deepseek-r1-qwen" -> Qwen2; "", "default", "gpt2", "gpt-2" -> Gpt2.
std::optional<PreTokenizer> preTokenizerFromName(std::string_view name);
const std::vector<std::string_view>& preTokenizerNames();

// Appends to `words` the consecutive pieces of `text` (views into it, covering all of it).
void preTokenize(PreTokenizer preTokenizer, std::string_view text,
                 std::vector<std::string_view>& words);

}  // namespace aibox::text
