#include "hub/repo_api.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string_view>

#include "hubcache/settings.hpp"
#include "layout/naming.hpp"

namespace hubcache::hub {

std::string resolve_revision(http::Client& client, const Context& ctx) {
  std::string url = layout::api_repo_url(ctx.endpoint, ctx.type, ctx.repo_id) + "/revision/" +
                    layout::quote(ctx.revision, "");
  auto r = get_json(client, ctx, url, Settings::get().max_retries);
  auto commit = parse_revision_commit(r.body);
  if (!commit)
    throw Error(ErrorCode::http, "The server " + ctx.endpoint + " sent no commit for revision '" + ctx.revision +
                                     "' of " + std::string(to_string(ctx.type)) + " '" + ctx.repo_id + "'.");
  return *commit;
}

std::optional<std::string> parse_revision_commit(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("sha") || !j["sha"].is_string() ||
      !layout::is_commit_hash(j["sha"].get<std::string>()))
    return std::nullopt;
  return j["sha"].get<std::string>();
}

namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::string> next_link(const std::string& header) {
  // RFC 8288: Link: <url1>; rel="next", <url2>; rel="prev last"; title="a, b"
  // Commas and semicolons inside <...> or a quoted string separate nothing; rel holds
  // space-separated relation types compared without case; only a link's first rel counts.
  const std::size_t n = header.size();
  std::size_t i = 0;
  auto skip_blanks = [&] {
    while (i < n && (header[i] == ' ' || header[i] == '\t')) ++i;
  };
  auto skip_to_next_link = [&] {  // past the next comma outside a quoted string
    bool quoted = false;
    for (; i < n; ++i) {
      if (quoted && header[i] == '\\')
        ++i;
      else if (header[i] == '"')
        quoted = !quoted;
      else if (!quoted && header[i] == ',')
        break;
    }
    ++i;
  };
  while (i < n) {
    skip_blanks();
    if (i >= n) break;
    if (header[i] != '<') {
      skip_to_next_link();
      continue;
    }
    auto gt = header.find('>', i + 1);
    if (gt == std::string::npos) break;
    std::string target = header.substr(i + 1, gt - i - 1);
    i = gt + 1;
    bool next = false, seen_rel = false;
    for (;;) {
      skip_blanks();
      if (i >= n || header[i] != ';') break;
      ++i;
      skip_blanks();
      const std::size_t name_start = i;
      while (i < n && is_tchar(header[i])) ++i;
      const std::string_view name(header.data() + name_start, i - name_start);
      skip_blanks();
      std::string value;
      if (i < n && header[i] == '=') {
        ++i;
        skip_blanks();
        if (i < n && header[i] == '"') {
          for (++i; i < n && header[i] != '"'; ++i) {
            if (header[i] == '\\' && i + 1 < n) ++i;
            value += header[i];
          }
          ++i;  // the closing quote
        } else {
          const std::size_t value_start = i;
          while (i < n && is_tchar(header[i])) ++i;
          value = header.substr(value_start, i - value_start);
        }
      }
      if (iequals(name, "rel") && !seen_rel) {
        seen_rel = true;
        std::size_t t = 0;
        while (t < value.size()) {
          auto sp = value.find_first_of(" \t", t);
          if (sp == std::string::npos) sp = value.size();
          next = next || iequals(std::string_view(value).substr(t, sp - t), "next");
          t = sp + 1;
        }
      }
    }
    if (next) return target;
    skip_to_next_link();
  }
  return std::nullopt;
}

std::vector<TreeFile> parse_tree_page(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw Error(ErrorCode::http, "The tree listing is not a JSON array.");
  // Typed look-ups: json::value() throws type_error when a field has another type (and takes
  // a float size with undefined behaviour); a malformed listing is an Error(http).
  auto malformed = [](const char* field) {
    return Error(ErrorCode::http,
                 std::string("The tree listing has an entry whose '") + field + "' is not of the expected type.");
  };
  auto text_field = [&](const nlohmann::json& e, const char* key, std::string fallback) {
    auto it = e.find(key);
    if (it == e.end()) return fallback;
    if (!it->is_string()) throw malformed(key);
    return it->get<std::string>();
  };
  auto size_field = [&](const nlohmann::json& e, const char* key, std::uint64_t fallback) {
    auto it = e.find(key);
    if (it == e.end()) return fallback;
    if (!it->is_number_unsigned()) throw malformed(key);
    return it->get<std::uint64_t>();
  };
  std::vector<TreeFile> out;
  for (const auto& e : j) {
    if (!e.is_object() || text_field(e, "type", "") != "file") continue;
    TreeFile f;
    f.path = text_field(e, "path", "");
    try {
      layout::validate_filename(f.path);
    } catch (const Error&) {
      throw Error(ErrorCode::integrity, "The server listed an unsafe file name '" + f.path + "'; refusing it.");
    }
    f.size = size_field(e, "size", 0);
    f.blob_id = text_field(e, "oid", "");
    if (e.contains("lfs") && e["lfs"].is_object()) {
      f.lfs_sha256 = text_field(e["lfs"], "oid", "");
      f.lfs_size = size_field(e["lfs"], "size", f.size);
      f.size = f.lfs_size;
    }
    // Kept only so trees/<commit>.json says what Python would write; hubcache itself never uses Xet.
    if (e.contains("xetHash") && e["xetHash"].is_string()) {
      std::string x = e["xetHash"].get<std::string>();
      if (x.size() == 64 && layout::is_hex(x)) f.xet_hash = std::move(x);
    }
    if (!layout::is_hex(f.etag()) || (f.etag().size() != 40 && f.etag().size() != 64))
      throw Error(ErrorCode::http, "The tree listing has no usable hash for '" + f.path + "'.");
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<TreeFile> list_tree(http::Client& client, const Context& ctx, const std::string& commit, int max_retries) {
  if (max_retries < 0) max_retries = Settings::get().max_retries;
  std::string url = layout::api_repo_url(ctx.endpoint, ctx.type, ctx.repo_id) + "/tree/" + layout::quote(commit, "") +
                    "?recursive=true&expand=false";
  std::vector<TreeFile> files;
  for (int page = 0; page < 100000; ++page) {
    auto r = get_json(client, ctx, url, max_retries);
    auto batch = parse_tree_page(r.body);
    files.insert(files.end(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
    auto link = r.headers.get("Link");
    auto next = link ? next_link(*link) : std::nullopt;
    if (!next) return files;
    url = http::resolve_location(url, *next);
  }
  throw Error(ErrorCode::http, "The tree listing of '" + ctx.repo_id + "' never ends (pagination loop).");
}

}  // namespace hubcache::hub
