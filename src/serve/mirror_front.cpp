#include "serve/mirror_front.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <unistd.h>

namespace hubcache::serve {

MirrorFront::MirrorFront(mirror::MirrorOptions options, Routes& routes, int cdn_port)
    : routes_(routes), site_token_(options.site_token) {
  mirror_ = std::make_unique<mirror::Mirror>(std::move(options));
  mirror_->set_cdn_port(cdn_port);
}

void MirrorFront::hub(Request& req, Responder res) {
  if (req.path() == "/metrics" && (req.method == "GET" || req.method == "HEAD")) {
    if (site_token_) {
      const std::string expected = "Bearer " + *site_token_;
      const auto given = req.header("Authorization");
      if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0) {
        Response r = Response::text(401, "Invalid username or password.");
        r.route = "metrics";
        r.header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
        return res.respond(std::move(r));
      }
    }
    Response r = Response::text(200, mirror_->render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
    r.route = "metrics";
    r.header("Cache-Control", "no-store");
    return res.respond(std::move(r));
  }
  forward(req, std::move(res), false);
}

void MirrorFront::cdn(Request& req, Responder res) { forward(req, std::move(res), true); }

void MirrorFront::forward(Request& req, Responder res, bool cdn) {
  mirror::Request m;
  m.method = req.method;
  m.target = req.target;
  m.cdn = cdn;
  if (req.has_header("Authorization")) m.authorization = std::string(req.header("Authorization"));
  m.host = std::string(req.header("Host"));
  m.if_none_match = std::string(req.header("If-None-Match"));
  m.body = req.body;
  m.content_type = std::string(req.header("Content-Type"));
  // The Request lives in its connection only until this returns: the reply may come later.
  auto copy = std::make_shared<Request>(req);
  mirror_->handle(m, [this, copy, res, cdn](mirror::Reply reply) { answer(copy, res, std::move(reply), cdn); });
}

namespace {

// A file the engine reads, kept open (and marked in use) until the response is done.
std::shared_ptr<FileHandle> handle_of(int fd, std::shared_ptr<void> keep) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return nullptr;
  return std::shared_ptr<FileHandle>(new FileHandle(copy), [keep](FileHandle* h) { delete h; });
}

}  // namespace

void MirrorFront::answer(const std::shared_ptr<Request>& req, Responder res, mirror::Reply reply, bool cdn) {
  if (reply.from_cache_server) {
    if (cdn)
      routes_.cdn(*req, std::move(res));
    else
      routes_.hub(*req, std::move(res));
    return;
  }
  Response r;
  r.status = reply.status;
  r.route = reply.route;
  for (auto& [k, v] : reply.headers) r.header(k, v);
  if (!reply.content_type.empty()) r.header("Content-Type", reply.content_type);
  const bool bodies = reply.file || reply.growing || reply.head_length;
  if (!bodies) {
    r.body = MemoryBody{std::move(reply.body)};
    return res.respond(std::move(r));
  }
  const std::uint64_t size = reply.file ? reply.file->size : reply.growing ? reply.growing->size() : *reply.head_length;
  // Ranges of a file, as the Hub answers them: 206 with Content-Range, 416 past the end.
  std::uint64_t offset = 0, length = size;
  if (r.status == 200) {
    ByteRange range = parse_range(req->header("Range"), size);
    if (range.kind == ByteRange::unsatisfiable) {
      Response bad = Response::text(416, "Range Not Satisfiable");
      bad.route = r.route;
      bad.header("Content-Range", "bytes */" + std::to_string(size));
      return res.respond(std::move(bad));
    }
    if (range.kind == ByteRange::satisfiable) {
      offset = range.start;
      length = range.end - range.start;
      r.status = 206;
      r.header("Content-Range", "bytes " + std::to_string(range.start) + "-" + std::to_string(range.end - 1) + "/" +
                                    std::to_string(size));
    }
  }
  if (reply.head_length) {
    r.body = FileBody{nullptr, offset, length};  // HEAD: the length, no body
    return res.respond(std::move(r));
  }
  if (reply.file) {
    auto handle = handle_of(reply.file->fd, reply.file->keep);
    if (!handle) return res.respond(Response::text(503, "Too many open files; retry."));
    r.body = FileBody{handle, offset, length};
    return res.respond(std::move(r));
  }
  auto attempt = reply.growing;
  auto handle = handle_of(attempt->fd(), attempt);
  if (!handle) return res.respond(Response::text(503, "Too many open files; retry."));
  auto state = std::make_shared<GrowingFile>(size);
  std::weak_ptr<GrowingFile> weak = state;
  // The mirror publishes, for this response, how far the bytes from its start reach.
  attempt->listen(offset, [weak](const mirror::Attempt::View& v) {
    auto s = weak.lock();
    if (!s) return false;  // the response is over
    if (v.state == mirror::Attempt::State::failed) {
      s->fail();
      return false;
    }
    if (v.state == mirror::Attempt::State::complete) {
      s->complete();
      return false;
    }
    s->available(v.available);
    return true;
  });
  r.body = GrowingBody{handle, state, offset, length};
  res.respond(std::move(r));
}

void MirrorFront::record(const RequestRecord& r) {
  mirror_->record(r.route.empty() ? "other" : std::string(r.route), r.status, r.body_bytes,
                  std::chrono::duration<double>(r.duration).count());
}

void MirrorFront::stop() { mirror_->stop(); }

}  // namespace hubcache::serve
