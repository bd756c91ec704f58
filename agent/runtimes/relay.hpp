#pragma once
// A POST to an instance on loopback whose answer is passed on as it comes: the status and
// headers once they arrive, then the body piece by piece (server-sent events reach the caller
// as the engine sends them, nothing is held back). The console's chat playground uses it.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>

#include "common/http/http.hpp"

namespace aibox::agent::runtimes::relay {

struct Target {
  int port = 0;
  std::string path;   // "/v1/chat/completions"
  std::string token;  // the instance's bearer token
};

// Answers `reply` once: with a StreamedResponse carrying the instance's status, content type
// and body, or with a 502 when the instance did not answer within `headTimeout`. When the
// caller goes away the connection to the instance is closed, so the engine stops generating.
// A stream the instance breaks off ends with an `error` event (event streams) or short.
void post(boost::asio::io_context& io, const Target& target, std::string body,
          std::chrono::milliseconds headTimeout, http::Reply reply);

}  // namespace aibox::agent::runtimes::relay
