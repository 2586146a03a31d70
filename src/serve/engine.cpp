// The engine's connections: Asio's reactor tells a connection when its socket is
// readable or writable (async_wait), and the connection does its own non-blocking
// recv / sendmsg / sendfile. Asio documents this "reactor-style" use with
// native_non_blocking for sendfile; it lets one code path send memory, files and
// growing files, and lets an idle connection wait without holding a buffer.
#include "serve/engine.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

// clang-format off
// Boost 1.74's Asio/Beast headers use std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <future>
#include <thread>
#include <utility>

#include "hub/request_parts.hpp"
#include "hubcache/error.hpp"
#include "serve/request_parser.hpp"

namespace hubcache::serve {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---- small pieces of the public header ------------------------------------------------

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

// "Date: ..." formatted once a second per thread.
const std::string& date_line() {
  thread_local std::time_t last = 0;
  thread_local std::string line;
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    char buf[64];
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    line = buf;
  }
  return line;
}

// Bodies up to this size are read into the header's buffer: one sendmsg instead of
// a send and a sendfile.
constexpr std::uint64_t kInlineFileMax = 32 * 1024;
// One sendfile call moves at most this much, so one fast client cannot hold its loop
// thread for long while others wait.
constexpr std::size_t kSendfileSlice = 2 << 20;
// How often each loop looks for connections past a deadline.
constexpr auto kSweepEvery = std::chrono::milliseconds(200);
// A connection closed after an answer the client did not read to the end of its
// request (431, 413...) reads and drops what still comes this long, so our close does
// not turn into a reset that destroys the answer at the client.
constexpr auto kLinger = std::chrono::seconds(2);

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}
bool Request::has_header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return true;
  return false;
}
std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}
std::string_view Request::query() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) { return hub::parse_form(query); }

ByteRange parse_range(std::string_view header, std::uint64_t size) {
  ByteRange r;
  if (header.substr(0, 6) != "bytes=") return r;
  auto spec = header.substr(6);
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
  if (spec.find(',') != std::string_view::npos) return r;
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return r;
  auto number = [](std::string_view s, std::uint64_t& v) {
    if (s.empty() || s.size() > 19) return false;
    v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
  };
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  std::uint64_t start = 0, end = size;
  if (a.empty()) {  // the last n bytes
    std::uint64_t n = 0;
    if (!number(b, n)) return r;
    if (n == 0) {  // "bytes=-0" asks for nothing: unsatisfiable
      r.kind = ByteRange::unsatisfiable;
      return r;
    }
    start = n >= size ? 0 : size - n;
  } else {
    if (!number(a, start)) return r;
    if (!b.empty()) {
      std::uint64_t last = 0;
      if (!number(b, last) || last < start) return r;
      end = std::min<std::uint64_t>(last + 1, size);
    }
  }
  if (start >= size) {
    r.kind = ByteRange::unsatisfiable;
    return r;
  }
  r.kind = ByteRange::satisfiable;
  r.start = start;
  r.end = end;
  return r;
}

void GrowingFile::available(std::uint64_t n) {
  n = std::min(n, total_);
  std::uint64_t cur = available_.load(std::memory_order_relaxed);
  while (n > cur && !available_.compare_exchange_weak(cur, n, std::memory_order_release)) {
  }
  if (n > cur) wake_all();
}

void GrowingFile::fail() {
  failed_.store(true, std::memory_order_release);
  wake_all();
}

void GrowingFile::wake_all() {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mutex_);
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w();
}

bool GrowingFile::wait_for_more(std::uint64_t have, std::function<void()> wake) {
  {
    std::lock_guard lock(mutex_);
    // Checked under the lock that available()/fail() take to collect waiters, so a
    // publication between the check and the registration cannot be missed.
    if (available_.load(std::memory_order_acquire) <= have && !failed_.load(std::memory_order_acquire)) {
      waiters_.push_back(std::move(wake));
      return true;
    }
  }
  return false;
}

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<FileHandle> FileHandle::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::make_shared<FileHandle>(fd);
}

