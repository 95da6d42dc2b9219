"""What a search is and what it returns: the query, a hit, the response, how a list is shaped.

Plain data, importable without the models (the CLI validates a request before loading any).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import BadQueryError
from retrieval.rerank.types import RerankReport
from retrieval.store.ids import MediaKind

if TYPE_CHECKING:  # PIL, pydantic-settings: annotations only; `gridrank --help` and a served search skip them
    from PIL import Image

    from retrieval.settings import Settings


@dataclass(frozen=True)
class Segment:
    """A moment of a video: matching frames no further apart than the gap, in seconds."""

    start: float
    end: float
    best: float  # timestamp of the best-scoring frame in it
    score: float  # that frame's score


@dataclass(frozen=True)
class QueryTerm:
    """One weighted term of a mixed query: a text, an indexed item (its stored vector), or a picture."""

    weight: float
    text: str | None = None
    media_id: int | None = None
    image: Image.Image | None = None


@dataclass(frozen=True)
class Query:
    """Text, an example image, or both (composed: the image, changed as the text says);
    or a weighted mix of terms (retrieval/query/mix.py); or more like an indexed item."""

    text: str | None = None
    image: Image.Image | None = None
    terms: tuple[QueryTerm, ...] = ()
    like: int | None = None  # media id of an indexed item: its stored vector, and it comes first

    def __post_init__(self) -> None:
        if not (self.text and self.text.strip()) and self.image is None and not self.terms and self.like is None:
            raise BadQueryError("a query needs text, an image, or both")


@dataclass(frozen=True)
class MediaFilter:
    """Which indexed items a search may return (query/filters.py parses it and turns it into SQL or Milvus)."""

    under: str | None = None  # folder relative to the indexed root, '/'-separated, no trailing '/'
    kind: MediaKind | None = None
    after: dt.date | None = None  # on or after
    before: dt.date | None = None  # strictly before
    exts: tuple[str, ...] = ()  # lower case, without the dot

    @property
    def active(self) -> bool:
        """True when anything beyond the kind narrows the search (the kind alone is an id range)."""
        return bool(self.under or self.after or self.before or self.exts)


@dataclass(frozen=True)
class SearchHit:
    media_id: int
    path: Path
    kind: MediaKind
    score: float
    rank: int  # 1-based, final
    timestamp: float | None = None  # videos: start of the best-matching frame, in seconds
    frame_index: int | None = None
    first_stage_rank: int | None = None  # rank before reranking or fusion (same as rank without them)
    segment: Segment | None = None  # videos: the moment around the best frame (frame hits merged)
    duplicates: tuple[Path, ...] = ()  # other items collapsed into this one (same file, or near-identical)


@dataclass(frozen=True)
class ResultShape:
    """What narrows and shapes a first-stage list besides the kind."""

    filter: MediaFilter = field(default_factory=MediaFilter)
    min_score: float | None = None  # drop hits below this cosine similarity
    collapse: bool = True  # identical files (same content hash) into one result; False: every item its own
    near_duplicate_threshold: float | None = None  # and items at least this similar; None: identical files only
    segment_gap_s: float = 5.0
    pinned: int | None = None  # a media id that comes first whatever its score (more-like-this)
    hub_norm: str = "none"  # rank by QB-Norm's or DBNorm's scores (query/hubness.py), with the index's banks

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultShape:
        return cls(min_score=settings.min_score, near_duplicate_threshold=settings.near_duplicate_threshold,
                   segment_gap_s=settings.segment_gap_s, hub_norm=settings.hub_norm)


@dataclass(frozen=True)
class StageTimings:
    encode_s: float
    search_s: float
    rerank_s: float = 0.0
    caption_s: float = 0.0  # SQAF: the MLLM writing the composed query's target caption


@dataclass(frozen=True)
class SearchResponse:
    hits: list[SearchHit]
    timings: StageTimings
    rerank: RerankReport | None = None
    caption: str | None = None  # SQAF target caption, for composed queries that were reranked
    fusion: str | None = None  # which fusion produced the first-stage list, if any
