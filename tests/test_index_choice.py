"""The automatic choice of FAISS index, forced factory strings, and recall arithmetic: pure functions."""

import numpy as np
import pytest

from retrieval.store.index_choice import (FLAT_MAX_VECTORS, IndexFactoryError, faiss_uses_gpu, keeps_stored_codes,
                                    needs_rebuild, nlist_for, plan_index, refined_parts, validate_factory)
from retrieval.store.recall import drop_self, recall_at_k

GB = 2**30


def test_small_collections_get_exact_flat_search():
    for n in (0, 50, FLAT_MAX_VECTORS - 1):
        plan = plan_index(n, 512, 4 * GB)
        assert (plan.factory, plan.family, plan.exact) == ("Flat", "flat", True)


def test_large_collections_get_a_refined_fast_scan_ivf_with_more_lists_as_they_grow():
    plans = [plan_index(n, 512, 4 * GB) for n in (FLAT_MAX_VECTORS, 1_000_000, 3_000_000)]
    # 16x fewer lists than 4*sqrt(n): a fast-scan list is cheap to scan, and each costs a lookup-table pass
    assert [p.factory for p in plans] == [f"IVF{n},PQ256x4fs,Refine(SQ8)" for n in (64, 256, 512)]
    assert all(p.family == "ivf" and not p.exact and 1 <= p.nprobe < p.nlist for p in plans)
    # the memory goal at 1M, 512-d: 128 + 512 code bytes, two id lists and the id map per vector
    assert 0.70e9 < plans[1].estimated_bytes < 0.75e9
    assert plan_index(1_000_000, 768, 4 * GB).factory == "IVF256,PQ384x4fs,Refine(SQ8)"
    assert plans[1].train_size >= 65_536  # PQ codebooks; FAISS asks for 39 points per list too
    # past LARGE_COLLECTION, short lists as for any IVF: a query on clustered data scans a few of them
    ten_million = plan_index(10_000_000, 512, 8 * GB)
    assert ten_million.factory == "IVF16384,PQ256x4fs,Refine(SQ8)"
    assert 6.9e9 < ten_million.estimated_bytes < 7.2e9  # under the 8 GB the default budget allows


def test_the_memory_budget_picks_smaller_codes():
    assert plan_index(1_000_000, 512, 600 * 2**20).factory == "IVF4096,SQ8"
    assert plan_index(1_000_000, 512, 100 * 2**20).factory == "IVF4096,PQ32"
    tiny_budget = plan_index(1_000_000, 512, 1 * 2**20)
    assert tiny_budget.factory == "IVF4096,PQ4"
    assert "over the" in tiny_budget.reason
    # under the flat threshold, float16 then 8-bit flat codes before giving up exactness
    assert plan_index(50_000, 512, 100 * 2**20).factory == "SQfp16"
    assert plan_index(50_000, 512, 40 * 2**20).factory == "SQ8"


def test_nlist_is_a_power_of_two_near_four_sqrt_n_within_bounds():
    assert nlist_for(1_000_000) == 4096
    assert nlist_for(10) == 256
    assert nlist_for(10**12) == 65_536
    assert all(nlist_for(n) & (nlist_for(n) - 1) == 0 for n in (1234, 98_765, 3_000_000))


@pytest.mark.parametrize("factory,family", [("Flat", "flat"), ("SQfp16", "flat"), ("IVF4,Flat", "ivf"),
                                            ("IVF4,PQ256x4fs,Refine(SQ8)", "ivf"),
                                            ("IVF4096,PQ64", "ivf"), ("HNSW32,SQfp16", "hnsw"), ("HNSW16", "hnsw")])
def test_a_forced_factory_is_used_whatever_the_size(factory, family):
    plan = plan_index(5000, 512, 4 * GB, factory)
    assert (plan.factory, plan.family, plan.forced) == (factory, family, True)
    assert (plan.nprobe is not None) == (family == "ivf")
    assert (plan.ef_search is not None) == (family == "hnsw")


