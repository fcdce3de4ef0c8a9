#!/usr/bin/env bash
# Runs every test of the workspace: formatting and lints are CI's business, this
# is the behaviour. Idempotent; safe to run again and again.
#
# What it sets up first (each step is skipped when already done):
#   - target/swift-venv: Python Swift from PyPI, the reference that the
#     differential and interop tests compare against.
set -euo pipefail
cd "$(dirname "$0")"

SWIFT_PY_VERSION=2.38.3
VENV="$PWD/target/swift-venv"
if [ ! -f "$VENV/.ready-$SWIFT_PY_VERSION" ]; then
    echo "test.sh: creating $VENV with Python Swift $SWIFT_PY_VERSION from PyPI (once; cached)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "swift==$SWIFT_PY_VERSION"
    touch "$VENV/.ready-$SWIFT_PY_VERSION"
fi
export SWIFT_VENV="$VENV"

echo "test.sh: building the workspace binaries"
cargo build --workspace --bins --locked
echo "test.sh: running the tests"
cargo test --workspace --locked "$@"
