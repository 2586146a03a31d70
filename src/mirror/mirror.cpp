// The mirror's request flow (see mirror.hpp and docs/architecture.md, "The mirror").
//
// Every Hub request goes through the same gates before anything is read or fetched:
//   1. the route and repo id are parsed and checked (--allow / --deny);
//   2. the repo's visibility is known (asked upstream anonymously, kept a while);
//   3. public repos need what serve's own --token-file demands; gated and private
//      repos need a client token the upstream accepts for them (or, with
//      --share-upstream-token, the mirror's own token), checked before the cache is read.
// Then each route resolves its revision (a branch at most every --revalidate seconds,
// else the last known commit), answers from the cache or from what it keeps per
// commit, and asks the upstream only for what it lacks. Upstream requests run on the
// worker pool, joined by single-flight keys, so many clients asking at once cost one
// request; the rate gate holds all of them back after a 429.
#include "mirror/mirror.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "hub/hub_client.hpp"
#include "hub/repo_api.hpp"
#include "hub/request_parts.hpp"
#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "mirror/access.hpp"
#include "mirror/listings.hpp"
#include "mirror/policy.hpp"
#include "mirror/rate_gate.hpp"
#include "mirror/revisions.hpp"
#include "mirror/space.hpp"
#include "mirror/target.hpp"
#include "mirror/upstream.hpp"
#include "mirror/workers.hpp"
#include "mirror/xet.hpp"
#include "store/repo_cache.hpp"
#include "store/tree_cache.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::mirror {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::optional<std::string> Reply::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < k.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(k[i])) == std::tolower(static_cast<unsigned char>(name[i]));
    if (same) return v;
  }
  return std::nullopt;
}

namespace {

constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kText = "text/plain; charset=utf-8";

// One request on its way through the gates.
struct Call {
  Request req;
  Target t;
  std::function<void(Reply)> done;
  std::optional<store::RepoCache> cache;
  std::optional<std::string> client_token;  // the client's Hub token (not the site token)
  bool site_ok = false;                     // no site token needed, or it was presented
  std::optional<std::string> up_token;      // what upstream requests for this call carry
  Visibility vis = Visibility::open;
  std::atomic<bool> answered{false};
  std::atomic<bool> stale{false};  // counted once as a stale answer

  bool api() const { return t.kind != Target::Kind::resolve && t.kind != Target::Kind::blob; }
  std::string what() const {
    return std::string(to_string(t.type)) + " '" + t.repo_id + "'" +
           (t.revision.empty() ? "" : " at revision '" + t.revision + "'") +
           (t.path.empty() ? "" : ", '" + t.path + "'");
  }
  void reply(Reply r) {
    if (answered.exchange(true)) return;
    done(std::move(r));
  }
};
using CallPtr = std::shared_ptr<Call>;

const char* route_name(Target::Kind k) {
  switch (k) {
    case Target::Kind::resolve:
      return "resolve";
    case Target::Kind::blob:
      return "cdn";
    case Target::Kind::info:
      return "info";
    case Target::Kind::tree:
      return "tree";
    case Target::Kind::paths_info:
      return "paths-info";
    case Target::Kind::refs:
      return "refs";
    default:
      return "other";
  }
}

// JSON text of `j`: a string that came from a client (a path, a message naming it) may
// not be UTF-8, and dump() would throw on it; such bytes become U+FFFD instead.
std::string json_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply error_reply(const CallPtr& c, int status, const std::string& code, const std::string& message) {
  Reply r;
  r.status = status;
  r.route = route_name(c->t.kind);
  if (!code.empty()) r.headers.emplace_back("X-Error-Code", code);
  r.headers.emplace_back("X-Error-Message", message);
  r.headers.emplace_back("Cache-Control", "no-store");
  if (c->api()) {
    r.content_type = kJson;
    r.body = json_text(json{{"error", message}});
  } else {
    r.content_type = kText;
    r.body = message;
  }
  return r;
}

std::string host_only(const std::string& host_header) {
  if (host_header.empty()) return "127.0.0.1";
  if (host_header.front() == '[') return host_header.substr(0, host_header.find(']') + 1);
  return host_header.substr(0, host_header.find(':'));
}

bool is_relative(const std::string& location) { return http::is_relative_location(location); }

std::string header_or(const http::Headers& h, const char* name) { return h.get(name).value_or(""); }

}  // namespace

struct Mirror::Impl {
  MirrorOptions opts;
  Metrics metrics;
  RateGate gate;
  Upstream upstream;
  WorkerPool pool;
  SingleFlight<UpstreamReply> flights;
  Timer timer;
  Revisions revisions;
  AccessCache access;
  ListingCache listings;
  RepoPolicy policy;
  mutable InUse in_use;
  std::unique_ptr<Fills> fills;
  std::unique_ptr<SpaceKeeper> space;
  std::atomic<int> cdn_port{0};
  std::string sign_key;
  std::mutex refs_mutex;
  std::map<std::string, std::pair<Clock::time_point, std::string>> refs_answers;

  explicit Impl(MirrorOptions o)
      : opts(std::move(o)),
        upstream(opts.upstream, gate, metrics),
        pool(opts.threads),
        flights(pool),
        revisions(opts.revalidate),
        access(opts.cache_dir, opts.revalidate, opts.access_ttl),
        listings(opts.listing_cache_bytes),
        policy(opts.allow, opts.deny) {
    declare_metrics();
    FillSettings fs_settings;
    fs_settings.upstream = upstream.base();
    fs_settings.connections = opts.connections;
    fills = std::make_unique<Fills>(fs_settings, metrics, [this](const FillJob& job, std::uint64_t bytes) {
      if (space)
        space->added(bytes, store::RepoCache(job.root, job.repo_id, job.type).blob_path(job.meta.etag),
                     job.repo_id + "/" + job.file);
    });
    if (opts.max_size)
      space = std::make_unique<SpaceKeeper>(
          opts.cache_dir, *opts.max_size,
          [this](const fs::path& blob) { return in_use.held(blob) || fills->busy(blob); }, metrics);
    if (space) space->added(0);  // the cache may be over the limit already
    if (opts.site_token) {
      sign_key = *opts.site_token;
    } else {
      unsigned char key[32];
      if (RAND_bytes(key, sizeof key) != 1) throw Error(ErrorCode::internal, "No randomness for the CDN URL key.");
      sign_key.assign(reinterpret_cast<const char*>(key), sizeof key);
    }
  }

  void declare_metrics() {
    using T = Metrics::Type;
    metrics.declare("hubcache_http_requests_total", "Requests answered, by route and status.", T::counter);
    metrics.declare("hubcache_http_response_bytes_total", "Body bytes sent to clients, by route.", T::counter);
    metrics.declare("hubcache_http_request_duration_seconds", "Time from request to the end of its answer.",
                    T::histogram, {0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300});
    metrics.declare("hubcache_cache_hits_total",
                    "Answers from the cache (kind: file, listing, revision) without asking upstream.", T::counter);
    metrics.declare("hubcache_cache_misses_total", "Answers that needed the upstream (kind: file, listing, revision).",
                    T::counter);
    metrics.declare("hubcache_upstream_requests_total",
                    "Requests to the upstream Hub, by kind and status (error: no answer; held: the rate gate was "
                    "closed; down: not sent, the upstream gave no answer and another request tests it).",
                    T::counter);
    metrics.declare("hubcache_upstream_bytes_total", "File bytes fetched from upstream by this process.", T::counter);
    metrics.declare("hubcache_upstream_fills_total",
                    "Files put into the cache (result: started, complete, failed; followed: another process "
                    "downloads it).",
                    T::counter);
    metrics.declare("hubcache_upstream_rate_limited_total", "Times the upstream asked to slow down (429/503).",
                    T::counter);
    metrics.declare("hubcache_stale_answers_total",
                    "Answers at a branch's last known commit because the upstream could not be asked.", T::counter);
    metrics.declare("hubcache_access_checks_total", "Client tokens checked against the upstream, by result.",
                    T::counter);
    metrics.declare("hubcache_gc_runs_total", "Garbage collections run for --max-size.", T::counter);
    metrics.declare("hubcache_gc_freed_bytes_total", "Bytes freed by --max-size garbage collections.", T::counter);
    metrics.declare_gauge_fn("hubcache_upstream_transfers_in_flight", "Files being fetched (or followed) right now.",
                             [this] { return static_cast<double>(fills ? fills->in_flight() : 0); });
    metrics.declare_gauge_fn("hubcache_upstream_waiting_clients",
                             "Responses waiting for, or streaming, a file still arriving from upstream.",
                             [this] { return static_cast<double>(fills ? fills->waiting_clients() : 0); });
    for (const char* n : {"hubcache_upstream_bytes_total", "hubcache_upstream_rate_limited_total",
                          "hubcache_stale_answers_total", "hubcache_gc_runs_total", "hubcache_gc_freed_bytes_total"})
      metrics.add(n, {}, 0);
  }

