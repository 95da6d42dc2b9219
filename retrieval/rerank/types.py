"""What reranking takes and gives: candidates, the query, options, and the report of what the model did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: PIL loads with the code that makes images
    from PIL import Image


@dataclass(frozen=True)
class Candidate:
    """What the model sees of one first-stage hit: a photo, or a video's S-Grid."""

    image: Image.Image
    subtitle: str | None = None


@dataclass(frozen=True)
class RerankQuery:
    text: str  # the search words, or the modification of a composed query
    reference: Image.Image | None = None  # composed queries: the example image

    @property
    def composed(self) -> bool:
        return self.reference is not None


@dataclass
class RerankReport:
    """What reranking did: its order, what the model saw and said, and what it cost."""

    method: str
    model: str
    order: list[int] = field(default_factory=list)  # candidate indices, best first
    rationale: str | None = None
    raw_outputs: list[str] = field(default_factory=list)
    images_sent: list[Image.Image] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    visual_tokens: int = 0
    fallback: str | None = None  # why (some of) the order is first-stage order; None if it is all the model's

    def add_call(self, prompt_tokens: int | None, completion_tokens: int | None, visual_tokens: int | None,
                 seconds: float, calls: int = 1) -> None:
        self.calls += calls
        self.seconds += seconds
        self.prompt_tokens += prompt_tokens or 0
        self.completion_tokens += completion_tokens or 0
        self.visual_tokens += visual_tokens or 0

    def note_fallback(self, reason: str) -> None:
        self.fallback = reason if self.fallback is None else f"{self.fallback}; {reason}"


@dataclass(frozen=True)
class RerankOptions:
    cell_size: int = 224
    window: int = 9
    step: int = 4
    max_new_tokens_list: int = 96  # settings.list_max_new_tokens
    max_new_tokens_cot: int = 8192  # settings.cot_max_new_tokens: CoTRR's budget
