// Streaming sha256 / git-blob-sha1 over OpenSSL's libcrypto (SHA-NI when the CPU has it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace hubcache::util {

enum class HashKind { sha256, git_blob_sha1 };

// The hash that names a blob: 64 hex -> sha256 of the content (LFS files);
// 40 hex -> git blob sha1 (regular files). nullopt-like: returns false if neither.
bool hash_kind_for_etag(std::string_view etag, HashKind& kind);

class Hasher {
 public:
  // For git_blob_sha1 the content size must be known up front: the digest
  // covers "blob <size>\0" followed by the content.
  Hasher(HashKind kind, std::uint64_t content_size);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Lowercase hex digest. The hasher cannot be updated afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
// HMAC-SHA256 of `text` under `key`, lowercase hex (signatures of serve's CDN URLs).
std::string hmac_sha256_hex(std::string_view key, std::string_view text);
std::string git_blob_sha1_hex(std::string_view data);
// Hashes a whole file; throws Error(io) when it cannot be read.
std::string hash_file(const std::filesystem::path& file, HashKind kind);

}  // namespace hubcache::util
