"""The web app's state and its one search path, over the Searcher the server holds: no Gradio in here.

Each method takes plain values from the UI or the API. The search itself is `SearchService.run`,
the call `gridrank search` makes, on a SearchRequest built (and so validated) the same way, so
the browser, the API and the CLI agree on every result. What the page shows of a response is
views.py; its words are formatting.py.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import ValidationError, validate_call

from app.render import response_dict
from app.search_args import SearchArgs, to_request
from app.web.formatting import WORKING, done_status
from app.web.media_access import MediaAccess
from app.web.thumbnails import ThumbnailCache
from app.web.views import ResultViews, WebConfig
from retrieval.errors import BadMediaError, BadQueryError
from retrieval.media.image_io import ImageRejected, load_rgb
from retrieval.query.build import build_query, like_query
from retrieval.query.filters import normalize_under, parse_date, parse_exts
from retrieval.query.request import SearchRequest
from retrieval.query.types import MediaFilter, SearchHit, SearchResponse
from retrieval.query.search import Searcher
from retrieval.query.service import SearchService
from retrieval.rerank.names import FUSION_METHODS as ALL_FUSION_METHODS, RERANK_METHODS as ALL_RERANK_METHODS
from retrieval.rerank.names import RERANKER_INFO, method_label, rerankers_for
from retrieval.settings import Settings

MAX_K = 100  # results per query in the UI and the API: a gallery, not an export

# What the menus offer, from the method registry; the names go to SearchRequest.rerank / .fuse ("none": None).
RERANK_METHODS: tuple[str, ...] = ("none", *rerankers_for("image"))  # Search and Composed tabs: photos
# Video tab: the S-Grid methods, and the pointwise baseline (each video's S-Grid scored alone).
VIDEO_RERANK_METHODS: tuple[str, ...] = ("none", *(n for n, s in RERANKER_INFO.items()
                                                   if s.media == ("video",) or (not s.listwise and "video" in s.media)))
FUSION_METHODS: tuple[str, ...] = ("none", *ALL_FUSION_METHODS)  # Video tab
API_RERANK_METHODS: tuple[str, ...] = ("none", *ALL_RERANK_METHODS)  # the API takes every CLI method


def _arguments_checked(method):
    """Check an API call's arguments against the method's type hints (pydantic); a wrong type is a
    BadQueryError that names the argument, not an AttributeError deep inside."""
    validated = validate_call(method)
    names = list(inspect.signature(method).parameters)  # pydantic names positional arguments by their index

    def where(loc: tuple) -> str:
        return ".".join(names[part] if isinstance(part, int) and i == 0 and part < len(names) else str(part)
                        for i, part in enumerate(loc))

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return validated(*args, **kwargs)
        except ValidationError as e:
            problems = "; ".join(f"{where(err['loc'])}: {err['msg']}" for err in e.errors()[:3])
            raise BadQueryError(f"bad API arguments: {problems}") from None

    return call


class UploadRejected(BadMediaError):
    """An uploaded reference image that cannot be used; the message says why."""


@dataclass(frozen=True)
class Refine:
    """The Search tab's (and the API's) narrowing options, as the user typed them."""

    under: str | None = None  # folder relative to the indexed root
    after: str | None = None  # YYYY-MM-DD, on or after
    before: str | None = None  # YYYY-MM-DD, before
    ext: str | None = None  # jpg,png
    min_score: float | None = None
    collapse: bool = True
    like: str | None = None  # more like this indexed item (path relative to the root)
    page: int = 1
    hub_norm: str | None = None  # none, qbnorm, dbnorm; None: the index's hub_norm setting



@dataclass(frozen=True)
class SearchUpdate:
    """One step of a streamed search: first-stage results while the model works, then the final ones."""

    response: SearchResponse
    final: bool
    status: str  # markdown: what the model is doing, or what it did (a fallback note); '' without a model


class _InFlight:
    """First stages run side by side (their texts share the encoder's forwards); a swap of the served
    index waits until none is running, and lets no new one start meanwhile."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._swapping = False

    @contextmanager
    def search(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping)
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    @contextmanager
    def swap(self) -> Iterator[None]:
        with self._cond:
            self._swapping = True
            self._cond.wait_for(lambda: self._running == 0)
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


class WebBackend:
    """The server's state: one Searcher (model loaded once), its index, the caches, the allow-list.

    First stages (CLIP + FAISS, milliseconds) run side by side: the encoder batches the texts that
    arrive together, FAISS and the catalog take concurrent readers. The reranker model (seconds)
    runs one rerank at a time under its own lock, so CLIP-only searches never wait behind it.
    Swapping the Searcher for another index waits for both.
    """

    def __init__(self, searcher: Searcher, index_dir: Path, settings: Settings, thumbnails: ThumbnailCache,
                 access: MediaAccess, config: WebConfig = WebConfig()):
        self._service = SearchService(searcher, settings)
        self._index_dir = index_dir.resolve()
        self.settings = settings
        self.thumbnails = thumbnails
        self.access = access
        self.config = config
        self._in_flight = _InFlight()  # first stages, and swaps
        self._rerank_lock = threading.Lock()  # the reranker model: CLIP-only searches never wait for it
        self._reranker_loaded = bool(settings.reranker_url)  # a server needs no load; a local model does
        self._reranker_name: str | None = None
        self._model: tuple = (None, None)  # (backend, name) once a rerank made them: survives swaps
        self._on_swap: list[Callable[[WebBackend], None]] = []
        access.set_roots([self.root])

    # -- the index being served ---------------------------------------------------------------

    @property
    def searcher(self) -> Searcher:
        return self._service.searcher

    @property
    def index_dir(self) -> Path:
        return self._index_dir

    @property
    def root(self) -> Path:
        return self.searcher.store.info.root

    @property
    def views(self) -> ResultViews:
        """What the page shows of a response, over the index served now."""
        return ResultViews(self.searcher.store, self.thumbnails, self.access, self.config)

    def on_swap(self, callback: Callable[[WebBackend], None]) -> None:
        """Call `callback` after the served index changes (server.py updates Gradio's allowed paths)."""
        self._on_swap.append(callback)

    def swap(self, searcher: Searcher, index_dir: Path) -> None:
        """Serve another index (built by the Index tab); queries in flight finish on the old one."""
        with self._rerank_lock, self._in_flight.swap():  # always in this order
            old = self.searcher
            self._service = SearchService(searcher, self.settings, *self._model)
            self._index_dir = index_dir.resolve()
            self.access.set_roots([self.root])
        for callback in self._on_swap:
            callback(self)
        if old is not searcher:
            old.store.catalog.close()

    def status_markdown(self) -> str:
        with self._in_flight.search():
            self.searcher.store.refresh()
            info, counts = self.searcher.store.info, self.searcher.store.catalog.counts()
        skipped = f" · {counts.skipped:,} skipped" if counts.skipped else ""
        return (f"**{counts.images:,}** photos · **{counts.videos:,}** videos · {counts.frames:,} vectors{skipped}"
                f" &nbsp;|&nbsp; folder `{info.root}` &nbsp;|&nbsp; model `{info.model}`")

    def newest(self, k: int) -> list[SearchHit]:
        """The index's k newest items, copies collapsed: the first screen, before any search."""
        with self._in_flight.search():
            return self.searcher.newest(k)

    # -- search ---------------------------------------------------------------------------------

    def search(self, text: str | None, image: Image.Image | None = None, k: int = 12, kind: str = "any",
               rerank: str = "none", rerank_k: int | None = None, fuse: str = "none",
               text_weight: float | None = None, caption_weight: float | None = None,
               refine: Refine = Refine()) -> SearchResponse:
        """The one search path of the UI and the API: validate, then SearchService.run like the CLI."""
        request = self._request(text, image, k, kind, rerank, rerank_k, fuse, refine)
        return self._final(request, self._weights(text_weight, caption_weight))

    def search_stream(self, text: str | None, image: Image.Image | None = None, k: int = 12, kind: str = "any",
                      rerank: str = "none", rerank_k: int | None = None, fuse: str = "none",
                      text_weight: float | None = None, caption_weight: float | None = None,
                      refine: Refine = Refine()) -> Iterator[SearchUpdate]:
        """The search in steps, for a page that must not freeze during a long rerank.

        Without a model: one update, the results. With one (rerank, SQAF, ViC fusion): first the
        first-stage results and a status saying what the model is doing ("loading the reranker
        model...", "reranking 9 candidates with ..."), then the final results. Validation errors
        (BadQueryError) are raised before anything is yielded.
        """
        request = self._request(text, image, k, kind, rerank, rerank_k, fuse, refine)
        yield from self._stream(request, self._weights(text_weight, caption_weight))

    def cli_search(self, args: SearchArgs) -> dict:
        """A `gridrank search` handed over by the CLI (serve_link): its --json data, or BadQueryError."""
        request = to_request(args, self.searcher, self.settings.max_image_pixels)
        return json.loads(json.dumps(response_dict(self._final(request, self._weights(None, None))), default=str))

    def _final(self, request: SearchRequest, weights: tuple[float, float]) -> SearchResponse:
        """The search's final response, with no first-stage preview: CLIP-only searches side by side, a
        model's one at a time under its lock (which keeps the model for later searches and swaps)."""
        if not request.needs_model:
            with self._in_flight.search():
                return self._service_for(self._service, weights, with_model=False).run(request)
        with self._rerank_lock:
            service = self._service_for(self._service, weights, with_model=True)
            response = service.run(request)
            if response.rerank is not None or response.caption is not None:  # the run made the model
                reranker = service.reranker()
                self._model = (reranker.backend, reranker.model_name)
                self._reranker_name = reranker.model_name
                self._reranker_loaded = getattr(reranker.backend, "is_loaded", True)
        return response

    def _stream(self, request: SearchRequest, weights: tuple[float, float]) -> Iterator[SearchUpdate]:
        if not request.needs_model:
            yield SearchUpdate(self._final(request, weights), True, "")
            return

        # The CLIP-only first stage, beside other searches: it never waits behind a rerank.
        rerank_k = request.rerank_k or self.settings.rerank_k
        preview_request = dataclasses.replace(
            request, k=max(request.k, rerank_k), rerank=None,
            fuse=None if request.model_fusion else request.fuse)
        with self._in_flight.search():
            preview = self._service_for(self._service, weights, with_model=False).run(preview_request)
        if not preview.hits:  # nothing of that kind in the index: nothing for the model to rank
            yield SearchUpdate(preview, True, "")
            return
        n = min(rerank_k, len(preview.hits))
        if request.model_fusion:
            n = min(rerank_k, self.settings.rerank_window)  # the interleaved list keeps duplicates
        preview = dataclasses.replace(preview, hits=preview.hits[: request.k])
        yield SearchUpdate(preview, False, self._pending_status(request, n))

        # The model, under its own lock: one rerank at a time (it already uses the whole device).
        response = self._final(request, weights)
        yield SearchUpdate(response, True, done_status(response))

    def _request(self, text: str | None, image: Image.Image | None, k, kind: str, rerank: str, rerank_k,
                 fuse: str, refine: Refine = Refine()) -> SearchRequest:
        """Form values to a SearchRequest (which validates itself); BadQueryError says what to fix."""
        text = (text or "").strip() or None
        like = (refine.like or "").strip() or None
        if text is None and image is None and like is None:
            raise BadQueryError("Type what you are looking for.")
        if like is not None and (text is not None or image is not None):
            raise BadQueryError("More like this stands alone: to mix an item with words, type "
                                "img:PATH +words in the query instead.")
        k = _whole_number(k, "top-K")
        if k > MAX_K:
            raise BadQueryError(f"top-K must be between 1 and {MAX_K}, not {k}")
        # Image terms name indexed items only: a visitor may not make the server read other files.
        query = like_query(self.searcher, like) if like else build_query(self.searcher, text, image)
        media_filter = MediaFilter(normalize_under(refine.under, self.root, "Folder"), None,
                                   parse_date(refine.after, "from date"), parse_date(refine.before, "before date"),
                                   parse_exts(refine.ext))
        return SearchRequest(query, k=k, kind=kind,  # type: ignore[arg-type]
                             rerank=None if (rerank or "none") == "none" else rerank,
                             rerank_k=None if rerank_k is None else _whole_number(rerank_k, "candidates reranked"),
                             fuse=None if (fuse or "none") == "none" else fuse, filter=media_filter,
                             min_score=_min_score(refine.min_score), hub_norm=refine.hub_norm or None,
                             collapse=bool(refine.collapse), page=_whole_number(refine.page, "page"))

    def load_upload(self, path: str | Path | None) -> Image.Image:
        """Decode an uploaded reference image with the indexer's guard; UploadRejected says why not."""
        if not path:
            raise UploadRejected("Drop a reference image first (JPEG, PNG, WebP...).")
        path = Path(path)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError:
            raise UploadRejected("The upload did not arrive; try again.") from None
        limit = self.config.max_upload_bytes
        if size > limit:
            raise UploadRejected(f"{name} is {size / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.0f} MB.")
        try:
            return load_rgb(path, self.settings.max_image_pixels).image
        except ImageRejected as e:
            raise UploadRejected(f"{name} was not used: {e}.") from None
        except OSError as e:  # truncated or otherwise broken pixel data
            raise UploadRejected(f"{name} was not used: the image data is damaged ({e}).") from None

    def _weights(self, text_weight, caption_weight) -> tuple[float, float]:
        """SQAF's (a, b) for this query: the settings' unless the Composed tab's sliders say otherwise."""
        a = self.settings.composed_text_weight if text_weight is None else _weight(text_weight, "a")
        b = self.settings.sqaf_caption_weight if caption_weight is None else _weight(caption_weight, "b")
        return a, b

    def _service_for(self, service: SearchService, weights: tuple[float, float], with_model: bool) -> SearchService:
        """`service`, or a per-query one with other SQAF weights sharing its index, encoder and model."""
        a, b = weights
        if a == service.searcher.composed_text_weight and b == service.settings.sqaf_caption_weight:
            return service
        searcher = Searcher(service.searcher.store, service.searcher.encoder, a, service.searcher.default_shape)
        settings = service.settings.model_copy(update={"composed_text_weight": a, "sqaf_caption_weight": b})
        if not with_model:
            return SearchService(searcher, settings)
        reranker = service.reranker()  # the server's one model, loaded once
        return SearchService(searcher, settings, reranker.backend, reranker.model_name)

    @property
    def reranker_name(self) -> str:
        """The reranker's model as reports name it (before the first rerank: from the settings)."""
        return self._reranker_name or self.settings.reranker_name

    def _pending_status(self, request: SearchRequest, n: int) -> str:
        method = method_label(request.fuse) if request.model_fusion else request.rerank
        steps = []
        model = f" with `{self.reranker_name}`"
        if not self._reranker_loaded:
            steps.append(f"loading the reranker model `{self.reranker_name}` (first use: this can take a while)")
            model = ""
        if request.query.image is not None and request.query.text and request.rerank:
            steps.append("writing the target caption (SQAF)")
        steps.append(f"reranking {n} candidate{'s' if n != 1 else ''}{model} ({method})")
        text = ", then ".join(steps)
        busy = " Waiting for the reranker: another search is using it." if self._rerank_lock.locked() else ""
        return f"{WORKING} {text[0].upper()}{text[1:]}. First-stage (CLIP) results meanwhile.{busy}"

    @_arguments_checked
    def api_search(self, query: str, k: int = 10, kind: str = "any", rerank: str = "none",
                   rerank_k: int | None = None, fuse: str = "none", under: str | None = None,
                   after: str | None = None, before: str | None = None, ext: str | None = None,
                   min_score: float | None = None, collapse: bool = True, like: str | None = None,
                   page: int = 1, hub_norm: str | None = None) -> dict:
        """The API's `search`: the same JSON as `gridrank search --json` (paths are absolute strings).

        The images the model saw come as paths in the thumbnail cache (fetchable from the server).
        """
        refine = Refine(under, after, before, ext, min_score, collapse, like, page, hub_norm)
        response = self.search(query, None, k, kind, rerank, rerank_k, fuse, refine=refine)
        saved = self.thumbnails.model_inputs(response.rerank.images_sent) if response.rerank else []
        return json.loads(json.dumps(response_dict(response, saved), default=str))



def _whole_number(value, name: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadQueryError(f"{name} must be a whole number, not {value!r}") from None
    if not number.is_integer():
        raise BadQueryError(f"{name} must be a whole number, not {value!r}")
    return int(number)


def _min_score(value) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise BadQueryError(f"minimum score must be a number between -1 and 1, or empty for none, not {value!r}") from None


def _weight(value, name: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise BadQueryError(f"weight {name} must be a number between 0 and 1, not {value!r}") from None
    if not 0.0 <= weight <= 1.0:
        raise BadQueryError(f"weight {name} must be between 0 and 1, not {weight}")
    return weight
