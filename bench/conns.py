#!/usr/bin/env python3
"""Load helper for bench/serve.sh: holds many idle or slowloris connections, or times fresh GETs.

  conns.py idle N HOST PORT PATH        N keep-alive connections, each after one complete GET of PATH
  conns.py slowloris N HOST PORT SECS   N connections sending one header byte each every SECS seconds
  conns.py probe HOST PORT PATH K       K fresh connections, one GET each: prints median and max ms
  conns.py download N HOST PORT PATH SECS [READ]
                                        N keep-alive connections, each GETting PATH over and over for
                                        SECS seconds, reading the body READ bytes (default 1 MiB) per
                                        recv: prints bytes, seconds and this client's own CPU seconds

idle and slowloris print "ready N" on stdout once every connection is open, then run until killed
(SIGTERM), and print how many connections the server closed on the way out. Standard library only.
"""
import resource
import selectors
import signal
import socket
import statistics
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(host, port):
    # Many connects in a burst overflow a listen backlog: retry briefly rather than fail.
    for attempt in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect((host, port))
            return s
        except OSError:
            s.close()
            time.sleep(0.02 * (attempt + 1))
    raise SystemExit("cannot connect to %s:%d" % (host, port))


def read_response(s):
    """Reads one response with a Content-Length body; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response header")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return int(head.split(b" ")[1])


stopping = False


def on_term(*_):
    global stopping
    stopping = True


def count_closed(socks):
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in sel.select(timeout=0):
        try:
            if key.fileobj.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except OSError:
            closed += 1
    return closed


def idle(n, host, port, path):
    socks = []
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
    for _ in range(n):
        s = connect(host, port)
        s.sendall(req)
        read_response(s)
        socks.append(s)
    print("ready", len(socks), flush=True)
    while not stopping:
        time.sleep(0.2)
    print("closed-by-server", count_closed(socks), flush=True)


def slowloris(n, host, port, secs):
    socks = []
    for _ in range(n):
        s = connect(host, port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        s.setblocking(False)
        socks.append(s)
    print("ready", len(socks), flush=True)
    alive = set(range(len(socks)))
    while not stopping:
        t0 = time.monotonic()
        for i in list(alive):
            try:
                socks[i].send(b"a")
            except OSError:
                alive.discard(i)
        while not stopping and time.monotonic() - t0 < secs:
            time.sleep(0.1)
    print("closed-by-server", len(socks) - len(alive) + count_closed([socks[i] for i in alive]), flush=True)


def probe(host, port, path, k):
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, host, port)).encode()
    times = []
    for _ in range(k):
        t0 = time.monotonic()
        s = connect(host, port)
        s.settimeout(30)
        s.sendall(req)
        status = read_response(s)
        times.append((time.monotonic() - t0) * 1000)
        s.close()
        if status != 200:
            raise SystemExit("probe got status %d" % status)
        time.sleep(0.05)
    print("median_ms %.2f max_ms %.2f" % (statistics.median(times), max(times)), flush=True)


def download(n, host, port, path, secs, read_size):
    """Big-file load for bench/serve.sh. wrk reads 8 KiB per call (and asks FIONREAD after each):
    one wrk connection spends a whole core receiving about 1 GB/s on loopback, so a single-stream
    figure measured with it is the client's. Clients of hubcache serve read in big pieces
    (huggingface_hub 10 MB per read call, hubcache's libcurl 256 KiB), and so does this one: its own
    CPU is printed, to show it is not the bottleneck."""
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
    buf = memoryview(bytearray(read_size))
    sel = selectors.DefaultSelector()
    state = {}  # socket -> [header bytes so far or None while in the body, body bytes left]
    for _ in range(n):
        s = connect(host, port)
        s.sendall(req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        state[s] = [b"", 0]
    total = requests = errors = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    end = t0 + secs
    while not stopping and state:
        now = time.monotonic()
        if now >= end:
            break
        for key, _ in sel.select(timeout=end - now):
            s = key.fileobj
            st = state[s]
            try:
                if st[0] is not None:  # the response header
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed before the response header")
                    st[0] += chunk
                    if b"\r\n\r\n" not in st[0]:
                        continue
                    head, _, body = st[0].partition(b"\r\n\r\n")
                    if head.split(b" ")[1] != b"200":
                        raise ConnectionError("status %s" % head.split(b" ")[1].decode())
                    length = [int(line.partition(b":")[2]) for line in head.split(b"\r\n")[1:]
                              if line.partition(b":")[0].strip().lower() == b"content-length"][0]
                    total += len(body)
                    st[:] = [None, length - len(body)]
                else:
                    got = s.recv_into(buf, min(read_size, st[1]))
                    if not got:
                        raise ConnectionError("closed in the body")
                    total += got
                    st[1] -= got
                if st[0] is None and st[1] == 0:
                    requests += 1
                    s.sendall(req)  # a few bytes into an empty send buffer: does not block
                    st[:] = [b"", 0]
            except (OSError, ValueError, IndexError):
                errors += 1
                sel.unregister(s)
                s.close()
                del state[s]
    elapsed = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    print("RESULT requests %d bytes %d seconds %.3f errors %d client_cpu %.3f" % (requests, total, elapsed, errors, cpu),
          flush=True)


def main():
    raise_nofile()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "idle":
        idle(int(args[0]), args[1], int(args[2]), args[3])
    elif mode == "slowloris":
        slowloris(int(args[0]), args[1], int(args[2]), float(args[3]))
    elif mode == "probe":
        probe(args[0], int(args[1]), args[2], int(args[3]))
    elif mode == "download":
        download(int(args[0]), args[1], int(args[2]), args[3], float(args[4]), int(args[5]) if len(args) > 5 else 1 << 20)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
