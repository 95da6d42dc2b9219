"""OpenAI-compatible chat-completions backend (vLLM, SGLang, Ollama, llama.cpp server)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrieval.rerank.backends.base import BackendError, Generation, LogprobsUnavailable, PairScores, TokenScores
from retrieval.rerank.backends.messages import image_data_url, openai_messages
from retrieval.rerank.chat import Prompt
from retrieval.rerank.prompts import POINTWISE_LABELS, POINTWISE_SPELLINGS, pointwise_prompt

# Busy or restarting servers answer these; a later try may succeed.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The most alternatives OpenAI's API returns per position; vLLM and others follow it.
TOP_LOGPROBS = 20


class _Answer(BaseModel):
    """The part of a chat-completions answer gridrank reads. Anything else in it is ignored; what is read must
    have the documented type, and numbers must be finite (a server's NaN or Infinity is a malformed answer)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class _Usage(_Answer):
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)


class _TopLogprob(_Answer):
    token: str
    logprob: float = Field(le=0)


class _Position(_TopLogprob):
    top_logprobs: list[_TopLogprob] = []


class _Logprobs(_Answer):
    content: list[_Position] | None = None


class _Message(_Answer):
    content: str | None = None


class _Choice(_Answer):
    message: _Message | None = None
    logprobs: _Logprobs | None = None


class _Completion(_Answer):
    kind: ClassVar[str] = "chat-completions JSON"  # how an error names what the server failed to send

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _RerankResult(_Answer):
    index: int = Field(ge=0)
    relevance_score: float


class _RerankUsage(_Answer):
    total_tokens: int | None = Field(None, ge=0)


class _Reranked(_Answer):
    """Cohere's rerank answer, as vLLM serves it: results of index and relevance_score."""

    kind: ClassVar[str] = "rerank JSON"
    results: list[_RerankResult]
    usage: _RerankUsage | None = None


_A = TypeVar("_A", bound=_Answer)


class _NoEndpoint(BackendError):
    """The server has no such route (HTTP 404 or 405)."""


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
        # A served pointwise reranker (Qwen3-VL-Reranker on vLLM) answers here; None once the server said it has no
        # such route, so later calls go straight to chat logprobs.
        self.rerank_url: str | None = base_url.rstrip("/") + "/rerank"
        self.model = model
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.image_format = image_format
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any], url: str | None = None, answer: type[_A] = _Completion) -> _A:
        """POST (to the chat-completions URL unless another is given) with retries and exponential backoff;
        the validated answer or BackendError (_NoEndpoint when the server has no such route)."""
        url = url or self.url
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(url, json=body)
            except httpx.TimeoutException:
                cause = f"no answer within {self.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                cause = f"could not connect ({e or type(e).__name__})"
                continue
            if response.status_code in _RETRY_STATUSES:
                cause = f"HTTP {response.status_code}: {_snippet(response.text)}"
                continue
            if response.status_code in (404, 405):
                raise _NoEndpoint(f"reranker server has no {url}: HTTP {response.status_code}")
            if response.is_error:
                raise BackendError(
                    f"reranker server {url} refused the request: "
                    f"HTTP {response.status_code}: {_snippet(response.text)}"
                )
            try:
                return answer.model_validate_json(response.content)
            except ValidationError as e:
                raise BackendError(
                    f"reranker server {url} did not answer with {answer.kind} ({_problems(e)}): "
                    f"{_snippet(response.text)!r}"
                ) from None
        tries = self.retries + 1
        raise BackendError(f"reranker server {url} failed after {tries} tr{'y' if tries == 1 else 'ies'}: {cause}")

    def _body(self, prompt: Prompt, images: Sequence[Image.Image], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": openai_messages(prompt, images, self.image_format),
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def generate(self, prompt: Prompt, images: Sequence[Image.Image], max_new_tokens: int) -> Generation:
        start = time.perf_counter()
        answer = self._post(self._body(prompt, images, max_new_tokens))
        message = answer.choices[0].message
        if message is None or message.content is None:
            raise BackendError(f"reranker server {self.url} answered without text: "
                               f"{_snippet(answer.model_dump_json())!r}")
        usage = answer.usage or _Usage()
        return Generation(
            text=message.content,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            visual_tokens=None,  # servers report no split between text and image tokens
            seconds=time.perf_counter() - start,
        )

    def first_token_logprobs(
        self, prompt: Prompt, images: Sequence[Image.Image], candidates: Sequence[str]
    ) -> TokenScores:
        start = time.perf_counter()
        body = self._body(prompt, images, max_tokens=1) | {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        answer = self._post(body)
        alternatives = self._first_token_alternatives(answer.choices[0])
        return TokenScores(
            logprobs=_mark_logprobs(alternatives, candidates),
            prompt_tokens=(answer.usage or _Usage()).prompt_tokens,
            visual_tokens=None,
            seconds=time.perf_counter() - start,
        )

    def pointwise_scores(self, query: str, reference: Image.Image | None,
                         candidates: Sequence[Image.Image]) -> PairScores:
        """The server's rerank endpoint when it has one (text queries: its documents are the images), else the
        log-odds of "yes" over "no" as the first answer token of a chat completion per candidate."""
        start = time.perf_counter()
        if reference is None and self.rerank_url is not None:
            body = {"model": self.model, "query": query,
                    "documents": {"content": [{"type": "image_url", "image_url": {"url": image_data_url(image,
                                  self.image_format)}} for image in candidates]}}
            try:
                answer = self._post(body, self.rerank_url, _Reranked)
            except _NoEndpoint:
                self.rerank_url = None
            else:
                scores = [-math.inf] * len(candidates)
                for result in answer.results:
                    if result.index < len(scores):
                        scores[result.index] = result.relevance_score
                tokens = answer.usage.total_tokens if answer.usage else None
                return PairScores(scores, 1, tokens, None, time.perf_counter() - start)
        prompt = pointwise_prompt(query, composed=reference is not None)
        scores, prompt_tokens = [], []
        spellings = [spelling for variants in POINTWISE_SPELLINGS.values() for spelling in variants]
        for candidate in candidates:
            answer = self.first_token_logprobs(prompt, [reference, candidate] if reference is not None else
                                               [candidate], spellings)
            yes, no = (functools.reduce(_logaddexp, (answer.logprobs[s] for s in POINTWISE_SPELLINGS[label]))
                       for label in POINTWISE_LABELS)
            # Neither among the top logprobs says nothing: 0, between a sure yes and a sure no.
            scores.append(0.0 if yes == no == -math.inf else yes - no)
            prompt_tokens.append(answer.prompt_tokens)
        total = None if None in prompt_tokens else sum(prompt_tokens)
        return PairScores(scores, len(candidates), total, None, time.perf_counter() - start)

    def _first_token_alternatives(self, choice: _Choice) -> dict[str, float]:
        """Token text -> logprob for the first answer position, the chosen token included."""
        content = choice.logprobs.content if choice.logprobs else None
        if not content:
            raise LogprobsUnavailable(
                f"reranker server {self.url} returned no logprobs for model {self.model!r}, "
                "so single-token ranking cannot read it; rank by generated lists instead"
            )
        first = content[0]
        alternatives: dict[str, float] = {}
        for entry in [*first.top_logprobs, first]:
            alternatives.setdefault(entry.token, entry.logprob)
        return alternatives


def _problems(error: ValidationError) -> str:
    """'usage.prompt_tokens: Input should be a finite number; ...': where the answer is malformed."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the answer'}: {e['msg']}" for e in error.errors()[:3])


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
