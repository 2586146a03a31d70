#include "serve/server.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "store/importer.hpp"
#include "store/repo_cache.hpp"
#include "store/tree_cache.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::serve {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

struct FileInfo {
  std::string path;
  fs::path real;
  std::uint64_t size = 0;
  std::string oid;     // git blob sha1 (of the LFS pointer for LFS files)
  std::string sha256;  // LFS files only
  std::uint64_t pointer_size = 0;
  bool lfs() const { return !sha256.empty(); }
};

struct Route {
  bool api = false;
  RepoType type = RepoType::model;
  std::string repo_id;
  std::string action;  // api: "", "revision", "tree", "paths-info", "refs"; resolve: "resolve"
  std::string revision;
  std::string path;
  bool ok = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t a = 0;
  while (a <= s.size()) {
    auto b = s.find('/', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

std::string join_decoded(const std::vector<std::string>& segs, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < segs.size(); ++i) {
    if (i > from) out += '/';
    out += layout::unquote(segs[i]);
  }
  return out;
}

// Routes on the raw request target so "refs%2Fpr%2F1" survives as one segment.
// cpp-httplib serves each connection on one pool thread for as long as it lives, so
// with a fixed pool a few hundred idle keep-alive connections (or slow readers)
// would starve every other client. This pool keeps `core` threads and grows, up to
// `max`, whenever a connection arrives and no thread is free; the extra threads
// exit after a few idle seconds. (No Debian-packaged server library gives us an
// event loop with this API surface short of rewriting on Boost.Beast.)
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(std::size_t core, std::size_t max) : core_(std::max<std::size_t>(1, core)), max_(std::max(core_, max)) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < core_; ++i) spawn_locked();
  }
  ~ElasticPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && live_ < max_) spawn_locked();
    cv_.notify_one();
  }

  void shutdown() override {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    cv_.notify_all();
    done_.wait(lock, [this] { return live_ == 0; });
  }

 private:
  void spawn_locked() {
    ++live_;
    ++idle_;
    // Detached: a retired thread's stack is freed at once; shutdown() waits for live_ == 0.
    std::thread([this] { work(); }).detach();
  }

  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      const bool got = cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_ || !jobs_.empty(); });
      if (!jobs_.empty()) {
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        --idle_;
        lock.unlock();
        job();
        lock.lock();
        ++idle_;
        continue;
      }
      if (stopping_ || (!got && live_ > core_)) break;  // an extra thread idle for 5 s retires
    }
    --idle_;
    --live_;
    done_.notify_all();
  }

  const std::size_t core_, max_;
  std::mutex mutex_;
  std::condition_variable cv_, done_;
  std::deque<std::function<void()>> jobs_;
  std::size_t live_ = 0, idle_ = 0;
  bool stopping_ = false;
};

Route parse_route(const std::string& target) {
  Route r;
  std::string path = target.substr(0, target.find('?'));
  auto segs = split(path);
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
        r.path = join_decoded(segs, next);
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
  r.path = join_decoded(segs, i + 1);
  r.ok = !r.path.empty();
  return r;
}

std::string iso_date(std::time_t t) {
  char buf[32];
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

bool param_true(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return false;
  std::string v = req.get_param_value(name);
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true" || v == "1";
}

thread_local std::chrono::steady_clock::time_point request_start;

// ---- the connection's socket, for sendfile --------------------------------------------
// cpp-httplib gives a content provider only a DataSink, never the socket. The socket
// is found by the request's full address pair (remote and local address and port,
// unique per TCP connection on this host), once per connection and thread, and
// re-checked with two system calls on every use. When it cannot be found, bodies go
// through the DataSink instead.

std::optional<std::pair<std::string, int>> endpoint(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    if (!::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf)) return std::nullopt;
    return std::make_pair(std::string(buf), static_cast<int>(ntohs(in.sin_port)));
  }
  if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (!::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf)) return std::nullopt;
    return std::make_pair(std::string(buf), static_cast<int>(ntohs(in6.sin6_port)));
  }
  return std::nullopt;
}

bool is_request_socket(int fd, const httplib::Request& req) {
  sockaddr_storage peer{}, local{};
  socklen_t peer_len = sizeof peer, local_len = sizeof local;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0)
    return false;
  auto p = endpoint(peer), l = endpoint(local);
  return p && l && p->second == req.remote_port && l->second == req.local_port && p->first == req.remote_addr &&
         l->first == req.local_addr;
}

