"""Read the labelled TSV splits, failing early with file:line on bad input.

Format (see the data README): UTF-8, header ``text<TAB>label``, one example per
line, no quoting: split each line on its *last* tab.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from edge_sentiment.bundle import sha256_file
from edge_sentiment.errors import ConfigError
from edge_sentiment.manifest import LABELS as LABELS  # re-exported for the build stages

if TYPE_CHECKING:
    from .config import BuildConfig

T = TypeVar("T")



class DataError(ConfigError):
    """A data file is missing or malformed; the message names file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "" for unlabeled text
    source: str


def read_tsv(path: Path, labeled: bool = True, source: str = "") -> list[Example]:
    """Read one split; raise DataError naming ``path:line`` on the first bad line."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")  # a lone CR stays in its text
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc})") from exc
    header = lines[0].rstrip("\r").split("\t")
    want = ["text", "label"] if labeled else ["text", "source"]
    if header != want:
        raise DataError(f"{path}:1: header must be {'<TAB>'.join(want)}, got {lines[0]!r}")
    out = []
    for no, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")  # CRLF files: the label would end in \r
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{no}: no tab; expected text<TAB>label")
        text, label = line.rsplit("\t", 1)
        if not text.strip():
            raise DataError(f"{path}:{no}: empty text")
        if labeled and label not in LABELS:
            raise DataError(f"{path}:{no}: unknown label {label!r}; expected one of {LABELS}")
        out.append(Example(text, label if labeled else "", source or path.parent.name))
    if not out:
        raise DataError(f"{path}: split is empty")
    return out


def data_digest(data_dir: Path) -> str:
    """A digest of every ``<source>/<split>.tsv`` under ``data_dir`` (names and contents): a
    build stage's inputs, so a rerun on changed data does not reuse results made from the old."""
    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*/*.tsv")):
        digest.update(f"{path.relative_to(data_dir).as_posix()}\0{sha256_file(path)}\0".encode())
    return digest.hexdigest()[:16]


def load_split(data_dir: Path, source: str, split: str) -> list[Example]:
    return read_tsv(data_dir / source / f"{split}.tsv", source=source)


def _by_weight(rows: list[T], weight: float, rng: random.Random) -> list[list[T]]:
    """``rows`` taken by ``weight``: one whole copy per unit, then a seeded sample of
    ``rows`` for the fraction (2.5: two copies and a half sample)."""
    whole, frac = int(weight), weight - int(weight)
    return [rows] * whole + ([rng.sample(rows, int(len(rows) * frac))] if frac else [])


def load_mixture(data_dir: Path, sources: dict[str, float], split: str, seed: int,
                 limit: int | None = None) -> list[Example]:
    """Sample each source by weight (1.0 = all rows; 0.5 = half; 2.0 = twice)."""
    rng = random.Random(seed)
    out: list[Example] = []
    for source, weight in sources.items():
        for part in _by_weight(load_split(data_dir, source, split), weight, rng):
            out.extend(part)
    rng.shuffle(out)
    return out[:limit] if limit else out


def weighted_rows(sources: list[str], weights: dict[str, float], seed: int) -> list[int]:
    """Indices of the rows of a set whose row ``i`` comes from ``sources[i]``, each source's
    rows taken by its weight (1.0 = once, 2.0 = twice, 0.5 = a half sample, 0 = none; a source
    not named weighs 1.0). Each repeat comes as a later pass over the set, so the build's
    length-sorted batches do not put a text beside its own copy."""
    rng = random.Random(f"weights:{seed}")
    by_source: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(source, []).append(i)
    passes: list[list[int]] = []
    for source, rows in by_source.items():
        for k, part in enumerate(_by_weight(rows, weights.get(source, 1.0), rng)):
            if len(passes) <= k:
                passes.append([])
            passes[k].extend(part)
    return [i for rows in passes for i in sorted(rows)]


def binary_sources(data_dir: Path, sources: dict[str, float]) -> frozenset[str]:
    """Sources whose train split has no neutral row (SST-2): their labels say only which
    polarity wins, so losses compare negative with positive and leave neutral alone."""
    return frozenset(s for s in sources
                     if all(e.label != "neutral" for e in load_split(data_dir, s, "train")))


def train_rows(data_dir: Path, cfg: BuildConfig) -> list[Example]:
    """The teacher's train mixture: ``[teacher] sources`` by weight, at most ``max_examples``."""
    t = cfg.teacher
    return load_mixture(data_dir, t.sources, "train", cfg.seed, t.max_examples or None)


def transfer_rows(data_dir: Path, cfg: BuildConfig) -> list[Example]:
    """The transfer set: the train mixture and ``[distill] unlabeled`` texts (the students learn
    from it; static int8 scales are fitted on a sample of it)."""
    extra = load_unlabeled(data_dir, cfg.distill.unlabeled, cfg.seed) \
        if cfg.distill.unlabeled else []
    return train_rows(data_dir, cfg) + extra


def load_unlabeled(data_dir: Path, limit: int | None, seed: int) -> list[Example]:
    rows = read_tsv(data_dir / "unlabeled" / "unlabeled.tsv", labeled=False, source="unlabeled")
    random.Random(seed).shuffle(rows)
    return rows[:limit] if limit else rows


def eval_splits(data_dir: Path) -> list[tuple[str, str, Path]]:
    """Every (source, split, path) for dev and test files present under ``data_dir``."""
    found = []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir() and p.name != "unlabeled"):
        for split in ("dev", "test"):
            path = folder / f"{split}.tsv"
            if path.is_file():
                found.append((folder.name, split, path))
    return found


def merge_roots(roots: list[Path], out: Path) -> Path:
    """One data folder from several (``--data`` given more than once): each source folder is
    linked in; a source named in two roots is refused; the ``unlabeled`` texts are joined."""
    if len(roots) == 1:
        return roots[0]
    import shutil

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    unlabeled: list[Path] = []
    for root in roots:
        if not root.is_dir():
            raise DataError(f"{root}: data folder not found")
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name == "unlabeled":
                unlabeled.append(folder / "unlabeled.tsv")
            elif (out / folder.name).exists():
                raise DataError(f"source {folder.name!r} is in more than one --data folder "
                                f"({root} and another)")
            else:
                (out / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    if unlabeled:
        (out / "unlabeled").mkdir()
        with open(out / "unlabeled" / "unlabeled.tsv", "w", encoding="utf-8", newline="\n") as fh:
            fh.write("text\tsource\n")
            for path in unlabeled:
                lines = path.read_text(encoding="utf-8").split("\n")[1:]
                fh.writelines(line + "\n" for line in lines if line)
    return out
