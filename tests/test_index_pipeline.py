"""Indexing runs end to end on the sample media with the tiny model: incremental, bad input, atomic."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import run_index
from indexer.scan import scan
from retrieval.store.index_store import IndexStore

from sample_media import BROKEN


def _index(media_dir, settings, encoder, **kw):
    return run_index(media_dir, media_dir / ".gridrank", settings, encoder=encoder, **kw)


def _consistent(index_dir):
    """The catalog and the vector store agree, and every media item has vectors."""
    store = IndexStore.open(index_dir)
    counts = store.catalog.counts()
    assert len(store.frames) == counts.frames
    assert len(store.videos) == counts.videos
    frames = store.catalog.frames_by_vector_ids(range(0))  # no-op query must work
    assert frames == {}
    return store


def test_first_run_indexes_everything_and_second_run_touches_nothing(media_dir, store_settings, tiny_encoder):
    files = scan(media_dir).files
    summary = _index(media_dir, store_settings, tiny_encoder)
    assert (summary.indexed, summary.skipped, summary.unchanged) == (len(files), 0, 0)
    store = _consistent(media_dir / ".gridrank")
    counts = store.catalog.counts()
    assert counts.images == sum(f.kind == "image" for f in files)
    assert counts.videos == sum(f.kind == "video" for f in files)
    assert counts.frames > counts.images + counts.videos  # several frames per video
    generation = store.info.generation

    again = _index(media_dir, store_settings, tiny_encoder)
    assert (again.indexed, again.unchanged, again.removed) == (0, len(files), 0)
    assert IndexStore.open(media_dir / ".gridrank").info.generation == generation  # nothing rewritten


def test_add_change_touch_and_remove(media_dir, store_settings, tiny_encoder):
    _index(media_dir, store_settings, tiny_encoder)
    index_dir = media_dir / ".gridrank"
    before = IndexStore.open(index_dir).catalog.media_by_path()
    photos = sorted(p for p in before if p.endswith(".jpg"))
    changed, touched, removed = photos[0], photos[1], photos[2]

    Image.new("RGB", (64, 48), "purple").save(media_dir / changed)
    os.utime(media_dir / touched, ns=(1, 1_000_000_000))
    (media_dir / removed).unlink()
    Image.new("RGB", (30, 30), "orange").save(media_dir / "new.png")

    summary = _index(media_dir, store_settings, tiny_encoder)
    assert (summary.indexed, summary.touched, summary.removed) == (2, 1, 1)
    store = _consistent(index_dir)
    after = store.catalog.media_by_path()
    assert removed not in after
    assert "new.png" in after
    assert after[changed].id == before[changed].id  # stable id for the same path
    assert after[changed].content_hash != before[changed].content_hash
    assert after[touched].mtime_ns == 1_000_000_000
    # the changed image's vector is the new picture's
    vector = store.frames.reconstruct(store.catalog.frames_of(after[changed].id)[0].vector_id)
    expected = tiny_encoder.encode_images([Image.open(media_dir / changed).convert("RGB")])[0]
    assert np.allclose(vector, expected, atol=1e-4)


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "worker-processes"])
def test_bad_inputs_are_skipped_with_reasons_and_the_run_goes_on(media_dir, tiny_settings, tiny_encoder, workers):
    shutil.copytree(BROKEN, media_dir / "broken")
    settings = tiny_settings.model_copy(update={"workers": workers})
    summary = _index(media_dir, settings, tiny_encoder)
    store = _consistent(media_dir / ".gridrank")
    skipped = store.catalog.skipped_by_path()
    reasons = {path.split("/")[-1]: skip.reason for path, skip in skipped.items()}
    assert "empty" in reasons["zero_bytes.jpg"]
    assert "not an image" in reasons["text_as.jpg"]
    assert "exceeds max_image_pixels" in reasons["huge_pixels.png"] or "too many pixels" in reasons["huge_pixels.png"]
    assert "cannot decode image" in reasons["truncated.jpg"]
    assert "cannot decode video" in reasons["corrupt.mp4"]
    assert "truncated.mp4" in reasons
    assert summary.skipped == len(skipped) >= 6
    few = store.catalog.media_by_path()["broken/few_frames.mp4"]
    assert few.frame_count == 3
    assert "fewer than" in few.note
    assert summary.indexed == len(scan(media_dir).files) - summary.skipped


def test_unreadable_file_is_skipped(media_dir, tiny_settings, tiny_encoder, monkeypatch):
    target = sorted(media_dir.rglob("*.jpg"))[0]
    if os.geteuid() == 0:  # root reads anything: make the read fail the way a chmod 000 file does
        import indexer.decode as decode

        real = decode.file_hash
        monkeypatch.setattr(decode, "file_hash", lambda e: (_ for _ in ()).throw(PermissionError(13, "denied"))
                            if e.abs_path == target else real(e))
    else:
        target.chmod(0)
    _index(media_dir, tiny_settings, tiny_encoder)
    skipped = IndexStore.open(media_dir / ".gridrank").catalog.skipped_by_path()
    assert "permission denied" in skipped[target.relative_to(media_dir).as_posix()].reason


def test_subtitles_and_timestamps_are_stored(media_dir, tiny_settings, tiny_encoder):
    _index(media_dir, tiny_settings, tiny_encoder)
    store = IndexStore.open(media_dir / ".gridrank")
    videos = [m for m in store.catalog.media_by_path().values() if m.kind == "video"]
    with_subs = [m for m in videos if store.catalog.subtitles_of(m.id)]
    assert with_subs, "the sample has videos with .srt/.vtt sidecars"
    for video in videos:
        frames = store.catalog.frames_of(video.id)
        stamps = [f.timestamp for f in frames]
        assert len(frames) == min(tiny_settings.frames_per_video, frames[-1].frame_index + 1)
        assert stamps == sorted(stamps)
        assert 0 <= stamps[0] < stamps[-1] <= video.duration


def test_seconds_per_frame_sets_the_sample_count(media_dir, tiny_settings, tiny_encoder):
    settings = tiny_settings.model_copy(update={"seconds_per_frame": 0.5})
    _index(media_dir, settings, tiny_encoder)
    store = IndexStore.open(media_dir / ".gridrank")
    for video in (m for m in store.catalog.media_by_path().values() if m.kind == "video"):
        assert video.frame_count == pytest.approx(video.duration / 0.5, abs=1)


def test_a_failed_commit_leaves_the_previous_index_readable(media_dir, tiny_settings, tiny_encoder, monkeypatch):
    _index(media_dir, tiny_settings, tiny_encoder)
    index_dir = media_dir / ".gridrank"
    before = IndexStore.open(index_dir)
    counts, generation = before.catalog.counts(), before.info.generation
    Image.new("RGB", (20, 20), "white").save(media_dir / "later.jpg")

    from retrieval.store.catalog import Catalog

    def crash(self):
        raise OSError("disk gone")

    monkeypatch.setattr(Catalog, "commit", crash)  # FAISS files of the next generation are written, then this
    with pytest.raises(OSError):
        _index(media_dir, tiny_settings, tiny_encoder)
    monkeypatch.undo()
    assert (index_dir / f"frames-{generation + 1}.faiss").exists()
    after = _consistent(index_dir)
    assert (after.info.generation, after.catalog.counts()) == (generation, counts)
    assert _index(media_dir, tiny_settings, tiny_encoder).indexed == 1
    assert not (index_dir / f"frames-{generation - 1}.faiss").exists()