int request_socket(const httplib::Request& req) {
  thread_local int cached = -1;
  if (cached >= 0 && is_request_socket(cached, req)) return cached;
  cached = -1;
  DIR* fds = ::opendir("/proc/self/fd");
  if (!fds) return -1;
  while (const dirent* e = ::readdir(fds)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd <= 2 || fd == ::dirfd(fds)) continue;
    if (is_request_socket(static_cast<int>(fd), req)) {
      cached = static_cast<int>(fd);
      break;
    }
  }
  ::closedir(fds);
  return cached;
}

// A file being sent: one descriptor for the whole response.
struct OpenFile {
  int fd = -1;
  explicit OpenFile(const fs::path& p) : fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd >= 0) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
};

// Bodies this large go out with sendfile(2); smaller ones through cpp-httplib, which
// keeps the connection alive (a sendfile response ends with "Connection: close",
// since cpp-httplib cannot be told the bytes were sent behind its back).
constexpr std::uint64_t kSendfileMin = 1 << 20;
constexpr std::size_t kChunk = 8 << 20;

// The request target for the access log, with credentials in the query masked
// (the CDN's `sig`, any `*token*` parameter).
std::string loggable_target(const std::string& target) {
  auto q = target.find('?');
  if (q == std::string::npos) return target;
  std::string out = target.substr(0, q + 1);
  std::size_t a = q + 1;
  while (a <= target.size()) {
    auto b = target.find('&', a);
    if (b == std::string::npos) b = target.size();
    std::string param = target.substr(a, b - a);
    auto eq = param.find('=');
    std::string name = param.substr(0, eq);
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (eq != std::string::npos && (lower == "sig" || lower.find("token") != std::string::npos))
      param = name + "=REDACTED";
    if (a > q + 1) out += '&';
    out += param;
    a = b + 1;
  }
  return out;
}

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  fs::path root;  // canonical cache root
  httplib::Server hub, cdn;
  std::thread hub_thread, cdn_thread;
  int hub_port = 0, cdn_port = 0;
  std::vector<int> listen_sockets;  // of the listener being bound (see start())
  bool started = false, stopped = false;
  std::mutex mutex;  // guards the caches below
  struct Hashed {
    std::uint64_t size;
    std::int64_t mtime;
    std::string etag;
  };
  std::map<std::string, Hashed> hashes;  // real path -> blob name of real files in snapshots
  struct Listing {
    bool loaded = false;
    std::int64_t mtime = 0;
    std::map<std::string, hub::TreeFile> files;
  };
  std::map<std::string, Listing> listings;    // trees/<commit>.json -> its files
  std::map<std::string, fs::path> by_sha256;  // CDN index

  // ---- the cache -----------------------------------------------------------------------
  fs::path repo_dir(const Route& r) const { return root / layout::repo_folder_name(r.repo_id, r.type); }

  std::optional<std::string> resolve_revision(const fs::path& repo, std::string rev) const {
    if (rev == "HEAD") rev = "main";
    std::error_code ec;
    if (layout::is_commit_hash(rev)) {
      if (fs::is_directory(repo / "snapshots" / rev, ec)) return rev;
      return std::nullopt;
    }
    try {
      layout::validate_revision(rev);
    } catch (const Error&) {
      return std::nullopt;
    }
    if (auto text = util::read_small_file(repo / "refs" / rev)) {
      std::string c = *text;
      while (!c.empty() && std::isspace(static_cast<unsigned char>(c.back()))) c.pop_back();
      if (layout::is_commit_hash(c) && fs::is_directory(repo / "snapshots" / c, ec)) return c;
    }
    if (rev.size() >= 7 && rev.size() < 40 && layout::is_hex(rev)) {
      std::optional<std::string> found;
      for (auto& e : fs::directory_iterator(repo / "snapshots", ec)) {
        auto name = e.path().filename().string();
        if (name.rfind(rev, 0) == 0) {
          if (found) return std::nullopt;  // ambiguous
          found = name;
        }
      }
      return found;
    }
    return std::nullopt;
  }

  bool inside_root(const fs::path& real) const {
    auto rel = real.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  }

  std::optional<FileInfo> file_info(const fs::path& repo, const std::string& commit, const std::string& path) {
    try {
      layout::validate_filename(path);
    } catch (const Error&) {
      return std::nullopt;
    }
    const fs::path pointer = repo / "snapshots" / commit / path;
    std::error_code ec;
    auto real = fs::canonical(pointer, ec);
    if (ec || !inside_root(real) || !fs::is_regular_file(real, ec)) return std::nullopt;
    FileInfo f;
    f.path = path;
    f.real = real;
    f.size = fs::file_size(real, ec);
    std::string etag;
    if (fs::is_symlink(pointer, ec)) {
      auto name = fs::read_symlink(pointer, ec).filename().string();
      if (layout::is_hex(name) && (name.size() == 40 || name.size() == 64)) etag = name;
    }
    if (etag.empty()) etag = real_file_etag(repo, commit, path, real, f.size);
    if (etag.size() == 64) {
      f.sha256 = etag;
      std::string lfs_pointer =
          "version https://git-lfs.github.com/spec/v1\noid sha256:" + etag + "\nsize " + std::to_string(f.size) + "\n";
      f.pointer_size = lfs_pointer.size();
      f.oid = util::git_blob_sha1_hex(lfs_pointer);
      std::lock_guard lock(mutex);
      by_sha256[etag] = real;
    } else {
      f.oid = etag;
    }
    return f;
  }

  // The entry of trees/<commit>.json (Python's cached listing) for a path, if any.
  std::optional<hub::TreeFile> listed_file(const fs::path& repo, const std::string& commit, const std::string& path) {
    const fs::path file = repo / "trees" / (commit + ".json");
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return std::nullopt;
    auto name = layout::parse_repo_folder_name(repo.filename().string());
    if (!name) return std::nullopt;
    std::lock_guard lock(mutex);
    auto& listing = listings[file.string()];
    if (!listing.loaded || listing.mtime != st.st_mtime) {
      listing = Listing{true, st.st_mtime, {}};
      try {
        if (auto files = store::read_tree_cache(store::RepoCache(root, name->second, name->first), commit))
          for (auto& t : *files) listing.files.emplace(t.path, std::move(t));
      } catch (const Error&) {
      }
    }
    auto it = listing.files.find(path);
    if (it == listing.files.end()) return std::nullopt;
    return it->second;
  }

  // The blob name of a real file in snapshots/ (a cache written without symlinks, where
  // Python moved the blob there): from trees/<commit>.json when it lists the file with
  // this size, else by hashing it, once per (size, mtime), outside the lock so a large
  // file never stalls other requests. Without a listing a file is LFS by its name or
  // size, as hubcache import decides.
  std::string real_file_etag(const fs::path& repo, const std::string& commit, const std::string& path,
                             const fs::path& real, std::uint64_t size) {
    if (auto listed = listed_file(repo, commit, path); listed && listed->size == size) {
      const std::string& e = listed->etag();
      if (layout::is_hex(e) && (e.size() == 40 || e.size() == 64)) return e;
    }
    struct stat st {};
    ::stat(real.c_str(), &st);
    {
      std::lock_guard lock(mutex);
      auto it = hashes.find(real.string());
      if (it != hashes.end() && it->second.size == size && it->second.mtime == st.st_mtime) return it->second.etag;
    }
    const bool lfs = store::is_lfs_path(path) || size > 10'000'000;
    std::string etag = util::hash_file(real, lfs ? util::HashKind::sha256 : util::HashKind::git_blob_sha1);
    std::lock_guard lock(mutex);
    hashes[real.string()] = Hashed{size, st.st_mtime, etag};
    return etag;
  }

  // Every file of a snapshot, sorted by path.
  std::vector<std::string> list_files(const fs::path& repo, const std::string& commit) const {
    std::vector<std::string> out;
    const fs::path snap = repo / "snapshots" / commit;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::error_code fec;
      if (it->is_regular_file(fec)) out.push_back(it->path().lexically_relative(snap).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  json entry_json(const FileInfo& f, const std::string& commit, bool expand, std::time_t date) const {
    json e = json::object();
    e["type"] = "file";
    e["oid"] = f.oid;
    e["size"] = f.size;
    if (f.lfs()) e["lfs"] = {{"oid", f.sha256}, {"size", f.size}, {"pointerSize", f.pointer_size}};
    e["path"] = f.path;
    if (expand)
      e["lastCommit"] = {{"id", commit}, {"title", "Snapshot " + commit.substr(0, 7)}, {"date", iso_date(date)}};
    return e;
  }

  json dir_json(const std::string& dir, const std::string& commit, bool expand, std::time_t date) const {
    json e = {{"type", "directory"},
              {"oid", util::git_blob_sha1_hex("tree " + commit + " " + dir)},
              {"size", 0},
              {"path", dir}};
    if (expand)
      e["lastCommit"] = {{"id", commit}, {"title", "Snapshot " + commit.substr(0, 7)}, {"date", iso_date(date)}};
    return e;
  }

  std::time_t snapshot_time(const fs::path& repo, const std::string& commit) const {
    struct stat st {};
    ::stat((repo / "snapshots" / commit).c_str(), &st);
    return st.st_mtime;
  }

  // HMAC-SHA256(token, sha256) in hex: the signature of a CDN URL when a token guards
  // the server (clients drop Authorization on the CDN hop, so the URL carries the proof).
  std::string cdn_signature(const std::string& sha) const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), opts.token->data(), static_cast<int>(opts.token->size()),
         reinterpret_cast<const unsigned char*>(sha.data()), sha.size(), mac, &len);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += hex[mac[i] >> 4];
      out += hex[mac[i] & 15];
    }
    return out;
  }

  bool signature_ok(const std::string& given, const std::string& sha) const {
    const std::string expected = cdn_signature(sha);
    return given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
  }

  // ---- errors ---------------------------------------------------------------------------
  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message, bool api) {
    res.status = status;
    if (!code.empty()) res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", message);
    if (api)
      res.set_content(json{{"error", message}}.dump(), "application/json; charset=utf-8");
    else
      res.set_content(message, "text/plain; charset=utf-8");
  }

  bool authorized(const httplib::Request& req, httplib::Response& res, bool api) const {
    if (!opts.token) return true;
    const auto auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + *opts.token) return true;
    res.set_header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
    error(res, 401, "", auth.empty() ? "Invalid username or password." : "Invalid credentials in Authorization header",
          api);
    return false;
  }

  // Finds the repo and commit of a route, or answers the error.
  bool locate(const httplib::Request& req, const Route& route, httplib::Response& res, fs::path& repo,
              std::string& commit) {
    bool api = route.api;
    try {
      layout::validate_repo_id(route.repo_id);
    } catch (const Error&) {
      error(res, 400, "", "Invalid repo id.", api);
      return false;
    }
    repo = repo_dir(route);
    std::error_code ec;
    if (!fs::is_directory(repo / "snapshots", ec)) {
      // Like the Hub: anonymous callers cannot tell a missing repo from a private one.
      if (req.has_header("Authorization")) {
        error(res, 404, "RepoNotFound", "Repository not found", api);
      } else {
        res.set_header("WWW-Authenticate", "Bearer realm=\"Authentication required\", charset=\"UTF-8\"");
        error(res, 401, "RepoNotFound", "Repository not found", api);
      }
      return false;
    }
    if (route.action == "refs") return true;
    auto c = resolve_revision(repo, route.revision);
    if (!c) {
      error(res, 404, "RevisionNotFound", "Invalid rev id: " + route.revision, api);
      return false;
    }
    commit = *c;
    return true;
  }

  // ---- bodies ---------------------------------------------------------------------------
  // Serves a file with single-range support. Ranges are handled here, not by
  // cpp-httplib, so 206/416 and Content-Range are exactly the Hub's.
  static void send_file(const httplib::Request& req, httplib::Response& res, const fs::path& real, std::uint64_t total,
                        const std::string& content_type) {
    const_cast<httplib::Request&>(req).ranges.clear();
    std::uint64_t start = 0, end = total;
    res.set_header("Accept-Ranges", "bytes");
    auto range = req.get_header_value("Range");
    res.status = 200;
    if (!range.empty() && range.rfind("bytes=", 0) == 0 && range.find(',') == std::string::npos) {
      std::string spec = range.substr(6);
      auto dash = spec.find('-');
      if (dash != std::string::npos) {
        std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
        bool valid = true;
        try {
          if (a.empty()) {
            if (b.empty()) valid = false;
            std::uint64_t n = valid ? std::stoull(b) : 0;
            start = n >= total ? 0 : total - n;
            if (n == 0) start = total;  // "bytes=-0" is unsatisfiable
          } else {
            start = std::stoull(a);
            if (!b.empty()) {
              std::uint64_t last = std::stoull(b);
              if (last < start) valid = false;
              end = std::min<std::uint64_t>(last + 1, total);
            }
          }
        } catch (...) {
          valid = false;
        }
        if (valid) {
          if (start >= total) {
            res.status = 416;
            res.set_header("Content-Range", "bytes */" + std::to_string(total));
            res.set_content("Range Not Satisfiable", "text/plain");
            return;
          }
          res.status = 206;
          res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(end - 1) + "/" +
                                              std::to_string(total));
        } else {
          start = 0;
          end = total;
        }
      }
    }
    const std::uint64_t length = end - start;
    if (length == 0) {  // an empty file: cpp-httplib sends no Content-Length for an empty provider
      res.set_content("", content_type);
      return;
    }
    auto file = std::make_shared<OpenFile>(real);
    if (file->fd < 0) {
      error(res, 500, "", "Cannot read the file from the cache.", false);
      return;
    }
    if (req.method == "GET" && length >= kSendfileMin) {
      if (int sock = request_socket(req); sock >= 0) {
        res.set_header("Connection", "close");
        auto next = std::make_shared<off_t>(static_cast<off_t>(start));
        const auto stop = static_cast<off_t>(end);
        // One chunk per call, so cpp-httplib can stop between chunks on shutdown. The
        // socket has cpp-httplib's send timeout, so a stalled client ends the transfer.
        res.set_content_provider(static_cast<std::size_t>(length), content_type,
                                 [file, sock, next, stop](std::size_t, std::size_t, httplib::DataSink& sink) {
                                   if (!sink.is_writable()) return false;
                                   const auto want = std::min<off_t>(kChunk, stop - *next);
                                   ssize_t n = ::sendfile(sock, file->fd, next.get(), static_cast<std::size_t>(want));
                                   // Done (or failed): false ends the response and closes the connection.
                                   return n > 0 && *next < stop;
                                 });
        return;
      }
    }
    // Constant memory: one buffer per response, filled straight from the file.
    auto buf = std::make_shared<std::vector<char>>(std::min<std::uint64_t>(length, 1 << 20));
    res.set_content_provider(static_cast<std::size_t>(length), content_type,
                             [file, buf, start](std::size_t offset, std::size_t len, httplib::DataSink& sink) {
                               ssize_t n = ::pread(file->fd, buf->data(), std::min(len, buf->size()),
                                                   static_cast<off_t>(start + offset));
                               if (n <= 0) return false;
                               return sink.write(buf->data(), static_cast<std::size_t>(n));
                             });
  }

  std::string host_for_redirect(const httplib::Request& req) const {
    std::string host = req.get_header_value("Host");
    if (host.empty()) return opts.host;
    if (host.front() == '[') return host.substr(0, host.find(']') + 1);
    return host.substr(0, host.find(':'));
  }

  // ---- handlers -------------------------------------------------------------------------
  void handle_resolve(const httplib::Request& req, httplib::Response& res, const Route& route) {
    fs::path repo;
    std::string commit;
    if (!locate(req, route, res, repo, commit)) return;
    auto info = file_info(repo, commit, route.path);
    if (!info) {
      res.set_header("X-Repo-Commit", commit);
      error(res, 404, "EntryNotFound", "Entry not found", false);
      return;
    }
    res.set_header("X-Repo-Commit", commit);
    if (info->lfs()) {
      std::string name = route.path.substr(route.path.rfind('/') + 1);
      std::string location = "http://" + host_for_redirect(req) + ":" + std::to_string(cdn_port) + "/" + info->sha256 +
                             "?name=" + layout::quote(name, "");
      if (opts.token) location += "&sig=" + cdn_signature(info->sha256);
      res.status = 302;
      res.set_header("Location", location);
      res.set_header("X-Linked-Etag", "\"" + info->sha256 + "\"");
      res.set_header("X-Linked-Size", std::to_string(info->size));
      res.set_header("Accept-Ranges", "bytes");
      res.set_header("Cache-Control", "no-store");
      res.set_content("Found. Redirecting to " + location, "text/plain; charset=utf-8");
      return;
    }
    std::string name = route.path.substr(route.path.rfind('/') + 1);
    res.set_header("ETag", "\"" + info->oid + "\"");
    res.set_header("Content-Disposition",
                   "inline; filename*=UTF-8''" + layout::quote(name, "") + "; filename=\"" + name + "\";");
    send_file(req, res, info->real, info->size, "text/plain; charset=utf-8");
  }

  void handle_info(const httplib::Request& req, httplib::Response& res, const Route& route) {
    fs::path repo;
    std::string commit;
    if (!locate(req, route, res, repo, commit)) return;
    const bool blobs = param_true(req, "blobs");
    const std::time_t date = snapshot_time(repo, commit);
    json siblings = json::array();
    for (const auto& p : list_files(repo, commit)) {
      json s = {{"rfilename", p}};
      if (blobs) {
        if (auto f = file_info(repo, commit, p)) {
          s["size"] = f->size;
          s["blobId"] = f->oid;
          if (f->lfs()) s["lfs"] = {{"sha256", f->sha256}, {"size", f->size}, {"pointerSize", f->pointer_size}};
        }
      }
      siblings.push_back(std::move(s));
    }
    const std::string id = route.repo_id;
    json full = {{"_id", util::sha256_hex(id).substr(0, 24)},
                 {"id", id},
                 {"modelId", id},
                 {"author", id.find('/') == std::string::npos ? "" : id.substr(0, id.find('/'))},
                 {"sha", commit},
                 {"lastModified", iso_date(date)},
                 {"createdAt", iso_date(date)},
                 {"private", false},
                 {"gated", false},
                 {"disabled", false},
                 {"downloads", 0},
                 {"likes", 0},
                 {"tags", json::array()},
                 {"pipeline_tag", nullptr},
                 {"library_name", nullptr},
                 {"siblings", siblings},
                 {"spaces", json::array()},
                 {"usedStorage", 0}};
    // expand=a&expand=b (or expand[]=): exactly {_id, id} plus the requested keys.
    std::vector<std::string> expand;
    for (const char* key : {"expand", "expand[]"})
      for (std::size_t i = 0, n = req.get_param_value_count(key); i < n; ++i)
        expand.push_back(req.get_param_value(key, i));
    json out = full;
    if (!expand.empty()) {
      out = {{"_id", full["_id"]}, {"id", id}};
      for (const auto& k : expand)
        if (full.contains(k)) out[k] = full[k];
    }
    res.set_content(out.dump(), "application/json; charset=utf-8");
  }

  void handle_tree(const httplib::Request& req, httplib::Response& res, const Route& route) {
    fs::path repo;
    std::string commit;
    if (!locate(req, route, res, repo, commit)) return;
    const bool recursive = param_true(req, "recursive");
    const bool expand = param_true(req, "expand");
    const std::time_t date = snapshot_time(repo, commit);
    std::string base = route.path;
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto files = list_files(repo, commit);
    std::set<std::string> dirs;
    std::vector<std::string> selected;
    bool base_exists = base.empty();
    for (const auto& p : files) {
      if (!base.empty()) {
        if (p == base) {
          error(res, 404, "EntryNotFound", base + " is a file, not a folder on \"" + route.revision + "\"", true);
          return;
        }
        if (p.rfind(base + "/", 0) != 0) continue;
      }
      base_exists = true;
      std::string rel = base.empty() ? p : p.substr(base.size() + 1);
      // Directories between `base` and the file.
      std::string prefix = base.empty() ? "" : base + "/";
      for (auto slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
        dirs.insert(prefix + rel.substr(0, slash));
        if (!recursive) break;
      }
      if (recursive || rel.find('/') == std::string::npos) selected.push_back(p);
    }
    if (!base_exists) {
      error(res, 404, "EntryNotFound", base + " does not exist on \"" + route.revision + "\"", true);
      return;
    }
    json all = json::array();
    for (const auto& d : dirs) all.push_back(dir_json(d, commit, expand, date));
    for (const auto& p : selected)
      if (auto f = file_info(repo, commit, p)) all.push_back(entry_json(*f, commit, expand, date));
    std::size_t limit = expand ? 50 : 1000;
    if (req.has_param("limit")) {
      try {
        limit = std::max<std::size_t>(1, std::stoul(req.get_param_value("limit")));
      } catch (...) {
      }
    }
    std::size_t cursor = 0;
    if (req.has_param("cursor")) {
      try {
        cursor = std::stoul(req.get_param_value("cursor"));
      } catch (...) {
      }
    }
    json page = json::array();
    for (std::size_t i = cursor; i < all.size() && i < cursor + limit; ++i) page.push_back(all[i]);
    if (cursor + limit < all.size()) {
      std::string host = req.get_header_value("Host");
      std::string path = req.target.substr(0, req.target.find('?'));
      std::string query = "recursive=" + std::string(recursive ? "true" : "false") +
                          "&expand=" + std::string(expand ? "true" : "false") + "&limit=" + std::to_string(limit) +
                          "&cursor=" + std::to_string(cursor + limit);
      res.set_header("Link", "<http://" + (host.empty() ? opts.host + ":" + std::to_string(hub_port) : host) + path +
                                 "?" + query + ">; rel=\"next\"");
    }
    res.set_content(page.dump(), "application/json; charset=utf-8");
  }

  void handle_paths_info(const httplib::Request& req, httplib::Response& res, const Route& route) {
    fs::path repo;
    std::string commit;
    if (!locate(req, route, res, repo, commit)) return;
    std::vector<std::string> paths;
    bool expand = false;
    auto body = json::parse(req.body, nullptr, false);
    if (!body.is_discarded() && body.is_object()) {
      if (body.contains("paths") && body["paths"].is_array())
        for (const auto& p : body["paths"])
          if (p.is_string()) paths.push_back(p.get<std::string>());
      if (body.contains("expand")) expand = body["expand"].is_boolean() ? body["expand"].get<bool>() : false;
    } else {
      // application/x-www-form-urlencoded: paths=a&paths=b&expand=true
      httplib::Params params;
      httplib::detail::parse_query_text(req.body, params);
      for (auto it = params.find("paths"); it != params.end() && it->first == "paths"; ++it)
        paths.push_back(it->second);
      auto e = params.find("expand");
      expand = e != params.end() && (e->second == "true" || e->second == "True" || e->second == "1");
    }
    const std::time_t date = snapshot_time(repo, commit);
    // The listing (a walk of the whole snapshot) is only needed for a path that is
    // not a file: clients ask for one file at a time, often a thousand times.
    std::optional<std::vector<std::string>> files;
    json out = json::array();
    for (auto p : paths) {
      while (!p.empty() && p.back() == '/') p.pop_back();
      if (auto f = file_info(repo, commit, p)) {
        out.push_back(entry_json(*f, commit, expand, date));
      } else {
        if (!files) files = list_files(repo, commit);
        for (const auto& file : *files)
          if (file.rfind(p + "/", 0) == 0) {
            out.push_back(dir_json(p, commit, expand, date));
            break;
          }
      }
    }
    res.set_content(out.dump(), "application/json; charset=utf-8");
  }

  void handle_refs(const httplib::Request& req, httplib::Response& res, const Route& route) {
    fs::path repo;
    std::string commit;
    if (!locate(req, route, res, repo, commit)) return;
    json branches = json::array(), prs = json::array(), converts = json::array(), tags = json::array();
    std::error_code ec;
    const fs::path refs = repo / "refs";
    for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::string name = it->path().lexically_relative(refs).generic_string();
      auto target = resolve_revision(repo, name);
      if (!target) continue;
      if (name.rfind("refs/pr/", 0) == 0)
        prs.push_back({{"name", name.substr(8)}, {"ref", name}, {"targetCommit", *target}});
      else if (name.rfind("refs/convert/", 0) == 0)
        converts.push_back({{"name", name.substr(13)}, {"ref", name}, {"targetCommit", *target}});
      else
        branches.push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", *target}});
    }
    json out = {{"branches", branches}, {"converts", converts}, {"tags", tags}};
    if (param_true(req, "include_prs")) out["pullRequests"] = prs;
    res.set_content(out.dump(), "application/json; charset=utf-8");
  }

  void handle_hub(const httplib::Request& req, httplib::Response& res) {
    Route route = parse_route(req.target);
    if (!route.ok) {
      error(res, 404, "", "Not found", route.api);
      return;
    }
    if (!authorized(req, res, route.api)) return;
    if (route.action == "resolve") {
      if (req.method != "GET" && req.method != "HEAD") {
        error(res, 405, "", "Method not allowed", false);
        return;
      }
      handle_resolve(req, res, route);
    } else if (route.action == "paths-info") {
      if (req.method != "POST") {
        error(res, 405, "", "Method not allowed", true);
        return;
      }
      handle_paths_info(req, res, route);
    } else if (req.method != "GET" && req.method != "HEAD") {
      error(res, 405, "", "Method not allowed", true);
    } else if (route.action == "tree") {
      handle_tree(req, res, route);
    } else if (route.action == "refs") {
      handle_refs(req, res, route);
    } else {
      handle_info(req, res, route);
    }
  }

  std::optional<fs::path> find_sha256(const std::string& sha) {
    {
      std::lock_guard lock(mutex);
      if (auto it = by_sha256.find(sha); it != by_sha256.end() && util::is_regular_file(it->second)) return it->second;
    }
    std::error_code ec;
    auto shared = root / "blobs" / sha.substr(0, 2) / sha;
    if (util::is_regular_file(shared)) return shared;
    for (auto& e : fs::directory_iterator(root, ec)) {
      auto blob = e.path() / "blobs" / sha;
      if (util::is_regular_file(blob)) {
        auto real = fs::canonical(blob, ec);
        if (!ec && inside_root(real)) return real;
      }
    }
    return std::nullopt;
  }

  void handle_cdn(const httplib::Request& req, httplib::Response& res) {
    std::string sha =
        req.target.substr(1, req.target.find('?') == std::string::npos ? std::string::npos : req.target.find('?') - 1);
    if (sha.size() != 64 || !layout::is_hex(sha)) {
      res.status = 404;
      res.set_content("Not found", "text/plain");
      return;
    }
    if (opts.token && !signature_ok(req.get_param_value("sig"), sha)) {
      // A guarded server signs its CDN URLs, as the Hub does: the sha256 alone opens nothing.
      res.status = 403;
      res.set_content("Forbidden", "text/plain");
      return;
    }
    auto real = find_sha256(sha);
    if (!real) {
      res.status = 404;
      res.set_content("Not found", "text/plain");
      return;
    }
    std::error_code ec;
    res.set_header("ETag", "\"" + sha + "\"");
    send_file(req, res, *real, fs::file_size(*real, ec), "application/octet-stream");
  }

  void log_line(const char* server, const httplib::Request& req, const httplib::Response& res) const {
    if (!opts.access_log) return;
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - request_start).count();
    std::string bytes = res.get_header_value("Content-Length");
    if (bytes.empty()) bytes = std::to_string(res.body.size());
    // Method, target, status, bytes, time. Headers (and so tokens) are never logged.
    std::fprintf(stderr, "%s %s %s %d %s %.1fms\n", server, req.method.c_str(), loggable_target(req.target).c_str(),
                 res.status, bytes.c_str(), ms);
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(options); }

