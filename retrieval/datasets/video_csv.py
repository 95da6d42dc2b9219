"""Text-video benchmarks laid out as ViC ships them (mohammad2012191/ViC): MSR-VTT 1k-A, DiDeMo,
ActivityNet Captions and VATEX, each in the test split ViC evaluates.

Layout: ROOT/<csv> with a header naming at least video_id and sentence, one query per row (MSR-VTT:
MSRVTT_JSFUSION_test.csv or ViC's descs_ret_test_msrvtt.csv; the others ViC's
descs_ret_test_<name>.csv, also read from ROOT/Groud_Truth/ as ViC's repository has it). DiDeMo's and
ActivityNet's sentence is the whole paragraph of a video (paragraph-to-video), one row per video;
VATEX has several captions per video. The gallery is the distinct videos in first-seen order (the
column order of ViC's similarity matrices), each ROOT/videos/<video_id>.mp4, or the file the CSV's
`video` column names (VATEX). Subtitles, where the benchmark has them: the CSV's `subtitle` column
(VATEX), or ViC's ROOT/<name>_subtitles.json (also ROOT/Subtitles/), a list of {video_id, subtitle}.
"""

from __future__ import annotations

import csv
from pathlib import Path

from retrieval.errors import EvalInputError
from retrieval.datasets.base import (DatasetLayoutError, EvalQuery, GalleryItem, RetrievalDataset, check_media_exist,
                                     read_json)

CONTENTS = "a CSV with a header row and the columns video_id,sentence"
SUBTITLES = 'ViC\'s subtitle list: [{"video_id", "subtitle"}, ...]'
# The CSV each benchmark is read from, first match wins: the usual release's name, then ViC's.
CSV_NAMES = {
    "msrvtt": ("MSRVTT_JSFUSION_test.csv", "descs_ret_test_msrvtt.csv"),
    "didemo": ("descs_ret_test_didemo.csv",),
    "activitynet": ("descs_ret_test_activitynet.csv",),
    "vatex": ("descs_ret_test_vatex.csv",),
}


def read_video_csv(root: Path, split: str, name: str) -> RetrievalDataset:
    if split != "test":
        raise EvalInputError(f"{name}: only the test split ViC evaluates is read, not {split!r}: use --split test")
    csv_path = _find(root, [*CSV_NAMES[name], *(f"Groud_Truth/{n}" for n in CSV_NAMES[name])], name)
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video_id", "sentence"} <= set(rows[0]):
        raise DatasetLayoutError(f"{name}: {csv_path} must be {CONTENTS}")
    subtitles = _subtitles(root, name, rows)
    ids: dict[str, int] = {}
    gallery: list[GalleryItem] = []
    queries: list[EvalQuery] = []
    for number, row in enumerate(rows):
        video = (row["video_id"] or "").strip()
        if not video:
            raise DatasetLayoutError(f"{name}: {csv_path} line {number + 2} has no video_id")
        if video not in ids:
            ids[video] = len(gallery)
            file_name = (row.get("video") or "").strip() or f"{video}.mp4"
            gallery.append(GalleryItem(video, root / "videos" / file_name, subtitles.get(video) or None))
        queries.append(EvalQuery(str(number), (row["sentence"] or "").strip(), (ids[video],)))
    check_media_exist(gallery, name, csv_path)
    return RetrievalDataset(name, split, "t2v", "video", gallery, queries)


def _find(root: Path, names: list[str], dataset: str) -> Path:
    for relative in names:
        if (root / relative).is_file():
            return root / relative
    raise DatasetLayoutError(f"{dataset}: missing {root / names[0]} ({CONTENTS})")


def _subtitles(root: Path, name: str, rows: list[dict]) -> dict[str, str]:
    if rows and "subtitle" in rows[0]:
        return {r["video_id"].strip(): " ".join((r["subtitle"] or "").split()) for r in rows}
    for path in (root / f"{name}_subtitles.json", root / "Subtitles" / f"{name}_subtitles.json"):
        if path.is_file():
            entries = read_json(path, name, SUBTITLES)
            if not isinstance(entries, list):
                raise DatasetLayoutError(f"{name}: {path} must be {SUBTITLES}")
            return {str(e.get("video_id", "")).strip(): " ".join(str(e.get("subtitle") or "").split())
                    for e in entries if isinstance(e, dict)}
    return {}
