"""The one small Protocol every inference backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class BackendOptions:
    """How to run one artifact: the provider chosen by the selector and threads."""

    provider: str
    threads: int
    fixed_length: int | None = None
    lengths: tuple[int, ...] = ()  # a TFLite file's fixed-length signatures (manifest)


class Backend(Protocol):
    """Runs a sequence classifier: ids and mask [batch, length] -> logits [batch, labels]."""

    name: str
    provider: str
    fixed_length: int | None
    # How many ``run_side_by_side`` calls may be in flight at once (from different threads):
    # the classifier runs a call's chunks side by side up to this many. 1: one at a time.
    workers: int

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Return float32 logits for a padded batch."""
        ...

    def run_side_by_side(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """``run`` for one of ``workers`` chunks in flight at once; the same logits."""
        ...

    def close(self) -> None:
        """Release native resources."""
        ...

