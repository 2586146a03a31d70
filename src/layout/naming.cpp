#include "layout/naming.hpp"

#include <cctype>

#include "hubcache/error.hpp"

namespace hubcache {

std::string_view to_string(RepoType type) {
  switch (type) {
    case RepoType::model: return "model";
    case RepoType::dataset: return "dataset";
    case RepoType::space: return "space";
  }
  return "model";
}

std::optional<RepoType> parse_repo_type(std::string_view text) {
  if (text == "model" || text == "models") return RepoType::model;
  if (text == "dataset" || text == "datasets") return RepoType::dataset;
  if (text == "space" || text == "spaces") return RepoType::space;
  return std::nullopt;
}

namespace layout {

std::string repo_folder_name(std::string_view repo_id, RepoType type) {
  std::string out(to_string(type));
  out += "s--";
  for (char c : repo_id) {
    if (c == '/')
      out += "--";
    else
      out += c;
  }
  return out;
}

std::optional<std::pair<RepoType, std::string>> parse_repo_folder_name(std::string_view folder) {
  auto sep = folder.find("--");
  if (sep == std::string_view::npos) return std::nullopt;
  auto type = parse_repo_type(folder.substr(0, sep));
  if (!type || folder.substr(0, sep).back() != 's') return std::nullopt;
  std::string id;
  std::string_view rest = folder.substr(sep + 2);
  if (rest.empty()) return std::nullopt;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest.compare(i, 2, "--") == 0) {
      id += '/';
      ++i;
    } else {
      id += rest[i];
    }
  }
  return std::make_pair(*type, id);
}

std::string_view url_prefix(RepoType type) {
  switch (type) {
    case RepoType::model: return "";
    case RepoType::dataset: return "datasets/";
    case RepoType::space: return "spaces/";
  }
  return "";
}

std::string_view api_collection(RepoType type) {
  switch (type) {
    case RepoType::model: return "models";
    case RepoType::dataset: return "datasets";
    case RepoType::space: return "spaces";
  }
  return "models";
}

namespace {
bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}
[[noreturn]] void bad(const std::string& msg) { throw Error(ErrorCode::invalid_argument, msg); }
}  // namespace

void validate_repo_id(std::string_view repo_id) {
  const std::string shown(repo_id);
  if (repo_id.empty()) bad("Repo id is empty: expected 'org/name' (for example 'openai-community/gpt2').");
  auto slash = repo_id.find('/');
  if (slash != std::string_view::npos && repo_id.find('/', slash + 1) != std::string_view::npos)
    bad("Invalid repo id '" + shown + "': at most one '/' is allowed ('org/name').");
  auto check_part = [&](std::string_view part, std::size_t max) {
    if (part.empty() || part.size() > max)
      bad("Invalid repo id '" + shown + "': each part must have 1 to 96 characters.");
    for (char c : part)
      if (!is_word_char(c))
        bad("Invalid repo id '" + shown + "': only letters, digits, '-', '_' and '.' are allowed.");
    // Python's \b anchors: the part must start and end with a word character (not '-' or '.').
    auto edge = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    if (!edge(part.front()) || !edge(part.back()))
      bad("Invalid repo id '" + shown + "': a part cannot start or end with '-' or '.'.");
  };
  if (slash != std::string_view::npos) {
    check_part(repo_id.substr(0, slash), 1000);
    check_part(repo_id.substr(slash + 1), 96);
  } else {
    check_part(repo_id, 96);
  }
  if (repo_id.find("--") != std::string_view::npos || repo_id.find("..") != std::string_view::npos)
    bad("Invalid repo id '" + shown + "': '--' and '..' are not allowed.");
  if (repo_id.size() >= 4 && repo_id.substr(repo_id.size() - 4) == ".git")
    bad("Invalid repo id '" + shown + "': it cannot end with '.git'.");
}

void validate_filename(std::string_view filename) {
  const std::string shown(filename);
  if (filename.empty()) bad("File name is empty.");
  if (filename.find('\0') != std::string_view::npos) bad("Invalid file name: it contains a NUL byte.");
  if (filename.find('\\') != std::string_view::npos)
    bad("Invalid file name '" + shown + "': backslashes are not allowed (use '/').");
  if (filename.front() == '/')
    bad("Invalid file name '" + shown + "': absolute paths are not allowed; give a path inside the repo.");
  if (filename.size() >= 2 && std::isalpha(static_cast<unsigned char>(filename[0])) && filename[1] == ':')
    bad("Invalid file name '" + shown + "': drive paths are not allowed.");
  std::size_t start = 0;
  while (start <= filename.size()) {
    auto end = filename.find('/', start);
    if (end == std::string_view::npos) end = filename.size();
    auto seg = filename.substr(start, end - start);
    if (seg.empty() && end != filename.size())
      bad("Invalid file name '" + shown + "': empty path segment.");
    if (seg.empty() && end == filename.size() && start != 0)
      bad("Invalid file name '" + shown + "': it names a folder (ends with '/').");
    if (seg == "..") bad("Invalid file name '" + shown + "': '..' would escape the repo folder.");
    if (seg == ".") bad("Invalid file name '" + shown + "': '.' segments are not allowed.");
    start = end + 1;
  }
}

