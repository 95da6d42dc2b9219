"""Helpers shared by the web tests."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from sample_media import SAMPLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def indexed_copy(base: Path, settings, encoder) -> tuple[Path, Path]:
    """A private copy of the sample media, indexed: (media root, index folder)."""
    from indexer.pipeline import run_index

    media = base / "media"
    shutil.copytree(SAMPLE, media)
    index_dir = media / ".gridrank"
    run_index(media, index_dir, settings, encoder=encoder)
    return media, index_dir
