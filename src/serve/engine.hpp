// The HTTP/1.1 engine under hubcache serve: a few event-loop threads (Boost.Asio,
// one io_context per thread) own every connection, a request header is parsed by
// Boost.Beast's parser under the limits below, and a bounded pool of threads does
// the blocking disk work. A connection costs a few hundred bytes while idle (no
// buffer is held between requests) and never a thread.
//
// The engine knows nothing of the Hub: a Listener maps a parsed Request to a
// Handler, which answers through a Responder, now or later, from any thread.
//
//   Engine engine(limits, options);
//   engine.listen("hub", "127.0.0.1", 8080, [](Request& req, Responder res) {
//     res.respond(Response::text(200, "hello"));          // or later, from another thread
//   });
//   engine.start();  ...  engine.drain(30s);  // stop accepting, let responses finish
//
// Bodies (Response::body):
//   - MemoryBody:  bytes in memory.
//   - FileBody:    [offset, offset + length) of an open file, sent with sendfile(2)
//                  on a kept-alive connection (small ones are read into the header's
//                  packet instead: one write).
//   - GrowingBody: a range of a file that is still being written. A GrowingFile
//                  (shared by any number of responses) announces the total size; its
//                  producer calls available(n) when bytes [0, n) are on disk, then
//                  complete() or fail(). The response sends what exists and waits
//                  (no thread, no polling) for more; on fail() the connection is
//                  reset so no client mistakes a cut body for a whole one.
//
// The engine adds Content-Length (always; no chunked responses), Date, and
// "Connection: close" when the connection ends after the response; it never sends
// a Keep-Alive header. HEAD gets the headers of the GET, Content-Length included,
// and no body. Ranges are the handler's business (see parse_range below).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hubcache::serve {

// Every limit on what a client may send or hold, in one place (set from the CLI).
struct Limits {
  std::size_t request_line = 8 * 1024;   // longer: 414 URI Too Long
  std::size_t header_line = 8 * 1024;    // one header field line longer: 431
  std::size_t header_total = 64 * 1024;  // the whole header (request line included) larger: 431
  std::size_t header_fields = 100;       // more fields: 431
  std::size_t body = 1 << 20;            // a request body (paths-info) larger: 413
  // From a request's first byte (or the accept, for a connection's first request) to
  // its last: a client trickling its header slower is cut off (slowloris).
  std::chrono::milliseconds header_deadline = std::chrono::seconds(10);
  // A kept-alive connection with no request in progress is closed after this.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // A response making no progress (the client not reading) for this long is cut.
  std::chrono::milliseconds send_timeout = std::chrono::seconds(60);
};

struct EngineOptions {
  int loop_threads = 0;  // event-loop threads; 0: one per core
  int disk_threads = 4;  // the blocking pool (Engine::blocking)
};

struct Header {
  std::string name;  // as sent
  std::string value;
};

struct Request {
  std::string method;  // "GET", "HEAD", "POST"...
  std::string target;  // raw request target, percent-encoding kept ("/a%2Fb?x=1")
  int version = 11;    // 10 or 11
  std::vector<Header> headers;
  std::string body;
  std::string remote;  // peer address, for logs
  std::chrono::steady_clock::time_point start;

  // The first header of that name (case-insensitive), or "" (has_header tells them apart).
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  std::string_view path() const;   // target up to '?'
  std::string_view query() const;  // after '?', or ""
};

// Query-string helpers (application/x-www-form-urlencoded, '+' is a space).
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// A single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against a size. Anything
// else (several ranges, another unit, garbage) is `none`: serve the whole body, as
// the Hub does. `unsatisfiable`: answer 416 with "Content-Range: bytes */size".
struct ByteRange {
  enum Kind { none, satisfiable, unsatisfiable } kind = none;
  std::uint64_t start = 0, end = 0;  // [start, end) when satisfiable
};
ByteRange parse_range(std::string_view header, std::uint64_t size);

// A file that is still being written, shared between its producer and every
// response streaming it. Thread-safe; all calls may come from any thread.
class GrowingFile {
 public:
  explicit GrowingFile(std::uint64_t total) : total_(total) {}
  GrowingFile(const GrowingFile&) = delete;
  GrowingFile& operator=(const GrowingFile&) = delete;

  std::uint64_t total() const { return total_; }
  // Bytes [0, n) are readable through the file descriptor. Never goes back.
  void available(std::uint64_t n);
  // Every byte is there (same as available(total())).
  void complete() { available(total_); }
  // The file will never be whole: every response streaming it is aborted.
  void fail();

