"""Chunks of one call run side by side, on a small thread pool of the classifier's engine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class Workers:
    """Runs a call's chunks on ``n`` threads at once when the backend allows it
    (``Backend.workers``, ``run_side_by_side``): for a small model, two one-thread runs side by
    side beat one run on two threads. The threads start on the first call with two chunks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def side_by_side(self, items: int) -> bool:
        return self.n > 1 and items > 1

    def map(self, fn: Callable[[_T], _R], items: list[_T]) -> Iterator[_R]:
        """``fn`` over ``items``, results in order; a worker's exception is raised here."""
        if not self.side_by_side(len(items)):
            return map(fn, items)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="edge-sentiment")
        return self._pool.map(fn, items)
