#pragma once
// Constrained decoding for response_format: a JSON schema compiled into a byte-level matcher
// (a pushdown automaton over the schema's nodes) that says which bytes may come next, and a
// filter that turns that into the tokens allowed next by walking a trie of the vocabulary with
// the matcher. Every output the matcher accepts parses as JSON and matches the schema.
//
// The text is the compact form with at most one space after ':' and ',': properties in the
// schema's order (required ones always, optional ones when the model writes them), numbers of
// at most 15 integer and 15 fraction digits (and exponents of 3), strings with escapes.

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/text/tokenizer.hpp"

namespace aibox::server {

class JsonSchema {
 public:
  struct Property {
    std::string key;  // as written in the output: the JSON string with its quotes
    int node = 0;
    bool required = false;
  };
  struct Node {
    enum class Kind { Any, Object, Array, String, Number, Integer, Literal, Union, Sequence };
    Kind kind = Kind::Any;
    std::vector<Property> properties;  // Object (empty and `open`: any keys)
    bool open = false;                 // Object: any keys, values of `items`
    int items = -1;                    // Array: its items; open Object: its values
    int keys = -1;                     // open Object: its keys (a String)
    std::uint32_t min = 0;             // Array: minItems; String: minLength
    std::uint32_t max = UINT32_MAX;    // Array: maxItems; String: maxLength
    std::vector<std::string> texts;    // Literal: the JSON texts it may be (enum, const, ...)
    std::vector<int> alternatives;     // Union (a list of types): told apart by first byte;
                                       // Sequence: the values written one after another
  };

  // Compiles a schema; an error names the keyword (and where, as a JSON pointer) that is
  // wrong or not supported.
  static std::variant<std::shared_ptr<const JsonSchema>, std::string> compile(
      const boost::json::value& schema);
  // Any JSON object (response_format {"type":"json_object"}).
  static std::shared_ptr<const JsonSchema> anyObject();
  // `inner` between two fixed texts (a tool call's tags); an empty one is left out.
  static std::shared_ptr<const JsonSchema> framed(const JsonSchema& inner,
                                                  const std::string& prefix,
                                                  const std::string& suffix);

  const Node& node(int index) const { return nodes_[static_cast<std::size_t>(index)]; }
  int root() const { return root_; }

 private:
  friend class SchemaCompiler;
  std::vector<Node> nodes_;
  int root_ = 0;
};

// Where a text stands in a schema.
class JsonMatcher {
 public:
  explicit JsonMatcher(std::shared_ptr<const JsonSchema> schema);
  // Takes the bytes if the schema allows them next; false (the matcher unchanged) if not.
  bool feed(std::string_view bytes);
  // The text so far is a whole value of the schema (and its frame).
  bool complete() const;
  // Nothing may follow.
  bool finished() const { return stack_.empty(); }

 private:
  friend class TokenFilter;
  struct Frame {
    int node = 0;
    std::uint8_t phase = 0;
    bool spaced = false;       // the optional space is used
    std::uint8_t pending = 0;  // String: UTF-8 continuation bytes (or \u hex digits) due
    std::uint8_t lead = 0;     // String: the byte that started them
    std::uint32_t count = 0;   // items, characters, digits
    int property = -1;         // Object: the last property written
    std::string prefix;        // Object: the key so far; Literal: the text so far
  };
  enum class Step { Continue, Finished, Reject, Yield, Push };
  bool feedByte(unsigned char c);
  Step step(Frame& frame, unsigned char c, int& child);
  Step object(Frame& f, const JsonSchema::Node& n, unsigned char c, int& child);
  static Step key(Frame& f, const JsonSchema::Node& n, int& child);
  Step array(Frame& f, const JsonSchema::Node& n, unsigned char c, int& child);
  static Step string(Frame& f, const JsonSchema::Node& n, unsigned char c);
  static Step number(Frame& f, bool integer, unsigned char c);
  static Step literal(Frame& f, const JsonSchema::Node& n, unsigned char c);
  bool canEnd(const Frame& f) const;

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Frame> stack_;
};

// The tokens a matcher allows next, over one model's vocabulary (built once per model).
class TokenFilter {
 public:
  explicit TokenFilter(const text::Tokenizer& tokenizer);
  // Sets the logits of every token the matcher does not allow next to -infinity; the
  // end-of-generation tokens are allowed only once the text is complete. False when no token is
  // allowed (the vocabulary cannot write what the schema needs).
  bool mask(const JsonMatcher& matcher, std::span<float> logits) const;

 private:
  struct TrieNode {
    std::vector<std::pair<unsigned char, std::uint32_t>> children;
    std::vector<text::Token> tokens;  // tokens whose bytes end here
  };
  void walk(std::uint32_t node, const JsonMatcher& matcher, std::vector<char>& allowed) const;

  std::vector<TrieNode> trie_;
  std::vector<text::Token> ends_;  // end-of-generation tokens
};

}  // namespace aibox::server
