"""Packaging: shell scripts pass shellcheck, the unit verifies, install.sh is idempotent,
and (slow) the one-file binary runs every subcommand from an empty directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.helpers import default_bundle_version, free_port, wait_http

ROOT = Path(__file__).parents[2]
PKG = ROOT / "packaging"


def test_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck")
    result = subprocess.run(["shellcheck", str(PKG / "install.sh"), str(PKG / "build.sh"),
                             str(PKG / "launcher.sh")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available (Debian package: systemd)")
    unit = (PKG / "systemd/edge-sentiment-agent.service").read_text()
    for key in ("ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure",
                "ReadWritePaths=/var/lib/edge-sentiment", "User=edge-sentiment"):
        assert key in unit
    # verify needs ExecStart to exist: point it at a real executable for the check
    fake = tmp_path / "edge-sentiment-agent.service"
    fake.write_text(unit.replace("/usr/local/bin/edge-sentiment", shutil.which("true") or "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(fake)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_systemd_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available (Debian package: systemd)")
    unit = PKG / "systemd/edge-sentiment-agent.service"
    assert "Type=notify" in unit.read_text() and "WatchdogSec=" in unit.read_text()
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, check=False)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(match.group(1)) <= 2.0, result.stdout  # 3.8 before the hardening


def test_install_is_idempotent_and_uninstalls(tmp_path: Path) -> None:
    fake = tmp_path / "edge-sentiment"  # a stand-in binary: the real CLI for `agent`
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = agent ] && exec {sys.executable} -m edge_sentiment \"$@\"\n"
                    "echo fake\n")
    fake.chmod(0o755)
    root = tmp_path / "root"
    env = {**os.environ, "EDGE_SENTIMENT_ROOT": str(root)}
    for _ in range(2):
        r = subprocess.run(["sh", str(PKG / "install.sh"), "--binary", str(fake), "--device-id", "pi-1"],
                           env=env, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
    assert (root / "usr/local/bin/edge-sentiment").stat().st_mode & 0o111
    written = (root / "etc/edge-sentiment/agent.toml").read_text()
    assert 'device_id = "pi-1"' in written and 'broker = "mqtt://127.0.0.1:1883"' in written
    assert tomllib.loads(written)["trust"] == "/etc/edge-sentiment/trust.json"
    assert (root / "etc/edge-sentiment/agent.toml").stat().st_mode & 0o777 == 0o600
    for flag, value in (("--device-id", 'pi"\nbroker = "evil'), ("--broker", "mqtt://u:p@h:1883")):
        bad = subprocess.run(["sh", str(PKG / "install.sh"), "--binary", str(fake), flag, value],
                             env={**env, "EDGE_SENTIMENT_ROOT": str(tmp_path / "r2")},
                             capture_output=True, text=True, check=False)
        assert bad.returncode == 2 and flag in bad.stderr, bad.stderr
    assert (root / "etc/systemd/system/edge-sentiment-agent.service").is_file()
    bad = subprocess.run(["sh", str(PKG / "install.sh"), "--bogus"], env=env, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and "unknown argument" in bad.stderr
    r = subprocess.run(["sh", str(PKG / "install.sh"), "--uninstall", "--purge"], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0
    assert not (root / "usr/local/bin/edge-sentiment").exists()
    assert not (root / "etc/edge-sentiment").exists()


def _fake_dist(tmp: Path, word: str) -> Path:
    pack = tmp / f"pack-{word}" / "edge-sentiment"
    (pack / "lib").mkdir(parents=True)
    (pack / "lib" / "edge-sentiment-bin").write_text(
        f"#!/bin/sh\n[ \"$1\" = agent ] && exec {sys.executable} -m edge_sentiment \"$@\"\n"
        f"echo {word} \"$@\"\n")
    (pack / "lib" / "edge-sentiment-bin").chmod(0o755)
    shutil.copy2(PKG / "launcher.sh", pack / "edge-sentiment")
    tarball = tmp / f"{word}.tar.gz"
    subprocess.run(["tar", "-C", str(pack.parent), "-czf", str(tarball), "edge-sentiment"],
                   check=True)
    return tarball


def test_install_onedir_swaps_and_keeps_the_old_on_a_bad_tarball(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {**os.environ, "EDGE_SENTIMENT_ROOT": str(root)}

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(PKG / "install.sh"), *args, "--device-id", "pi-1"],
                              env=env, capture_output=True, text=True, check=False)

    for word in ("one", "two"):
        r = install("--dist", str(_fake_dist(tmp_path, word)))
        assert r.returncode == 0, r.stderr
    link = root / "usr/local/bin/edge-sentiment"
    assert os.readlink(link) == "/opt/edge-sentiment/edge-sentiment"
    launcher = root / "opt/edge-sentiment/edge-sentiment"
    out = subprocess.run([str(launcher), "classify", "x"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "two classify x"
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    r = install("--dist", str(bad))
    assert r.returncode == 2 and "not an edge-sentiment one-folder build" in r.stderr
    assert subprocess.run([str(launcher)], capture_output=True, text=True).stdout.strip() == "two"
    assert not (root / "opt/edge-sentiment.new").exists()
    r = install("--dist", str(tmp_path / "missing.tar.gz"))
    assert r.returncode == 2 and "not found" in r.stderr
    r = subprocess.run(["sh", str(PKG / "install.sh"), "--uninstall"], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and not (root / "opt/edge-sentiment").exists()
    assert not os.path.lexists(link)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(["bash", str(PKG / "build.sh"), str(out)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"binary: {out}/edge-sentiment" in r.stdout and "glibc_built_with" in r.stdout
    assert f"onedir: {out}/edge-sentiment-linux-" in r.stdout
    return out


@pytest.fixture(scope="module", params=["onefile", "onedir"])
def binary(request: pytest.FixtureRequest, dist: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-file binary copied alone into an empty folder, or the one-folder tarball
    unpacked there: each must run every subcommand with no Python around."""
    empty = tmp_path_factory.mktemp(request.param)
    if request.param == "onefile":
        shutil.copy2(dist / "edge-sentiment", empty / "edge-sentiment")
        return empty / "edge-sentiment"
    tarball = next(dist.glob("edge-sentiment-linux-*.tar.gz"))
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(empty)], check=True)
    return empty / "edge-sentiment" / "edge-sentiment"


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, check=False,
                          cwd=binary.parent, env=env)


