"""The `gridrank` command: index a media folder, search it, see its status."""

# No `from __future__ import annotations` here: typer reads every command's annotations on each run, and
# evaluating them from strings was 10 ms of a search that a running server answers.

import json
import logging
import os
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from app import last_index
from retrieval.errors import GridrankError
from retrieval.query.kinds import KINDS
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.names import FUSION_METHODS, RERANK_METHODS, choices_help
from retrieval.rerank.windows import MAX_RERANK_K, MIN_RERANK_K

if TYPE_CHECKING:
    from app.search_args import SearchArgs
    from retrieval.models.encoder import ClipEncoder

# Modules that import torch, open_clip, FAISS, numpy or pydantic load inside the commands that need them:
# `gridrank --help`, `status` and a search a running server answers (serve_link) do without them.

def _flag(*param_decls: str, **kwargs):
    """A yes/no option. typer would show it as `--tiny <bool>`, which reads as if it took a value."""
    return typer.Option(*param_decls, metavar="", **kwargs)


class _HelpFlag:
    """typer's own --help would read `--help <bool>` too: no value shown, as for the other flags."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Group(_HelpFlag, typer.core.TyperGroup):
    pass


class _Command(_HelpFlag, typer.core.TyperCommand):
    pass


SAMPLE_MEDIA = Path(__file__).resolve().parents[1] / "assets" / "sample"  # what `gridrank demo` indexes

app = typer.Typer(
    help="Search your photos and videos by text, by example image, or for a moment in a video.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


# Choices from the method registry: typer lists them in --help and refuses others before any work.
KindChoice = Enum("KindChoice", {name: name for name in KINDS}, type=str)
RerankChoice = Enum("RerankChoice", {name: name for name in ("none", *RERANK_METHODS)}, type=str)
FusionChoice = Enum("FusionChoice", {name: name for name in FUSION_METHODS}, type=str)
ServerChoice = Enum("ServerChoice", {name: name for name in ("auto", "never", "always")}, type=str)

IndexOpt = Annotated[Optional[Path], typer.Option(
    "--index", help="Index folder. Default: ROOT/.gridrank when indexing; for other commands $GRIDRANK_INDEX, "
    "else ./.gridrank in the current folder, else the folder of the last `gridrank index` run (the output says "
    "which).")]
TinyOpt = Annotated[bool, _flag(
    "--tiny", help="Offline smoke profile: tiny random-weight models, meaningless results (GRIDRANK_PROFILE=tiny).")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", help="open_clip model name (default ViT-B-32) or local-dir:/path/to/model.")]
PretrainedOpt = Annotated[Optional[str], typer.Option(
    "--pretrained", help="open_clip pretrained tag (default laion2b_s34b_b79k) or a checkpoint file.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto (default), cpu, cuda, cuda:1 ...")]


def _model_flags(tiny: bool, model: str | None, pretrained: str | None, device: str | None) -> dict:
    # Naming a model asks for a real one, whatever profile the index folder recorded.
    profile = "tiny" if tiny else ("default" if model or pretrained else None)
    return {"profile": profile, "clip_model": model, "clip_pretrained": pretrained, "device": device}


def _print_error(message: str) -> None:
    # soft_wrap: one line however long, so it can be grepped and copied.
    # escape: a message may hold [brackets] (paths, pip extras) that rich would read as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _print_error(message)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)], force=True,
    )
    if not verbose:  # transformers' "Loading weights" bar on every reranked search; read when the Hub loads
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _index_for_query(index: Path | None) -> last_index.ChosenIndex:
    chosen = last_index.resolve(index)
    if chosen is None:
        _fail("no index given: pass --index DIR (or set GRIDRANK_INDEX), or build one with `gridrank index ROOT`")
    return chosen


def _load_encoder(settings) -> "ClipEncoder":
    from retrieval.models.encoder import ClipEncoder

    name, pretrained = settings.model_identity
    with err_console.status(f"loading {name} ({pretrained})..."):
        encoder = ClipEncoder.from_settings(settings)
    err_console.print(f"loaded {name} in {encoder.load_seconds:.1f} s", highlight=False)
    return encoder


@app.callback()
def _main(verbose: Annotated[bool, _flag("--verbose", "-v", help="Log more.")] = False) -> None:
    _setup_logging(verbose)


@app.command(cls=_Command)
def index(
    root: Annotated[Path, typer.Argument(help="Folder of photos and videos, searched recursively.")],
    index: IndexOpt = None,
    tiny: TinyOpt = False,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    device: DeviceOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images/frames per model forward (default 32).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decode worker processes (default 2).")] = None,
    frames_per_video: Annotated[Optional[int], typer.Option(help="Frames sampled per video (default 16).")] = None,
    seconds_per_frame: Annotated[Optional[float], typer.Option(
        help="Sample one frame every N seconds instead of a fixed count.")] = None,
    rebuild: Annotated[bool, _flag("--rebuild", help="Embed everything again, with the model given now "
                                          "(how to switch models). The new index is built beside the old one, which "
                                          "searches keep using until the new one is complete.")] = False,
    retry_skipped: Annotated[bool, _flag(
        "--retry-skipped", help="Try again the files skipped before (broken, too large...) even if they did not "
        "change; by default only changed ones are tried again.")] = False,
    # \\[ keeps rich's help markup from eating "[distributed]".
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="ADDRESS", help="Decode and embed on a Ray cluster: auto (from a cluster node), "
        "ray://HOST:10001, or local (a Ray instance on this machine). Needs pip install 'gridrank\\[distributed]'. "
        "One actor per GPU, or --workers CPU actors on a cluster without GPUs; this machine writes the index.")] = None,
    query_bank: Annotated[Optional[Path], typer.Option(
        "--query-bank", help="A text file of typical queries, one per line (past searches, captions): the bank "
        "that hubness correction (search --hub-norm qbnorm|dbnorm) normalises with. Stored with the index; later "
        "runs keep it up to date.")] = None,
    hub_norm: Annotated[Optional[str], typer.Option(
        "--hub-norm", help="none, qbnorm or dbnorm: this index's default hubness correction for searches (it "
        "needs --query-bank once).")] = None,
    store: Annotated[Optional[str], typer.Option(
        "--store", metavar="STORE", help="Where a new index keeps its vectors: faiss (default; files in the index "
        "folder), milvus-lite:PATH (an embedded Milvus file, relative to the index folder) or milvus://HOST:PORT (a "
        "Milvus server or cluster; needs pip install 'gridrank\\[milvus]'). An index keeps its store; with --rebuild "
        "this moves it.")] = None,
) -> None:
    """Index (or update the index of) a media folder. Re-runs only embed what changed."""
    from retrieval.settings import load_settings

    if root.is_file():
        _fail(f"{root} is a file: give the folder that holds your photos and videos (gridrank index FOLDER)")
    if not root.is_dir():
        _fail(f"media folder not found: {root}")
    index_dir = (index or root / ".gridrank").absolute()
    created = not index_dir.exists()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        probe = index_dir / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as e:
        _fail(f"cannot write the index folder {index_dir}: {e.strerror}. Pass --index DIR on a writable disk")
    try:
        if query_bank is not None and not query_bank.is_file():
            _fail(f"query bank not found: {query_bank} (a text file, one query per line)")
        _index(root, index_dir, rebuild, retry_skipped, ray,
               load_settings(None if rebuild else index_dir, **_model_flags(tiny, model, pretrained, device),
                             batch_size=batch_size, workers=workers, frames_per_video=frames_per_video,
                             seconds_per_frame=seconds_per_frame, hub_norm=hub_norm, vector_store=store), query_bank)
    finally:
        if created and index_dir.is_dir() and not any(index_dir.iterdir()):
            index_dir.rmdir()  # nothing was indexed (a model that would not load, a bad setting): leave no trace


def _index(root: Path, index_dir: Path, rebuild: bool, retry_skipped: bool, ray: str | None, settings,
           query_bank: Path | None = None) -> None:
    from app.index_report import summary_line
    from indexer import ray_embedding
    from indexer.banks import check_bank
    from indexer.pipeline import IndexProgress, run_index
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    check_bank(index_dir, query_bank, settings.hub_norm)  # before any embedding

    if ray is not None:
        with err_console.status(f"connecting to Ray at {ray}..."):
            ray_embedding.connect(ray)
    encoder = _load_encoder(settings)
    with Progress(
        TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
        console=err_console, transient=False,
    ) as bar:
        task = bar.add_task("index", total=None, rate="", current="scanning...")

        def show(p: IndexProgress) -> None:
            rate = f"{p.done / p.elapsed_s:.1f} files/s" if p.elapsed_s > 0 else ""
            bar.update(task, total=p.total, completed=p.done, rate=rate, current=p.current[-50:])

        summary = run_index(root, index_dir, settings, encoder=encoder, on_progress=show, ray_address=ray,
                            rebuild=rebuild, retry_skipped=retry_skipped)
        bar.update(task, current="")
    last_index.remember(index_dir)
    console.print(summary_line(summary))
    if not summary.interrupted:
        from indexer.banks import refresh_banks

        with err_console.status("hubness banks..."):
            banks = refresh_banks(index_dir, encoder, query_bank)
        if banks is not None:
            console.print(f"hubness banks for search --hub-norm: {banks}", highlight=False, soft_wrap=True)
        if "hub_norm" in settings.model_fields_set:
            from retrieval.settings import record_setting

            record_setting(index_dir, "hub_norm", settings.hub_norm)  # this index's searches default to it
    if summary.interrupted and summary.replaced:
        console.print("interrupted: the rebuild was dropped and the previous index is unchanged; run the same "
                      "command again to rebuild")
        raise typer.Exit(130)
    if summary.interrupted:
        console.print("interrupted: the work above is committed; run the same command again to resume")
        raise typer.Exit(130)


MIX_HELP = ("Query syntax (also in the web UI and API): plain words are one text query. Terms mix: "
            "'sunny beach +dog -people' = beach + dog - people; '2:beach 0.5:sunset' weights; 'img:PATH' (or an "
            "existing image file / indexed path) is an image term, e.g. 'img:trips/IMG_0042.jpg +dusk'. The "
            "query vector is normalize(sum of weight * term). Without terms, QUERY + --image is the composed "
            "query (image changed as the words say, weight a = composed_text_weight).")


@app.command(cls=_Command, context_settings={"ignore_unknown_options": True}, epilog=MIX_HELP)
def search(
    query: Annotated[Optional[list[str]], typer.Argument(
        help="What to look for, in words; or weighted terms like \"2:beach\" \"+dog\" \"-people\" (see below).",
        show_default=False)] = None,
    image: Annotated[Optional[Path], typer.Option(
        "--image", help="An example image; with QUERY too, the image changed as the words say (composed), or "
        "with --weights, one more term of a weighted mix.")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Mix QUERY's terms and --image with these weights, in that order: "
        "`\"beach\" --image ref.jpg --weights 0.7,0.3`. Negative weights push away.")] = None,
    like: Annotated[Optional[str], typer.Option(
        "--like", help="More like an indexed item (path relative to the indexed folder, or absolute): uses its "
        "stored vector (a video: the mean of its frames); the item comes first.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=10_000, help="How many results (per page).")] = 10,
    page: Annotated[int, typer.Option("--page", min=1, help="Page N of the results, --k per page.")] = 1,
    kind: Annotated[KindChoice, typer.Option(help="image, video (moments with timestamps) or any.")] = KindChoice("any"),
    under: Annotated[Optional[str], typer.Option(
        "--under", help="Only items inside this folder (relative to the indexed folder), e.g. trips/2024.")] = None,
    after: Annotated[Optional[str], typer.Option(
        "--after", help="Only items dated on or after YYYY-MM-DD (EXIF date taken, else file modification "
        "date).")] = None,
    before: Annotated[Optional[str], typer.Option(
        "--before", help="Only items dated before YYYY-MM-DD (same date as --after).")] = None,
    ext: Annotated[Optional[str], typer.Option(
        "--ext", help="Only these file extensions, comma-separated: jpg,png.")] = None,
    min_score: Annotated[Optional[float], typer.Option(
        "--min-score", min=-1, max=1, help="Drop results below this cosine similarity (CLIP text-image scores "
        "are typically 0.1-0.35; image-image 0.5-1). Default: the min_score setting (off).")] = None,
    hub_norm: Annotated[Optional[str], typer.Option(
        "--hub-norm", help="Hubness correction of the first stage: none, qbnorm (QB-Norm) or dbnorm (DBNorm), with "
        "the banks `gridrank index --query-bank` stored. Default: the index's hub_norm setting (none).")] = None,
    collapse: Annotated[bool, _flag(
        "--collapse/--no-collapse", help="Collapse near-duplicates (cosine >= near_duplicate_threshold) into one "
        "result with a count; identical files always collapse.")] = True,
    rerank: Annotated[RerankChoice, typer.Option(
        help=f"MLLM reranking of the top candidates. {choices_help('rerank')}.")] = RerankChoice("none"),
    rerank_k: Annotated[Optional[int], typer.Option(
        min=MIN_RERANK_K, max=MAX_RERANK_K, help="How many first-stage candidates to rerank (default 9).")] = None,
    fuse: Annotated[Optional[FusionChoice], typer.Option(
        help=f"Videos: fuse best-frame, mean-pooled and subtitle retrievers. {choices_help('fusion')}.")] = None,
    reranker_model: Annotated[Optional[str], typer.Option(
        help="Qwen-VL model: Hub name or local folder (default Qwen/Qwen2.5-VL-3B-Instruct); with "
        "--reranker-url, the served model's name.")] = None,
    reranker_url: Annotated[Optional[str], typer.Option(
        help="OpenAI-compatible server for the reranker, e.g. http://127.0.0.1:8000/v1 (vLLM).")] = None,
    explain: Annotated[bool, _flag(
        "--explain", help="Print the rationale, parsed ranking, tokens and per-stage timings; save the "
        "images the model saw.")] = False,
    json_output: Annotated[bool, _flag("--json", help="JSON for scripts instead of a table.")] = False,
    server: Annotated[ServerChoice, typer.Option(
        "--server", help="auto: a `gridrank serve` of this index running on this machine answers (no model "
        "load here), else this process searches; never: always this process; always: only the server, exit 2 "
        "when none answers (a health check).")] = ServerChoice("auto"),
    index: IndexOpt = None,
    tiny: TinyOpt = False,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Search an index by text, by an example image, or both; mix terms; filter; optionally rerank with an MLLM.

    When a `gridrank serve` of the same index runs on this machine, it answers (no model load here; see
    --server); --image, --explain and model flags always search in this process."""
    unknown = [word for word in query or [] if word.startswith("--")]
    if unknown:
        _fail(f"no such option: {unknown[0]} (or an option after `--`, where it reads as query words): "
              "see gridrank search --help")
    text = " ".join(query) if query else None
    if like is not None and (text or image is not None):
        _fail("--like stands alone: to mix an item with words, use terms: \"img:PATH\" \"+words\"")
    if not text and image is None and like is None:
        _fail("give a QUERY, an --image, both, or --like PATH")
    from app import serve_link
    from app.search_args import SearchArgs

    args = SearchArgs(text, weights, like, k, page, kind.value, under, after, before, ext, min_score, hub_norm,
                      collapse, None if rerank.value == "none" else rerank.value, rerank_k, fuse.value if fuse else None)
    chosen = _index_for_query(index)
    here_only = [name for name, given in (("--image", image is not None), ("--explain", explain), ("--tiny", tiny),
                                          ("--model", model), ("--pretrained", pretrained), ("--device", device),
                                          ("--reranker-model", reranker_model), ("--reranker-url", reranker_url))
                 if given]
    if server.value == "always" and here_only:
        _fail(f"--server always cannot take {here_only[0]}: a server searches with its own model and settings")
    link = None if server.value == "never" or here_only else serve_link.find(chosen.path)
    data = serve_link.ask(link, args) if link is not None else None
    if link is not None and data is not None:
        _print_search(data, chosen, args, json_output, served_by=link.url)
        return
    if server.value == "always":
        where = f" at {link.url}: see its log" if link else f": start one with `gridrank serve --index {chosen.path}`"
        _fail(f"no running `gridrank serve` of {chosen.path} answered{where}")

    from app.render import response_dict, print_explanation
    from app.search_args import to_request
    from retrieval.query.build import load_query_image
    from retrieval.query.filters import parse_date
    from retrieval.query.search import Searcher
    from retrieval.query.service import SearchService
    from retrieval.settings import load_settings

    parse_date(after, "--after"), parse_date(before, "--before")  # wrong dates fail before the model loads
    settings = load_settings(chosen.path, **_model_flags(tiny, model, pretrained, device),
                             reranker_model=reranker_model, reranker_url=reranker_url)
    picture = load_query_image(image, settings.max_image_pixels) if image is not None else None
    service = SearchService(Searcher.open(chosen.path, settings, load_encoder=_load_encoder), settings)
    response = service.run(to_request(args, service.searcher, settings.max_image_pixels, picture))
    saved = save_images_sent(response) if explain and response.rerank else []
    _print_search(json.loads(json.dumps(response_dict(response, saved), default=str)), chosen, args, json_output)
    if explain:
        print_explanation(console, response, saved)


