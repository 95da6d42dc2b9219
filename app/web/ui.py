"""The page: four tabs (Search, Composed, Video, Index) over one WebBackend.

Gradio 6 takes theme and CSS at launch(); `THEME` and `CSS` here are what server.py passes.
Fonts are the system's: the page loads nothing from the internet.
"""

from __future__ import annotations

import functools
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from app.render import format_moment
from app.web.backend import (FUSION_METHODS, MAX_K, RERANK_METHODS, VIDEO_RERANK_METHODS, Refine, SearchUpdate,
                             WebBackend)
from app.web.formatting import relative, timings_line, timings_table
from app.web.indexing import IndexJobError, IndexJobs, JobSnapshot
from app.web.views import ModelView
from retrieval.errors import GridrankError
from retrieval.query.hub_names import HUB_NORMS
from retrieval.query.kinds import KINDS
from retrieval.query.types import SearchHit
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.names import RERANK_METHODS as ALL_RERANK_METHODS
from retrieval.rerank.windows import MIN_RERANK_K

log = logging.getLogger(__name__)

MAX_VIDEO_RESULTS = 6
QUERY_MIN_WIDTH = 240  # narrower (a phone), the button beside a text box wraps below it
FIRST_SCREEN_ITEMS = 12  # the Search tab's gallery before the first search: three rows of four
POLL_S = 0.4

THEME = gr.themes.Soft(
    primary_hue="indigo",
    neutral_hue="slate",
    radius_size="md",
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
          "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#gr-header { display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; padding: 6px 2px 0 2px; }
#gr-header h1 { font-size: 28px; font-weight: 800; margin: 0; letter-spacing: -0.02em; }
#gr-header .tagline { color: var(--body-text-color-subdued); font-size: 15px; }
#gr-status { font-size: 13px; color: var(--body-text-color-subdued); }
#gr-status p { margin: 0; }
#tiny-banner { background: #fff4d6; border: 1px solid #f0b429; color: #7a4d00; border-radius: 8px;
               padding: 8px 12px; font-size: 14px; }
#tiny-banner b { color: #8d2b00; }
.gr-timings { font-size: 13px; color: var(--body-text-color-subdued); min-height: 1.4em; }
.gr-timings p { margin: 0; }
.gr-summary p { margin: 0; font-weight: 600; }
.gr-video-hit { margin-bottom: 10px; }
.gr-video-hit .gr-video-caption { padding: 8px 12px 0 12px; }
#index-progress .track { height: 14px; background: var(--neutral-200); border-radius: 7px; overflow: hidden; }
#index-progress .fill { height: 100%; background: var(--color-accent); transition: width 0.3s ease; }
#index-progress .fill.done { background: #16a34a; }
#index-progress .fill.stopped { background: #d97706; }
#index-progress .line { margin-top: 6px; font-size: 14px; }
#index-progress .line b { font-size: 16px; }
#index-progress .current { font-size: 12px; color: var(--body-text-color-subdued); overflow: hidden;
                           text-overflow: ellipsis; white-space: nowrap; }
#index-progress .msg { margin-top: 4px; font-size: 14px; }
.gr-results .caption-label { white-space: normal !important; overflow-wrap: anywhere; font-size: 11px !important;
                             line-height: 1.25; max-width: calc(100% - 12px) !important; }
