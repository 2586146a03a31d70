// Xet is never passed on. The Hub marks most large files for Xet (an `X-Xet-Hash`
// header and `Link rel="xet-auth"` / `rel="xet-reconstruction-info"` on resolve,
// `xetHash` in tree and paths-info entries); a client that sees them (Python with
// hf_xet, the default install) fetches from the Hub's Xet storage directly, which
// bypasses the mirror and which an air-gapped client cannot reach. The mirror
// fetches through the plain LFS URL and strips every Xet signal, so its clients
// download over plain HTTP from it.
#pragma once

#include <string>
#include <string_view>

namespace hubcache::mirror {

// `json` with every "xetHash" member removed (at any depth) and "xetEnabled" set to
// false where present. Text that is not JSON is returned unchanged.
std::string strip_xet_json(std::string_view json);

// Whether a response header is a Xet signal that must not reach a client.
bool is_xet_header(std::string_view name, std::string_view value);

}  // namespace hubcache::mirror
