#include "runtime/server/json_schema.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "common/json/json.hpp"

namespace aibox::server {

using Kind = JsonSchema::Node::Kind;

class SchemaCompiler {
 public:
  explicit SchemaCompiler(JsonSchema& out) : out_(out) {}

  // Compiles `schema` at `path` (a JSON pointer); returns the node, or -1 with error set.
  int compile(const boost::json::value& schema, const std::string& path) {
    if (schema.is_bool()) {
      return schema.as_bool() ? any() : fail(path, "is false: nothing can match it");
    }
    if (!schema.is_object()) {
      return fail(path, "must be a schema object");
    }
    const auto& s = schema.as_object();
    static const std::set<std::string> kAnnotations{
        "title", "description", "$schema", "$id", "$comment", "default", "examples", "strict"};
    static const std::set<std::string> kKeywords{
        "type",     "properties", "required", "additionalProperties",
        "items",    "enum",       "const",    "minItems",
        "maxItems", "minLength",  "maxLength"};
    for (const auto& [key, value] : s) {
      std::string k(key);
      if (!kAnnotations.contains(k) && !kKeywords.contains(k)) {
        return fail(path, "uses the keyword '" + k +
                              "', which constrained decoding does not support (supported: "
                              "type, properties, required, additionalProperties, items, enum, "
                              "const, minItems, maxItems, minLength, maxLength)");
      }
    }
    if (const auto* value = s.if_contains("const")) {
      return literal({json::serialize(*value)});
    }
    if (const auto* values = s.if_contains("enum")) {
      if (!values->is_array() || values->as_array().empty()) {
        return fail(path + "/enum", "must be a non-empty array");
      }
      std::vector<std::string> texts;
      for (const auto& v : values->as_array()) {
        texts.push_back(json::serialize(v));
      }
      return literal(std::move(texts));
    }
    std::vector<std::string> types;
    if (const auto* type = s.if_contains("type")) {
      if (type->is_string()) {
        types.emplace_back(type->as_string());
      } else if (type->is_array() && !type->as_array().empty()) {
        for (const auto& t : type->as_array()) {
          if (!t.is_string()) {
            return fail(path + "/type", "must be a type name or a list of them");
          }
          types.emplace_back(t.as_string());
        }
      } else {
        return fail(path + "/type", "must be a type name or a list of them");
      }
    } else if (s.contains("properties")) {
      types.emplace_back("object");
    } else if (s.contains("items")) {
      types.emplace_back("array");
    } else {
      return any();
    }
    if (types.size() == 1) {
      return typed(s, types[0], path);
    }
    if (std::find(types.begin(), types.end(), "number") != types.end() &&
        std::find(types.begin(), types.end(), "integer") != types.end()) {
      return fail(path + "/type", "lists both number and integer: list number alone");
    }
    JsonSchema::Node node{.kind = Kind::Union};
    for (const auto& type : types) {
      int alternative = typed(s, type, path);
      if (alternative < 0) {
        return -1;
      }
      node.alternatives.push_back(alternative);
    }
    return add(std::move(node));
  }

  std::string error;

  int any() {
    if (any_ >= 0) {
      return any_;
    }
    any_ = add({.kind = Kind::Union});
    keys_ = add({.kind = Kind::String, .max = 64});
    int object = add({.kind = Kind::Object, .open = true, .items = any_, .keys = keys_});
    int array = add({.kind = Kind::Array, .items = any_});
    int string = add({.kind = Kind::String});
    int number = add({.kind = Kind::Number});
    int words = literal({"true", "false", "null"});
    out_.nodes_[static_cast<std::size_t>(any_)].alternatives = {object, array, string, number,
                                                                words};
    return any_;
  }

  const JsonSchema::Node& node(int index) const { return out_.node(index); }

  int add(JsonSchema::Node node) {
    out_.nodes_.push_back(std::move(node));
    return static_cast<int>(out_.nodes_.size()) - 1;
  }

 private:
  int fail(const std::string& path, const std::string& message) {
    if (error.empty()) {
      error = "the schema at '" + (path.empty() ? std::string("/") : path) + "' " + message;
    }
    return -1;
  }

