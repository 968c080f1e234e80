#!/usr/bin/env bash
# Build the one-file edge-sentiment binary in a fresh virtualenv; print its path and size.
#   packaging/build.sh [OUT_DIR]      (default: dist/)
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
pip install --quiet "${root}[tflite,agent,package]"

glibc="$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
echo "building on glibc $glibc ($(uname -m)); the binary needs glibc >= $glibc" >&2

(cd "$here" && pyinstaller --noconfirm --clean --distpath "$out" --workpath "$work/build" \
    edge-sentiment.spec >&2)

binary="$out/edge-sentiment"
# check the glibc symbol versions the binary and its bundled libraries ask for
needed="$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1 || true)"
echo "binary: $binary" 
echo "size_bytes: $(stat -c %s "$binary")"
echo "size_mb: $(( $(stat -c %s "$binary") / 1000000 ))"
echo "glibc_built_with: $glibc"
echo "glibc_symbols_of_launcher: ${needed:-unknown}"
