"""The Milvus vector store (through milvus-lite): store names, filters as Milvus expressions, a commit
killed half way, a store that cannot be reached, a collection of another model, moving an index.

The search and index behaviour it shares with FAISS runs in test_search.py, test_search_features.py,
test_index_pipeline.py and test_crash_resume.py, once per store (conftest.STORES)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pytest
from pymilvus import MilvusClient

from indexer.pipeline import run_index
from retrieval.errors import ModelMismatchError, SettingsError
from retrieval.query.filters import milvus_expression
from retrieval.query.types import MediaFilter
from retrieval.settings import load_settings
from retrieval.store.index_meta import MILVUS_PREFIX_KEY, STORE_KEY
from retrieval.store.index_store import IndexStore
from retrieval.store.milvus_index import MilvusIndex, collection_names, identity_text
from retrieval.store.milvus_vectors import JOURNAL_FILE
from retrieval.store.store_spec import StoreSpec, parse_store

LITE = "milvus-lite:vectors.db"


def _lite_settings(store: str = LITE):
    return load_settings(None, profile="tiny", workers=0, vector_store=store)


def test_store_names_parse_and_bad_ones_say_which_forms_work(tmp_path):
    assert parse_store("faiss") == StoreSpec("faiss")
    assert parse_store("milvus-lite:v.db").uri(tmp_path) == str(tmp_path / "v.db")
    assert parse_store("milvus-lite:/data/v.db").uri(tmp_path) == "/data/v.db"
    assert parse_store("milvus://db.example.org:19530") == StoreSpec("milvus", "db.example.org:19530")
    assert parse_store("milvus://10.0.0.7:19530/").uri(tmp_path) == "http://10.0.0.7:19530"
    for bad, words in [("milvus://host", "faiss, milvus-lite:PATH"), ("milvus-lite:", "names no database file"),
                       ("milvus-lite:v.sqlite", "must end in .db"), ("milvus://h:70000", "1-65535"),
                       ("pinecone", "faiss, milvus-lite:PATH")]:
        with pytest.raises(SettingsError, match=words):
            parse_store(bad)
    with pytest.raises(SettingsError, match="vector_store"):
        load_settings(None, vector_store="milvus://nowhere")


def test_filters_become_milvus_expressions_that_match_names_literally(tmp_path):
    client = MilvusClient(str(tmp_path / "x.db"))
    index = MilvusIndex.create(client, "items", 4, "test", "x")
    paths = ["a_b/1.jpg", "axb/2.jpg", 'q"uote%/3.PNG', "q\"uote%/sub/4.mp4", "a_b.jpg"]
    fields = {i: (p, "video" if p.endswith("mp4") else "image") for i, p in enumerate(paths, start=1)}
    index.add(np.arange(1, 6), np.eye(5, 4, dtype=np.float32) + 0.1)
    index.flush(lambda ids: {i: _fields(*fields[i], "2024-06-0" + str(i)) for i in ids})

    def passing(f: MediaFilter) -> set[str]:
        found = index.search_among(np.ones(4, np.float32), 10, milvus_expression(f)).ids
        return {paths[i - 1] for i in found.tolist()}

    assert passing(MediaFilter(under="a_b")) == {"a_b/1.jpg"}  # '_' is no wildcard, and a_b.jpg is not inside
    assert passing(MediaFilter(under='q"uote%')) == {'q"uote%/3.PNG', 'q"uote%/sub/4.mp4'}
    assert passing(MediaFilter(under='q"uote%', kind="image")) == {'q"uote%/3.PNG'}
    assert passing(MediaFilter(exts=("png", "mp4"))) == {'q"uote%/3.PNG', 'q"uote%/sub/4.mp4'}
    assert passing(MediaFilter(after=dt.date(2024, 6, 2), before=dt.date(2024, 6, 4))) == {"axb/2.jpg", 'q"uote%/3.PNG'}
    client.close()


def _fields(path, kind, day):
    from retrieval.store.catalog import ItemFields, extension_of

    return ItemFields(path, kind, day, extension_of(path))


# A writer that dies (os._exit, like kill -9) after its commit reached Milvus and before the catalog committed.
_DIE_MID_COMMIT = """
import os, sys
from pathlib import Path
import numpy as np
from retrieval.store import milvus_vectors
from retrieval.store.index_store import IndexStore

index_dir = Path(sys.argv[1])
info = IndexStore.open(index_dir)
model, pretrained, dim, root = info.info.model, info.info.pretrained, info.info.dim, info.info.root
info.close()
store = IndexStore.open_for_writing(index_dir, root, model, pretrained, dim)
media = store.catalog.media_by_path()
store.begin()
store.delete_media(media[sys.argv[2]])
changed = media[sys.argv[3]]
frames = store.catalog.frames_of(changed.id)
store.put_media(changed, frames, np.full((len(frames), dim), 0.5, np.float32), [])
flush = milvus_vectors.MilvusVectors.flush
def flush_then_die(self, *args):
    flush(self, *args)
    os._exit(137)
