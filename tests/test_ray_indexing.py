"""`gridrank index --ray`: decode + embed on a local Ray instance write the same index as a local run."""

import os
import shutil
import signal
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import run_index
from retrieval.store.index_store import IndexStore

from sample_media import BROKEN
from test_crash_resume import _make_images, _signal_after_generation, _start_indexing

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e '.[dev,distributed]'")


@pytest.fixture(scope="module")
def ray_session(isolated_environment):
    """One small local Ray instance for the module: starting one costs seconds."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def media_with_broken(media_dir):
    shutil.copytree(BROKEN, media_dir / "broken")
    return media_dir


def _catalog(index_dir):
    """Everything a search or `gridrank status` reads, as comparable values, and the vectors by id."""
    store = IndexStore.open(index_dir)
    media = store.catalog.media_by_path()
    frames = {path: store.catalog.frames_of(m.id) for path, m in media.items()}
    subtitles = {path: store.catalog.subtitles_of(m.id) for path, m in media.items()}
    vectors = {f.vector_id: store.frames.reconstruct(f.vector_id) for fs in frames.values() for f in fs}
    pooled = {m.id: store.videos.reconstruct(m.id) for m in media.values() if m.kind == "video"}
    rows = (media, frames, subtitles, store.catalog.skipped_by_path(), store.catalog.counts())
    assert len(store.frames) == len(vectors)
    assert len(store.videos) == len(pooled)
    return rows, vectors, pooled


def _assert_same_index(local_dir, ray_dir):
    local_rows, local_vectors, local_pooled = _catalog(local_dir)
    ray_rows, ray_vectors, ray_pooled = _catalog(ray_dir)
    assert ray_rows == local_rows  # same ids, paths, hashes, frames, timestamps, subtitles, skip reasons
    assert ray_vectors.keys() == local_vectors.keys()
    assert ray_pooled.keys() == local_pooled.keys()
    for vid, vector in local_vectors.items():
        np.testing.assert_allclose(ray_vectors[vid], vector, atol=1e-5)
    for mid, vector in local_pooled.items():
        np.testing.assert_allclose(ray_pooled[mid], vector, atol=1e-5)


def test_ray_run_writes_the_same_index_as_a_local_run_then_updates_it_the_same_way(
        ray_session, media_with_broken, tmp_path, tiny_settings, tiny_encoder):
    root, local_dir, ray_dir = media_with_broken, tmp_path / "local", tmp_path / "ray"
    settings = tiny_settings.model_copy(update={"batch_size": 8})  # several Ray batches, several forwards
    local = run_index(root, local_dir, settings, encoder=tiny_encoder)
    on_ray = run_index(root, ray_dir, settings, encoder=tiny_encoder, ray_address="local")
    assert on_ray == replace(local, seconds=on_ray.seconds)
    assert on_ray.skipped >= 6
    assert on_ray.indexed >= 20
    _assert_same_index(local_dir, ray_dir)
    skipped = IndexStore.open(ray_dir).catalog.skipped_by_path()
    assert "empty" in skipped["broken/zero_bytes.jpg"].reason
    assert "cannot decode video" in skipped["broken/corrupt.mp4"].reason

    # The incremental plan is the same too: changed, touched, removed and new files.
    photos = sorted(p.relative_to(root).as_posix() for p in root.glob("photos/*.jpg"))
    Image.new("RGB", (64, 48), "purple").save(root / photos[0])
    os.utime(root / photos[1], ns=(1, 1_000_000_000))
    (root / photos[2]).unlink()
    Image.new("RGB", (30, 30), "orange").save(root / "new.png")
    local = run_index(root, local_dir, settings, encoder=tiny_encoder)
    on_ray = run_index(root, ray_dir, settings, encoder=tiny_encoder, ray_address="local")
    assert (on_ray.indexed, on_ray.touched, on_ray.removed, on_ray.unchanged) == \
        (local.indexed, local.touched, local.removed, local.unchanged) == (2, 1, 1, local.unchanged)
    _assert_same_index(local_dir, ray_dir)


def test_cli_index_with_ray(ray_session, media_dir, run_cli):
    result = run_cli("index", media_dir, "--tiny", "--ray", "local")
    assert result.code == 0, result.err
    counts = IndexStore.open(media_dir / ".gridrank").catalog.counts()
    assert counts.images > 0
    assert counts.videos > 0
    assert f"{counts.images + counts.videos} indexed" in result.out
    assert run_cli("search", "a red ball", "--k", "3", "--json").code == 0
    again = run_cli("index", media_dir, "--tiny", "--ray", "local")  # nothing to do: no dataset at all
    assert again.code == 0
    assert f"0 indexed, {counts.images + counts.videos} unchanged" in again.out


@pytest.mark.slow
def test_ctrl_c_during_a_ray_run_commits_the_work_done_and_exits_130(tmp_path, tiny_settings, tiny_encoder):
    # Its own `--ray local` instance in a child process, like a user's run.
    root = tmp_path / "media"
    _make_images(root)
    index_dir = tmp_path / "index"
    proc = _start_indexing(root, index_dir, stdout=subprocess.PIPE, extra_args=("--ray", "local"))
    _signal_after_generation(proc, index_dir, 2, sig=signal.SIGINT)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert "run the same command again to resume" in out
    store = IndexStore.open(index_dir)
    committed = store.catalog.counts().images
    assert committed == len(store.frames) > 0
    assert run_index(root, index_dir, tiny_settings, encoder=tiny_encoder).unchanged == committed
