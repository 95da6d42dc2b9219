"""Index types on real sample media (tiny profile): a forced factory, status, background rebuild."""

import json
import threading

import numpy as np
import pytest

from indexer.pipeline import run_index
from retrieval.store.index_rebuild import rebuild_if_needed
from retrieval.store.index_store import IndexStore
from retrieval.query.types import Query
from retrieval.query.search import Searcher


def test_a_forced_factory_indexes_searches_filters_and_reports_its_recall(run_cli, media_dir, monkeypatch):
    monkeypatch.setenv("GRIDRANK_INDEX_FACTORY", "HNSW16,SQfp16")
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0, result.err
    assert "frame index rebuilt as HNSW16,SQfp16, recall@10" in result.out

    for kind in ("image", "video"):
        hits = json.loads(run_cli("search", "a dog", "--kind", kind, "--k", "3", "--json").out)["hits"]
        assert hits
        assert all(h["kind"] == kind for h in hits)

    status = json.loads(run_cli("status", "--json").out)["frame_index"]
    assert status["factory"] == "HNSW16,SQfp16"
    assert status["ef_search"] >= 16
    assert 0.0 < status["recall_at_10"] <= 1.0
    assert status["recall_queries"] > 0
    assert "HNSW16,SQfp16: recall@10" in run_cli("status").out

    store = IndexStore.open(media_dir / ".gridrank")
    assert store.frames.factory_family == "hnsw"
    vid = int(store.frames.ids()[0])
    assert store.frames.reconstruct(vid).shape == (store.info.dim,)

    # the index stays HNSW when the collection changes: removal works (by rebuilding the graph)
    next(media_dir.rglob("*.jpg")).unlink()
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0
    assert "1 removed" in result.out
    assert "rebuilt" not in result.out
    assert len(IndexStore.open(media_dir / ".gridrank").frames) < len(store.frames)


def test_the_refined_fast_scan_index_answers_searches_and_follows_changes(run_cli, media_dir, monkeypatch):
    monkeypatch.setenv("GRIDRANK_INDEX_FACTORY", "IVF4,PQ32x4fs,Refine(SQ8)")  # the tiny model is 64-d
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0, result.err
    assert "frame index rebuilt as IVF4,PQ32x4fs,Refine(SQ8)" in " ".join(result.out.split())
    store = IndexStore.open(media_dir / ".gridrank")
    assert store.frames.factory_family == "ivf"
    assert store.frames.nlist == 4
    photo = next(path for path, m in store.catalog.media_by_path().items() if m.kind == "image")
    like = json.loads(run_cli("search", "--like", photo, "--k", "3", "--json").out)["hits"]
    assert like[0]["path"].endswith(photo)
    assert len(like) == 3  # its vector read back from the SQ8 codes
    for kind in ("image", "video"):
        hits = json.loads(run_cli("search", "a dog", "--kind", kind, "--k", "3", "--json").out)["hits"]
        assert hits
        assert all(h["kind"] == kind for h in hits)
    before = len(store.frames)
    next(media_dir.rglob("*.jpg")).unlink()
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 0
    assert "1 removed" in result.out
    assert "rebuilt" not in result.out
    after = IndexStore.open(media_dir / ".gridrank")
    assert len(after.frames) == before - 1
    assert after.frame_index_info().factory == "IVF4,PQ32x4fs,Refine(SQ8)"


def test_a_refined_index_rebuilt_with_more_lists_keeps_its_stored_vectors_bit_for_bit(media_dir, tiny_settings,
                                                                                      tiny_encoder):
    index_dir = media_dir / ".gridrank"
    first = tiny_settings.model_copy(update={"index_factory": "IVF4,PQ32x4fs,Refine(SQ8)"})
    run_index(media_dir, index_dir, first, encoder=tiny_encoder)
    before = IndexStore.open(index_dir).frames
    ids = np.sort(before.ids())
    writer = IndexStore.open_for_writing(index_dir, media_dir.resolve(), *tiny_settings.model_identity,
                                         tiny_encoder.dim)
    try:
        info = rebuild_if_needed(writer, tiny_settings.model_copy(update={"index_factory": "IVF8,PQ32x4fs,Refine(SQ8)"}))
    finally:
        writer.close()
    assert info is not None
    assert info.factory == "IVF8,PQ32x4fs,Refine(SQ8)"
    after = IndexStore.open(index_dir).frames
    assert after.nlist == 8
    assert np.array_equal(np.sort(after.ids()), ids)
    assert np.array_equal(after.vectors(ids), before.vectors(ids))