std::uint64_t Response::body_length() const {
  if (auto* m = std::get_if<MemoryBody>(&body)) return m->data.size();
  if (auto* f = std::get_if<FileBody>(&body)) return f->length;
  return std::get<GrowingBody>(body).length;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", std::move(content_type)});
  r.body = MemoryBody{std::move(body)};
  return r;
}

// ---- the engine -----------------------------------------------------------------------

// Lets threads outside the loops post to them only while the engine lives: a
// Responder or a GrowingFile may outlive the Engine (the mirror keeps them in its own
// structures), and a post to a destroyed io_context would be a use after free.
struct Gate {
  std::mutex mutex;
  bool open = true;
};

struct Listener {
  std::string name;
  Handler handler;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> retry;  // after EMFILE: accept again a little later
};

struct Loop {
  asio::io_context ctx{1};
  std::thread thread;
  std::unique_ptr<asio::steady_timer> sweep;
  std::vector<std::shared_ptr<Connection>> conns;  // open connections (owned here while open)
  char scratch[64 * 1024];                         // every recv of this thread lands here first
};

struct Engine::Impl {
  Limits limits;
  EngineOptions options;
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<asio::thread_pool> pool;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  RequestHook hook;
  std::atomic<std::size_t> next_loop{0};
  std::atomic<std::size_t> open{0};       // open connections
  std::atomic<std::size_t> in_flight{0};  // requests being answered
  std::atomic<bool> draining{false}, aborting{false};
  std::mutex mutex;
  std::condition_variable idle_cv;  // open reached 0, or abort
  bool started = false, stopped = false;

  void accept(Listener& l);
  void on_closed() {
    if (open.fetch_sub(1) == 1) {
      std::lock_guard lock(mutex);
      idle_cv.notify_all();
    }
  }
};

