#!/usr/bin/env bash
# Install the Debian tools the test suite drives, if any is missing (needs root and apt-get):
# mosquitto (MQTT tests), shellcheck, chromium (page test), prometheus (promtool),
# qemu-user-static (arm64 check). Prints what it does; does nothing when all are present.
set -euo pipefail

declare -A need=([mosquitto]=mosquitto [mosquitto_passwd]=mosquitto [shellcheck]=shellcheck
                 [chromium]=chromium [promtool]=prometheus [qemu-aarch64-static]=qemu-user-static)
missing=()
for tool in "${!need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing test tools; install them with: apt-get install -y ${pkgs[*]}" >&2
    exit 1
fi
echo "installing test tools: ${pkgs[*]}" >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2