def _print_search(data: dict, chosen: last_index.ChosenIndex, args: "SearchArgs", json_output: bool,
                  served_by: str | None = None) -> None:
    """A search's --json data as JSON, or as the table with its notes."""
    where = {"path": str(chosen.path), "chosen_by": chosen.chosen_by} | ({"served_by": served_by} if served_by
                                                                        else {})
    if json_output:
        console.print_json(json.dumps({"index": where} | data))
        return
    from app.render import response_from_dict, search_table

    response = response_from_dict(data)
    console.print(search_table(response))
    by = f"; answered by the running server at {served_by}" if served_by else ""
    console.print(f"index: {chosen.path} (chosen by {chosen.chosen_by}{by})", highlight=False, soft_wrap=True)
    narrowed = any((args.under, args.after, args.before, args.ext)) or args.min_score is not None or args.page > 1
    if not response.hits and narrowed:
        err_console.print("[yellow]note:[/] no results pass the filters, --min-score or --page; paths in --under "
                          "are relative to the indexed folder (see gridrank status)", soft_wrap=True)
    if response.rerank and response.rerank.fallback:
        err_console.print(f"[yellow]note:[/] {response.rerank.fallback}", soft_wrap=True)


def save_images_sent(response) -> list[Path]:
    folder = Path(tempfile.mkdtemp(prefix="gridrank-explain-"))
    paths = []
    for i, image in enumerate(response.rerank.images_sent):
        path = folder / f"model_input_{i + 1}.png"
        image.save(path)
        paths.append(path)
    return paths


