from __future__ import annotations

from pathlib import Path

import pytest

from edge_sentiment.errors import ConfigError, ProfileError
from edge_sentiment.tomlfile import read_toml


def test_reads_a_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "x"\n[runtime]\nthreads = 2\n')
    assert read_toml(tmp_path / "a.toml") == {"name": "x", "runtime": {"threads": 2}}


@pytest.mark.parametrize("content, message", [
    (None, "config file not found"),
    (b'name = "x"\n[runtime\n', "invalid TOML"),
    (b'name = "\xff"\n', "not UTF-8"),
])
def test_bad_files_raise_the_callers_error(tmp_path: Path, content: bytes | None,
                                           message: str) -> None:
    path = tmp_path / "p.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ProfileError, match=rf"^p\.toml: {message}"):
        read_toml(path, ProfileError, "p.toml")
    with pytest.raises(ConfigError, match=message):
        read_toml(path)


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_toml(tmp_path)