  int literal(std::vector<std::string> texts) {
    return add({.kind = Kind::Literal, .texts = std::move(texts)});
  }

  // A count keyword: a non-negative integer, or `fallback` when absent.
  bool count(const boost::json::object& s, const char* key, const std::string& path,
             std::uint32_t& out) {
    const auto* value = s.if_contains(key);
    if (value == nullptr) {
      return true;
    }
    if (value->is_int64() && value->as_int64() >= 0 && value->as_int64() <= UINT32_MAX) {
      out = static_cast<std::uint32_t>(value->as_int64());
      return true;
    }
    if (value->is_uint64() && value->as_uint64() <= UINT32_MAX) {
      out = static_cast<std::uint32_t>(value->as_uint64());
      return true;
    }
    fail(path + "/" + key, "must be a non-negative integer");
    return false;
  }

  int typed(const boost::json::object& s, const std::string& type, const std::string& path) {
    if (type == "string") {
      JsonSchema::Node node{.kind = Kind::String};
      if (!count(s, "minLength", path, node.min) || !count(s, "maxLength", path, node.max)) {
        return -1;
      }
      if (node.min > node.max) {
        return fail(path, "has minLength above maxLength");
      }
      return add(std::move(node));
    }
    if (type == "number" || type == "integer") {
      return add({.kind = type == "number" ? Kind::Number : Kind::Integer});
    }
    if (type == "boolean") {
      return literal({"true", "false"});
    }
    if (type == "null") {
      return literal({"null"});
    }
    if (type == "array") {
      JsonSchema::Node node{.kind = Kind::Array};
      if (!count(s, "minItems", path, node.min) || !count(s, "maxItems", path, node.max)) {
        return -1;
      }
      if (node.min > node.max) {
        return fail(path, "has minItems above maxItems");
      }
      const auto* items = s.if_contains("items");
      node.items = items == nullptr ? any() : compile(*items, path + "/items");
      return node.items < 0 ? -1 : add(std::move(node));
    }
    if (type == "object") {
      return object(s, path);
    }
    return fail(path + "/type", "is '" + type +
                                    "': the types are object, array, string, number, integer, "
                                    "boolean and null");
  }

  int object(const boost::json::object& s, const std::string& path) {
    JsonSchema::Node node{.kind = Kind::Object};
    std::set<std::string> required;
    if (const auto* list = s.if_contains("required")) {
      if (!list->is_array()) {
        return fail(path + "/required", "must be a list of property names");
      }
      for (const auto& name : list->as_array()) {
        if (!name.is_string()) {
          return fail(path + "/required", "must be a list of property names");
        }
        required.emplace(name.as_string());
      }
    }
    const auto* extra = s.if_contains("additionalProperties");
    if (extra != nullptr && !extra->is_bool()) {
      return fail(path + "/additionalProperties",
                  "is a schema: only true or false is supported here");
    }
    const auto* properties = s.if_contains("properties");
    if (properties != nullptr && !properties->is_object()) {
      return fail(path + "/properties", "must be an object of schemas");
    }
    if (properties == nullptr || properties->as_object().empty()) {
      bool closed = extra != nullptr && !extra->as_bool();
      if (!required.empty()) {
        return fail(path + "/required", "names properties the schema does not define");
      }
      node.open = !closed;
      node.items = closed ? -1 : any();
      node.keys = closed ? -1 : keys_;
      return add(std::move(node));
    }
    for (const auto& [key, value] : properties->as_object()) {
      int child = compile(value, path + "/properties/" + std::string(key));
      if (child < 0) {
        return -1;
      }
      node.properties.push_back(
          {json::serialize(boost::json::value(key)), child, required.erase(std::string(key)) > 0});
    }
    if (!required.empty()) {
      return fail(path + "/required", "names '" + *required.begin() + "', which is not a property");
    }
    return add(std::move(node));
  }

