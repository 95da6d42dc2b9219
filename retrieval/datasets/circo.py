"""CIRCO (composed image retrieval on COCO 2017 unlabeled, several ground truths per query).

Layout (github.com/miccunifi/CIRCO): ROOT/annotations/<split>.json, a list of
{"id", "reference_img_id", "target_img_id", "relative_caption", "gt_img_ids"};
ROOT/COCO2017_unlabeled/annotations/image_info_unlabeled2017.json ({"images": [{"id",
"file_name"}]}) and the images in ROOT/COCO2017_unlabeled/unlabeled2017/. The gallery is the
whole unlabeled set, the reference image included, as the official evaluation ranks it; mAP@K counts
every ground truth over min(K, their number), Recall@K only target_img_id. Splits: val, test (no
ground truth: eval writes the file the CIRCO test server scores).
"""

from __future__ import annotations

from pathlib import Path

from retrieval.datasets.base import (EvalQuery, GalleryItem, RetrievalDataset, check_media_exist, entry_field, index_of,
                                     read_json, ground_truth_present)

ANNOTATIONS = 'a list of {"id", "reference_img_id", "relative_caption", "gt_img_ids"}'
IMAGE_INFO = 'the COCO 2017 unlabeled image list: {"images": [{"id", "file_name"}]}'


def read_circo(root: Path, split: str) -> RetrievalDataset:
    annotations_path = root / "annotations" / f"{split}.json"
    info_path = root / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json"
    annotations = read_json(annotations_path, "circo", ANNOTATIONS)
    info = read_json(info_path, "circo", IMAGE_INFO)
    labelled = ground_truth_present("circo", annotations_path, annotations, "gt_img_ids",
                                    "the CIRCO evaluation server")
    folder = root / "COCO2017_unlabeled" / "unlabeled2017"
    gallery = [GalleryItem(str(entry_field(image, "id", info_path, "circo")),
                           folder / entry_field(image, "file_name", info_path, "circo"))
               for image in entry_field(info, "images", info_path, "circo")]
    ids = {item.id: i for i, item in enumerate(gallery)}

    def gallery_index(image_id) -> int:
        return index_of(ids, str(image_id), annotations_path, "circo")

    def query(a: dict) -> EvalQuery:
        relevant = tuple(gallery_index(g) for g in a["gt_img_ids"]) if labelled else ()
        # Recall@K counts target_img_id alone, which the official evaluation asserts is gt_img_ids[0].
        target = gallery_index(a["target_img_id"]) if "target_img_id" in a else (relevant[0] if relevant else None)
        return EvalQuery(str(entry_field(a, "id", annotations_path, "circo")),
                         entry_field(a, "relative_caption", annotations_path, "circo"), relevant,
                         gallery_index(entry_field(a, "reference_img_id", annotations_path, "circo")), target=target)

    queries = [query(a) for a in annotations]
    check_media_exist(gallery, "circo", info_path)
    # The official validation (SEARLE's circo_compute_val_metrics) ranks the whole gallery, the reference image
    # included; CIRR's deletes it (cirr_compute_val_metrics), and so does gridrank for CIRR.
    return RetrievalDataset("circo", split, "cir", "image", gallery, queries, exclude_reference=False,
                            has_ground_truth=labelled)