@app.command(cls=_Command)
def status(
    index: IndexOpt = None,
    json_output: Annotated[bool, _flag("--json", help="JSON for scripts.")] = False,
) -> None:
    """Model, counts of images / videos / frames, the index type with its recall@10, and the files skipped.

    Each skipped file is listed with why it was skipped."""
    from app.index_report import StatusReport, print_status
    from app.render import to_json
    from retrieval.settings import load_settings
    from retrieval.store.index_choice import pending_rebuild
    from retrieval.store.index_meta import STORE_KEY, frame_index_info, open_index_catalog, read_info

    # The catalog alone says all of it: the FAISS files (gigabytes at scale) are not read.
    index_dir = _index_for_query(index).path
    catalog = open_index_catalog(index_dir)
    info, counts, frame_index = read_info(catalog, index_dir), catalog.counts(), frame_index_info(catalog)
    settings = load_settings(index_dir)
    report = StatusReport(index_dir, info, counts, list(catalog.skipped_by_path().values()),
                          catalog.media_with_notes(), frame_index,
                          pending_rebuild(counts.frames, info.dim, frame_index.factory,
                                          settings.index_memory_budget_mb, settings.index_factory)
                          if catalog.get_meta(STORE_KEY) in (None, "faiss") else None)  # Milvus builds its own
    if json_output:
        console.print_json(to_json(report))
    else:
        print_status(console, report)


