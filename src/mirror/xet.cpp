#include "mirror/xet.hpp"

#include <nlohmann/json.hpp>

#include "http/headers.hpp"

namespace hubcache::mirror {

namespace {

void strip(nlohmann::ordered_json& j) {
  if (j.is_object()) {
    j.erase("xetHash");
    if (j.contains("xetEnabled")) j["xetEnabled"] = false;
    for (auto& [k, v] : j.items()) strip(v);
  } else if (j.is_array()) {
    for (auto& v : j) strip(v);
  }
}

}  // namespace

std::string strip_xet_json(std::string_view json) {
  auto j = nlohmann::ordered_json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded()) return std::string(json);
  strip(j);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool is_xet_header(std::string_view name, std::string_view value) {
  std::string lower;
  for (char c : name) lower += http::detail::lower(c);
  if (lower.rfind("x-xet-", 0) == 0) return true;
  if (lower == "link") {
    std::string v;
    for (char c : value) v += http::detail::lower(c);
    return v.find("xet-") != std::string::npos;
  }
  return false;
}

}  // namespace hubcache::mirror
