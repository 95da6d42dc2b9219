"""Tiny benchmarks in each public layout, built from the sample media: for the eval tests."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from PIL import Image

from sample_media import SAMPLE

PHOTOS = ["cat_chelsea.jpg", "coffee_cup.jpg", "rocket_launch_falcon9.jpg", "greek_coins_gray.jpg",
          "cameraman_gray.jpg", "retina_fundus.jpg"]
CAPTIONS = {
    "cat_chelsea.jpg": ["a cat", "an orange cat looking left", "a tabby", "a pet indoors", "whiskers"],
    "coffee_cup.jpg": ["a cup of coffee", "a white mug", "a drink on a table", "latte art", "a saucer"],
    "rocket_launch_falcon9.jpg": ["a rocket launch", "smoke and fire", "a launch pad", "a spacecraft", "liftoff"],
    "greek_coins_gray.jpg": ["old coins", "ancient money", "grey coins", "a coin collection", "metal discs"],
}


def _photo(name: str) -> Path:
    return SAMPLE / "photos" / name


def make_flickr30k(root: Path) -> Path:
    (root / "flickr30k-images").mkdir(parents=True)
    images = []
    for name, captions in CAPTIONS.items():
        shutil.copy(_photo(name), root / "flickr30k-images" / name)
        images.append({"split": "test", "filename": name, "sentences": [{"raw": c} for c in captions]})
    images.append({"split": "train", "filename": "not_in_test.jpg", "sentences": [{"raw": "ignored"}]})
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    return root


def make_coco(root: Path) -> Path:
    (root / "val2014").mkdir(parents=True)
    images = []
    for number, (name, captions) in enumerate(CAPTIONS.items()):
        filename = f"COCO_val2014_{number:012d}.jpg"
        shutil.copy(_photo(name), root / "val2014" / filename)
        images.append({"split": "test", "filepath": "val2014", "filename": filename,
                       "sentences": [{"raw": c} for c in captions]})
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    return root


def make_cirr(root: Path) -> Path:
    names = [f"dev-{i}-0-img0" for i in range(len(PHOTOS))]
    (root / "img_raw" / "dev").mkdir(parents=True)
    for name, photo in zip(names, PHOTOS):
        Image.open(_photo(photo)).convert("RGB").save(root / "img_raw" / "dev" / f"{name}.png")
    (root / "image_splits").mkdir()
    (root / "image_splits" / "split.rc2.val.json").write_text(
        json.dumps({n: f"./dev/{n}.png" for n in names}))
    triplets = [
        {"pairid": 1, "reference": names[0], "target_hard": names[1], "target_soft": {names[1]: 1.0},
         "caption": "make it a cup of coffee", "img_set": {"id": 1, "members": names[0:4]}},
        {"pairid": 2, "reference": names[2], "target_hard": names[3], "target_soft": {names[3]: 1.0},
         "caption": "show old coins instead", "img_set": {"id": 2, "members": names[2:6]}},
        {"pairid": 3, "reference": names[4], "target_hard": names[5], "target_soft": {names[5]: 1.0},
         "caption": "an eye, not a man", "img_set": {"id": 3, "members": [names[4], names[5], names[0], names[1]]}},
    ]
    (root / "captions").mkdir()
    (root / "captions" / "cap.rc2.val.json").write_text(json.dumps(triplets))
    return root


def make_circo(root: Path) -> Path:
    folder = root / "COCO2017_unlabeled" / "unlabeled2017"
    folder.mkdir(parents=True)
    (root / "COCO2017_unlabeled" / "annotations").mkdir()
    ids = [100 + i for i in range(len(PHOTOS))]
    for image_id, photo in zip(ids, PHOTOS):
        shutil.copy(_photo(photo), folder / f"{image_id:012d}.jpg")
    (root / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json").write_text(
        json.dumps({"images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in ids]}))
    annotations = [
        {"id": 0, "reference_img_id": ids[0], "target_img_id": ids[1], "relative_caption": "is a drink",
         "shared_concept": "a thing", "gt_img_ids": [ids[1], ids[2], ids[3]]},
        {"id": 1, "reference_img_id": ids[4], "target_img_id": ids[5], "relative_caption": "is an eye",
         "shared_concept": "a photo", "gt_img_ids": [ids[5]]},
    ]
    (root / "annotations").mkdir()
    (root / "annotations" / "val.json").write_text(json.dumps(annotations))
    return root


def make_fashioniq(root: Path, category: str = "dress") -> Path:
    names = [f"B00{i}" for i in range(4)]
    (root / "images").mkdir(parents=True)
    for name, photo in zip(names, PHOTOS):
        Image.open(_photo(photo)).convert("RGB").save(root / "images" / f"{name}.png")
    (root / "image_splits").mkdir()
    (root / "image_splits" / f"split.{category}.val.json").write_text(json.dumps(names))
    (root / "captions").mkdir()
    (root / "captions" / f"cap.{category}.val.json").write_text(json.dumps([
        {"candidate": names[0], "target": names[1], "captions": ["is white.", "has a handle"]},
        {"candidate": names[2], "target": names[3], "captions": ["is grey", "is round"]},
    ]))
    return root


def make_msrvtt(root: Path) -> Path:
    (root / "videos").mkdir(parents=True)
    videos = {"video7010": "red_ball_bouncing.mp4", "video7020": "blue_square_sliding.mp4",
              "video7030": "yellow_sun_rising_copy.mov"}
    for video_id, source in videos.items():
        shutil.copy(SAMPLE / "videos" / source, root / "videos" / f"{video_id}.mp4")
    with (root / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for key, (video_id, sentence) in enumerate(zip(videos, ["a red ball bounces", "a blue square slides",
                                                                "the sun rises"])):
            writer.writerow([f"ret{key}", f"msr{video_id[5:]}", video_id, sentence])
    return root


def make_vic_layout(root: Path, name: str) -> Path:
    """A benchmark as ViC ships it: Groud_Truth/descs_ret_test_<name>.csv and videos/. VATEX's CSV has several
    captions per video, a `video` file column and a `subtitle` column; the others get ViC's subtitle JSON."""
    (root / "videos").mkdir(parents=True)
    (root / "Groud_Truth").mkdir()
    videos = {"vid_a": "red_ball_bouncing.mp4", "vid_b": "blue_square_sliding.mp4", "vid_c": "yellow_sun_rising.mp4"}
    captions = {"vid_a": ["a red ball bounces", "a ball goes up and down"], "vid_b": ["a blue square slides"],
                "vid_c": ["the sun rises", "a yellow sun comes up"]}
    subtitles = {"vid_a": "bounce bounce", "vid_b": "", "vid_c": "good morning"}
    with (root / "Groud_Truth" / f"descs_ret_test_{name}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        if name == "vatex":
            writer.writerow(["video", "video_id", "sentence", "subtitle"])
            for video_id, texts in captions.items():
                shutil.copy(SAMPLE / "videos" / videos[video_id], root / "videos" / f"{video_id}_clip.mp4")
                writer.writerows([f"{video_id}_clip.mp4", video_id, t, subtitles[video_id]] for t in texts)
        else:  # one paragraph per video (DiDeMo, ActivityNet: paragraph-to-video)
            writer.writerow(["video_id", "sentence"])
            for video_id, texts in captions.items():
                shutil.copy(SAMPLE / "videos" / videos[video_id], root / "videos" / f"{video_id}.mp4")
                writer.writerow([video_id, " ".join(texts)])
            (root / f"{name}_subtitles.json").write_text(json.dumps(
                [{"video_id": v, "desc": "", "subtitle": s} for v, s in subtitles.items()]))
    return root
