// Parses one HTTP/1.1 request at a time from the bytes a connection received, under
// the engine's Limits. Boost.Beast's parser does the grammar (request line, fields,
// Content-Length and chunked bodies); it lives in request_parser.cpp alone, so its
// templates are compiled once.
#pragma once

#include <cstddef>
#include <memory>

#include "serve/engine.hpp"

namespace hubcache::serve {

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  enum class Result { need_more, done, error };
  // Parses from data[0, n), which holds every byte of this request received so far
  // that an earlier call did not consume. Sets `consumed` to the bytes taken (the rest
  // belongs to the next call, or to the next request once `done`).
  Result feed(const char* data, std::size_t n, std::size_t& consumed);

  Request& request() { return request_; }
  // On error: the status to answer (400, 413, 414, 431, 501) and a reason.
  int error_status() const { return error_status_; }
  const char* error_reason() const { return error_reason_; }
  // The header is complete, the body not yet, and the client asked for 100-continue.
  bool wants_continue() const;
  // Whether any byte of this request arrived.
  bool started() const { return started_; }

  struct Beast;

 private:
  bool check_lines(const char* data, std::size_t n);
  Result fail(int status, const char* reason);

  const Limits& limits_;
  Request request_;
  std::unique_ptr<Beast> beast_;
  // The line scan that enforces the line, field and total limits before Beast buffers
  // a header: bytes scanned, where the current line began, lines seen.
  std::size_t scanned_ = 0, line_begin_ = 0, lines_ = 0;
  // Bytes of this header Beast consumed in earlier calls (the request line, whole fields).
  std::size_t header_consumed_ = 0;
  bool header_scanned_ = false, started_ = false;
  int error_status_ = 0;
  const char* error_reason_ = "";
};

}  // namespace hubcache::serve
