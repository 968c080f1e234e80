from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import default_bundle_path, extract_tar, open_bundle, pack_bundle
from edge_sentiment.errors import BundleError, IntegrityError, ManifestError, UnsafePathError


def test_opens_committed_bundle(tiny_bundle: Path) -> None:
    b = open_bundle(tiny_bundle)
    assert b.manifest.labels == ("negative", "neutral", "positive")
    assert {a.runtime for a in b.manifest.artifacts} == {"onnx", "tflite"}
    assert b.manifest.golden, "bundle must carry golden examples"


def test_default_bundle_ships_in_package() -> None:
    b = open_bundle(None)
    assert b.root == default_bundle_path()
    for art in b.manifest.artifacts:
        b.artifact_path(art)  # sha256 verified


def test_flipped_byte_is_refused_naming_the_file(bundle_copy) -> None:  # type: ignore[no-untyped-def]
    root = bundle_copy()
    model = root / "model.int8.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.int8\.onnx: sha256 mismatch"):
        open_bundle(root).artifact_path(open_bundle(root).manifest.artifacts[1])
    with pytest.raises(IntegrityError, match=r"model\.int8\.onnx"):
        SentimentClassifier.load(root, runtime="onnx", provider="CPUExecutionProvider",
                                 profile="generic-aarch64")


@pytest.mark.parametrize("bad", ["../model.int8.onnx", "/etc/passwd", "a/../../x.onnx"])
def test_path_leaving_bundle_is_refused(bundle_copy, bad: str) -> None:  # type: ignore[no-untyped-def]
    root = bundle_copy(lambda d: d["artifacts"][0].update(file=bad))
    with pytest.raises(UnsafePathError, match="leaves the bundle"):
        open_bundle(root)


def test_symlinked_artifact_is_refused(bundle_copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = bundle_copy()
    target = root / "model.fp32.onnx"
    outside = tmp_path / "outside.onnx"
    target.rename(outside)
    os.symlink(outside, target)
    b = open_bundle(root)
    with pytest.raises(UnsafePathError, match="symlink"):
        b.artifact_path(b.manifest.artifacts[0])


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(format_version=99), "format_version"),
    (lambda d: d.pop("labels"), "labels"),
    (lambda d: d.update(version="1.0"), "version"),
    (lambda d: d["artifacts"][0].update(sha256="zz"), r"artifacts\[0\]\.sha256"),
    (lambda d: d["artifacts"][2].update(input_shape=[1, 8]), r"artifacts\[2\]\.input_shape"),
    (lambda d: d["artifacts"][2].update(lengths=[16, 8, 32]), r"artifacts\[2\]\.lengths"),
    (lambda d: d["artifacts"][2].update(lengths=[8, 16]), r"artifacts\[2\]\.lengths"),
    (lambda d: d["artifacts"][2].update(lengths=[0, 32]), r"artifacts\[2\]\.lengths"),
    (lambda d: d["artifacts"][2].update(lengths="32"), r"artifacts\[2\]\.lengths"),
    (lambda d: d["artifacts"][0].update(lengths=[32]), r"artifacts\[0\]\.lengths"),
    (lambda d: d.update(truncation="middle"), "truncation"),
    (lambda d: d["golden"][0].update(label="angry"), r"golden\[0\]\.label"),
    (lambda d: d["tokenizer"].update(extra="x"), "tokenizer"),
])
def test_manifest_errors_name_the_field(bundle_copy, edit, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError, match=field):
        open_bundle(bundle_copy(edit))


def test_invalid_json_and_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        open_bundle(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ManifestError, match="invalid JSON at line 1"):
        open_bundle(tmp_path)


