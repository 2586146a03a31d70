#include "serve/request_parser.hpp"

// clang-format off
// Boost 1.74's Asio/Beast headers use std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <algorithm>
#include <cstring>
#include <utility>

namespace hubcache::serve {

namespace http = boost::beast::http;

struct RequestParser::Beast final : http::basic_parser<true> {
  Request& req;
  const Limits& limits;
  bool body_too_large = false;
  Beast(Request& r, const Limits& l) : req(r), limits(l) {}

  void on_request_impl(http::verb, boost::beast::string_view method, boost::beast::string_view target, int version,
                       boost::beast::error_code&) override {
    req.method.assign(method.data(), method.size());
    req.target.assign(target.data(), target.size());
    req.version = version;
  }
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value,
                     boost::beast::error_code&) override {
    req.headers.push_back({std::string(name.data(), name.size()), std::string(value.data(), value.size())});
  }
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) override {
    if (length && *length > limits.body) {
      body_too_large = true;
      ec = http::error::body_limit;
      return;
    }
    if (length) req.body.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override {
    if (req.body.size() + body.size() > limits.body) {
      body_too_large = true;
      ec = http::error::body_limit;
      return 0;
    }
    req.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::beast::error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(boost::beast::error_code&) override {}
};

RequestParser::RequestParser(const Limits& limits)
    : limits_(limits), beast_(std::make_unique<Beast>(request_, limits)) {
  // The line scan below enforces the real limits; Beast's own is a backstop.
  beast_->header_limit(static_cast<std::uint32_t>(limits.header_total + 1024));
  beast_->body_limit(limits.body);
  beast_->eager(true);
}

RequestParser::~RequestParser() = default;

RequestParser::Result RequestParser::fail(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  return Result::error;
}

bool RequestParser::wants_continue() const {
  if (!beast_->is_header_done() || beast_->is_done()) return false;
  for (const auto& h : request_.headers)
    if (h.name.size() == 6 && ::strncasecmp(h.name.c_str(), "expect", 6) == 0)
      return ::strncasecmp(h.value.c_str(), "100-continue", 12) == 0;
  return false;
}

// Beast only looks at a header once it holds all of it, so an endless line would be
// buffered up to the total limit before anything happened. This scan of the new bytes
// (memchr for line ends) answers as soon as one line is too long instead, and counts
// the fields, which Beast does not limit.
bool RequestParser::check_lines(const char* data, std::size_t n) {
  while (!header_scanned_ && scanned_ < n) {
    const void* nl = std::memchr(data + scanned_, '\n', n - scanned_);
    if (!nl) {
      scanned_ = n;
      break;
    }
    const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - data);
    const std::size_t length = end - line_begin_;  // without the '\n'
    const bool empty = length == 0 || (length == 1 && data[line_begin_] == '\r');
    if (lines_ == 0 && empty) {
      // Blank lines before a request line are allowed (RFC 9112 2.2): skip them.
    } else if (empty) {
      // The whole header is here: its total counts the fields Beast already consumed
      // in earlier calls too (its own limit is only a backstop).
      if (header_consumed_ + end + 1 > limits_.header_total)
        return fail(431, "Request Header Fields Too Large"), false;
      header_scanned_ = true;
    } else {
      if (lines_ == 0 && length > limits_.request_line) return fail(414, "URI Too Long"), false;
      if (lines_ > 0 && length > limits_.header_line) return fail(431, "Request Header Fields Too Large"), false;
      if (++lines_ > limits_.header_fields + 1) return fail(431, "Request Header Fields Too Large"), false;
    }
    line_begin_ = end + 1;
    scanned_ = end + 1;
  }
  if (!header_scanned_) {
    const std::size_t open = n - line_begin_;  // the line still coming
    if (lines_ == 0 && open > limits_.request_line) return fail(414, "URI Too Long"), false;
    if (lines_ > 0 && open > limits_.header_line) return fail(431, "Request Header Fields Too Large"), false;
    if (header_consumed_ + n > limits_.header_total) return fail(431, "Request Header Fields Too Large"), false;
  }
  return true;
}

RequestParser::Result RequestParser::feed(const char* data, std::size_t n, std::size_t& consumed) {
  consumed = 0;
  if (n > 0) started_ = true;
  if (!header_scanned_ && !check_lines(data, n)) return Result::error;
  // The scan positions count from the start of this request's unconsumed bytes.
  while (consumed < n && !beast_->is_done()) {
    boost::beast::error_code ec;
    const std::size_t used = beast_->put(boost::asio::const_buffer(data + consumed, n - consumed), ec);
    consumed += used;
    if (ec == http::error::need_more) break;
    if (ec) {
      if (beast_->body_too_large) return fail(413, "Payload Too Large");
      if (ec == http::error::header_limit) return fail(431, "Request Header Fields Too Large");
      if (ec == http::error::bad_transfer_encoding) return fail(501, "Not Implemented");
      return fail(400, "Bad Request");
    }
    if (used == 0) break;
  }
  if (beast_->is_header_done() && !header_scanned_) header_scanned_ = true;
  if (!header_scanned_) {
    // Beast consumes the request line and each complete field as they arrive, so the
    // caller drops those bytes: shift the scan positions to the bytes that remain, and
    // remember how many of this header are gone for the total limit. Beast consumes
    // whole lines only, so the line still being scanned is never among them.
    header_consumed_ += consumed;
    scanned_ -= std::min(scanned_, consumed);
    line_begin_ -= std::min(line_begin_, consumed);
  }
  if (beast_->is_done()) {
    request_.start = std::chrono::steady_clock::now();
    return Result::done;
  }
  // Beast keeps no copy of a partial line: the caller holds the bytes and hands them
  // in again with more. After the header, body bytes are consumed as they come.
  if (beast_->is_header_done()) {
    scanned_ = line_begin_ = 0;
  }
  return Result::need_more;
}

}  // namespace hubcache::serve
