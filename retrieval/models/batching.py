"""Texts that arrive together from several threads go through the model in one forward.

A web server answers several searches at once. Each needs its text encoded; one at a time, the model
runs once per query. Here, whoever holds the model encodes every text queued meanwhile, so under load
the queries that arrived while the model was busy share the next forward. A lone query waits for
nothing: there is no timer, only the queue that builds up while the model is busy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class _Pending:
    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class TextBatcher:
    """`encode(texts)` from any thread; at most `max_batch` texts per forward of `encode_now`."""

    def __init__(self, encode_now: Callable[[list[str]], np.ndarray], max_batch: int = 64):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._encode_now = encode_now
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one forward at a time; callers queue up behind it
        self.forwards = 0  # how many forwards ran (for tests and benchmarks)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        mine = _Pending(list(texts))
        with self._queue_lock:
            self._queue.append(mine)
        while not mine.done:
            with self._model_lock:
                if not mine.done:  # else a forward that held the model before us took our texts too
                    self._run(self._take())
        if mine.error is not None:
            raise mine.error
        assert mine.vectors is not None
        return mine.vectors

    def _take(self) -> list[_Pending]:
        """The oldest queued requests, up to max_batch texts (at least one request)."""
        with self._queue_lock:
            batch, count = [], 0
            while self._queue and (not batch or count + len(self._queue[0].texts) <= self.max_batch):
                request = self._queue.pop(0)
                batch.append(request)
                count += len(request.texts)
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        try:
            vectors = self._encode_now([text for request in batch for text in request.texts])
            self.forwards += 1
        except BaseException as e:  # every caller in the batch gets the error, not only the one running it
            for request in batch:
                request.error, request.done = e, True
            return
        start = 0
        for request in batch:
            request.vectors = vectors[start:start + len(request.texts)]
            start += len(request.texts)
            request.done = True