HostOpt = Annotated[str, typer.Option(
    "--host", help="Address to listen on. 127.0.0.1 (default) is this machine only; 0.0.0.0 opens it to the network.")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]
AuthOpt = Annotated[Optional[str], typer.Option("--auth", help="Require a sign-in: user:password.")]
AuthFileOpt = Annotated[Optional[Path], typer.Option(
    "--auth-file", help="Require a sign-in: a file of user:password lines.")]
UploadOpt = Annotated[float, typer.Option(
    "--max-upload-mb", min=0.1, help="Largest reference image a visitor may upload, in MB.")]
ReadOnlyOpt = Annotated[bool, _flag(
    "--read-only", help="No Index tab: visitors can search but not index folders of this server.")]


def _serve(index_dir: Path, settings, host: str, port: int, auth: str | None, auth_file: Path | None,
           max_upload_mb: float, read_only: bool, encoder=None) -> None:
    from app.web import server  # gradio loads only for the web commands

    try:
        credentials = server.parse_credentials(auth, auth_file)
    except ValueError as e:
        _fail(str(e))
    if not server.is_loopback(host) and not credentials:
        err_console.print(
            f"[bold red]WARNING: serving on {host}:{port} with no sign-in.[/] Anyone who can reach this machine "
            "can search your media, see every indexed file" + ("" if read_only else " and index its folders")
            + ". Add --auth user:password (or --auth-file), or keep the default --host 127.0.0.1.",
            highlight=False, soft_wrap=True)
    options = server.ServeOptions(host=host, port=port, credentials=credentials, max_upload_mb=max_upload_mb,
                                  read_only=read_only)
    try:
        server.serve(index_dir, settings, options, encoder=encoder)
    except OSError as e:  # the port is taken, or the address is not this machine's
        _fail(f"cannot listen on {host}:{port} ({str(e).split('. ')[0]}): pick another --port or --host")


