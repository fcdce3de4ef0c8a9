#!/usr/bin/env bash
# Builds the Debian package of this project: target/debian/swift-rs_<version>_<arch>.deb
#
#   packaging/build-deb.sh [--out-dir DIR] [--no-build]
#
#   --out-dir DIR  write the .deb to DIR instead of target/debian/
#   --no-build     package the release binaries already built (fails if missing)
#
# Steps: `cargo build --release --locked` of swift-init and swift-proxy-server
# (with swift-reload when the workspace has it), stage the files in a
# temporary root, strip the binaries, gzip the man pages (gzip -9n), write
# DEBIAN/ (control with Depends from dpkg-shlibdeps, md5sums, the maintainer
# scripts of packaging/deb/) and run `dpkg-deb --build --root-owner-group`.
# The result is reproducible: timestamps are clamped to SOURCE_DATE_EPOCH
# (default: the last commit's time).
#
# Needs: cargo, dpkg-deb, dpkg, gzip, strip (binutils); dpkg-shlibdeps
# (dpkg-dev) when available, else Depends is read from the binaries' ELF
# version needs with objdump. README.md, section "Packaging", says what goes
# where.
set -euo pipefail

PACKAGE=swift-rs
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

die() {
    echo "build-deb.sh: error: $*" >&2
    exit 1
}
say() { echo "build-deb.sh: $*"; }

