"""OpenAI-compatible chat-completions backend (vLLM, SGLang, Ollama, llama.cpp server)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import httpx
from PIL import Image

from retrieval.rerank.backends.base import BackendError, Generation, LogprobsUnavailable, TokenScores
from retrieval.rerank.backends.messages import openai_messages
from retrieval.rerank.chat import Prompt

# Busy or restarting servers answer these; a later try may succeed.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The most alternatives OpenAI's API returns per position; vLLM and others follow it.
TOP_LOGPROBS = 20


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class ServerBackend:
    """Calls POST {base_url}/chat/completions; base_url usually ends in /v1."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        image_format: str = "JPEG",
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.image_format = image_format
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries and exponential backoff; the parsed JSON answer or BackendError."""
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                cause = f"no answer within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                cause = f"could not connect ({e or type(e).__name__})"
                continue
            if response.status_code in _RETRY_STATUSES:
                cause = f"HTTP {response.status_code}: {_snippet(response.text)}"
                continue
            if response.is_error:
                raise BackendError(
                    f"reranker server {self.url} refused the request: "
                    f"HTTP {response.status_code}: {_snippet(response.text)}"
                )
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise BackendError(
                    f"reranker server {self.url} did not answer with chat-completions JSON: {_snippet(response.text)!r}"
                )
            return data
        tries = self.retries + 1
        raise BackendError(f"reranker server {self.url} failed after {tries} tr{'y' if tries == 1 else 'ies'}: {cause}")

    def _body(self, prompt: Prompt, images: Sequence[Image.Image], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": openai_messages(prompt, images, self.image_format),
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def _first_choice(self, data: dict[str, Any]) -> dict[str, Any]:
        choices = data.get("choices")
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise BackendError(f"reranker server {self.url} answered without choices: {_snippet(str(data))!r}")
        return choices[0]

    def generate(self, prompt: Prompt, images: Sequence[Image.Image], max_new_tokens: int) -> Generation:
        start = time.perf_counter()
        data = self._post(self._body(prompt, images, max_new_tokens))
        message = self._first_choice(data).get("message")
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise BackendError(f"reranker server {self.url} answered without text: {_snippet(str(data))!r}")
        usage = _usage(data)
        return Generation(
            text=text,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            visual_tokens=None,  # servers report no split between text and image tokens
            seconds=time.perf_counter() - start,
        )

    def first_token_logprobs(
        self, prompt: Prompt, images: Sequence[Image.Image], candidates: Sequence[str]
    ) -> TokenScores:
        start = time.perf_counter()
        body = self._body(prompt, images, max_tokens=1) | {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        data = self._post(body)
        alternatives = self._first_token_alternatives(self._first_choice(data))
        return TokenScores(
            logprobs=_mark_logprobs(alternatives, candidates),
            prompt_tokens=_usage(data).get("prompt_tokens"),
            visual_tokens=None,
            seconds=time.perf_counter() - start,
        )

    def _first_token_alternatives(self, choice: dict[str, Any]) -> dict[str, float]:
        """Token text -> logprob for the first answer position, the chosen token included."""
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not (isinstance(content, list) and content and isinstance(content[0], dict)):
            raise LogprobsUnavailable(
                f"reranker server {self.url} returned no logprobs for model {self.model!r}, "
                "so single-token ranking cannot read it; rank by generated lists instead"
            )
        first = content[0]
        entries = [*(first.get("top_logprobs") or []), first]
        alternatives: dict[str, float] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("token"), str) and _is_number(entry.get("logprob")):
                alternatives.setdefault(entry["token"], float(entry["logprob"]))
        return alternatives


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _usage(data: dict[str, Any]) -> dict[str, int]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return {}
    return {key: int(value) for key, value in usage.items() if _is_number(value)}


def _logaddexp(a: float, b: float) -> float:
    high, low = max(a, b), min(a, b)
    return high if low == -math.inf else high + math.log1p(math.exp(low - high))


def _mark_logprobs(alternatives: dict[str, float], candidates: Sequence[str]) -> dict[str, float]:
    """Each mark's probability as first token, summed over spellings ("A", " A"); -inf if absent."""
    scores = {mark: -math.inf for mark in candidates}
    for token, logprob in alternatives.items():
        mark = token.strip()
        if mark in scores:
            scores[mark] = _logaddexp(scores[mark], logprob)
    return scores
