#!/bin/sh
# Launcher of the one-folder build: runs lib/edge-sentiment-bin next to this file's real path,
# so a symlink (install.sh: /usr/local/bin/edge-sentiment) works.
here=$(dirname "$(readlink -f "$0")")
exec "$here/lib/edge-sentiment-bin" "$@"
