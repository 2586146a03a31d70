#include "support/fault_server.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "layout/naming.hpp"
#include "util/hash.hpp"

namespace hubcache::test {

namespace {
struct File {
  std::shared_ptr<const std::string> content;  // shared by every response: large files are never copied
  bool lfs;
  std::string etag;  // sha256 for LFS, git sha1 otherwise
};
struct Repo {
  std::string commit;
  std::map<std::string, File> files;
  bool gated = false;
  bool is_private = false;
  std::set<std::string> granted;  // tokens that may read a gated or private repo
};

// A shared budget of bytes per second for every connection of a listener.
class TotalBandwidth {
 public:
  // Blocks until `n` bytes may go out at `bps` bytes per second overall.
  void take(std::size_t n, std::int64_t bps) {
    using Clock = std::chrono::steady_clock;
    Clock::time_point when;
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      if (next_ < now - std::chrono::milliseconds(100)) next_ = now - std::chrono::milliseconds(100);
      when = next_;
      next_ += std::chrono::nanoseconds(static_cast<std::int64_t>(n) * 1'000'000'000 / std::max<std::int64_t>(1, bps));
    }
    std::this_thread::sleep_until(when);
  }

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point next_{};
};
}  // namespace

struct FaultServer::Impl {
  httplib::Server hub, cdn;
  std::thread hub_thread, cdn_thread;
  int hub_port = 0, cdn_port = 0;
  mutable std::mutex mutex;
  std::map<std::string, Repo> repos;
  std::map<std::string, std::string> renames;
  Faults faults;
  std::vector<LoggedRequest> log;
  FaultServer* owner = nullptr;
  int commit_counter = 0;
  std::size_t page_size = 1000;
  bool xet = false;
  TotalBandwidth cdn_bandwidth;

  // Who may read a repo: nullopt when `auth` may, else the refusal (status, code, message).
  struct Refusal {
    int status;
    std::string code, message;
  };
  std::optional<Refusal> refused(const std::string& repo_id, const Repo& repo, const std::string& auth) const {
    const std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
    const bool granted = !token.empty() && repo.granted.count(token);
    if (repo.is_private && !granted) return Refusal{401, "", "Invalid username or password."};
    if (repo.gated && !granted) {
      if (token.empty())
        return Refusal{401, "GatedRepo",
                       "Access to model " + repo_id +
                           " is restricted. You must have access to it and be authenticated to access it. Please log "
                           "in."};
      return Refusal{403, "GatedRepo",
                     "Access to model " + repo_id + " is restricted and you are not in the authorized list. Visit " +
                         "https://huggingface.co/" + repo_id + " to ask for access."};
    }
    return std::nullopt;
  }
  static void refuse(httplib::Response& res, const Refusal& r, bool api) {
    res.status = r.status;
    if (!r.code.empty()) res.set_header("X-Error-Code", r.code);
    res.set_header("X-Error-Message", r.message);
    if (r.status == 401)
      res.set_header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
    if (api)
      res.set_content(nlohmann::json{{"error", r.message}}.dump(), "application/json");
    else
      res.set_content(r.message, "text/plain");
  }

  nlohmann::json entry_json(const std::string& path, const File& f) const {
    nlohmann::json e{{"type", "file"}};
    if (f.lfs) {
      e["oid"] = util::git_blob_sha1_hex("pointer " + f.etag);
      e["size"] = f.content->size();
      e["lfs"] = {{"oid", f.etag}, {"size", f.content->size()}, {"pointerSize", 134}};
      if (xet) e["xetHash"] = util::sha256_hex("xet " + f.etag);
    } else {
      e["oid"] = f.etag;
      e["size"] = f.content->size();
    }
    e["path"] = path;
    return e;
  }

