#include "hub/request_parts.hpp"

#include <nlohmann/json.hpp>

#include "layout/naming.hpp"

namespace hubcache::hub {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t a = 0;
  while (a <= path.size()) {
    auto b = path.find('/', a);
    if (b == std::string_view::npos) b = path.size();
    if (b > a) out.emplace_back(path.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

std::string join_decoded(const std::vector<std::string>& segs, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < segs.size(); ++i) {
    if (i > from) out += '/';
    out += layout::unquote(segs[i]);
  }
  return out;
}

namespace {
std::string form_decode(std::string_view v) {
  std::string s(v);
  for (auto& c : s)
    if (c == '+') c = ' ';  // before unquoting: "%2B" stays a '+'
  return layout::unquote(s);
}
}  // namespace

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t a = 0;
  while (a < text.size()) {
    auto b = text.find('&', a);
    if (b == std::string_view::npos) b = text.size();
    auto item = text.substr(a, b - a);
    if (!item.empty()) {
      auto eq = item.find('=');
      out.emplace_back(form_decode(item.substr(0, eq)),
                       eq == std::string_view::npos ? "" : form_decode(item.substr(eq + 1)));
    }
    a = b + 1;
  }
  return out;
}

PathsInfoQuery parse_paths_info(std::string_view body) {
  PathsInfoQuery q;
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_discarded() && json.is_object()) {
    if (json.contains("paths") && json["paths"].is_array())
      for (const auto& p : json["paths"])
        if (p.is_string()) q.paths.push_back(p.get<std::string>());
    if (json.contains("expand") && json["expand"].is_boolean()) q.expand = json["expand"].get<bool>();
    return q;
  }
  for (auto& [k, v] : parse_form(body)) {
    if (k == "paths") q.paths.push_back(std::move(v));
    if (k == "expand") q.expand = v == "true" || v == "True" || v == "1";
  }
  return q;
}

}  // namespace hubcache::hub
