// hubcache serve --upstream: the hub and CDN listeners answer through the pull-through
// mirror (src/mirror), which decides what to fetch and whom to admit; its replies
// become engine responses here (ranges applied to cached and growing files), and a
// request the upstream cannot help with goes to the routes over the cache, as plain
// serve answers it. GET /metrics is answered here too.
#pragma once

#include <memory>

#include "mirror/mirror.hpp"
#include "serve/engine.hpp"
#include "serve/routes.hpp"

namespace hubcache::serve {

class MirrorFront {
 public:
  // Throws Error(invalid_argument) for an unusable upstream URL.
  MirrorFront(mirror::MirrorOptions options, Routes& routes, int cdn_port);
  void hub(Request& req, Responder res);
  void cdn(Request& req, Responder res);
  // Every finished request, for /metrics.
  void record(const RequestRecord& r);
  // Stops the mirror's transfers (partials stay for the next run) and threads.
  void stop();

 private:
  void forward(Request& req, Responder res, bool cdn);
  void answer(const std::shared_ptr<Request>& req, Responder res, mirror::Reply reply, bool cdn);
  std::unique_ptr<mirror::Mirror> mirror_;
  Routes& routes_;
  std::optional<std::string> site_token_;
};

}  // namespace hubcache::serve
