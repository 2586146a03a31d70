#include "hub/hub_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "http/headers.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"

namespace hubcache::hub {

Context make_context(std::string_view repo_id, std::string_view file, const Options& options) {
  const Settings& s = Settings::get();
  Context ctx;
  ctx.endpoint = options.endpoint.value_or(s.endpoint);
  while (!ctx.endpoint.empty() && ctx.endpoint.back() == '/') ctx.endpoint.pop_back();
  if (options.token)
    ctx.token = options.token->empty() ? std::nullopt : options.token;
  else if (!s.disable_implicit_token)
    ctx.token = s.token;
  ctx.type = options.repo_type;
  ctx.repo_id = std::string(repo_id);
  ctx.revision = options.revision;
  ctx.file = std::string(file);
  ctx.cancel = options.cancel;
  ctx.etag_timeout = s.etag_timeout;
  ctx.download_timeout = s.download_timeout;
  return ctx;
}

bool on_endpoint(const Context& ctx, std::string_view url) {
  return http::origin_of(url) == http::origin_of(ctx.endpoint);
}

std::vector<std::pair<std::string, std::string>> request_headers(const Context& ctx, std::string_view url,
                                                                 bool allow_auth) {
  const Settings& s = Settings::get();
  std::string ua = std::string("hubcache/") + HUBCACHE_VERSION + "; hf_hub/compat; cpp";
  if (!s.user_agent_origin.empty()) ua += "; origin/" + s.user_agent_origin;
  std::vector<std::pair<std::string, std::string>> h{{"User-Agent", ua}, {"Accept-Encoding", "identity"}};
  if (ctx.token && allow_auth && on_endpoint(ctx, url)) h.emplace_back("Authorization", "Bearer " + *ctx.token);
  return h;
}

namespace {

std::string what_repo(const Context& ctx) { return std::string(to_string(ctx.type)) + " '" + ctx.repo_id + "'"; }

std::string request_id_suffix(const http::Response& r) {
  auto id = r.headers.get("X-Request-Id");
  return id ? " (request id " + *id + ")" : "";
}

std::string server_message(const http::Response& r) {
  if (auto m = r.headers.get("X-Error-Message")) return *m;
  std::string body = r.body.substr(0, 300);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

}  // namespace

void throw_error_from_response(const http::Response& r, const Context& ctx) {
  const auto code = r.headers.get("X-Error-Code").value_or("");
  const auto message = r.headers.get("X-Error-Message").value_or("");
  const std::string rid = request_id_suffix(r);
  const std::string page = ctx.endpoint + "/" + std::string(layout::url_prefix(ctx.type)) + ctx.repo_id;
  if (code == "RevisionNotFound")
    throw Error(ErrorCode::revision_not_found, "Revision '" + ctx.revision + "' not found in " + what_repo(ctx) +
                                                   ". Check the branch, tag or commit name" + rid + ".");
  if (code == "EntryNotFound")
    throw EntryNotFoundError(
        "'" + ctx.file + "' does not exist in " + what_repo(ctx) + " at revision '" + ctx.revision + "'" + rid + ".",
        r.headers.get("X-Repo-Commit").value_or(""));
  if (code == "GatedRepo")
    throw Error(ErrorCode::gated, what_repo(ctx) + " is gated: request access on " + page +
                                      (ctx.token ? ", then retry with a token that has been granted access"
                                                 : ", then set HF_TOKEN (or pass --token) to a token with access") +
                                      rid + ".");
  if (message == "Access to this resource is disabled.")
    throw Error(ErrorCode::http, what_repo(ctx) + " has been disabled on the Hub" + rid + ".");
  if (r.status == 401 && ctx.token && message == "Invalid credentials in Authorization header")
    throw Error(ErrorCode::repo_not_found, "The Hub rejected your token for " + what_repo(ctx) +
                                               " (invalid or expired). Check HF_TOKEN or the token file" + rid + ".");
  if (code == "RepoNotFound" || r.status == 401)
    throw Error(ErrorCode::repo_not_found,
                what_repo(ctx) + " not found on " + ctx.endpoint + ", or it is private" +
                    (ctx.token ? " and your token has no access to it" : ": if it is private, set HF_TOKEN") +
                    ". Check the repo id and --repo-type" + rid + ".");
  if (r.status == 403) {
    // The server's own reason first (a mirror's --deny, a disabled repo...); the token
    // hint only when it gave none, as a refused token is then the likely cause.
    const std::string reason = server_message(r);
    throw Error(ErrorCode::http, "403 Forbidden from " + ctx.endpoint + " for " + what_repo(ctx) + ": " +
                                     (reason.empty() ? "make sure your token has the permissions needed." : reason) +
                                     rid);
  }
  if (r.status == 429)
    throw Error(ErrorCode::network, "Rate limited by " + ctx.endpoint + " (429) for " + what_repo(ctx) +
                                        " after retries. Wait and retry, or set HF_TOKEN for higher limits" + rid +
                                        ".");
  if (r.status >= 500 || r.status == 408)
    throw Error(ErrorCode::network, "The server " + ctx.endpoint + " failed with HTTP " + std::to_string(r.status) +
                                        " for " + what_repo(ctx) + " after retries: " + server_message(r) + rid);
  if (r.status == 404)
    throw Error(ErrorCode::repo_not_found,
                what_repo(ctx) + " not found on " + ctx.endpoint + " (HTTP 404). " + server_message(r) + rid);
  throw Error(ErrorCode::http, "HTTP " + std::to_string(r.status) + " from " + ctx.endpoint + " for " + what_repo(ctx) +
                                   ": " + server_message(r) + rid);
}

bool retryable_status(long status) { return status == 408 || status == 429 || status >= 500; }

std::chrono::milliseconds retry_delay(int attempt, const http::Response* response) {
  const Settings& s = Settings::get();
  long ms = static_cast<long>(s.retry_base_ms) << std::min(attempt, 3);
  if (response) {
    std::optional<std::int64_t> secs;
    // Retry-After is delta-seconds or an HTTP-date (RFC 9110 §10.2.3): both count.
    if (auto ra = response->headers.get("Retry-After")) {
      secs = http::parse_retry_after(*ra, std::time(nullptr));
      if (secs) secs = std::min<std::int64_t>(*secs, 60);
    } else if (auto rl = response->headers.get("RateLimit")) {
      secs = http::parse_ratelimit_reset(*rl);
      if (secs) secs = std::min<std::int64_t>(*secs + 1, 61);
    }
    if (secs) ms = static_cast<long>(*secs * 1000);
    // Tests and ops can shrink every wait with HUBCACHE_RETRY_BASE_MS.
    if (s.retry_base_ms < 1000) ms = std::min<long>(ms, s.retry_base_ms * 4L);
  }
  return std::chrono::milliseconds(ms);
}

void backoff(int attempt, const http::Response* response, const std::atomic<bool>* cancel) {
  const auto wait = retry_delay(attempt, response);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cancel && cancel->load()) throw Error(ErrorCode::cancelled, "Cancelled.");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  }
}

