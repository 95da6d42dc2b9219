"""Query mixing: one small syntax for weighted sums of texts and images, shared by CLI, API and UI.

    sunny beach +dog -people        three terms: 1*"sunny beach" + 1*"dog" - 1*"people"
    2:beach 0.5:sunset              weight prefixes
    img:trips/IMG_0042.jpg +dusk    an image term: an indexed item (its stored vector) or a file
    -img:ref.jpg                    image terms take weights too

A term starts at the beginning of the query or after a space, with `+`, `-`, `NUMBER:` or
`img:`; everything up to the next term start is its body, so a hyphen inside a word
("t-shirt") or a spaced dash ("cats - dogs") is plain text. The query vector is
normalize(sum of weight * term vector). A query with no term marker is not a mix: it stays a
plain text query (and, with an image, the composed query of SQUARE's SQAF).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.errors import BadQueryError
from retrieval.vectors import l2_normalize

IMAGE_PREFIX = "img:"
_WEIGHT = r"(?:[+-]?\d+(?:\.\d+)?:|[+-](?=\S))"
# A term boundary: start of text or whitespace, then a weight prefix and/or img:.
_TERM_START = re.compile(rf"(?:^|(?<=\s))(?:{_WEIGHT}(?:{IMAGE_PREFIX})?|{IMAGE_PREFIX})")
_FILE_NAME = re.compile(r"\S+\.[A-Za-z0-9]{2,5}")  # one word with a file extension: cat.jpg
_TERM = re.compile(rf"^(?P<weight>{_WEIGHT})?(?P<img>{IMAGE_PREFIX})?(?P<body>.*)$", re.DOTALL)


@dataclass(frozen=True)
class MixTerm:
    weight: float
    text: str | None = None
    image_ref: str | None = None  # a path as the user wrote it: resolved by the searcher


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[MixTerm, ...]
    mixed: bool  # False: one plain term, no markers (a plain text or image query)


def in_path_form(body: str) -> bool:
    """Whether a bare term is written as a path: `photos/cat.jpg`, `./cat`, `~/cat.jpg` or `cat.jpg`.

    Only these may name an image without `img:`; plain words stay words whatever files the current
    folder holds (`touch sunset; gridrank search sunset` searches the word).
    """
    return "/" in body or body.startswith(("~", ".")) or _FILE_NAME.fullmatch(body) is not None


def parse_query(text: str, is_image_path: Callable[[str], bool] = lambda _: False) -> ParsedQuery:
    """Split a query into weighted terms. `is_image_path` says whether a bare body in path form names an image."""
    text = text.strip()
    if not text:
        raise BadQueryError("empty query: type some words, or give an image")
    starts = [m.start() for m in _TERM_START.finditer(text)]
    if 0 not in starts:
        starts.insert(0, 0)
    pieces = [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)])]
    terms = tuple(_term(piece, is_image_path) for piece in pieces)
    mixed = len(terms) > 1 or _TERM_START.match(text) is not None
    return ParsedQuery(terms, mixed)


def _term(piece: str, is_image_path: Callable[[str], bool]) -> MixTerm:
    m = _TERM.match(piece)
    assert m is not None  # the pattern matches any string
    weight = _weight(m["weight"])
    body = m["body"].strip()
    if not body:
        raise BadQueryError(f"query term {piece!r} has a weight but nothing to weigh: write e.g. '+dog' or '2:beach'")
    if m["img"] or (in_path_form(body) and is_image_path(body)):
        return MixTerm(weight, image_ref=body)
    return MixTerm(weight, text=body)


def _weight(prefix: str | None) -> float:
    if not prefix or prefix == "+":
        return 1.0
    if prefix == "-":
        return -1.0
    return float(prefix.rstrip(":"))


def parse_weights(value: str | None, n_terms: int) -> list[float] | None:
    """--weights 0.7,0.3: one weight per term, in order (the query's terms, then --image)."""
    if value is None or not value.strip():
        return None
    try:
        weights = [float(w) for w in value.split(",")]
    except ValueError:
        weights = []
    if not weights or not all(math.isfinite(w) for w in weights):  # nan and inf parse as floats
        raise BadQueryError(f"--weights must be numbers separated by commas, like 0.7,0.3, not {value!r}")
    if len(weights) != n_terms:
        raise BadQueryError(f"--weights has {len(weights)} number(s) but the query has {n_terms} term(s) "
                         "(the query's terms, then --image): give one weight per term")
    return weights


def mix(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """normalize(sum_i w_i * v_i): the query vector of a mixed query."""
    total = np.asarray(weights, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32)
    if float(np.linalg.norm(total)) < 1e-6:
        raise BadQueryError("the weighted terms cancel out (their sum is zero): change a weight")
    return l2_normalize(total)
