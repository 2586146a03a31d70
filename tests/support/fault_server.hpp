// A Hub + CDN pair on two ephemeral 127.0.0.1 ports, serving in-memory repos with
// the Hub's headers, a request log, and faults injected on demand. It runs in the
// test process (real sockets, real HTTP); `hubcache serve` is the production
// server, this one exists to misbehave.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hubcache::test {

class FaultServer {
 public:
  struct LoggedRequest {
    std::string server;  // "hub" or "cdn"
    std::string method;
    std::string target;  // raw request target
    bool authorization = false;
    std::string range;  // Range header, "" when absent
    long status = 0;
  };
  struct Faults {
    int fail_count = 0;  // the next N matching requests answer `fail_status`
    int fail_skip = 0;   // ... after this many matching requests went through
    int fail_status = 503;
    std::string fail_server;        // "hub", "cdn" or "" for both
    std::string retry_after;        // Retry-After on those answers
    std::int64_t reset_after = -1;  // body GETs: close the connection after N bytes (once per request)
    int reset_count = 0;            // how many body GETs get the reset (0 = all while reset_after >= 0)
    bool wrong_bytes = false;       // flip one byte of every body
    bool ignore_range = false;      // answer 200 with the full body to Range requests
    std::int64_t trickle_bps = 0;   // bytes per second on bodies (0 = full speed)
    bool cdn_redirect_loop = false;
    std::int64_t lie_size = -1;  // X-Linked-Size / Content-Length announced instead of the real size
    bool no_commit_header = false;
    // Ranged downloads (tests/e2e/ranged_download_test.cpp):
    std::int64_t corrupt_offset = -1;  // flip the byte at this file offset in every body that carries it
    std::int64_t offset_stall = -1;    // a body reaching this file offset sends nothing more for offset_stall_ms
    int offset_stall_ms = 3000;        // (the connection stays open), then goes on
    int offset_stall_count = 1;        // bodies that stall before the fault is spent
    bool omit_accept_ranges = false;   // no Accept-Ranges header on bodies
    bool cdn_redirect_hop = false;     // the CDN answers 302 to the same path with "hop=1" added, once per URL
    // Body GETs stall: after `stall_after` bytes of a body, nothing for `stall_ms`, then the rest.
    std::int64_t stall_after = -1;
    int stall_ms = 0;
    int stall_count = 0;  // how many body GETs stall (0 = all while stall_after >= 0)
    // The server's copy is truncated: every body ends at byte `truncate_at` of the file
    // (resumes included), though its Content-Length promised the whole range.
    std::int64_t truncate_at = -1;
    // Body GETs announce Content-Length = real length + delta: > 0 promises more and then
    // closes, < 0 sends more bytes than announced.
    std::int64_t content_length_delta = 0;
    int content_length_delta_count = 0;  // how many body GETs lie (0 = all)
    int trickle_interval_ms = 0;         // with trickle_bps: one chunk per interval (0 = 50 ms)
    // The CDN answers 302 to `cdn_redirect_to` + its own target: a redirect chain across hosts.
    // (The hub serves LFS content at /cdn-on-hub/<sha256>, as a CDN sharing the Hub's origin
    // would: cdn_redirect_to = url() + "/cdn-on-hub" makes a chain that comes back to the Hub.)
    std::string cdn_redirect_to;
    std::string fake_etag;    // announced instead of the real ETag / X-Linked-Etag
    std::string fake_commit;  // announced instead of the real commit (X-Repo-Commit, revision API)
    std::string cdn_etag;     // the CDN's ETag header on bodies, sent as is instead of "<sha256>"
    // The hub sits on the next `header_stall_count` requests for `header_stall_ms` before answering.
    int header_stall_ms = 0;
    int header_stall_count = 0;
    // A RateLimit header on the injected failures (the Hub's `"api";r=0;t=N`).
    std::string ratelimit;
    // The CDN's whole bandwidth, shared by all its connections (0 = unlimited): a site's
    // upstream link.
    std::int64_t cdn_total_bps = 0;
  };

  FaultServer();
  ~FaultServer();
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  std::string url() const;  // hub base URL, for HF_ENDPOINT
  std::string cdn_url() const;

  // A repo with one commit on `main`. LFS files redirect to the CDN.
  void add_file(const std::string& repo, const std::string& path, const std::string& content, bool lfs = false);
  std::string commit_of(const std::string& repo);
  // Moves `main` to a new commit (keeps the files).
  void bump_commit(const std::string& repo);
  void add_rename(const std::string& old_repo, const std::string& new_repo);
  void set_gated(const std::string& repo);
  void set_private(const std::string& repo, const std::string& token);
  // Lets `token` read a gated or private repo (as set_private's token does).
  void grant(const std::string& repo, const std::string& token);
  // Marks LFS files as the Hub marks Xet-backed ones: X-Xet-Hash and Link rel="xet-auth" /
  // rel="xet-reconstruction-info" on their resolve redirects, xetHash in tree and
  // paths-info entries, xetEnabled in repo info; /api/models/{repo}/xet-read-token/{rev} answers.
  void set_xet(bool on);

  void set_faults(const Faults& faults);
  // Tree listing page size (the Hub uses 1000).
  void set_page_size(std::size_t n);
  std::vector<LoggedRequest> log() const;
  void clear_log();
  // Requests whose method is `method` and target contains `needle` (server "" = both).
  std::size_t count(const std::string& method, const std::string& needle, const std::string& server = "") const;
  std::uint64_t body_bytes_sent() const { return bytes_sent_.load(); }
  // Body bytes the CDN listener sent (LFS content), and when it sent its last one.
  std::uint64_t cdn_bytes_sent() const { return cdn_bytes_sent_.load(); }
  std::chrono::steady_clock::time_point last_cdn_byte() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> cdn_bytes_sent_{0};
  std::atomic<std::int64_t> last_cdn_byte_ns_{0};
};

// Random-looking but deterministic bytes.
std::string test_bytes(std::size_t n, unsigned seed);

}  // namespace hubcache::test
