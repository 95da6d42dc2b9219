"""One request type validated where it is built, one error base, one method registry, the catalog's schema check."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from retrieval.errors import (BadMediaError, BadQueryError, GridrankError, IndexSchemaError, SettingsError,
                              UnknownItemError)
from retrieval.models.profiles import PROFILES
from retrieval.query.request import SearchRequest
from retrieval.rerank.windows import MAX_RERANK_K
from retrieval.query.types import Query, QueryTerm
from retrieval.rerank.methods import FUSIONS, RERANKERS, fusion_spec, reranker_spec
from retrieval.rerank.names import rerankers_for
from retrieval.settings import load_settings
from retrieval.store.catalog import SCHEMA_VERSION, Catalog
from retrieval.store import index_meta
from retrieval.store.index_store import CATALOG_FILE, IndexStore
from retrieval.vectors import l2_normalize

TEXT = Query("a cat")


# -- the request checks itself -------------------------------------------------------------------


def test_a_valid_request_keeps_its_values():
    request = SearchRequest(TEXT, k=5, kind="video", rerank="sgrid", rerank_k=12, fuse="rrf", min_score=0.2, page=3)
    assert (request.k, request.kind, request.rerank, request.fuse, request.page) == (5, "video", "sgrid", "rrf", 3)
    assert request.needs_model
    assert not request.model_fusion
    assert SearchRequest(TEXT, kind="video", fuse="vic").model_fusion


@pytest.mark.parametrize("fields, message", [
    (dict(k=0), "k must be between 1 and"),
    (dict(k=2.5), "k must be a whole number"),
    (dict(k=True), "k must be a whole number"),
    (dict(page=0), "page must be at least 1"),
    (dict(kind="audio"), "kind must be one of any, image, video"),
    (dict(rerank="magic"), "unknown rerank method 'magic'"),
    (dict(fuse="magic", kind="video"), "unknown fusion 'magic'"),
    (dict(fuse="rrf"), "use it with kind video"),
    (dict(rerank="grid", rerank_k=1), "rerank_k"),
    (dict(rerank="grid", rerank_k=MAX_RERANK_K + 1), "rerank_k"),
    (dict(min_score=1.5), "minimum score must be between -1 and 1"),
    (dict(min_score=float("nan")), "minimum score must be between -1 and 1"),
])
def test_a_bad_request_is_refused_where_it_is_built(fields, message):
    with pytest.raises(BadQueryError, match=message):
        SearchRequest(TEXT, **fields)


@pytest.mark.parametrize("query", [Query(terms=(QueryTerm(1.0, text="beach"),)), Query(like=7)])
def test_mixed_and_more_like_this_queries_are_not_reranked(query):
    with pytest.raises(BadQueryError, match="not reranked"):
        SearchRequest(query, rerank="grid")
    with pytest.raises(BadQueryError, match="not reranked"):
        SearchRequest(query, kind="video", fuse="vic")
    assert SearchRequest(query, kind="video", fuse="combsum").fuse == "combsum"  # a score fusion needs no model


# -- one error base ------------------------------------------------------------------------------


def test_user_errors_share_one_base_and_keep_their_builtin_kind():
    for error in (BadQueryError, UnknownItemError, BadMediaError, SettingsError, IndexSchemaError):
        assert issubclass(error, GridrankError)
    assert issubclass(UnknownItemError, ValueError)  # `except ValueError` around a parser still catches it
    assert not issubclass(ValueError, GridrankError)


def test_a_user_error_is_one_line_and_exit_2_a_bug_is_a_traceback_and_exit_1(run_cli, monkeypatch):
    def refuse(*args, **kwargs):
        raise IndexSchemaError("the index needs a rebuild: run `gridrank index ROOT --rebuild`")

    monkeypatch.setattr(index_meta, "open_index_catalog", refuse)
    result = run_cli("status", "--index", "/nowhere")
    assert result.code == 2
    assert result.err.strip().splitlines() == ["error: the index needs a rebuild: run `gridrank index ROOT --rebuild`"]

    def bug(*args, **kwargs):
        raise ValueError("an internal mistake")

    monkeypatch.setattr(index_meta, "open_index_catalog", bug)
    with pytest.raises(ValueError, match="an internal mistake"):  # not turned into a user's error: a traceback
        run_cli("status", "--index", "/nowhere")


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: tmp / "missing.jpg", "cannot read the image"),
    (lambda tmp: _write(tmp / "notes.jpg", b"not a picture"), "not an image"),
])
def test_a_query_image_that_cannot_be_used_names_the_file(run_cli, media_dir, tmp_path, make, message):
    assert run_cli("index", media_dir, "--tiny").code == 0
    path = make(tmp_path)
    result = run_cli("search", "--image", path, "--index", media_dir / ".gridrank")
    assert result.code == 2
    assert message in result.err
    assert str(path.name) in result.err


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# -- one registry --------------------------------------------------------------------------------


def test_the_cli_offers_exactly_the_registered_methods(run_cli):
    import app.cli

    assert [c.value for c in app.cli.RerankChoice] == ["none", *RERANKERS]
    assert [c.value for c in app.cli.FusionChoice] == list(FUSIONS)
    result = run_cli("search", "x", "--rerank", "magic")
    assert result.code == 2
    assert "magic" in result.err


def test_the_registry_says_what_each_method_ranks():
    assert rerankers_for("video") == ("grid", "cot", "first", "sgrid", "pointwise", "sgrid-vic")
    assert rerankers_for("image") == ("grid", "cot", "first", "pointwise")
    assert not reranker_spec("pointwise").listwise
    assert fusion_spec("vic").needs_model
    assert not fusion_spec("rrf").needs_model
    assert reranker_spec("first").marks == "letters"
    assert reranker_spec("sgrid-vic").sgrid_style == "vic" and fusion_spec("vic").reranker == "sgrid-vic"
    with pytest.raises(BadQueryError, match="choose one of grid, cot, first, sgrid, pointwise, sgrid-vic"):
        reranker_spec("pointwise-magic")


def test_profiles_are_data_and_an_unknown_one_is_a_settings_error():
    tiny = load_settings(None, profile="tiny")
    assert tiny.model_identity == PROFILES["tiny"].clip_identity
    assert tiny.reranker_name == "tiny-qwen2-vl"
    assert tiny.near_duplicate_threshold == PROFILES["tiny"].setting_defaults["near_duplicate_threshold"]
    real = load_settings(None)
    assert real.model_identity == (real.clip_model, real.clip_pretrained)
    assert real.reranker_name == real.reranker_model
    with pytest.raises(SettingsError, match="unknown profile 'huge'"):
        load_settings(None, profile="huge")


# -- the catalog's schema ------------------------------------------------------------------------


def test_an_index_from_another_schema_is_a_clear_error(tmp_path, tiny_settings, tiny_encoder):
    from indexer.pipeline import run_index
    from sample_media import SAMPLE

    index_dir = tmp_path / "idx"
    media = tmp_path / "media"
    media.mkdir()
    (media / "cat.jpg").write_bytes(next(SAMPLE.rglob("cat_*.jpg")).read_bytes())
    run_index(media, index_dir, tiny_settings, encoder=tiny_encoder)
    IndexStore.open(index_dir).catalog.close()  # today's schema opens

    db = sqlite3.connect(index_dir / CATALOG_FILE)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexSchemaError, match=f"schema 99; this gridrank reads schema {SCHEMA_VERSION}"):
        IndexStore.open(index_dir)
    with pytest.raises(IndexSchemaError, match="--rebuild"):
        IndexStore.open_for_writing(index_dir, media, *tiny_settings.model_identity, tiny_encoder.dim)
    # the writer's lock was let go: after the fix, a writer can open it again
    db = sqlite3.connect(index_dir / CATALOG_FILE)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
    db.commit()
    db.close()
    IndexStore.open_for_writing(index_dir, media, *tiny_settings.model_identity, tiny_encoder.dim).close()


def test_a_file_that_is_not_a_catalog_is_a_clear_error(tmp_path):
    (tmp_path / CATALOG_FILE).write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(IndexSchemaError, match="cannot be read as a gridrank catalog"):
        IndexStore.open(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    sqlite3.connect(plain / CATALOG_FILE).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(IndexSchemaError, match="cannot be read as a gridrank catalog"):
        IndexStore.open(plain)


def test_check_schema_reads_the_version_a_new_catalog_writes(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.create_schema()
    catalog.check_schema()
    assert catalog.get_meta("schema_version") == SCHEMA_VERSION
    catalog.close()


# -- one l2-normalise ----------------------------------------------------------------------------


def test_l2_normalize_one_vector_a_batch_and_zero():
    assert np.allclose(l2_normalize(np.array([3.0, 4.0])), [0.6, 0.8])
    batch = l2_normalize(np.array([[3.0, 4.0], [0.0, 2.0]]))
    assert batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0)
    assert np.array_equal(l2_normalize(np.zeros(3)), np.zeros(3, dtype=np.float32))