@app.command(cls=_Command)
def serve(
    index: IndexOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 7860,
    auth: AuthOpt = None,
    auth_file: AuthFileOpt = None,
    max_upload_mb: UploadOpt = 20.0,
    read_only: ReadOnlyOpt = False,
    tiny: TinyOpt = False,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Open the web app on an index: search, composed search, video moments, indexing."""
    from retrieval.settings import load_settings

    index_dir = _index_for_query(index).path
    settings = load_settings(index_dir, **_model_flags(tiny, model, pretrained, device))
    _serve(index_dir, settings, host, port, auth, auth_file, max_upload_mb, read_only)


@app.command(cls=_Command)
def demo(
    tiny: TinyOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 7860,
    auth: AuthOpt = None,
    auth_file: AuthFileOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Index the bundled sample photos and videos (assets/sample), then open the web app on them."""
    import hashlib

    from app.index_report import summary_line
    from indexer.pipeline import run_index
    from retrieval.models.encoder import ClipEncoder
    from retrieval.settings import load_settings

    sample = SAMPLE_MEDIA
    if not sample.is_dir():
        _fail(f"sample media not found at {sample}: `gridrank demo` runs from a source checkout")
    settings = load_settings(None, **_model_flags(tiny, None, None, device))
    # Outside the sample folder (it may be read-only); one index per profile, so --tiny never meets a real model,
    # and per checkout: another clone's demo (same user, same cache) would find an index of other files.
    checkout = hashlib.sha256(str(sample).encode()).hexdigest()[:12]
    index_dir = settings.cache_dir / "demo-index" / f"{settings.profile}-{checkout}"
    encoder = ClipEncoder.from_settings(settings)
    console.print(summary_line(run_index(sample, index_dir, settings, encoder=encoder)))
    _serve(index_dir, settings, host, port, auth, auth_file, 20.0, False, encoder=encoder)


@app.command("eval", cls=_Command)
def evaluate(
    dataset: Annotated[Optional[str], typer.Option(
        help="Benchmark: flickr30k, coco (Karpathy 5k test), cirr, circo, fashioniq-dress, fashioniq-shirt, "
        "fashioniq-toptee, msrvtt (1k-A test), didemo, activitynet, vatex (test splits as ViC ships them). See "
        "README 'Reproducing published numbers' for the layouts.")] = None,
    root: Annotated[Optional[Path], typer.Option(help="The benchmark's folder, laid out as its public release.")] = None,
    split: Annotated[Optional[str], typer.Option(
        help="Split (default: test for flickr30k/coco and the video benchmarks, val for cirr/circo/fashioniq; "
        "cirr test1 and circo test write the test servers' files).")] = None,
    task: Annotated[Optional[str], typer.Option(
        help="t2i (also reports i2t), cir (composed), t2v (also v2t). Default: the dataset's; needed with --sims.")
    ] = None,
    sims: Annotated[Optional[str], typer.Option(
        help="Comma-separated .npy similarity matrices (queries x items), one per first-stage retriever. Alone "
        "(with --gt): no model needed. With --dataset: they replace CLIP as the first stages over the benchmark's "
        "queries and media (rows and columns in its files' order, as ViC ships them), so --rerank and --fuse vic "
        "see the media.")] = None,
    gt: Annotated[Optional[Path], typer.Option(
        help="Precomputed mode: ground truth CSV with header `query,item`, one 0-based (row, column) pair per "
        "line; several lines for several ground truths.")] = None,
    rerank: Annotated[str, typer.Option(
        help=f"Comma-separated: none (first stage only), {', '.join(RERANK_METHODS)}. Each reranks the top "
        "--rerank-k of the first stage.")] = "none",
    fuse: Annotated[Optional[str], typer.Option(
        help=f"Comma-separated fusions of the first-stage retrievers: {', '.join(FUSION_METHODS)}.")] = None,
    rerank_k: Annotated[Optional[int], typer.Option(min=MIN_RERANK_K, max=MAX_RERANK_K, help="Candidates reranked per query, "
        "for every reranked method. Default: each method's paper (grid 9, cot 10, first 100, sgrid and vic 14); "
        "the report names the source.")] = None,
    rerank_window: Annotated[Optional[int], typer.Option(min=2, max=MAX_CANDIDATES, help="Candidates per model "
        "call. Default: each method's paper (the whole depth in one call, FIRST 20).")] = None,
    rerank_step: Annotated[Optional[int], typer.Option(min=1, max=MAX_CANDIDATES - 1, help="Sliding-window step when the depth exceeds a "
        "window. Default: each method's paper (FIRST 10), else half a window.")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="Report folder (default ./gridrank-eval/DATASET-SPLIT). Holds the embedding cache and per-query "
        "results: rerunning the same command there resumes.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N queries of each direction: a "
                                                 "quick run.")] = None,
    reranker_model: Annotated[Optional[str], typer.Option(help="Qwen-VL model for --rerank (Hub name or "
                                                          "folder; with --reranker-url the served name).")] = None,
    reranker_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible server for --rerank.")] = None,
    chart: Annotated[Optional[bool], _flag(
        "--chart/--no-chart", help="Also draw recall_at_1.png (R@1 per method). Default: with --dataset yes, "
        "with --sims no (matplotlib takes longer to load than a precomputed run takes).")] = None,
    hub_norm: Annotated[Optional[str], typer.Option(
        help="Comma-separated hub corrections to compare, qbnorm (QB-Norm) and/or dbnorm (DBNorm): a row NAME+qbnorm "
        "beside each retriever of the forward direction. With --sims: give --query-bank-sims (and for dbnorm "
        "--gallery-bank-sims); with --dataset: --query-bank.")] = None,
    query_bank_sims: Annotated[Optional[str], typer.Option(
        help="For --hub-norm: comma-separated .npy, one per --sims matrix: a bank of other queries (e.g. the "
        "training split's captions) x the same items.")] = None,
    gallery_bank_sims: Annotated[Optional[str], typer.Option(
        help="For --hub-norm dbnorm: comma-separated .npy, one per --sims matrix: bank items x the items.")] = None,
    query_bank: Annotated[Optional[Path], typer.Option(
        help="For --hub-norm with --dataset: a text file of other queries (e.g. the training split's captions), one "
        "per line; the gallery bank is a sample of the benchmark's own items.")] = None,
    preset: Annotated[Optional[str], typer.Option(
        help="Run one published table row: its benchmark, methods, models and settings, with the paper's "
        "numbers beside the measured ones in the report. Give the benchmark's folder with --root; "
        "--list-presets names them.")] = None,
    list_presets: Annotated[bool, _flag("--list-presets", help="Print the presets and exit.")] = False,
    tiny: TinyOpt = False,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Measure retrieval on a public benchmark or on precomputed similarities, with and without reranking.

    Recall@K, mAP@K and ranks per method, fusions included. Writes report.md, report.json and a chart to --out."""
    from retrieval.evaluation.precomputed import run_precomputed
    from retrieval.evaluation.runner import EvalOptions
    from retrieval.evaluation.plan import RERANK_CHOICES, parse_list
    from retrieval.evaluation.report import write_report
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    if list_presets:
        from retrieval.evaluation.presets import load_presets

        _print_presets(load_presets().values())
        return
    chosen_preset, preset_settings = None, {}
    if preset is not None:
        from retrieval.evaluation.presets import MODEL_SETTINGS, preset_named

        chosen_preset = preset_named(preset)
        given = [flag for flag, value in (("--dataset", dataset), ("--split", split), ("--task", task),
                                          ("--sims", sims), ("--gt", gt), ("--fuse", fuse), ("--model", model),
                                          ("--pretrained", pretrained), ("--reranker-model", reranker_model))
                 if value is not None] + (["--rerank"] if rerank != "none" else [])
        if given:
            _fail(f"--preset {preset} sets the benchmark, methods and models itself: drop {', '.join(given)}")
        if root is None:
            _fail(f"--preset {preset} needs --root, the folder of {chosen_preset.dataset} "
                  f"({chosen_preset.note or 'see README, Reproducing published numbers'})")
        if chosen_preset.served and reranker_url is None and not tiny:
            _fail(f"--preset {preset} runs {chosen_preset.settings.get('reranker_model')}, which gridrank reaches "
                  "through an OpenAI-compatible server: pass --reranker-url (README: Two machines: the app, and vLLM serving the reranker)")
        dataset, split = chosen_preset.dataset, chosen_preset.split
        rerank, fuse = ",".join(chosen_preset.rerank) or "none", ",".join(chosen_preset.fuse) or None
        sims = ",".join(str(root / path) for path in chosen_preset.sims) or None
        # The tiny profile builds its own models: the preset's are left out (its report says so).
        preset_settings = {k: v for k, v in chosen_preset.settings.items() if not (tiny and k in MODEL_SETTINGS)}
    if task is not None and task not in ("t2i", "cir", "t2v"):
        _fail(f"--task must be t2i, cir or t2v, not {task!r}")
    if sims is None and dataset is None:
        _fail("give either --dataset NAME --root DIR (a benchmark) or --sims A.npy[,B.npy] --gt GT.csv")
    if dataset is not None and gt is not None:
        _fail("--gt is for --sims without --dataset: a --dataset brings its own ground truth")
    sim_paths = _paths(sims)
    methods = dict(rerank=parse_list(rerank, RERANK_CHOICES, "--rerank"), fuse=parse_list(fuse, FUSION_METHODS, "--fuse"))
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=err_console) as bar:
        stages: dict[str, int] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(stage, total=total)
            bar.update(stages[stage], completed=done, total=total)

        if dataset is None:
            if task is None or gt is None:
                _fail("--sims needs --task (t2i, cir or t2v) and --gt GT.csv, or a --dataset whose queries and "
                      "media its rows and columns are")
            options = EvalOptions(**methods, out=out or Path("gridrank-eval") / "precomputed", limit=limit,
                                  hub_norm=tuple(parse_list(hub_norm, ("qbnorm", "dbnorm"), "--hub-norm")),
                                  query_bank_sims=_paths(query_bank_sims), gallery_bank_sims=_paths(gallery_bank_sims))
        else:
            if root is None:
                _fail(f"--dataset {dataset} needs --root, the folder of the benchmark")
            from retrieval.datasets import DATASETS

            default_split = DATASETS[dataset].default_split if dataset in DATASETS else "default"
            options = EvalOptions(**methods, out=out or Path("gridrank-eval") / f"{dataset}-{split or default_split}",
                                  limit=limit, sims=sim_paths, preset=chosen_preset,
                                  hub_norm=tuple(parse_list(hub_norm, ("qbnorm", "dbnorm"), "--hub-norm")),
                                  query_bank=query_bank)
        try:
            if dataset is None:
                report = run_precomputed(task, list(sim_paths), gt, options, show)
            else:
                from retrieval.evaluation.benchmark import run_dataset
                from retrieval.settings import load_settings

                flags = dict(**_model_flags(tiny, model, pretrained, device), rerank_k=rerank_k,
                             rerank_window=rerank_window, rerank_step=rerank_step, reranker_model=reranker_model,
                             reranker_url=reranker_url)
                settings = load_settings(None, **{**preset_settings,
                                                  **{k: v for k, v in flags.items() if v is not None}})
                report = run_dataset(dataset, root, split, task, options, settings, _load_encoder, show)
        except KeyboardInterrupt:
            _fail(f"interrupted: finished queries are saved in {options.out}; run the same command to resume", 130)
    for path in [*write_report(report, options.out, chart=dataset is not None if chart is None else chart),
                 *report.submissions]:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    console.print((options.out / "report.md").read_text(encoding="utf-8"), markup=False, highlight=False,
                  soft_wrap=True)


def _paths(value: str | None) -> tuple[Path, ...]:
    """A comma-separated option's paths."""
    return tuple(Path(p.strip()) for p in (value or "").split(",") if p.strip())


def _print_presets(presets) -> None:
    """Each preset: its name, what it runs, the published numbers and their source."""
    for p in presets:
        numbers = ", ".join(f"{e.direction} {e.method} {e.metric} {e.value:g}" for e in p.expected)
        console.print(f"[bold]{p.name}[/]: {escape(p.title)}", highlight=False, soft_wrap=True)
        console.print(f"  {p.dataset} {p.split}; published: {escape(numbers)}", highlight=False, soft_wrap=True)
        console.print(f"  source: {escape(p.source)}", highlight=False, soft_wrap=True)
        if p.note:
            console.print(f"  note: {escape(p.note)}", highlight=False, soft_wrap=True)
        console.print(f"  run: gridrank eval --preset {p.name} --root DIR", highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except GridrankError as e:  # a user can fix it: one line, exit 2. Anything else is a bug: traceback, exit 1.
        _print_error(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