struct Responder::State {
  std::weak_ptr<Connection> conn;
  std::shared_ptr<Gate> gate;
  asio::io_context::executor_type executor;
  std::uint64_t seq;  // the connection's request number this state answers
  std::atomic<bool> answered{false};
  std::atomic<bool> gone{false};
  std::mutex mutex;
  std::vector<std::function<void()>> on_gone;
  State(std::weak_ptr<Connection> c, std::shared_ptr<Gate> g, asio::io_context::executor_type e, std::uint64_t s)
      : conn(std::move(c)), gate(std::move(g)), executor(e), seq(s) {}
  ~State();
  void fire_gone();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Engine::Impl& engine, Loop& loop, Listener& listener, tcp::socket sock)
      : engine_(engine), loop_(loop), listener_(listener), sock_(std::move(sock)) {}

  void start() {
    boost::system::error_code ec;
    sock_.native_non_blocking(true, ec);
    sock_.set_option(tcp::no_delay(true), ec);
    index_ = loop_.conns.size();
    loop_.conns.push_back(shared_from_this());
    // The first request's deadline runs from the accept: a connection that says
    // nothing is as much a slowloris as one that says too little.
    set_deadline(engine_.limits.header_deadline);
    phase_ = Phase::reading;
    if (engine_.draining) {
      close();
      return;
    }
    wait_readable();
  }

  // ---- called by the loop's sweep, drain and responders (all on the loop thread) ----
  void on_deadline(Clock::time_point now) {
    if (phase_ == Phase::closed || now < deadline_) return;
    if (phase_ == Phase::writing)
      abort();  // the client stopped reading: cut, so it cannot take the bytes for a whole body
    else
      close();
  }

  void drain() {
    // An idle connection, or one still sending its header, has nothing to finish.
    if (phase_ == Phase::reading || phase_ == Phase::lingering) close();
  }

  void on_response(std::uint64_t seq, Response response) {
    if (phase_ != Phase::waiting || seq != seq_) return;
    if (in_handler_) {
      ready_ = std::move(response);
      return;
    }
    begin_response(std::move(response));
  }

  void abort() {
    if (phase_ == Phase::closed) return;
    // SO_LINGER 0: close() sends a reset, so the client sees an error, never a short
    // body that looks complete.
    linger lin{1, 0};
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
    close();
  }

  bool waiting_for(std::uint64_t seq) const { return phase_ == Phase::waiting && seq == seq_; }
  std::uint64_t current_seq() const { return seq_; }

 private:
  enum class Phase { reading, waiting, writing, lingering, closed };

  void set_deadline(std::chrono::milliseconds d) { deadline_ = Clock::now() + d; }
  void no_deadline() { deadline_ = Clock::time_point::max(); }

  void wait_readable() {
    sock_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this(), gen = ++wait_gen_](const boost::system::error_code& ec) {
                       if (ec || gen != self->wait_gen_) return;
                       self->on_readable();
                     });
  }
  void wait_writable() {
    sock_.async_wait(tcp::socket::wait_write,
                     [self = shared_from_this(), gen = ++wait_gen_](const boost::system::error_code& ec) {
                       if (ec || gen != self->wait_gen_) return;
                       self->pump();
                     });
  }

  void on_readable() {
    if (phase_ == Phase::lingering) return linger_read();
    if (phase_ == Phase::waiting) return watch_peer();
    if (phase_ != Phase::reading) return;
    while (true) {
      ssize_t n = ::recv(sock_.native_handle(), loop_.scratch, sizeof loop_.scratch, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_readable();
        return close();
      }
      if (n == 0) {
        // The client closed its side. A complete request still in the buffer would have
        // been parsed already; a partial one will never complete.
        return close();
      }
      if (!parser_) {
        parser_.emplace(engine_.limits);
        // A kept-alive connection's next request gets the header deadline from its
        // first byte (until then the idle timeout ran); the first one has had it since
        // the accept.
        if (seq_ > 0) set_deadline(engine_.limits.header_deadline);
      }
      const bool more = static_cast<std::size_t>(n) == sizeof loop_.scratch;
      if (in_.empty()) {
        if (!parse(loop_.scratch, static_cast<std::size_t>(n), true)) return;
      } else {
        in_.append(loop_.scratch, static_cast<std::size_t>(n));
        if (!parse(in_.data(), in_.size(), false)) return;
      }
      if (phase_ != Phase::reading) return;
      if (!more) return wait_readable();
    }
  }

  // Parses what arrived; dispatches a complete request. `scratch`: the bytes are in
  // the loop's scratch buffer, and what is left over must be copied out. Returns false
  // when the connection moved on (answered, or closed) and reading must stop.
  bool parse(const char* data, std::size_t n, bool scratch) {
    std::size_t consumed = 0;
    auto result = parser_->feed(data, n, consumed);
    if (result == RequestParser::Result::error) {
      refuse(parser_->error_status(), parser_->error_reason());
      return false;
    }
    if (scratch) {
      in_.assign(data + consumed, n - consumed);
    } else {
      in_.erase(0, consumed);
    }
    if (result == RequestParser::Result::done) {
      dispatch();
      return false;
    }
    if (parser_->wants_continue() && !continued_) {
      continued_ = true;
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      ::send(sock_.native_handle(), kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
    }
    return true;
  }

  // A request the parser refused: answer, then close (what follows cannot be trusted
  // to start at a request boundary).
  void refuse(int status, const char* reason) {
    request_ = Request{};
    request_.method = "-";
    request_.target = "-";
    request_.start = Clock::now();
    parser_.reset();
    in_.clear();
    in_.shrink_to_fit();
    ++seq_;
    phase_ = Phase::waiting;
    ++engine_.in_flight;
    Response r = Response::text(status, reason);
    r.close = true;
    r.route = "refused";
    begin_response(std::move(r));
  }

  void dispatch() {
    request_ = std::move(parser_->request());
    parser_.reset();
    continued_ = false;
    ++seq_;
    phase_ = Phase::waiting;
    no_deadline();
    ++engine_.in_flight;
    auto state = std::make_shared<Responder::State>(weak_from_this(), engine_.gate, loop_.ctx.get_executor(), seq_);
    responder_ = state;
    in_handler_ = true;
    try {
      listener_.handler(request_, Responder(std::move(state)));
    } catch (const std::exception&) {
      if (!ready_) ready_ = Response::text(500, "Internal Server Error");
    }
    in_handler_ = false;
    if (ready_) {
      Response r = std::move(*ready_);
      ready_.reset();
      begin_response(std::move(r));
    } else if (phase_ == Phase::waiting) {
      // Answered later: meanwhile notice a client that resets or closes.
      wait_readable();
    }
  }

  // While a request waits for its responder: an error (reset) means the client is
  // gone; end-of-stream is only noted (a half-closed client still wants its answer);
  // bytes are the next pipelined request, left in the socket for later.
  void watch_peer() {
    char c;
    ssize_t n = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return wait_readable();
    if (n < 0) return abort();
    if (n == 0) peer_eof_ = true;
  }

  void begin_response(Response r) {
    ++wait_gen_;  // a pending readiness wait (the peer watch) is now stale
    boost::system::error_code ec;
    sock_.cancel(ec);
    response_ = std::move(r);
    const bool head = request_.method == "HEAD";
    const std::uint64_t length = response_.body_length();
    keep_alive_ = !response_.close && !peer_eof_ && !engine_.draining && wants_keep_alive();
    std::string& h = head_;
    h.clear();
    h.reserve(256);
    h += "HTTP/1.1 ";
    h += std::to_string(response_.status);
    h += ' ';
    h += reason_phrase(response_.status);
    h += "\r\n";
    for (const auto& x : response_.headers) {
      h += x.name;
      h += ": ";
      // A value may carry a client's words (an error message naming the path it asked
      // for): a CR or LF there would split the response, and a cache in front would
      // keep the forgery. Every control byte but tab goes out as a space.
      for (const char ch : x.value) {
        const auto u = static_cast<unsigned char>(ch);
        h += (u < 0x20 && u != '\t') || u == 0x7f ? ' ' : ch;
      }
      h += "\r\n";
    }
    h += "Content-Length: ";
    h += std::to_string(length);
    h += "\r\n";
    h += date_line();
    if (!keep_alive_)
      h += "Connection: close\r\n";
    else if (request_.version == 10)
      h += "Connection: keep-alive\r\n";
    h += "\r\n";
    head_sent_ = 0;
    body_sent_ = 0;
    body_len_ = head ? 0 : length;
    if (!head) {
      if (auto* f = std::get_if<FileBody>(&response_.body); f && f->length <= kInlineFileMax && f->length > 0) {
        // Small file: read it behind the header, one write for both.
        const std::size_t at = h.size();
        h.resize(at + f->length);
        ssize_t got = ::pread(f->file->fd(), h.data() + at, f->length, static_cast<off_t>(f->offset));
        if (got != static_cast<ssize_t>(f->length)) {
          h.resize(at);
          // The file changed under us: the header promised bytes we cannot send.
          phase_ = Phase::writing;
          return abort();
        }
        response_.body = MemoryBody{};
        body_len_ = 0;
        inline_body_ = f->length;
      } else {
        inline_body_ = 0;
      }
    } else {
      inline_body_ = 0;
    }
    phase_ = Phase::writing;
    set_deadline(engine_.limits.send_timeout);
    if (auto state = responder_.lock()) state->answered = true;
    if (std::holds_alternative<FileBody>(response_.body) && body_len_ > 0) {
      // A file body leaves in full segments only (nginx's tcp_nopush): the header and
      // the first bytes share a packet, and a socket buffer with a little room does not
      // send a small segment. Uncorked when the body is out.
      int on = 1;
      ::setsockopt(sock_.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on);
      corked_ = true;
    }
    if (auto* g = std::get_if<GrowingBody>(&response_.body);
        g && (!g->state || !g->file || g->offset + g->length > g->state->total()))
      return abort();  // a range past the announced size would wait forever
    pump();
  }

  bool wants_keep_alive() const {
    auto conn = request_.header("Connection");
    if (request_.version == 10) return iequals(conn, "keep-alive");
    return !iequals(conn, "close");
  }

  // Sends what can be sent without blocking; waits for the socket (or the growing
  // file) otherwise.
  void pump() {
    if (phase_ != Phase::writing) return;
    const int fd = sock_.native_handle();
    while (true) {
      ssize_t n = 0;
      if (head_sent_ < head_.size()) {
        iovec iov[2];
        int count = 1;
        iov[0] = {head_.data() + head_sent_, head_.size() - head_sent_};
        auto* mem = std::get_if<MemoryBody>(&response_.body);
        if (mem && body_len_ > 0) iov[count++] = {mem->data.data(), mem->data.size()};
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<std::size_t>(count);
        const bool file_follows = body_len_ > 0 && !mem;
        n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | (file_follows ? MSG_MORE : 0));
        if (n > 0) {
          const auto head_part = std::min<std::size_t>(static_cast<std::size_t>(n), head_.size() - head_sent_);
          head_sent_ += head_part;
          body_sent_ += static_cast<std::uint64_t>(n) - head_part;
        }
      } else if (body_sent_ >= body_len_) {
        return finish(true);
      } else if (auto* mem = std::get_if<MemoryBody>(&response_.body)) {
        n = ::send(fd, mem->data.data() + body_sent_, body_len_ - body_sent_, MSG_NOSIGNAL);
        if (n > 0) body_sent_ += static_cast<std::uint64_t>(n);
      } else if (auto* file = std::get_if<FileBody>(&response_.body)) {
        off_t off = static_cast<off_t>(file->offset + body_sent_);
        const auto want = std::min<std::uint64_t>(kSendfileSlice, body_len_ - body_sent_);
        n = ::sendfile(fd, file->file->fd(), &off, want);
        if (n == 0) return abort();  // the file shrank under us
        if (n > 0) {
          body_sent_ += static_cast<std::uint64_t>(n);
          // Less than asked: the socket buffer is full. Wait for room rather than make
          // a call that can only fail with EAGAIN (as nginx does).
          if (static_cast<std::uint64_t>(n) < want && body_sent_ < body_len_) {
            set_deadline(engine_.limits.send_timeout);
            return wait_writable();
          }
        }
      } else {
        auto& g = std::get<GrowingBody>(response_.body);
        if (g.state->failed()) return abort();
        const std::uint64_t have = g.state->available_bytes();
        const std::uint64_t pos = g.offset + body_sent_;
        if (have <= pos) {
          no_deadline();  // waiting for the producer is not the client's fault
          std::weak_ptr<Connection> weak = weak_from_this();
          auto exec = loop_.ctx.get_executor();
          const auto seq = seq_;
          if (g.state->wait_for_more(pos, [weak, exec, seq, gate = engine_.gate] {
                std::lock_guard lock(gate->mutex);
                if (!gate->open) return;
                asio::post(exec, [weak, seq] {
                  if (auto self = weak.lock(); self && self->seq_ == seq) self->resume_growing();
                });
              }))
            return;
          continue;  // it grew (or failed) meanwhile
        }
        off_t off = static_cast<off_t>(pos);
        const std::uint64_t want = std::min<std::uint64_t>({kSendfileSlice, have - pos, body_len_ - body_sent_});
        n = ::sendfile(fd, g.file->fd(), &off, want);
        if (n == 0) return abort();
        if (n > 0) {
          body_sent_ += static_cast<std::uint64_t>(n);
          if (static_cast<std::uint64_t>(n) < want) {
            set_deadline(engine_.limits.send_timeout);
            return wait_writable();
          }
        }
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          set_deadline(engine_.limits.send_timeout);
          return wait_writable();
        }
        return abort();
      }
    }
  }

  void resume_growing() {
    if (phase_ != Phase::writing) return;
    set_deadline(engine_.limits.send_timeout);
    pump();
  }

  void record(bool complete) {
    if (!engine_.hook) return;
    RequestRecord rec;
    rec.listener = listener_.name;
    rec.route = response_.route;
    rec.method = request_.method;
    rec.target = request_.target;
    rec.status = response_.status;
    rec.body_bytes = body_sent_ + (head_sent_ == head_.size() ? inline_body_ : 0);
    rec.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - request_.start);
    rec.complete = complete;
    try {
      engine_.hook(rec);
    } catch (...) {
    }
  }

  void finish(bool complete) {
    if (corked_) {
      int off = 0;
      ::setsockopt(sock_.native_handle(), IPPROTO_TCP, TCP_CORK, &off, sizeof off);
      corked_ = false;
    }
    record(complete);
    --engine_.in_flight;
    response_ = Response{};
    // Draining: even a response sent with keep-alive ends its connection.
    if (!keep_alive_ || engine_.draining) return linger_close();
    // Free what the request held: an idle connection keeps no buffer.
    request_ = Request{};
    head_.clear();
    head_.shrink_to_fit();
    phase_ = Phase::reading;
    set_deadline(engine_.limits.idle_timeout);
    if (!in_.empty()) {
      // Pipelined: the next request is (partly) here already. Parsed from the loop,
      // not from here, so a thousand tiny pipelined requests do not nest a thousand
      // calls deep.
      parser_.emplace(engine_.limits);
      set_deadline(engine_.limits.header_deadline);
      asio::post(loop_.ctx, [self = shared_from_this(), seq = seq_] {
        if (self->phase_ != Phase::reading || self->seq_ != seq) return;
        if (!self->parse(self->in_.data(), self->in_.size(), false)) return;
        if (self->phase_ == Phase::reading) self->wait_readable();
      });
      return;
    }
    in_.shrink_to_fit();
    wait_readable();
  }

  // Ends the connection after its last response: our side first (the client reads
  // the end of the body, then EOF), then whatever the client still sends is read and
  // dropped for a moment, so the close is not a reset that could destroy the answer
  // in the client's receive buffer.
  void linger_close() {
    ::shutdown(sock_.native_handle(), SHUT_WR);
    phase_ = Phase::lingering;
    in_.clear();
    in_.shrink_to_fit();
    parser_.reset();
    deadline_ = Clock::now() + kLinger;
    linger_read();
  }

  void linger_read() {
    while (true) {
      ssize_t n = ::recv(sock_.native_handle(), loop_.scratch, sizeof loop_.scratch, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Draining: the client had its answer, and no more is coming now.
        if (engine_.draining) return close();
        return wait_readable();
      }
      return close();
    }
  }

 public:
  void close() {
    if (phase_ == Phase::closed) return;
    const Phase was = phase_;
    phase_ = Phase::closed;
    ++wait_gen_;
    if (was == Phase::writing) {
      record(false);
      --engine_.in_flight;
    } else if (was == Phase::waiting) {
      --engine_.in_flight;
    }
    boost::system::error_code ec;
    sock_.close(ec);
    if (auto state = responder_.lock()) state->fire_gone();
    // Unregister: swap with the last entry of the loop's list.
    auto& conns = loop_.conns;
    auto keep = shared_from_this();
    if (index_ < conns.size() && conns[index_].get() == this) {
      conns[index_] = std::move(conns.back());
      conns[index_]->index_ = index_;
      conns.pop_back();
    }
    engine_.on_closed();
  }

 private:
  Engine::Impl& engine_;
  Loop& loop_;
  Listener& listener_;
  tcp::socket sock_;
  std::size_t index_ = 0;
  Phase phase_ = Phase::reading;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::uint64_t wait_gen_ = 0;  // invalidates readiness waits that no longer apply
  std::uint64_t seq_ = 0;       // request number on this connection
  std::string in_;              // received, not yet parsed (a partial or pipelined request)
  std::optional<RequestParser> parser_;
  bool continued_ = false;
  Request request_;
  std::weak_ptr<Responder::State> responder_;
  bool in_handler_ = false;
  std::optional<Response> ready_;
  bool peer_eof_ = false;
  Response response_;
  bool keep_alive_ = true;
  bool corked_ = false;
  std::string head_;
  std::size_t head_sent_ = 0;
  std::uint64_t body_sent_ = 0, body_len_ = 0, inline_body_ = 0;
};

