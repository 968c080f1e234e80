"""Attack family: archives whose members collide or nest in ways a path check alone misses.
Before the fix each of these leaked a raw FileExistsError out of extract_tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from edge_sentiment.bundle import extract_tar
from edge_sentiment.errors import UnsafePathError

F, D = "file", "dir"


def _tar(path: Path, members: list[tuple[str, str]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            if kind == D:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = b"{}"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("members, why", [
    ([("manifest.json", F), ("./manifest.json", F)], "appears twice"),
    ([("a//b", F), ("a/b", F)], "appears twice"),
    ([("a/./b", F), ("a/b", F)], "appears twice"),
    ([("a", F), ("a/b", F)], "under a file"),
    ([("a", F), ("a/b/c", F)], "under a file"),
    ([("a", D), ("a", F)], "appears twice"),
    ([("a", F), ("a", D)], "appears twice"),
])
def test_colliding_members_are_refused_with_our_error(tmp_path: Path, members: list[tuple[str, str]],
                                                      why: str) -> None:
    with pytest.raises(UnsafePathError, match=why):
        extract_tar(_tar(tmp_path / "x.tar", members), tmp_path / "out")


def test_a_folder_named_twice_is_fine(tmp_path: Path) -> None:
    root = extract_tar(_tar(tmp_path / "x.tar", [("b", D), ("b/", D), ("b/manifest.json", F)]),
                       tmp_path / "out")
    assert (root / "manifest.json").is_file()
