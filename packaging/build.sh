#!/usr/bin/env bash
# Build the edge-sentiment binaries in a fresh virtualenv; print their paths and sizes.
#   packaging/build.sh [OUT_DIR]      (default: dist/)
# OUT_DIR/edge-sentiment: the one-file build (copy one file anywhere).
# OUT_DIR/edge-sentiment-linux-ARCH.tar.gz: the one-folder build with its launcher, the device
# install that install.sh unpacks (no unpacking into a temp dir on every start).
# The binary runs on any Linux with a glibc at least as new as this build machine's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$root/dist}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install --quiet --upgrade pip
pip install --quiet "${root}[tflite,agent,serve,package]"

glibc="$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
# Targets: Raspberry Pi OS bookworm (glibc 2.36) and Ubuntu 22.04 on Jetson (glibc 2.35).
min_glibc="${MIN_GLIBC:-2.35}"
echo "building on glibc $glibc ($(uname -m)); the binary needs glibc >= $glibc" >&2
if [ "$(printf '%s\n%s\n' "$min_glibc" "$glibc" | sort -V | tail -n 1)" != "$min_glibc" ]; then
    echo "WARNING: glibc $glibc is newer than the oldest target ($min_glibc): this binary will" \
         "not start there. Build on Ubuntu 22.04 (or set MIN_GLIBC) for Jetson." >&2
fi

(cd "$here" && pyinstaller --noconfirm --clean --distpath "$out" --workpath "$work/build" \
    edge-sentiment.spec >&2)

binary="$out/edge-sentiment"
# the one-folder build: edge-sentiment/{edge-sentiment (launcher), lib/ (PyInstaller onedir)}
pack="$work/pack/edge-sentiment"
mkdir -p "$pack"
cp -a "$out/edge-sentiment-onedir" "$pack/lib"
install -m 0755 "$here/launcher.sh" "$pack/edge-sentiment"
tarball="$out/edge-sentiment-linux-$(uname -m).tar.gz"
tar -C "$work/pack" -czf "$tarball" edge-sentiment
rm -rf "$out/edge-sentiment-onedir"
# check the glibc symbol versions the binary and its bundled libraries ask for
needed="$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1 || true)"
echo "binary: $binary" 
echo "size_bytes: $(stat -c %s "$binary")"
echo "size_mb: $(( $(stat -c %s "$binary") / 1000000 ))"
echo "onedir: $tarball"
echo "onedir_size_bytes: $(stat -c %s "$tarball")"
echo "glibc_built_with: $glibc"
echo "glibc_oldest_target: $min_glibc"
echo "glibc_symbols_of_launcher: ${needed:-unknown}"