// ---- Responder --------------------------------------------------------------------------

Responder::State::~State() {
  if (answered) return;
  // Nobody answered: the client gets a 500 rather than a connection that hangs.
  auto weak = conn;
  auto s = seq;
  std::lock_guard lock(gate->mutex);
  if (!gate->open) return;
  asio::post(executor, [weak, s] {
    if (auto c = weak.lock()) c->on_response(s, Response::text(500, "Internal Server Error: the request was dropped"));
  });
}

void Responder::State::fire_gone() {
  if (answered.load() || gone.exchange(true)) return;
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(mutex);
    fns.swap(on_gone);
  }
  for (auto& f : fns) f();
}

void Responder::respond(Response response) const {
  if (!state_ || state_->answered.exchange(true)) return;
  if (state_->gone) return;
  auto weak = state_->conn;
  const auto seq = state_->seq;
  {
    std::lock_guard lock(state_->gate->mutex);
    if (!state_->gate->open) return;
    if (!state_->executor.running_in_this_thread()) {
      asio::post(state_->executor, [weak, seq, r = std::move(response)]() mutable {
        if (auto c = weak.lock()) c->on_response(seq, std::move(r));
      });
      return;
    }
  }
  // On the connection's own loop thread (the usual case: a handler answering at
  // once): no queueing.
  if (auto c = weak.lock()) c->on_response(seq, std::move(response));
}

