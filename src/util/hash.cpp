#include "util/hash.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"

namespace hubcache::util {

bool hash_kind_for_etag(std::string_view etag, HashKind& kind) {
  if (!layout::is_hex(etag)) return false;
  if (etag.size() == 64) {
    kind = HashKind::sha256;
    return true;
  }
  if (etag.size() == 40) {
    kind = HashKind::git_blob_sha1;
    return true;
  }
  return false;
}

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(HashKind kind, std::uint64_t content_size) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  const EVP_MD* md = kind == HashKind::sha256 ? EVP_sha256() : EVP_sha1();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, md, nullptr) != 1)
    throw Error(ErrorCode::internal, "OpenSSL digest initialisation failed");
  if (kind == HashKind::git_blob_sha1) {
    std::string header = "blob " + std::to_string(content_size);
    header.push_back('\0');
    update(header.data(), header.size());
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, std::size_t size) {
  if (size) EVP_DigestUpdate(impl_->ctx, data, size);
}

std::string Hasher::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Hasher h(HashKind::sha256, data.size());
  h.update(data);
  return h.hex_digest();
}

std::string git_blob_sha1_hex(std::string_view data) {
  Hasher h(HashKind::git_blob_sha1, data.size());
  h.update(data);
  return h.hex_digest();
}

std::string hash_file(const std::filesystem::path& file, HashKind kind) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::io, "Cannot read " + file.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(ErrorCode::io, "Cannot stat " + file.string() + ": " + ec.message());
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher h(kind, size);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorCode::io, "Cannot read " + file.string() + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  return h.hex_digest();
}

std::string hmac_sha256_hex(std::string_view key, std::string_view text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

}  // namespace hubcache::util