def test_flat_status_says_exact_by_construction(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    status = run_cli("status")
    assert "Flat: exact search (recall@10 1.0 by construction)" in status.out
    assert "pending" not in status.out
    assert json.loads(run_cli("status", "--json").out)["pending_rebuild"] is None


def test_status_names_a_rebuild_the_next_index_run_will_do(run_cli, media_dir, monkeypatch):
    assert run_cli("index", media_dir, "--tiny").code == 0
    monkeypatch.setenv("GRIDRANK_INDEX_FACTORY", "IVF4,SQfp16")  # a setting changed after the run
    status = run_cli("status")
    assert "next `gridrank index` rebuilds the frame index as IVF4,SQfp16" in " ".join(status.out.split())
    assert "searches use Flat until then" in " ".join(status.out.split())
    pending = json.loads(run_cli("status", "--json").out)["pending_rebuild"]
    assert pending["factory"] == "IVF4,SQfp16"
    assert pending["forced"] is True
    assert "rebuilt as IVF4,SQfp16" in run_cli("index", media_dir, "--tiny").out
    assert json.loads(run_cli("status", "--json").out)["pending_rebuild"] is None


def test_a_bad_factory_setting_exits_2_naming_the_setting(run_cli, media_dir, monkeypatch):
    monkeypatch.setenv("GRIDRANK_INDEX_FACTORY", "IVF4,LSH")
    result = run_cli("index", media_dir, "--tiny")
    assert result.code == 2
    assert "index_factory" in result.err
    assert "IVF4096,SQfp16" in result.err


def test_searches_answer_during_a_rebuild_and_use_the_new_index_after_the_switch(media_dir, tiny_settings,
                                                                                 tiny_encoder):
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, tiny_settings, encoder=tiny_encoder)
    searcher = Searcher.open(index_dir, tiny_settings, encoder=tiny_encoder)
    query = Query("a red car")
    before = searcher.search(query, k=5).hits
    assert before
    assert searcher.store.frames.factory_family == "flat"

    writer = IndexStore.open_for_writing(index_dir, media_dir.resolve(), *tiny_settings.model_identity,
                                         tiny_encoder.dim)
    training, searched = threading.Event(), threading.Event()
    stages: list[str] = []

    def on_stage(stage: str) -> None:
        stages.append(stage)
        if stage.startswith("training"):
            training.set()
            assert searched.wait(60), "the search during the rebuild did not answer"

    forced = tiny_settings.model_copy(update={"index_factory": "IVF4,Flat"})
    rebuild = threading.Thread(target=lambda: stages.append(rebuild_if_needed(writer, forced, on_stage)))
    rebuild.start()
    try:
        assert training.wait(60)
        during = searcher.search(query, k=5).hits  # the writer is training: the committed index answers
        assert [h.media_id for h in during] == [h.media_id for h in before]
        assert searcher.store.frames.factory_family == "flat"
        searched.set()
        rebuild.join(60)
    finally:
        searched.set()
        writer.close()
    info = stages[-1]
    assert info.factory == "IVF4,Flat"
    assert info.recall_queries > 0
    assert 0 < info.recall_at_10 <= 1
    assert any(s.startswith("measuring recall") for s in stages[:-1])

    after = searcher.search(query, k=5).hits  # refreshes to the new generation
    frames = searcher.store.frames
    assert frames.factory_family == "ivf"
    assert frames.nlist == 4
    assert after
    assert searcher.store.frame_index_info() == info
    assert len(frames) == len(IndexStore.open(index_dir).frames)
    assert np.allclose(frames.vectors(frames.ids()[:2]), [frames.reconstruct(int(v)) for v in frames.ids()[:2]])


def test_an_interrupted_rebuild_leaves_the_committed_index_and_the_next_run_finishes_it(media_dir, tiny_settings,
                                                                                       tiny_encoder):
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, tiny_settings, encoder=tiny_encoder)
    generation = IndexStore.open(index_dir).info.generation
    forced = tiny_settings.model_copy(update={"index_factory": "IVF4,SQfp16"})
    writer = IndexStore.open_for_writing(index_dir, media_dir.resolve(), *tiny_settings.model_identity,
                                         tiny_encoder.dim)

    def interrupt(stage: str) -> None:
        if stage.startswith("measuring"):
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            rebuild_if_needed(writer, forced, interrupt)
    finally:
        writer.close()
    store = IndexStore.open(index_dir)
    assert store.info.generation == generation
    assert store.frame_index_info().factory == "Flat"
    assert store.frames.factory_family == "flat"
    assert len(store.frames) > 0

    summary = run_index(media_dir, index_dir, forced, encoder=tiny_encoder)
    assert summary.rebuilt is not None
    assert summary.rebuilt.factory == "IVF4,SQfp16"
    assert IndexStore.open(index_dir).frames.factory_family == "ivf"


def test_a_run_that_outgrows_its_index_type_rebuilds_at_a_commit_and_adds_the_rest_there(media_dir, tiny_settings,
                                                                                        tiny_encoder):
    index_dir = media_dir / ".gridrank"
    # Commit after every item; IVF8 needs 8 vectors, so the first commits stay flat.
    settings = tiny_settings.model_copy(update={"index_factory": "IVF8,Flat", "commit_every_s": 1e-9,
                                                "workers": 0})
    seen: list[tuple[int, int, str]] = []
    summary = run_index(media_dir, index_dir, settings, encoder=tiny_encoder,
                        on_progress=lambda p: seen.append((p.done, p.total, p.current)))
    trained_at = [done for done, _, current in seen if current.startswith("frame index: training IVF8,Flat")]
    assert len(trained_at) == 1
    assert 0 < trained_at[0] < summary.indexed  # mid-run, once
    assert summary.rebuilt is not None
    assert summary.rebuilt.factory == "IVF8,Flat"
    store = IndexStore.open(index_dir)
    assert store.frames.factory_family == "ivf"
    assert store.frame_index_info().factory == "IVF8,Flat"
    catalogued = {f.vector_id for m in store.catalog.media_by_path().values() for f in store.catalog.frames_of(m.id)}
    assert set(store.frames.ids().tolist()) == catalogued  # what came after the rebuild went into the IVF index