namespace {

// Runs one request with relative-redirect following and bounded retries. `url` is
// updated to the last URL asked (after relative redirects).
http::Response request_with_retries(http::Client& client, const Context& ctx, const std::string& method,
                                    std::string& url, double timeout, int max_retries, bool follow_relative_only) {
  int redirects = 0;
  for (int attempt = 0;; ++attempt) {
    http::Request req;
    req.method = method;
    req.url = url;
    req.headers = request_headers(ctx, url);
    req.connect_timeout = timeout;
    req.read_timeout = timeout;
    req.cancel = ctx.cancel;
    http::Response r;
    try {
      r = client.perform(req);
    } catch (const http::TransportError& e) {
      if (e.cancelled()) throw Error(ErrorCode::cancelled, "Cancelled.");
      if (!e.retryable() || attempt >= max_retries)
        throw UnreachableError("Cannot reach the Hub at " + ctx.endpoint + " for " + what_repo(ctx) + ": " + e.what() +
                                   ". Check your connection, proxy settings and HF_ENDPOINT, or set "
                                   "HF_HUB_OFFLINE=1 to use the cache only.",
                               ctx.endpoint, e.what(), e.retryable());
      backoff(attempt, nullptr, ctx.cancel);
      continue;
    }
    if (r.status >= 300 && r.status < 400) {
      auto location = r.headers.get("Location");
      if (location && (!follow_relative_only || http::is_relative_location(*location))) {
        if (++redirects > 10)
          throw Error(ErrorCode::network, "Too many redirects from " + ctx.endpoint + " for " + what_repo(ctx) + ".");
        url = http::resolve_location(url, *location);
        --attempt;  // a redirect is not a failed try
        continue;
      }
      return r;  // absolute redirect (CDN): its headers are the answer
    }
    if (retryable_status(r.status) && attempt < max_retries) {
      backoff(attempt, &r, ctx.cancel);
      continue;
    }
    return r;
  }
}

}  // namespace