  JsonSchema& out_;
  int any_ = -1;
  int keys_ = -1;  // the keys of open objects (made with any_)
};

std::variant<std::shared_ptr<const JsonSchema>, std::string> JsonSchema::compile(
    const boost::json::value& schema) {
  auto out = std::make_shared<JsonSchema>();
  SchemaCompiler compiler(*out);
  out->root_ = compiler.compile(schema, "");
  if (out->root_ < 0) {
    return compiler.error;
  }
  return std::shared_ptr<const JsonSchema>(std::move(out));
}

std::shared_ptr<const JsonSchema> JsonSchema::anyObject() {
  auto out = std::make_shared<JsonSchema>();
  SchemaCompiler compiler(*out);
  out->root_ = compiler.node(compiler.any()).alternatives.front();  // the open object
  return out;
}

std::shared_ptr<const JsonSchema> JsonSchema::framed(const JsonSchema& inner,
                                                     const std::string& prefix,
                                                     const std::string& suffix) {
  auto out = std::make_shared<JsonSchema>(inner);
  Node sequence{.kind = Node::Kind::Sequence};
  for (const std::string* text : {&prefix, static_cast<const std::string*>(nullptr), &suffix}) {
    if (text == nullptr) {
      sequence.alternatives.push_back(inner.root_);
    } else if (!text->empty()) {
      out->nodes_.push_back(Node{.kind = Node::Kind::Literal, .texts = {*text}});
      sequence.alternatives.push_back(static_cast<int>(out->nodes_.size() - 1));
    }
  }
  out->nodes_.push_back(std::move(sequence));
  out->root_ = static_cast<int>(out->nodes_.size() - 1);
  return out;
}

namespace {

bool digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

// Could a value of `node` start with byte c?
bool starts(const JsonSchema& schema, int index, unsigned char c) {
  const auto& n = schema.node(index);
  switch (n.kind) {
    case Kind::Object:
      return c == '{';
    case Kind::Array:
      return c == '[';
    case Kind::String:
      return c == '"';
    case Kind::Number:
    case Kind::Integer:
      return c == '-' || digit(c);
    case Kind::Literal:
      return std::any_of(n.texts.begin(), n.texts.end(),
                         [c](const std::string& t) { return !t.empty() && t[0] == char(c); });
    case Kind::Any:
    case Kind::Union:
      return std::any_of(n.alternatives.begin(), n.alternatives.end(),
                         [&](int a) { return starts(schema, a, c); });
    case Kind::Sequence:
      return !n.alternatives.empty() && starts(schema, n.alternatives.front(), c);
  }
  return false;
}

}  // namespace

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonSchema> schema) : schema_(std::move(schema)) {
  stack_.push_back(Frame{.node = schema_->root()});
}

bool JsonMatcher::feed(std::string_view bytes) {
  auto saved = stack_;
  for (char c : bytes) {
    if (!feedByte(static_cast<unsigned char>(c))) {
      stack_ = std::move(saved);
      return false;
    }
  }
  return true;
}

bool JsonMatcher::complete() const {
  return std::all_of(stack_.begin(), stack_.end(), [this](const Frame& f) { return canEnd(f); });
}

bool JsonMatcher::canEnd(const Frame& f) const {
  const auto& n = schema_->node(f.node);
  switch (n.kind) {
    case Kind::Number:
    case Kind::Integer:
      return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
    case Kind::Literal:
      return std::find(n.texts.begin(), n.texts.end(), f.prefix) != n.texts.end();
    case Kind::Sequence:  // the last value has started (the frame above must end too)
      return f.count == n.alternatives.size();
    default:
      return false;
  }
}

bool JsonMatcher::feedByte(unsigned char c) {
  while (!stack_.empty()) {
    int child = -1;
    switch (step(stack_.back(), c, child)) {
      case Step::Continue:
        return true;
      case Step::Finished:
        stack_.pop_back();
        // A sequence whose last value ended is over too.
        while (!stack_.empty() && schema_->node(stack_.back().node).kind == Kind::Sequence &&
               stack_.back().count == schema_->node(stack_.back().node).alternatives.size()) {
          stack_.pop_back();
        }
        return true;
      case Step::Reject:
        return false;
      case Step::Yield:  // the value ended before c: its parent takes c
        stack_.pop_back();
        break;
      case Step::Push:  // a child value starts with c
        stack_.push_back(Frame{.node = child});
        break;
    }
  }
  return false;
}

