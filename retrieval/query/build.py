"""From what a user typed to a Query: the one place CLI, API and UI turn query text into terms."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from retrieval.errors import BadMediaError
from retrieval.media.image_io import ImageRejected, load_rgb
from retrieval.query.mix import MixTerm, parse_query, parse_weights
from retrieval.query.types import Query, QueryTerm
from retrieval.query.search import Searcher, UnknownItemError


def build_query(searcher: Searcher, text: str | None, image: Image.Image | None = None,
                weights: str | None = None, allow_files: bool = False,
                max_pixels: int = 100_000_000) -> Query:
    """A plain, composed or mixed query (syntax: retrieval/query/mix.py).

    Image terms name an indexed item (its stored vector is used) or, with `allow_files` (the
    CLI, not the web server), an image file to encode. `image` is one more term, weight 1
    unless `weights` says otherwise; without markers or weights, text + image stay the composed
    query (SQAF's blend with composed_text_weight).
    """
    def is_image(ref: str) -> bool:
        return searcher.find_item(ref) is not None or (allow_files and _is_file(ref))

    parsed = parse_query(text, is_image) if text and text.strip() else None
    plain_text = parsed is not None and not parsed.mixed and parsed.terms[0].text is not None
    if weights is None and (parsed is None or plain_text):
        return Query(text, image)
    terms: list[MixTerm] = list(parsed.terms) if parsed else []
    resolved = [_resolve(t, searcher, allow_files, max_pixels) for t in terms]
    if image is not None:
        resolved.append(QueryTerm(1.0, image=image))
    chosen = parse_weights(weights, len(resolved))
    if chosen is not None:
        resolved = [QueryTerm(w, t.text, t.media_id, t.image) for w, t in zip(chosen, resolved)]
    return Query(terms=tuple(resolved))


def _resolve(term: MixTerm, searcher: Searcher, allow_files: bool, max_pixels: int) -> QueryTerm:
    if term.text is not None:
        return QueryTerm(term.weight, text=term.text)
    ref = term.image_ref or ""
    media_id = searcher.find_item(ref)
    if media_id is not None:
        return QueryTerm(term.weight, media_id=media_id)
    if allow_files and _exists(ref):  # a folder or a broken file: load_query_image says which
        return QueryTerm(term.weight, image=load_query_image(Path(ref).expanduser(), max_pixels))
    where = "an indexed item (path relative to the indexed folder)" + (" or an image file" if allow_files else "")
    raise UnknownItemError(f"image term img:{ref}: not {where}")


def _is_file(ref: str) -> bool:
    try:
        return Path(ref).expanduser().is_file()
    except OSError:  # a name too long for the filesystem, or unreadable: not a file we can use
        return False


def _exists(ref: str) -> bool:
    try:
        return Path(ref).expanduser().exists()
    except OSError:
        return False


def load_query_image(path: Path, max_pixels: int) -> Image.Image:
    """A query's example image, or a BadMediaError that names the file and what is wrong with it."""
    if path.is_dir():
        raise BadMediaError(f"{path} is a folder: give an image file (JPEG, PNG, WebP...)")
    try:
        return load_rgb(path, max_pixels).image
    except ImageRejected as e:
        raise BadMediaError(f"{path}: {e}") from None
    except OSError as e:  # missing, unreadable, or truncated pixel data
        raise BadMediaError(f"cannot read the image {path}: {e.strerror or e}") from None


def like_query(searcher: Searcher, ref: str) -> Query:
    """More like an indexed item: its stored vector, and the item itself first."""
    return Query(like=searcher.require_item(ref))
