"""FashionIQ (composed retrieval of dresses, shirts, tops and tees), one category per dataset name.

Layout (github.com/XiaoxiaoGuo/fashion-iq): ROOT/captions/cap.<category>.<split>.json, a list of
{"candidate", "target", "captions": [two texts]}; ROOT/image_splits/split.<category>.<split>.json,
a list of image names (the gallery); the images as ROOT/images/<name>.png (or .jpg).
The two captions are joined with "and", as in the usual protocol; the reference stays in the gallery.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets.base import (EvalQuery, GalleryItem, RetrievalDataset, check_media_exist, entry_field, index_of,
                                     read_json)

CATEGORIES = ("dress", "shirt", "toptee")
CAPTIONS = 'a list of {"candidate", "target", "captions": [text, text]}'
SPLIT = "a JSON list of the image names of the split"


def _image_path(images: Path, name: str) -> Path:
    png = images / f"{name}.png"
    jpg = images / f"{name}.jpg"
    return jpg if not png.is_file() and jpg.is_file() else png


def read_fashioniq(root: Path, split: str, category: str) -> RetrievalDataset:
    if category not in CATEGORIES:
        raise EvalInputError(f"FashionIQ category must be one of {', '.join(CATEGORIES)}, not {category!r}")
    name = f"fashioniq-{category}"
    captions_path = root / "captions" / f"cap.{category}.{split}.json"
    split_path = root / "image_splits" / f"split.{category}.{split}.json"
    triplets = read_json(captions_path, name, CAPTIONS)
    names = read_json(split_path, name, SPLIT)
    gallery = [GalleryItem(n, _image_path(root / "images", n)) for n in names]
    ids = {item.id: i for i, item in enumerate(gallery)}
    queries = []
    for number, t in enumerate(triplets):
        texts = [c.strip().rstrip(".") for c in entry_field(t, "captions", captions_path, name) if c.strip()]
        queries.append(EvalQuery(
            str(number), " and ".join(texts),
            (index_of(ids, entry_field(t, "target", captions_path, name), captions_path, name),),
            index_of(ids, entry_field(t, "candidate", captions_path, name), captions_path, name),
        ))
    check_media_exist(gallery, name, split_path)
    return RetrievalDataset(name, split, "cir", "image", gallery, queries)
