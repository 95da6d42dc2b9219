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
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never phone home; read when gradio is imported

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app.web.backend import WebBackend  # noqa: E402
from app.web.indexing import IndexJobs  # noqa: E402
from app.web.media_access import MediaAccess, MediaGuard  # noqa: E402
from app.web.thumbnails import ThumbnailCache  # noqa: E402
from app.web.ui import CSS, THEME, build_ui  # noqa: E402
from app.web.views import WebConfig  # noqa: E402
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
    return RunningServer(demo, url, backend, jobs)


def serve(index_dir: Path, settings: Settings, options: ServeOptions, encoder: ClipEncoder | None = None) -> None:
    """`gridrank serve`: start, then block until Ctrl-C."""
    backend = open_backend(index_dir, settings, encoder, options.max_upload_mb)
    server = start(backend, dataclasses.replace(options, quiet=True))  # Gradio's banner suggests share links
    print(f"gridrank web app on {server.url} (index {backend.index_dir}); Ctrl-C stops it", flush=True)
    try:
        server.demo.block_thread()
    finally:
        server.close()
