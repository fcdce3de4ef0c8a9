#!/usr/bin/env bash
# Runs every test of the workspace: formatting and lints are CI's business, this
# is the behaviour. Idempotent; safe to run again and again.
#
# What it sets up first (each step is skipped when already done):
#   - target/swift-venv: Python Swift from PyPI, the reference that the
#     differential and interop tests compare against.
#   - mandoc (Debian package, when root): lints the man pages.
#   - lintian (Debian package, when root): checks the .deb.
#   - memcached (Debian package, when root): the memcache client's tests
#     and the e2e cluster start their own on free ports; the system
#     service is not started.
#   - target/debian/swift-rs_<version>_<arch>.deb: packaging/build-deb.sh
#     (a release build), which tests/e2e/packaging.rs packages again.
set -euo pipefail
cd "$(dirname "$0")"

SWIFT_VENV="$(tests/swift-venv.sh)"
export SWIFT_VENV

# mandoc lints the man pages (tests/e2e/docs.rs); Debian package, once.
if ! command -v mandoc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing mandoc with apt-get (man page lint; once)"
    apt-get install -y -q mandoc >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q mandoc >/dev/null; }
fi

# lintian checks the Debian package (tests/e2e/packaging.rs); once.
if ! command -v lintian >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing lintian with apt-get (package checks; once)"
    apt-get install -y -q lintian >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q lintian >/dev/null; }
fi

# memcached: swift-proxy-server/tests/memcache.rs and the e2e cluster
# (tests/src/cluster.rs) run their own; once. A
# policy-rc.d (unless one exists) keeps the package from starting its service.
if ! command -v memcached >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing memcached with apt-get (memcache client tests and the e2e cluster; once)"
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    apt-get install -y -q memcached >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q memcached >/dev/null; } \
        || { [ -z "$policy" ] || rm -f "$policy"; exit 1; }
    [ -z "$policy" ] || rm -f "$policy"
    # Nor enabled at boot, where systemd runs.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable -q memcached 2>/dev/null || true
    fi
fi

# The release build and the .deb; the packaging test then only packages.
echo "test.sh: building the Debian package (packaging/build-deb.sh)"
./packaging/build-deb.sh

echo "test.sh: building the workspace binaries"
cargo build --workspace --bins --locked
echo "test.sh: running the tests"
cargo test --workspace --locked "$@"
