"""Every index type gridrank builds keeps the same abilities: ids, kind filter, reconstruct, remove, files."""

import faiss
import numpy as np
import pytest

from retrieval.store.ids import kind_of, media_id_range, vector_id
from retrieval.store.recall import exact_sample, measure, recall_at_k, tune_and_measure
from retrieval.store import recall, vector_index
from retrieval.store.vector_index import IdSubset, VectorIndex

DIM = 32
FACTORIES = ["Flat", "SQfp16", "SQ8", "IVF8,Flat", "IVF8,SQfp16", "IVF8,PQ8x4", "IVF8,PQ16x4fs,Refine(SQ8)",
             "HNSW16,SQfp16"]


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    faiss.normalize_L2(x)
    return x


@pytest.fixture(scope="module")
def collection():
    """100 images and 50 videos of 8 frames: 500 vectors with gridrank's packed ids."""
    ids = [vector_id("image", m) for m in range(1, 101)]
    ids += [vector_id("video", m, f) for m in range(101, 151) for f in range(8)]
    ids = np.array(ids, dtype=np.int64)
    return ids, clustered(len(ids))


def build(factory: str, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    index = VectorIndex.build(factory, DIM, vectors)
    index.add(ids, vectors)
    return index


@pytest.mark.parametrize("factory", FACTORIES)
def test_search_kind_filter_reconstruct_and_remove_work_for_every_type(factory, collection, tmp_path):
    ids, vectors = collection
    index = build(factory, ids, vectors)
    index.set_search_effort(nprobe=8, ef_search=64)
    assert len(index) == len(ids)
    assert set(index.ids().tolist()) == set(ids.tolist())

    for kind in ("image", "video"):
        hits = index.search(vectors[0], 20, kind)
        assert len(hits.ids) == 20
        assert {kind_of(int(v)) for v in hits.ids} == {kind}
        assert np.all(np.diff(hits.scores) <= 1e-6)
    tolerance = 0.35 if "PQ8x4" in factory else 0.02  # PQ codes are coarse; float16 / 8-bit are close
    assert np.abs(index.reconstruct(int(ids[300])) - vectors[300]).max() < tolerance
    assert np.allclose(index.vectors(ids[:3]), [index.reconstruct(int(v)) for v in ids[:3]])

    video = 120
    assert index.remove_range(*media_id_range("video", video)) == 8
    assert index.remove_ids(np.array([ids[0], ids[0] + 12345], dtype=np.int64)) == 1
    left = set(index.ids().tolist())
    assert len(index) == len(ids) - 9
    assert ids[0] not in left
    assert not any(media_id_range("video", video)[0] <= v < media_id_range("video", video)[1] for v in left)

    path = tmp_path / "frames.faiss"
    index.write_atomic(path)
    again = VectorIndex.read(path)
    assert (again.factory_family, again.nprobe, again.ef_search, len(again)) == (
        index.factory_family, index.nprobe, index.ef_search, len(index))
    assert np.array_equal(again.reconstruct(int(ids[300])), index.reconstruct(int(ids[300])))
    assert again.search(vectors[5], 5).ids.tolist() == index.search(vectors[5], 5).ids.tolist()


def test_an_ivf_search_passes_its_own_nprobe_with_a_selector(collection):
    ids, vectors = collection
    index = build("IVF8,Flat", ids, vectors)
    index.set_search_effort(nprobe=8)  # every list: exact
    exact = build("Flat", ids, vectors)
    for kind in ("image", "video", None):
        assert index.search(vectors[7], 10, kind).ids.tolist() == exact.search(vectors[7], 10, kind).ids.tolist()


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IVF8,PQ16x4fs,Refine(SQ8)"])
def test_a_filtered_ivf_search_scans_more_lists_until_k_ids_pass(factory, collection, monkeypatch):
    """One probed list holds few of a filter's ids: the search widens instead of returning fewer than k."""
    ids, vectors = collection
    index = build(factory, ids, vectors)
    index.set_search_effort(nprobe=1)
    exact = build("Flat", ids, vectors)
    images, video_frames = ids[:100], ids[100:]
    allowed = IdSubset(np.concatenate([images[::7], video_frames[::9]]))  # 15 images, 45 frames, in every list
    monkeypatch.setattr(vector_index, "EXACT_SUBSET_MAX", 0)  # through the selector, not the exact path
    for query in (vectors[3], vectors[250]):
        _, one_list = index.search_batch(query[None], 30, index.search_parameters(allowed.selector))
        assert (one_list >= 0).sum() < 30  # the probed list alone holds too few
        hits = index.search_among(query, 30, allowed)
        assert len(hits.ids) == 30 and set(hits.ids.tolist()) <= set(allowed.ids.tolist())
        assert hits.ids[0] == exact.search_among(query, 1, allowed).ids[0]
        assert len(index.search(query, 150, "video").ids) == 150  # a kind's id range widens the same way
    assert index.nprobe == 1  # widened for that search only


def test_a_narrow_filter_scans_lists_in_proportion_to_how_few_pass(collection, monkeypatch):
    """nprobe / share lists from the start: the filter's true nearest members, not just the first n found."""
    ids, vectors = collection
    index = build("IVF8,Flat", ids, vectors)
    index.set_search_effort(nprobe=1)
    exact = build("Flat", ids, vectors)
    monkeypatch.setattr(vector_index, "EXACT_SUBSET_MAX", 0)
    allowed = IdSubset(ids[::8])  # an eighth of the vectors: 8 of the 8 lists
    for query in vectors[:20]:
        assert index.search_among(query, 10, allowed).ids.tolist() == exact.search_among(query, 10, allowed).ids.tolist()


@pytest.mark.parametrize("limits", [{}, {"EXACT_SUBSET_MAX": 0}], ids=["few ids", "a small share of many"])
def test_a_small_filtered_subset_is_scored_exactly_from_the_stored_vectors(collection, monkeypatch, limits):
    for name, value in limits.items():
        monkeypatch.setattr(vector_index, name, value)
    monkeypatch.setattr(vector_index, "EXACT_SHARE", 0.03)  # ids[::40] below: 2.5% of them
    ids, vectors = collection
    index = build("IVF8,PQ16x4fs,Refine(SQ8)", ids, vectors)
    index.set_search_effort(nprobe=1)
    allowed = IdSubset(ids[::40])
    hits = index.search_among(vectors[0], 50, allowed)
    stored = index.vectors(allowed.ids) @ vectors[0]
    assert hits.ids.tolist() == allowed.ids[np.argsort(-stored, kind="stable")].tolist()  # all of them, in order
    assert np.allclose(hits.scores, np.sort(stored)[::-1], atol=1e-6)


def test_the_exact_recall_sample_reads_the_collection_a_chunk_at_a_time(collection, monkeypatch):
    ids, vectors = collection
    flat = build("Flat", ids, vectors)
    reads = []

    def read(wanted):
        reads.append(len(wanted))
        return flat.vectors(wanted)

    whole = exact_sample(ids, read, n_queries=50)
    monkeypatch.setattr(recall, "READ_CHUNK", 64)
    reads.clear()
    chunked = exact_sample(ids, read, n_queries=50)
    assert max(reads[1:]) == 64 and sum(reads[1:]) == len(ids)  # the first read is the 50 queries
    assert np.array_equal(chunked.truth, whole.truth) and np.array_equal(chunked.query_ids, whole.query_ids)
    _, rows = faiss.knn(vectors[np.searchsorted(ids, chunked.query_ids)], vectors, 11, metric=faiss.METRIC_INNER_PRODUCT)
    assert (chunked.truth[:, 0] == ids[rows[:, 1]]).mean() > 0.9  # the nearest other vector (ties aside)


def _tuning_case(factory: str):
    """4000 clustered vectors in `factory` scanning one list, and an exact sample of 100 of them."""
    n = 4000
    ids = np.arange(1, n + 1, dtype=np.int64) << 12
    vectors = clustered(n, seed=3)
    index = build(factory, ids, vectors)
    index.set_search_effort(nprobe=1)
    return index, exact_sample(ids, build("Flat", ids, vectors).vectors, n_queries=100)


def test_tuning_stops_where_more_lists_no_longer_raise_recall():
    """Coarse codes cap recall below the target: tuning keeps the cheapest setting on the plateau, not every list."""
    index, sample = _tuning_case("IVF64,PQ4")
    ceiling = (index.set_search_effort(nprobe=64), measure(index, sample))[1]
    assert ceiling < 0.9  # 4-byte codes: no nprobe reaches a 0.975 target
    index.set_search_effort(nprobe=1)
    report = tune_and_measure(index, sample)
    assert report.nprobe < 64 and report.recall_at_10 > ceiling - 0.05


def test_tuning_raises_nprobe_until_the_recall_target_is_met():
    index, sample = _tuning_case("IVF64,SQfp16")
    before = measure(index, sample)
    report = tune_and_measure(index, sample, target=0.95)
    assert report.recall_at_10 >= 0.95 > before
    assert report.nprobe == index.nprobe > 1
    assert report.queries == 100
    # the sample's queries are stored vectors, yet none is counted as its own neighbour
    assert not np.any(sample.truth == sample.query_ids[:, None])

    index.set_search_effort(nprobe=64)  # more than needed: tuning comes down to the cheapest that holds
    again = tune_and_measure(index, sample, target=0.95)
    assert again.recall_at_10 >= 0.95
    assert again.nprobe <= report.nprobe
    index.set_search_effort(nprobe=again.nprobe // 2)
    assert measure(index, sample) < 0.95


def test_a_single_flat_query_matches_exact_search_and_leaves_the_thread_setting_alone(collection):
    """One query on a flat index runs FAISS on one thread of the caller (faster on few cores, see
    VectorIndex._threads_for_one_query); the caller's FAISS thread count is back afterwards."""
    ids, vectors = collection
    index = build("Flat", ids, vectors)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        for row in (0, 123, 456):
            hits = index.search(vectors[row], 10)
            expected = np.argsort(-(vectors @ vectors[row]), kind="stable")[:10]
            assert hits.ids.tolist() == ids[expected].tolist()
            assert faiss.omp_get_max_threads() == 2
        _, batch = index.search_batch(vectors[:3], 10)
        assert batch[:, 0].tolist() == ids[:3].tolist()
    finally:
        faiss.omp_set_num_threads(before)


def test_a_refined_index_rescores_its_fast_scan_candidates_from_the_stored_vectors(tmp_path):
    """Scanning every list, the refined index finds what exact search finds, with the stored vectors' scores."""
    rng = np.random.default_rng(5)
    n = 3000
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)  # no clusters: the hard case
    faiss.normalize_L2(vectors)
    ids = np.arange(1, n + 1, dtype=np.int64) << 12
    index = build("IVF16,PQ16x4fs,Refine(SQ8)", ids, vectors)
    index.set_search_effort(nprobe=16)
    queries = vectors[:50] + 0.1 * rng.standard_normal((50, DIM)).astype(np.float32)
    faiss.normalize_L2(queries)
    scores, found = index.search_batch(queries, 10)
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    assert recall_at_k(found, exact, 10) >= 0.98
    stored = index.vectors(found[0])
    np.testing.assert_allclose(scores[0], stored @ queries[0], rtol=1e-5, atol=1e-6)  # rescored, not estimated
    assert np.all(np.diff(scores, axis=1) <= 0)

    path = tmp_path / "frames.faiss"
    index.write_atomic(path)
    again = VectorIndex.read(path)
    assert (again.nlist, again.nprobe, len(again)) == (16, 16, n)
    assert np.array_equal(again.search_batch(queries, 10)[1], found)
    # a file written by an earlier gridrank (the two parts serialized into a .npz) still reads
    older = tmp_path / "older.faiss"
    with open(older, "wb") as f:
        np.savez(f, store=faiss.serialize_index(index._index), candidates=faiss.serialize_index(index._candidates))
    assert np.array_equal(VectorIndex.read(older).search_batch(queries, 10)[1], found)


def test_new_lists_for_a_refined_index_keep_its_stored_codes_as_they_are(collection):
    ids, vectors = collection
    index = build("IVF8,PQ16x4fs,Refine(SQ8)", ids, vectors)
    stored = index.vectors(ids)
    again = index.with_new_lists("IVF16,PQ16x4fs,Refine(SQ8)", stored, [(ids[:200], stored[:200]), (ids[200:], stored[200:])])
    again.set_search_effort(nprobe=16)
    assert again.nlist == 16
    assert len(again) == len(ids)
    assert np.array_equal(again.vectors(ids), stored)  # not rounded a second time
    assert again.search(vectors[3], 1).ids.tolist() == [ids[3]]
    requantized = build("IVF16,PQ16x4fs,Refine(SQ8)", ids, stored)  # what a plain rebuild would store
    assert not np.array_equal(requantized.vectors(ids), stored)
    index.remove_ids(ids[:1])
    assert len(again) == len(ids)  # a copy: the old index can change without touching the new one