  void log(const std::string& line) const {
    if (opts.log) std::fprintf(stderr, "mirror: %s\n", line.c_str());
  }

  // ---- replies ----------------------------------------------------------------------

  std::string cache_control_for(const CallPtr& c, bool pinned) const {
    const bool shared = c->vis == Visibility::open && !opts.site_token;
    const std::string scope = shared ? "public" : "private";
    // A stale answer (the upstream could not be asked) is kept downstream only as long
    // as a branch is: part of it may be made up (a listing's folder ids, a repo info).
    if (pinned && !c->stale) return scope + ", max-age=31536000";
    return scope + ", max-age=" + std::to_string(opts.revalidate.count());
  }

  // The upstream's answer, replayed: its status, error headers and body (never a Xet header).
  Reply replay(const CallPtr& c, const UpstreamReply& u) const {
    Reply r;
    r.status = static_cast<int>(u.status);
    r.route = route_name(c->t.kind);
    for (const char* h : {"X-Error-Code", "X-Error-Message", "WWW-Authenticate", "X-Request-Id", "Retry-After",
                          "RateLimit", "RateLimit-Policy", "X-Repo-Commit"})
      if (auto v = u.headers.get(h)) r.headers.emplace_back(h, *v);
    if (u.status >= 300 && u.status < 400)
      if (auto loc = u.headers.get("Location")) r.headers.emplace_back("Location", *loc);
    const bool entry_missing = u.status == 404 && header_or(u.headers, "X-Error-Code") == "EntryNotFound";
    r.headers.emplace_back("Cache-Control", entry_missing ? cache_control_for(c, false) : "no-store");
    r.content_type = u.headers.get("Content-Type").value_or(c->api() ? kJson : kText);
    r.body = u.body.substr(0, 64 * 1024);
    return r;
  }

  // No usable answer from upstream for something not in the cache.
  Reply unavailable(const CallPtr& c, const UpstreamReply& u, const std::string& what) const {
    Reply r;
    std::string message;
    if (u.outcome == UpstreamReply::Outcome::gated || (u.answered() && u.gate)) {
      const auto g = u.gate ? *u.gate : RateGate::Closed{};
      message = "The upstream " + upstream.base() + " asked to slow down (HTTP " + std::to_string(g.status) + "); " +
                what + " is not in this mirror's cache. Retry in " + std::to_string(g.retry_after.count()) + " s.";
      r = error_reply(c, static_cast<int>(g.status), "", message);
      for (const auto& h : g.headers) r.headers.push_back(h);
    } else if (u.outcome == UpstreamReply::Outcome::timed_out) {
      message = "The upstream " + upstream.base() + " did not answer in time; " + what +
                " is not in this mirror's cache. Retry later.";
      r = error_reply(c, 504, "", message);
    } else if (u.outcome == UpstreamReply::Outcome::unreachable) {
      message = "The upstream " + upstream.base() + " cannot be reached (" + u.detail + "); " + what +
                " is not in this mirror's cache. Retry later.";
      r = error_reply(c, 502, "", message);
    } else {
      const std::string said = header_or(u.headers, "X-Error-Message");
      message = "The upstream " + upstream.base() + " failed with HTTP " + std::to_string(u.status) +
                (said.empty() ? "" : " (" + said + ")") + "; " + what + " is not in this mirror's cache. Retry later.";
      r = error_reply(c, u.status == 504 ? 504 : 502, "", message);
    }
    log(message.substr(0, message.find(';')) + " for " + c->what() + "; answered " + std::to_string(r.status));
    return r;
  }

  Reply json_reply(const CallPtr& c, std::string body, bool pinned) const {
    Reply r;
    r.status = 200;
    r.route = route_name(c->t.kind);
    r.content_type = kJson;
    r.body = std::move(body);
    r.headers.emplace_back("Cache-Control", cache_control_for(c, pinned));
    return r;
  }

  Reply from_cache(const CallPtr& c) const {
    Reply r;
    r.from_cache_server = true;
    r.route = route_name(c->t.kind);
    return r;
  }

  std::optional<FileBody> open_file(const fs::path& path) const {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return std::nullopt;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    FileBody f;
    f.fd = fd;
    f.size = static_cast<std::uint64_t>(st.st_size);
    std::error_code ec;
    const fs::path real = fs::canonical(path, ec);
    auto hold = in_use.hold(ec ? path : real);
    f.keep = std::shared_ptr<void>(nullptr, [fd, hold](void*) { ::close(fd); });
    return f;
  }

  // ---- signatures of CDN URLs -----------------------------------------------------

  std::string signature(const std::string& text) const { return util::hmac_sha256_hex(sign_key, text); }
  static std::string signed_text(const std::string& sha, RepoType type, const std::string& repo,
                                 const std::string& commit, const std::string& file) {
    return sha + "\n" + std::string(layout::api_collection(type)) + "/" + repo + "\n" + commit + "\n" + file;
  }
  bool must_sign(const CallPtr& c) const { return opts.site_token.has_value() || c->vis != Visibility::open; }

  std::string cdn_url(const CallPtr& c, const std::string& commit, const std::string& file,
                      const std::string& sha) const {
    std::string url = "http://" + host_only(c->req.host) + ":" + std::to_string(cdn_port.load()) + "/" + sha +
                      "?repo=" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id +
                      "&rev=" + commit + "&file=" + layout::quote(file, "");
    if (must_sign(c)) url += "&sig=" + signature(signed_text(sha, c->t.type, c->t.repo_id, commit, file));
    return url;
  }

  // ---- upstream exchanges (single-flight) -----------------------------------------

  std::string token_tag(const CallPtr& c) const {
    return c->up_token ? AccessCache::token_key(*c->up_token).substr(0, 16) : "-";
  }

  // HEAD of a resolve URL. Relative redirects into /api/resolve-cache/ (the Hub's
  // commit-pinned copy of a regular file on a branch) are followed here; any other
  // relative redirect (a renamed repo) goes back to the client.
  UpstreamReply head_resolve(RepoType type, const std::string& repo, const std::string& rev, const std::string& file,
                             const std::optional<std::string>& token, const std::string& kind) const {
    std::string path = layout::resolve_url("", type, repo, rev, file);
    UpstreamReply u = upstream.send("HEAD", path, token, kind);
    for (int hops = 0; hops < 5 && u.redirect(); ++hops) {
      auto loc = u.headers.get("Location");
      if (!loc || !is_relative(*loc) || loc->rfind("/api/resolve-cache/", 0) != 0) break;
      u = upstream.send("HEAD", loc->substr(0, loc->find('?')), token, kind);
    }
    return u;
  }

  // How long a request the cache can answer (a branch's last known commit, a repo's
  // last known visibility) waits for the upstream before it is answered from the cache.
  // Well under a client's own timeout (10 s for hubcache and huggingface_hub's HEAD),
  // and long enough for a Hub that is only slow to answer most of the time.
  static constexpr std::chrono::milliseconds kPatience{2000};

  // An upstream request through its flight. `cache_can_answer`: `done` handles "no
  // answer" from the cache, and gets that as soon as the upstream has been silent for
  // kPatience (counted from the oldest request still unanswered, so a request joining
  // a flight that already waits, or arriving while another hangs, waits no longer).
  // The upstream's answer, when it comes after that, only goes to `learn` (what it says
  // is kept for the next requests). Without `cache_can_answer` the request waits for the
  // upstream's answer or its timeout, unless the circuit breaker (Upstream::exchange)
  // fails it at once.
  void ask(const std::string& key, std::function<UpstreamReply()> work, std::function<void(const UpstreamReply&)> done,
           bool cache_can_answer = false, std::function<void(const UpstreamReply&)> learn = {}) {
    if (!cache_can_answer) return flights.run(key, std::move(work), std::move(done));
    UpstreamReply waited;
    waited.outcome = UpstreamReply::Outcome::timed_out;
    waited.detail = "no answer for " + std::to_string(kPatience.count() / 1000) + " s";
    const auto silent = upstream.unanswered_for();
    if (silent >= kPatience) return done(waited);
    auto claimed = std::make_shared<std::atomic<bool>>(false);
    flights.run(key, std::move(work), [claimed, done, learn](const UpstreamReply& u) {
      if (!claimed->exchange(true)) return done(u);
      if (learn) learn(u);
    });
    timer.after(kPatience - silent, [claimed, done, waited] {
      if (!claimed->exchange(true)) done(waited);
    });
  }