milvus_vectors.MilvusVectors.flush = flush_then_die
store.commit()
"""


def test_a_commit_killed_after_milvus_and_before_the_catalog_is_undone_and_redone(media_dir, tiny_encoder):
    settings = _lite_settings()
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, settings, encoder=tiny_encoder)
    clean = IndexStore.open(index_dir)
    before = {p: clean.frames.vectors(np.array([f.vector_id for f in clean.catalog.frames_of(m.id)]))
              for p, m in clean.catalog.media_by_path().items()}
    clean.close()
    photos = sorted(p for p in before if p.endswith(".jpg"))
    deleted, changed = photos[0], photos[1]

    died = subprocess.run([sys.executable, "-c", _DIE_MID_COMMIT, str(index_dir), deleted, changed],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert died.returncode == 137, died.stderr[-2000:]
    assert (index_dir / JOURNAL_FILE).is_file()

    # A search opens it with no writer around: the half commit is undone first. The two items it
    # touched leave the catalog and Milvus alike; everything else is as it was.
    store = IndexStore.open(index_dir)
    assert not (index_dir / JOURNAL_FILE).exists()
    counts, media = store.catalog.counts(), store.catalog.media_by_path()
    assert len(store.frames) == counts.frames and len(store.videos) == counts.videos
    assert set(media) == set(before) - {deleted, changed}
    for path, m in media.items():
        assert np.allclose(store.frames.vectors(np.array([f.vector_id for f in store.catalog.frames_of(m.id)])),
                           before[path])
    store.close()

    # The next run indexes them again: the same index as before, without duplicates.
    summary = run_index(media_dir, index_dir, settings, encoder=tiny_encoder)
    assert summary.indexed == 2
    store = IndexStore.open(index_dir)
    ids = store.frames.ids()
    assert len(ids) == len(set(ids.tolist())) == store.catalog.counts().frames
    again = {p: store.frames.vectors(np.array([f.vector_id for f in store.catalog.frames_of(m.id)]))
             for p, m in store.catalog.media_by_path().items()}
    assert sorted(again) == sorted(before) and all(np.allclose(again[p], before[p], atol=1e-4) for p in before)
    store.close()


def test_an_unreachable_milvus_is_one_line_naming_it_and_leaves_no_index(run_cli, media_dir):
    index_dir = media_dir.parent / "idx"
    result = run_cli("index", media_dir, "--tiny", "--index", index_dir, "--store", "milvus://127.0.0.1:9")
    assert result.code == 2 and "Traceback" not in result.err
    [message] = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert "milvus://127.0.0.1:9" in message and "start it" in message and "docs/milvus.md" in message
    assert not index_dir.exists()


def test_a_collection_of_another_model_or_dimension_is_refused_by_name(media_dir, tiny_encoder):
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, _lite_settings(), encoder=tiny_encoder)
    store = IndexStore.open(index_dir)
    prefix, dim = store.catalog.get_meta(MILVUS_PREFIX_KEY), store.info.dim
    store.close()
    frames = collection_names(prefix)[0]
    client = MilvusClient(str(index_dir / "vectors.db"))
    for other_model, other_dim in (("ViT-L-14", dim), ("gridrank-tiny-clip", 32)):
        client.drop_collection(frames)  # what another index, or another tool, made under this name
        MilvusIndex.create(client, frames, other_dim, identity_text(other_model, "random-init", other_dim), LITE)
        with pytest.raises(ModelMismatchError, match=f"collection {frames} in {LITE} holds .*{other_model}"):
            IndexStore.open(index_dir)
    client.close()


def test_an_index_keeps_its_store_and_a_rebuild_moves_it(media_dir, tiny_settings, tiny_encoder):
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, tiny_settings, encoder=tiny_encoder)  # FAISS
    with pytest.raises(SettingsError, match="keeps its vectors in faiss, not milvus-lite:vectors.db: .* --rebuild"):
        run_index(media_dir, index_dir, _lite_settings(), encoder=tiny_encoder)

    def state():
        store = IndexStore.open(index_dir)
        try:
            counts = store.catalog.counts()
            assert len(store.frames) == counts.frames
            return store.catalog.get_meta(STORE_KEY), store.catalog.get_meta(MILVUS_PREFIX_KEY), counts.frames
        finally:
            store.close()

    run_index(media_dir, index_dir, _lite_settings(), encoder=tiny_encoder, rebuild=True)
    store_text, first_prefix, frames = state()
    assert (store_text, frames > 0) == (LITE, True)
    run_index(media_dir, index_dir, tiny_settings, encoder=tiny_encoder)  # no --store: the index's own
    assert not list(index_dir.glob("*.faiss"))  # the FAISS files went with the next writer
    run_index(media_dir, index_dir, _lite_settings(), encoder=tiny_encoder, rebuild=True)  # into new collections
    _, second_prefix, again = state()
    assert second_prefix != first_prefix and again == frames
    client = MilvusClient(str(index_dir / "vectors.db"))
    assert sorted(client.list_collections()) == sorted(collection_names(second_prefix))  # the old ones dropped
    client.close()
    run_index(media_dir, index_dir, load_settings(None, profile="tiny", workers=0, vector_store="faiss"),
              encoder=tiny_encoder, rebuild=True)
    assert state() == ("faiss", None, frames)


def test_an_interrupted_rebuild_into_milvus_drops_its_collections_and_keeps_the_old_index(media_dir, tiny_settings,
                                                                                           tiny_encoder):
    index_dir = media_dir / ".gridrank"
    run_index(media_dir, index_dir, tiny_settings, encoder=tiny_encoder)  # FAISS
    stops = iter([False, False, True])  # a Ctrl-C / stop request part way
    summary = run_index(media_dir, index_dir, _lite_settings(), encoder=tiny_encoder, rebuild=True,
                        should_stop=lambda: next(stops, True))
    assert summary.interrupted
    store = IndexStore.open(index_dir)
    assert store.catalog.get_meta(STORE_KEY) == "faiss" and len(store.frames) == store.catalog.counts().frames > 0
    store.close()
    assert not (index_dir / JOURNAL_FILE).exists()
    client = MilvusClient(str(index_dir / "vectors.db"))
    assert client.list_collections() == []
    client.close()