bool Responder::alive() const { return state_ && !state_->gone.load(); }

void Responder::on_gone(std::function<void()> fn) const {
  if (!state_) return fn();
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->gone.load()) {
      state_->on_gone.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

// ---- Engine -----------------------------------------------------------------------------

void Engine::Impl::accept(Listener& l) {
  if (draining || !l.acceptor || !l.acceptor->is_open()) return;
  Loop& target = *loops[next_loop.fetch_add(1) % loops.size()];
  l.acceptor->async_accept(target.ctx, [this, &l, &target](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec == asio::error::operation_aborted || draining) return;
    if (ec) {
      // Out of file descriptors (or a transient error): try again shortly instead of
      // spinning on an acceptor that stays readable.
      l.retry->expires_after(std::chrono::milliseconds(50));
      l.retry->async_wait([this, &l](const boost::system::error_code& e) {
        if (!e) accept(l);
      });
      return;
    }
    ++open;
    asio::post(target.ctx, [this, &l, &target, s = std::move(sock)]() mutable {
      auto c = std::make_shared<Connection>(*this, target, l, std::move(s));
      c->start();
    });
    accept(l);
  });
}

Engine::Engine(Limits limits, EngineOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->options = options;
  int n = options.loop_threads > 0 ? options.loop_threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  for (int i = 0; i < n; ++i) impl_->loops.push_back(std::make_unique<Loop>());
}

