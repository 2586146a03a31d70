// `Link` header pagination (hub::next_link, RFC 8288). Two modes, chosen by byte 0:
//  - raw bytes: never crash; a result is the exact content of one <...> of the header;
//  - a header generated from random links and parameters in RFC 8288 syntax (quoted or bare
//    rel values, several relation types in one rel, other parameters whose quoted values
//    hold ',', ';', '<', '>'): the result is the first link whose rel has the type "next".
#include <fuzzer/FuzzedDataProvider.h>

#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "hub/repo_api.hpp"

using namespace hubcache;
using fuzz::printable;

namespace {

std::string pick(FuzzedDataProvider& in, const std::vector<std::string>& options) {
  return options[in.ConsumeIntegralInRange<std::size_t>(0, options.size() - 1)];
}

// Characters of a URI reference (RFC 3986), so never '<', '>', '"' or blanks.
std::string uri(FuzzedDataProvider& in) {
  static const std::string chars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$&'()*+,;=%";
  std::string out = pick(in, {"https://hub.example/api/models/o/n/tree/main?cursor=", "/api/tree?p=", ""});
  const int n = in.ConsumeIntegralInRange(0, 24);
  for (int i = 0; i < n; ++i) out += chars[in.ConsumeIntegralInRange<std::size_t>(0, chars.size() - 1)];
  return out;
}

std::string quoted(FuzzedDataProvider& in) {
  std::string body = pick(in, {"", "a, b", "x; y", "<z>", "next", "page 2", "rel=\\\"next\\\"", "\\\"q\\\""});
  return "\"" + body + "\"";
}

struct Generated {
  std::string header;
  std::optional<std::string> next;
};

Generated generate(FuzzedDataProvider& in) {
  Generated g;
  const int links = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < links; ++i) {
    const std::string target = uri(in);
    std::string entry = "<" + target + ">";
    bool is_next = false, seen_rel = false;
    const int params = in.ConsumeIntegralInRange(0, 3);
    for (int p = 0; p < params; ++p) {
      entry += pick(in, {";", " ;", "; ", " ; "});
      if (in.ConsumeBool()) {
        // A rel: one or more relation types, any case.
        std::vector<std::string> types;
        const int k = in.ConsumeIntegralInRange(1, 3);
        for (int t = 0; t < k; ++t) {
          std::string type = pick(in, {"next", "prev", "last", "first", "next-archive", "nextpage", "xet-auth"});
          if (in.ConsumeBool()) type[0] = static_cast<char>(std::toupper(type[0]));
          types.push_back(type);
        }
        std::string value;
        for (std::size_t t = 0; t < types.size(); ++t) value += (t ? " " : "") + types[t];
        const std::string name = pick(in, {"rel", "REL", "Rel"});
        if (types.size() == 1 && in.ConsumeBool())
          entry += name + "=" + value;
        else
          entry += name + pick(in, {"=", " = "}) + "\"" + value + "\"";
        // RFC 8288 §3.3: only the first rel parameter of a link counts; types ignore case.
        if (!seen_rel)
          for (const auto& t : types) is_next = is_next || t == "next" || t == "Next";
        seen_rel = true;
      } else {
        entry += pick(in, {"title", "type", "anchor", "hreflang"}) + "=" + quoted(in);
      }
    }
    if (is_next && !g.next) g.next = target;
    g.header += (i ? pick(in, {",", ", ", " ,  "}) : "") + entry;
  }
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    const std::string header(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::optional<std::string> next;
    if (!fuzz::only_hubcache_errors("next_link", [&] { next = hub::next_link(header); })) return 0;
    if (next) FUZZ_CHECK(header.find("<" + *next + ">") != std::string::npos, printable(header));
    return 0;
  }
  FuzzedDataProvider in(data + 1, size - 1);
  const Generated g = generate(in);
  std::optional<std::string> next;
  FUZZ_CHECK(fuzz::only_hubcache_errors("next_link", [&] { next = hub::next_link(g.header); }), printable(g.header));
  FUZZ_CHECK(next == g.next, printable(g.header) + " gave " + (next ? printable(*next) : "none") + ", expected " +
                                 (g.next ? printable(*g.next) : "none"));
  return 0;
}
