#include "serve/server.hpp"

#include <cstdio>

#include "hubcache/error.hpp"
#include "serve/catalog.hpp"
#include "serve/mirror_front.hpp"
#include "serve/routes.hpp"

namespace hubcache::serve {

struct Server::Impl {
  ServerOptions opts;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<Routes> routes;
  std::unique_ptr<MirrorFront> front;  // serve --upstream
  int hub_port = 0, cdn_port = 0;
  bool started = false;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(options); }

Server::~Server() { stop(); }

void Server::start() {
  Impl& s = *impl_;
  std::error_code ec;
  auto root = std::filesystem::canonical(s.opts.cache_dir, ec);
  if (ec) throw Error(ErrorCode::io, "Cannot serve '" + s.opts.cache_dir.string() + "': " + ec.message());
  s.catalog = std::make_unique<Catalog>(root);
  s.engine = std::make_unique<Engine>(s.opts.limits, EngineOptions{s.opts.threads, s.opts.disk_threads});
  // The handlers reach the routes through the Impl: the Routes object needs both
  // ports, known only once both listeners are bound.
  s.hub_port = s.engine->listen("hub", s.opts.host, s.opts.port, [this](Request& q, Responder r) {
    if (impl_->front) return impl_->front->hub(q, std::move(r));
    impl_->routes->hub(q, std::move(r));
  });
  s.cdn_port = s.engine->listen("cdn", s.opts.host, s.opts.cdn_port, [this](Request& q, Responder r) {
    if (impl_->front) return impl_->front->cdn(q, std::move(r));
    impl_->routes->cdn(q, std::move(r));
  });
  RoutesOptions ro;
  ro.host = s.opts.host;
  ro.hub_port = s.hub_port;
  ro.cdn_port = s.cdn_port;
  ro.token = s.opts.token;
  ro.hub_miss = s.opts.hub_miss;
  ro.cdn_miss = s.opts.cdn_miss;
  s.routes = std::make_unique<Routes>(*s.catalog, *s.engine, std::move(ro));
  if (s.opts.mirror) {
    mirror::MirrorOptions mo = *s.opts.mirror;
    mo.cache_dir = root;
    mo.site_token = s.opts.token;
    s.front = std::make_unique<MirrorFront>(std::move(mo), *s.routes, s.cdn_port);
  }
  const bool log = s.opts.access_log;
  auto extra = s.opts.on_request;
  MirrorFront* front = s.front.get();
  s.engine->on_request_done([log, extra, front](const RequestRecord& r) {
    if (log) {
      // Listener, method, target, status, body bytes, time. Headers (and so tokens) are
      // never logged; credentials in the query are masked.
      const std::string target = Routes::loggable_target(r.target);
      std::fprintf(stderr, "%.*s %.*s %s %d %llu %.1fms\n", static_cast<int>(r.listener.size()), r.listener.data(),
                   static_cast<int>(r.method.size()), r.method.data(), target.c_str(), r.status,
                   static_cast<unsigned long long>(r.body_bytes), static_cast<double>(r.duration.count()) / 1000.0);
    }
    if (front) front->record(r);
    if (extra) extra(r);
  });
  s.engine->start();
  s.started = true;
}

int Server::drain(std::chrono::milliseconds deadline) { return impl_->engine ? impl_->engine->drain(deadline) : 0; }
void Server::abort() {
  if (impl_->engine) impl_->engine->abort();
}
void Server::stop() {
  if (impl_->engine) impl_->engine->stop();
  // After the engine: responses streaming a file still arriving finish (or are cut)
  // first; then the mirror's transfers stop, their partials kept for the next run.
  if (impl_->front) impl_->front->stop();
}

int Server::port() const { return impl_->hub_port; }
int Server::cdn_port() const { return impl_->cdn_port; }
std::string Server::base_url() const {
  const std::string& h = impl_->opts.host;
  std::string host = h == "0.0.0.0" ? "127.0.0.1" : h;
  return "http://" + host + ":" + std::to_string(impl_->hub_port);
}
Engine& Server::engine() { return *impl_->engine; }
Catalog& Server::catalog() { return *impl_->catalog; }

}  // namespace hubcache::serve
