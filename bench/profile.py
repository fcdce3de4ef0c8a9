#!/usr/bin/env python3
"""Instructions per request of our proxy, counted by valgrind's callgrind.

Unlike requests/s, instruction counts do not drift with whatever else the
machine is doing, so two builds can be compared exactly. The server runs
with workers = 0 (one process does everything) under callgrind; a client
sends GET /healthcheck over keep-alive connections and over new
connections; then SIGTERM lets the server exit and callgrind write its
counts. Startup is measured separately (a run with no requests) and
subtracted.

    bench/profile.py [--requests N] [--connections C] [--binary PATH] [--top N]

Prints instructions per keep-alive request and per new-connection request,
and the functions where the time goes (inclusive, from callgrind_annotate).
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(d, port, pipeline):
    with open(os.path.join(d, "swift.conf"), "w") as f:
        f.write("[swift-hash]\nswift_hash_path_suffix = p\n")
    path = os.path.join(d, "proxy-server.conf")
    with open(path, "w") as f:
        f.write(
            f"""[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
user =
swift_dir = {d}
log_file = {d}/proxy.log

[pipeline:main]
pipeline = {pipeline}

[app:proxy-server]
use = egg:swift#proxy
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
"""
        )
    return path


REQ = b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_response(sock, buf):
    """Read one response with a Content-Length body; returns the rest."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)", head, re.I)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        rest += sock.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:60])
    return rest[n:]


def keepalive(port, conns, requests):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(conns)]
    bufs = [b""] * conns
    for i in range(requests):
        k = i % conns
        socks[k].sendall(REQ)
        bufs[k] = read_response(socks[k], bufs[k])
    for s in socks:
        s.close()


def new_connections(port, requests):
    for _ in range(requests):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        read_response(s, b"")
        s.close()


def run(binary, pipeline, keep, conns, fresh, outdir, label):
    d = tempfile.mkdtemp(prefix="swift-profile-")
    port = free_port()
    conf = write_conf(d, port, pipeline)
    out = os.path.join(outdir, f"callgrind.{label}")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, conf],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    # Ready when stdout closes (as swift-init waits).
    proc.stdout.read()
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError("server did not come up")
            time.sleep(0.05)
    if keep:
        keepalive(port, conns, keep)
    if fresh:
        new_connections(port, fresh)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return total, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/swift-proxy-server"))
    ap.add_argument("--pipeline", default="catch_errors gatekeeper healthcheck proxy-logging proxy-server")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    outdir = tempfile.mkdtemp(prefix="swift-callgrind-")
    base, _ = run(args.binary, args.pipeline, 0, 1, 0, outdir, "startup")
    # The connection setup of the keep-alive run is noise over many requests.
    ka, ka_out = run(args.binary, args.pipeline, args.requests, args.connections, 0, outdir, "keepalive")
    fresh_n = max(args.requests // 10, 1)
    nc, _ = run(args.binary, args.pipeline, 0, 1, fresh_n, outdir, "newconn")
    print(f"binary: {args.binary}")
    print(f"startup and shutdown: {base:,} instructions")
    print(f"keep-alive:     {(ka - base) / args.requests:10,.0f} instructions per request ({args.requests} requests, {args.connections} connections)")
    print(f"new connection: {(nc - base) / fresh_n:10,.0f} instructions per request ({fresh_n} connections)")
    print(f"\nWhere a keep-alive request's instructions go (inclusive, top {args.top}), from {ka_out}:")
    ann = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", ka_out],
        capture_output=True,
        text=True,
    ).stdout
    shown = 0
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)", line)
        if m and shown < args.top:
            print(f"  {m.group(2):>6}%  {m.group(3)[:150]}")
            shown += 1


if __name__ == "__main__":
    sys.exit(main())
