"""kill -9 in the middle of an indexing run: the last commit stays readable and the next run resumes."""

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import run_index
from retrieval.errors import IndexNotFoundError
from retrieval.settings import load_settings
from retrieval.store.index_store import CATALOG_FILE, IndexStore

N_IMAGES = 120


def _generation(index_dir) -> int:
    try:
        with sqlite3.connect(f"file:{index_dir / CATALOG_FILE}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else -1
    except sqlite3.Error:
        return -1


def _default_sigint() -> None:
    # A shell that starts jobs in the background leaves SIGINT ignored for them; undo that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_indexing(root, index_dir, stdout=subprocess.DEVNULL, extra_args=(), env=None):
    env = {**os.environ, "GRIDRANK_COMMIT_EVERY_S": "0.05", "GRIDRANK_BATCH_SIZE": "2", "GRIDRANK_WORKERS": "1",
           **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "index", str(root), "--tiny", "--index", str(index_dir),
                             *extra_args], env=env, stdout=stdout, stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def _make_images(root, count: int = N_IMAGES):
    root.mkdir()
    for i in range(count):
        Image.new("RGB", (96, 64), (i * 2 % 256, i * 7 % 256, i * 13 % 256)).save(root / f"img_{i:03d}.jpg")


def _signal_after_generation(proc, index_dir, generation: int, sig=signal.SIGKILL, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while _generation(index_dir) < generation:
        if proc.poll() is not None:
            pytest.fail(f"indexing ended before the signal: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "indexing made no progress"
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)


@pytest.mark.slow
def test_kill_9_then_resume(tmp_path, tiny_settings, tiny_encoder):
    root = tmp_path / "media"
    _make_images(root)
    index_dir = tmp_path / "index"

    done = 0
    for commits_before_kill in (2, 3):
        proc = _start_indexing(root, index_dir)
        _signal_after_generation(proc, index_dir, max(_generation(index_dir), 0) + commits_before_kill)
        proc.stderr.close()
        store = IndexStore.open(index_dir)  # the killed run's last commit is readable
        counts = store.catalog.counts()
        assert len(store.frames) == counts.frames == counts.images  # catalog and vectors agree: no half commit
        assert done <= counts.images < N_IMAGES
        done = counts.images
        store.catalog.close()

    summary = run_index(root, index_dir, tiny_settings, encoder=tiny_encoder)
    assert summary.indexed == N_IMAGES - done
    assert summary.unchanged == done
    store = IndexStore.open(index_dir)
    assert store.catalog.counts().images == N_IMAGES == len(store.frames)
    assert sorted(store.catalog.media_by_path()) == sorted(f"img_{i:03d}.jpg" for i in range(N_IMAGES))


@pytest.mark.slow
def test_ctrl_c_commits_the_work_done_and_exits_130(tmp_path, tiny_settings, tiny_encoder):
    root = tmp_path / "media"
    _make_images(root)
    index_dir = tmp_path / "index"
    proc = _start_indexing(root, index_dir, stdout=subprocess.PIPE)
    _signal_after_generation(proc, index_dir, 2, sig=signal.SIGINT)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 130
    assert "interrupted" in out
    assert "run the same command again to resume" in out
    indexed = int(out.split(" indexed")[0].replace(",", ""))
    store = IndexStore.open(index_dir)
    committed = store.catalog.counts().images
    assert committed == len(store.frames) >= indexed > 0
    assert run_index(root, index_dir, tiny_settings, encoder=tiny_encoder).unchanged == committed


# -- kill -9 at random points: normal runs, a forced IVF index, and --rebuild ---------------------

MODES = {
    "normal": ({}, ()),
    "forced-ivf": ({"GRIDRANK_INDEX_FACTORY": "IVF4,SQfp16"}, ()),  # the tiny model is 64-d
    "rebuild": ({}, ("--rebuild",)),
    "milvus-lite": ({"GRIDRANK_VECTOR_STORE": "milvus-lite:vectors.db"}, ()),  # upserts by id: resumes without duplicates
}


def _wal_size(index_dir) -> int:
    wal = index_dir / f"{CATALOG_FILE}-wal"
    return wal.stat().st_size if wal.exists() else 0


def _snapshot(index_dir) -> dict:
    """What a searcher sees: each path's vectors, the model, and that catalog and vector store agree."""
    try:
        store = IndexStore.open(index_dir)
    except IndexNotFoundError:  # killed before the new index's first commit: there is no index yet
        return {"model": None, "generation": -1, "vectors": {}}
    try:
        counts = store.catalog.counts()
        assert len(store.frames) == counts.frames  # catalog and vectors agree: no half commit
        media = store.catalog.media_by_path()
        vectors = {path: store.frames.vectors(np.array([f.vector_id for f in store.catalog.frames_of(m.id)]))
                   for path, m in media.items()}
        return {"model": store.info.model, "generation": store.info.generation, "vectors": vectors}
    finally:
        store.close()  # a milvus-lite file is open to one process at a time


def _indexed(tmp_path, settings, encoder, count: int):
    """`count` images indexed in tmp_path: (media root, index folder, what a searcher sees of it)."""
    root, index_dir = tmp_path / "media", tmp_path / "index"
    _make_images(root, count)
    run_index(root, index_dir, settings, encoder=encoder)
    return root, index_dir, _snapshot(index_dir)


def _same_vectors(got: dict, want: dict) -> bool:
    # Batches of another size change the last float bits, and a forced SQfp16 index rounds them to float16.
    return sorted(got) == sorted(want) and all(np.allclose(got[p], want[p], atol=1e-3) for p in want)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(MODES))
def test_kill_9_at_random_points_leaves_a_consistent_index(tmp_path, tiny_settings, tiny_encoder, monkeypatch, mode):
    env, args = MODES[mode]
    rng = random.Random(f"kill-{mode}")
    root = tmp_path / "media"
    _make_images(root)
    clean_dir = tmp_path / "clean"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run_index(root, clean_dir, load_settings(None, profile="tiny", workers=0), encoder=tiny_encoder)
    clean = _snapshot(clean_dir)

    index_dir = tmp_path / "index"
    before = None
    if mode == "rebuild":  # an older, smaller index is there: half the images
        half = tmp_path / "half"
        half.mkdir()
        for path in sorted(root.iterdir())[: N_IMAGES // 2]:
            shutil.copy(path, half / path.name)
        run_index(half, index_dir, tiny_settings, encoder=tiny_encoder)
        before = _snapshot(index_dir)

    for _ in range(2):
        proc = _start_indexing(root, index_dir, extra_args=args, env=env)
        wal_at_start, generation = _wal_size(index_dir), _generation(index_dir)
        deadline = time.monotonic() + 120
        # Wait until it writes (the WAL grows, or a commit lands), then kill at a random moment.
        while _wal_size(index_dir) <= wal_at_start and _generation(index_dir) <= generation:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "indexing made no progress"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
        state = _snapshot(index_dir)  # readable, catalog and vectors agree
        if mode == "rebuild":
            finished = _same_vectors(state["vectors"], clean["vectors"])
            assert finished or state == before or (_same_vectors(state["vectors"], before["vectors"])
                                                   and state["generation"] == before["generation"])
        else:
            assert set(state["vectors"]) <= set(clean["vectors"])

    # The next run finishes the job: the same index as a clean run.
    finish = subprocess.run([sys.executable, "-m", "app.cli", "index", str(root), "--tiny", "--index", str(index_dir),
                             *args], env=dict(os.environ, **env), capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert _same_vectors(_snapshot(index_dir)["vectors"], clean["vectors"])


@pytest.mark.slow
def test_a_rebuild_refused_by_a_running_writer_changes_nothing(tmp_path, tiny_settings, tiny_encoder):
    root, index_dir, before = _indexed(tmp_path, tiny_settings, tiny_encoder, 4)
    model, pretrained = tiny_settings.model_identity
    holder = subprocess.Popen(  # another `gridrank index` in the middle of its run: it holds the writer's lock
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from retrieval.store.index_store import IndexStore; "
         f"store = IndexStore.open_for_writing(Path({str(index_dir)!r}), Path({str(root.resolve())!r}), "
         f"{model!r}, {pretrained!r}, {tiny_encoder.dim}); print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = subprocess.run([sys.executable, "-m", "app.cli", "index", str(root), "--tiny", "--index",
                                  str(index_dir), "--rebuild"], capture_output=True, text=True)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert refused.returncode == 2
    assert "another `gridrank index` is writing" in refused.stderr
    after = _snapshot(index_dir)
    assert after["generation"] == before["generation"]
    assert _same_vectors(after["vectors"], before["vectors"])


def test_a_rebuild_with_another_root_replaces_the_index_in_one_commit(tmp_path, tiny_settings, tiny_encoder):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, count in ((first, 3), (second, 5)):
        folder.mkdir()
        for i in range(count):
            Image.new("RGB", (64, 64), (i * 40, 10, 200 - i * 30)).save(folder / f"{folder.name}_{i}.jpg")
    index_dir = tmp_path / "index"
    run_index(first, index_dir, tiny_settings, encoder=tiny_encoder)
    generation = _generation(index_dir)
    summary = run_index(second, index_dir, tiny_settings, encoder=tiny_encoder, rebuild=True)
    assert summary.replaced
    assert summary.indexed == 5
    assert _generation(index_dir) == generation + 1  # one commit for the whole rebuild
    store = IndexStore.open(index_dir)
    assert store.info.root == second.resolve()
    assert sorted(store.catalog.media_by_path()) == [f"second_{i}.jpg" for i in range(5)]
    assert len(store.frames) == 5
    store.catalog.close()


def test_a_stopped_rebuild_keeps_the_old_index(tmp_path, tiny_settings, tiny_encoder):
    root, index_dir, before = _indexed(tmp_path, tiny_settings, tiny_encoder, 6)
    (root / "img_000.jpg").unlink()
    summary = run_index(root, index_dir, tiny_settings, encoder=tiny_encoder, rebuild=True, should_stop=lambda: True)
    assert summary.interrupted
    assert summary.replaced
    after = _snapshot(index_dir)
    assert after["generation"] == before["generation"]
    assert _same_vectors(after["vectors"], before["vectors"])  # img_000 is still there: nothing was committed


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB filesystem (tmpfs), where the kernel lets this test mount one; else the test is skipped."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_exit_2_and_the_next_run_resumes(tmp_path, small_disk):
    root = tmp_path / "media"
    _make_images(root)
    index_dir = small_disk / "index"
    full = _start_indexing(root, index_dir)
    _, err = full.communicate(timeout=300)
    err = err.decode()
    assert full.returncode == 2, err[-2000:]
    assert "cannot write the index in" in err
    assert "free some disk space" in err
    assert "Traceback" not in err
    store = IndexStore.open(index_dir)  # the last commit is readable, catalog and vectors agree
    committed = store.catalog.counts().images
    assert committed == len(store.frames) < N_IMAGES
    store.catalog.close()

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)  # space freed
    resumed = _start_indexing(root, index_dir)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    resumed.stderr.close()
    store = IndexStore.open(index_dir)
    assert store.catalog.counts().images == N_IMAGES == len(store.frames)
    store.catalog.close()


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits to be read


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel ends workers with their parent on Linux")
def test_decode_workers_end_with_a_killed_indexer(tmp_path):
    root = tmp_path / "media"
    _make_images(root)
    index_dir = tmp_path / "index"
    proc = _start_indexing(root, index_dir, env={"GRIDRANK_WORKERS": "2"})
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no decode workers started"
        found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in found]
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    proc.stderr.close()
    time.sleep(0.5)  # torch's own watchdog takes seconds; the kernel's parent-death signal is immediate
    assert [pid for pid in workers if _alive(pid)] == []