JsonMatcher::Step JsonMatcher::step(Frame& f, unsigned char c, int& child) {
  const auto& n = schema_->node(f.node);
  switch (n.kind) {
    case Kind::Any:
    case Kind::Union:
      for (int alternative : n.alternatives) {
        if (starts(*schema_, alternative, c)) {
          f = Frame{.node = alternative};
          return step(f, c, child);
        }
      }
      return Step::Reject;
    case Kind::Object:
      return object(f, n, c, child);
    case Kind::Array:
      return array(f, n, c, child);
    case Kind::String:
      return string(f, n, c);
    case Kind::Number:
    case Kind::Integer:
      return number(f, n.kind == Kind::Integer, c);
    case Kind::Literal:
      return literal(f, n, c);
    case Kind::Sequence:
      if (f.count < n.alternatives.size()) {
        child = n.alternatives[f.count++];
        return Step::Push;
      }
      return Step::Yield;
  }
  return Step::Reject;
}

// Phases: 0 before '{', 1 after it, 2 in a key, 3 before ':', 4 after it, 5 after a value,
// 6 after ','. Properties come in the schema's order; a required one is never skipped.
JsonMatcher::Step JsonMatcher::object(Frame& f, const JsonSchema::Node& n, unsigned char c,
                                      int& child) {
  auto firstRequired = [&]() -> std::size_t {  // the next required property, or size()
    for (auto j = static_cast<std::size_t>(f.property + 1); j < n.properties.size(); ++j) {
      if (n.properties[j].required) {
        return j;
      }
    }
    return n.properties.size();
  };
  bool canClose = n.open || firstRequired() == n.properties.size();
  bool canKey = n.open || static_cast<std::size_t>(f.property + 1) < n.properties.size();
  switch (f.phase) {
    case 0:
      f.phase = 1;
      return c == '{' ? Step::Continue : Step::Reject;
    case 1:
    case 5:
      if (c == '}' && canClose) {
        return Step::Finished;
      }
      if (f.phase == 5 && c == ',' && canKey) {
        f.phase = 6;
        return Step::Continue;
      }
      if (f.phase == 1 && c == '"' && canKey) {
        return key(f, n, child);
      }
      return Step::Reject;
    case 6:
      if (c == ' ' && !f.spaced) {
        f.spaced = true;
        return Step::Continue;
      }
      f.spaced = false;
      return c == '"' ? key(f, n, child) : Step::Reject;
    case 2:
      f.prefix += static_cast<char>(c);
      for (auto j = static_cast<std::size_t>(f.property + 1); j < n.properties.size(); ++j) {
        const auto& key = n.properties[j].key;
        if (key == f.prefix) {
          f.property = static_cast<int>(j);
          f.phase = 3;
          return Step::Continue;
        }
        if (key.starts_with(f.prefix)) {
          return Step::Continue;
        }
        if (n.properties[j].required) {
          break;
        }
      }
      return Step::Reject;
    case 3:
      f.phase = 4;
      return c == ':' ? Step::Continue : Step::Reject;
    case 4:
      if (c == ' ' && !f.spaced) {
        f.spaced = true;
        return Step::Continue;
      }
      f.spaced = false;
      f.phase = 5;
      child = n.open ? n.items : n.properties[static_cast<std::size_t>(f.property)].node;
      return Step::Push;
  }
  return Step::Reject;
}

// Starts a key at its opening quote: one of the schema's, or any string for an open object.
JsonMatcher::Step JsonMatcher::key(Frame& f, const JsonSchema::Node& n, int& child) {
  if (n.open) {
    f.phase = 3;
    child = n.keys;
    return Step::Push;
  }
  f.phase = 2;
  f.prefix = "\"";
  return Step::Continue;
}

