#include "runtime/text/tool_calls.hpp"

#include <array>
#include <boost/json/parse.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "common/json/json.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

// Python's repr of a float: the shortest digits that read back, in fixed notation for
// exponents from -4 to 15 (with ".0" when whole), else as 1.5e+16.
std::string pythonFloat(double d) {
  std::array<char, 40> buffer{};
  auto end =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), d, std::chars_format::scientific)
          .ptr;
  std::string_view sci(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
  std::string sign;
  if (sci.front() == '-') {
    sign = "-";
    sci.remove_prefix(1);
  }
  const std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') {
      digits += c;
    }
  }
  int exponent = std::stoi(std::string(sci.substr(e + 1)));
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else {
      const auto whole = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() < whole) {
        digits.append(whole - digits.size(), '0');
      }
      out = digits.substr(0, whole) + "." + (digits.size() > whole ? digits.substr(whole) : "0");
    }
    return sign + out;
  }
  std::string mantissa = digits.substr(0, 1);
  if (digits.size() > 1) {
    mantissa += "." + digits.substr(1);
  }
  std::string power = std::to_string(std::abs(exponent));
  if (power.size() < 2) {
    power.insert(0, "0");
  }
  return sign + mantissa + (exponent < 0 ? "e-" : "e+") + power;
}

void pythonString(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          std::array<char, 8> escaped{};
          std::snprintf(escaped.data(), escaped.size(), "\\u%04x", static_cast<unsigned>(c));
          out += escaped.data();
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void dump(const boost::json::value& value, int indent, int depth, std::string& out) {
  auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<std::size_t>(indent * level), ' ');
  };
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      out += std::to_string(value.get_int64());
      return;
    case boost::json::kind::uint64:
      out += std::to_string(value.get_uint64());
      return;
    case boost::json::kind::double_:
      out += pythonFloat(value.get_double());
      return;
    case boost::json::kind::string:
      pythonString(value.get_string(), out);
      return;
    case boost::json::kind::array:
    case boost::json::kind::object:
      break;
  }
  const bool isArray = value.is_array();
  const std::size_t size = isArray ? value.get_array().size() : value.get_object().size();
  out += isArray ? '[' : '{';
  if (size > 0) {
    std::size_t i = 0;
    auto separate = [&] {
      if (i++ > 0) {
        out += indent > 0 ? "," : ", ";
      }
      if (indent > 0) {
        newline(depth + 1);
      }
    };
    if (isArray) {
      for (const auto& item : value.get_array()) {
        separate();
        dump(item, indent, depth + 1, out);
      }
    } else {
      for (const auto& [key, item] : value.get_object()) {
        separate();
        pythonString(key, out);
        out += ": ";
        dump(item, indent, depth + 1, out);
      }
    }
    if (indent > 0) {
      newline(depth);
    }
  }
  out += isArray ? ']' : '}';
}

// A call from the JSON text of one: an object with a string "name" and its arguments under
// `argumentsKey` (an object, or a string holding one).
std::optional<ToolCall> readCall(std::string_view text, std::string_view argumentsKey) {
  boost::system::error_code ec;
  auto value = boost::json::parse(unicode::pythonStrip(text), ec);
  const auto* object = ec ? nullptr : value.if_object();
  const auto* name = object != nullptr ? object->if_contains("name") : nullptr;
  if (name == nullptr || !name->is_string() || name->as_string().empty()) {
    return std::nullopt;
  }
  const auto* arguments = object->if_contains(argumentsKey);
  if (arguments == nullptr) {
    arguments = object->if_contains("arguments");
  }
  ToolCall call{.name = std::string(name->as_string())};
  if (arguments == nullptr || arguments->is_null()) {
    call.arguments = "{}";
  } else if (arguments->is_string()) {
    call.arguments = arguments->as_string();
  } else if (arguments->is_object()) {
    call.arguments = json::serialize(*arguments);
  } else {
    return std::nullopt;
  }
  return call;
}

}  // namespace

std::string pythonJson(const boost::json::value& value, int indent) {
  std::string out;
  dump(value, indent, 0, out);
  return out;
}

ParsedOutput parseToolCalls(ChatTemplate chatTemplate, std::string_view output) {
  ParsedOutput parsed;
  if (chatTemplate == ChatTemplate::Llama3) {
    const auto text = unicode::pythonStrip(output);
    if (text.starts_with('{')) {
      if (auto call = readCall(text, "parameters")) {
        parsed.calls.push_back(std::move(*call));
        return parsed;
      }
    }
    parsed.content = output;
    return parsed;
  }
  if (chatTemplate != ChatTemplate::ChatMl) {
    parsed.content = output;
    return parsed;
  }
  std::size_t offset = 0;
  while (offset < output.size()) {
    const std::size_t open = output.find(kOpen, offset);
    if (open == std::string_view::npos) {
      parsed.content += output.substr(offset);
      break;
    }
    parsed.content += output.substr(offset, open - offset);
    const std::size_t inner = open + kOpen.size();
    std::size_t close = output.find(kClose, inner);
    const std::size_t end = close == std::string_view::npos ? output.size() : close + kClose.size();
    if (close == std::string_view::npos) {
      close = output.size();
    }
    if (auto call = readCall(output.substr(inner, close - inner), "arguments")) {
      parsed.calls.push_back(std::move(*call));
    } else {
      parsed.content += output.substr(open, end - open);
    }
    offset = end;
  }
  if (!parsed.calls.empty()) {
    parsed.content = std::string(unicode::pythonStrip(parsed.content));
  }
  return parsed;
}

std::string ToolCallGate::push(std::string_view text) {
  if (plain_) {
    return std::string(text);
  }
  if (calling_) {
    held_ += text;
    return {};
  }
  std::string buffer = std::exchange(held_, {}) + std::string(text);
  if (chatTemplate_ == ChatTemplate::Llama3) {
    const auto stripped = unicode::pythonStrip(buffer);
    if (stripped.empty()) {
      held_ = std::move(buffer);
      return {};
    }
    if (stripped.front() == '{') {
      calling_ = true;
      held_ = std::move(buffer);
      return {};
    }
    plain_ = true;
    return buffer;
  }
  if (const std::size_t open = buffer.find(kOpen); open != std::string::npos) {
    calling_ = true;
    held_ = buffer.substr(open);
    return buffer.substr(0, open);
  }
  // Hold back an end that may be the first bytes of the opening tag.
  for (std::size_t keep = std::min(buffer.size(), kOpen.size() - 1); keep > 0; --keep) {
    if (kOpen.starts_with(std::string_view(buffer).substr(buffer.size() - keep))) {
      held_ = buffer.substr(buffer.size() - keep);
      buffer.resize(buffer.size() - keep);
      break;
    }
  }
  return buffer;
}

ParsedOutput ToolCallGate::finish() {
  std::string held = std::exchange(held_, {});
  if (!calling_) {
    return {.content = std::move(held)};
  }
  return parseToolCalls(chatTemplate_, held);
}

}  // namespace aibox::text
