"""The transformers backend, run for real through the tiny Qwen2-VL."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from retrieval.rerank.backends.base import BackendError
from retrieval.rerank.backends.local import LocalBackend
from retrieval.rerank.chat import ImageRef, Prompt

PROMPT = Prompt("You rank images.", ["Query: two kids at dusk\n", ImageRef(0), ImageRef(1), "Best image:"])


def test_generate_returns_text_and_counts(tiny_backend, two_images):
    result = tiny_backend.generate(PROMPT, two_images, max_new_tokens=6)
    assert isinstance(result.text, str)
    assert 1 <= result.completion_tokens <= 6
    # Each 112 x 112 px-bounded image is at most 16 merged 28 px patches, at least 4.
    assert 8 <= result.visual_tokens <= 32
    assert result.prompt_tokens > result.visual_tokens
    assert result.seconds > 0


def test_generate_is_deterministic(tiny_backend, two_images):
    first = tiny_backend.generate(PROMPT, two_images, max_new_tokens=4)
    assert tiny_backend.generate(PROMPT, two_images, max_new_tokens=4).text == first.text


def test_first_token_logprobs_over_marks(tiny_backend, two_images):
    marks = ["A", "B", "C", "D"]
    scores = tiny_backend.first_token_logprobs(PROMPT, two_images, marks)
    assert list(scores.logprobs) == marks
    values = list(scores.logprobs.values())
    assert all(math.isfinite(v) and v <= 0 for v in values)
    # Log-probabilities of distinct tokens of one distribution: their probabilities sum below 1.
    assert sum(math.exp(v) for v in values) < 1
    assert len(set(values)) > 1
    assert scores.visual_tokens > 0
    assert scores.prompt_tokens > scores.visual_tokens


def test_multi_token_mark_is_refused(tiny_backend, two_images):
    with pytest.raises(BackendError, match="'12' is 2 tokens"):
        tiny_backend.first_token_logprobs(PROMPT, two_images, ["A", "12"])


def test_model_loads_lazily_once(tiny_vlm_dir, two_images):
    backend = LocalBackend(tiny_vlm_dir, device="cpu", max_pixels=56 * 56)
    assert not backend.is_loaded
    backend.generate(Prompt("", ["hi"]), [], max_new_tokens=1)
    model = backend._load().model
    backend.first_token_logprobs(PROMPT, two_images, ["A"])
    assert backend._load().model is model


def test_missing_model_is_a_backend_error(tmp_path):
    backend = LocalBackend(tmp_path / "no-such-model", device="cpu")
    with pytest.raises(BackendError, match="could not load the reranker model"):
        backend.generate(Prompt("", ["hi"]), [], max_new_tokens=1)


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        LocalBackend("x", dtype="int3")


def test_image_the_model_cannot_take_is_a_backend_error(tiny_backend):
    sliver = Image.new("RGB", (1, 400))
    with pytest.raises(BackendError, match="could not prepare the images"):
        tiny_backend.generate(Prompt("", [ImageRef(0)]), [sliver], max_new_tokens=1)
