// The Hub's HTTP API over a cache: the handlers the engine calls for the hub
// listener (resolve, repo info, tree, paths-info, refs) and the CDN listener (LFS
// blobs by sha256, signed when a token guards the server). They answer from the
// Catalog at once when the listing of the commit is built, and go to the engine's
// blocking pool when a folder must be walked or a file hashed.
#pragma once

#include <optional>
#include <string>

#include "hubcache/options.hpp"
#include "serve/catalog.hpp"
#include "serve/engine.hpp"

namespace hubcache::serve {

// A request target taken apart (on the raw target, so "refs%2Fpr%2F1" stays one segment).
struct Route {
  bool api = false;
  RepoType type = RepoType::model;
  std::string repo_id;
  std::string action;  // api: "", "revision", "tree", "paths-info", "refs"; else "resolve"
  std::string revision;
  std::string path;
  bool ok = false;
};
Route parse_route(std::string_view target);

struct RoutesOptions {
  std::string host;  // for Link and Location when a request has no Host
  int hub_port = 0, cdn_port = 0;
  std::optional<std::string> token;  // hub requests need "Authorization: Bearer <token>"
  // Called instead of answering 401/404 for a repo, revision or file the cache does not
  // have (the seam for a pull-through mirror). The Request is valid until it returns.
  Handler hub_miss;
  // Likewise for a CDN sha256 the cache does not have.
  Handler cdn_miss;
};

class Routes {
 public:
  Routes(Catalog& catalog, Engine& engine, RoutesOptions options);
  void hub(Request& req, Responder res);
  void cdn(Request& req, Responder res);

  // The access log's target: credentials in the query masked (the CDN's `sig`, any
  // `*token*` parameter).
  static std::string loggable_target(std::string_view target);

 private:
  struct Located;
  std::optional<Response> authorize(const Request& req, bool api) const;
  bool locate(Request& req, Responder& res, const Route& route, Located& out);
  void miss(Request& req, Responder& res, Response response, const Handler& fallback);
  void with_snapshot(Request& req, Responder res, const Route& route, const Located& loc, bool complete,
                     std::function<void(Request&, Responder&, const Snapshot&)> fn);
  void resolve(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap);
  void send_file(Request& req, Responder& res, Response r, const Route& route, const Located& loc, const FileInfo& f);
  void info(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap);
  void tree(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap);
  void paths_info(Request& req, Responder& res, const Route& route, const Located& loc, const Snapshot& snap);
  void refs(Request& req, Responder& res, const Route& route, const Located& loc);
  std::string cdn_signature(const std::string& sha) const;
  std::string host_for_redirect(const Request& req) const;

  Catalog& catalog_;
  Engine& engine_;
  RoutesOptions opts_;
};

}  // namespace hubcache::serve
