"""The dataset readers on tiny benchmarks in each public layout, and their errors."""

import json

import pytest

from benchmark_layouts import (make_circo, make_cirr, make_coco, make_fashioniq, make_flickr30k, make_msrvtt,
                               make_vic_layout)
from retrieval.datasets import DatasetLayoutError, read_dataset


def test_flickr30k_reads_the_karpathy_test_split_with_five_captions_per_image(tmp_path):
    data = read_dataset("flickr30k", make_flickr30k(tmp_path))
    assert (data.task, data.split, data.media) == ("t2i", "test", "image")
    assert len(data.gallery) == 4
    assert len(data.queries) == 20  # the train entry is left out
    assert data.gallery[0].path == tmp_path / "flickr30k-images" / "cat_chelsea.jpg"
    assert data.queries[5].text == "a cup of coffee"
    assert data.queries[5].relevant == (1,)
    assert data.reverse_direction == "i2t"


def test_coco_images_live_under_their_filepath(tmp_path):
    data = read_dataset("coco", make_coco(tmp_path))
    assert data.gallery[2].path == tmp_path / "val2014" / "COCO_val2014_000000000002.jpg"
    assert len(data.queries) == 20


def test_cirr_triplets_with_subsets_that_leave_out_the_reference(tmp_path):
    data = read_dataset("cirr", make_cirr(tmp_path))
    assert (data.task, data.split, data.exclude_reference) == ("cir", "val", True)
    first = data.queries[0]
    assert (first.reference, first.relevant, first.subset) == (0, (1,), (1, 2, 3))
    assert first.text == "make it a cup of coffee"
    assert data.gallery[0].path == tmp_path / "img_raw" / "dev" / "dev-0-0-img0.png"


def test_circo_keeps_every_ground_truth(tmp_path):
    data = read_dataset("circo", make_circo(tmp_path))
    assert data.queries[0].relevant == (1, 2, 3)
    assert data.queries[0].reference == 0
    assert data.queries[0].target == 1  # target_img_id: what Recall@K counts
    assert not data.exclude_reference  # the official evaluation ranks the whole gallery, the reference too
    assert data.queries[1].relevant == (5,)
    assert len(data.gallery) == 6


def test_fashioniq_joins_the_two_captions(tmp_path):
    data = read_dataset("fashioniq-dress", make_fashioniq(tmp_path))
    assert data.queries[0].text == "is white and has a handle"
    assert (data.queries[0].reference, data.queries[0].relevant) == (0, (1,))
    assert not data.exclude_reference


def test_msrvtt_reads_the_jsfusion_csv(tmp_path):
    data = read_dataset("msrvtt", make_msrvtt(tmp_path))
    assert (data.task, data.media, data.reverse_direction) == ("t2v", "video", "v2t")
    assert [g.id for g in data.gallery] == ["video7010", "video7020", "video7030"]
    assert data.queries[1].text == "a blue square slides"
    assert data.queries[1].relevant == (1,)


@pytest.mark.parametrize("dataset, make, missing", [
    ("flickr30k", make_flickr30k, "dataset_flickr30k.json"),
    ("flickr30k", make_flickr30k, "flickr30k-images"),
    ("coco", make_coco, "dataset_coco.json"),
    ("cirr", make_cirr, "captions/cap.rc2.val.json"),
    ("cirr", make_cirr, "image_splits/split.rc2.val.json"),
    ("circo", make_circo, "annotations/val.json"),
    ("circo", make_circo, "COCO2017_unlabeled/annotations/image_info_unlabeled2017.json"),
    ("fashioniq-dress", make_fashioniq, "captions/cap.dress.val.json"),
    ("fashioniq-dress", make_fashioniq, "image_splits/split.dress.val.json"),
    ("msrvtt", make_msrvtt, "MSRVTT_JSFUSION_test.csv"),
])
def test_a_missing_file_is_named_in_the_error(tmp_path, dataset, make, missing):
    import shutil

    root = make(tmp_path / "data")
    target = root / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetLayoutError, match=missing.split("/")[-1].replace(".", r"\.")):
        read_dataset(dataset, root)