.gr-status { font-size: 14px; min-height: 0; }
.gr-status p { margin: 0; }
.gr-saw .gr-saw-raw textarea { font-family: var(--font-mono); font-size: 12px; }
.gr-saw-ranking p, .gr-saw-summary p { margin: 0 0 6px 0; }
#gr-footer { font-size: 12px; color: var(--body-text-color-subdued); text-align: center; }
/* Paths are long words: they wrap rather than widen the page (a phone scrolled sideways). */
.gradio-container .prose code { overflow-wrap: anywhere; white-space: normal; }
/* A caption of two lines leaves the picture visible; the whole of it is in the view of the selected result. */
.gr-results .caption-label { max-height: 2.7em; overflow: hidden; }
/* Phones: Gradio's gallery keeps its 4 columns of at least 100 px and widens the page past the screen. */
@media (max-width: 640px) {
  .gr-results .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
  .gr-results .caption-label { font-size: 10px !important; }
  /* Tighter tabs, so all four fit: Gradio moves the ones that do not behind a "More tabs" button. */
  .tab-container button { padding: 6px 9px !important; }
  /* The first screen shows media: the search box, then what the index holds or what a search found;
     the options, filters and query syntax follow the results (stacked, they filled two screens). */
  #gr-header .tagline { display: none; }
  #search-help, #search-controls, #search-filters { order: 1; }
  #search-saw { order: 2; }
  .form:has(> #search-query) { min-width: 0 !important; }
  #search-button { min-width: 84px !important; }
  #tiny-banner { font-size: 13px; padding: 6px 10px; }
  .gr-summary p { font-size: 13px; }
}
"""


class GuardedImageUpload(gr.Image):
    """gr.Image that hands the handler the uploaded file untouched.

    gr.Image would open the upload with PIL itself, before any handler runs, and fail on a
    non-image with a bare "Error". Here the handler decodes it with the indexer's guard
    (`load_rgb`: pixel limit, EXIF rotation) and says clearly what is wrong.
    """

    def get_block_name(self) -> str:
        return "image"  # the same browser widget as gr.Image

    def preprocess(self, payload):  # type: ignore[override]
        if payload is None or payload.path is None:
            return None
        return str(payload.path)  # Gradio has already checked it is a file uploaded to this server


def build_ui(backend: WebBackend, jobs: IndexJobs | None) -> gr.Blocks:
    """The Blocks app. `jobs` None: no Index tab (read-only server)."""
    with gr.Blocks(title="gridrank", analytics_enabled=False) as demo:
        gr.HTML("<div id='gr-header'><h1>gridrank</h1><span class='tagline'>Search your photos and videos by "
                "words, by an example picture, or for a moment in a video.</span></div>")
        status = gr.Markdown(backend.status_markdown(), elem_id="gr-status")
        profile = backend.settings.model_profile
        if profile.warning:
            gr.HTML(f"<div id='tiny-banner'><b>{html.escape(profile.name.capitalize())} profile:</b> "
                    f"{html.escape(profile.warning.split(': ', 1)[-1])}</div>", elem_id="tiny-banner-block")
        with gr.Tabs():
            with gr.Tab("Search", id="search"):
                search_area = _search_tab(backend)
            with gr.Tab("Composed", id="composed"):
                _composed_tab(backend)
            with gr.Tab("Video", id="video"):
                _video_tab(backend)
            if jobs is not None:
                with gr.Tab("Index", id="index"):
                    _index_tab(backend, jobs, status)
        gr.Markdown("API: `Client(URL, download_files=False).predict(\"a cat\", 10, \"any\", \"grid\", "
                    "api_name=\"/search\")` (query, top-K, kind, rerank) returns the same JSON as "
                    "`gridrank search --json`; keyword arguments under, after, before, ext, min_score, collapse, "
                    "like, page and hub_norm narrow it as the CLI flags do.", elem_id="gr-footer")
        gr.api(_user_errors_quiet(backend.api_search), api_name="search",
               api_description="Search the index by text: the same results as `gridrank search --json`. "
                               f"rerank: none, {', '.join(ALL_RERANK_METHODS)}; rerank_k: candidates reranked "
                               f"(2..200); fuse (kind video): {', '.join(FUSION_METHODS)}. Query syntax: "
                               "'beach +dog -people', "
                               "'2:beach', 'img:PATH' (an indexed item). under: folder; after/before: YYYY-MM-DD; "
                               "ext: jpg,png; min_score: cosine cutoff; collapse: near-duplicates; like: an "
                               "indexed item's path (more like it); page: 1-based, k per page; hub_norm: none, qbnorm "
                               "or dbnorm (the index needs its banks: gridrank index --query-bank).")
        demo.load(backend.status_markdown, outputs=status, api_visibility="private", show_progress="hidden")
        demo.load(lambda: search_area.newest(backend), outputs=search_area.lists, api_visibility="private",
                  show_progress="hidden")
    return demo


def _user_errors_quiet(fn: Callable) -> Callable:
    """A user's mistake reaches the caller as its message, and the server's log gets no traceback for it;
    anything else is a bug, and Gradio logs it in full."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GridrankError as e:
            log.info("refused an API call: %s", e)
            raise gr.Error(str(e), print_exception=False) from None

    return call


# -- shared pieces ---------------------------------------------------------------------------


def _controls(backend: WebBackend, prefix: str, default_kind: str = "any"
              ) -> tuple[gr.Radio, gr.Slider, gr.Dropdown, gr.Slider]:
    kind = gr.Radio(list(KINDS), value=default_kind, label="Kind", scale=2, elem_id=f"{prefix}-kind")
    k = gr.Slider(1, min(MAX_K, 60), value=12, step=1, label="Top-K results", scale=2, elem_id=f"{prefix}-k")
    rerank = gr.Dropdown(list(RERANK_METHODS), value="none", label="Rerank", scale=1, elem_id=f"{prefix}-rerank",
                         info="MLLM reranking of the top candidates")
    rerank_k = _rerank_k_slider(backend, prefix)
    return kind, k, rerank, rerank_k


def _rerank_k_slider(backend: WebBackend, prefix: str) -> gr.Slider:
    # The slider stops at one window of marks (A..T); the API takes up to the request's limit.
    default = min(max(backend.settings.rerank_k, MIN_RERANK_K), MAX_CANDIDATES)
    return gr.Slider(MIN_RERANK_K, MAX_CANDIDATES, value=default, step=1, label="Candidates reranked", scale=2,
                     elem_id=f"{prefix}-rerank-k")


@dataclass(frozen=True)
class ModelPanel:
    """The "What the model saw" accordion."""

    box: gr.Accordion
    summary: gr.Markdown
    images: gr.Gallery
    ranking: gr.Markdown
    timings: gr.Markdown
    reasoning: gr.Textbox
    raw: gr.Textbox

    @property
    def components(self) -> list:
        return [self.box, self.summary, self.images, self.ranking, self.timings, self.reasoning, self.raw]

    def show(self, view: ModelView) -> dict:
        return {self.box: gr.update(label=view.label), self.summary: view.summary,
                self.images: [str(p) for p in view.images], self.ranking: view.ranking, self.timings: view.timings,
                self.reasoning: gr.update(value=view.reasoning, visible=bool(view.reasoning)), self.raw: view.raw}

    def update(self, backend: WebBackend, update: SearchUpdate, composed: bool = False) -> dict:
        if update.final:
            return self.show(backend.views.model_view(update.response, composed))
        return self.show(ModelView("What the model saw · working…", [], update.status,
                                   "", timings_table(update.response), "", ""))

    def empty(self) -> dict:
        return {self.summary: "", self.images: [], self.ranking: "", self.timings: "",
                self.reasoning: gr.update(value="", visible=False), self.raw: ""}


@dataclass(frozen=True)
class DetailView:
    """The selected result, in full: a photo, or a video player starting at its moment."""

    image: gr.Image
    video: gr.Video
    text: gr.Markdown
    seek: gr.JSON

    @property
    def components(self) -> list:
        return [self.image, self.video, self.text, self.seek]

    def cleared(self) -> dict:
        return {self.image: gr.update(value=None, visible=True), self.video: gr.update(value=None, visible="hidden"),
                self.text: "Click a result to see it in full, with its path.", self.seek: []}


@dataclass(frozen=True)
class ResultsArea:
    """A tab's results: the summary lines, the gallery, the selected result and the model panel."""

    summary: gr.Markdown
    status: gr.Markdown
    timings: gr.Markdown
    gallery: gr.Gallery
    hits: gr.State
    scored: gr.State  # False while the gallery shows the first screen (no query scored those items)
    detail: DetailView
    panel: ModelPanel

    @property
    def lists(self) -> list:
        return [self.gallery, self.hits, self.scored, self.summary, self.status, self.timings]

    def newest(self, backend: WebBackend) -> dict:
        """The first screen: the index's newest items and how to search (replaced by the first search)."""
        page = backend.views.newest_page(backend.newest(FIRST_SCREEN_ITEMS))
        return {self.gallery: [(str(item.thumbnail), item.caption) for item in page.items],
                self.hits: [item.hit for item in page.items], self.scored: False, self.summary: page.summary}

    def outputs(self, *after_lists) -> list:
        """The event outputs in the order the API returns them: results, `after_lists`, panel, detail."""
        return [*self.lists, *after_lists, *self.panel.components, *self.detail.components]

    def show(self, backend: WebBackend, update: SearchUpdate, label: str, composed: bool = False) -> dict:
        page = backend.views.result_page(update.response, label)
        summary = page.summary if update.final or not page.items else f"{page.summary} (first stage, before reranking)"
        return {self.gallery: [(str(item.thumbnail), item.caption) for item in page.items],
                self.hits: list(update.response.hits), self.scored: True, self.summary: summary,
                self.status: update.status,
                self.timings: page.timings, **self.panel.update(backend, update, composed), **self.detail.cleared()}

    def failed(self, message: str) -> dict:
        return {self.gallery: [], self.hits: [], self.scored: True, self.summary: message, self.status: "",
                self.timings: "",
                **self.panel.empty(), **self.detail.cleared()}


def _results_area(prefix: str, under_detail: Callable[[], None] | None = None) -> ResultsArea:
    """The results: gallery, the selected result's view (`under_detail` adds components below it), panel."""
    summary = gr.Markdown(elem_classes="gr-summary", elem_id=f"{prefix}-summary")
    status = gr.Markdown(elem_classes="gr-status", elem_id=f"{prefix}-status")
    timings = gr.Markdown(elem_classes="gr-timings", elem_id=f"{prefix}-timings")
    with gr.Row(equal_height=False):
        gallery = gr.Gallery(label="Results", show_label=False, columns=4, height=560, object_fit="cover",
                             allow_preview=False, elem_id=f"{prefix}-gallery", scale=3, buttons=[],
                             elem_classes="gr-results")
        with gr.Column(scale=2, min_width=240):
            detail_image = gr.Image(label="Selected", type="filepath", interactive=False, height=380,
                                    elem_id=f"{prefix}-detail-image", buttons=["fullscreen"])
            # Mounted from the start ("hidden", not False): a gr.Video first mounted together with
            # subtitles shows nothing in Gradio 6.31.
            detail_video = gr.Video(label="Selected video", interactive=False, visible="hidden", height=380,
                                    elem_id=f"{prefix}-detail-video")
            detail_text = gr.Markdown("Click a result to see it in full, with its path.",
                                      elem_id=f"{prefix}-detail-text")
            if under_detail is not None:
                under_detail()
    panel = _model_panel(prefix)
    hits = gr.State([])
    scored = gr.State(True)
    seek = gr.JSON(visible=False)
    return ResultsArea(summary, status, timings, gallery, hits, scored,
                       DetailView(detail_image, detail_video, detail_text, seek), panel)


def _model_panel(prefix: str) -> ModelPanel:
    with gr.Accordion("What the model saw", open=False, elem_id=f"{prefix}-saw", elem_classes="gr-saw") as box:
        summary = gr.Markdown("Choose a **Rerank** method: what the model is shown, what it answered and what it "
                              "cost appear here.", elem_id=f"{prefix}-saw-summary", elem_classes="gr-saw-summary")
        with gr.Row(equal_height=False):
            # Preview mode: one image at a time, whole (a marked grid must not be cropped), thumbnails below.
            images = gr.Gallery(label="Images sent to the model", show_label=False, columns=6, height=420,
                                object_fit="contain", allow_preview=True, preview=True, selected_index=0,
                                fit_columns=False, elem_id=f"{prefix}-saw-images", scale=3, buttons=["fullscreen"])
            with gr.Column(scale=2, min_width=240):
                ranking = gr.Markdown(elem_id=f"{prefix}-saw-ranking", elem_classes="gr-saw-ranking")
                timings = gr.Markdown(elem_id=f"{prefix}-saw-timings")
        reasoning = gr.Textbox(label="Reasoning (chain of thought)", lines=3, max_lines=12, interactive=False,
                               visible=False, elem_id=f"{prefix}-saw-reasoning")
        raw = gr.Textbox(label="What the model wrote (raw text)", lines=2, max_lines=12, interactive=False,
                         elem_id=f"{prefix}-saw-raw", elem_classes="gr-saw-raw", buttons=["copy"])
    return ModelPanel(box, summary, images, ranking, timings, reasoning, raw)


def _select_handler(backend: WebBackend, prefix: str, detail: DetailView):
    def show(hits: list[SearchHit], scored: bool, evt: gr.SelectData):
        if evt is None or evt.index is None or not hits or evt.index >= len(hits):
            return detail.cleared()
        chosen = backend.views.detail(hits[evt.index], scored)
        if chosen.video is not None:
            return {detail.image: gr.update(value=None, visible=False),
                    detail.video: gr.update(value=str(chosen.video), visible=True,
                                            subtitles=str(chosen.subtitles)),
                    detail.text: chosen.text, detail.seek: [{"id": f"{prefix}-detail-video", "t": chosen.start or 0.0}]}
        return {detail.image: gr.update(value=str(chosen.image) if chosen.image else None, visible=True),
                detail.video: gr.update(value=None, visible="hidden"), detail.text: chosen.text, detail.seek: []}

    return show


# Start each player at its moment once the browser knows the video's length. (gr.Video's
# playback_position is lost when the value arrives in the same update as the player appears.)
SEEK_JS = """(seeks) => {
  for (const {id, t} of (seeks || [])) {
    const video = document.querySelector(`#${id} video`);
    if (!video || t == null) continue;
    const seek = () => { video.currentTime = t; };
    if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, {once: true});
  }
}"""


def _with_seek(event, seek: gr.JSON):
    event.then(None, seek, None, js=SEEK_JS, api_visibility="private", queue=False)


def _quoted(text: str | None, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return f"“{text[:limit]}{'…' if len(text) > limit else ''}”"


# -- tabs --------------------------------------------------------------------------------------


QUERY_HELP = ("Plain words search as one query. Mix terms: `sunny beach +dog -people` (− pushes away), "
              "`2:beach 0.5:sunset` (weights), `img:photos/cat.jpg +at night` (an indexed picture as a term). "
              "Query = normalize(Σ weight × term).")
SCORE_NOTE = ("Scores are cosine similarities of CLIP vectors (−1…1). Words against pictures typically score "
              "0.15–0.35 even for a good match; picture against picture 0.5–1. Compare scores within one search, "
              "not across searches.")


def _search_tab(backend: WebBackend) -> ResultsArea:
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search", show_label=False, placeholder="Describe what you are looking for, "
                           "e.g. a cat on a sofa", scale=5, elem_id="search-query", autofocus=True, max_lines=1,
                           min_width=QUERY_MIN_WIDTH)
        button = gr.Button("Search", variant="primary", scale=1, elem_id="search-button", min_width=120)
    gr.Markdown(QUERY_HELP, elem_id="search-help", elem_classes="gr-timings")
    with gr.Row(elem_id="search-controls"):
        kind, k, rerank, rerank_k = _controls(backend, "search")
    with gr.Accordion("Filters, score cutoff, duplicates", open=False, elem_id="search-filters"):
        with gr.Row():
            under = gr.Textbox(label="Folder", placeholder="e.g. trips/2024 (inside the indexed folder)", scale=2,
                               elem_id="search-under", max_lines=1)
            after = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", scale=1, elem_id="search-after",
                               max_lines=1, info="EXIF date taken, else file date")
            before = gr.Textbox(label="Before date", placeholder="YYYY-MM-DD", scale=1, elem_id="search-before",
                                max_lines=1)
            ext = gr.Textbox(label="Extensions", placeholder="jpg,png", scale=1, elem_id="search-ext", max_lines=1)
        with gr.Row():
            # A textbox, not gr.Number: empty means no cutoff (a Number would send 0 and drop negative scores).
            min_score = gr.Textbox(value="" if backend.settings.min_score is None else str(backend.settings.min_score),
                                   label="Minimum score", placeholder="off; e.g. 0.2", scale=1,
                                   elem_id="search-min-score", max_lines=1)
            collapse = gr.Checkbox(value=True, label="Collapse near-duplicates", scale=1, elem_id="search-collapse",
                                   info="identical files always collapse")
            hub_norm = gr.Dropdown(list(HUB_NORMS), value=backend.settings.hub_norm, label="Hubness correction",
                                   scale=1, elem_id="search-hub-norm",
                                   info="qbnorm / dbnorm: needs gridrank index --query-bank")
            gr.Markdown(SCORE_NOTE, elem_id="search-score-note", elem_classes="gr-timings")
    buttons: list[gr.Button] = []
    area = _results_area("search", lambda: buttons.append(
        gr.Button("More like this", size="sm", elem_id="search-like", interactive=False)))
    like_button = buttons[0]
    selected = gr.State(None)  # the selected result's path, relative to the root
    unselected = {selected: None, like_button: gr.update(interactive=False)}  # new results: nothing selected

    def run(text: str, kind_value: str, k_value: int, rerank_value: str, rerank_k_value: int, under_value: str,
            after_value: str, before_value: str, ext_value: str, min_score_value, collapse_value: bool,
            hub_norm_value: str, like: str | None = None):
        label = f"more like `{like}`" if like else _quoted(text)
        refine = Refine(under_value, after_value, before_value, ext_value, min_score_value, collapse_value, like,
                        hub_norm=hub_norm_value)
        try:
            # A generator: with a reranker, the first-stage results and a status come first.
            for update in backend.search_stream(None if like else text, None, k_value, kind_value,
                                                "none" if like else rerank_value, rerank_k_value, refine=refine):
                yield area.show(backend, update, label) | unselected
        except GridrankError as e:
            gr.Warning(str(e))
            yield area.failed(str(e)) | unselected

    def run_like(selected_path: str | None, *values):
        yield from run("", *values, like=selected_path)

    options = [kind, k, rerank, rerank_k, under, after, before, ext, min_score, collapse, hub_norm]
    outputs = [*area.outputs(), selected, like_button]
    for trigger in (button.click, query.submit):
        trigger(run, [query, *options], outputs, api_visibility="private", concurrency_id="search")
    like_button.click(run_like, [selected, *options], outputs, api_visibility="private", concurrency_id="search")
    _wire_select(backend, "search", area)

    def remember(hit_list: list[SearchHit], evt: gr.SelectData):
        if evt is None or evt.index is None or evt.index >= len(hit_list or []):
            return None, gr.update(interactive=False)
        return relative(hit_list[evt.index].path, backend.root), gr.update(interactive=True)

    area.gallery.select(remember, area.hits, [selected, like_button], api_visibility="private",
                        show_progress="hidden")
    return area


