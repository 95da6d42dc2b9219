"""CIRR (composed image retrieval on NLVR2 images), release rc2.

Layout (github.com/Cuberick-Orion/CIRR): ROOT/captions/cap.rc2.<split>.json, a list of
{"pairid", "reference", "target_hard", "caption", "img_set": {"members": [...]}};
ROOT/image_splits/split.rc2.<split>.json mapping image name -> "./dev/<name>.png"; the images
under ROOT/img_raw/ (or ROOT itself). Splits: train, val (images in dev/), test1 (no ground truth: eval
writes the files the CIRR test server scores).
"""

from __future__ import annotations

from pathlib import Path

from retrieval.datasets.base import (EvalQuery, GalleryItem, RetrievalDataset, check_media_exist, entry_field, index_of,
                                     read_json, ground_truth_present)

CAPTIONS = 'a list of {"reference", "target_hard", "caption", "img_set": {"members"}}'
SPLIT = 'a JSON object mapping each image name to its relative path, e.g. "./dev/dev-0-0-img0.png"'


def read_cirr(root: Path, split: str) -> RetrievalDataset:
    captions_path = root / "captions" / f"cap.rc2.{split}.json"
    split_path = root / "image_splits" / f"split.rc2.{split}.json"
    triplets = read_json(captions_path, "cirr", CAPTIONS)
    images = read_json(split_path, "cirr", SPLIT)
    labelled = ground_truth_present("cirr", captions_path, triplets, "target_hard", "the CIRR evaluation server")
    base = root / "img_raw" if (root / "img_raw").is_dir() else root
    gallery = [GalleryItem(name, base / relative) for name, relative in images.items()]
    ids = {item.id: i for i, item in enumerate(gallery)}
    queries = []
    for t in triplets:
        reference = index_of(ids, entry_field(t, "reference", captions_path, "cirr"), captions_path, "cirr")
        relevant = (index_of(ids, t["target_hard"], captions_path, "cirr"),) if labelled else ()
        members = entry_field(entry_field(t, "img_set", captions_path, "cirr"), "members", captions_path, "cirr")
        subset = tuple(i for i in (index_of(ids, m, captions_path, "cirr") for m in members) if i != reference)
        queries.append(EvalQuery(str(entry_field(t, "pairid", captions_path, "cirr")),
                                 entry_field(t, "caption", captions_path, "cirr"), relevant, reference, subset))
    check_media_exist(gallery, "cirr", split_path)
    return RetrievalDataset("cirr", split, "cir", "image", gallery, queries, exclude_reference=True,
                            has_ground_truth=labelled)