out_dir=""
build=1
while (($#)); do
    case $1 in
        --out-dir)
            (($# >= 2)) || die "--out-dir needs a directory"
            out_dir=$2
            shift 2
            ;;
        --out-dir=*)
            out_dir=${1#*=}
            shift
            ;;
        --no-build)
            build=""
            shift
            ;;
        -h | --help)
            sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

for tool in cargo dpkg dpkg-deb gzip strip install md5sum find; do
    command -v "$tool" >/dev/null 2>&1 \
        || die "$tool is not installed (Debian: apt-get install dpkg-dev binutils gzip; cargo from rustup)"
done

umask 022
export LC_ALL=C

# Version: [workspace.package] version in Cargo.toml.
version=$(awk '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && $1 == "version" {
        gsub(/"/, "", $3); print $3; exit
    }' Cargo.toml)
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] \
    || die "no usable version in Cargo.toml's [workspace.package] (got '$version')"
arch=$(dpkg --print-architecture)
maintainer="${DEBFULLNAME:-swift-rs maintainers} <${DEBEMAIL:-maintainers@users.noreply.r-seed-941ab34d.example}>"

# Not exported: build scripts (cc) rebuild when SOURCE_DATE_EPOCH changes;
# only dpkg-deb gets it.
sde=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
[[ $sde =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH is not a number: $sde"
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# The binaries: swift-reload when the workspace defines it (issue 4).
metadata=$(cargo metadata --no-deps --format-version 1 --locked) \
    || die "cargo metadata failed (is Cargo.lock up to date?)"
bins=(swift-init swift-proxy-server)
if grep -q '"name":"swift-reload"' <<<"$metadata"; then
    bins+=(swift-reload)
fi
target_dir=$(grep -o '"target_directory":"[^"]*"' <<<"$metadata" | head -n1 | cut -d'"' -f4)
[[ -n $target_dir ]] || die "cannot find cargo's target directory in cargo metadata"
release="$target_dir/release"

if [[ -n $build ]]; then
    say "cargo build --release --locked (${bins[*]})"
    cargo build --release --locked -p swift-init -p swift-proxy-server --bins
fi
for b in "${bins[@]}"; do
    [[ -x $release/$b ]] || die "$release/$b is missing: build it (cargo build --release --locked) or drop --no-build"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/swift-rs-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/root
doc=$pkg/usr/share/doc/$PACKAGE

install -d "$pkg/usr/bin" "$doc/examples" "$pkg/usr/share/man" \
    "$pkg/usr/share/bash-completion/completions" "$pkg/usr/lib/tmpfiles.d"

# Binaries, stripped as dh_strip does (the release profile keeps line tables).
for b in "${bins[@]}"; do
    install -m 0755 "$release/$b" "$pkg/usr/bin/$b"
    strip --remove-section=.comment --remove-section=.note "$pkg/usr/bin/$b"
done

# Man pages: every man/NAME.SECTION, gzipped without name or timestamp.
shopt -s nullglob
pages=("$root"/man/*.[1-9])
shopt -u nullglob
((${#pages[@]})) || die "no man pages in man/"
for page in "${pages[@]}"; do
    name=$(basename "$page")
    section=${name##*.}
    install -d "$pkg/usr/share/man/man$section"
    gzip -9n -c "$page" >"$pkg/usr/share/man/man$section/$name.gz"
    chmod 0644 "$pkg/usr/share/man/man$section/$name.gz"
done
for b in "${bins[@]}"; do
    [[ -e $pkg/usr/share/man/man1/$b.1.gz ]] || say "warning: no man page man/$b.1 for /usr/bin/$b"
done

# Sample configs, uncompressed so they can be copied to /etc/swift.
install -m 0644 etc/proxy-server.conf-sample etc/swift.conf-sample "$doc/examples/"
install -m 0644 packaging/deb/README.Debian "$doc/README.Debian"

install -m 0644 packaging/bash-completion/swift-init \
    "$pkg/usr/share/bash-completion/completions/swift-init"
install -m 0644 packaging/deb/tmpfiles.conf "$pkg/usr/lib/tmpfiles.d/$PACKAGE.conf"

# The proxy's systemd unit (issue 4), when it is there.
unit=""
if [[ -f etc/systemd/swift-proxy.service ]]; then
    unit=swift-proxy.service
    install -d "$pkg/usr/lib/systemd/system"
    install -m 0644 etc/systemd/swift-proxy.service "$pkg/usr/lib/systemd/system/$unit"
else
    say "warning: etc/systemd/swift-proxy.service is missing: the package has no systemd unit"
fi

# changelog (a native package: changelog.gz, in Debian's format).
date_rfc=$(date -u -R -d "@$sde")
{
    echo "$PACKAGE ($version) unstable; urgency=medium"
    echo
    echo "  * Built from the $PACKAGE source tree at commit $commit."
    echo
    echo " -- $maintainer  $date_rfc"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# copyright: ours (Apache-2.0) and every Rust crate linked into the
# binaries, with its license files (the Apache License itself is in
# /usr/share/common-licenses; lintian rejects a copy).
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
{
    cat packaging/deb/copyright
    echo
    echo "The binaries statically link the Rust standard library (MIT OR"
    echo "Apache-2.0) and these crates (name version: license):"
    echo
    cargo tree --locked -e normal,no-proc-macro --prefix none -f '{p} {l}' \
        -p swift-init -p swift-proxy-server \
        | sed -e 's/ (\*)$//' -e 's/ ([^)]*\/[^)]*)//' \
        | grep -v -e '^swift-' -e '^$' | sort -u \
        | while read -r name ver license; do
            echo " $name ${ver#v}: $license"
        done
    echo
    echo "Their license files follow."
    cargo tree --locked -e normal,no-proc-macro --prefix none -f '{p}' \
        -p swift-init -p swift-proxy-server \
        | sed -e 's/ (\*)$//' | grep -v -e '^swift-' -e '^$' | sort -u \
        | while read -r name ver; do
            crate="$name-${ver#v}"
            dirs=("$registry"/*/"$crate")
            if [[ ! -d ${dirs[0]} ]]; then
                echo "build-deb.sh: warning: sources of $crate not found under $registry" >&2
                continue
            fi
            for f in "${dirs[0]}"/LICEN[CS]E* "${dirs[0]}"/COPYING*; do
                [[ -f $f ]] || continue
                # The Apache License 2.0's text: /usr/share/common-licenses/Apache-2.0.
                grep -q 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' "$f" && continue
                echo
                echo "--- $crate: $(basename "$f") ---"
                echo
                sed -e 's/[[:space:]]*$//' -e 's/\r$//' "$f"
            done
        done
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

# DEBIAN/
install -d -m 0755 "$pkg/DEBIAN"
for script in postinst prerm postrm; do
    sed "s/@UNIT@/$unit/" "packaging/deb/$script" >"$pkg/DEBIAN/$script"
    chmod 0755 "$pkg/DEBIAN/$script"
done

depends=""
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    # dpkg-shlibdeps wants a debian/control naming the package.
    install -d "$stage/src/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" "$PACKAGE" \
        >"$stage/src/debian/control"
    depends=$(cd "$stage/src" && dpkg-shlibdeps -O "${bins[@]/#/$pkg/usr/bin/}" \
        | sed -n 's/^shlibs:Depends=//p')
else
    # Without dpkg-dev: the libraries the binaries need (Rust links libc
    # and libgcc_s), at the newest symbol version they use.
    say "dpkg-shlibdeps not found (dpkg-dev): reading Depends from the ELF version needs"
    command -v objdump >/dev/null 2>&1 || die "neither dpkg-shlibdeps nor objdump is installed"
    glibc=$(objdump -T "${bins[@]/#/$pkg/usr/bin/}" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
    gcc=$(objdump -T "${bins[@]/#/$pkg/usr/bin/}" | grep -o 'GCC_[0-9.]*' | sed 's/GCC_//' | sort -V | tail -n1)
    depends="libc6 (>= ${glibc:-2.17})${gcc:+, libgcc-s1 (>= $gcc)}"
fi
[[ -n $depends ]] || die "could not compute the shared library dependencies"
depends="$depends, adduser"

installed_size=$(du -s -k --apparent-size --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: $PACKAGE
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Conflicts: swift-proxy
Section: net
Priority: optional
Description: OpenStack Swift's service layer in Rust: swift-init and the proxy
 A drop-in replacement for OpenStack Swift's process layer: swift-init,
 the service manager, and swift-proxy-server, with Swift's configuration
 files, command lines, pid files, exit codes and log lines.
 .
 swift-init also manages Swift's Python servers (swift-object-server and
 the others) when they are installed. The proxy serves Swift's API in front
 of Swift's account, container and object servers, reading the rings and
 swift.conf in /etc/swift.
 .
 This package conflicts with Debian's swift-proxy, which ships the same
 command, man pages and systemd unit name.
EOF

(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | sort | xargs -d '\n' md5sum) \
    >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

# Directories 0755, files as installed; mtimes clamped for reproducibility.
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg" -newermt "@$sde" -exec touch --no-dereference -d "@$sde" {} +

out_dir=${out_dir:-$target_dir/debian}
mkdir -p "$out_dir"
deb="$out_dir/${PACKAGE}_${version}_${arch}.deb"
SOURCE_DATE_EPOCH=$sde dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
say "built $deb ($(du -h "$deb" | cut -f1), ${bins[*]}${unit:+, $unit})"