def _wire_select(backend: WebBackend, prefix: str, area: ResultsArea) -> None:
    selected = area.gallery.select(_select_handler(backend, prefix, area.detail), [area.hits, area.scored],
                                   area.detail.components, api_visibility="private", show_progress="hidden")
    _with_seek(selected, area.detail.seek)


def _composed_tab(backend: WebBackend) -> None:
    limit_mb = backend.config.max_upload_bytes / 2**20
    settings = backend.settings
    gr.Markdown(f"Drop a reference picture and say what should change (“the same, but at night”). "
                f"Images only, up to {limit_mb:.0f} MB.")
    with gr.Row(equal_height=True):
        reference = GuardedImageUpload(label="Reference image", type="filepath", image_mode=None,
                                       sources=["upload", "clipboard"], height=240, scale=2,
                                       elem_id="composed-reference")
        with gr.Column(scale=3):
            change = gr.Textbox(label="Change", placeholder="e.g. the same scene in winter", lines=2,
                                elem_id="composed-text")
            with gr.Row():
                kind, k, rerank, rerank_k = _controls(backend, "composed", default_kind="image")
            with gr.Row():
                text_weight = gr.Slider(0, 1, value=settings.composed_text_weight, step=0.05,
                                        label="a: weight of the words (vs the image)", elem_id="composed-a",
                                        info="query = (1−a)·image + a·words")
                caption_weight = gr.Slider(0, 1, value=settings.sqaf_caption_weight, step=0.05,
                                           label="b: weight of the model's caption (SQAF)", elem_id="composed-b",
                                           info="with a Rerank method: query' = (1−b)·query + b·caption")
            button = gr.Button("Search with this image", variant="primary", elem_id="composed-button")
    sqaf = gr.Markdown(elem_id="composed-sqaf", elem_classes="gr-status")
    area = _results_area("composed")

    def run(image_path: str | None, text: str, kind_value: str, k_value: int, rerank_value: str,
            rerank_k_value: int | None = None, a: float | None = None, b: float | None = None):
        label = f"this image + {_quoted(text)}" if (text or "").strip() else "this image"
        try:
            image: Image.Image = backend.load_upload(image_path)
            for update in backend.search_stream(text, image, k_value, kind_value, rerank_value, rerank_k_value,
                                                text_weight=a, caption_weight=b):
                yield area.show(backend, update, label, composed=True) | {sqaf: _sqaf_line(backend, update, a, b)}
        except GridrankError as e:
            gr.Warning(str(e))
            yield area.failed(str(e)) | {sqaf: ""}

    button.click(run, [reference, change, kind, k, rerank, rerank_k, text_weight, caption_weight],
                 area.outputs(sqaf), api_name="composed_search", concurrency_id="search")
    _wire_select(backend, "composed", area)


