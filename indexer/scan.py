"""Find the photos and videos under a root folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from retrieval.store.ids import MediaKind

try:  # HEIC/HEIF come from an optional Pillow plugin; register it when installed.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:
    pass

_ALWAYS_IMAGE = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
_PLUGIN_IMAGE = {".heic", ".heif", ".avif"}
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})


def image_extensions() -> frozenset[str]:
    """Image endings this Pillow can open: HEIC/AVIF only when a plugin or build supports them."""
    return frozenset(_ALWAYS_IMAGE | (_PLUGIN_IMAGE & set(Image.registered_extensions())))


@dataclass(frozen=True)
class FileEntry:
    rel_path: str  # '/'-separated, relative to the root: the key in the catalog
    abs_path: Path
    kind: MediaKind
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    rel_path: str
    reason: str


@dataclass
class ScanResult:
    files: list[FileEntry]
    problems: list[ScanProblem]


def kind_for(path: Path, image_exts: frozenset[str]) -> MediaKind | None:
    ext = path.suffix.lower()
    if ext in image_exts:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def scan(root: Path) -> ScanResult:
    """Walk `root` recursively, following symlinks once: hidden entries skipped, loops cut."""
    root = root.resolve()
    image_exts = image_extensions()
    files: list[FileEntry] = []
    problems: list[ScanProblem] = []
    for entry in _walk(root, problems):
        kind = kind_for(entry, image_exts)
        if kind is None:
            continue
        rel = entry.relative_to(root).as_posix()
        try:
            st = entry.stat()
        except OSError as e:
            problems.append(ScanProblem(rel, f"cannot stat: {e.strerror}"))
            continue
        files.append(FileEntry(rel, entry, kind, st.st_size, st.st_mtime_ns))
    files.sort(key=lambda f: f.rel_path)
    return ScanResult(files, problems)


def _walk(root: Path, problems: list[ScanProblem]) -> Iterator[Path]:
    seen_dirs: set[tuple[int, int]] = set()

    def on_error(err: OSError) -> None:
        rel = Path(err.filename).relative_to(root).as_posix() if err.filename else "."
        problems.append(ScanProblem(rel, f"cannot read folder: {err.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink led back to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name
