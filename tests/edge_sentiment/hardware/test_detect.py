from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment.hardware import cpu_temperature, detect

SYSROOTS = Path(__file__).parents[2] / "fixtures" / "sysroots"


@pytest.mark.parametrize("board, arch, cores, jetson, flag, model", [
    ("raspberry-pi-4", "aarch64", 4, False, "asimd", "Raspberry Pi 4 Model B Rev 1.4"),
    ("raspberry-pi-5", "aarch64", 4, False, "asimddp", "Raspberry Pi 5 Model B Rev 1.0"),
    ("jetson-nano", "aarch64", 4, True, "asimd", "NVIDIA Jetson Nano Developer Kit"),
    ("jetson-orin", "aarch64", 12, True, "asimddp", "Jetson AGX Orin Developer Kit"),
    ("x86-server", "x86_64", 8, False, "avx512_vnni", None),
])
def test_recorded_boards(board: str, arch: str, cores: int, jetson: bool, flag: str,
                         model: str | None) -> None:
    facts = detect(SYSROOTS / board)
    assert (facts.arch, facts.cores, facts.is_jetson, facts.board_model) == (arch, cores, jetson, model)
    assert flag in facts.cpu_flags
    assert facts.memory_mb > 1000
    assert facts.cpu_temperature() is not None


def test_jetson_release_and_thermal() -> None:
    facts = detect(SYSROOTS / "jetson-nano")
    assert facts.jetson_release is not None and facts.jetson_release.startswith("# R32")
    assert "nvidia,tegra210" in facts.compatible
    assert facts.cpu_temperature() == 33.0  # CPU-therm, not PMIC-Die's 100 C
    assert cpu_temperature(SYSROOTS / "jetson-nano") == 33.0  # the agent's per-interval read
    assert cpu_temperature(SYSROOTS / "x86-server") == detect(SYSROOTS / "x86-server").cpu_temperature()


def test_empty_root_is_unknown_not_a_crash(tmp_path: Path) -> None:
    facts = detect(tmp_path)
    assert (facts.arch, facts.cores, facts.memory_mb, facts.board_model) == ("unknown", 1, 0, None)


def test_armv7_and_edgetpu(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva\n"
        "CPU architecture: 7\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/apex_0").write_text("")
    facts = detect(tmp_path)
    assert facts.arch == "armv7l" and facts.edgetpu


@pytest.mark.host
def test_this_machine() -> None:
    facts = detect()  # the suite's recorded machine is unset for a host test: this reads /
    assert facts.arch in {"x86_64", "aarch64", "armv7l"} and facts.cores >= 1
    assert facts.cores == (os.cpu_count() or 1)


def test_the_suite_reads_a_recorded_machine() -> None:
    facts = detect()
    assert (facts.arch, facts.cores) == ("x86_64", 2)  # tests/fixtures/sysroots/x86-2core


def test_a_missing_sysroot_in_the_environment_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_SENTIMENT_SYSROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="EDGE_SENTIMENT_SYSROOT"):
        detect()
