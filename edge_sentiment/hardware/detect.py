"""Hardware facts read from files under a root path (default ``/``).

Only files under ``sysroot`` are read, so tests feed recorded /proc, /sys and
/etc trees of real boards. Nothing here imports a runtime.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

_EDGETPU_LIBS = ("usr/lib/aarch64-linux-gnu/libedgetpu.so.1", "usr/lib/x86_64-linux-gnu/libedgetpu.so.1",
                 "usr/lib/arm-linux-gnueabihf/libedgetpu.so.1", "usr/lib/libedgetpu.so.1")
_EDGETPU_DEVS = ("dev/apex_0",)


@dataclass(frozen=True)
class ThermalZone:
    name: str
    celsius: float


@dataclass(frozen=True)
class HardwareFacts:
    """What a board is, as far as its files say."""

    arch: str
    cores: int
    cpu_flags: tuple[str, ...]
    memory_mb: int
    board_model: str | None = None
    compatible: tuple[str, ...] = ()
    jetson_release: str | None = None
    edgetpu: bool = False
    thermal: tuple[ThermalZone, ...] = field(default_factory=tuple)

    @property
    def is_jetson(self) -> bool:
        return self.jetson_release is not None or any(c.startswith("nvidia,") for c in self.compatible)

    def cpu_temperature(self) -> float | None:
        """The hottest CPU-like zone, or the hottest zone, in degrees Celsius."""
        return _hottest_cpu_zone(self.thermal)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["is_jetson"] = self.is_jetson
        return data


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _arch(cpuinfo: str, flags: tuple[str, ...]) -> str:
    match = re.search(r"^CPU architecture\s*:\s*(\d+)", cpuinfo, re.M)
    if match:
        # A 32-bit OS on an ARMv8 core reports architecture 8 without asimd.
        return "aarch64" if int(match.group(1)) >= 8 and "asimd" in flags else "armv7l"
    if re.search(r"^flags\s*:", cpuinfo, re.M):
        return "x86_64" if " lm " in f" {' '.join(flags)} " else "i686"
    return "unknown"


def _cpu(root: Path) -> tuple[str, int, tuple[str, ...]]:
    text = _read(root, "proc/cpuinfo") or ""
    processors = len(re.findall(r"^processor\s*:", text, re.M))
    match = re.search(r"^(?:flags|Features)\s*:(.*)$", text, re.M)
    flags = tuple(sorted(set(match.group(1).split()))) if match else ()
    return _arch(text, flags), max(processors, 1), flags


def _memory_mb(root: Path) -> int:
    text = _read(root, "proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.M)
    return int(match.group(1)) // 1024 if match else 0


def _device_tree(root: Path, name: str) -> str | None:
    for base in ("proc/device-tree", "sys/firmware/devicetree/base"):
        text = _read(root, f"{base}/{name}")
        if text is not None:
            return text
    return None


def _thermal(root: Path) -> tuple[ThermalZone, ...]:
    base = root / "sys/class/thermal"
    zones = []
    for zone in sorted(base.glob("thermal_zone*")) if base.is_dir() else []:
        kind, temp = _read(zone, "type"), _read(zone, "temp")
        try:
            celsius = int((temp or "").strip()) / 1000.0
        except ValueError:
            continue
        zones.append(ThermalZone((kind or zone.name).strip(), celsius))
    return tuple(zones)


def _hottest_cpu_zone(zones: tuple[ThermalZone, ...]) -> float | None:
    cpu = [z.celsius for z in zones if "cpu" in z.name.lower() or "soc" in z.name.lower()]
    temps = cpu or [z.celsius for z in zones]
    return max(temps) if temps else None


SYSROOT_ENV = "EDGE_SENTIMENT_SYSROOT"


def default_sysroot() -> Path:
    """Where hardware facts are read when no root is given: ``$EDGE_SENTIMENT_SYSROOT`` (a
    container that mounts the host's /proc and /sys elsewhere; the test suite's recorded
    machine), else /."""
    root = Path(os.environ.get(SYSROOT_ENV) or "/")
    if not root.is_dir():
        raise ConfigError(f"{SYSROOT_ENV}={str(root)!r}: no such folder")
    return root


def cpu_temperature(sysroot: str | Path | None = None) -> float | None:
    """Only the CPU temperature (what the agent reads every metrics interval), without
    re-reading the rest of the hardware facts."""
    return _hottest_cpu_zone(_thermal(Path(sysroot) if sysroot else default_sysroot()))


def detect(sysroot: str | Path | None = None) -> HardwareFacts:
    """Read the hardware facts of the machine whose root file system is ``sysroot`` (default:
    ``default_sysroot()``)."""
    root = Path(sysroot) if sysroot else default_sysroot()
    arch, cores, flags = _cpu(root)
    model = _device_tree(root, "model")
    compatible = _device_tree(root, "compatible")
    release = _read(root, "etc/nv_tegra_release")
    facts = HardwareFacts(
        arch=arch,
        cores=cores,
        cpu_flags=flags,
        memory_mb=_memory_mb(root),
        board_model=model.strip("\x00\n ") if model else None,
        compatible=tuple(c for c in (compatible or "").split("\x00") if c.strip()),
        jetson_release=release.strip().splitlines()[0] if release and release.strip() else None,
        edgetpu=any((root / p).exists() for p in _EDGETPU_LIBS + _EDGETPU_DEVS),
        thermal=_thermal(root),
    )
    log.debug("hardware facts from %s: %s", root, facts)
    return facts