void validate_revision(std::string_view revision) {
  const std::string shown(revision);
  if (revision.empty()) bad("Revision is empty.");
  if (revision.find('\0') != std::string_view::npos || revision.find('\\') != std::string_view::npos ||
      revision.front() == '/' || revision.back() == '/')
    bad("Invalid revision '" + shown + "'.");
  std::size_t start = 0;
  while (start <= revision.size()) {
    auto end = revision.find('/', start);
    if (end == std::string_view::npos) end = revision.size();
    auto seg = revision.substr(start, end - start);
    if (seg.empty() || seg == ".." || seg == ".")
      bad("Invalid revision '" + shown + "': it cannot contain empty, '.' or '..' segments.");
    start = end + 1;
  }
}

bool is_hex(std::string_view text) {
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return !text.empty();
}

bool is_commit_hash(std::string_view revision) { return revision.size() == 40 && is_hex(revision); }

std::string quote(std::string_view text, std::string_view safe) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    bool keep = std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' ||
                safe.find(static_cast<char>(c)) != std::string_view::npos;
    if (keep && c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string unquote(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && val(text[i + 1]) >= 0 && val(text[i + 2]) >= 0) {
      out += static_cast<char>(val(text[i + 1]) * 16 + val(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string resolve_url(std::string_view endpoint, RepoType type, std::string_view repo_id,
                        std::string_view revision, std::string_view filename) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += '/';
  url += url_prefix(type);
  url += repo_id;
  url += "/resolve/";
  url += quote(revision, "");
  url += '/';
  url += quote(filename, "/");
  return url;
}

std::string api_repo_url(std::string_view endpoint, RepoType type, std::string_view repo_id) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/api/";
  url += api_collection(type);
  url += '/';
  url += repo_id;
  return url;
}

std::string normalize_etag(std::string_view etag) {
  // Python: etag.lstrip("W/").strip('"'): lstrip removes any leading run of 'W' and '/'.
  std::size_t b = 0;
  while (b < etag.size() && (etag[b] == 'W' || etag[b] == '/')) ++b;
  etag.remove_prefix(b);
  while (!etag.empty() && etag.front() == '"') etag.remove_prefix(1);
  while (!etag.empty() && etag.back() == '"') etag.remove_suffix(1);
  return std::string(etag);
}

std::filesystem::path relative_link_target(const std::filesystem::path& pointer,
                                           const std::filesystem::path& blob) {
  return blob.lexically_normal().lexically_relative(pointer.parent_path().lexically_normal());
}

std::optional<HfUri> parse_hf_uri(std::string_view text) {
  if (text.rfind("hf://", 0) != 0) return std::nullopt;
  std::string_view rest = text.substr(5);
  HfUri uri;
  for (auto [prefix, type] : {std::pair{"models/", RepoType::model}, std::pair{"datasets/", RepoType::dataset},
                              std::pair{"spaces/", RepoType::space}}) {
    std::string_view p(prefix);
    if (rest.rfind(p, 0) == 0) {
      uri.type = type;
      rest.remove_prefix(p.size());
      break;
    }
  }
  if (rest.rfind("buckets/", 0) == 0) bad("hf:// bucket URIs are not supported: '" + std::string(text) + "'.");
  // org/name[@rev][/path]
  auto first = rest.find('/');
  if (first == std::string_view::npos) bad("Invalid hf:// URI '" + std::string(text) + "': expected hf://org/name.");
  auto second = rest.find('/', first + 1);
  std::string_view repo_part = rest.substr(0, second);
  if (second != std::string_view::npos) uri.path = std::string(rest.substr(second + 1));
  if (auto at = repo_part.find('@'); at != std::string_view::npos) {
    uri.revision = unquote(repo_part.substr(at + 1));
    repo_part = repo_part.substr(0, at);
    if (uri.revision->empty()) bad("Invalid hf:// URI '" + std::string(text) + "': empty revision after '@'.");
  }
  uri.repo_id = std::string(repo_part);
  validate_repo_id(uri.repo_id);
  return uri;
}

}  // namespace layout
}  // namespace hubcache