@pytest.mark.parametrize("dataset, make, media", [
    ("flickr30k", make_flickr30k, "flickr30k-images/coffee_cup.jpg"),
    ("cirr", make_cirr, "img_raw/dev/dev-3-0-img0.png"),
    ("msrvtt", make_msrvtt, "videos/video7020.mp4"),
])
def test_missing_media_is_counted_and_named(tmp_path, dataset, make, media):
    root = make(tmp_path)
    (root / media).unlink()
    with pytest.raises(DatasetLayoutError, match=rf"1 of \d+ media files .* missing, e\.g\. .*{media.split('/')[-1]}"):
        read_dataset(dataset, root)


def test_a_test_split_reads_without_ground_truth_for_its_server(tmp_path):
    root = make_cirr(tmp_path)
    triplets = json.loads((root / "captions" / "cap.rc2.val.json").read_text())
    for t in triplets:
        del t["target_hard"]
    (root / "captions" / "cap.rc2.test1.json").write_text(json.dumps(triplets))
    (root / "image_splits" / "split.rc2.test1.json").write_text((root / "image_splits" / "split.rc2.val.json").read_text())
    dataset = read_dataset("cirr", root, "test1")
    assert not dataset.has_ground_truth
    assert [q.relevant for q in dataset.queries] == [(), (), ()]
    assert dataset.queries[0].subset == (1, 2, 3)  # Recall_subset's set stays: the server's file lists it
    assert read_dataset("cirr", root, "val").has_ground_truth


@pytest.mark.parametrize("field, message", [
    ("gt_img_ids", "1 of 2 entries of .*val.json have no 'gt_img_ids' field"),  # in some entries only: damaged
    ("relative_caption", "val.json has no 'relative_caption' field"),
])
def test_a_malformed_entry_names_the_file_and_field(tmp_path, field, message):
    root = make_circo(tmp_path)
    annotations = json.loads((root / "annotations" / "val.json").read_text())
    del annotations[1][field]
    (root / "annotations" / "val.json").write_text(json.dumps(annotations))
    with pytest.raises(DatasetLayoutError, match=message):
        read_dataset("circo", root)


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        read_dataset("imagenet", tmp_path)
    with pytest.raises(DatasetLayoutError, match="dataset folder not found"):
        read_dataset("cirr", tmp_path / "nope")


@pytest.mark.parametrize("name", ["didemo", "activitynet"])
def test_paragraph_benchmarks_read_one_paragraph_per_video_with_subtitles(tmp_path, name):
    data = read_dataset(name, make_vic_layout(tmp_path, name))
    assert (data.task, data.media, data.split) == ("t2v", "video", "test")
    assert [g.id for g in data.gallery] == ["vid_a", "vid_b", "vid_c"]
    assert data.queries[0].text == "a red ball bounces a ball goes up and down"
    assert [q.relevant for q in data.queries] == [(0,), (1,), (2,)]
    assert [g.subtitle for g in data.gallery] == ["bounce bounce", None, "good morning"]  # "" is no subtitle


def test_vatex_reads_several_captions_per_video_its_file_column_and_subtitles(tmp_path):
    data = read_dataset("vatex", make_vic_layout(tmp_path, "vatex"))
    assert [g.path.name for g in data.gallery] == ["vid_a_clip.mp4", "vid_b_clip.mp4", "vid_c_clip.mp4"]
    assert [q.relevant for q in data.queries] == [(0,), (0,), (1,), (2,), (2,)]
    assert data.gallery[2].subtitle == "good morning"


def test_video_benchmarks_read_only_the_test_split_vic_evaluates(tmp_path):
    with pytest.raises(ValueError, match="only the test split ViC evaluates is read, not 'val'"):
        read_dataset("didemo", make_vic_layout(tmp_path, "didemo"), "val")