def _sqaf_line(backend: WebBackend, update: SearchUpdate, a: float | None, b: float | None) -> str:
    s = backend.settings
    a = s.composed_text_weight if a is None else a
    b = s.sqaf_caption_weight if b is None else b
    caption = update.response.caption
    if caption:
        # Markdown, which Gradio sanitizes itself: html.escape here showed quotes as &quot; on the page.
        return (f"**SQAF caption** (the model's description of the target image): “{caption}” · "
                f"a = {a:g}, b = {b:g}")
    if update.final and update.response.rerank is not None:
        return f"No SQAF caption (the model gave none; see “What the model saw”) · a = {a:g}"
    return f"Query weights: a = {a:g} (words vs image); b = {b:g} applies once a Rerank method writes a caption"


@dataclass(frozen=True)
class VideoSlot:
    """One video hit: its caption, its S-Grid and a player that starts at the moment."""

    box: gr.Group
    caption: gr.Markdown
    sgrid: gr.Image
    player: gr.Video

    @property
    def components(self) -> list:
        return [self.box, self.caption, self.sgrid, self.player]

    def empty(self) -> dict:
        return {self.box: gr.update(visible="hidden"), self.caption: "", self.sgrid: None,
                self.player: gr.update(value=None, subtitles=None)}


def _video_tab(backend: WebBackend) -> None:
    gr.Markdown("Find the moment: each hit shows an S-Grid of the video (frames over its whole length) "
                "and a player that starts at the best-matching moment, with subtitles when the video has them.")
    with gr.Row(equal_height=True):
        query = gr.Textbox(show_label=False, placeholder="e.g. a red ball bouncing", scale=5,
                           elem_id="video-query", max_lines=1, min_width=QUERY_MIN_WIDTH)
        button = gr.Button("Find moments", variant="primary", scale=1, elem_id="video-button", min_width=140)
    with gr.Row():
        k = gr.Slider(1, MAX_VIDEO_RESULTS, value=3, step=1, label="Videos", scale=2, elem_id="video-k")
        rerank = gr.Dropdown(list(VIDEO_RERANK_METHODS), value="none", label="Rerank", scale=1,
                             elem_id="video-rerank", info="S-Grids to the MLLM")
        fuse = gr.Dropdown(list(FUSION_METHODS), value="none", label="Fusion", scale=1, elem_id="video-fuse",
                           info="best frame + mean + subtitles")
        rerank_k = _rerank_k_slider(backend, "video")
    summary = gr.Markdown(elem_classes="gr-summary", elem_id="video-summary")
    status = gr.Markdown(elem_classes="gr-status", elem_id="video-status")
    timings = gr.Markdown(elem_classes="gr-timings", elem_id="video-timings")
    slots: list[VideoSlot] = []
    for i in range(MAX_VIDEO_RESULTS):
        # "hidden", not False: the players stay mounted (see _results_area).
        # A class, not an id: Gradio gives a hidden group's id to two elements.
        with gr.Group(visible="hidden", elem_classes=["gr-video-hit", f"video-hit-{i}"]) as box:
            caption = gr.Markdown(elem_classes="gr-video-caption")
            with gr.Row(equal_height=True):
                sgrid = gr.Image(label="S-Grid", type="filepath", interactive=False, height=300,
                                 elem_id=f"video-sgrid-{i}", buttons=["fullscreen"])
                player = gr.Video(label="Player", interactive=False, height=300, elem_id=f"video-player-{i}")
        slots.append(VideoSlot(box, caption, sgrid, player))
    panel = _model_panel("video")
    seek = gr.JSON(visible=False)

    def outputs_for(update: SearchUpdate, text: str) -> dict:
        started = time.perf_counter()
        results = backend.views.video_results(update.response)[:MAX_VIDEO_RESULTS]
        line = timings_line(update.response, time.perf_counter() - started).replace("thumbnails", "S-Grids")
        n = len(results)
        head = (f"{n} video{'s' if n != 1 else ''} for {_quoted(text)}" if n
                else f"No videos for {_quoted(text)}: the index has none.")
        if n and not update.final:
            head += " (first stage, before reranking)"
        shown = {summary: head, status: update.status, timings: line,
                 seek: [{"id": f"video-player-{i}", "t": r.start} for i, r in enumerate(results)]}
        for slot, r in zip(slots, results):
            shown |= {slot.box: gr.update(visible=True), slot.caption: r.caption, slot.sgrid: str(r.sgrid),
                      slot.player: gr.update(value=str(r.video), subtitles=str(r.subtitles),
                                             label=f"Player · starts at {format_moment(r.start)}")}
        for slot in slots[n:]:
            shown |= slot.empty()
        return shown | panel.update(backend, update)

    def run(text: str, k_value: int, rerank_value: str, fuse_value: str, rerank_k_value: int):
        try:
            for update in backend.search_stream(text, None, k_value, "video", rerank_value, rerank_k_value,
                                                fuse_value):
                yield outputs_for(update, text)
        except GridrankError as e:
            gr.Warning(str(e))
            failed = {summary: str(e), status: "", timings: "", seek: []} | panel.empty()
            for slot in slots:
                failed |= slot.empty()
            yield failed

    outputs = [summary, status, timings, seek] + [c for slot in slots for c in slot.components] + panel.components
    for trigger in (button.click, query.submit):
        _with_seek(trigger(run, [query, k, rerank, fuse, rerank_k], outputs, api_visibility="private",
                           concurrency_id="search"), seek)


