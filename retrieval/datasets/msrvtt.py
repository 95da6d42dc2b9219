"""MSR-VTT 1k-A test (the JSFusion split): one sentence per video, 1000 videos.

Layout: ROOT/MSRVTT_JSFUSION_test.csv with a header naming at least the columns video_id and
sentence (the usual file also has key, vid_key); the videos as ROOT/videos/<video_id>.mp4.
"""

from __future__ import annotations

import csv
from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets.base import DatasetLayoutError, EvalQuery, GalleryItem, RetrievalDataset, check_media_exist, require_file

CSV_NAME = "MSRVTT_JSFUSION_test.csv"
CONTENTS = "a CSV with a header row and the columns video_id,sentence"


def read_msrvtt(root: Path, split: str) -> RetrievalDataset:
    if split != "test":
        raise EvalInputError(f"msrvtt: only the 1k-A test split is read, not {split!r}: use --split test")
    csv_path = require_file(root / CSV_NAME, "msrvtt", CONTENTS)
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video_id", "sentence"} <= set(rows[0]):
        raise DatasetLayoutError(f"msrvtt: {csv_path} must be {CONTENTS}")
    ids: dict[str, int] = {}
    gallery: list[GalleryItem] = []
    queries: list[EvalQuery] = []
    for number, row in enumerate(rows):
        video = row["video_id"].strip()
        if video not in ids:
            ids[video] = len(gallery)
            gallery.append(GalleryItem(video, root / "videos" / f"{video}.mp4"))
        queries.append(EvalQuery(str(number), row["sentence"].strip(), (ids[video],)))
    check_media_exist(gallery, "msrvtt", csv_path)
    return RetrievalDataset("msrvtt", split, "t2v", "video", gallery, queries)
