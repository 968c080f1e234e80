from __future__ import annotations

from pathlib import Path

import pytest

from edge_sentiment.errors import ProfileError
from edge_sentiment.hardware import detect, load_profiles, match_profile
from edge_sentiment.hardware.profiles import profiles_dir

SYSROOTS = Path(__file__).parents[2] / "fixtures" / "sysroots"
REQUIRED = {"raspberry-pi-3", "raspberry-pi-4", "raspberry-pi-5", "jetson-nano", "jetson-orin",
            "coral-dev-board", "generic-aarch64", "generic-armv7", "generic-x86_64"}


def test_shipped_profiles_load_and_cover_boards() -> None:
    assert REQUIRED <= {p.name for p in load_profiles()}


@pytest.mark.parametrize("board, profile", [
    ("raspberry-pi-4", "raspberry-pi-4"), ("raspberry-pi-5", "raspberry-pi-5"),
    ("jetson-nano", "jetson-nano"), ("jetson-orin", "jetson-orin"),
    ("x86-server", "generic-x86_64"),
])
def test_boards_match_their_profile(board: str, profile: str) -> None:
    assert match_profile(detect(SYSROOTS / board), load_profiles()).name == profile


def test_named_profile_and_unknown_name() -> None:
    facts = detect(SYSROOTS / "x86-server")
    assert match_profile(facts, load_profiles(), "raspberry-pi-3").name == "raspberry-pi-3"
    with pytest.raises(ProfileError, match="not found"):
        match_profile(facts, load_profiles(), "pdp-11")


def _broken(tmp_path: Path, text: str) -> Path:
    for src in profiles_dir().glob("*.toml"):
        (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / "zz-broken.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text, field", [
    ('name = "x"\n[runtime]\nbackends = ["coreml"]\n', "runtime.backends"),
    ('name = "x"\n[runtime]\nbackends = ["onnx"]\nthreads = 0\n', "runtime.threads"),
    ('name = "x"\n[runtime]\nbackends = ["onnx"]\nthreads = "four"\n', "threads"),
    ('name = "x"\ncolour = "red"\n[runtime]\nbackends = ["onnx"]\n', "unknown keys"),
    ('name = "x"\n[match]\nmodel = "("\n[runtime]\nbackends = ["onnx"]\n', "match.model"),
    ('name = "x"\n[runtime\n', "invalid TOML"),
    ('name = "x"\n[runtime]\nbackends = ["onnx"]\nmemory_budget_mb = 300\n',
     "runtime.memory_budget_mb: no longer read"),
    ('name = "x"\n[runtime]\nbackends = ["onnx"]\ncoreml_providers = ["ane"]\n', "unknown keys"),
])
def test_broken_profile_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ProfileError, match=rf"zz-broken\.toml.*{field}"):
        load_profiles(_broken(tmp_path, text))
