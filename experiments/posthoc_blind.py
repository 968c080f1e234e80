"""Blinding after training: a bundle whose tokenizer reads every identity word as one word the
model already knows, with no retraining.

    python experiments/posthoc_blind.py BUNDLE OUT --anchor person

Three blinded builds (2.2.0-2.4.0) trained the student on blinded text and lost 1.5-2.7 points
on tweets. This copies ``BUNDLE`` to ``OUT`` (ONNX artifact only) and adds the build's blinding
steps (``identity.blind_normalizers``) to the tokenizer's normalizer, replacing each identity
word by ``--anchor`` instead of the trained ``identityterm`` token. Swapping one group word for
another then cannot move a score; what it costs shows on dev:

    edge-sentiment eval --bundle OUT --data ../shared/data --json
    edge-sentiment check --bundle OUT --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "convert"))


NOUNS = ("man", "men", "woman", "women", "boy", "girl", "guy", "lady", "ladies", "gentleman",
         "gentlemen")


def blind_tokenizer(src: Path, dst: Path, anchor: str, noun_anchor: str = "") -> None:
    """The build's own blinding after training (``identity.anchor_tokenizer``); with
    ``noun_anchor``, gender nouns are first read as that word instead."""
    from edge_sentiment_convert.identity import anchor_tokenizer

    text = src.read_text(encoding="utf-8")
    if noun_anchor:  # a step of its own ahead of the build's (bundle normalizers are Sequences)
        tok = json.loads(text)
        tok["normalizer"]["normalizers"].append(
            {"type": "Replace", "pattern": {"Regex": rf"\b(?:{'|'.join(NOUNS)})\b"},
             "content": noun_anchor})
        text = json.dumps(tok, ensure_ascii=False)
    dst.write_text(anchor_tokenizer(text, anchor), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--anchor", default="person")
    ap.add_argument("--noun-anchor", default="", help="gender nouns (man, woman...) read as this")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["runtime"] == "onnx"]
    for a in manifest["artifacts"]:
        shutil.copy(args.bundle / a["file"], args.out / a["file"])
    tok = args.out / manifest["tokenizer"]["file"]
    blind_tokenizer(args.bundle / manifest["tokenizer"]["file"], tok, args.anchor,
                    args.noun_anchor)
    manifest["tokenizer"]["sha256"] = hashlib.sha256(tok.read_bytes()).hexdigest()
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