Engine::~Engine() { stop(); }

int Engine::listen(const std::string& name, const std::string& host, int port, Handler handler) {
  auto l = std::make_unique<Listener>();
  l->name = name;
  l->handler = std::move(handler);
  Loop& first = *impl_->loops.front();
  l->acceptor = std::make_unique<tcp::acceptor>(first.ctx);
  l->retry = std::make_unique<asio::steady_timer>(first.ctx);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  tcp::endpoint ep;
  if (!ec) {
    ep = tcp::endpoint(address, static_cast<unsigned short>(port));
    l->acceptor->open(ep.protocol(), ec);
  }
  // SO_REUSEADDR (a restarted server binds at once), never SO_REUSEPORT (a second
  // server would silently share the port).
  if (!ec) l->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) l->acceptor->bind(ep, ec);
  if (!ec) l->acceptor->listen(SOMAXCONN, ec);
  if (ec)
    throw Error(ErrorCode::io, "Cannot listen on " + host + ":" + std::to_string(port) + " (" + ec.message() +
                                   "; in use, or not an address of this machine). Try --port 0.");
  const int bound = l->acceptor->local_endpoint().port();
  impl_->listeners.push_back(std::move(l));
  return bound;
}

void Engine::on_request_done(RequestHook hook) { impl_->hook = std::move(hook); }

