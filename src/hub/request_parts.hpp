// The parts of a Hub request as a server reads them: the URL path's segments, a form
// (a query string or a form body), the body of paths-info. Shared by `hubcache serve`
// (src/serve) and its mirror (src/mirror), which route the same URLs.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubcache::hub {

// The segments of a URL path, still percent-encoded, empty ones dropped ("/a//b/" -> a, b).
std::vector<std::string> split_path(std::string_view path);
// segs[from..], each percent-decoded, joined with '/'.
std::string join_decoded(const std::vector<std::string>& segs, std::size_t from);
// application/x-www-form-urlencoded text: name/value pairs in order ('+' is a space; a
// name without '=' has the value "").
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text);

// The body of POST /api/{type}s/{repo}/paths-info/{revision}: JSON
// {"paths": [...], "expand": bool} or a form (paths=a&paths=b&expand=true). What is not
// understood is left out (no paths, expand false).
struct PathsInfoQuery {
  std::vector<std::string> paths;
  bool expand = false;
};
PathsInfoQuery parse_paths_info(std::string_view body);

}  // namespace hubcache::hub