def _index_tab(backend: WebBackend, jobs: IndexJobs, status: gr.Markdown) -> None:
    gr.Markdown("Index a folder **on the server**. Searching keeps working on the last committed index while "
                "this runs; Cancel keeps what is done so far. Indexing another folder switches the app to it "
                "when finished (its index goes in `FOLDER/.gridrank`).")
    with gr.Row(equal_height=True):
        folder = gr.Textbox(value=str(backend.root), label="Folder on the server", scale=5, elem_id="index-folder",
                            min_width=QUERY_MIN_WIDTH, max_lines=1)
        start = gr.Button("Index", variant="primary", scale=1, elem_id="index-start", min_width=100)
        cancel = gr.Button("Cancel", variant="stop", scale=1, elem_id="index-cancel", min_width=100)
    progress = gr.HTML(_progress_html(jobs.snapshot()), elem_id="index-progress")
    skipped = gr.Dataframe(headers=["skipped file", "reason"], datatype=["str", "str"], value=[], wrap=True,
                           interactive=False, label="Skipped files", elem_id="index-skipped", max_height=300)

    def run(folder_text: str):
        try:
            snap = jobs.start(folder_text)
        except IndexJobError as e:
            gr.Warning(str(e))
            snap = jobs.snapshot()
            yield _progress_html(snap), _skipped_rows(snap), backend.status_markdown()
            return
        while not snap.finished:
            yield _progress_html(snap), _skipped_rows(snap), gr.update()
            time.sleep(POLL_S)
            snap = jobs.snapshot()
        yield _progress_html(snap), _skipped_rows(snap), backend.status_markdown()

    start.click(run, folder, [progress, skipped, status], api_visibility="private", concurrency_id="index",
                concurrency_limit=4, show_progress="hidden")
    cancel.click(lambda: _progress_html(jobs.cancel()), None, progress, api_visibility="private",
                 concurrency_id="index-cancel", concurrency_limit=None, show_progress="hidden")


