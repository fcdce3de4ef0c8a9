#!/usr/bin/env python3
"""Where our proxy's time goes on the object data path, per request.

The cluster of bench/objects.py (Python Swift's storage servers with devices
on tmpfs, memcached, the full pipeline with tempauth), with only our proxy,
`workers = 0` (one process does everything), so one tool sees it all:

  callgrind  instructions (and calls to malloc/realloc/calloc) of exactly
             the measured requests: collection is switched on after the
             warm-up requests and off after the measured ones
             (`callgrind_control -i`); the top functions, inclusive and self
  strace     `strace -c -f` attached after the warm-up and detached after the
             measured requests: system calls per request, by name
  trace      every system call of three requests, in order (strace -f -tt)
  cpu        CPU time per request with nothing attached (/proc/PID/schedstat)
  perf       CPU time per request, kernel included, by function (perf record
             -e cpu-clock -g attached for the measured requests)

Instruction counts do not drift with the machine's load, so two builds can be
compared exactly. Kinds of request:

  get1k   GET of 1 KiB objects (1000 of them, keep-alive, round robin over
          --connections connections, one request at a time)
  put1k   PUT of 1 KiB objects
  getL    GET of one object of --large-mib MiB (per MiB)
  putL    PUT of objects of --large-mib MiB (per MiB)

    bench/objprofile.py --venv VENV [--binary PATH] [--tool callgrind,strace]
                        [--kinds get1k,put1k,getL,putL] [--requests N] [--top N]
"""

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in bench/
import bench as B  # noqa: E402
import objects as O  # noqa: E402

KINDS = ("get1k", "put1k", "getL", "putL")


class Client:
    """Keep-alive connections to the proxy, one request at a time."""

    def __init__(self, port, token, conns):
        self.port, self.token = port, token
        self.socks = [self.connect() for _ in range(conns)]
        self.n = 0
        self.pattern = memoryview(os.urandom(O.LARGE_PIECE))
        self.buf = bytearray(O.LARGE_PIECE)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=600)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def close(self):
        for s in self.socks:
            s.close()

    def exchange(self, method, path, size=0):
        k = self.n % len(self.socks)
        self.n += 1
        s = self.socks[k]
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {self.token}\r\n"
        if method == "PUT":
            head += f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n"
        s.sendall((head + "\r\n").encode())
        left = size
        while left:
            n = min(left, len(self.pattern))
            s.sendall(self.pattern[:n])
            left -= n
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"{method} {path}: closed before a response")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        want = int(m.group(1)) if m else 0
        got = len(rest)
        while got < want:
            n = s.recv_into(self.buf, min(want - got, len(self.buf)))
            if n == 0:
                raise RuntimeError(f"{method} {path}: closed in the body")
            got += n
        if b"connection: close" in head.lower():
            self.socks[k] = self.connect()
        if status // 100 != 2:
            raise RuntimeError(f"{method} {path}: {status}")
        return got


def run_kind(kind, n, warm, client, large):
    paths = {
        "get1k": lambda i: ("GET", f"/v1/{O.ACCOUNT}/small/o{i % O.SMALL_GET_OBJECTS}", 0),
        "put1k": lambda i: ("PUT", f"/v1/{O.ACCOUNT}/put/p{i % O.SMALL_PUT_NAMES}", O.KIB),
        "getL": lambda i: ("GET", f"/v1/{O.ACCOUNT}/large/L0", 0),
        "putL": lambda i: ("PUT", f"/v1/{O.ACCOUNT}/large/Lp{i % 2}", large),
    }[kind]
    for i in range(warm, warm + n):
        client.exchange(*paths(i))


def start(ctx, argv, tool_env=None):
    ctx.workdir = tempfile.mkdtemp(prefix="swift-objprofile-")
    ctx.registry = B.Registry(ctx.workdir)
    cl = O.Cluster(ctx, proxies={"ours": (argv, 0)})
    ctx.cluster = cl
    stop = threading.Event()
    threading.Thread(target=O.drain_loop, args=(list(cl.sinks.values()), stop), daemon=True).start()
    cl.start()
    ctx.tokens = O.get_tokens(ctx)
    return cl, stop


def stop_all(ctx, cl, stop):
    cl.stop()
    ctx.registry.end_all()
    stop.set()
    shutil.rmtree(ctx.workdir, ignore_errors=True)


def setup_objects(ctx, large):
    port, tok = ctx.cluster.ports["ours"], ctx.tokens["ours"]
    h = {"X-Auth-Token": tok}
    for c in ("small", "put", "large"):
        O.request(port, "PUT", f"/v1/{O.ACCOUNT}/{c}", h)
    body = os.urandom(O.KIB)
    O.parallel([(lambda j=j: O.request(port, "PUT", f"/v1/{O.ACCOUNT}/small/o{j}", h, body))
                for j in range(O.SMALL_GET_OBJECTS)], threads=4)
    O.put_stream(port, f"/v1/{O.ACCOUNT}/large/L0", tok, large)