def test_a_forced_ivf_waits_for_enough_vectors_to_train():
    plan = plan_index(3, 512, GB, "IVF4,Flat")
    assert plan.factory == "Flat"
    assert "cannot train 4 lists" in plan.reason
    assert plan_index(4, 512, GB, "IVF4,Flat").factory == "IVF4,Flat"


@pytest.mark.parametrize("bad", ["IVF", "IVF4", "LSH", "HNSW32,PQ8", "OPQ16,IVF4,PQ16", "Flat "])
def test_factories_gridrank_cannot_build_are_refused_with_the_forms_that_work(bad):
    with pytest.raises(IndexFactoryError, match="IVF4096,SQfp16"):
        validate_factory(bad)


def test_pq_sizes_must_divide_the_model_dimension_known_at_build_time():
    assert validate_factory("IVF64,PQ96") == "IVF64,PQ96"  # fine for a 768-d model
    assert plan_index(5000, 768, GB, "IVF64,PQ96").factory == "IVF64,PQ96"
    with pytest.raises(IndexFactoryError, match="must divide 512"):
        plan_index(5000, 512, GB, "IVF64,PQ96")


def test_rebuild_only_when_the_type_changes_or_the_lists_are_far_off():
    auto = plan_index(1_000_000, 512, 4 * GB)
    assert needs_rebuild("Flat", auto)
    assert not needs_rebuild("IVF256,PQ256x4fs,Refine(SQ8)", auto)
    assert not needs_rebuild("IVF128,PQ256x4fs,Refine(SQ8)", auto)  # 2x growth: keep the trained lists
    assert needs_rebuild("IVF64,PQ256x4fs,Refine(SQ8)", auto)  # 4x: retrain
    assert needs_rebuild("IVF256,SQfp16", auto)  # other codes
    assert needs_rebuild("IVF256,PQ256x4fs,Refine(SQfp16)", auto)
    assert needs_rebuild("IVF2048,SQfp16", plan_index(10, 512, GB, "IVF4096,SQfp16"))  # forced: exactly that
    assert not needs_rebuild("Flat", plan_index(10, 512, GB))


def test_gpu_faiss_only_with_a_gpu_and_a_device_setting_that_allows_it():
    assert faiss_uses_gpu("auto", 1)
    assert faiss_uses_gpu("cuda:1", 2)
    assert not faiss_uses_gpu("auto", 0)
    assert not faiss_uses_gpu("cpu", 1)
    assert not faiss_uses_gpu("cuda", 0)


def test_recall_counts_true_neighbours_found_and_ignores_padding():
    truth = np.array([[1, 2, 3], [4, 5, -1]])
    found = np.array([[3, 9, 1], [5, 4, 7]])
    assert recall_at_k(found, truth, 3) == pytest.approx(4 / 5)
    assert recall_at_k(found, truth, 2) == pytest.approx(0.5)


def test_a_query_never_counts_as_its_own_neighbour():
    ids = np.array([[7, 1, 2], [3, 8, -1]])
    assert drop_self(ids, np.array([7, 8]), 2).tolist() == [[1, 2], [3, -1]]


def test_only_a_refined_to_refined_rebuild_with_the_same_stored_codec_keeps_the_stored_codes():
    assert keeps_stored_codes("IVF64,PQ256x4fs,Refine(SQ8)", "IVF256,PQ256x4fs,Refine(SQ8)")
    assert not keeps_stored_codes("IVF64,PQ256x4fs,Refine(SQ8)", "IVF256,PQ256x4fs,Refine(SQfp16)")
    assert not keeps_stored_codes("Flat", "IVF256,PQ256x4fs,Refine(SQ8)")
    assert not keeps_stored_codes("IVF64,PQ256x4fs,Refine(SQ8)", "IVF256,SQ8")
    assert refined_parts("IVF256,PQ256x4fs,Refine(SQ8)") == ("IVF256,PQ256x4fs", "SQ8")
    assert refined_parts("IVF256,PQ64") is None
    assert refined_parts("PQ256x4fs,Refine(SQ8)") is None
