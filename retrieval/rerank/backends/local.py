"""Local transformers backend for Qwen2-VL, Qwen2.5-VL, Qwen3-VL and InternVL3.5-HF (by Hub name or local
folder); how each family prepares its inputs is in families.py."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from retrieval.models.devices import resolve_device
from retrieval.rerank.backends.base import BackendError, Generation, PairScores, TokenScores
from retrieval.rerank.backends.families import ModelFamily, family_of, supported_families
from retrieval.rerank.chat import Prompt
from retrieval.rerank.prompts import POINTWISE_LABELS, POINTWISE_SPELLINGS, pointwise_prompt

# 1024 visual tokens (28 x 28 px each for Qwen2-VL) per image: a 3x3 grid of 224 px cells
# (672 x 672 px, 576 tokens) passes unshrunk, while a huge photo cannot flood the context.
DEFAULT_MAX_PIXELS = 1024 * 28 * 28

# Pairs per forward pass of pointwise scoring: K = 20 candidates cost 3 forwards.
POINTWISE_BATCH = 8

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class _Loaded:
    processor: Any
    model: Any
    family: ModelFamily


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # bf16 halves memory and is fast on GPUs; CPU bf16 matmuls are slow on many chips.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def _offline_note() -> str:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return " (HF_HUB_OFFLINE is set: only local folders and models already in the Hugging Face cache load)"
    return ""


def _count(input_ids: torch.Tensor, token_id: int) -> int:
    return int((input_ids == token_id).sum())


class LocalBackend:
    """A Qwen-VL model run in this process; loaded on first use, once per instance."""

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        pointwise_batch: int = POINTWISE_BATCH,
    ) -> None:
        self.model_name = str(model)
        self.device = resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.max_pixels = max_pixels
        self.pointwise_batch = pointwise_batch
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()  # the web UI may send the first queries concurrently

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def _load(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                try:
                    model_type = AutoConfig.from_pretrained(self.model_name).model_type
                    family = family_of(model_type)
                    if family is None:  # before any weight loads
                        raise BackendError(
                            f"{self.model_name!r} is a {model_type} model; the local backend runs "
                            f"{supported_families()}: serve it with vLLM and pass --reranker-url instead")
                    processor = AutoProcessor.from_pretrained(self.model_name)
                    model = AutoModelForImageTextToText.from_pretrained(self.model_name, dtype=self.dtype)
                except (OSError, ValueError) as e:
                    note = _offline_note()
                    raise BackendError(f"could not load the reranker model {self.model_name!r}{note}: {e}") from e
                # Batched scoring reads each row's last position: pad on the left.
                processor.tokenizer.padding_side = "left"
                self._loaded = _Loaded(processor, model.to(self.device).eval(), family)
            return self._loaded

    def _inputs(self, loaded: _Loaded, prompt: Prompt, images: Sequence[Image.Image]) -> Any:
        return self._batch_inputs(loaded, [prompt], [images])

    def _batch_inputs(self, loaded: _Loaded, prompts: Sequence[Prompt], images: Sequence[Sequence[Image.Image]]
                      ) -> Any:
        try:
            inputs = loaded.family.inputs(loaded.processor, prompts, images, self.max_pixels)
        except ValueError as e:  # e.g. an image too thin to resize (aspect ratio over 200)
            raise BackendError(f"could not prepare the images for {self.model_name!r}: {e}") from e
        return inputs.to(self.device)

    def generate(self, prompt: Prompt, images: Sequence[Image.Image], max_new_tokens: int) -> Generation:
        loaded = self._load()
        start = time.perf_counter()
        inputs = self._inputs(loaded, prompt, images)
        prompt_tokens = inputs["input_ids"].shape[1]
        try:
            with torch.inference_mode():
                output = loaded.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        except RuntimeError as e:  # out of memory, device errors
            raise BackendError(f"the reranker model {self.model_name!r} failed while generating: {e}") from e
        new_tokens = output[0, prompt_tokens:]
        return Generation(
            text=loaded.processor.decode(new_tokens, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new_tokens),
            visual_tokens=_count(inputs["input_ids"], loaded.model.config.image_token_id),
            seconds=time.perf_counter() - start,
        )

    def _mark_token_ids(self, loaded: _Loaded, candidates: Sequence[str]) -> dict[str, int]:
        ids = {}
        for mark in candidates:
            tokens = loaded.processor.tokenizer.encode(mark, add_special_tokens=False)
            if len(tokens) != 1:
                raise BackendError(
                    f"mark {mark!r} is {len(tokens)} tokens for {self.model_name!r}; "
                    "single-token ranking needs every mark to be one token"
                )
            ids[mark] = tokens[0]
        return ids

    def first_token_logprobs(
        self, prompt: Prompt, images: Sequence[Image.Image], candidates: Sequence[str]
    ) -> TokenScores:
        loaded = self._load()
        start = time.perf_counter()
        mark_ids = self._mark_token_ids(loaded, candidates)
        inputs = self._inputs(loaded, prompt, images)
        try:
            with torch.inference_mode():
                # Only the last position's logits are needed: skip the vocabulary projection elsewhere.
                logits = loaded.model(**inputs, logits_to_keep=1).logits[0, -1]
        except RuntimeError as e:
            raise BackendError(f"the reranker model {self.model_name!r} failed in its forward pass: {e}") from e
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return TokenScores(
            logprobs={mark: float(logprobs[token]) for mark, token in mark_ids.items()},
            prompt_tokens=inputs["input_ids"].shape[1],
            visual_tokens=_count(inputs["input_ids"], loaded.model.config.image_token_id),
            seconds=time.perf_counter() - start,
        )

    def pointwise_scores(self, query: str, reference: Image.Image | None,
                         candidates: Sequence[Image.Image]) -> PairScores:
        """Log-odds of "yes" over "no" as the answer token for each candidate alone: batched forward passes of
        `pointwise_batch` pairs, the last position's logits only, no decoding."""
        loaded = self._load()
        start = time.perf_counter()
        # Each spelling's first token stands for it (Qwen's tokenizers spell each as one token); a label's
        # probability sums its spellings.
        tokenizer = loaded.processor.tokenizer
        yes, no = (sorted({tokenizer.encode(spelling, add_special_tokens=False)[0]
                           for spelling in POINTWISE_SPELLINGS[label]}) for label in POINTWISE_LABELS)
        if set(yes) & set(no):
            raise BackendError(f"{self.model_name!r} spells 'yes' and 'no' with the same first token: pointwise "
                               "scoring cannot tell them apart")
        prompt = pointwise_prompt(query, composed=reference is not None)
        scores: list[float] = []
        calls = prompt_tokens = visual_tokens = 0
        for first in range(0, len(candidates), self.pointwise_batch):
            batch = candidates[first:first + self.pointwise_batch]
            inputs = self._batch_inputs(loaded, [prompt] * len(batch),
                                        [[reference, c] if reference is not None else [c] for c in batch])
            try:
                with torch.inference_mode():
                    logits = loaded.model(**inputs, logits_to_keep=1).logits[:, -1].float()
            except RuntimeError as e:
                raise BackendError(f"the reranker model {self.model_name!r} failed in its forward pass: {e}") from e
            scores += (torch.logsumexp(logits[:, yes], -1) - torch.logsumexp(logits[:, no], -1)).tolist()
            calls += 1
            prompt_tokens += int(inputs["attention_mask"].sum())
            visual_tokens += _count(inputs["input_ids"], loaded.model.config.image_token_id)
        return PairScores(scores, calls, prompt_tokens, visual_tokens, time.perf_counter() - start)
