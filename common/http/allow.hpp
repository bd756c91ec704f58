#pragma once
// Source networks allowed on a network listener (the agent's admin API, the gateway).

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace aibox::http {

class AllowList {
 public:
  // Parses "10.0.0.0/8, 192.168.1.7, 2001:db8::/32" (a bare address is one host); the problem
  // when an item is not a network. Empty allows every source.
  static std::variant<AllowList, std::string> parse(std::string_view text);
  // Whether a peer address ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1") may call.
  bool allows(std::string_view address) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace aibox::http
