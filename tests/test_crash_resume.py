"""kill -9 in the middle of an indexing run: the last commit stays readable and the next run resumes."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from PIL import Image

from indexer.pipeline import run_index
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


def _start_indexing(root, index_dir, stdout=subprocess.DEVNULL, extra_args=()):
    env = dict(os.environ, GRIDRANK_COMMIT_EVERY_S="0.05", GRIDRANK_BATCH_SIZE="2", GRIDRANK_WORKERS="1")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "index", str(root), "--tiny", "--index", str(index_dir),
                             *extra_args], env=env, stdout=stdout, stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def _make_images(root):
    root.mkdir()
    for i in range(N_IMAGES):
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
