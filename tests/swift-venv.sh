#!/usr/bin/env bash
# Make sure target/swift-venv holds Python Swift from PyPI, the reference the
# differential tests, Swift's functional tests and the benchmarks compare
# against, and print its path.
#
# Every package is pinned by tests/swift-venv-constraints.txt. A marker file
# named after that file's hash caches the venv, so pip runs once, and again
# only when the pins change. After installing, the venv is checked against
# the pins (`--check` does only that, for a venv that already exists).
#
# Also fetched once into the venv: Swift's source distribution of the same
# version (src/swift-<version>/), which ships test/functional, Swift's own
# functional tests.
#
# Used by test.sh and bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CONSTRAINTS="${SWIFT_VENV_CONSTRAINTS:-$PWD/tests/swift-venv-constraints.txt}"
SWIFT_PY_VERSION=$(sed -n 's/^swift==//p' "$CONSTRAINTS")
VENV="${SWIFT_VENV_DIR:-$PWD/target/swift-venv}"
PIN_HASH=$(sha256sum "$CONSTRAINTS" | cut -c1-16)
MARKER="$VENV/.ready-$PIN_HASH"

# The installed set must be exactly the pinned set: same names, same versions.
check_pins() {
    local want have
    want=$(grep -v '^#' "$CONSTRAINTS" | grep . | tr 'A-Z_' 'a-z-' | sort)
    have=$("$VENV/bin/python3" -m pip freeze --all 2>/dev/null \
        | grep -v -E '^(pip|setuptools|wheel)==' | tr 'A-Z_' 'a-z-' | sort)
    if [ "$want" != "$have" ]; then
        echo "swift-venv.sh: $VENV differs from $CONSTRAINTS:" >&2
        diff <(echo "$want") <(echo "$have") | grep '^[<>]' \
            | sed 's/^</  pinned:   /; s/^>/  installed:/' >&2
        return 1
    fi
}

if [ "${1-}" = --check ]; then
    check_pins
    exit
fi

if [ ! -f "$MARKER" ]; then
    echo "swift-venv.sh: creating $VENV: Python Swift $SWIFT_PY_VERSION and its" \
        "pinned dependencies from PyPI (once; cached until the pins change)" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$CONSTRAINTS" "swift==$SWIFT_PY_VERSION" python-swiftclient pytest >&2
    # Swift's functional tests are only in the source distribution.
    mkdir -p "$VENV/src"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$VENV/src" "swift==$SWIFT_PY_VERSION" >&2
    tar -xzf "$VENV/src/swift-$SWIFT_PY_VERSION.tar.gz" -C "$VENV/src"
    check_pins
    touch "$MARKER"
fi
echo "$VENV"