def _skipped_rows(snap: JobSnapshot) -> list[list[str]]:
    return [[path, reason] for path, reason in snap.skipped_files]


def _progress_html(snap: JobSnapshot) -> str:
    if snap.state == "idle":
        return ("<div class='line'>Ready. Type a folder and press <b>Index</b>; a second run only embeds what "
                "changed.</div>")
    percent = int(snap.fraction * 100)
    fill = {"done": "done", "cancelled": "stopped", "failed": "stopped"}.get(snap.state, "")
    label = {"scanning": "Scanning", "running": "Indexing", "cancelling": "Cancelling", "done": "Done",
             "cancelled": "Cancelled", "failed": "Failed"}[snap.state]
    files = (f"{snap.done:,} / {snap.total:,} files" if snap.total or not snap.finished
             else "nothing new to index")
    parts = [f"<b>{percent}%</b> {label}", files]
    if snap.indexed:
        parts.append(f"{snap.indexed:,} indexed")
    if snap.skipped:
        parts.append(f"{snap.skipped:,} skipped")
    if snap.unchanged:
        parts.append(f"{snap.unchanged:,} unchanged")
    if snap.rate and not snap.finished:
        parts.append(f"{snap.rate:.1f} files/s")
    if snap.eta_s is not None and not snap.finished:
        parts.append(f"ETA {format_moment(snap.eta_s)}")
    elif snap.finished:
        parts.append(f"{snap.elapsed_s:.1f} s")
    out = [f"<div class='track'><div class='fill {fill}' style='width:{percent}%'></div></div>",
           f"<div class='line' data-state='{snap.state}' data-percent='{percent}'>{' · '.join(parts)}</div>",
           f"<div class='current'>{html.escape(snap.folder)}"
           f"{' — ' + html.escape(snap.current) if snap.current and not snap.finished else ''}</div>"]
    if snap.message:
        out.append(f"<div class='msg'>{html.escape(snap.message)}</div>")
    return "".join(out)

