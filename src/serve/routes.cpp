#include "serve/routes.hpp"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "hub/request_parts.hpp"
#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "util/hash.hpp"

namespace hubcache::serve {

using json = nlohmann::ordered_json;

namespace {

std::string lower(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

// The query parameters of a request, decoded.
struct Query {
  std::vector<std::pair<std::string, std::string>> params;
  explicit Query(const Request& req) : params(parse_query(req.query())) {}
  const std::string* get(std::string_view name) const {
    for (const auto& [k, v] : params)
      if (k == name) return &v;
    return nullptr;
  }
  bool flag(std::string_view name) const {
    auto v = get(name);
    if (!v) return false;
    auto l = lower(*v);
    return l == "true" || l == "1";
  }
};

const char* kJson = "application/json; charset=utf-8";

Response error(int status, const std::string& code, const std::string& message, bool api) {
  Response r = api ? Response::text(status, json{{"error", message}}.dump(), kJson) : Response::text(status, message);
  if (!code.empty()) r.header("X-Error-Code", code);
  r.header("X-Error-Message", message);
  return r;
}

Response json_response(std::string body) { return Response::text(200, std::move(body), kJson); }

}  // namespace

Route parse_route(std::string_view target) {
  Route r;
  std::string_view path = target.substr(0, target.find('?'));
  auto segs = hub::split_path(path);
  if (segs.empty()) return r;
  std::size_t i = 0;
  if (segs[0] == "api") {
    r.api = true;
    if (segs.size() < 3) return r;
    auto type = parse_repo_type(segs[1]);
    if (!type || segs[1].back() != 's') return r;
    r.type = *type;
    static const std::set<std::string> actions{"revision", "tree", "paths-info", "refs"};
    i = 2;
    if (segs.size() >= 4 && !actions.count(segs[3])) {
      r.repo_id = segs[2] + "/" + segs[3];
      i = 4;
    } else {
      r.repo_id = segs[2];
      i = 3;
    }
    if (i < segs.size()) {
      r.action = segs[i];
      if (!actions.count(r.action)) return r;
      if (r.action != "refs") {
        if (i + 1 >= segs.size()) return r;
        r.revision = layout::unquote(segs[i + 1]);
        std::size_t next = i + 2;
        // Unencoded special refs (JS listFiles): refs/pr/N, refs/convert/X.
        if (r.revision == "refs" && segs.size() >= i + 4) {
          r.revision = "refs/" + layout::unquote(segs[i + 2]) + "/" + layout::unquote(segs[i + 3]);
          next = i + 4;
        }
        r.path = hub::join_decoded(segs, next);
      }
    } else {
      r.revision = "main";
    }
    r.ok = true;
    return r;
  }
  if (segs[0] == "datasets" || segs[0] == "spaces") {
    r.type = segs[0] == "datasets" ? RepoType::dataset : RepoType::space;
    i = 1;
  }
  if (i + 2 < segs.size() && segs[i + 2] == "resolve") {
    r.repo_id = segs[i] + "/" + segs[i + 1];
    i += 3;
  } else if (i + 1 < segs.size() && segs[i + 1] == "resolve") {
    r.repo_id = segs[i];
    i += 2;
  } else {
    return r;
  }
  if (i >= segs.size()) return r;
  r.action = "resolve";
  r.revision = layout::unquote(segs[i]);
  r.path = hub::join_decoded(segs, i + 1);
  r.ok = !r.path.empty();
  return r;
}

std::string Routes::loggable_target(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::size_t a = q + 1;
  while (a <= target.size()) {
    auto b = target.find('&', a);
    if (b == std::string_view::npos) b = target.size();
    std::string param(target.substr(a, b - a));
    auto eq = param.find('=');
    std::string name = param.substr(0, eq);
    std::string l = lower(name);
    if (eq != std::string::npos && (l == "sig" || l.find("token") != std::string::npos)) param = name + "=REDACTED";
    if (a > q + 1) out += '&';
    out += param;
    a = b + 1;
  }
  return out;
}

struct Routes::Located {
  fs::path repo;
  std::string commit;
};

Routes::Routes(Catalog& catalog, Engine& engine, RoutesOptions options)
    : catalog_(catalog), engine_(engine), opts_(std::move(options)) {}

// HMAC-SHA256(token, sha256) in hex: the signature of a CDN URL when a token guards
// the server (clients drop Authorization on the CDN hop, so the URL carries the proof).
std::string Routes::cdn_signature(const std::string& sha) const { return util::hmac_sha256_hex(*opts_.token, sha); }

std::optional<Response> Routes::authorize(const Request& req, bool api) const {
  if (!opts_.token) return std::nullopt;
  const auto auth = req.header("Authorization");
  const std::string expected = "Bearer " + *opts_.token;
  if (auth.size() == expected.size() && CRYPTO_memcmp(auth.data(), expected.data(), auth.size()) == 0)
    return std::nullopt;
  Response r = error(
      401, "", auth.empty() ? "Invalid username or password." : "Invalid credentials in Authorization header", api);
  r.header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
  return r;
}

void Routes::miss(Request& req, Responder& res, Response response, const Handler& fallback) {
  if (fallback) return fallback(req, res);
  res.respond(std::move(response));
}

// Finds the repo and commit of a route, or answers the error.
bool Routes::locate(Request& req, Responder& res, const Route& route, Located& out) {
  const bool api = route.api;
  try {
    layout::validate_repo_id(route.repo_id);
  } catch (const Error&) {
    res.respond(error(400, "", "Invalid repo id.", api));
    return false;
  }
  out.repo = catalog_.root() / layout::repo_folder_name(route.repo_id, route.type);
  struct stat st {};
  if (::stat((out.repo / "snapshots").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    // Like the Hub: anonymous callers cannot tell a missing repo from a private one.
    if (req.has_header("Authorization")) {
      miss(req, res, error(404, "RepoNotFound", "Repository not found", api), opts_.hub_miss);
    } else {
      Response r = error(401, "RepoNotFound", "Repository not found", api);
      r.header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
      miss(req, res, std::move(r), opts_.hub_miss);
    }
    return false;
  }
  if (route.action == "refs") return true;
  auto c = catalog_.resolve_revision(out.repo, route.revision);
  if (!c) {
    miss(req, res, error(404, "RevisionNotFound", "Invalid rev id: " + route.revision, api), opts_.hub_miss);
    return false;
  }
  out.commit = *c;
  return true;
}

// Runs `fn` with the commit's listing: at once when it is built (and, with
// `complete`, every hash known), else on the blocking pool after building it.
void Routes::with_snapshot(Request& req, Responder res, const Route& route, const Located& loc, bool complete,
                           std::function<void(Request&, Responder&, const Snapshot&)> fn) {
  auto snap = catalog_.cached(loc.repo, loc.commit);
  if (snap && (!complete || snap->unhashed == 0)) return fn(req, res, *snap);
  // The Request lives in its connection until the handler returns: the pool works on a copy.
  auto copy = std::make_shared<Request>(req);
  engine_.blocking([this, copy, res, route, loc, complete, fn = std::move(fn)]() mutable {
    if (!res.alive()) return;
    try {
      auto s = catalog_.build(loc.repo, loc.commit, complete);
      if (!s) return res.respond(error(404, "RevisionNotFound", "Invalid rev id: " + route.revision, route.api));
      fn(*copy, res, *s);
    } catch (const std::exception& e) {
      res.respond(error(500, "", std::string("Cannot read the cache: ") + e.what(), route.api));
    }
  });
}

std::string Routes::host_for_redirect(const Request& req) const {
  std::string host(req.header("Host"));
  if (host.empty()) return opts_.host;
  if (host.front() == '[') return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.find(':'));
}

void Routes::hub(Request& req, Responder res) {
  Route route = parse_route(req.target);
  if (!route.ok) return res.respond(error(404, "", "Not found", route.api));
  if (auto refused = authorize(req, route.api)) return res.respond(std::move(*refused));
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (route.action == "paths-info" ? req.method != "POST" : !get) {
    Response r = error(405, "", "Method not allowed", route.action != "resolve");
    r.route = route.action;
    return res.respond(std::move(r));
  }
  Located loc;
  if (!locate(req, res, route, loc)) return;
  if (route.action == "resolve") {
    with_snapshot(req, res, route, loc, false,
                  [this, route, loc](Request& q, Responder& r, const Snapshot& s) { resolve(q, r, route, loc, s); });
  } else if (route.action == "paths-info") {
    with_snapshot(req, res, route, loc, true,
                  [this, route, loc](Request& q, Responder& r, const Snapshot& s) { paths_info(q, r, route, loc, s); });
  } else if (route.action == "tree") {
    with_snapshot(req, res, route, loc, true,
                  [this, route, loc](Request& q, Responder& r, const Snapshot& s) { tree(q, r, route, loc, s); });
  } else if (route.action == "refs") {
    refs(req, res, route, loc);
  } else {
    with_snapshot(req, res, route, loc, !Query(req).flag("blobs") ? false : true,
                  [this, route, loc](Request& q, Responder& r, const Snapshot& s) { info(q, r, route, loc, s); });
  }
}

void Routes::resolve(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap) {
  const FileInfo* found = snap.find(route.path);
  if (!found) {
    Response r = error(404, "EntryNotFound", "Entry not found", false);
    r.header("X-Repo-Commit", loc.commit);
    r.route = "resolve";
    return miss(req, res, std::move(r), opts_.hub_miss);
  }
  if (!found->hashed()) {
    // A real file (a cache written without symlinks) not hashed yet: hash it on the pool.
    auto copy = std::make_shared<Request>(req);
    engine_.blocking([this, copy, res, route, loc, f = *found]() mutable {
      if (!res.alive()) return;
      try {
        FileInfo full = catalog_.complete(loc.repo, loc.commit, f);
        Snapshot one;
        one.commit = loc.commit;
        one.files.push_back(full);
        one.by_path.emplace(full.path, 0);
        resolve(*copy, res, route, loc, one);
      } catch (const std::exception& e) {
        res.respond(error(500, "", std::string("Cannot read the file from the cache: ") + e.what(), false));
      }
    });
    return;
  }
  const FileInfo& info = *found;
  Response r;
  r.route = "resolve";
  r.header("X-Repo-Commit", loc.commit);
  if (info.lfs()) {
    std::string name = route.path.substr(route.path.rfind('/') + 1);
    std::string location = "http://" + host_for_redirect(req) + ":" + std::to_string(opts_.cdn_port) + "/" +
                           info.sha256 + "?name=" + layout::quote(name, "");
    if (opts_.token) location += "&sig=" + cdn_signature(info.sha256);
    r.status = 302;
    r.header("Location", location);
    r.header("X-Linked-Etag", "\"" + info.sha256 + "\"");
    r.header("X-Linked-Size", std::to_string(info.size));
    r.header("Accept-Ranges", "bytes");
    r.header("Cache-Control", "no-store");
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = MemoryBody{"Found. Redirecting to " + location};
    return res.respond(std::move(r));
  }
  std::string name = route.path.substr(route.path.rfind('/') + 1);
  r.header("ETag", "\"" + info.oid + "\"");
  r.header("Content-Disposition",
           "inline; filename*=UTF-8''" + layout::quote(name, "") + "; filename=\"" + name + "\";");
  r.header("Content-Type", "text/plain; charset=utf-8");
  send_file(req, res, std::move(r), route, loc, info);
}

// A file body with single-range support, exactly the Hub's 206/416. An unparseable
// Range is ignored (200 with the whole file), as on the Hub.
void Routes::send_file(Request& req, Responder& res, Response r, const Route& route, const Located& loc,
                       const FileInfo& f) {
  r.header("Accept-Ranges", "bytes");
  std::uint64_t start = 0, end = f.size;
  if (req.has_header("Range")) {
    auto range = parse_range(req.header("Range"), f.size);
    if (range.kind == ByteRange::unsatisfiable) {
      r.status = 416;
      r.header("Content-Range", "bytes */" + std::to_string(f.size));
      r.header("Content-Type", "text/plain");
      r.body = MemoryBody{"Range Not Satisfiable"};
      return res.respond(std::move(r));
    }
    if (range.kind == ByteRange::satisfiable) {
      start = range.start;
      end = range.end;
      r.status = 206;
      r.header("Content-Range",
               "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" + std::to_string(f.size));
    }
  }
  if (end == start) {
    r.body = MemoryBody{};
    return res.respond(std::move(r));
  }
  auto file = FileHandle::open(f.real);
  if (!file) {
    // Listed, but gone (a gc, an rm): the listing is stale. Look again.
    if (!loc.commit.empty()) catalog_.forget(loc.repo, loc.commit);
    Response e = error(404, "EntryNotFound", "Entry not found", !route.api ? false : true);
    e.header("X-Repo-Commit", loc.commit);
    e.route = r.route;
    return res.respond(std::move(e));
  }
  r.body = FileBody{std::move(file), start, end - start};
  res.respond(std::move(r));
}

void Routes::info(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap) {
  Query q(req);
  const bool blobs = q.flag("blobs");
  if (blobs && snap.unhashed > 0) {
    return with_snapshot(req, res, route, loc, true, [this, route, loc](Request& rq, Responder& r, const Snapshot& s) {
      info(rq, r, route, loc, s);
    });
  }
  const std::string& id = route.repo_id;
  std::string siblings;
  if (snap.unhashed == 0) {
    siblings = blobs ? snap.siblings_blobs : snap.siblings;
  } else {  // names only, and the JSON was not written for a listing with unhashed files
    json a = json::array();
    for (const auto& f : snap.files) a.push_back({{"rfilename", f.path}});
    siblings = a.dump();
  }
  // Placeholder keys in order; the siblings array is spliced in as written.
  json full = {{"_id", util::sha256_hex(id).substr(0, 24)},
               {"id", id},
               {"modelId", id},
               {"author", id.find('/') == std::string::npos ? "" : id.substr(0, id.find('/'))},
               {"sha", loc.commit},
               {"lastModified", iso_date(snap.date)},
               {"createdAt", iso_date(snap.date)},
               {"private", false},
               {"gated", false},
               {"disabled", false},
               {"downloads", 0},
               {"likes", 0},
               {"tags", json::array()},
               {"pipeline_tag", nullptr},
               {"library_name", nullptr},
               {"siblings", nullptr},
               {"spaces", json::array()},
               {"usedStorage", 0}};
  // expand=a&expand=b (or expand[]=): exactly {_id, id} plus the requested keys.
  std::vector<std::string> expand;
  for (const auto& [k, v] : q.params)
    if (k == "expand" || k == "expand[]") expand.push_back(v);
  json out = full;
  if (!expand.empty()) {
    out = {{"_id", full["_id"]}, {"id", id}};
    for (const auto& k : expand)
      if (full.contains(k)) out[k] = full[k];
  }
  std::string body = out.dump();
  if (out.contains("siblings")) {
    static const std::string marker = "\"siblings\":null";
    auto at = body.find(marker);
    if (at != std::string::npos) body.replace(at, marker.size(), "\"siblings\":" + siblings);
  }
  Response r = json_response(std::move(body));
  r.route = "info";
  res.respond(std::move(r));
}

void Routes::tree(Request& req, Responder& res, const Route& route, const Located&, const Snapshot& snap) {
  Query q(req);
  const bool recursive = q.flag("recursive");
  const bool expand = q.flag("expand");
  std::string base = route.path;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!base.empty()) {
    if (snap.find(base)) {
      Response r = error(404, "EntryNotFound", base + " is a file, not a folder on \"" + route.revision + "\"", true);
      r.route = "tree";
      return miss(req, res, std::move(r), opts_.hub_miss);
    }
  }
  const std::string prefix = base.empty() ? "" : base + "/";
  auto below = [&](const std::string& p) {  // the part of p under base, or npos-marked
    return prefix.empty() || p.compare(0, prefix.size(), prefix) == 0;
  };
  // Entries: folders (sorted) then files (sorted), as before.
  std::vector<const std::string*> entries;
  bool base_exists = base.empty();
  for (std::size_t i = 0; i < snap.dirs.size(); ++i) {
    const auto& d = snap.dirs[i];
    if (!below(d)) continue;
    base_exists = true;
    if (recursive || d.find('/', prefix.size()) == std::string::npos)
      entries.push_back(expand ? &snap.dir_json_expand[i] : &snap.dir_json[i]);
  }
  for (std::size_t i = 0; i < snap.files.size(); ++i) {
    const auto& p = snap.files[i].path;
    if (!below(p)) continue;
    base_exists = true;
    if (recursive || p.find('/', prefix.size()) == std::string::npos)
      entries.push_back(expand ? &snap.file_json_expand[i] : &snap.file_json[i]);
  }
  if (!base_exists) {
    Response r = error(404, "EntryNotFound", base + " does not exist on \"" + route.revision + "\"", true);
    r.route = "tree";
    return miss(req, res, std::move(r), opts_.hub_miss);
  }
  std::size_t limit = expand ? 50 : 1000;
  if (auto v = q.get("limit")) {
    try {
      limit = std::max<std::size_t>(1, std::stoul(*v));
    } catch (...) {
    }
  }
  std::size_t cursor = 0;
  if (auto v = q.get("cursor")) {
    try {
      cursor = std::stoul(*v);
    } catch (...) {
    }
  }
  std::string body = "[";
  for (std::size_t i = cursor; i < entries.size() && i < cursor + limit; ++i) {
    if (body.size() > 1) body += ',';
    body += *entries[i];
  }
  body += ']';
  Response r = json_response(std::move(body));
  r.route = "tree";
  if (cursor + limit < entries.size()) {
    std::string host(req.header("Host"));
    std::string path(req.path());
    std::string query = "recursive=" + std::string(recursive ? "true" : "false") +
                        "&expand=" + std::string(expand ? "true" : "false") + "&limit=" + std::to_string(limit) +
                        "&cursor=" + std::to_string(cursor + limit);
    r.header("Link", "<http://" + (host.empty() ? opts_.host + ":" + std::to_string(opts_.hub_port) : host) + path +
                         "?" + query + ">; rel=\"next\"");
  }
  res.respond(std::move(r));
}

void Routes::paths_info(Request& req, Responder& res, const Route&, const Located&, const Snapshot& snap) {
  auto [paths, expand] = hub::parse_paths_info(req.body);
  std::string out = "[";
  for (auto p : paths) {
    while (!p.empty() && p.back() == '/') p.pop_back();
    const std::string* entry = nullptr;
    if (auto it = snap.by_path.find(p); it != snap.by_path.end()) {
      entry = expand ? &snap.file_json_expand[it->second] : &snap.file_json[it->second];
    } else {
      auto d = std::lower_bound(snap.dirs.begin(), snap.dirs.end(), p);
      if (d != snap.dirs.end() && *d == p) {
        const auto i = static_cast<std::size_t>(d - snap.dirs.begin());
        entry = expand ? &snap.dir_json_expand[i] : &snap.dir_json[i];
      }
    }
    if (!entry) continue;
    if (out.size() > 1) out += ',';
    out += *entry;
  }
  out += ']';
  Response r = json_response(std::move(out));
  r.route = "paths-info";
  res.respond(std::move(r));
}

void Routes::refs(Request& req, Responder& res, const Route&, const Located& loc) {
  json branches = json::array(), prs = json::array(), converts = json::array(), tags = json::array();
  std::error_code ec;
  const fs::path refs = loc.repo / "refs";
  for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string name = it->path().lexically_relative(refs).generic_string();
    auto target = catalog_.resolve_revision(loc.repo, name);
    if (!target) continue;
    if (name.rfind("refs/pr/", 0) == 0)
      prs.push_back({{"name", name.substr(8)}, {"ref", name}, {"targetCommit", *target}});
    else if (name.rfind("refs/convert/", 0) == 0)
      converts.push_back({{"name", name.substr(13)}, {"ref", name}, {"targetCommit", *target}});
    else
      branches.push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", *target}});
  }
  json out = {{"branches", branches}, {"converts", converts}, {"tags", tags}};
  if (Query(req).flag("include_prs")) out["pullRequests"] = prs;
  Response r = json_response(out.dump());
  r.route = "refs";
  res.respond(std::move(r));
}