@pytest.mark.slow
def test_binary_subcommands_and_exit_codes(binary: Path) -> None:
    before = _listing(binary.parent)
    r = _run(binary, "classify", "--json", "The battery died after two days")
    assert r.returncode == 0 and json.loads(r.stdout)["label"] == "negative", r.stderr
    info = json.loads(_run(binary, "info", "--json").stdout)
    assert info["profile"] == "generic-x86_64" and info["backend"] == "onnx"
    assert _run(binary, "classify", "--runtime", "tflite", "good").returncode == 0
    r = _run(binary, "eval", "--json", "--data", str(ROOT / "tests/fixtures/data/sst2/dev.tsv"))
    assert r.returncode == 0 and json.loads(r.stdout)["binary"] is True
    assert "default bundle edge-sentiment-default" in _run(binary, "--version").stdout
    assert _run(binary, "classify", "").returncode == 2
    assert _run(binary, "classify", "--bundle", "/nope", "x").returncode == 3
    assert _run(binary, "bogus").returncode == 2
    assert _listing(binary.parent) == before, "the binary writes nothing next to itself"


@pytest.mark.slow
def test_binary_serves_http(binary: Path) -> None:
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([str(binary), "serve", "--port", str(port)], cwd=binary.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = json.loads(wait_http(f"http://127.0.0.1:{port}/readyz", proc))
        assert ready["model_version"] == default_bundle_version()
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "/v1/classify" in page
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_binary_agent_publishes_status(binary: Path, tmp_path: Path) -> None:
    from tests.edge_sentiment.agent.conftest import Watcher, make_broker

    broker = make_broker(tmp_path)
    broker.start()
    watcher = Watcher(broker)
    log = tmp_path / "agent.log"
    with log.open("w") as err:
        proc = subprocess.Popen([str(binary), "--debug", "agent", "--broker", broker.url,
                                 "--device-id", "bin-1", "--state-dir", str(tmp_path / "state"),
                                 "--run-for", "120"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        status = watcher.wait_for(lambda t, b: t.endswith("bin-1/status") and b["state"] == "online")
        assert status["model_version"] == default_bundle_version()
        proc.terminate()
        try:  # --run-for 120: an exit in time is the SIGTERM's doing
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, log.read_text()[-4000:]
        watcher.wait_for(lambda t, b: t.endswith("bin-1/status") and b["state"] == "stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()
        broker.stop()


@pytest.mark.slow
def test_startup_timing_script_reports_every_build(dist: Path, tmp_path: Path) -> None:
    """The script behind the README's start-up figures runs and reports all three builds (the
    figures themselves are the report's, never asserted)."""
    tarball = next(dist.glob("edge-sentiment-linux-*.tar.gz"))
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tmp_path)], check=True)
    out = tmp_path / "timing.json"
    r = subprocess.run([sys.executable, str(PKG / "startup_timing.py"), "--onefile",
                        str(dist / "edge-sentiment"), "--onedir",
                        str(tmp_path / "edge-sentiment" / "edge-sentiment"), "--runs", "1",
                        "--out", str(out)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert set(report["kinds"]) == {"venv", "onedir", "onefile"}
    assert "| onedir |" in r.stdout


@pytest.mark.slow
@pytest.mark.host  # the smoke reads the emulated machine's /proc/cpuinfo, bind-mounted
def test_arm64_smoke_under_qemu() -> None:
    """packaging/arm64-smoke.sh: Debian arm64 Python + PyPI aarch64 wheels under qemu-user."""
    if os.geteuid() != 0:
        pytest.fail("arm64-smoke.sh needs root (apt-get, unshare -m); run the suite as root")
    r = subprocess.run(["bash", str(PKG / "arm64-smoke.sh"), str(ROOT / "build/arm64-smoke")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["machine"] == "aarch64" and result["profile"] == "generic-aarch64"
    assert result["label"] == "negative" and result["eval_n"] == 40


@pytest.mark.slow
def test_the_runtime_subset_passes_on_aarch64_under_qemu(tmp_path: Path) -> None:
    """packaging/arm64-smoke.sh --tests: bundle, tokenizer, backends, selector and profiles,
    classifier, CLI, protocol and the agent against Mosquitto, on aarch64 (Debian's arm64 Python
    3.11.2 and PyPI's aarch64 wheels). Writes its time to build/arm64-tests.json."""
    if os.geteuid() != 0:
        pytest.fail("arm64-smoke.sh needs root (apt-get, unshare -m); run the suite as root")
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(PKG / "arm64-smoke.sh"), str(ROOT / "build/arm64-smoke"),
                        "--tests"], capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - t0, 1)
    summary = (r.stdout.strip().splitlines() or [""])[-1]
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "arm64-tests.json").write_text(json.dumps(
        {"seconds": seconds, "summary": summary, "returncode": r.returncode}) + "\n")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