  void head(const CallPtr& c, const std::string& rev, const std::string& file,
            std::function<void(const UpstreamReply&)> then, bool cache_can_answer = false,
            std::function<void(const UpstreamReply&)> learn = {}) {
    const std::string key = "head|" + token_tag(c) + "|" + c->cache->folder_name() + "|" + rev + "|" + file;
    const RepoType type = c->t.type;
    const std::string repo = c->t.repo_id;
    const auto token = c->up_token;
    ask(
        key, [this, type, repo, rev, file, token] { return head_resolve(type, repo, rev, file, token, "resolve"); },
        std::move(then), cache_can_answer, std::move(learn));
  }

  // ---- gates ----------------------------------------------------------------------

  void start(const CallPtr& c) {
    c->t = parse_target(c->req.target, c->req.cdn);
    if (c->t.kind == Target::Kind::none) return c->reply(error_reply(c, 404, "", "Not found"));
    const bool get = c->req.method == "GET" || c->req.method == "HEAD";
    if (c->t.kind == Target::Kind::paths_info ? c->req.method != "POST" : !get)
      return c->reply(error_reply(c, 405, "", "Method not allowed"));
    if (c->t.kind == Target::Kind::blob && c->t.repo_id.empty()) return legacy_blob(c);
    try {
      layout::validate_repo_id(c->t.repo_id);
      c->cache.emplace(opts.cache_dir, c->t.repo_id, c->t.type);
      if (c->t.kind == Target::Kind::resolve || c->t.kind == Target::Kind::blob) layout::validate_filename(c->t.path);
      if (c->t.kind == Target::Kind::tree && !c->t.path.empty()) {
        std::string folder = c->t.path;  // a folder of the repo, or nothing
        while (!folder.empty() && folder.back() == '/') folder.pop_back();
        layout::validate_filename(folder);
      }
      if (!c->t.revision.empty() && !layout::is_commit_hash(c->t.revision) && c->t.revision != "HEAD")
        layout::validate_revision(c->t.revision);
    } catch (const Error& e) {
      return c->reply(error_reply(c, 400, "", e.what()));
    }
    if (auto why = policy.refusal(c->t.type, c->t.repo_id)) return c->reply(error_reply(c, 403, "", *why));
    if (c->t.kind == Target::Kind::xet_token)
      return c->reply(error_reply(c, 404, "",
                                  "This mirror does not offer Xet storage: files download over plain HTTP from it "
                                  "(set HF_HUB_DISABLE_XET=1 if a client insists)."));
    if (c->t.kind == Target::Kind::other_api)
      return c->reply(error_reply(c, 404, "", "This API route is not offered by this mirror."));

    // The site token (serve's --token-file) or the client's own Hub token.
    std::optional<std::string> bearer;
    if (c->req.authorization && c->req.authorization->rfind("Bearer ", 0) == 0)
      bearer = c->req.authorization->substr(7);
    if (!opts.site_token) {
      c->site_ok = true;
      c->client_token = bearer;
    } else if (bearer && bearer->size() == opts.site_token->size() &&
               CRYPTO_memcmp(bearer->data(), opts.site_token->data(), bearer->size()) == 0) {
      c->site_ok = true;
    } else {
      c->client_token = bearer;
    }
    if (c->client_token && c->client_token->empty()) c->client_token.reset();
    if (c->t.kind == Target::Kind::blob) return on_blob(c);
    with_access(c, [this, c] { route(c); });
  }

  void route(const CallPtr& c) {
    switch (c->t.kind) {
      case Target::Kind::resolve:
        return on_resolve(c);
      case Target::Kind::info:
        return on_info(c);
      case Target::Kind::tree:
        return on_tree(c);
      case Target::Kind::paths_info:
        return on_paths_info(c);
      case Target::Kind::refs:
        return on_refs(c);
      default:
        return c->reply(error_reply(c, 404, "", "Not found"));
    }
  }

  Reply site_refusal(const CallPtr& c) const {
    Reply r = error_reply(
        c, 401, "",
        c->req.authorization ? "Invalid credentials in Authorization header" : "Invalid username or password.");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
    return r;
  }

  // What the Hub answers an anonymous client for a gated or private repo.
  Reply hub_refusal(const CallPtr& c) const {
    Reply r;
    if (c->vis == Visibility::gated) {
      r = error_reply(c, 401, "GatedRepo",
                      "Access to " + std::string(to_string(c->t.type)) + " " + c->t.repo_id +
                          " is restricted. You must have access to it and be authenticated to access it. Please "
                          "log in.");
    } else {
      r = error_reply(c, 401, "RepoNotFound", "Repository not found");
    }
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
    return r;
  }

  void visibility(const CallPtr& c, std::function<void(Visibility)> then) {
    if (auto v = access.visibility(c->t.type, c->t.repo_id)) return then(*v);
    const std::string path = "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id;
    const RepoType type = c->t.type;
    const std::string repo = c->t.repo_id;
    ask(
        "vis|" + c->cache->folder_name(), [this, path] { return upstream.send("GET", path, std::nullopt, "access"); },
        [this, c, then](const UpstreamReply& u) {
          if (u.redirect()) return then(Visibility::open);  // a renamed repo: the request itself will be redirected
          if (auto v = visibility_of(u)) {
            access.set_visibility(c->t.type, c->t.repo_id, *v);
            return then(*v);
          }
          if (auto last = access.last_visibility(c->t.type, c->t.repo_id)) return then(*last);
          c->reply(unavailable(c, u, std::string(to_string(c->t.type)) + " '" + c->t.repo_id + "'"));
        },
        access.last_visibility(type, repo).has_value(),
        [this, type, repo](const UpstreamReply& u) {
          if (auto v = visibility_of(u)) access.set_visibility(type, repo, *v);
        });
  }

  // What an anonymous repo-info answer says of the repo's visibility, if it says.
  static std::optional<Visibility> visibility_of(const UpstreamReply& u) {
    if (u.ok()) {
      auto j = json::parse(u.body, nullptr, false);
      const bool is_private =
          j.is_object() && j.contains("private") && j["private"].is_boolean() && j["private"].get<bool>();
      const bool gated = j.is_object() && j.contains("gated") &&
                         !(j["gated"].is_boolean() && !j["gated"].get<bool>()) && !j["gated"].is_null();
      return is_private ? Visibility::restricted : gated ? Visibility::gated : Visibility::open;
    }
    if (u.answered() && (u.status == 401 || u.status == 403 || u.status == 404))
      return Visibility::restricted;  // private, or missing: the Hub does not say which
    return std::nullopt;
  }

  // Does the upstream let `token` read this repo? A HEAD of the requested file (or
  // .gitattributes) at the requested revision: any answer but a refusal of the repo
  // (401, 403, 404 RepoNotFound) means yes.
  void check(const CallPtr& c, const std::string& token, std::function<void(const Decision&)> then) {
    if (auto d = access.decision(token, c->t.type, c->t.repo_id)) return then(*d);
    const std::string rev = c->t.revision.empty() ? "main" : c->t.revision;
    const std::string file = c->t.kind == Target::Kind::resolve ? c->t.path : ".gitattributes";
    const RepoType type = c->t.type;
    const std::string repo = c->t.repo_id;
    flights.run(
        "acc|" + AccessCache::token_key(token) + "|" + c->cache->folder_name(),
        [this, type, repo, rev, file, token] { return head_resolve(type, repo, rev, file, token, "access"); },
        [this, c, token, then](const UpstreamReply& u) {
          if (!u.answered() || u.upstream_error())
            return c->reply(unavailable(
                c, u, "access to " + std::string(to_string(c->t.type)) + " '" + c->t.repo_id + "' (it is not public)"));
          Decision d;
          const std::string code = header_or(u.headers, "X-Error-Code");
          d.allowed = u.status < 400 || (u.status == 404 && (code == "EntryNotFound" || code == "RevisionNotFound"));
          if (!d.allowed) {
            d.status = u.status;
            for (const char* h : {"X-Error-Code", "X-Error-Message", "WWW-Authenticate"})
              if (auto v = u.headers.get(h)) d.headers.emplace_back(h, *v);
            d.body = u.body.substr(0, 4096);
          }
          access.remember(token, c->t.type, c->t.repo_id, d);
          metrics.add("hubcache_access_checks_total", {{"result", d.allowed ? "allowed" : "denied"}});
          then(d);
        });
  }