// Phases: 0 before '[', 1 after it, 2 after an item, 3 after ','.
JsonMatcher::Step JsonMatcher::array(Frame& f, const JsonSchema::Node& n, unsigned char c,
                                     int& child) {
  switch (f.phase) {
    case 0:
      f.phase = 1;
      return c == '[' ? Step::Continue : Step::Reject;
    case 1:
      if (c == ']' && n.min == 0) {
        return Step::Finished;
      }
      if (n.max == 0) {
        return Step::Reject;
      }
      f.phase = 2;
      f.count = 1;
      child = n.items;
      return Step::Push;
    case 2:
      if (c == ']' && f.count >= n.min) {
        return Step::Finished;
      }
      if (c == ',' && f.count < n.max) {
        f.phase = 3;
        return Step::Continue;
      }
      return Step::Reject;
    case 3:
      if (c == ' ' && !f.spaced) {
        f.spaced = true;
        return Step::Continue;
      }
      f.spaced = false;
      f.phase = 2;
      ++f.count;
      child = n.items;
      return Step::Push;
  }
  return Step::Reject;
}

// Phases: 0 before '"', 1 in the string, 2 after '\', 3 in \uXXXX. Characters are counted
// (for minLength and maxLength) as code points. UTF-8 must be well formed (no overlong forms,
// no surrogates), and so must \u escapes (no surrogate halves), so the output always parses.
JsonMatcher::Step JsonMatcher::string(Frame& f, const JsonSchema::Node& n, unsigned char c) {
  switch (f.phase) {
    case 0:
      f.phase = 1;
      return c == '"' ? Step::Continue : Step::Reject;
    case 1:
      if (f.pending > 0) {
        // The second byte's range depends on the lead (RFC 3629); later ones are 80..BF.
        unsigned char low = 0x80, high = 0xBF;
        if (f.lead == 0xE0) {
          low = 0xA0;
        } else if (f.lead == 0xED) {
          high = 0x9F;
        } else if (f.lead == 0xF0) {
          low = 0x90;
        } else if (f.lead == 0xF4) {
          high = 0x8F;
        }
        f.lead = 0;
        --f.pending;
        return c >= low && c <= high ? Step::Continue : Step::Reject;
      }
      if (c == '"') {
        return f.count >= n.min ? Step::Finished : Step::Reject;
      }
      if (c < 0x20 || f.count >= n.max || (c >= 0x80 && c < 0xC2) || c > 0xF4) {
        return Step::Reject;
      }
      ++f.count;
      if (c == '\\') {
        f.phase = 2;
      } else if (c >= 0xC2) {
        f.pending = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
        f.lead = c;
      }
      return Step::Continue;
    case 2:
      if (c == 'u') {
        f.phase = 3;
        f.pending = 0;
        return Step::Continue;
      }
      f.phase = 1;
      return std::string_view("\"\\/bfnrt").find(static_cast<char>(c)) != std::string_view::npos
                 ? Step::Continue
                 : Step::Reject;
    case 3:
      if (!std::isxdigit(c)) {
        return Step::Reject;
      }
      if (f.pending == 0) {
        f.lead = static_cast<unsigned char>(std::tolower(c));
      } else if (f.pending == 1 && f.lead == 'd' &&
                 std::string_view("89abcdefABCDEF").find(static_cast<char>(c)) !=
                     std::string_view::npos) {
        return Step::Reject;  // D800..DFFF: a surrogate half
      }
      if (++f.pending == 4) {
        f.pending = 0;
        f.lead = 0;
        f.phase = 1;
      }
      return Step::Continue;
  }
  return Step::Reject;
}

