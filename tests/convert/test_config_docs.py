"""docs/convert.md lists every config key, so a new key cannot land undocumented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from edge_sentiment_convert.config import BuildConfig, DistillCfg, StudentCfg, TeacherCfg, VocabCfg
from edge_sentiment_convert.finetune import FinetuneCfg

DOC = (Path(__file__).parents[2] / "docs" / "convert.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", [BuildConfig, TeacherCfg, DistillCfg, VocabCfg, StudentCfg,
                                 FinetuneCfg])
def test_every_config_key_is_documented(cls: type) -> None:
    missing = [f.name for f in fields(cls) if f"`{f.name}`" not in DOC and
               f.name not in ("teacher", "students", "distill", "vocab", "targets", "finetune")]
    assert not missing, f"{cls.__name__} keys missing from docs/convert.md: {missing}"