  Reply refusal(const CallPtr& c, const Decision& d) const {
    Reply r;
    r.status = static_cast<int>(d.status);
    r.route = route_name(c->t.kind);
    r.headers = d.headers;
    r.headers.emplace_back("Cache-Control", "no-store");
    std::string message = "Access denied.";
    for (const auto& [k, v] : d.headers)
      if (k == "X-Error-Message") message = v;
    if (c->api()) {
      r.content_type = kJson;
      r.body = json_text(json{{"error", message}});
    } else {
      r.content_type = kText;
      r.body = message;
    }
    return r;
  }

  void with_access(const CallPtr& c, std::function<void()> next) {
    visibility(c, [this, c, next](Visibility v) {
      c->vis = v;
      if (v == Visibility::open) {
        if (!c->site_ok) return c->reply(site_refusal(c));
        c->up_token = opts.upstream_token;
        return next();
      }
      if (c->client_token) {
        const std::string token = *c->client_token;
        return check(c, token, [this, c, next, token](const Decision& d) {
          if (!d.allowed) return c->reply(refusal(c, d));
          c->up_token = token;
          next();
        });
      }
      if (opts.share_upstream_token && opts.upstream_token) {
        if (!c->site_ok) return c->reply(site_refusal(c));
        return check(c, *opts.upstream_token, [this, c, next](const Decision& d) {
          if (!d.allowed) return c->reply(hub_refusal(c));
          c->up_token = opts.upstream_token;
          next();
        });
      }
      c->reply(hub_refusal(c));
    });
  }

  // ---- revisions ------------------------------------------------------------------

  // The commit of the call's revision for the API routes: a branch or tag through the
  // upstream's revision endpoint at most every --revalidate seconds, else the last known.
  void with_commit(const CallPtr& c, std::function<void(const std::string&)> then) {
    const std::string rev = c->t.revision.empty() ? "main" : c->t.revision;
    auto known = revisions.lookup(*c->cache, rev);
    if (known && known->fresh) {
      metrics.add("hubcache_cache_hits_total", {{"kind", "revision"}});
      return then(known->commit);
    }
    metrics.add("hubcache_cache_misses_total", {{"kind", "revision"}});
    const std::string path = "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id +
                             "/revision/" + layout::quote(rev, "");
    const store::RepoCache cache = *c->cache;
    ask(
        "info|" + token_tag(c) + "|" + c->cache->folder_name() + "|" + rev + "|",
        [this, path, token = c->up_token] { return upstream.send("GET", path, token, "api"); },
        [this, c, rev, known, then](const UpstreamReply& u) {
          if (u.ok()) {
            const std::string body = strip_xet_json(u.body);
            if (auto sha = hub::parse_revision_commit(body)) {
              revisions.learned(*c->cache, rev, *sha);
              listings.put(info_key(c, *sha, ""), body);
              return then(*sha);
            }
            return c->reply(error_reply(
                c, 502, "",
                "The upstream " + upstream.base() + " answered the revision of " + c->what() + " without a commit."));
          }
          if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
          if (known) {
            stale(c, u, known->commit);
            return then(known->commit);
          }
          // Plain serve would answer "revision not found": a claim the cache cannot make.
          c->reply(unavailable(c, u, "revision '" + rev + "'"));
        },
        known.has_value(), [this, cache, rev](const UpstreamReply& u) { learn_revision(cache, rev, "", u); });
  }

  // A revision answer that came after the request was answered from the cache.
  void learn_revision(const store::RepoCache& cache, const std::string& rev, const std::string& query,
                      const UpstreamReply& u) {
    if (!u.ok()) return;
    std::string body = strip_xet_json(u.body);
    if (auto sha = hub::parse_revision_commit(body)) {
      revisions.learned(cache, rev, *sha);
      listings.put("info|" + cache.folder_name() + "|" + *sha + "|" + query, std::move(body));
    }
  }

  void stale(const CallPtr& c, const UpstreamReply& u, const std::string& commit) {
    if (c->stale.exchange(true)) return;
    metrics.add("hubcache_stale_answers_total", {});
    log("upstream " + upstream.base() + " unavailable (" +
        (u.answered()                                 ? "HTTP " + std::to_string(u.status)
         : u.outcome == UpstreamReply::Outcome::gated ? std::string("rate limited")
                                                      : u.detail) +
        "): serving " + c->what() + " at its last known commit " + commit);
  }

  // ---- resolve --------------------------------------------------------------------

  static bool is_metadata_answer(const UpstreamReply& u) {
    if (u.ok()) return true;
    if (!u.redirect()) return false;
    auto loc = u.headers.get("Location");
    return loc && !is_relative(*loc);  // an LFS file's redirect to its CDN
  }

  hub::Context hub_context(const CallPtr& c) const {
    hub::Context ctx;
    ctx.endpoint = upstream.base();
    ctx.type = c->t.type;
    ctx.repo_id = c->t.repo_id;
    ctx.revision = c->t.revision;
    ctx.file = c->t.path;
    return ctx;
  }

  std::optional<hub::FileMetadata> metadata(const CallPtr& c, const UpstreamReply& u) {
    const hub::Context ctx = hub_context(c);
    try {
      return hub::parse_file_metadata(u.headers, u.redirect(), ctx);
    } catch (const Error& e) {
      c->reply(error_reply(c, 502, "", e.what()));
      return std::nullopt;
    }
  }

  Reply entry_not_found(const CallPtr& c, const std::string& commit) const {
    Reply r = error_reply(c, 404, "EntryNotFound", "Entry not found");
    r.headers.emplace_back("X-Repo-Commit", commit);
    for (auto& [k, v] : r.headers)
      if (k == "Cache-Control") v = cache_control_for(c, false);
    return r;
  }

  void on_resolve(const CallPtr& c) {
    const std::string& rev = c->t.revision;
    const std::string& file = c->t.path;
    auto known = revisions.lookup(*c->cache, rev);
    if (known && known->fresh) {
      if (!layout::is_commit_hash(rev)) metrics.add("hubcache_cache_hits_total", {{"kind", "revision"}});
      return at_commit(c, known->commit);
    }
    metrics.add("hubcache_cache_misses_total", {{"kind", "revision"}});
    head(
        c, rev, file,
        [this, c, known, rev, file](const UpstreamReply& u) {
          if (is_metadata_answer(u)) {
            auto meta = metadata(c, u);
            if (!meta) return;
            revisions.learned(*c->cache, rev, meta->commit);
            revisions.remember(*c->cache, meta->commit, file, FileFacts{meta->etag, meta->size});
            return at_commit(c, meta->commit);
          }
          if (u.answered() && u.status == 404 && header_or(u.headers, "X-Error-Code") == "EntryNotFound") {
            const std::string commit = header_or(u.headers, "X-Repo-Commit");
            if (layout::is_commit_hash(commit)) {
              revisions.learned(*c->cache, rev, commit);
              revisions.missing(*c->cache, commit, file);
              return c->reply(entry_not_found(c, commit));
            }
            return c->reply(replay(c, u));
          }
          if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
          if (known) {
            stale(c, u, known->commit);
            return at_commit(c, known->commit);
          }
          c->reply(unavailable(c, u, "'" + file + "' at '" + rev + "'"));
        },
        known.has_value(),
        [this, cache = *c->cache, ctx = hub_context(c), rev, file](const UpstreamReply& u) {
          // What a late answer says is kept: the branch's commit, the file's facts or absence.
          if (is_metadata_answer(u)) {
            try {
              const auto meta = hub::parse_file_metadata(u.headers, u.redirect(), ctx);
              revisions.learned(cache, rev, meta.commit);
              revisions.remember(cache, meta.commit, file, FileFacts{meta.etag, meta.size});
            } catch (const Error&) {
            }
          } else if (u.answered() && u.status == 404 && header_or(u.headers, "X-Error-Code") == "EntryNotFound") {
            const std::string commit = header_or(u.headers, "X-Repo-Commit");
            if (layout::is_commit_hash(commit)) {
              revisions.learned(cache, rev, commit);
              revisions.missing(cache, commit, file);
            }
          }
        });
  }

