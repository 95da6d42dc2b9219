"""Flickr30k and MS-COCO 5k: the Karpathy split files (dataset_flickr30k.json, dataset_coco.json).

Layout: ROOT/dataset_flickr30k.json with images in ROOT/flickr30k-images/ (or ROOT/images/);
ROOT/dataset_coco.json with images under ROOT/<filepath>/ (val2014/ ...). Each entry of
"images" has "split", "filename" (COCO also "filepath") and "sentences" with "raw" captions.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets.base import (EvalQuery, GalleryItem, RetrievalDataset, check_media_exist, entry_field,
                                     first_existing_dir, read_json)

CONTENTS = 'the Karpathy split: {"images": [{"split", "filename", "sentences": [{"raw"}]}]}'


def _read_karpathy(name: str, json_path: Path, document: dict, split: str, folder_of) -> RetrievalDataset:
    entries = [e for e in entry_field(document, "images", json_path, name) if entry_field(e, "split", json_path, name) == split]
    if not entries:
        raise EvalInputError(f"{name}: no images with split {split!r} in {json_path} (Karpathy splits: train, val, test)")
    gallery: list[GalleryItem] = []
    queries: list[EvalQuery] = []
    for index, entry in enumerate(entries):
        filename = entry_field(entry, "filename", json_path, name)
        gallery.append(GalleryItem(filename, folder_of(entry) / filename))
        for number, sentence in enumerate(entry_field(entry, "sentences", json_path, name)):
            queries.append(EvalQuery(f"{filename}#{number}", entry_field(sentence, "raw", json_path, name).strip(), (index,)))
    check_media_exist(gallery, name, json_path)
    return RetrievalDataset(name, split, "t2i", "image", gallery, queries)


def read_flickr30k(root: Path, split: str) -> RetrievalDataset:
    json_path = root / "dataset_flickr30k.json"
    document = read_json(json_path, "flickr30k", CONTENTS)
    images = first_existing_dir([root / "flickr30k-images", root / "images"], "flickr30k", "the Flickr30k jpgs")
    return _read_karpathy("flickr30k", json_path, document, split, lambda entry: images)


def read_coco(root: Path, split: str) -> RetrievalDataset:
    json_path = root / "dataset_coco.json"
    document = read_json(json_path, "coco", CONTENTS)
    return _read_karpathy("coco", json_path, document, split,
                          lambda entry: root / entry_field(entry, "filepath", json_path, "coco"))
