#!/usr/bin/env bash
# One command for the healthcheck benchmark: ours vs Python Swift vs nginx.
#
#   bench/run.sh            full run (3 interleaved rounds, 10 s per load
#                           point, 5 reloads of each kind under load; about
#                           8 minutes), writes bench/RESULTS.md
#   bench/run.sh --quick    smoke run (1 round, 2 s per point, 2 reloads of
#                           each kind; about 1 minute), prints the table,
#                           does not touch bench/RESULTS.md
#   bench/run.sh --help     the driver's options
#   bench/run.sh --objects [--quick]
#                           the object data path instead (bench/objects.py:
#                           1 KiB, 1 MiB, 1 GiB GET and PUT through our proxy,
#                           Python's, and straight to the object servers; a
#                           full run takes about 25 minutes and writes its own
#                           section of bench/RESULTS.md); needs memcached
#   bench/run.sh --faults   failing storage nodes instead: our proxy and
#                           Python Swift's under load while nodes die, stall
#                           or answer garbage (bench/faults.py, about 10
#                           minutes), writes the "Failing nodes" section of
#                           bench/RESULTS.md; --faults --quick is a smoke run,
#                           --faults --help its options
#
# What it sets up first (each step is skipped when already done):
#   - wrk and nginx from the distribution (apt-get; needs root or sudo). The
#     bench runs its own nginx from a generated config in a temp dir; it never
#     uses, starts or stops the system's nginx service. Note that on a host
#     whose policy lets packages start services, installing Debian's nginx
#     package starts nginx.service; the bench leaves it alone.
#   - target/swift-venv: Python Swift from PyPI, created exactly as ./test.sh
#     creates it (the same marker file, so the two share it).
#   - our release build of swift-init and swift-proxy-server.
# Then it runs bench/bench.py (system python3, standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

# The system python3 (not a pyenv shim): the driver needs only the stdlib.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# --objects: the object data path (bench/objects.py); --faults: failing
# nodes (bench/faults.py); bench/bench.py otherwise.
DRIVER=bench/bench.py
args=()
for arg in "$@"; do
    case "$arg" in
        --objects) DRIVER=bench/objects.py ;;
        --faults) DRIVER=bench/faults.py ;;
        *) args+=("$arg") ;;
    esac
done
for arg in "${args[@]}"; do
    case "$arg" in
        -h|--help) exec "$PY" "$DRIVER" --help ;;
    esac
done

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "bench/run.sh: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

missing=()
if [ "$DRIVER" != bench/bench.py ]; then
    # The object and failing-nodes clusters need memcached (as ./test.sh does).
    command -v memcached >/dev/null || [ -x /usr/bin/memcached ] || missing+=(memcached)
fi
if [ "$DRIVER" != bench/faults.py ]; then
    command -v wrk >/dev/null || missing+=(wrk)
fi
if [ "$DRIVER" = bench/bench.py ] && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    # Debian 12's nginx-light is nginx plus the echo module; plain nginx is
    # all the bench needs (`return 200` is in the core).
    missing+=(nginx)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: installing ${missing[*]} from the distribution"
    as_root apt-get install -y --no-install-recommends "${missing[@]}" \
        || { as_root apt-get update && as_root apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

# The same venv as test.sh.
VENV="$(tests/swift-venv.sh)"

echo "bench/run.sh: building our release binaries"
cargo build --release --locked -p swift-init -p swift-proxy-server --bins

exec "$PY" "$DRIVER" --venv "$VENV" --bin-dir "$PWD/target/release" "${args[@]}"