  void at_commit(const CallPtr& c, const std::string& commit) {
    const std::string& file = c->t.path;
    if (revisions.known_missing(*c->cache, commit, file)) return c->reply(entry_not_found(c, commit));
    if (auto facts = revisions.facts(*c->cache, commit, file)) return serve_file(c, commit, *facts);
    // A real file in the snapshot (a cache written without symlinks): plain serve
    // knows how to name it.
    if (util::is_regular_file(c->cache->pointer_path(commit, file))) return c->reply(from_cache(c));
    head(c, commit, file, [this, c, commit, file](const UpstreamReply& u) {
      if (is_metadata_answer(u)) {
        auto meta = metadata(c, u);
        if (!meta) return;
        const FileFacts facts{meta->etag, meta->size};
        revisions.remember(*c->cache, commit, file, facts);
        return serve_file(c, commit, facts);
      }
      if (u.answered() && u.status == 404 && header_or(u.headers, "X-Error-Code") == "EntryNotFound") {
        revisions.missing(*c->cache, commit, file);
        return c->reply(entry_not_found(c, commit));
      }
      if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
      c->reply(unavailable(c, u, "'" + file + "' at commit " + commit));
    });
  }

  FillJob fill_job(const CallPtr& c, const std::string& commit, const std::string& file, const FileFacts& facts,
                   const std::optional<std::string>& token) const {
    FillJob job;
    job.root = opts.cache_dir;
    job.type = c->t.type;
    job.repo_id = c->t.repo_id;
    job.commit = commit;
    job.file = file;
    job.meta.commit = commit;
    job.meta.etag = facts.etag;
    job.meta.size = facts.size;
    // The engine follows the upstream's redirect (to its CDN) itself, so a signed CDN
    // URL is never kept beyond one download.
    job.meta.location = layout::resolve_url(upstream.base(), c->t.type, c->t.repo_id, commit, file);
    job.token = token;
    return job;
  }

  // Makes snapshots/<commit>/<file> point to the blob, off the request's thread (the
  // blob's lock may be held a moment by another process).
  void link_later(const CallPtr& c, const std::string& commit, const std::string& file, const std::string& etag) {
    store::RepoCache cache = *c->cache;
    pool.post([cache, commit, file, etag] {
      try {
        const fs::path pointer = cache.pointer_path(commit, file);
        if (util::is_regular_file(pointer)) return;
        store::FileLock lock(cache.lock_path(etag));
        if (!util::is_regular_file(pointer) && util::is_regular_file(cache.blob_path(etag)))
          cache.link_pointer(cache.blob_path(etag), pointer, false);
      } catch (const std::exception&) {
        // Best effort: the next request tries again.
      }
    });
  }

  void serve_file(const CallPtr& c, const std::string& commit, const FileFacts& facts) {
    const std::string& file = c->t.path;
    const bool pinned = layout::is_commit_hash(c->t.revision);
    Reply r;
    r.route = "resolve";
    r.headers.emplace_back("X-Repo-Commit", commit);
    r.headers.emplace_back("Accept-Ranges", "bytes");
    r.headers.emplace_back("Cache-Control", cache_control_for(c, pinned));
    const fs::path blob = c->cache->blob_path(facts.etag);
    if (facts.lfs()) {
      const std::string location = cdn_url(c, commit, file, facts.etag);
      r.status = 302;
      r.headers.emplace_back("Location", location);
      r.headers.emplace_back("X-Linked-Etag", "\"" + facts.etag + "\"");
      r.headers.emplace_back("X-Linked-Size", std::to_string(facts.size));
      r.content_type = kText;
      r.body = "Found. Redirecting to " + location;
      // The CDN request carries no token: for a repo that needs one and a mirror
      // without its own, the fill starts here, with the token just checked.
      if (util::is_regular_file(blob)) {
        // The blob came with another commit: this commit's snapshot names it too, as a
        // download would, or ls, prune and offline readers would not see the file here.
        // (The CDN request cannot do it: its repo, commit and file are the client's words.)
        link_later(c, commit, file, facts.etag);
      } else if (c->vis != Visibility::open && !opts.upstream_token) {
        fills->start(fill_job(c, commit, file, facts, c->up_token));
      }
      return c->reply(std::move(r));
    }
    const std::string name = file.substr(file.rfind('/') + 1);
    r.headers.emplace_back("ETag", "\"" + facts.etag + "\"");
    r.headers.emplace_back("Content-Disposition",
                           "inline; filename*=UTF-8''" + layout::quote(name, "") + "; filename=\"" + name + "\";");
    r.content_type = kText;
    if (c->req.if_none_match == "\"" + facts.etag + "\"" || c->req.if_none_match == facts.etag) {
      r.status = 304;
      return c->reply(std::move(r));
    }
    serve_bytes(c, std::move(r), commit, file, facts);
  }

  // The bytes of a file: from the cache, or from a fill (started or joined).
  void serve_bytes(const CallPtr& c, Reply r, const std::string& commit, const std::string& file,
                   const FileFacts& facts) {
    const fs::path blob = c->cache->blob_path(facts.etag);
    std::optional<FileBody> body;
    if (auto pointer = c->cache->pointer_path(commit, file); util::is_regular_file(pointer)) body = open_file(pointer);
    if (!body && util::is_regular_file(blob)) {
      body = open_file(blob);
      link_later(c, commit, file, facts.etag);
    }
    if (body && body->size == facts.size) {
      if (c->req.method == "GET") metrics.add("hubcache_cache_hits_total", {{"kind", "file"}});
      r.status = 200;
      r.file = std::move(body);
      return c->reply(std::move(r));
    }
    if (c->req.method == "HEAD") {
      r.status = 200;
      r.head_length = facts.size;
      return c->reply(std::move(r));
    }
    metrics.add("hubcache_cache_misses_total", {{"kind", "file"}});
    if (upstream_is_down(c, blob, "'" + file + "' at commit " + commit)) return;
    auto fill = fills->start(fill_job(c, commit, file, facts, c->up_token));
    stream(c, std::move(r), fill);
  }

  // A new transfer while the upstream gave no answer moments ago fails at once, clearly.
  bool upstream_is_down(const CallPtr& c, const fs::path& blob, const std::string& what) {
    if (fills->busy(blob)) return false;
    auto why = upstream.down_recently(kDownWindow);
    if (!why) return false;
    UpstreamReply u;
    u.outcome = UpstreamReply::Outcome::unreachable;
    u.detail = *why;
    c->reply(unavailable(c, u, what));
    return true;
  }
  static constexpr std::chrono::seconds kDownWindow{5};

  void stream(const CallPtr& c, Reply r, const std::shared_ptr<Fill>& fill) {
    auto shared = std::make_shared<Reply>(std::move(r));
    const FillJob& job = fill->job();
    const store::RepoCache cache(job.root, job.repo_id, job.type);
    // Without symlinks the blob moves on to the snapshot: either path has the bytes.
    const fs::path blob = cache.blob_path(job.meta.etag), pointer = cache.pointer_path(job.commit, job.file);
    fill->wait([this, c, shared, blob, pointer](const Fill::Outcome& o) {
      Reply reply = std::move(*shared);
      if (o.attempt) {
        reply.status = 200;
        reply.growing = o.attempt;
        return c->reply(std::move(reply));
      }
      if (o.in_cache) {
        auto body = open_file(blob);
        if (!body) body = open_file(pointer);
        if (body) {
          reply.status = 200;
          reply.file = std::move(body);
          return c->reply(std::move(reply));
        }
      }
      if (o.upstream_down) upstream.mark_down(o.error.find("timed out") != std::string::npos);
      const std::string message = "Fetching " + c->what() + " from the upstream " + upstream.base() +
                                  " failed: " + (o.error.empty() ? "the file vanished" : o.error);
      log(message);
      c->reply(error_reply(c, o.upstream_down ? 502 : 500, "", message));
    });
  }

  // ---- the CDN listener -------------------------------------------------------------

