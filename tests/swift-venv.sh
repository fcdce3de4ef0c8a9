#!/usr/bin/env bash
# Make sure target/swift-venv holds Python Swift from PyPI, the reference the
# differential tests and the benchmarks compare against, and print its path.
# Idempotent: a marker file records the version, so this runs pip only once.
# Used by test.sh and bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT_PY_VERSION=2.38.3
VENV="$PWD/target/swift-venv"
if [ ! -f "$VENV/.ready-$SWIFT_PY_VERSION" ]; then
    echo "swift-venv.sh: creating $VENV with Python Swift $SWIFT_PY_VERSION from PyPI (once; cached)" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "swift==$SWIFT_PY_VERSION" >&2
    touch "$VENV/.ready-$SWIFT_PY_VERSION"
fi
echo "$VENV"
