#include "common/http/allow.hpp"

#include <boost/asio/ip/address.hpp>

namespace aibox::http {
namespace {

std::string trim(std::string_view s) {
  auto begin = s.find_first_not_of(" \t");
  auto end = s.find_last_not_of(" \t");
  return begin == std::string_view::npos ? "" : std::string(s.substr(begin, end - begin + 1));
}

}  // namespace

std::variant<AllowList, std::string> AllowList::parse(std::string_view text) {
  AllowList list;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) {
      continue;
    }
    if (item.find('/') == std::string::npos) {
      item += item.find(':') == std::string::npos ? "/32" : "/128";
    }
    boost::system::error_code ec;
    if (item.find(':') == std::string::npos) {
      auto net = boost::asio::ip::make_network_v4(item, ec);
      if (!ec) {
        list.v4_.push_back(net.canonical());
        continue;
      }
    } else {
      auto net = boost::asio::ip::make_network_v6(item, ec);
      if (!ec) {
        list.v6_.push_back(net.canonical());
        continue;
      }
    }
    return "'" + item + "' is not a network such as 10.0.0.0/8 or 2001:db8::/32";
  }
  return list;
}

bool AllowList::allows(std::string_view address) const {
  if (v4_.empty() && v6_.empty()) {
    return true;
  }
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(std::string(address), ec);
  if (ec) {
    return false;
  }
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
    ip = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
  }
  if (ip.is_v4()) {
    for (const auto& net : v4_) {
      if (boost::asio::ip::make_network_v4(ip.to_v4(), net.prefix_length()).canonical() == net) {
        return true;
      }
    }
    return false;
  }
  for (const auto& net : v6_) {
    if (boost::asio::ip::make_network_v6(ip.to_v6(), net.prefix_length()).canonical() == net) {
      return true;
    }
  }
  return false;
}

}  // namespace aibox::http