class Run:
    """A started cluster, warmed up for one kind of request: its client,
    how many requests to measure (`n`, after `warm`), and the unit the
    figures are given in (per request, or per MiB for large objects)."""

    def __init__(self, args, kind, cl):
        self.cl = cl
        self.kind = kind
        self.large = args.large_mib * O.MIB
        self.n = args.requests if kind.endswith("1k") else args.large_requests
        self.warm = max(self.n // 10, 3)
        self.client = None
        self.pid = None
        self.large_mib = args.large_mib

    def measure(self):
        run_kind(self.kind, self.n, self.warm, self.client, self.large)

    @property
    def unit(self):
        return self.n if self.kind.endswith("1k") else self.n * self.large_mib

    @property
    def per(self):
        return "request" if self.kind.endswith("1k") else "MiB"


@contextlib.contextmanager
def warmed(ctx, args, kind, argv=None):
    """Start the cluster with our proxy run as `argv` (default: the binary
    itself), put the objects, connect the client and send the warm-up
    requests; close and stop everything at the end."""
    cl, stop = start(ctx, argv or [args.binary])
    try:
        r = Run(args, kind, cl)
        setup_objects(ctx, r.large)
        r.client = Client(ctx.cluster.ports["ours"], ctx.tokens["ours"], args.connections)
        run_kind(kind, r.warm, 0, r.client, r.large)
        r.pid = cl.servers["ours"].pid
        yield r
        r.client.close()
    finally:
        stop_all(ctx, cl, stop)


def parse_callgrind(path):
    """(total Ir, {function: calls to malloc/realloc/calloc from it})."""
    names = {}
    total = 0
    allocs = {}
    fn = None
    cfn = None
    alloc_names = {"malloc", "realloc", "calloc"}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
            elif line.startswith("fn="):
                fn = resolve(names, line[3:].strip())
            elif line.startswith("cfn="):
                cfn = resolve(names, line[4:].strip())
            elif line.startswith("calls=") and cfn is not None:
                base = cfn.split("'")[0]
                if base in alloc_names:
                    k = int(line[6:].split()[0])
                    allocs[fn] = allocs.get(fn, 0) + k
    return total, allocs


def resolve(names, text):
    m = re.match(r"\((\d+)\)(?: (.*))?", text)
    if not m:
        return text
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), text)


def callgrind(ctx, args, kind):
    out = os.path.join(args.outdir, f"callgrind.{kind}")
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            args.binary]
    with warmed(ctx, args, kind, argv) as r:
        subprocess.run(["callgrind_control", "-i", "on", str(r.pid)], check=True, capture_output=True,
                       timeout=60)
        r.measure()
        subprocess.run(["callgrind_control", "-i", "off", str(r.pid)], check=True, capture_output=True,
                       timeout=60)
        r.client.close()
        os.kill(r.pid, signal.SIGTERM)
        r.cl.servers["ours"].proc.wait(timeout=120)
    total, allocs = parse_callgrind(out)
    n, unit, per = r.n, r.unit, r.per
    print(f"\n== {kind}: {total / unit:,.0f} instructions per {per} "
          f"({n} requests{'' if kind.endswith('1k') else f' of {args.large_mib} MiB'}); "
          f"{sum(allocs.values()) / unit:,.1f} malloc/realloc/calloc calls per {per}")
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, text=True).stdout
    print(f"-- inclusive, top {args.top}:")
    show_annotate(ann, args.top, total)
    ann = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    print(f"-- self, top {args.top}:")
    show_annotate(ann, args.top, total)
    print(f"-- direct callers of malloc/realloc/calloc, calls per {per}:")
    for f, c in sorted(allocs.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {c / unit:8.2f}  {f[:160]}")
    print(f"(callgrind file: {out})")


def show_annotate(text, top, total):
    shown = 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)", line)
        if m and shown < top:
            print(f"  {m.group(2):>6}%  {m.group(3)[:170]}")
            shown += 1


def cpu(ctx, args, kind):
    """CPU time of the measured requests, no tool attached: the proxy's
    on-CPU time from /proc/PID/schedstat (ns), user and system from
    /proc/PID/stat (ticks)."""
    with warmed(ctx, args, kind) as r:
        ns0, t0 = O.sched_ns([r.pid]), O.cpu_of([r.pid])
        r.measure()
        ns1, t1 = O.sched_ns([r.pid]), O.cpu_of([r.pid])
    n, unit, per = r.n, r.unit, r.per
    u, sy = O.cpu_delta(t0, t1)
    print(f"\n== {kind}: {(ns1 - ns0) / 1e6 / unit:.4f} ms of CPU per {per} ({n} requests"
          f"{'' if kind.endswith('1k') else f' of {args.large_mib} MiB'}); user {u * 1000 / unit:.4f} ms, "
          f"system {sy * 1000 / unit:.4f} ms (from ticks)")


