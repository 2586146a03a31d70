// URL building and quoting (src/layout/naming): quote/unquote round trips, and a resolve URL
// built from validated names that libcurl parses back to the same host, path and nothing else
// (a file name cannot add a query, a fragment, another host or a dot segment).
#include <curl/curl.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "fuzz_support.hpp"
#include "layout/naming.hpp"

using namespace hubcache;
using fuzz::printable;

namespace {

bool unreserved(unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~'; }
bool upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

void check_quote(const std::string& text, const std::string& safe) {
  const std::string q = layout::quote(text, safe);
  for (std::size_t i = 0; i < q.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(q[i]);
    if (c == '%' && safe.find('%') == std::string::npos) {
      FUZZ_CHECK(i + 2 < q.size() && upper_hex(q[i + 1]) && upper_hex(q[i + 2]), printable(q));
      i += 2;
      continue;
    }
    FUZZ_CHECK(c < 0x80 && (unreserved(c) || safe.find(static_cast<char>(c)) != std::string::npos),
               "quote kept " + printable(std::string(1, static_cast<char>(c))) + " of " + printable(text));
  }
  if (safe.find('%') == std::string::npos)
    FUZZ_CHECK(layout::unquote(q) == text, "round trip of " + printable(text) + " safe " + printable(safe));
  FUZZ_CHECK(layout::unquote(text).size() <= text.size(), printable(text));
}

struct CurlUrl {
  CURLU* h = curl_url();
  ~CurlUrl() { curl_url_cleanup(h); }
  std::string get(CURLUPart part) const {
    char* v = nullptr;
    if (curl_url_get(h, part, &v, 0) != CURLUE_OK || !v) return "<none>";
    std::string out(v);
    curl_free(v);
    return out;
  }
};

void check_resolve_url(RepoType type, const std::string& repo, const std::string& rev, const std::string& file) {
  if (!fuzz::only_hubcache_errors("validate", [&] {
        layout::validate_repo_id(repo);
        layout::validate_revision(rev);
        layout::validate_filename(file);
      }))
    return;
  const std::string url = layout::resolve_url("https://hub.example:8443/mirror//", type, repo, rev, file);
  CurlUrl u;
  FUZZ_CHECK(curl_url_set(u.h, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK, "curl refuses " + printable(url));
  FUZZ_CHECK(u.get(CURLUPART_HOST) == "hub.example" && u.get(CURLUPART_PORT) == "8443", printable(url));
  FUZZ_CHECK(u.get(CURLUPART_QUERY) == "<none>" && u.get(CURLUPART_FRAGMENT) == "<none>", printable(url));
  const std::string path = u.get(CURLUPART_PATH);
  const std::string want = "/mirror/" + std::string(layout::url_prefix(type)) + repo + "/resolve/";
  FUZZ_CHECK(path.rfind(want, 0) == 0, "path " + printable(path) + " of " + printable(url));
  std::string rest = path.substr(want.size());
  auto slash = rest.find('/');
  FUZZ_CHECK(slash != std::string::npos, printable(path));
  FUZZ_CHECK(layout::unquote(rest.substr(0, slash)) == rev, "revision lost in " + printable(url));
  FUZZ_CHECK(layout::unquote(rest.substr(slash + 1)) == file, "file name lost in " + printable(url));

  const std::string api = layout::api_repo_url("http://127.0.0.1:1/", type, repo);
  FUZZ_CHECK(api == "http://127.0.0.1:1/api/" + std::string(layout::api_collection(type)) + "/" + repo, printable(api));
}

void check_hf_uri(const std::string& text) {
  std::optional<layout::HfUri> uri;
  if (!fuzz::only_hubcache_errors("parse_hf_uri", [&] { uri = layout::parse_hf_uri(text); })) return;
  if (!uri) {
    FUZZ_CHECK(text.rfind("hf://", 0) != 0, printable(text));
    return;
  }
  FUZZ_CHECK(fuzz::only_hubcache_errors("validate_repo_id", [&] { layout::validate_repo_id(uri->repo_id); }),
             "hf:// URI with an invalid repo id " + printable(text));
  FUZZ_CHECK(!uri->revision || !uri->revision->empty(), printable(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto type = static_cast<RepoType>(in.ConsumeIntegralInRange(0, 2));
  const std::string safe = in.ConsumeRandomLengthString(4);
  const std::string repo = in.ConsumeRandomLengthString(64);
  const std::string rev = in.ConsumeRandomLengthString(64);
  const std::string file = in.ConsumeRemainingBytesAsString();
  check_quote(file, safe);
  check_quote(file, "");
  check_quote(file, "/");
  check_resolve_url(type, repo, rev, file);
  check_hf_uri(file);
  check_hf_uri("hf://" + repo + (rev.empty() ? "" : "@" + rev) + "/" + file);
  return 0;
}
