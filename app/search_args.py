"""A search as `gridrank search` takes it: the query and narrowing flags, as typed.

The same value travels to a running `gridrank serve` (as JSON) when that server answers for the
CLI, so both build the request in one way (`to_request`) and agree on every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fast path (a server answers) never imports the search stack
    from PIL import Image

    from retrieval.query.request import SearchRequest
    from retrieval.query.search import Searcher


@dataclass(frozen=True)
class SearchArgs:
    text: str | None = None
    weights: str | None = None  # "0.7,0.3": one per term of `text`, then the image
    like: str | None = None  # an indexed item's path: more like it
    k: int = 10
    page: int = 1
    kind: str = "any"
    under: str | None = None
    after: str | None = None
    before: str | None = None
    ext: str | None = None
    min_score: float | None = None
    hub_norm: str | None = None
    collapse: bool = True
    rerank: str | None = None
    rerank_k: int | None = None
    fuse: str | None = None


def to_request(args: SearchArgs, searcher: Searcher, max_pixels: int, image: Image.Image | None = None
               ) -> SearchRequest:
    """The SearchRequest (validated) for `args` over `searcher`'s index; BadQueryError says what to fix.

    Query terms may name image files (img:PATH) as on the command line: the caller is the index's
    own user (a server checks the token only that user can read).
    """
    from retrieval.query.build import build_query, like_query
    from retrieval.query.filters import normalize_under, parse_date, parse_exts
    from retrieval.query.types import MediaFilter
    from retrieval.query.request import SearchRequest

    media_filter = MediaFilter(normalize_under(args.under, searcher.store.info.root), None,
                               parse_date(args.after, "--after"), parse_date(args.before, "--before"),
                               parse_exts(args.ext))
    query = (like_query(searcher, args.like) if args.like is not None else
             build_query(searcher, args.text, image, args.weights, allow_files=True, max_pixels=max_pixels))
    return SearchRequest(query, k=args.k, kind=args.kind, rerank=args.rerank,  # type: ignore[arg-type]
                         rerank_k=args.rerank_k, fuse=args.fuse, filter=media_filter, min_score=args.min_score,
                         hub_norm=args.hub_norm, collapse=args.collapse, page=args.page)