// -?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?([eE][+-]?[0-9]{1,3})?, without fraction and exponent
// for integers. Phases: 0 start, 1 after '-', 2 after a leading 0, 3 in the integer digits,
// 4 after '.', 5 in the fraction, 6 after 'e', 7 after its sign, 8 in the exponent.
JsonMatcher::Step JsonMatcher::number(Frame& f, bool integer, unsigned char c) {
  auto to = [&f](std::uint8_t phase, std::uint32_t count) {
    f.phase = phase;
    f.count = count;
    return Step::Continue;
  };
  bool ends = f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
  switch (f.phase) {
    case 0:
    case 1:
      if (c == '-' && f.phase == 0) {
        return to(1, 0);
      }
      if (c == '0') {
        return to(2, 1);
      }
      return digit(c) ? to(3, 1) : Step::Reject;
    case 2:
    case 3:
      if (f.phase == 3 && digit(c) && f.count < 15) {
        return to(3, f.count + 1);
      }
      if (!integer && c == '.') {
        return to(4, 0);
      }
      if (!integer && (c == 'e' || c == 'E')) {
        return to(6, 0);
      }
      break;
    case 4:
      return digit(c) ? to(5, 1) : Step::Reject;
    case 5:
      if (digit(c) && f.count < 15) {
        return to(5, f.count + 1);
      }
      if (c == 'e' || c == 'E') {
        return to(6, 0);
      }
      break;
    case 6:
      if (c == '+' || c == '-') {
        return to(7, 0);
      }
      return digit(c) ? to(8, 1) : Step::Reject;
    case 7:
      return digit(c) ? to(8, 1) : Step::Reject;
    case 8:
      if (digit(c) && f.count < 3) {
        return to(8, f.count + 1);
      }
      break;
  }
  return ends ? Step::Yield : Step::Reject;
}

JsonMatcher::Step JsonMatcher::literal(Frame& f, const JsonSchema::Node& n, unsigned char c) {
  std::string next = f.prefix + static_cast<char>(c);
  bool continues = false;
  bool longer = false;
  for (const auto& text : n.texts) {
    if (text.starts_with(next)) {
      continues = true;
      longer = longer || text.size() > next.size();
    }
  }
  if (!continues) {
    return std::find(n.texts.begin(), n.texts.end(), f.prefix) != n.texts.end() ? Step::Yield
                                                                                : Step::Reject;
  }
  f.prefix = std::move(next);
  return longer ? Step::Continue : Step::Finished;
}

TokenFilter::TokenFilter(const text::Tokenizer& tokenizer) {
  trie_.emplace_back();
  const auto& types = tokenizer.vocabulary().types;
  for (std::size_t id = 0; id < tokenizer.size(); ++id) {
    auto token = static_cast<text::Token>(id);
    if (tokenizer.isEndOfGeneration(token)) {
      ends_.push_back(token);
      continue;
    }
    auto type = id < types.size() ? types[id] : text::TokenType::Normal;
    if (type != text::TokenType::Normal && type != text::TokenType::Byte) {
      continue;  // control, user-defined and unused tokens never appear in JSON output
    }
    auto bytes = tokenizer.piece(token);
    if (bytes.empty()) {
      continue;
    }
    std::uint32_t node = 0;
    for (char ch : bytes) {
      auto c = static_cast<unsigned char>(ch);
      auto& children = trie_[node].children;
      auto it = std::find_if(children.begin(), children.end(),
                             [c](const auto& child) { return child.first == c; });
      if (it != children.end()) {
        node = it->second;
      } else {
        auto next = static_cast<std::uint32_t>(trie_.size());
        trie_[node].children.emplace_back(c, next);
        trie_.emplace_back();
        node = next;
      }
    }
    trie_[node].tokens.push_back(token);
  }
}

void TokenFilter::walk(std::uint32_t node, const JsonMatcher& matcher,
                       std::vector<char>& allowed) const {
  for (const auto& [c, child] : trie_[node].children) {
    JsonMatcher next = matcher;
    if (!next.feedByte(c)) {
      continue;
    }
    for (auto token : trie_[child].tokens) {
      allowed[static_cast<std::size_t>(token)] = 1;
    }
    walk(child, next, allowed);
  }
}

bool TokenFilter::mask(const JsonMatcher& matcher, std::span<float> logits) const {
  std::vector<char> allowed(logits.size(), 0);
  if (!matcher.finished()) {
    walk(0, matcher, allowed);
  }
  if (matcher.complete()) {
    for (auto token : ends_) {
      if (static_cast<std::size_t>(token) < allowed.size()) {
        allowed[static_cast<std::size_t>(token)] = 1;
      }
    }
  }
  bool any = false;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (allowed[i] == 0) {
      logits[i] = -INFINITY;
    } else {
      any = true;
    }
  }
  return any;
}

}  // namespace aibox::server
