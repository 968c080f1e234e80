#!/bin/sh
# Install (or with --uninstall, remove) edge-sentiment and its agent service.
# For Raspberry Pi OS (Debian) and Jetson (Ubuntu). Idempotent: running it twice is safe.
#   sudo packaging/install.sh [--dist TARBALL | --binary PATH] [--broker URL] [--device-id ID]
#   sudo packaging/install.sh --uninstall [--purge]
# --dist (default: dist/edge-sentiment-linux-ARCH.tar.gz, from packaging/build.sh) unpacks the
# one-folder build into /opt/edge-sentiment; --binary installs a one-file build instead.
set -eu

BIN_DST=/usr/local/bin/edge-sentiment
OPT_DIR=/opt/edge-sentiment
UNIT_DST=/etc/systemd/system/edge-sentiment-agent.service
CONF_DIR=/etc/edge-sentiment
STATE_DIR=/var/lib/edge-sentiment
SVC_USER=edge-sentiment
HERE=$(cd "$(dirname "$0")" && pwd)
BINARY=""
DIST="$HERE/../dist/edge-sentiment-linux-$(uname -m).tar.gz"
BROKER="mqtt://127.0.0.1:1883"
DEVICE_ID=$(hostname)
UNINSTALL=0
PURGE=0
ROOT="${EDGE_SENTIMENT_ROOT:-}"   # install under another root (tests)

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BINARY="$2"; DIST=""; shift 2 ;;
        --dist) DIST="$2"; BINARY=""; shift 2 ;;
        --broker) BROKER="$2"; shift 2 ;;
        --device-id) DEVICE_ID="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

have_systemd() { [ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }

if [ "$UNINSTALL" -eq 1 ]; then
    if have_systemd; then
        systemctl disable --now edge-sentiment-agent.service 2>/dev/null || true
    fi
    rm -f "$ROOT$UNIT_DST" "$ROOT$BIN_DST"
    rm -rf "$ROOT${OPT_DIR:?}"
    if [ "$PURGE" -eq 1 ]; then
        rm -rf "$ROOT${CONF_DIR:?}" "$ROOT${STATE_DIR:?}"
        if [ -z "$ROOT" ] && id "$SVC_USER" >/dev/null 2>&1; then userdel "$SVC_USER"; fi
    fi
    if have_systemd; then systemctl daemon-reload; fi
    echo "edge-sentiment removed"
    exit 0
fi

# Refuse odd values early, with the flag's name (the binary validates them again).
if ! printf '%s' "$DEVICE_ID" | grep -Eq '^[A-Za-z0-9._-]{1,64}$'; then
    echo "install.sh: --device-id must be 1-64 letters, digits, '.', '_' or '-'" >&2
    exit 2
fi
if ! printf '%s' "$BROKER" | grep -Eq '^mqtts?://[][A-Za-z0-9.:_-]+(/[A-Za-z0-9._/-]*)?$'; then
    echo "install.sh: --broker must look like mqtts://host:8883 (no credentials or quotes)" >&2
    exit 2
fi

if [ -n "$BINARY" ] && [ ! -x "$BINARY" ]; then
    echo "install.sh: --binary $BINARY is not an executable file" >&2
    exit 2
fi
if [ -z "$BINARY" ] && [ ! -f "$DIST" ]; then
    echo "install.sh: $DIST not found (build it with packaging/build.sh, or pass --dist or --binary)" >&2
    exit 2
fi

if [ -z "$ROOT" ] && ! id "$SVC_USER" >/dev/null 2>&1; then
    useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin "$SVC_USER"
fi
install -d -m 0755 "$ROOT/usr/local/bin" "$ROOT$CONF_DIR" "$ROOT/etc/systemd/system"
install -d -m 0750 "$ROOT$STATE_DIR"
if [ -z "$ROOT" ]; then chown "$SVC_USER:$SVC_USER" "$STATE_DIR"; fi
if [ -n "$BINARY" ]; then
    rm -f "$ROOT$BIN_DST"
    install -m 0755 "$BINARY" "$ROOT$BIN_DST"
    rm -rf "$ROOT${OPT_DIR:?}"
else
    # unpack beside the old folder, check it, then swap: a failed unpack leaves the old install
    new="$ROOT$OPT_DIR.new"
    rm -rf "$new" && install -d -m 0755 "$new"
    if ! tar -xzf "$DIST" -C "$new" --no-same-owner || [ ! -x "$new/edge-sentiment/edge-sentiment" ]; then
        rm -rf "$new"
        echo "install.sh: $DIST is not an edge-sentiment one-folder build" >&2
        exit 2
    fi
    install -d -m 0755 "$ROOT/opt"
    rm -rf "$ROOT$OPT_DIR.old"
    if [ -d "$ROOT$OPT_DIR" ]; then mv "$ROOT$OPT_DIR" "$ROOT$OPT_DIR.old"; fi
    mv "$new/edge-sentiment" "$ROOT$OPT_DIR"
    rm -rf "$new" "$ROOT$OPT_DIR.old"
    rm -f "$ROOT$BIN_DST"
    ln -s "$OPT_DIR/edge-sentiment" "$ROOT$BIN_DST"
fi
install -m 0644 "$HERE/systemd/edge-sentiment-agent.service" "$ROOT$UNIT_DST"
if [ ! -f "$ROOT$CONF_DIR/agent.toml" ]; then
    # the installed binary validates the values and writes the TOML with a TOML library (0600)
    if [ -n "$BINARY" ]; then run="$ROOT$BIN_DST"; else run="$ROOT$OPT_DIR/edge-sentiment"; fi
    if ! "$run" agent --broker "$BROKER" --device-id "$DEVICE_ID" --state-dir "$STATE_DIR" \
            --trust "$CONF_DIR/trust.json" --write-config "$ROOT$CONF_DIR/agent.toml" >/dev/null; then
        echo "install.sh: the installed binary could not write $CONF_DIR/agent.toml" >&2
        exit 2
    fi
    if [ -z "$ROOT" ]; then chown "$SVC_USER:$SVC_USER" "$CONF_DIR/agent.toml"; fi
fi
if have_systemd; then
    systemctl daemon-reload
    systemctl enable edge-sentiment-agent.service
    echo "installed; copy your trust.json to $CONF_DIR, then: systemctl start edge-sentiment-agent"
else
    echo "installed under '${ROOT:-/}' (systemd not running: service not enabled)"
fi