  void on_blob(const CallPtr& c) {
    const std::string& sha = c->t.sha256;
    const std::string commit = c->t.revision;
    if (!layout::is_commit_hash(commit)) return c->reply(error_reply(c, 404, "", "Not found"));
    const std::string given = c->t.param("sig");
    if (!given.empty()) {
      const std::string expected = signature(signed_text(sha, c->t.type, c->t.repo_id, commit, c->t.path));
      if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), given.size()) != 0)
        return c->reply(error_reply(c, 403, "", "Forbidden: this download URL is not signed by this server."));
      // Signed: the client passed the access checks when the URL was made.
      c->vis = access.last_visibility(c->t.type, c->t.repo_id).value_or(Visibility::restricted);
      c->up_token = opts.upstream_token;
      return blob_bytes(c);
    }
    if (opts.site_token) return c->reply(error_reply(c, 403, "", "Forbidden: this download URL is not signed."));
    visibility(c, [this, c](Visibility v) {
      c->vis = v;
      if (v != Visibility::open)
        return c->reply(error_reply(c, 403, "", "Forbidden: this download URL is not signed."));
      c->up_token = opts.upstream_token;
      blob_bytes(c);
    });
  }

  void blob_bytes(const CallPtr& c) {
    const std::string& sha = c->t.sha256;
    const std::string commit = c->t.revision;
    const std::string file = c->t.path;
    Reply r;
    r.route = "cdn";
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("ETag", "\"" + sha + "\"");
    r.headers.emplace_back("Accept-Ranges", "bytes");
    // Content-addressed: these bytes never change.
    r.headers.emplace_back("Cache-Control", c->vis == Visibility::open ? "public, max-age=31536000, immutable"
                                                                       : "private, max-age=31536000, immutable");
    if (c->req.if_none_match == "\"" + sha + "\"") {
      r.status = 304;
      return c->reply(std::move(r));
    }
    const fs::path blob = c->cache->blob_path(sha);
    if (auto body = util::is_regular_file(blob) ? open_file(blob) : std::nullopt) {
      if (c->req.method == "GET") metrics.add("hubcache_cache_hits_total", {{"kind", "file"}});
      r.file = std::move(body);
      return c->reply(std::move(r));
    }
    // A fill started by the resolve request (a repo that needs the client's token).
    auto with_facts = [this, c, r = std::move(r), sha, commit, file](const FileFacts& facts) mutable {
      if (facts.etag != sha) return c->reply(error_reply(c, 404, "", "Not found"));
      if (c->req.method == "HEAD") {
        r.head_length = facts.size;
        return c->reply(std::move(r));
      }
      metrics.add("hubcache_cache_misses_total", {{"kind", "file"}});
      if (upstream_is_down(c, c->cache->blob_path(sha), "'" + file + "' at commit " + commit)) return;
      if (c->vis != Visibility::open && !c->up_token) {
        // No token to fetch with: only a fill the resolve request started can serve it.
        if (!fills->busy(c->cache->blob_path(sha)))
          return c->reply(error_reply(c, 404, "", "Not in this mirror's cache any more: ask the resolve URL again."));
      }
      auto fill = fills->start(fill_job(c, commit, file, facts, c->up_token));
      stream(c, std::move(r), fill);
    };
    if (auto facts = revisions.facts(*c->cache, commit, file)) return with_facts(*facts);
    if (c->vis != Visibility::open && !c->up_token)
      return c->reply(error_reply(c, 404, "", "Not in this mirror's cache any more: ask the resolve URL again."));
    head(c, commit, file, [this, c, with_facts, commit, file](const UpstreamReply& u) mutable {
      if (is_metadata_answer(u)) {
        auto meta = metadata(c, u);
        if (!meta) return;
        const FileFacts facts{meta->etag, meta->size};
        revisions.remember(*c->cache, commit, file, facts);
        return with_facts(facts);
      }
      if (u.answered() && !u.upstream_error()) return c->reply(error_reply(c, 404, "", "Not found"));
      c->reply(unavailable(c, u, "'" + file + "' at commit " + commit));
    });
  }

  // A CDN URL without a repo (one plain `hubcache serve` made): any cached blob of that name.
  void legacy_blob(const CallPtr& c) {
    if (opts.site_token) return c->reply(error_reply(c, 403, "", "Forbidden: this download URL is not signed."));
    std::error_code ec;
    for (auto& e : fs::directory_iterator(opts.cache_dir, ec)) {
      auto name = layout::parse_repo_folder_name(e.path().filename().string());
      if (!name) continue;
      if (access.last_visibility(name->first, name->second).value_or(Visibility::restricted) != Visibility::open)
        continue;
      const fs::path blob = e.path() / "blobs" / c->t.sha256;
      if (!util::is_regular_file(blob)) continue;
      if (auto body = open_file(blob)) {
        Reply r;
        r.route = "cdn";
        r.content_type = "application/octet-stream";
        r.headers.emplace_back("ETag", "\"" + c->t.sha256 + "\"");
        r.headers.emplace_back("Accept-Ranges", "bytes");
        r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
        r.file = std::move(body);
        return c->reply(std::move(r));
      }
    }
    c->reply(error_reply(c, 404, "", "Not found"));
  }

  // ---- listings -------------------------------------------------------------------

  std::string info_key(const CallPtr& c, const std::string& commit, const std::string& query) const {
    return "info|" + c->cache->folder_name() + "|" + commit + "|" + query;
  }

  static std::string normalized_query(const Target& t) {
    std::string out;
    for (const auto& [k, values] : t.params)
      for (const auto& v : values) out += k + "=" + v + "&";
    return out;
  }

  void on_info(const CallPtr& c) {
    const std::string rev = c->t.revision;  // "" = the default branch
    const std::string query = normalized_query(c->t);
    const bool pinned = layout::is_commit_hash(rev);
    auto known = revisions.lookup(*c->cache, rev.empty() ? "" : rev);
    if (known && known->fresh)
      if (auto hit = listings.get(info_key(c, known->commit, query))) {
        metrics.add("hubcache_cache_hits_total", {{"kind", "listing"}});
        return c->reply(json_reply(c, *hit, pinned));
      }
    metrics.add("hubcache_cache_misses_total", {{"kind", "listing"}});
    std::string path = "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id;
    if (!rev.empty()) path += "/revision/" + layout::quote(rev, "");
    if (!c->t.query.empty()) path += "?" + c->t.query;
    const store::RepoCache cache = *c->cache;
    ask(
        "info|" + token_tag(c) + "|" + c->cache->folder_name() + "|" + rev + "|" + query,
        [this, path, token = c->up_token] { return upstream.send("GET", path, token, "api"); },
        [this, c, rev, query, known, pinned](const UpstreamReply& u) {
          if (u.ok()) {
            std::string body = strip_xet_json(u.body);
            if (auto sha = hub::parse_revision_commit(body)) {
              revisions.learned(*c->cache, rev, *sha);
              listings.put(info_key(c, *sha, query), body);
            }
            return c->reply(json_reply(c, std::move(body), pinned));
          }
          if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
          if (known)
            if (auto hit = listings.get(info_key(c, known->commit, query))) {
              stale(c, u, known->commit);
              return c->reply(json_reply(c, *hit, pinned));
            }
          stale_info(c, u);
        },
        // The cache can answer when it kept this answer, or holds the commit's complete
        // listing (stale_info builds the answer from it; a restarted mirror has only that).
        known && (listings.get(info_key(c, known->commit, query)) != nullptr ||
                  listings.get(tree_key(c, known->commit, "", "r")) != nullptr ||
                  util::is_regular_file(c->cache->repo_dir() / "trees" / (known->commit + ".json"))),
        [this, cache, rev, query](const UpstreamReply& u) { learn_revision(cache, rev, query, u); });
  }

  void remember_entries(const CallPtr& c, const std::string& commit, const json& entries) {
    for (const auto& e : entries) {
      if (!e.is_object() || e.value("type", "") != "file" || !e.contains("path") || !e["path"].is_string()) continue;
      FileFacts f;
      if (e.contains("lfs") && e["lfs"].is_object() && e["lfs"].contains("oid") && e["lfs"]["oid"].is_string())
        f.etag = e["lfs"]["oid"].get<std::string>();
      else if (e.contains("oid") && e["oid"].is_string())
        f.etag = e["oid"].get<std::string>();
      if (!e.contains("size") || !e["size"].is_number_unsigned() || f.etag.empty()) continue;
      f.size = e["size"].get<std::uint64_t>();
      revisions.remember(*c->cache, commit, e["path"].get<std::string>(), f);
    }
  }

  // ---- answers while the upstream cannot be asked ---------------------------------
  //
  // A snapshot in the cache holds the files someone fetched, not every file of its
  // commit: listing it as the commit would tell clients that the rest does not exist
  // (and Python's snapshot_download would keep that partial listing in its
  // trees/<commit>.json for good). So a listing is answered without the upstream only
  // from one known to be complete: the recursive listing kept in memory, else the
  // cache's trees/<commit>.json (written only whole, by the mirror or by a client).

  std::optional<std::vector<hub::TreeFile>> complete_listing(const CallPtr& c, const std::string& commit) {
    for (const char* flags : {"r", "re"})
      if (auto kept = listings.get(tree_key(c, commit, "", flags))) {
        try {
          return hub::parse_tree_page(*kept);
        } catch (const std::exception&) {
        }
      }
    try {
      return store::read_tree_cache(*c->cache, commit);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  static std::string tree_key(const CallPtr& c, const std::string& commit, const std::string& base,
                              const std::string& flags) {
    return "tree|" + c->cache->folder_name() + "|" + commit + "|" + base + "|" + flags;
  }

  // A file's entry as the Hub's tree and paths-info list it (never its Xet hash: the
  // mirror serves plain HTTP).
  static json file_entry(const hub::TreeFile& f) {
    json e = {{"type", "file"}, {"oid", f.blob_id}, {"size", f.size}};
    if (!f.lfs_sha256.empty()) {
      const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + f.lfs_sha256 + "\nsize " +
                                  std::to_string(f.lfs_size) + "\n";
      e["lfs"] = {{"oid", f.lfs_sha256}, {"size", f.lfs_size}, {"pointerSize", pointer.size()}};
    }
    e["path"] = f.path;
    return e;
  }
  // What the mirror knows of one file (its blob name and size) as a tree entry.
  static hub::TreeFile tree_file(const std::string& path, const FileFacts& facts) {
    hub::TreeFile f;
    f.path = path;
    f.size = facts.size;
    if (facts.lfs()) {
      f.lfs_sha256 = facts.etag;
      f.lfs_size = facts.size;
      f.blob_id = util::git_blob_sha1_hex("version https://git-lfs.github.com/spec/v1\noid sha256:" + facts.etag +
                                          "\nsize " + std::to_string(facts.size) + "\n");
    } else {
      f.blob_id = facts.etag;
    }
    return f;
  }
  // A folder's entry. Its git tree id is not in a file listing: a stable stand-in,
  // the one plain `hubcache serve` gives (clients do not look folders up by id).
  static json folder_entry(const std::string& commit, const std::string& path) {
    return {{"type", "directory"},
            {"oid", util::git_blob_sha1_hex("tree " + commit + " " + path)},
            {"size", 0},
            {"path", path}};
  }

  // Every entry (folders first, then files, each sorted) of a complete file list.
  static std::map<std::string, json> entries_of(const std::string& commit, const std::vector<hub::TreeFile>& files) {
    std::map<std::string, json> out;
    for (const auto& f : files) {
      for (auto slash = f.path.find('/'); slash != std::string::npos; slash = f.path.find('/', slash + 1)) {
        const std::string d = f.path.substr(0, slash);
        if (!out.count(d)) out.emplace(d, folder_entry(commit, d));
      }
      out[f.path] = file_entry(f);
    }
    return out;
  }

  // Nothing the cache holds answers this listing: 502 (504 when the upstream timed out).
  void listing_unavailable(const CallPtr& c, const UpstreamReply& u, const std::string& commit) {
    c->reply(unavailable(c, u, "the complete listing of " + c->what() + " (commit " + commit + ")"));
  }

  // The tree listing of `commit` without the upstream, from a complete listing.
  void stale_tree(const CallPtr& c, const UpstreamReply& u, const std::string& commit, const std::string& base,
                  bool recursive, bool expand) {
    auto files = expand ? std::nullopt : complete_listing(c, commit);  // expand needs each file's last commit
    if (!files) return listing_unavailable(c, u, commit);
    const auto all = entries_of(commit, *files);
    const std::string prefix = base.empty() ? "" : base + "/";
    if (!base.empty()) {
      try {
        layout::validate_filename(base);
      } catch (const Error&) {
        return c->reply(error_reply(c, 404, "EntryNotFound", "'" + base + "' is not a path in a repo"));
      }
      auto it = all.find(base);
      if (it != all.end() && it->second["type"] == "file")
        return c->reply(error_reply(c, 404, "EntryNotFound", base + " is a file, not a folder"));
      if (it == all.end()) return c->reply(error_reply(c, 404, "EntryNotFound", base + " does not exist"));
    }
    json dirs = json::array(), plain = json::array();
    for (const auto& [path, e] : all) {
      if (path.compare(0, prefix.size(), prefix) != 0 || path.size() == prefix.size()) continue;
      if (!recursive && path.find('/', prefix.size()) != std::string::npos) continue;
      (e["type"] == "directory" ? dirs : plain).push_back(e);
    }
    for (auto& e : plain) dirs.push_back(std::move(e));
    stale(c, u, commit);
    page(c, json_text(dirs));
  }

  // The paths a paths-info request asks for (JSON or form body), and its expand flag.
  static std::pair<std::vector<std::string>, bool> requested_paths(const Request& req) {
    auto [paths, expand] = hub::parse_paths_info(req.body);
    for (auto& p : paths)
      while (!p.empty() && p.back() == '/') p.pop_back();
    return {paths, expand};
  }

  // paths-info at `commit` without the upstream: from a complete listing, else path by
  // path from what the cache knows (a file present, or marked missing in .no_exist).
  void stale_paths_info(const CallPtr& c, const UpstreamReply& u, const std::string& commit) {
    const auto [paths, expand] = requested_paths(c->req);
    if (expand) return listing_unavailable(c, u, commit);  // needs each file's last commit
    json out = json::array();
    if (auto files = complete_listing(c, commit)) {
      const auto all = entries_of(commit, *files);
      for (const auto& p : paths)
        if (auto it = all.find(p); it != all.end()) out.push_back(it->second);
    } else {
      for (const auto& p : paths) {
        // A name no repo can hold (`..`, a backslash, empty) is in no listing: the Hub
        // leaves it out of its answer, and so does this one.
        try {
          layout::validate_filename(p);
        } catch (const Error&) {
          continue;
        }
        if (auto facts = revisions.facts(*c->cache, commit, p)) {
          out.push_back(file_entry(tree_file(p, *facts)));
          continue;
        }
        // Whatever its age: a commit's files never change.
        if (util::is_regular_file(c->cache->no_exist_path(commit, p))) continue;
        return c->reply(unavailable(c, u, "whether '" + p + "' exists at commit " + commit));
      }
    }
    stale(c, u, commit);
    c->reply(json_reply(c, json_text(out), layout::is_commit_hash(c->t.revision)));
  }

  // Repo info without the upstream. Its file list (siblings) only from a complete
  // listing; without siblings asked for, plain serve's answer from the cache is right.
  void stale_info(const CallPtr& c, const UpstreamReply& u) {
    const std::string rev = c->t.revision.empty() ? "main" : c->t.revision;
    std::vector<std::string> expand;
    for (const char* k : {"expand", "expand[]"})
      if (auto it = c->t.params.find(k); it != c->t.params.end())
        expand.insert(expand.end(), it->second.begin(), it->second.end());
    auto known = revisions.lookup(*c->cache, rev);
    if (!known) return c->reply(unavailable(c, u, c->what()));
    if (!expand.empty() && std::find(expand.begin(), expand.end(), "siblings") == expand.end())
      return c->reply(from_cache(c));
    auto files = complete_listing(c, known->commit);
    if (!files) return listing_unavailable(c, u, known->commit);
    const bool blobs = c->t.flag("blobs");
    json siblings = json::array();
    for (const auto& f : *files) {
      json s = {{"rfilename", f.path}};
      if (blobs) {
        s["size"] = f.size;
        s["blobId"] = f.blob_id;
        if (!f.lfs_sha256.empty())
          s["lfs"] = {
              {"sha256", f.lfs_sha256}, {"size", f.lfs_size}, {"pointerSize", file_entry(f)["lfs"]["pointerSize"]}};
      }
      siblings.push_back(std::move(s));
    }
    // Only what the mirror knows for sure; Hub clients take the other fields as optional.
    json out = {{"id", c->t.repo_id}};
    if (c->t.type == RepoType::model) out["modelId"] = c->t.repo_id;
    out["sha"] = known->commit;
    out["private"] = c->vis == Visibility::restricted;
    out["gated"] = c->vis == Visibility::gated ? json("auto") : json(false);
    out["siblings"] = std::move(siblings);
    if (!expand.empty()) {
      json some = {{"id", c->t.repo_id}};
      for (const auto& k : expand)
        if (out.contains(k)) some[k] = out[k];
      out = std::move(some);
    }
    stale(c, u, known->commit);
    c->reply(json_reply(c, json_text(out), layout::is_commit_hash(c->t.revision)));
  }

  void on_tree(const CallPtr& c) {
    with_commit(c, [this, c](const std::string& commit) {
      const bool recursive = c->t.flag("recursive"), expand = c->t.flag("expand");
      std::string base = c->t.path;
      while (!base.empty() && base.back() == '/') base.pop_back();
      const std::string key = tree_key(c, commit, base, std::string(recursive ? "r" : "") + (expand ? "e" : ""));
      if (auto hit = listings.get(key)) {
        metrics.add("hubcache_cache_hits_total", {{"kind", "listing"}});
        return page(c, *hit);
      }
      metrics.add("hubcache_cache_misses_total", {{"kind", "listing"}});
      std::string path = "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id + "/tree/" +
                         commit + (base.empty() ? "" : "/" + layout::quote(base, "/")) +
                         "?recursive=" + (recursive ? "true" : "false") + "&expand=" + (expand ? "true" : "false");
      // After a restart, a commit's complete listing is on disk only (trees/<commit>.json):
      // the cache can answer, so a silent upstream is waited for only briefly.
      const bool listed = !expand && util::is_regular_file(c->cache->repo_dir() / "trees" / (commit + ".json"));
      ask(
          key + "|" + token_tag(c),
          [this, path, token = c->up_token] { return upstream.get_all_pages(path, token, "api"); },
          [this, c, key, commit, recursive, expand, base](const UpstreamReply& u) {
            if (u.ok()) {
              std::string body = strip_xet_json(u.body);
              auto entries = json::parse(body, nullptr, false);
              if (entries.is_discarded() || !entries.is_array())
                return c->reply(
                    error_reply(c, 502, "", "The upstream's tree listing of " + c->what() + " is not a JSON array."));
              remember_entries(c, commit, entries);
              // A listing cut at get_all_pages' limits is served, never kept: a kept
              // listing is taken for the whole commit when the upstream is down.
              if (u.truncated) return page(c, body);
              listings.put(key, body);
              if (recursive && !expand && base.empty()) {
                try {
                  store::write_tree_cache(*c->cache, commit, hub::parse_tree_page(body));
                } catch (const std::exception&) {
                }
              }
              return page(c, body);
            }
            if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
            stale_tree(c, u, commit, base, recursive, expand);
          },
          listed);
    });
  }

  // One page of a whole listing: `limit` entries (1000, 50 with expand) from `cursor`
  // (an offset), and an absolute Link to the next page.
  void page(const CallPtr& c, const std::string& all_text) {
    auto all = json::parse(all_text, nullptr, false);
    if (!all.is_array()) all = json::array();
    const bool expand = c->t.flag("expand");
    std::size_t limit = expand ? 50 : 1000, cursor = 0;
    try {
      if (!c->t.param("limit").empty()) limit = std::max<std::size_t>(1, std::stoul(c->t.param("limit")));
      if (!c->t.param("cursor").empty()) cursor = std::stoul(c->t.param("cursor"));
    } catch (const std::exception&) {
    }
    json out = json::array();
    for (std::size_t i = cursor; i < all.size() && i < cursor + limit; ++i) out.push_back(all[i]);
    Reply r = json_reply(c, json_text(out), layout::is_commit_hash(c->t.revision));
    if (cursor + limit < all.size()) {
      const std::string path = c->req.target.substr(0, c->req.target.find('?'));
      const std::string host = c->req.host.empty() ? "127.0.0.1" : c->req.host;
      r.headers.emplace_back("Link", "<http://" + host + path +
                                         "?recursive=" + (c->t.flag("recursive") ? "true" : "false") +
                                         "&expand=" + (expand ? "true" : "false") + "&limit=" + std::to_string(limit) +
                                         "&cursor=" + std::to_string(cursor + limit) + ">; rel=\"next\"");
    }
    c->reply(std::move(r));
  }

  void on_paths_info(const CallPtr& c) {
    with_commit(c, [this, c](const std::string& commit) {
      const std::string key =
          "paths|" + c->cache->folder_name() + "|" + commit + "|" + c->req.content_type + "|" + c->req.body;
      const bool pinned = layout::is_commit_hash(c->t.revision);
      if (auto hit = listings.get(key)) {
        metrics.add("hubcache_cache_hits_total", {{"kind", "listing"}});
        return c->reply(json_reply(c, *hit, pinned));
      }
      metrics.add("hubcache_cache_misses_total", {{"kind", "listing"}});
      const std::string path =
          "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id + "/paths-info/" + commit;
      const std::string content_type = c->req.content_type.empty() ? "application/json" : c->req.content_type;
      flights.run(
          key + "|" + token_tag(c),
          [this, path, body = c->req.body, content_type, token = c->up_token] {
            return upstream.send("POST", path, token, "api", body, content_type);
          },
          [this, c, key, commit, pinned](const UpstreamReply& u) {
            if (u.ok()) {
              std::string body = strip_xet_json(u.body);
              auto entries = json::parse(body, nullptr, false);
              if (entries.is_array()) {
                listings.put(key, body);
                remember_entries(c, commit, entries);
              }
              return c->reply(json_reply(c, std::move(body), pinned));
            }
            if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
            stale_paths_info(c, u, commit);
          });
    });
  }

  void on_refs(const CallPtr& c) {
    const std::string key = c->cache->folder_name() + "|" + c->t.query;
    std::optional<std::string> last;
    {
      std::lock_guard lock(refs_mutex);
      if (auto it = refs_answers.find(key); it != refs_answers.end()) {
        if (Clock::now() - it->second.first < opts.revalidate) {
          metrics.add("hubcache_cache_hits_total", {{"kind", "listing"}});
          return c->reply(json_reply(c, it->second.second, false));
        }
        last = it->second.second;
      }
    }
    metrics.add("hubcache_cache_misses_total", {{"kind", "listing"}});
    std::string path = "/api/" + std::string(layout::api_collection(c->t.type)) + "/" + c->t.repo_id + "/refs";
    if (!c->t.query.empty()) path += "?" + c->t.query;
    flights.run(
        "refs|" + token_tag(c) + "|" + key,
        [this, path, token = c->up_token] { return upstream.send("GET", path, token, "api"); },
        [this, c, key, last](const UpstreamReply& u) {
          if (u.ok()) {
            auto j = json::parse(u.body, nullptr, false);
            if (j.is_object()) {
              for (const char* group : {"branches", "tags"})
                if (j.contains(group) && j[group].is_array())
                  for (const auto& b : j[group])
                    if (b.is_object() && b.contains("name") && b["name"].is_string() && b.contains("targetCommit") &&
                        b["targetCommit"].is_string())
                      revisions.learned(*c->cache, b["name"].get<std::string>(), b["targetCommit"].get<std::string>());
            }
            std::string body = strip_xet_json(u.body);
            {
              std::lock_guard lock(refs_mutex);
              if (refs_answers.size() > 10000) refs_answers.clear();
              refs_answers[key] = {Clock::now(), body};
            }
            return c->reply(json_reply(c, std::move(body), false));
          }
          if (u.answered() && !u.upstream_error()) return c->reply(replay(c, u));
          if (last) return c->reply(json_reply(c, *last, false));
          c->reply(from_cache(c));
        });
  }
};

Mirror::Mirror(MirrorOptions options) {
  std::string up = options.upstream;
  if (up.rfind("http://", 0) != 0 && up.rfind("https://", 0) != 0)
    throw Error(ErrorCode::invalid_argument,
                "--upstream '" + up + "' is not an http:// or https:// URL (e.g. https://huggingface.co).");
  std::error_code ec;
  auto root = fs::canonical(options.cache_dir, ec);
  if (ec) throw Error(ErrorCode::io, "Cannot use the cache '" + options.cache_dir.string() + "': " + ec.message());
  options.cache_dir = root;  // paths compared with the scanner's (--max-size) must agree
  impl_ = std::make_unique<Impl>(std::move(options));
}

Mirror::~Mirror() { stop(); }

void Mirror::set_cdn_port(int port) { impl_->cdn_port = port; }

void Mirror::handle(const Request& request, std::function<void(Reply)> done) {
  auto c = std::make_shared<Call>();
  c->req = request;
  c->done = std::move(done);
  try {
    impl_->start(c);
  } catch (const std::exception& e) {
    c->reply(error_reply(c, 500, "", std::string("Internal error in the mirror: ") + e.what()));
  }
}

void Mirror::record(const std::string& route, int status, std::uint64_t bytes, double seconds) {
  auto& m = impl_->metrics;
  m.add("hubcache_http_requests_total", {{"route", route}, {"status", std::to_string(status)}});
  m.add("hubcache_http_response_bytes_total", {{"route", route}}, static_cast<double>(bytes));
  m.observe("hubcache_http_request_duration_seconds", {{"route", route}}, seconds);
}

std::string Mirror::render_metrics() const { return impl_->metrics.render(); }

Metrics& Mirror::metrics() { return impl_->metrics; }

void Mirror::stop() {
  if (!impl_) return;
  impl_->fills->stop();
  impl_->timer.stop();  // calls waiting on it are answered by their upstream answer
  impl_->pool.stop();
}

}  // namespace hubcache::mirror