void Engine::start() {
  Impl& s = *impl_;
  if (s.started) return;
  s.started = true;
  // sendfile(2) has no MSG_NOSIGNAL: a peer gone mid-body must be an EPIPE, not a kill.
  ::signal(SIGPIPE, SIG_IGN);
  s.pool = std::make_unique<asio::thread_pool>(static_cast<std::size_t>(std::max(1, s.options.disk_threads)));
  for (auto& l : s.listeners) s.accept(*l);
  for (auto& loop_ptr : s.loops) {
    Loop* loop = loop_ptr.get();
    loop->sweep = std::make_unique<asio::steady_timer>(loop->ctx);
    // The sweep: one timer per loop rather than one per connection, so a request
    // costs no timer operations; deadlines are honoured within kSweepEvery.
    auto sweep = std::make_shared<std::function<void()>>();
    *sweep = [loop, sweep_weak = std::weak_ptr<std::function<void()>>(sweep)] {
      loop->sweep->expires_after(kSweepEvery);
      loop->sweep->async_wait([loop, sweep_weak](const boost::system::error_code& ec) {
        if (ec) return;
        const auto now = Clock::now();
        // Backwards: a connection that closes moves the last one (already seen) into
        // its slot.
        auto& conns = loop->conns;
        for (std::size_t i = conns.size(); i-- > 0;)
          if (i < conns.size()) conns[i]->on_deadline(now);
        if (auto next = sweep_weak.lock()) (*next)();
      });
    };
    loop->thread = std::thread([loop, sweep] {
      (*sweep)();
      auto guard = asio::make_work_guard(loop->ctx);
      loop->ctx.run();
    });
  }
}

