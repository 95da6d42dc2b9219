"""What every benchmark reader returns, and the checks that make layout errors say what is missing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from retrieval.errors import EvalInputError

Task = Literal["t2i", "cir", "t2v"]
MediaKind = Literal["image", "video"]


class DatasetLayoutError(EvalInputError):
    """A benchmark folder is not laid out as its reader expects; the message names the file."""


@dataclass(frozen=True)
class GalleryItem:
    """One image or video that queries retrieve."""

    id: str  # the dataset's own name for it (file name, COCO id, video id)
    path: Path
    subtitle: str | None = None  # a video's speech as text, where the benchmark ships it (ViC shows it to the model)


@dataclass(frozen=True)
class EvalQuery:
    """One query and its ground truth, as indices into the dataset's gallery."""

    id: str
    text: str  # the caption, or the modification text of a composed query
    relevant: tuple[int, ...]  # ground truth (several for CIRCO)
    reference: int | None = None  # composed queries: the reference image
    subset: tuple[int, ...] | None = None  # CIRR: the query's image set, for Recall_subset (reference left out)
    target: int | None = None  # CIRCO: target_img_id, the one ground truth its Recall@K counts (mAP counts all)


@dataclass(frozen=True)
class RetrievalDataset:
    name: str
    split: str
    task: Task
    media: MediaKind
    gallery: list[GalleryItem]
    queries: list[EvalQuery]
    exclude_reference: bool = False  # CIRR's protocol: the reference image is never a result
    # False for a split whose ground truth only its test server has (CIRR test1, CIRCO test): eval then
    # writes the server's submission files and reports no metrics.
    has_ground_truth: bool = True

    @property
    def reverse_direction(self) -> str | None:
        """Items as queries over the captions (i2t, v2t) where the benchmark reports that direction."""
        return {"t2i": "i2t", "t2v": "v2t"}.get(self.task)

    @property
    def forward_direction(self) -> str:
        return self.task


def require_file(path: Path, dataset: str, contents: str) -> Path:
    if not path.is_file():
        raise DatasetLayoutError(f"{dataset}: missing {path} ({contents})")
    return path


def read_json(path: Path, dataset: str, contents: str) -> Any:
    require_file(path, dataset, contents)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetLayoutError(f"{dataset}: {path} is not valid JSON ({e}); it should hold {contents}") from e


def entry_field(record: dict, key: str, path: Path, dataset: str) -> Any:
    """record[key], or an error naming the file and the missing field."""
    if not isinstance(record, dict) or key not in record:
        raise DatasetLayoutError(f"{dataset}: an entry of {path} has no {key!r} field: {str(record)[:200]}")
    return record[key]


def first_existing_dir(candidates: Sequence[Path], dataset: str, contents: str) -> Path:
    for folder in candidates:
        if folder.is_dir():
            return folder
    names = " or ".join(str(c) for c in candidates)
    raise DatasetLayoutError(f"{dataset}: missing folder {names} ({contents})")


def check_media_exist(gallery: Sequence[GalleryItem], dataset: str, source: Path) -> None:
    missing = [item.path for item in gallery if not item.path.is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{dataset}: {len(missing)} of {len(gallery)} media files listed in {source} are missing, "
            f"e.g. {missing[0]}; download the images/videos into that folder"
        )


def index_of(ids: dict[str, int], key: str, path: Path, dataset: str) -> int:
    try:
        return ids[key]
    except KeyError:
        raise DatasetLayoutError(f"{dataset}: {path} names {key!r}, which is not in the split's gallery") from None


def ground_truth_present(dataset: str, path: Path, entries: Sequence[dict], field: str, server: str) -> bool:
    """Whether a split's entries carry their ground truth `field`: all do (val), or none does (a test split that
    `server` scores). Some with and some without is a damaged file."""
    having = sum(1 for e in entries if isinstance(e, dict) and field in e)
    if 0 < having < len(entries):
        raise DatasetLayoutError(f"{dataset}: {len(entries) - having} of {len(entries)} entries of {path} have no "
                                 f"{field!r} field: a split has it in every entry, or (scored by {server}) in none")
    return having > 0 or not entries
