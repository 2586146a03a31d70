#include "hub/repo_api.hpp"

#include <nlohmann/json.hpp>

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

std::optional<std::string> next_link(const std::string& header) {
  // Link: <url1>; rel="next", <url2>; rel="last"
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto lt = header.find('<', pos);
    if (lt == std::string::npos) break;
    auto gt = header.find('>', lt);
    if (gt == std::string::npos) break;
    auto next = header.find('<', gt);
    std::string params = header.substr(gt + 1, next == std::string::npos ? std::string::npos : next - gt - 1);
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos)
      return header.substr(lt + 1, gt - lt - 1);
    pos = gt + 1;
  }
  return std::nullopt;
}

std::vector<TreeFile> parse_tree_page(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw Error(ErrorCode::http, "The tree listing is not a JSON array.");
  std::vector<TreeFile> out;
  for (const auto& e : j) {
    if (!e.is_object() || e.value("type", "") != "file") continue;
    TreeFile f;
    f.path = e.value("path", "");
    try {
      layout::validate_filename(f.path);
    } catch (const Error&) {
      throw Error(ErrorCode::integrity, "The server listed an unsafe file name '" + f.path + "'; refusing it.");
    }
    f.size = e.value("size", std::uint64_t{0});
    f.blob_id = e.value("oid", "");
    if (e.contains("lfs") && e["lfs"].is_object()) {
      f.lfs_sha256 = e["lfs"].value("oid", "");
      f.lfs_size = e["lfs"].value("size", f.size);
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