  std::uint64_t available_bytes() const { return available_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }

  // For the engine: run `wake` (once) when more than `have` bytes are available or
  // the file failed; at once if that is already so. Returns false when it ran at once.
  bool wait_for_more(std::uint64_t have, std::function<void()> wake);

 private:
  void wake_all();
  const std::uint64_t total_;
  std::atomic<std::uint64_t> available_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::vector<std::function<void()>> waiters_;
};

// An open file descriptor shared by the responses that read it; closed with the last.
class FileHandle {
 public:
  explicit FileHandle(int fd) : fd_(fd) {}
  ~FileHandle();
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  int fd() const { return fd_; }
  // Opens read-only; nullptr (errno set) on failure.
  static std::shared_ptr<FileHandle> open(const std::string& path);

 private:
  int fd_;
};

struct MemoryBody {
  std::string data;
};
struct FileBody {
  std::shared_ptr<FileHandle> file;  // may be null in the answer to a HEAD: only `length` is used
  std::uint64_t offset = 0, length = 0;
};
struct GrowingBody {
  std::shared_ptr<FileHandle> file;
  std::shared_ptr<GrowingFile> state;
  std::uint64_t offset = 0, length = 0;  // within state->total()
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // never Content-Length, Connection or Date: the engine writes those
  std::variant<MemoryBody, FileBody, GrowingBody> body;
  std::string route;   // a name for metrics and logs ("resolve", "tree"...); may stay empty
  bool close = false;  // end the connection after this response

  Response& header(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
    return *this;
  }
  std::uint64_t body_length() const;
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
};

// What the engine records for every finished request (the access log and the
// metrics hook both get it). `complete` is false when the response was cut short
// (client gone, timeout, a GrowingFile that failed, drain deadline).
struct RequestRecord {
  std::string_view listener;
  std::string_view route;
  std::string_view method;
  std::string_view target;
  int status = 0;
  std::uint64_t body_bytes = 0;  // body bytes written to the socket
  std::chrono::microseconds duration{0};
  bool complete = false;
};

class Connection;

// The completion of one request. Copyable; any copy may respond once (later calls
// are ignored), from any thread. Responding after the client went away, or after
// the engine stopped, does nothing. Dropping every copy without responding answers
// 500, so a request never hangs on a forgotten responder.
class Responder {
 public:
  Responder() = default;
  void respond(Response response) const;
  // False once the connection is gone (reset, timed out, drained): the work the
  // response waits for may be cancelled. A client that only closed its sending side
  // (shutdown(SHUT_WR)) is still there and still gets its answer.
  bool alive() const;
  // Runs `fn` (on the connection's loop thread) when the connection goes away before
  // the response is sent; at once (on the caller's thread) if it is already gone.
  void on_gone(std::function<void()> fn) const;

  struct State;
  explicit Responder(std::shared_ptr<State> s) : state_(std::move(s)) {}

 private:
  std::shared_ptr<State> state_;
};

using Handler = std::function<void(Request& request, Responder responder)>;
using RequestHook = std::function<void(const RequestRecord&)>;

class Engine {
 public:
  Engine(Limits limits, EngineOptions options);
  ~Engine();  // stop(): aborts what is left
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Binds a listener (port 0: any free port; returns the port). Throws Error(io) when
  // the address cannot be bound. Call before start().
  int listen(const std::string& name, const std::string& host, int port, Handler handler);
  // Called on a loop thread for every finished request (keep it short). Before start().
  void on_request_done(RequestHook hook);

  // Starts the loop threads and accepting. Ignores SIGPIPE for the process (sendfile
  // to a vanished peer must fail with EPIPE, not kill it).
  void start();
  // Queues blocking work (disk walks, hashing) on the bounded pool.
  void blocking(std::function<void()> work);

  // Graceful stop: closes the listeners (new connections are refused), closes idle
  // connections, lets responses in flight (growing ones included) finish, and
  // waits up to `deadline` for them; then aborts what is left. Returns the number of
  // requests that were cut at the deadline. Idempotent; callable from any thread.
  int drain(std::chrono::milliseconds deadline);
  // Cuts every connection at once (a drain with no deadline). Callable from any
  // thread, also while drain() waits in another: drain then returns at once.
  void abort();
  // Joins the threads (after drain() or abort(); does the latter if neither ran).
  void stop();

  std::size_t connections() const;  // open connections, for tests and logs
  const Limits& limits() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcache::serve
