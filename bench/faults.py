#!/usr/bin/env python3
"""Failing storage nodes: our proxy and Python Swift's, side by side.

Run it through `bench/run.sh --faults` (which creates the Python Swift venv
and builds our release binaries), or directly with --venv and --bin-dir.
Standard library only.

The scenarios are the end-to-end tests' (tests/e2e/faults.rs), run by its
ignored test `faults::bench_failing_nodes` once per proxy, bigger and longer
than the tests run them: a real cluster (Python Swift's account, container
and four object servers with one device each, three replicas, memcached;
the proxy under test with two workers and short timeouts), a load of
concurrent PUTs and GETs of small objects, one fault injected mid-load
(an object server SIGKILLed or SIGSTOPped, a device unmounted, a server
answering 507, 503 or garbage, memcached restarted, a proxy worker
SIGKILLed, three of four object servers killed), every acknowledged object
read back; then large GETs whose serving node is killed or stopped mid-body,
and clients that go away or stall mid-PUT and mid-GET. The test appends
one JSON line per outcome to a file; this driver runs it for each proxy
and writes the "Failing nodes" section of bench/RESULTS.md between its own
markers (nothing else in the file changes).
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BEGIN = "<!-- BEGIN FAILING NODES by bench/faults.py: replaced by each full run -->"
END = "<!-- END FAILING NODES -->"
LABELS = {"ours": "Ours", "python": "Python Swift"}
TEST = "faults::bench_failing_nodes"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", default=os.path.join(REPO, "target/swift-venv"),
                   help="the Python Swift venv (tests/swift-venv.sh makes it)")
    p.add_argument("--bin-dir", default=os.path.join(REPO, "target/release"),
                   help="where our swift-proxy-server is (default target/release)")
    p.add_argument("--proxies", default="ours,python",
                   help="which proxies, in order (default ours,python)")
    p.add_argument("--threads", type=int, default=12,
                   help="client threads, each a PUT then a GET, again and again (default 12)")
    p.add_argument("--seconds", type=float, default=8.0,
                   help="load after each fault, in seconds (default 8; a quarter of it, "
                        "at least 0.5 s, runs before the fault)")
    p.add_argument("--quick", action="store_true",
                   help="6 threads, 2.5 s: a smoke run; prints the section and writes "
                        "target/bench-faults-last.md, leaves bench/RESULTS.md alone")
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                   help="the file whose 'Failing nodes' section is replaced")
    p.add_argument("--timeout", type=float, default=1800,
                   help="bound on one proxy's run, in seconds (default 1800)")
    p.add_argument("--keep", action="store_true",
                   help="keep the clusters' configs, logs and devices (SWIFT_CLUSTER_KEEP)")
    args = p.parse_args()
    if args.quick:
        args.threads, args.seconds = 6, 2.5
    args.proxies = [x.strip() for x in args.proxies.split(",") if x.strip()]
    for x in args.proxies:
        if x not in LABELS:
            p.error("--proxies takes ours and/or python, not %r" % x)
    return args


def run_one(args, proxy, scratch):
    """Run the scenarios against one proxy; its outcomes (a list of dicts)."""
    out_json = os.path.join(scratch, "%s.jsonl" % proxy)
    log_path = os.path.join(scratch, "%s.log" % proxy)
    env = dict(os.environ)
    env.update({
        "SWIFT_VENV": args.venv,
        "SWIFT_FAULTS_PROXY": proxy,
        "SWIFT_FAULTS_OUR_PROXY": os.path.join(args.bin_dir, "swift-proxy-server"),
        "SWIFT_FAULTS_THREADS": str(args.threads),
        "SWIFT_FAULTS_SECONDS": str(args.seconds),
        "SWIFT_FAULTS_JSON": out_json,
        "PYTHONWARNINGS": "ignore",
    })
    if args.keep:
        env["SWIFT_CLUSTER_KEEP"] = "1"
    cmd = ["cargo", "test", "--locked", "-p", "swift-tests", "--test", "e2e", "--",
           "--ignored", "--exact", TEST, "--nocapture", "--test-threads=1"]
    print("bench/faults.py: %s: %s" % (LABELS[proxy], " ".join(cmd)), flush=True)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        # Its own session: on a timeout the whole group (cargo, the test,
        # the cluster it started) is ours to end.
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            rc = child.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            rc = "timeout after %.0f s" % args.timeout
        except BaseException:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
    took = time.monotonic() - started
    with open(log_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        # libtest's "test NAME ... " may precede the first line.
        for mark in ("fault=", "client "):
            if mark in line and not line.startswith("    "):
                line = line[line.index(mark):]
                break
        if line.startswith(("fault=", "client ", "    ")):
            print("  " + line, flush=True)
    outcomes = []
    if os.path.exists(out_json):
        with open(out_json) as f:
            outcomes = [json.loads(l) for l in f if l.strip()]
    if rc != 0:
        tail = "\n".join(text.splitlines()[-40:])
        print("bench/faults.py: %s: the run failed (%s):\n%s" % (LABELS[proxy], rc, tail),
              file=sys.stderr, flush=True)
    return {"outcomes": outcomes, "rc": rc, "seconds": took}


def num(n):
    return "{:,}".format(n)


def failed(t):
    return "%s/%s" % (num(t["failed"]), num(t["total"]))


def how(t):
    """Failures by kind, e.g. `503: 12, reset: 1`."""
    return ", ".join("%s: %s" % (k, num(v)) for k, v in sorted(t["by_outcome"].items()))


def load_cell(o):
    if o is None:
        return "n/a"
    s = "%s · %s" % (failed(o["reads"]), failed(o["writes"]))
    if not o["met"]:
        s += " **not met**"
    return s


def slowest(o):
    if o is None:
        return "n/a"
    return "%.2f s · %.2f s" % (o["reads"]["max_latency_s"], o["writes"]["max_latency_s"])


def readback(o):
    if o is None:
        return "n/a"
    s = "%s/%s" % (num(o["readback_ok"]), num(o["readback_total"]))
    s += "; 3 replicas: %s" % num(o["replicas_3"])
    if o["replicas_short"]:
        s += "; **%s with fewer than 2**" % num(o["replicas_short"])
    if o["unacked"]:
        s += "; unacked %s (%s visible, whole)" % (num(o["unacked"]), num(o["unacked_visible"]))
    if o["unacked_bad"]:
        s += "; **%s unacked wrong or unknown**" % num(o["unacked_bad"])
    if o["wrong_bytes"]:
        s += "; **%s wrong bytes**" % num(o["wrong_bytes"])
    return s


def resume_cell(o):
    if o is None:
        return "n/a"
    if o["whole"]:
        s = "every byte once (MD5 = ETag)"
    else:
        s = "**%s of %s bytes, not the object**" % (num(o["received"]), num(o["size"]))
        if o.get("error"):
            s += " (%s)" % o["error"]
    s += "; rest from another replica: %s; %.1f s" % (
        "yes" if o["resumed_elsewhere"] else "no", o["seconds"])
    return s


def client_cell(o):
    if o is None:
        return "n/a"
    parts = ["logged %s" % (o["logged"] if o["logged"] is not None else "nothing")]
    if o["answered"] is not None:
        parts.append("client got %s" % o["answered"])
    after = o["backend_closed_after"]
    parts.append("backend closed after %.2f s" % after if after is not None
                 else "**backend connections still open**")
    if o["no_object"] is True:
        parts.append("no object")
    elif o["no_object"] is False:
        parts.append("**an object was left behind**")
    return "; ".join(parts)


def machine():
    cpus = os.cpu_count()
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
    except OSError:
        load = "?"
    return "%s CPUs, kernel %s, load average %s at the end" % (cpus, platform.release(), load)


def commit():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!bench"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (with uncommitted changes outside bench/)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def swift_version(venv):
    try:
        out = subprocess.run([os.path.join(venv, "bin/python"), "-c",
                              "import swift; print(swift.__version__)"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def section(args, runs, started):
    proxies = args.proxies
    by = {p: runs[p]["outcomes"] for p in proxies}
    kinds = {}
    order = []
    for p in proxies:
        for o in by[p]:
            key = (o["kind"], o.get("fault") or o.get("what"))
            if key not in kinds:
                kinds[key] = {}
                order.append(key)
            kinds[key][p] = o
    lines = [BEGIN, "", "## Failing nodes: ours and Python Swift's proxy", ""]
    lines.append("Written by `bench/run.sh --faults` (bench/faults.py). Run of %s UTC; "
                 "commit %s; Python Swift %s; %s." % (
                     started.strftime("%Y-%m-%d %H:%M"), commit(), swift_version(args.venv),
                     machine()))
    lines.append("")
    lines.append(
        "The scenarios of tests/e2e/faults.rs, bigger and longer: a cluster of Python Swift's "
        "account, container and **four object servers** (one device each, 3 replicas: every "
        "partition has a handoff), memcached, and the proxy under test with 2 workers, "
        "`conn_timeout = 0.5`, `node_timeout = 2`, `recoverable_node_timeout = 1`, "
        "`client_timeout = 5`, `post_quorum_timeout = 0.5`, `error_suppression_interval = 3` (and each scenario starts 3 s after the one before healed its fault, so that nothing is error-limited any more). "
        "**%d client threads**, each a PUT (1 B to 16 KiB, its MD5 as ETag) then a GET of a "
        "random acknowledged object, on a new connection each, for %.1f s before the fault "
        "and **%.1f s after it**; a 401 gets a new token (up to three tries, 0.2 s apart) and one retry, as swiftclient does. "
        "A request fails when it gets anything but a 201 with the right ETag or a 200 with "
        "the right bytes and ETag, or no answer within 20 s. Then every acknowledged object "
        "is read back (with the fault still in place, except for the lost quorum), every "
        "unacknowledged one must be absent or whole, and every acknowledged one is counted "
        "on the devices." % (args.threads, max(args.seconds / 4, 0.5), args.seconds))
    lines.append("")
    lines.append("| Fault, mid-load | Expected failures (reads; writes) | Ours: failed reads · writes "
                 "| Python: failed reads · writes | Ours: slowest read · write "
                 "| Python: slowest read · write |")
    lines.append("|---|---|---|---|---|---|")
    for key in order:
        if key[0] != "load":
            continue
        row = kinds[key]
        any_o = next(iter(row.values()))
        expect = "%s; %s" % (any_o["expect_reads"], any_o["expect_writes"])
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            key[1], expect, load_cell(row.get("ours")), load_cell(row.get("python")),
            slowest(row.get("ours")), slowest(row.get("python"))))
    lines.append("")
    lines.append("Read back (acknowledged objects whole with their ETag, of all; how many "
                 "have 3 replicas on disk, the lost primary's on the handoff; 2 is a "
                 "quorum: a PUT in flight to the node when it failed ends so, as in "
                 "Swift; unacknowledged PUTs, and how many are there, whole):")
    lines.append("")
    lines.append("| Fault | Ours | Python |")
    lines.append("|---|---|---|")
    for key in order:
        if key[0] == "load":
            row = kinds[key]
            lines.append("| %s | %s | %s |" % (key[1], readback(row.get("ours")),
                                               readback(row.get("python"))))
    lines.append("")
    lines.append("A large GET (64 MiB, the client reading through a 64 KiB window) whose "
                 "serving object server (found in /proc/net/tcp) gets a signal after 1 MiB; "
                 "and clients that go away or stall (a PUT of 4 MiB cut or stalled after "
                 "256 KiB; a GET of the large object cut, or no longer read, after 1 MiB):")
    lines.append("")
    lines.append("| Check | Ours | Python |")
    lines.append("|---|---|---|")
    for key in order:
        row = kinds[key]
        if key[0] == "resume":
            lines.append("| %s mid-GET | %s | %s |" % (key[1], resume_cell(row.get("ours")),
                                                     resume_cell(row.get("python"))))
        elif key[0] == "client":
            lines.append("| client %s | %s | %s |" % (key[1], client_cell(row.get("ours")),
                                                    client_cell(row.get("python"))))
    lines.append("")
    lines.append("What failed, by kind, and notes:")
    lines.append("")
    for key in order:
        if key[0] != "load":
            continue
        for p in proxies:
            o = kinds[key].get(p)
            if o is None:
                continue
            bits = []
            for what in ("reads", "writes"):
                if o[what]["failed"]:
                    bits.append("%s: %s (e.g. %s)" % (what, how(o[what]),
                                                      o[what]["samples"][0]))
            if o["reauths"]:
                bits.append("%s 401s cured by a new token" % num(o["reauths"]))
            bits.extend(o["notes"])
            if bits:
                lines.append("- %s, %s: %s" % (key[1], LABELS[p], "; ".join(bits)))
    for p in proxies:
        r = runs[p]
        if r["rc"] != 0:
            lines.append("- %s: the run did not finish cleanly (%s); the rows it did "
                         "not reach say n/a" % (LABELS[p], r["rc"]))
    lines.append("")
    lines.append("Each proxy's run took %s." % ", ".join(
        "%s %.0f s" % (LABELS[p], runs[p]["seconds"]) for p in proxies))
    lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path, text):
    with open(path) as f:
        old = f.read()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + text.rstrip("\n") + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text
    with open(path, "w") as f:
        f.write(new)


def main():
    args = parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    scratch = tempfile.mkdtemp(prefix="bench-faults-")
    runs = {}
    for proxy in args.proxies:
        runs[proxy] = run_one(args, proxy, scratch)
    text = section(args, runs, started)
    if args.quick:
        out = os.path.join(REPO, "target/bench-faults-last.md")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        print(text)
        print("bench/faults.py: --quick: wrote %s; %s left alone" % (out, args.results))
    else:
        write_section(args.results, text)
        print(text)
        print("bench/faults.py: wrote the 'Failing nodes' section of %s" % args.results)
    print("bench/faults.py: logs and JSON in %s" % scratch)
    return 0 if all(r["rc"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