Server::~Server() { stop(); }

void Server::start() {
  Impl& s = *impl_;
  std::error_code ec;
  s.root = fs::canonical(s.opts.cache_dir, ec);
  if (ec) throw Error(ErrorCode::io, "Cannot serve '" + s.opts.cache_dir.string() + "': " + ec.message());
  for (auto* srv : {&s.hub, &s.cdn}) {
    const int threads = s.opts.threads;
    srv->new_task_queue = [threads] {
      return new ElasticPool(static_cast<std::size_t>(threads), std::max<std::size_t>(4096, threads));
    };
    srv->set_keep_alive_max_count(1000);
    srv->set_keep_alive_timeout(5);
    // Without it every small answer on a reused connection waits ~40 ms (Nagle
    // against the client's delayed ACK): a 1,000-file snapshot would crawl.
    srv->set_tcp_nodelay(true);
    srv->set_read_timeout(30);
    srv->set_write_timeout(30);
    srv->set_payload_max_length(16u << 20);
    // cpp-httplib also sets SO_REUSEPORT, which lets a second server bind the same
    // port and silently take half its connections: keep only SO_REUSEADDR.
    srv->set_socket_options([&s](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      s.listen_sockets.push_back(sock);
    });
    const bool is_cdn = srv == &s.cdn;
    srv->set_pre_routing_handler([is_cdn](const httplib::Request& req, httplib::Response&) {
      request_start = std::chrono::steady_clock::now();
      // File bodies (and the resolve endpoint's redirects and errors) are never
      // compressed, as on the Hub: clients check sizes and range offsets in raw bytes.
      // The packaged cpp-httplib compresses whenever the client accepts it, so
      // the request's Accept-Encoding is dropped before it can decide.
      if (is_cdn || req.target.rfind("/api/", 0) != 0)
        const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
      // Ranges are answered by send_file alone. Left to cpp-httplib, a Range on a
      // resolve URL would turn its 302 (or 404) into a 416 of its own, which the Hub
      // never sends, and resumed downloads (or hf-hub's chunked ones) would break.
      const_cast<httplib::Request&>(req).ranges.clear();
      return httplib::Server::HandlerResponse::Unhandled;
    });
  }
  auto hub_handler = [this](const httplib::Request& q, httplib::Response& r) { impl_->handle_hub(q, r); };
  s.hub.Get(".*", hub_handler);
  s.hub.Post(".*", hub_handler);
  s.hub.set_logger([this](const httplib::Request& q, const httplib::Response& r) { impl_->log_line("hub", q, r); });
  s.cdn.Get(".*", [this](const httplib::Request& q, httplib::Response& r) { impl_->handle_cdn(q, r); });
  s.cdn.set_logger([this](const httplib::Request& q, const httplib::Response& r) { impl_->log_line("cdn", q, r); });

  auto bind = [&](httplib::Server& srv, int port) {
    s.listen_sockets.clear();
    int bound = port == 0 ? srv.bind_to_any_port(s.opts.host) : (srv.bind_to_port(s.opts.host, port) ? port : -1);
    // The packaged cpp-httplib listens with a backlog of 5: a burst of clients would
    // wait for SYN retries (seconds). listen() again on the same socket raises it.
    if (bound > 0)
      for (int sock : s.listen_sockets) ::listen(sock, SOMAXCONN);
    if (bound <= 0)
      throw Error(ErrorCode::io, "Cannot listen on " + s.opts.host + ":" + std::to_string(port) +
                                     " (in use, or not an address of this machine). Try --port 0.");
    return bound;
  };
  s.hub_port = bind(s.hub, s.opts.port);
  s.cdn_port = bind(s.cdn, s.opts.cdn_port);
  s.hub_thread = std::thread([this] { impl_->hub.listen_after_bind(); });
  s.cdn_thread = std::thread([this] { impl_->cdn.listen_after_bind(); });
  while (!s.hub.is_running() || !s.cdn.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  s.started = true;
}

void Server::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.hub.stop();
  s.cdn.stop();
  if (s.hub_thread.joinable()) s.hub_thread.join();
  if (s.cdn_thread.joinable()) s.cdn_thread.join();
}

int Server::port() const { return impl_->hub_port; }
int Server::cdn_port() const { return impl_->cdn_port; }
std::string Server::base_url() const {
  const std::string& h = impl_->opts.host;
  std::string host = h == "0.0.0.0" ? "127.0.0.1" : h;
  return "http://" + host + ":" + std::to_string(impl_->hub_port);
}

}  // namespace hubcache::serve
