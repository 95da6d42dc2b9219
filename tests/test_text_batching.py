"""Texts that arrive together share one forward; each caller gets its own vectors, or the error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from retrieval.models.batching import TextBatcher


def _slow_model(calls: list[list[str]], delay_s: float = 0.05):
    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        time.sleep(delay_s)  # the model is busy: others queue up meanwhile
        return np.array([[float(len(t)), float(i)] for i, t in enumerate(texts)], dtype=np.float32)

    return encode


def test_concurrent_callers_share_forwards_and_get_their_own_vectors():
    calls: list[list[str]] = []
    batcher = TextBatcher(_slow_model(calls), max_batch=64)
    texts = [f"query {'x' * i}" for i in range(12)]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(texts))

    def call(i: int) -> None:
        start.wait()
        results[i] = batcher.encode([texts[i]])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t for batch in calls for t in batch) == sorted(texts)  # every text encoded exactly once
    assert len(calls) < len(texts)  # some shared a forward
    assert batcher.forwards == len(calls)
    for i, text in enumerate(texts):
        assert results[i].shape == (1, 2)
        assert results[i][0, 0] == len(text)  # its own vector, not a neighbour's


def test_a_lone_caller_waits_for_nothing_and_large_requests_stay_whole():
    calls: list[list[str]] = []
    batcher = TextBatcher(_slow_model(calls, delay_s=0.0), max_batch=4)
    assert batcher.encode(["a"]).shape == (1, 2)
    assert batcher.encode([str(i) for i in range(10)]).shape == (10, 2)  # more than max_batch: one forward
    assert [len(c) for c in calls] == [1, 10]


def test_an_error_reaches_every_caller_of_the_forward():
    gate = threading.Event()

    def failing(texts: list[str]) -> np.ndarray:
        gate.wait(1.0)
        raise RuntimeError("out of memory")

    batcher = TextBatcher(failing)
    errors: list[str] = []

    def call() -> None:
        try:
            batcher.encode(["x"])
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert errors == ["out of memory"] * 3


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        TextBatcher(lambda texts: np.zeros((len(texts), 2)), max_batch=0)
