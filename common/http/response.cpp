#include <boost/json/object.hpp>

#include "common/http/http.hpp"

namespace aibox::http {

Response json(Status status, const boost::json::value& body) {
  Response res{status, 11};
  res.set(boost::beast::http::field::content_type, "application/json");
  res.set(boost::beast::http::field::cache_control, "no-store");
  res.body() = json::serialize(body);
  res.body() += '\n';
  return res;
}

Response error(Status status, std::string_view code, std::string_view message) {
  return json(status, {{"error", {{"code", code}, {"message", message}}}});
}

Response badRequest(const json::Problem& problem) {
  boost::json::object detail{{"code", problem.code}, {"message", problem.message}};
  if (!problem.field.empty()) {
    detail["field"] = problem.field;
  }
  return json(Status::bad_request, {{"error", detail}});
}

}  // namespace aibox::http