void Engine::blocking(std::function<void()> work) {
  if (!impl_->pool) return work();
  asio::post(*impl_->pool, std::move(work));
}

int Engine::drain(std::chrono::milliseconds deadline) {
  Impl& s = *impl_;
  if (!s.started) return 0;
  s.draining = true;
  for (auto& l : s.listeners) {
    Listener* lp = l.get();
    asio::post(s.loops.front()->ctx, [lp] {
      boost::system::error_code ec;
      lp->acceptor->close(ec);
      lp->retry->cancel();
    });
  }
  for (auto& loop_ptr : s.loops) {
    Loop* loop = loop_ptr.get();
    asio::post(loop->ctx, [loop] {
      auto conns = loop->conns;
      for (auto& c : conns) c->drain();
    });
  }
  std::unique_lock lock(s.mutex);
  s.idle_cv.wait_for(lock, deadline, [&] { return s.open.load() == 0 || s.aborting.load(); });
  lock.unlock();
  const int cut = static_cast<int>(s.in_flight.load());
  if (s.open.load() > 0) abort();
  return s.open.load() == 0 && cut == 0 ? 0 : cut;
}

void Engine::abort() {
  Impl& s = *impl_;
  s.draining = true;
  s.aborting = true;
  {
    std::lock_guard lock(s.mutex);
    s.idle_cv.notify_all();
  }
  if (!s.started) return;
  for (auto& l : s.listeners) {
    Listener* lp = l.get();
    asio::post(s.loops.front()->ctx, [lp] {
      boost::system::error_code ec;
      lp->acceptor->close(ec);
      lp->retry->cancel();
    });
  }
  for (auto& loop_ptr : s.loops) {
    Loop* loop = loop_ptr.get();
    asio::post(loop->ctx, [loop] {
      auto conns = loop->conns;
      for (auto& c : conns) c->abort();
    });
  }
}

void Engine::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  if (s.open.load() > 0 || !s.draining) abort();
  // Let the loops run the closes just posted, then stop them.
  for (auto& loop_ptr : s.loops) {
    Loop* loop = loop_ptr.get();
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(loop->ctx, [loop, &done] {
      if (loop->sweep) loop->sweep->cancel();
      done.set_value();
    });
    f.wait_for(std::chrono::seconds(5));
  }
  {
    std::lock_guard lock(s.gate->mutex);
    s.gate->open = false;
  }
  s.pool->stop();
  s.pool->join();
  for (auto& loop_ptr : s.loops) loop_ptr->ctx.stop();
  for (auto& loop_ptr : s.loops)
    if (loop_ptr->thread.joinable()) loop_ptr->thread.join();
  for (auto& loop_ptr : s.loops) loop_ptr->conns.clear();
}

std::size_t Engine::connections() const { return impl_->open.load(); }
const Limits& Engine::limits() const { return impl_->limits; }

}  // namespace hubcache::serve