  // /api/models/{org}/{name}[/{revision|tree|paths-info|xet-read-token}/{rev}[/...]] and .../refs
  void handle_api(const httplib::Request& req, httplib::Response& res) {
    std::string target = req.target.substr(0, req.target.find('?'));
    std::string rest = target.substr(std::string("/api/models/").size());
    auto p1 = rest.find('/'), p2 = rest.find('/', p1 + 1);
    auto p3 = p2 == std::string::npos ? std::string::npos : rest.find('/', p2 + 1);
    if (p1 == std::string::npos) {
      res.status = 404;
      return;
    }
    std::string repo_id = rest.substr(0, p2);
    std::string kind = p2 == std::string::npos
                           ? "revision"
                           : rest.substr(p2 + 1, p3 == std::string::npos ? std::string::npos : p3 - p2 - 1);
    std::string rev = p3 == std::string::npos ? "main" : rest.substr(p3 + 1);
    if (kind == "tree") rev = rev.substr(0, rev.find('/'));  // the folder path after it is not used here
    rev = layout::unquote(rev);
    std::lock_guard lock(mutex);
    auto it = repos.find(repo_id);
    if (it == repos.end()) {
      res.status = 401;
      res.set_content(R"({"error":"Invalid username or password."})", "application/json");
      return;
    }
    Repo& repo = it->second;
    // Repo info stays public for gated repos, as on the Hub; the rest needs access.
    if (auto r = refused(repo_id, repo, req.get_header_value("Authorization"));
        r && (repo.is_private || kind != "revision")) {
      refuse(res, *r, true);
      return;
    }
    if (kind == "refs") {
      res.set_content(
          nlohmann::json{{"branches", {{{"name", "main"}, {"ref", "refs/heads/main"}, {"targetCommit", repo.commit}}}},
                         {"converts", nlohmann::json::array()},
                         {"tags", nlohmann::json::array()}}
              .dump(),
          "application/json");
      return;
    }
    if (rev != "main" && rev != repo.commit) {
      res.status = 404;
      res.set_header("X-Error-Code", "RevisionNotFound");
      res.set_content(R"({"error":"Invalid rev id"})", "application/json");
      return;
    }
    if (kind == "revision") {
      nlohmann::json siblings = nlohmann::json::array();
      for (auto& [path, f] : repo.files) siblings.push_back({{"rfilename", path}});
      const std::string sha = faults.fake_commit.empty() ? repo.commit : faults.fake_commit;
      nlohmann::json info{{"id", repo_id}, {"sha", sha}, {"private", repo.is_private}, {"siblings", siblings}};
      info["gated"] = repo.gated ? nlohmann::json("manual") : nlohmann::json(false);
      if (xet) info["xetEnabled"] = true;
      res.set_content(info.dump(), "application/json");
      return;
    }
    if (kind == "xet-read-token") {
      res.set_header("X-Xet-Access-Token", "xet-token");
      res.set_header("X-Xet-Cas-Url", "https://cas-server.invalid");
      res.set_content(R"({"accessToken":"xet-token","casUrl":"https://cas-server.invalid","exp":0})",
                      "application/json");
      return;
    }
    if (kind == "paths-info") {
      std::vector<std::string> paths;
      auto body = nlohmann::json::parse(req.body, nullptr, false);
      if (!body.is_discarded() && body.is_object() && body.contains("paths") && body["paths"].is_array()) {
        for (const auto& p : body["paths"])
          if (p.is_string()) paths.push_back(p.get<std::string>());
      } else {
        httplib::Params params;
        httplib::detail::parse_query_text(req.body, params);
        for (auto pi = params.find("paths"); pi != params.end() && pi->first == "paths"; ++pi)
          paths.push_back(pi->second);
      }
      nlohmann::json out = nlohmann::json::array();
      for (const auto& p : paths)
        if (auto f = repo.files.find(p); f != repo.files.end()) {
          auto e = entry_json(p, f->second);
          e["lastCommit"] = {{"id", repo.commit}, {"title", "commit"}, {"date", "2026-01-01T00:00:00.000Z"}};
          out.push_back(e);
        }
      res.set_content(out.dump(), "application/json");
      return;
    }
    if (kind != "tree") {
      res.status = 404;
      return;
    }
    // Entries: directories then files, as the Hub lists them recursively.
    nlohmann::json all = nlohmann::json::array();
    std::set<std::string> dirs;
    for (auto& [path, f] : repo.files)
      for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1))
        dirs.insert(path.substr(0, slash));
    for (auto& d : dirs)
      all.push_back({{"type", "directory"}, {"oid", std::string(40, 'd')}, {"size", 0}, {"path", d}});
    for (auto& [path, f] : repo.files) all.push_back(entry_json(path, f));
    std::size_t cursor = req.has_param("cursor") ? std::stoul(req.get_param_value("cursor")) : 0;
    nlohmann::json page = nlohmann::json::array();
    for (std::size_t i = cursor; i < all.size() && i < cursor + page_size; ++i) page.push_back(all[i]);
    if (cursor + page_size < all.size())
      res.set_header("Link", "<http://127.0.0.1:" + std::to_string(hub_port) + target +
                                 "?recursive=true&expand=false&cursor=" + std::to_string(cursor + page_size) +
                                 ">; rel=\"next\"");
    res.set_content(page.dump(), "application/json");
  }

  std::string new_commit() {
    return util::sha256_hex("fault-commit-" + std::to_string(++commit_counter)).substr(0, 40);
  }

  void record(const char* server, const httplib::Request& req, long status) {
    std::lock_guard lock(mutex);
    log.push_back(
        {server, req.method, req.target, req.has_header("Authorization"), req.get_header_value("Range"), status});
  }

  // Returns true (and fills res) when an injected failure applies.
  bool injected_failure(const char* server, httplib::Response& res) {
    std::lock_guard lock(mutex);
    if (faults.fail_count <= 0) return false;
    if (!faults.fail_server.empty() && faults.fail_server != server) return false;
    if (faults.fail_skip > 0) {
      --faults.fail_skip;
      return false;
    }
    --faults.fail_count;
    res.status = faults.fail_status;
    if (!faults.retry_after.empty()) res.set_header("Retry-After", faults.retry_after);
    if (!faults.ratelimit.empty()) res.set_header("RateLimit", faults.ratelimit);
    res.set_content("injected failure", "text/plain");
    return true;
  }

  // Serves `content` honouring Range (or not), with the configured faults. `cdn`: the
  // CDN listener's bandwidth cap and byte count apply.
  void serve_body(const httplib::Request& req, httplib::Response& res, std::shared_ptr<const std::string> content,
                  bool head, bool from_cdn = false) {
    Faults f;
    bool reset_this = false, stall_this = false, lie_this = false;
    {
      std::lock_guard lock(mutex);
      f = faults;
      if (faults.reset_after >= 0) {
        if (faults.reset_count > 0) {
          reset_this = true;
          if (--faults.reset_count == 0) faults.reset_after = -1;
        } else {
          reset_this = true;
        }
      }
      if (!head && faults.stall_after >= 0 && faults.stall_ms > 0) {
        stall_this = true;
        if (faults.stall_count > 0 && --faults.stall_count == 0) faults.stall_after = -1;
      }
      if (!head && faults.content_length_delta != 0) {
        lie_this = true;
        if (faults.content_length_delta_count > 0 && --faults.content_length_delta_count == 0)
          faults.content_length_delta = 0;
      }
    }
    const std::uint64_t total = content->size();
    std::uint64_t start = 0, end = total;  // [start, end)
    auto range = req.get_header_value("Range");
    // Manual range handling: keep cpp-httplib from slicing a second time.
    const_cast<httplib::Request&>(req).ranges.clear();
    if (!f.omit_accept_ranges) res.set_header("Accept-Ranges", "bytes");
    if (!range.empty() && !f.ignore_range && range.rfind("bytes=", 0) == 0) {
      std::string spec = range.substr(6);
      auto dash = spec.find('-');
      std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
      if (a.empty()) {
        std::uint64_t n = std::stoull(b);
        start = n >= total ? 0 : total - n;
      } else {
        start = std::stoull(a);
        if (!b.empty()) end = std::min<std::uint64_t>(std::stoull(b) + 1, total);
      }
      if (start >= total) {
        res.status = 416;
        res.set_header("Content-Range", "bytes */" + std::to_string(total));
        return;
      }
      res.status = 206;
      res.set_header("Content-Range",
                     "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" + std::to_string(total));
    } else {
      res.status = 200;
    }
    const std::uint64_t length = end - start;
    if (head) {
      res.set_header("Content-Length",
                     std::to_string(f.lie_size >= 0 ? static_cast<std::uint64_t>(f.lie_size) : length));
      return;
    }
    // Bytes of the body that go out changed (offsets in the body): no copy of the content.
    std::vector<std::size_t> flips;
    if (f.wrong_bytes && length > 0) flips.push_back(static_cast<std::size_t>(length / 2));
    if (f.corrupt_offset >= 0 && static_cast<std::uint64_t>(f.corrupt_offset) >= start &&
        static_cast<std::uint64_t>(f.corrupt_offset) < end)
      flips.push_back(static_cast<std::size_t>(f.corrupt_offset - static_cast<std::int64_t>(start)));
    const char* base = content->data() + start;
    // A stall: this body stops at the offset for offset_stall_ms, its connection open.
    std::int64_t stall_at = -1;
    if (f.offset_stall >= 0 && static_cast<std::uint64_t>(f.offset_stall) >= start &&
        static_cast<std::uint64_t>(f.offset_stall) < end) {
      std::lock_guard lock(mutex);
      if (faults.offset_stall_count > 0) {
        --faults.offset_stall_count;
        stall_at = f.offset_stall - static_cast<std::int64_t>(start);
      }
    }
    const int offset_stall_ms = f.offset_stall_ms;
    // Where this body stops for good, whatever its Content-Length says.
    std::size_t cut = static_cast<std::size_t>(length);
    if (f.truncate_at >= 0)
      cut = static_cast<std::size_t>(std::clamp<std::int64_t>(f.truncate_at - static_cast<std::int64_t>(start), 0,
                                                              static_cast<std::int64_t>(cut)));
    const std::int64_t reset_after = reset_this ? f.reset_after : -1;
    const std::int64_t trickle = f.trickle_bps;
    const int interval_ms = f.trickle_interval_ms > 0 ? f.trickle_interval_ms : 50;
    const std::int64_t stall_after = stall_this ? f.stall_after : -1;
    const int stall_ms = f.stall_ms;
    const std::int64_t delta = lie_this ? f.content_length_delta : 0;
    const auto announced =
        static_cast<std::size_t>(std::max<std::int64_t>(0, static_cast<std::int64_t>(length) + delta));
    auto stalled = std::make_shared<bool>(false);
    FaultServer* self = owner;
    Impl* impl = this;
    const std::int64_t total_bps = from_cdn ? f.cdn_total_bps : 0;
    res.set_content_provider(
        announced, "application/octet-stream",
        [content, base, flips, cut, reset_after, trickle, interval_ms, stall_after, stall_ms, stalled, stall_at,
         offset_stall_ms, delta, announced, self, impl, total_bps,
         from_cdn](std::size_t offset, std::size_t len, httplib::DataSink& sink) {
          if (offset >= cut) return false;  // truncated, or a Content-Length promising more than there is
          std::size_t chunk =
              trickle > 0 ? std::max<std::size_t>(1, static_cast<std::size_t>(trickle * interval_ms / 1000)) : len;
          chunk = std::min({chunk, len, cut - offset});
          if (reset_after >= 0 && offset >= static_cast<std::size_t>(reset_after)) return false;
          if (reset_after >= 0) chunk = std::min(chunk, static_cast<std::size_t>(reset_after) - offset);
          if (stall_after >= 0 && !*stalled) {
            if (offset >= static_cast<std::size_t>(stall_after)) {
              *stalled = true;
              std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
            } else {
              chunk = std::min(chunk, static_cast<std::size_t>(stall_after) - offset);
            }
          }
          if (stall_at >= 0 && offset == static_cast<std::size_t>(stall_at)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(offset_stall_ms));
          } else if (stall_at >= 0 && offset < static_cast<std::size_t>(stall_at)) {
            chunk = std::min(chunk, static_cast<std::size_t>(stall_at) - offset);
          }
          // A Content-Length announcing less than the body: the last write sends all of it anyway.
          if (delta < 0 && offset + chunk >= announced) chunk = cut - offset;
          if (trickle > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
          if (total_bps > 0) {
            chunk = std::min<std::size_t>(chunk, 64 * 1024);
            impl->cdn_bandwidth.take(chunk, total_bps);
          }
          const char* out = base + offset;
          std::string changed;
          for (std::size_t flip : flips)
            if (flip >= offset && flip < offset + chunk) {
              if (changed.empty()) changed.assign(base + offset, chunk);
              changed[flip - offset] ^= 0x5a;
              out = changed.data();
            }
          if (!sink.write(out, chunk)) return false;
          self->bytes_sent_ += chunk;
          if (from_cdn) {
            self->cdn_bytes_sent_ += chunk;
            self->last_cdn_byte_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
          }
          return true;
        });
  }

  // The content of the LFS file whose sha256 is `sha`; the caller holds `mutex`.
  bool lfs_content(const std::string& sha, std::shared_ptr<const std::string>& content) const {
    for (auto& [id, repo] : repos)
      for (auto& [p, f] : repo.files)
        if (f.lfs && f.etag == sha) {
          content = f.content;
          return true;
        }
    return false;
  }

  // The LFS content named `sha`, as a CDN serves it.
  void serve_blob(const httplib::Request& req, httplib::Response& res, const std::string& sha, bool head) {
    std::shared_ptr<const std::string> content;
    {
      std::lock_guard lock(mutex);
      if (!lfs_content(sha, content)) {
        res.status = 404;
        return;
      }
    }
    serve_body(req, res, content, head);
  }

  void handle_hub(const httplib::Request& req, httplib::Response& res) {
    const bool head = req.method == "HEAD";
    long status_for_log = 0;
    struct Logger {
      Impl* self;
      const httplib::Request& req;
      httplib::Response& res;
      ~Logger() { self->record("hub", req, res.status); }
    } logger{this, req, res};
    (void)status_for_log;
    int stall_ms = 0;
    {
      std::lock_guard lock(mutex);
      if (faults.header_stall_count > 0) {
        --faults.header_stall_count;
        stall_ms = faults.header_stall_ms;
      }
    }
    if (stall_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
    // Ranges are ours to answer (serve_body): keep cpp-httplib from turning a redirect
    // or an error to a Range request into a 416 of its own, which the Hub never sends.
    const_cast<httplib::Request&>(req).ranges.clear();
    if (injected_failure("hub", res)) return;
    if (req.target.rfind("/api/models/", 0) == 0) {
      handle_api(req, res);
      return;
    }
    if (req.target.rfind("/cdn-on-hub/", 0) == 0) {
      serve_blob(req, res, req.target.substr(12, req.target.find('?') - 12), head);
      return;
    }
    // /{org}/{name}/resolve/{rev}/{path}
    std::string target = req.target.substr(0, req.target.find('?'));
    auto pos = target.find("/resolve/");
    if (pos == std::string::npos) {
      res.status = 404;
      return;
    }
    std::string repo_id = target.substr(1, pos - 1);
    std::string rest = target.substr(pos + 9);
    auto slash = rest.find('/');
    std::string rev = layout::unquote(rest.substr(0, slash));
    std::string path = slash == std::string::npos ? "" : layout::unquote(rest.substr(slash + 1));
    std::lock_guard lock(mutex);
    if (auto it = renames.find(repo_id); it != renames.end()) {
      res.status = 307;
      res.set_header("Location", "/" + it->second + target.substr(pos));
      return;
    }
    auto it = repos.find(repo_id);
    const std::string auth = req.get_header_value("Authorization");
    if (it == repos.end()) {
      res.status = 401;
      res.set_header("X-Error-Message", "Invalid username or password.");
      res.set_content("Invalid username or password.", "text/plain");
      return;
    }
    Repo& repo = it->second;
    if (auto r = refused(repo_id, repo, auth)) {
      refuse(res, *r, false);
      return;
    }
    if (rev != "main" && rev != repo.commit) {
      res.status = 404;
      res.set_header("X-Error-Code", "RevisionNotFound");
      res.set_header("X-Error-Message", "Invalid rev id: " + rev);
      return;
    }
    if (!faults.no_commit_header)
      res.set_header("X-Repo-Commit", faults.fake_commit.empty() ? repo.commit : faults.fake_commit);
    const std::string fake_etag = faults.fake_etag;
    auto file = repo.files.find(path);
    if (file == repo.files.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      res.set_header("X-Error-Message", "Entry not found");
      res.set_content("Entry not found", "text/plain");
      return;
    }
    const std::uint64_t size =
        faults.lie_size >= 0 ? static_cast<std::uint64_t>(faults.lie_size) : file->second.content->size();
    if (file->second.lfs) {
      // The Hub answers a ranged GET with the same 302: keep cpp-httplib from turning
      // it into a 416 against the redirect's own body.
      const_cast<httplib::Request&>(req).ranges.clear();
      res.status = 302;
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(cdn_port) + "/" + file->second.etag);
      res.set_header("X-Linked-Etag", "\"" + (fake_etag.empty() ? file->second.etag : fake_etag) + "\"");
      res.set_header("X-Linked-Size", std::to_string(size));
      if (xet) {
        const std::string hash = util::sha256_hex("xet " + file->second.etag);
        res.set_header("X-Xet-Hash", hash);
        res.set_header("Link", "</api/models/" + repo_id + "/xet-read-token/" + repo.commit +
                                   ">; rel=\"xet-auth\", <https://cas-server.invalid/v1/reconstructions/" + hash +
                                   ">; rel=\"xet-reconstruction-info\"");
      }
      if (!head) res.set_content("Found. Redirecting", "text/plain");
      return;
    }
    res.set_header("ETag", "\"" + (fake_etag.empty() ? file->second.etag : fake_etag) + "\"");
    std::shared_ptr<const std::string> content = file->second.content;
    mutex.unlock();
    try {
      serve_body(req, res, content, head);
    } catch (...) {
      mutex.lock();
      throw;
    }
    mutex.lock();
  }

  void handle_cdn(const httplib::Request& req, httplib::Response& res) {
    struct Logger {
      Impl* self;
      const httplib::Request& req;
      httplib::Response& res;
      ~Logger() { self->record("cdn", req, res.status); }
    } logger{this, req, res};
    const_cast<httplib::Request&>(req).ranges.clear();  // as in handle_hub
    if (injected_failure("cdn", res)) return;
    std::string sha = req.target.substr(1, req.target.find('?') - 1);
    std::shared_ptr<const std::string> content;
    bool loop;
    std::string redirect_to;
    {
      std::lock_guard lock(mutex);
      loop = faults.cdn_redirect_loop;
      redirect_to = faults.cdn_redirect_to;
      if (!lfs_content(sha, content)) {
        res.status = 404;
        return;
      }
    }
    if (loop) {
      res.status = 302;
      res.set_header("Location", req.target);
      return;
    }
    bool hop;
    std::string etag;
    {
      std::lock_guard lock(mutex);
      hop = faults.cdn_redirect_hop;
      etag = faults.cdn_etag.empty() ? "\"" + sha + "\"" : faults.cdn_etag;
    }
    if (!redirect_to.empty()) {
      res.status = 302;
      res.set_header("Location", redirect_to + req.target);
      return;
    }
    if (hop && req.target.find("hop=1") == std::string::npos) {
      res.status = 302;
      res.set_header("Location", req.target + (req.target.find('?') == std::string::npos ? "?" : "&") + "hop=1");
      return;
    }
    res.set_header("ETag", etag);
    serve_body(req, res, content, req.method == "HEAD", true);
  }
};

