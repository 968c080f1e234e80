#!/usr/bin/env bash
# Functional check of the runtime on aarch64 under emulation (qemu-user), on an x86_64 host.
#   packaging/arm64-smoke.sh [WORK_DIR]          classify and eval (needs root: apt-get, unshare -m)
#   packaging/arm64-smoke.sh [WORK_DIR] --tests  the runtime's test subset (ARM64_TESTS) instead
#   (the agent tests run against the host's Mosquitto; no test that starts a Python child is in
#   the subset: without binfmt_misc an emulated process cannot exec an aarch64 binary)
# 1. Debian's qemu-user-static and Debian arm64 Python 3.11 packages, unpacked into a folder;
# 2. the aarch64 wheels of numpy, onnxruntime and tokenizers from PyPI;
# 3. classify and eval with the default bundle, inside `unshare -m` with an arm64
#    /proc/cpuinfo bind-mounted over the host's (onnxruntime reads it at import and segfaults
#    on the host's x86 one). The host's /proc is untouched outside the namespace.
# Emulation is much slower than a real board: this checks function, not speed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
work="${1:-$root/build/arm64-smoke}"
mode="${2:-smoke}"
sysroot="$work/sysroot"
site="$work/site"
mkdir -p "$work/debs" "$sysroot" "$site"

if ! command -v qemu-aarch64-static >/dev/null; then
    apt-get install -y -q qemu-user-static >&2
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -q >&2
fi

pkgs="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0
      libuuid1 libtinfo6 libncursesw6 libreadline8 libcrypt1 libdb5.3 libgdbm6
      libnsl2 libtirpc3 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libgssapi-krb5-2
      python3.11-minimal libpython3.11-minimal libpython3.11-stdlib"
(cd "$work/debs" && for p in $pkgs; do
    ls "${p}"_*_arm64.deb >/dev/null 2>&1 || apt-get download -q "$p:arm64" >&2
done)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done

py=(--python-version 3.11 --implementation cp --abi cp311 --only-binary=:all:
    --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64
    --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64
    --platform manylinux_2_34_aarch64)
[ -d "$site/onnxruntime" ] || pip install --quiet --target "$site" "${py[@]}" \
    "numpy>=1.24" "tokenizers>=0.15" "onnxruntime>=1.18" >&2
if [ "$mode" = "--tests" ] && [ ! -d "$site/_pytest" ]; then
    # the tflite and agent extras and pytest, also as aarch64 wheels
    pip install --quiet --target "$site" "${py[@]}" "ai-edge-litert>=1.2" "paho-mqtt>=2.0,<3" \
        "cryptography>=41" "pydantic>=2.5,<3" "tomli-w>=1.0,<2" "pytest>=8" >&2
fi

cat > "$work/cpuinfo" <<'CPUINFO'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

CPUINFO

cat > "$work/smoke.py" <<'PY'
import json, platform, sys
from pathlib import Path
from edge_sentiment import SentimentClassifier
from edge_sentiment.evaluate import evaluate, read_labeled_tsv
clf = SentimentClassifier.load(runtime="onnx", threads=1)
pred = clf.classify("The battery died after two days")
texts, gold = read_labeled_tsv(Path(sys.argv[1]))
result, _ = evaluate(clf, texts, gold)
print(json.dumps({"machine": platform.machine(), "profile": clf.info.profile,
                  "backend": clf.info.backend, "label": pred.label, "score": round(pred.score, 4),
                  "eval_n": result["n"], "eval_accuracy": result["accuracy"]}))
PY

# The emulated core: a Cortex-A72 as on a Raspberry Pi 4 (try cortex-a76 for a Pi 5).
# qemu's default 'max' core advertises i8mm/SVE; onnxruntime's int8 kernels then give wrong
# results under qemu 7.2 (the golden self-test rejects the model), while fp32 stays exact.
export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
export QEMU_LD_PREFIX="$sysroot"
export PYTHONPATH="$site:$root"
export PYTHONNOUSERSITE=1
# The runtime's subset: bundle, tokenizer, backends, selector and profiles, classifier, CLI,
# the protocol, and the agent against Mosquitto (the host's, started by the tests).
ARM64_TESTS="tests/edge_sentiment/test_bundle.py tests/edge_sentiment/test_tokenize.py
  tests/edge_sentiment/test_backends.py tests/edge_sentiment/test_batching.py
  tests/edge_sentiment/test_classifier.py tests/edge_sentiment/test_cli.py
  tests/edge_sentiment/hardware tests/edge_sentiment/protocol
  tests/edge_sentiment/agent/test_parts.py tests/edge_sentiment/agent/test_updates.py"
if [ "$mode" = "--tests" ]; then
    # shellcheck disable=SC2086  # the list splits into paths on purpose
    ARM64_TESTS=$(printf '%s ' $ARM64_TESTS)
    cd "$root" && exec unshare -m sh -c "mount --bind '$work/cpuinfo' /proc/cpuinfo && \
        qemu-aarch64-static '$sysroot/usr/bin/python3.11' -m pytest -q -p no:cacheprovider \
        -o addopts='' -m 'not host' --deselect tests/edge_sentiment/test_cli.py::test_classify_stdin_and_bad_bytes \
        $ARM64_TESTS"
fi
unset EDGE_SENTIMENT_SYSROOT  # the smoke reads the emulated machine: the arm64 cpuinfo above
unshare -m sh -c "mount --bind '$work/cpuinfo' /proc/cpuinfo && \
    qemu-aarch64-static '$sysroot/usr/bin/python3.11' '$work/smoke.py' \
    '$root/tests/fixtures/data/sst2/dev.tsv'"
