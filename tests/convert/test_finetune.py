"""``[finetune]`` (convert/finetune.py): which negated copies the short-text rule takes, and the
settings' checks. The fine-tuning itself runs in tests/convert/test_rebundle.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment_convert.config import load_config
from edge_sentiment_convert.finetune import short_negations

ROOT = Path(__file__).parents[2]
NEG, NEU = [2.0, 0.0, -1.0], [0.0, 2.0, -1.0]


def test_short_negations_takes_short_complaints_with_a_negation_added() -> None:
    texts = ["The soup was cold.",  # short complaint, copula negated: taken
             "I hated the ending.",  # short complaint, verb negated: taken
             "The soup was cold.",  # a repeat: taken once
             "The room is not clean.",  # the negation would be removed, not added
             "The staff was rude " + "and the room was dirty " * 4 + "all week.",  # too long
             "The soup was hot.",  # read as neutral
             "Terrible, terrible, terrible."]  # nothing to negate
    logits = np.array([NEG, NEG, NEG, NEG, NEG, NEU, NEG])
    assert short_negations(texts, logits, max_words=12) == \
        ["I didn't hate the ending.", "The soup was not cold."]
    assert short_negations(texts, logits, max_words=3) == []


@pytest.mark.parametrize(("table", "message"), [
    ("epochs = -1", "[finetune] epochs must be a number >= 0"),
    ("lr = 0", "[finetune] lr must be a number > 0"),
    ("repeat = 0", "[finetune] repeat must be a whole number >= 1"),
    ("max_words = 2.5", "[finetune] max_words must be a whole number >= 1"),
    ("negation_target = [0.5, 0.5]", "[finetune] negation_target must be empty or three"),
    ("typos = -1", "[finetune] typos must be a whole number >= 0"),
    ("typos = 2.5", "[finetune] typos must be a whole number >= 0"),
    ("ratings = -3", "[finetune] ratings must be a whole number >= 0"),
    ("ratings = true", "[finetune] ratings must be a whole number >= 0"),
    ("positive_target = [1.0, 0.0, 0.0]", "[finetune] positive_target must be empty or three"),
    ("epoch = 1", "[finetune]: unknown keys ['epoch']"),
])
def test_bad_finetune_settings_are_refused_with_one_line(tmp_path: Path, table: str,
                                                          message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text((ROOT / "convert/configs/rebundle-smoke.toml").read_text()
                    + f"\n[finetune]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_default_config_fine_tunes_as_its_comment_says() -> None:
    f = load_config(ROOT / "convert/configs/default.toml").finetune
    assert f.epochs > 0 and f.negation_target and f.max_words == 12