FileMetadata parse_file_metadata(const http::Headers& headers, bool redirect, const Context& ctx) {
  FileMetadata m;
  auto commit = headers.get("X-Repo-Commit");
  auto etag = headers.get("X-Linked-Etag");
  if (!etag) etag = headers.get("ETag");
  auto size = headers.get("X-Linked-Size");
  if (!size && !redirect) size = headers.get("Content-Length");
  auto fail = [&](const std::string& what) {
    return Error(ErrorCode::http, "The server " + ctx.endpoint + " answered for '" + ctx.file + "' of " +
                                      what_repo(ctx) + " without " + what +
                                      ": it does not look like a Hugging Face Hub (a proxy may strip headers).");
  };
  if (!commit || !layout::is_commit_hash(*commit)) throw fail("a valid X-Repo-Commit header");
  if (!etag) throw fail("an ETag");
  if (!size) throw fail("a size (X-Linked-Size or Content-Length)");
  m.commit = *commit;
  m.etag = layout::normalize_etag(*etag);
  // The etag becomes a file name in blobs/: refuse anything that could escape it, and control
  // characters (a NUL cuts the path short; CR and the like end up in listings and logs).
  const bool control = std::any_of(m.etag.begin(), m.etag.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  if (m.etag.empty() || m.etag.find('/') != std::string::npos || m.etag.find('\\') != std::string::npos ||
      m.etag.front() == '.' || m.etag.size() > 200 || control)
    throw Error(ErrorCode::integrity, "The server sent an unusable ETag for '" + ctx.file + "' of " + what_repo(ctx) + ".");
  // Decimal digits and nothing else: strtoull took "-1" (wrapping around) and "519\r\x1c...".
  auto parsed = http::parse_u64(*size);
  if (!parsed) throw fail("a numeric size");
  m.size = *parsed;
  return m;
}

FileMetadata get_file_metadata(http::Client& client, const Context& ctx, int max_retries) {
  std::string url = layout::resolve_url(ctx.endpoint, ctx.type, ctx.repo_id, ctx.revision, ctx.file);
  http::Response r = request_with_retries(client, ctx, "HEAD", url, ctx.etag_timeout, max_retries, true);
  const bool redirect = r.status >= 300 && r.status < 400;
  if (!(r.status >= 200 && r.status < 300) && !redirect) throw_error_from_response(r, ctx);

  FileMetadata m = parse_file_metadata(r.headers, redirect, ctx);
  auto location = r.headers.get("Location");
  m.location = location ? http::resolve_location(url, *location) : url;
  return m;
}

http::Response get_json(http::Client& client, const Context& ctx, const std::string& api_url, int max_retries) {
  std::string url = api_url;
  http::Response r = request_with_retries(client, ctx, "GET", url, ctx.etag_timeout, max_retries, true);
  if (r.status < 200 || r.status >= 300) throw_error_from_response(r, ctx);
  return r;
}

}  // namespace hubcache::hub
