"""Readers for the public benchmark layouts, one module per dataset family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets.base import DatasetLayoutError, EvalQuery, GalleryItem, RetrievalDataset, Task
from retrieval.datasets.circo import read_circo
from retrieval.datasets.cirr import read_cirr
from retrieval.datasets.fashioniq import CATEGORIES, read_fashioniq
from retrieval.datasets.karpathy import read_coco, read_flickr30k
from retrieval.datasets.video_csv import read_video_csv

__all__ = ["DATASETS", "DatasetLayoutError", "EvalQuery", "GalleryItem", "RetrievalDataset", "read_dataset"]


@dataclass(frozen=True)
class DatasetReader:
    task: Task
    default_split: str
    read: Callable[[Path, str], RetrievalDataset]


DATASETS: dict[str, DatasetReader] = {
    "flickr30k": DatasetReader("t2i", "test", read_flickr30k),
    "coco": DatasetReader("t2i", "test", read_coco),
    "cirr": DatasetReader("cir", "val", read_cirr),
    "circo": DatasetReader("cir", "val", read_circo),
    **{f"fashioniq-{c}": DatasetReader("cir", "val", partial(read_fashioniq, category=c)) for c in CATEGORIES},
    **{name: DatasetReader("t2v", "test", partial(read_video_csv, name=name))
       for name in ("msrvtt", "didemo", "activitynet", "vatex")},
}


def read_dataset(name: str, root: Path, split: str | None = None) -> RetrievalDataset:
    if name not in DATASETS:
        raise EvalInputError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if not root.is_dir():
        raise DatasetLayoutError(f"{name}: dataset folder not found: {root}")
    reader = DATASETS[name]
    return reader.read(root, split or reader.default_split)