def test_tar_round_trip_loads(tiny_bundle: Path, tmp_path: Path) -> None:
    tar = pack_bundle(tiny_bundle, tmp_path / "b.tar")
    again = pack_bundle(tiny_bundle, tmp_path / "c.tar")
    assert tar.read_bytes() == again.read_bytes(), "packing must be deterministic"
    clf = SentimentClassifier.load(tar, runtime="onnx")
    assert clf.classify("fine").label in clf.labels


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("make", [
    lambda: tarfile.TarInfo("../escape.txt"),
    lambda: tarfile.TarInfo("/abs.txt"),
])
def test_tar_traversal_is_refused(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    member = make()
    member.size = 1
    with pytest.raises(UnsafePathError):
        extract_tar(_tar_with(tmp_path, member, b"x"), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_tar_symlink_and_device_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("manifest.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(UnsafePathError, match="links"):
        extract_tar(_tar_with(tmp_path, link), tmp_path / "o1")
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(UnsafePathError, match="only files"):
        extract_tar(_tar_with(tmp_path, dev), tmp_path / "o2")


def test_a_duplicate_member_and_odd_modes_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "dup.tar"
    with tarfile.open(path, "w") as tar:
        for data in (b"one", b"two"):  # the second would silently replace the first
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafePathError, match="twice"):
        extract_tar(path, tmp_path / "o1")
    odd = tmp_path / "odd.tar"
    with tarfile.open(odd, "w") as tar:
        info = tarfile.TarInfo("sub/manifest.json")
        info.size, info.mode = 2, 0o4777  # setuid, world-writable: written as 0644
        tar.addfile(info, io.BytesIO(b"{}"))
    extract_tar_or_none(odd, tmp_path / "o2")
    assert oct((tmp_path / "o2" / "sub" / "manifest.json").stat().st_mode & 0o7777) == "0o644"


def extract_tar_or_none(path: Path, dest: Path) -> None:
    try:
        extract_tar(path, dest)
    except BundleError:
        pass  # "no manifest.json at the top": the files are written before that check


def test_no_runnable_artifact_lists_both_sides(bundle_copy) -> None:  # type: ignore[no-untyped-def]
    root = bundle_copy(lambda d: d.update(artifacts=[a for a in d["artifacts"]
                                                     if a["runtime"] == "tflite"]))
    with pytest.raises(Exception, match=r"bundle has \[tflite/fp32\].*machine can run"):
        SentimentClassifier.load(root, runtime="onnx")


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_a_tar_bundle_leaves_no_temp_folder(tiny_bundle: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, runtime: str) -> None:
    import tempfile

    archive = pack_bundle(tiny_bundle, tmp_path / "b.tar")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    clf = SentimentClassifier.load(archive, runtime=runtime)
    assert clf.classify("works well").label in ("negative", "neutral", "positive")
    assert list(scratch.iterdir()) == []  # removed once the backend held the model
    assert clf.classify(["still", "works"])[1].label  # and it keeps working


def test_a_refused_tar_leaves_no_temp_folder(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"{}"
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("model.onnx")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(UnsafePathError):
        open_bundle(archive)
    assert list(scratch.iterdir()) == []


def _tar_of(path: Path, files: dict[str, int]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, size in files.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"\0" * size))
    return path


def test_archive_limits_refuse_member_count_and_total_before_unpacking(tmp_path: Path) -> None:
    from edge_sentiment.bundle import ArchiveLimits

    many = _tar_of(tmp_path / "many.tar", {f"f{i}": 1 for i in range(300)})
    with pytest.raises(UnsafePathError, match="more than 256 members"):
        extract_tar(many, tmp_path / "a")
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    big = _tar_of(tmp_path / "big.tar", {"a": 600, "b": 600})
    with pytest.raises(UnsafePathError, match="unpacks to 1200 bytes"):
        extract_tar(big, tmp_path / "b", ArchiveLimits(max_total_bytes=1000))
    with pytest.raises(UnsafePathError, match="too large"):
        extract_tar(big, tmp_path / "c", ArchiveLimits(max_member_bytes=500))
    with pytest.raises(ValueError):
        ArchiveLimits(max_members=0)