void Routes::cdn(Request& req, Responder res) {
  if (req.method != "GET" && req.method != "HEAD") {
    Response r = Response::text(405, "Method not allowed", "text/plain");
    r.route = "cdn";
    return res.respond(std::move(r));
  }
  std::string sha(req.path().substr(1));
  auto not_found = [] {
    Response r = Response::text(404, "Not found", "text/plain");
    r.route = "cdn";
    return r;
  };
  if (sha.size() != 64 || !layout::is_hex(sha)) return res.respond(not_found());
  if (opts_.token) {
    // A guarded server signs its CDN URLs, as the Hub does: the sha256 alone opens nothing.
    const std::string expected = cdn_signature(sha);
    const std::string* given = nullptr;
    Query q(req);
    given = q.get("sig");
    if (!given || given->size() != expected.size() ||
        CRYPTO_memcmp(given->data(), expected.data(), expected.size()) != 0) {
      Response r = Response::text(403, "Forbidden", "text/plain");
      r.route = "cdn";
      return res.respond(std::move(r));
    }
  }
  auto serve = [this, sha](Request& q, Responder& r, const std::string& real) {
    FileInfo f;
    f.real = real;
    struct stat st {};
    if (::stat(real.c_str(), &st) != 0) {
      Response nf = Response::text(404, "Not found", "text/plain");
      nf.route = "cdn";
      return r.respond(std::move(nf));
    }
    f.size = static_cast<std::uint64_t>(st.st_size);
    Response resp;
    resp.route = "cdn";
    resp.header("ETag", "\"" + sha + "\"");
    resp.header("Content-Type", "application/octet-stream");
    send_file(q, r, std::move(resp), Route{}, Located{}, f);
  };
  if (auto known = catalog_.known_sha256(sha)) return serve(req, res, *known);
  auto copy = std::make_shared<Request>(req);
  engine_.blocking([this, copy, res, sha, serve, not_found]() mutable {
    if (!res.alive()) return;
    if (auto real = catalog_.find_sha256(sha)) return serve(*copy, res, *real);
    if (opts_.cdn_miss) return opts_.cdn_miss(*copy, res);
    res.respond(not_found());
  });
}

}  // namespace hubcache::serve
