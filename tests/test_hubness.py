"""Hubness correction on crafted similarities with a planted hub: the hub loses its share of top-1s, R@1 rises."""

import shutil

import numpy as np
import pytest

from retrieval.query.hubness import bank_sums, hub_share, normalize


def planted(seed: int, queries: int = 200, items: int = 200, hub: int = 0):
    """Query q's ground truth is item q; item `hub` is close to every query, as hubs are."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.2, 0.05, (queries, items))
    scores[np.arange(queries), np.arange(queries) % items] += 0.15
    scores[:, hub] += 0.17
    return scores


@pytest.fixture
def case():
    test = planted(0)
    bank = planted(1, queries=400)  # another set of queries: it meets the hub too
    rng = np.random.default_rng(2)
    gallery = rng.normal(0.2, 0.05, (300, 200))
    gallery[:, 0] += 0.17  # the hub sits close to the other gallery items too
    return test, bank_sums(bank, gallery)


def recall_at_1(scores: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=-1) == np.arange(len(scores))))


@pytest.mark.parametrize("method", ["qbnorm", "dbnorm"])
def test_normalising_takes_the_hubs_top_1s_away_and_raises_r_at_1(case, method):
    test, banks = case
    before, after = test, normalize(test, banks, method)
    assert hub_share(before) > 0.5  # the hub is most queries' top-1
    assert hub_share(after) < hub_share(before) / 5
    assert recall_at_1(after) > recall_at_1(before) + 0.15


def test_qbnorm_renormalises_only_queries_whose_top_1_some_bank_query_also_ranks_first():
    scores = np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.8]])
    banks = bank_sums(np.array([[0.95, 0.1, 0.1], [0.9, 0.3, 0.2]]))  # the bank's top-1s: item 0 only
    out = normalize(scores, banks, "qbnorm")
    assert np.allclose(out[1], scores[1])  # its top-1 (item 2) is no bank query's: raw scores
    assert not np.allclose(out[0], scores[0])
    assert np.allclose(out[0], 20 * scores[0] - np.log(np.exp(20 * np.array([[0.95, 0.1, 0.1], [0.9, 0.3, 0.2]])).sum(0)))


def test_the_log_domain_ranks_as_the_papers_ratios_do():
    rng = np.random.default_rng(3)
    scores, bank, gallery = rng.random((5, 7)), rng.random((9, 7)), rng.random((6, 7))
    banks = bank_sums(bank, gallery)
    # dbnorm.py's IS: exp(beta s) / sum_b exp(beta s_b), query bank times gallery bank
    ratio = (np.exp(scores / 1.99) / np.exp(bank / 1.99).sum(0)) * (np.exp(3 * scores) / np.exp(3 * gallery).sum(0))
    assert (np.argsort(-normalize(scores, banks, "dbnorm"), axis=1) == np.argsort(-ratio, axis=1)).all()


def test_dbnorm_without_a_gallery_bank_and_an_empty_query_bank_are_errors():
    with pytest.raises(ValueError, match="dbnorm needs a gallery bank"):
        normalize(np.zeros((1, 3)), bank_sums(np.zeros((2, 3))), "dbnorm")
    with pytest.raises(ValueError, match="a query bank needs at least one query"):
        bank_sums(np.zeros((0, 3)))


def test_eval_compares_hub_corrections_as_rows_beside_each_retriever(tmp_path, run_cli):
    import json

    test, bank = planted(0), planted(1, queries=400)
    rng = np.random.default_rng(2)
    gallery = rng.normal(0.2, 0.05, (300, 200))
    gallery[:, 0] += 0.17
    paths = {}
    for name, matrix in {"clip": test, "bank": bank, "gallery": gallery, "other": planted(5)}.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], matrix.astype(np.float32))
    gt = tmp_path / "gt.csv"
    gt.write_text("query,item\n" + "".join(f"{q},{q}\n" for q in range(200)))
    out = tmp_path / "out"
    result = run_cli("eval", "--task", "t2i", "--sims", f"{paths['clip']},{paths['other']}", "--gt", str(gt),
                     "--fuse", "rrf", "--hub-norm", "qbnorm,dbnorm", "--query-bank-sims",
                     f"{paths['bank']},{paths['bank']}", "--gallery-bank-sims", f"{paths['gallery']},{paths['gallery']}",
                     "--out", str(out))
    assert result.code == 0, result.err
    rows = {(r["direction"], r["method"]): r["metrics"] for r in json.loads((out / "report.json").read_text())["results"]}
    assert set(rows) == {("t2i", m) for m in ("clip", "other", "clip+qbnorm", "clip+dbnorm", "other+qbnorm",
                                              "other+dbnorm", "rrf")} | {("i2t", m) for m in ("clip", "other", "rrf")}
    assert rows[("t2i", "clip+qbnorm")]["R@1"] > rows[("t2i", "clip")]["R@1"] + 0.15
    assert rows[("t2i", "clip+dbnorm")]["R@1"] > rows[("t2i", "clip")]["R@1"] + 0.15
    # The fusion fuses the retrievers, not their hub-normalised rows: the same as without --hub-norm.
    plain = run_cli("eval", "--task", "t2i", "--sims", f"{paths['clip']},{paths['other']}", "--gt", str(gt),
                    "--fuse", "rrf", "--out", str(tmp_path / "plain"))
    assert plain.code == 0
    plain_rows = {r["method"]: r["metrics"] for r in json.loads((tmp_path / "plain" / "report.json").read_text())[
        "results"] if r["direction"] == "t2i"}
    assert plain_rows["rrf"] == rows[("t2i", "rrf")]


def test_hub_norm_without_its_banks_is_named(tmp_path, run_cli):
    np.save(tmp_path / "a.npy", planted(0).astype(np.float32))
    (tmp_path / "gt.csv").write_text("query,item\n0,0\n")
    common = ["eval", "--task", "t2i", "--sims", str(tmp_path / "a.npy"), "--gt", str(tmp_path / "gt.csv"),
              "--out", str(tmp_path / "out")]
    result = run_cli(*common, "--hub-norm", "qbnorm")
    assert result.code == 2 and "needs one --query-bank-sims matrix per --sims matrix" in " ".join(result.err.split())
    np.save(tmp_path / "bank.npy", np.zeros((4, 7), dtype=np.float32))
    result = run_cli(*common, "--hub-norm", "qbnorm", "--query-bank-sims", str(tmp_path / "bank.npy"))
    assert result.code == 2 and "a bank's columns are the gallery's 200 items, got shape (4, 7)" in result.err
    result = run_cli(*common, "--hub-norm", "dbnorm", "--query-bank-sims", str(tmp_path / "a.npy"))
    assert result.code == 2 and "dbnorm needs one --gallery-bank-sims matrix" in result.err


def test_a_search_reorders_its_pool_by_the_normalised_scores_and_shows_the_cosines():
    from retrieval.query.hub_banks import StoredBanks
    from retrieval.store.vector_index import Neighbours

    ids = np.array([10, 20, 30, 40])
    bank = np.array([[0.9, 0.2, 0.1, 0.1], [0.8, 0.1, 0.3, 0.1], [0.85, 0.1, 0.1, 0.4]])  # item 10 is every query's
    stored = StoredBanks(ids, bank_sums(bank, bank), np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32))
    raw = Neighbours(np.array([10, 30, 50]), np.array([0.5, 0.45, 0.2]))  # 50: added since the banks were built
    reordered = stored.reorder(raw, "qbnorm")
    assert reordered.ids.tolist() == [30, 50, 10]  # the hub (every bank query's best) drops to the end
    assert sorted(reordered.scores.tolist()) == sorted(raw.scores.tolist())  # the cosines, as shown to users
    assert stored.reorder(raw, "none") is raw


def test_index_with_a_query_bank_then_search_with_hub_norm(tmp_path, media_dir, run_cli):
    queries = tmp_path / "queries.txt"
    queries.write_text("a cat\n\na cup of coffee\na red ball bouncing\n")
    assert run_cli("index", str(media_dir), "--tiny", "--query-bank", str(queries)).code == 0
    from retrieval.query.hub_banks import load
    from retrieval.store.index_store import IndexStore

    index_dir = media_dir / ".gridrank"
    stored, store = load(index_dir), IndexStore.open(index_dir)
    assert sorted(stored.ids.tolist()) == sorted(store.frames.ids().tolist())  # every vector has its normalisers
    assert stored.query_bank.shape[0] == 3 and stored.banks.activated.any()
    for method in ("qbnorm", "dbnorm"):
        result = run_cli("search", "a cat", "--index", str(index_dir), "--hub-norm", method, "--server", "never")
        assert result.code == 0, result.err
    # A run that changes nothing leaves the banks alone; one that adds media brings them up to date.
    stamp = (index_dir / "hub_banks.npz").stat().st_mtime_ns
    assert run_cli("index", str(media_dir), "--tiny").code == 0
    assert (index_dir / "hub_banks.npz").stat().st_mtime_ns == stamp
    shutil.copy(next(p for p in media_dir.rglob("*.jpg")), media_dir / "added_copy_photo.jpg")
    assert run_cli("index", str(media_dir), "--tiny").code == 0
    assert sorted(load(index_dir).ids.tolist()) == sorted(IndexStore.open(index_dir).frames.ids().tolist())


def test_hub_norm_without_a_bank_is_an_error_at_index_time_and_at_search_time(tmp_path, media_dir, run_cli):
    result = run_cli("index", str(media_dir), "--tiny", "--hub-norm", "dbnorm")
    assert result.code == 2 and "hub_norm dbnorm needs a query bank" in result.err
    assert not (media_dir / ".gridrank").exists()  # refused before anything was embedded
    assert run_cli("index", str(media_dir), "--tiny").code == 0
    result = run_cli("search", "a cat", "--index", str(media_dir / ".gridrank"), "--hub-norm", "qbnorm",
                     "--server", "never")
    assert result.code == 2 and "--query-bank QUERIES.txt" in " ".join(result.err.split())


@pytest.mark.parametrize("make, dataset, rows", [
    ("make_flickr30k", "flickr30k", {"clip+qbnorm", "clip+dbnorm"}),
    ("make_msrvtt", "msrvtt", {"clip+qbnorm", "clip+dbnorm", "clip-mean+qbnorm", "clip-mean+dbnorm"}),
])
def test_eval_on_a_benchmark_adds_hub_rows_from_a_query_bank_file(tmp_path, run_cli, make, dataset, rows):
    import json

    import benchmark_layouts

    root = getattr(benchmark_layouts, make)(tmp_path / dataset)
    bank = tmp_path / "bank.txt"
    bank.write_text("a photo of a cat\na cup of coffee\na ball\nthe sun rising\na blue square\n")
    out = tmp_path / "out"
    result = run_cli("eval", "--tiny", "--dataset", dataset, "--root", str(root), "--hub-norm", "qbnorm,dbnorm",
                     "--query-bank", str(bank), "--fuse", "rrf" if dataset == "msrvtt" else "", "--out", str(out))
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    forward = {r["method"] for r in report["results"] if r["direction"] in ("t2i", "t2v")}
    assert rows <= forward
    assert not any("+" in r["method"] for r in report["results"] if r["direction"] in ("i2t", "v2t"))
    assert report["settings"]["query_bank"] == str(bank.resolve())


def test_eval_hub_norm_on_composed_queries_or_without_a_bank_is_refused(tmp_path, run_cli):
    from benchmark_layouts import make_cirr, make_flickr30k

    result = run_cli("eval", "--tiny", "--dataset", "cirr", "--root", str(make_cirr(tmp_path / "c")), "--hub-norm",
                     "qbnorm", "--query-bank", str(tmp_path), "--out", str(tmp_path / "o1"))
    assert result.code == 2 and "composed queries" in result.err
    result = run_cli("eval", "--tiny", "--dataset", "flickr30k", "--root", str(make_flickr30k(tmp_path / "f")),
                     "--hub-norm", "qbnorm", "--out", str(tmp_path / "o2"))
    assert result.code == 2 and "needs --query-bank QUERIES.txt" in result.err
