"""Dynamic batching on the event loop: requests that arrive together run as one model call.

Inference runs on the event loop (one text is about 0.5 ms, less than a hop to a thread
pool). While it runs, other requests wait in the socket buffers; when the loop gets them,
each handler queues its texts and the flush, scheduled with ``call_soon``, runs after every
handler that became ready in the same loop turn. So no request waits for a timer, and a busy
server answers several requests with one call. Batching changes scores slightly (padding,
and int8 activations quantized per batch), never the order or the owner of a result.
A request whose text is refused does not join a batch: it runs alone and gets its own error,
so it never fails its batch-mates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..classifier import Prediction, SentimentClassifier
from ..errors import InputError
from ..tokenize import check_text

_Pending = list[tuple[list[str], "asyncio.Future[list[Prediction]]"]]


class Batcher:
    def __init__(self, classifier: Callable[[], SentimentClassifier], max_texts: int = 64) -> None:
        self._classifier = classifier  # read at each flush, so a hot swap takes effect
        self._max_texts = max_texts
        # One queue per event loop: a loop only batches its own requests (an app may be
        # driven by several loops in several threads, as Starlette's TestClient does).
        self._pending: dict[asyncio.AbstractEventLoop, _Pending] = {}
        self.calls = 0  # model calls made; with concurrent requests, fewer than requests

    async def classify(self, texts: list[str]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Prediction]] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append((texts, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.pop(loop, [])
        group: _Pending = []
        size = 0
        for texts, future in pending:
            if group and size + len(texts) > self._max_texts:
                self._run(group)
                group, size = [], 0
            group.append((texts, future))
            size += len(texts)
        if group:
            self._run(group)

    def _run(self, group: _Pending) -> None:
        """Requests with a refused text run alone (the classifier raises their InputError and
        counts it once); the rest share one call, whose failure is every member's answer."""
        clf = self._classifier()
        good: _Pending = []
        for texts, future in group:
            if _acceptable(texts):
                good.append((texts, future))
            else:
                self._alone(clf, texts, future)
        if len(good) == 1:
            self._alone(clf, *good[0])
        elif good:
            self.calls += 1
            try:
                preds = clf.classify([t for texts, _ in good for t in texts])
            except Exception as exc:  # a model error: the same answer for every member
                for _, future in good:
                    _settle(future, exc)
                return
            start = 0
            for texts, future in good:
                _settle(future, preds[start:start + len(texts)])
                start += len(texts)

    def _alone(self, clf: SentimentClassifier, texts: list[str],
               future: asyncio.Future[list[Prediction]]) -> None:
        self.calls += 1
        try:
            result = clf.classify(texts)
        except Exception as exc:  # handed to the request that sent the text
            _settle(future, exc)
        else:
            _settle(future, result)


def _acceptable(texts: list[str]) -> bool:
    try:
        for text in texts:
            check_text(text)
    except InputError:
        return False
    return True


def _settle(future: asyncio.Future[list[Prediction]], outcome: list[Prediction] | Exception
            ) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
