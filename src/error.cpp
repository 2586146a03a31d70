#include "hubcache/error.hpp"

namespace hubcache {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::internal: return "internal";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::not_cached: return "not_cached";
    case ErrorCode::repo_not_found: return "repo_not_found";
    case ErrorCode::gated: return "gated";
    case ErrorCode::revision_not_found: return "revision_not_found";
    case ErrorCode::entry_not_found: return "entry_not_found";
    case ErrorCode::integrity: return "integrity";
    case ErrorCode::network: return "network";
    case ErrorCode::disk_full: return "disk_full";
    case ErrorCode::io: return "io";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::http: return "http";
  }
  return "internal";
}

}  // namespace hubcache
