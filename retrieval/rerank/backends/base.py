"""The backend contract: what a reranker may ask of an MLLM, whichever runs it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from retrieval.rerank.chat import Prompt


@dataclass(frozen=True)
class Generation:
    """One generated answer and what it cost. Counts are None where a server doesn't report them.

    visual_tokens: image placeholder tokens in the prompt. seconds: wall time of the whole call
    (image preprocessing and decoding included; for a server, every try and backoff).
    """

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    visual_tokens: int | None
    seconds: float


@dataclass(frozen=True)
class TokenScores:
    """Log-probabilities of each candidate mark as the first answer token (FIRST ranking).

    A mark the backend gives no probability for (outside a server's top logprobs) is -inf.
    """

    logprobs: dict[str, float]
    prompt_tokens: int | None
    visual_tokens: int | None
    seconds: float


@dataclass(frozen=True)
class PairScores:
    """Pointwise relevance, one score per candidate (higher is better), and what computing them cost."""

    scores: list[float]
    calls: int  # forward passes or requests
    prompt_tokens: int | None
    visual_tokens: int | None
    seconds: float


class BackendError(RuntimeError):
    """The model call failed or timed out; the message says why in words a user understands.

    Rerankers catch it and fall back to first-stage order.
    """


class LogprobsUnavailable(BackendError):
    """The backend cannot score first tokens, so single-token ranking must generate instead."""


class RerankBackend(Protocol):
    """An MLLM that answers a Prompt over images. `images` are what the prompt's ImageRefs index."""

    def generate(self, prompt: Prompt, images: Sequence[Image.Image], max_new_tokens: int) -> Generation:
        """Greedy answer of at most max_new_tokens tokens."""
        ...

    def first_token_logprobs(
        self, prompt: Prompt, images: Sequence[Image.Image], candidates: Sequence[str]
    ) -> TokenScores:
        """Log-probability of each candidate mark as the first answer token, from one forward pass."""
        ...

    def pointwise_scores(self, query: str, reference: Image.Image | None,
                         candidates: Sequence[Image.Image]) -> PairScores:
        """Each candidate's relevance to the query on its own: the log-odds of "yes" over "no" as the answer
        (prompts.pointwise_prompt), or a served reranker's relevance score. No decoding."""
        ...
