"""Which files the browser may fetch: media inside the indexed root, nothing else.

Two layers guard the Gradio file route (`/gradio_api/file=PATH`):
1. Gradio's own allowed_paths / blocked_paths (set by server.py): the indexed root and the
   thumbnail cache are allowed, the index folder is blocked. Gradio resolves symlinks before
   comparing, so `../` and links that lead out of the root are refused.
2. MediaGuard, an ASGI middleware in front of that route: inside the root, only media and
   subtitle files whose path has no hidden part are served. Without it the whole root would be
   readable (a `.env`, the `.gridrank` index folder, a `.git` folder, any text file).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from indexer.scan import VIDEO_EXTENSIONS, image_extensions

log = logging.getLogger("gridrank.web")

FILE_ROUTE = "/gradio_api/file="
SUBTITLE_EXTENSIONS = frozenset({".srt", ".vtt"})


class MediaAccessDenied(PermissionError):
    """The path is not a media file inside an indexed root; the message says why."""


class MediaAccess:
    """The allow-list: roots whose media files may be served. Thread-safe; roots can change."""

    def __init__(self, roots: Iterable[Path] = ()):
        self._lock = threading.Lock()
        self._roots: tuple[Path, ...] = ()
        self.set_roots(roots)
        self._extensions = image_extensions() | VIDEO_EXTENSIONS | SUBTITLE_EXTENSIONS

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def set_roots(self, roots: Iterable[Path]) -> None:
        resolved = tuple(dict.fromkeys(Path(r).resolve() for r in roots))
        with self._lock:
            self._roots = resolved

    def root_of(self, path: Path) -> Path | None:
        """The root that `path` (already resolved) lies in, or None."""
        for root in self._roots:
            if path == root or root in path.parents:
                return root
        return None

    def check(self, requested: str | Path, base: Path | None = None) -> Path:
        """The resolved file behind `requested` if it may be served; MediaAccessDenied otherwise.

        `requested` may be relative to `base` (an indexed root). Symlinks are resolved first, so a
        link inside the root that leads out of it is refused like any outside path.
        """
        raw = Path(requested)
        if not raw.is_absolute():
            if base is None:
                raise MediaAccessDenied(f"refused {requested}: a relative path needs its root")
            raw = base / raw
        try:
            path = _normalized(raw).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            raise MediaAccessDenied(f"refused {requested}: no such file") from None
        root = self.root_of(path)
        if root is None:
            raise MediaAccessDenied(f"refused {requested}: outside the indexed folder")
        parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            raise MediaAccessDenied(f"refused {requested}: hidden files and folders are not served")
        if path.suffix.lower() not in self._extensions:
            raise MediaAccessDenied(f"refused {requested}: not a photo, video or subtitle file")
        if not path.is_file():
            raise MediaAccessDenied(f"refused {requested}: not a file")
        return path

    def in_roots(self, requested: str) -> bool:
        """True when `requested`, resolved, lies inside a root (so MediaGuard must decide)."""
        try:
            path = _normalized(requested).resolve()
        except (OSError, RuntimeError):
            return False
        return self.root_of(path) is not None


class MediaGuard:
    """ASGI middleware: refuse file-route requests into a root unless MediaAccess allows them.

    Requests for other files (thumbnails, Gradio's own cache and uploads) pass on to Gradio,
    which refuses anything outside its allowed paths.
    """

    def __init__(self, app, access: MediaAccess):
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            prefix = scope.get("root_path", "") + FILE_ROUTE
            for start in (prefix, FILE_ROUTE):
                if path.startswith(start):
                    requested = path[len(start):]  # already %-decoded, exactly as Gradio's route sees it
                    if not _is_url(requested) and self.access.in_roots(requested):
                        try:
                            self.access.check(requested)
                        except MediaAccessDenied as e:
                            log.info("%s", e)
                            await _forbidden(send)
                            return
                    break
        await self.app(scope, receive, send)


def _normalized(path: str | Path) -> Path:
    """`..` removed lexically, as Gradio's file route does before it opens the file.

    Resolving symlinks first would check another file than the one served: for `root/link/../x`
    Gradio opens `root/x` even when `link` points elsewhere.
    """
    return Path(os.path.abspath(path))


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


async def _forbidden(send) -> None:
    # The same answer as Gradio's own refusal: nothing about whether or why the file exists.
    body = b'{"detail": "File not allowed."}'
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

