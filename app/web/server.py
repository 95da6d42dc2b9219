"""Launching the web app: one Searcher per process, loopback by default, media only from the indexed root.

    backend = open_backend(index_dir, settings)        # loads the model once
    server = start(backend, ServeOptions(port=7860))    # returns when it is listening
    server.close()

`serve()` does both and blocks until Ctrl-C: that is `gridrank serve`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never phone home; read when gradio is imported

import gradio as gr  # noqa: E402
from fastapi import Body, Header  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import TypeAdapter, ValidationError  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app import serve_link  # noqa: E402
from app.search_args import SearchArgs  # noqa: E402

from app.web.backend import WebBackend  # noqa: E402
from app.web.indexing import IndexJobs  # noqa: E402
from app.web.media_access import MediaAccess, MediaGuard  # noqa: E402
from app.web.thumbnails import ThumbnailCache  # noqa: E402
from app.web.ui import CSS, THEME, build_ui  # noqa: E402
from app.web.views import WebConfig  # noqa: E402
from retrieval.errors import GridrankError  # noqa: E402
from retrieval.models.encoder import ClipEncoder  # noqa: E402
from retrieval.query.search import Searcher  # noqa: E402
from retrieval.settings import Settings  # noqa: E402

log = logging.getLogger("gridrank.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_credentials(auth: str | None = None, auth_file: Path | None = None) -> list[tuple[str, str]]:
    """`user:pass` from --auth and one `user:pass` per line of --auth-file (# comments allowed)."""
    pairs: list[tuple[str, str]] = []
    if auth is not None:
        pairs.append(_pair(auth, "--auth"))
    if auth_file is not None:
        try:
            lines = auth_file.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"cannot read the auth file {auth_file}: {e.strerror}") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                pairs.append(_pair(line, f"{auth_file}, line {number}"))
        if not pairs:
            raise ValueError(f"the auth file {auth_file} has no user:password line")
    return pairs


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError(f"{where}: expected user:password")
    return user.strip(), password


@dataclass
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    credentials: list[tuple[str, str]] = field(default_factory=list)
    max_upload_mb: float = 20.0
    read_only: bool = False  # no Index tab: visitors can search, not index server folders
    concurrency: int = 4  # events run at once; queries still take the model one at a time
    quiet: bool = False


@dataclass
class RunningServer:
    demo: gr.Blocks
    url: str
    backend: WebBackend
    jobs: IndexJobs | None
    token: str  # what `gridrank search` must show to be answered at serve_link.ROUTE

    def close(self) -> None:
        self.demo.close()


def open_backend(index_dir: Path, settings: Settings, encoder: ClipEncoder | None = None,
                 max_upload_mb: float = 20.0) -> WebBackend:
    """Open the index and load the model (once, for the whole server)."""
    searcher = Searcher.open(index_dir, settings, encoder)
    thumbnails = ThumbnailCache(settings.cache_dir / "web" / "thumbnails", settings.max_image_pixels)
    config = WebConfig(
        max_upload_bytes=int(max_upload_mb * 2**20),
        sgrid_side=settings.sgrid_frames_side,
        sgrid_size=settings.sgrid_size,
    )
    return WebBackend(searcher, index_dir, settings, thumbnails, MediaAccess(), config)


def _served_paths(backend: WebBackend) -> tuple[list[str], list[str]]:
    """(allowed, blocked) for Gradio: the indexed root and the thumbnails; never the index folder."""
    return [str(backend.root), str(backend.thumbnails.directory)], [str(backend.index_dir)]


def _apply_paths(demo: gr.Blocks, backend: WebBackend) -> None:
    allowed, blocked = _served_paths(backend)
    demo.allowed_paths, demo.blocked_paths = allowed, blocked
    # Static: served in place, not copied into Gradio's cache on every result (videos can be big).
    gr.set_static_paths(allowed)


def start(backend: WebBackend, options: ServeOptions) -> RunningServer:
    """Build the page and start serving in background threads; returns once it is listening."""
    jobs = None if options.read_only else IndexJobs(backend)
    demo = build_ui(backend, jobs)
    # Gradio summarises its event log with pandas after every event, over up to 10,000 events, for a monitoring
    # page gridrank does not show: that grew to milliseconds per search in a long-lived server. Every 1000th will do.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    demo.queue(default_concurrency_limit=options.concurrency, max_size=256)
    allowed, blocked = _served_paths(backend)
    gr.set_static_paths(allowed)
    backend.on_swap(lambda b: _apply_paths(demo, b))
    _, url, _ = demo.launch(
        server_name=options.host,
        server_port=options.port,
        auth=options.credentials or None,
        auth_message="gridrank: sign in" if options.credentials else None,
        allowed_paths=allowed,
        blocked_paths=blocked,
        max_file_size=int(options.max_upload_mb * 2**20),
        app_kwargs={"middleware": [Middleware(MediaGuard, access=backend.access)]},
        prevent_thread_lock=True,
        quiet=options.quiet,
        show_error=True,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        footer_links=["api", "settings"],
    )
    token = serve_link.new_token()
    demo.app.add_api_route(serve_link.ROUTE, _cli_search_endpoint(backend, token), methods=["POST"],
                           include_in_schema=False)
    return RunningServer(demo, url, backend, jobs, token)


def _cli_search_endpoint(backend: WebBackend, token: str):
    """POST serve_link.ROUTE: a `gridrank search` of this index, answered with its --json data.

    Only a caller that read the token from INDEX/serve.json (mode 0600) is answered: it bypasses the
    sign-in, as the index's own user may. A sync endpoint: FastAPI runs it in its thread pool.
    """
    def cli_search(payload: dict = Body(...), authorization: str = Header("")) -> JSONResponse:
        if not secrets.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "not authorized"}, status_code=401)
        if payload.get("index") != str(backend.index_dir):  # the Index tab switched to another index since
            return JSONResponse({"error": f"this server now serves {backend.index_dir}"}, status_code=409)
        try:
            args = TypeAdapter(SearchArgs).validate_python(payload.get("args"))
            return JSONResponse(backend.cli_search(args))
        except ValidationError as e:
            return JSONResponse({"error": f"bad search arguments: {e.errors()[0]['msg']}"}, status_code=400)
        except GridrankError as e:
            return JSONResponse({"error": str(e)}, status_code=400)

    return cli_search


def serve(index_dir: Path, settings: Settings, options: ServeOptions, encoder: ClipEncoder | None = None) -> None:
    """`gridrank serve`: start, then block until Ctrl-C."""
    backend = open_backend(index_dir, settings, encoder, options.max_upload_mb)
    server = start(backend, dataclasses.replace(options, quiet=True))  # Gradio's banner suggests share links
    print(f"gridrank web app on {server.url} (index {backend.index_dir}); Ctrl-C stops it", flush=True)
    # `gridrank search` on this index asks this server instead of loading the model itself.
    url = serve_link.local_url(options.host, urlsplit(server.url).port)
    link = serve_link.announce(backend.index_dir, url, server.token)
    try:
        server.demo.block_thread()
    finally:
        if link is not None:
            serve_link.withdraw(backend.index_dir, link)
        server.close()