def perf(ctx, args, kind):
    """Where the CPU time goes, kernel included: `perf record` (cpu-clock
    samples) attached for the measured requests."""
    out = os.path.join(args.outdir, f"perf.{kind}")
    with warmed(ctx, args, kind) as r:
        pr = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "10000", "-g", "-p", str(r.pid),
                               "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        r.measure()
        pr.send_signal(signal.SIGINT)
        pr.wait(timeout=120)
    n = r.n
    rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "--percent-limit", "0.7"], capture_output=True, text=True, timeout=600).stdout
    unit, per = r.unit, r.per
    samples = re.search(r"of event 'cpu-clock'\n# Event count \(approx.\): (\d+)", rep)
    total_ms = int(samples.group(1)) / 1e6 if samples else 0
    kernel = sum(float(m.group(1)) for m in re.finditer(r"^\s+([\d.]+)%\s+\[kernel", rep, re.M))
    print(f"\n== {kind}: {total_ms / unit:.3f} ms of CPU per {per} sampled (perf cpu-clock, {n} requests); "
          f"the kernel's share of the symbols shown: {kernel:.0f}%")
    for line in rep.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if m:
            print(f"  {m.group(1):>6}%  {m.group(2)[:24]:24} {m.group(4)[:110]}")


def trace(ctx, args, kind):
    """The system calls of a few requests, one by one."""
    strace(ctx, args, kind, full=True)


def strace(ctx, args, kind, full=False):
    out = os.path.join(args.outdir, f"strace{'-full' if full else ''}.{kind}")
    with warmed(ctx, args, kind) as r:
        opts = ["-f", "-tt", "-s", "80"] if full else ["-c", "-f"]
        if full:
            r.n = min(r.n, 3)
        st = subprocess.Popen(["strace"] + opts + ["-p", str(r.pid), "-o", out], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        # strace says "attached" for each thread once it is in.
        line = b""
        deadline = time.monotonic() + 30
        while b"attached" not in line and time.monotonic() < deadline:
            line = st.stderr.readline()
            if not line:
                break
        time.sleep(0.2)
        r.measure()
        st.send_signal(signal.SIGINT)
        st.wait(timeout=60)
    n, unit, per = r.n, r.unit, r.per
    if full:
        print(f"\n== {kind}: every system call of {n} requests ({out})")
        with open(out) as f:
            for line in f.readlines()[:400]:
                print("  " + line.rstrip()[:200])
        return
    rows = []
    with open(out) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
                calls = int(p[3])
                rows.append((calls, p[-1], float(p[1])))
    total = sum(r[0] for r in rows)
    print(f"\n== {kind}: {total / unit:.1f} system calls per {per} ({n} requests"
          f"{'' if kind.endswith('1k') else f' of {args.large_mib} MiB'})")
    for calls, name, secs in sorted(rows, reverse=True):
        print(f"  {calls / unit:8.2f}  {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=os.path.join(REPO, "target", "swift-venv"))
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "swift-proxy-server"))
    ap.add_argument("--tool", default="callgrind,strace")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--requests", type=int, default=2000, help="small requests measured (2000)")
    ap.add_argument("--large-requests", type=int, default=4, help="large requests measured (4)")
    ap.add_argument("--large-mib", type=int, default=64, help="large object size in MiB (64)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.outdir = tempfile.mkdtemp(prefix="swift-objprofile-out-")
    import pwd
    ctx = B.Ctx()
    ctx.venv, ctx.start_timeout, ctx.keep = os.path.abspath(args.venv), 120, False
    ctx.user = pwd.getpwuid(os.getuid()).pw_name
    # The binary is copied so a concurrent build cannot swap it mid-run.
    ctx.bin = tempfile.mkdtemp(prefix="swift-objprofile-bin-")
    shutil.copy2(args.binary, ctx.bin)
    args.binary = os.path.join(ctx.bin, "swift-proxy-server")
    print(f"binary: {args.binary} (copied)")
    for kind in args.kinds.split(","):
        if kind not in KINDS:
            sys.exit(f"unknown kind {kind}; known: {', '.join(KINDS)}")
        for tool in args.tool.split(","):
            {"callgrind": callgrind, "strace": strace, "trace": trace, "perf": perf, "cpu": cpu}[tool](ctx, args, kind)
    shutil.rmtree(ctx.bin, ignore_errors=True)


if __name__ == "__main__":
    main()
