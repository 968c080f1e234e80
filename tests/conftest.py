"""Shared fixtures: the committed tiny bundle (real ONNX and TFLite files), copies of it, and a
real Mosquitto per test (``broker``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.edge_sentiment.agent.conftest import Broker

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny_bundle"
SYSROOTS = FIXTURES / "sysroots"
# Every test, and every process it starts, reads its hardware facts from a recorded 2-core x86
# machine, whatever the host (an aarch64 or armv7 box included). A test that must read the real
# machine says so with @pytest.mark.host; the audit hook below fails any other that opens the
# host's hardware files.
RECORDED = SYSROOTS / "x86-2core"
os.environ["EDGE_SENTIMENT_SYSROOT"] = str(RECORDED)
_HOST_FILES = ("/sys/", "/etc/nv_tegra_release")  # and /proc, except the process's own
_state = {"host_ok": True}  # outside a test (collection, fixtures of the session): allowed
_opened: list[str] = []


_REPO = str(Path(__file__).parents[1])
_STDLIB = sysconfig.get_paths()["stdlib"]


def _ours() -> bool:
    """Whether the innermost caller outside the standard library is this repository's code (a
    third-party library's own reads, such as prometheus_client's boot time, are its business)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_STDLIB) or "site-packages" in name:
            return name.startswith(_REPO)
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and not _state["host_ok"] and isinstance(args[0], str) \
            and (args[0].startswith(_HOST_FILES)
                 or (args[0].startswith("/proc/") and not args[0].startswith("/proc/self/"))) \
            and _ours():
        _opened.append(args[0])


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _recorded_machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    host = request.node.get_closest_marker("host") is not None
    if host:
        monkeypatch.delenv("EDGE_SENTIMENT_SYSROOT")
    _state["host_ok"], _opened[:] = host, []
    yield
    _state["host_ok"] = True
    assert not _opened, f"read the host's hardware files without @pytest.mark.host: {_opened}"


@pytest.fixture
def tiny_bundle() -> Path:
    return TINY


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy the tiny bundle; optionally patch its manifest with ``edit(data)``."""
    def make(edit: Callable[[dict[str, Any]], None] | None = None, name: str = "b") -> Path:
        dest = tmp_path / name
        shutil.copytree(TINY, dest)
        if edit is not None:
            path = dest / "manifest.json"
            data = json.loads(path.read_text())
            edit(data)
            path.write_text(json.dumps(data))
        return dest
    return make


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto on a free port with its own config, stopped after the test."""
    from tests.edge_sentiment.agent.conftest import make_broker

    b = make_broker(tmp_path)
    b.start()
    yield b
    b.stop()
