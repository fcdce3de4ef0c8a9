#!/usr/bin/env bash
# The development cluster on this machine, unprivileged, everything under the
# project: our proxy on 127.0.0.1:8080 (etc/dev/proxy-server.conf), Python
# Swift's account, container and object servers on 6202, 6201, 6200
# (etc/dev/*-server.conf.d, from the venv), their devices d1 d2 d3 in
# run/dev/srv/, a memcached on 127.0.0.1:11211, pid files and logs in run/.
#
#   etc/dev/cluster.sh start     # after `cargo build --release`
#   etc/dev/cluster.sh status
#   etc/dev/cluster.sh stop
#
# start, each step skipped when done already:
#   - the Python Swift venv (tests/swift-venv.sh; $SWIFT_VENV names an
#     existing one instead of target/swift-venv);
#   - memcached: installed with apt-get when root and missing, else a hint;
#   - the rings (etc/dev/{account,container,object}.ring.gz, part power 8,
#     3 replicas on d1 d2 d3 in zones 1 2 3), with the venv's
#     swift-ring-builder;
#   - etc/dev/*-server.conf.d/50-local.conf: the current user (Python's
#     servers need a name) and the absolute swift_dir and devices;
#   - memcached, started in its own session (run/memcached.pid);
#   - `swift-init --swift-dir etc/dev -r run main start`, with the venv's
#     bin/ on PATH: swift-init takes a server's binary from beside itself
#     first (our swift-proxy-server), then from PATH (Python's storage
#     servers).
# stop: `swift-init ... main stop`, then memcached (by its pid file, after
# checking that the pid is memcached).
#
# $SWIFT_INIT names another swift-init (default ./target/release/swift-init);
# a copy of it beside a swift-proxy-server link runs that proxy instead.
set -euo pipefail
export PYTHONWARNINGS=ignore # Python's own warnings are not Swift's output
cd "$(dirname "$0")/../.."

ETC=etc/dev
RUN=run
SWIFT_INIT="${SWIFT_INIT:-./target/release/swift-init}"
MEMCACHED_PORT=11211
MEMCACHED_PID="$RUN/memcached.pid"

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

venv() {
    SWIFT_VENV_DIR="${SWIFT_VENV:-$PWD/target/swift-venv}" tests/swift-venv.sh
}

need_swift_init() {
    [ -x "$SWIFT_INIT" ] || die "$SWIFT_INIT is not built: run \`cargo build --release\` first"
}

swift_init() {
    PATH="$VENV/bin:$PATH" "$SWIFT_INIT" --swift-dir "$ETC" -r "$RUN" "$@"
}

ensure_memcached() {
    command -v memcached >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing memcached with apt-get (once)"
        apt-get install -y -q memcached >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q memcached >/dev/null; }
    else
        die "memcached is missing: install it (sudo apt-get install memcached) and run again"
    fi
}

build_rings() {
    local ring port
    for ring in account:6202 container:6201 object:6200; do
        port=${ring#*:}
        ring=${ring%:*}
        [ -f "$ETC/$ring.ring.gz" ] && continue
        say "building $ETC/$ring.ring.gz"
        rm -f "$ETC/$ring.builder"
        "$VENV/bin/swift-ring-builder" "$ETC/$ring.builder" create 8 3 0 >/dev/null
        "$VENV/bin/swift-ring-builder" "$ETC/$ring.builder" add \
            "r1z1-127.0.0.1:$port/d1" 100 "r1z2-127.0.0.1:$port/d2" 100 \
            "r1z3-127.0.0.1:$port/d3" 100 >/dev/null
        # Exit status 1 is a warning (balance); 2 an error.
        "$VENV/bin/swift-ring-builder" "$ETC/$ring.builder" rebalance >/dev/null || [ $? = 1 ]
        [ -f "$ETC/$ring.ring.gz" ] || die "swift-ring-builder wrote no $ETC/$ring.ring.gz"
    done
}

write_local_confs() {
    local type
    for type in account container object; do
        cat >"$ETC/$type-server.conf.d/50-local.conf" <<EOF
# Written by etc/dev/cluster.sh start: this machine's user and paths.
[DEFAULT]
user = $(id -un)
swift_dir = $PWD/$ETC
devices = $PWD/$RUN/dev/srv
EOF
    done
}

# The pid in run/memcached.pid, if that process is a memcached.
memcached_pid() {
    local pid
    pid=$(cat "$MEMCACHED_PID" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = memcached ] && echo "$pid"
}

memcached_answers() {
    local line
    { exec 3<>"/dev/tcp/127.0.0.1/$MEMCACHED_PORT"; } 2>/dev/null || return 1
    printf 'version\r\n' >&3
    read -r -t 2 line <&3 || line=
    exec 3<&-
    [[ $line == VERSION* ]]
}

start_memcached() {
    local pid i as_root=()
    if pid=$(memcached_pid); then
        say "memcached is running (pid $pid)"
        return
    fi
    [ "$(id -u)" = 0 ] && as_root=(-u root) # memcached refuses root without -u
    # Its own session: it outlives this script and the terminal. Not -d,
    # which hides a failed bind.
    setsid memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 "${as_root[@]}" \
        </dev/null >"$RUN/memcached.log" 2>&1 &
    pid=$!
    echo "$pid" >"$MEMCACHED_PID"
    for i in $(seq 100); do
        memcached_answers && { say "memcached started (pid $pid)"; return; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$MEMCACHED_PID"
    die "memcached did not start on 127.0.0.1:$MEMCACHED_PORT: $(cat "$RUN/memcached.log")"
}

stop_memcached() {
    local pid i
    if ! pid=$(memcached_pid); then
        rm -f "$MEMCACHED_PID"
        say "memcached is not running"
        return
    fi
    kill "$pid"
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "memcached (pid $pid) did not exit within 10s"
    rm -f "$MEMCACHED_PID"
    say "memcached stopped (pid $pid)"
}

case "${1-}" in
start)
    need_swift_init
    VENV=$(venv)
    ensure_memcached
    mkdir -p "$RUN"/dev/srv/d{1,2,3}
    build_rings
    write_local_confs
    start_memcached
    swift_init main start
    ;;
stop)
    need_swift_init
    VENV=$(venv)
    status=0
    swift_init main stop || status=$?
    stop_memcached
    exit "$status"
    ;;
status)
    need_swift_init
    VENV=$(venv)
    status=0
    swift_init main status || status=$?
    if pid=$(memcached_pid); then echo "memcached running (pid $pid)"; else echo "No memcached running"; status=1; fi
    exit "$status"
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