FaultServer::FaultServer() : impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
  for (auto* s : {&impl_->hub, &impl_->cdn}) {
    s->new_task_queue = [] { return new httplib::ThreadPool(32); };
    s->set_keep_alive_max_count(100);
    // Without it a reused connection waits ~40 ms per small answer (Nagle against delayed ACKs).
    s->set_tcp_nodelay(true);
  }
  // Counters for programs that run the fault server (tests/tools/fault_hub): not logged, no faults.
  impl_->hub.Get("/_fault/stats", [this](const httplib::Request&, httplib::Response& r) {
    r.set_content(
        nlohmann::json{{"cdn_bytes", cdn_bytes_sent()}, {"body_bytes", body_bytes_sent()}, {"requests", log().size()}}
            .dump(),
        "application/json");
  });
  impl_->hub.Get("/_fault/reset", [this](const httplib::Request&, httplib::Response& r) {
    clear_log();
    r.set_content("{}", "application/json");
  });
  impl_->hub.Get(".*", [this](const httplib::Request& q, httplib::Response& r) { impl_->handle_hub(q, r); });
  impl_->hub.Post(".*", [this](const httplib::Request& q, httplib::Response& r) { impl_->handle_hub(q, r); });
  impl_->hub.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response& r) {
    if (q.method == "HEAD") {
      impl_->handle_hub(q, r);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  impl_->cdn.Get(".*", [this](const httplib::Request& q, httplib::Response& r) { impl_->handle_cdn(q, r); });
  impl_->hub_port = impl_->hub.bind_to_any_port("127.0.0.1");
  impl_->cdn_port = impl_->cdn.bind_to_any_port("127.0.0.1");
  impl_->hub_thread = std::thread([this] { impl_->hub.listen_after_bind(); });
  impl_->cdn_thread = std::thread([this] { impl_->cdn.listen_after_bind(); });
  while (!impl_->hub.is_running() || !impl_->cdn.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

FaultServer::~FaultServer() {
  impl_->hub.stop();
  impl_->cdn.stop();
  impl_->hub_thread.join();
  impl_->cdn_thread.join();
}

std::string FaultServer::url() const { return "http://127.0.0.1:" + std::to_string(impl_->hub_port); }
std::string FaultServer::cdn_url() const { return "http://127.0.0.1:" + std::to_string(impl_->cdn_port); }

void FaultServer::add_file(const std::string& repo, const std::string& path, const std::string& content, bool lfs) {
  std::lock_guard lock(impl_->mutex);
  auto& r = impl_->repos[repo];
  if (r.commit.empty()) r.commit = impl_->new_commit();
  r.files[path] = File{std::make_shared<const std::string>(content), lfs,
                       lfs ? util::sha256_hex(content) : util::git_blob_sha1_hex(content)};
}

std::string FaultServer::commit_of(const std::string& repo) {
  std::lock_guard lock(impl_->mutex);
  return impl_->repos[repo].commit;
}

void FaultServer::bump_commit(const std::string& repo) {
  std::lock_guard lock(impl_->mutex);
  impl_->repos[repo].commit = impl_->new_commit();
}

void FaultServer::add_rename(const std::string& old_repo, const std::string& new_repo) {
  std::lock_guard lock(impl_->mutex);
  impl_->renames[old_repo] = new_repo;
}

void FaultServer::set_gated(const std::string& repo) {
  std::lock_guard lock(impl_->mutex);
  impl_->repos[repo].gated = true;
}

void FaultServer::set_private(const std::string& repo, const std::string& token) {
  std::lock_guard lock(impl_->mutex);
  impl_->repos[repo].is_private = true;
  impl_->repos[repo].granted.insert(token);
}

void FaultServer::grant(const std::string& repo, const std::string& token) {
  std::lock_guard lock(impl_->mutex);
  impl_->repos[repo].granted.insert(token);
}

void FaultServer::set_xet(bool on) {
  std::lock_guard lock(impl_->mutex);
  impl_->xet = on;
}

std::chrono::steady_clock::time_point FaultServer::last_cdn_byte() const {
  return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_cdn_byte_ns_.load()));
}

void FaultServer::set_page_size(std::size_t n) {
  std::lock_guard lock(impl_->mutex);
  impl_->page_size = n;
}

void FaultServer::set_faults(const Faults& faults) {
  std::lock_guard lock(impl_->mutex);
  impl_->faults = faults;
}

std::vector<FaultServer::LoggedRequest> FaultServer::log() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->log;
}

void FaultServer::clear_log() {
  std::lock_guard lock(impl_->mutex);
  impl_->log.clear();
  bytes_sent_ = 0;
  cdn_bytes_sent_ = 0;
}

std::size_t FaultServer::count(const std::string& method, const std::string& needle, const std::string& server) const {
  std::lock_guard lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& r : impl_->log)
    if (r.method == method && r.target.find(needle) != std::string::npos && (server.empty() || r.server == server)) ++n;
  return n;
}

std::string test_bytes(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

}  // namespace hubcache::test
