"""The CIRR and CIRCO test-server files: written for every method, in each server's format, and scoring what
the report says when scored as the servers do."""

import copy
import json

import numpy as np
import pytest

from benchmark_layouts import make_circo, make_cirr
from retrieval.datasets import read_dataset
from retrieval.evaluation.metrics import mean_average_precision_at_k
from retrieval.evaluation.submission import SubmissionFormatError, check_circo, check_cirr


@pytest.fixture(autouse=True)
def small_inputs(monkeypatch):
    for key, value in {"RERANKER_MAX_PIXELS": 112 * 112, "GRID_CELL_SIZE": 64, "RERANK_K": 3}.items():
        monkeypatch.setenv(f"GRIDRANK_{key}", str(value))


def run_eval(run_cli, *args):
    result = run_cli("eval", "--tiny", *map(str, args))
    assert result.code == 0, result.err
    return result


def report_rows(out):
    return {r["method"]: r["metrics"] for r in json.loads((out / "report.json").read_text())["results"]}


def test_cirr_files_score_on_the_server_what_the_report_says(tmp_path, run_cli):
    root, out = make_cirr(tmp_path / "cirr"), tmp_path / "out"
    result = run_eval(run_cli, "--dataset", "cirr", "--root", root, "--out", out)
    recall_path = out / "submission" / "cirr-val.clip.recall.json"
    subset_path = out / "submission" / "cirr-val.clip.recall_subset.json"
    printed = " ".join(result.out.split())
    assert f"wrote {recall_path}" in printed and f"wrote {subset_path}" in printed
    recall, subset = json.loads(recall_path.read_text()), json.loads(subset_path.read_text())
    assert (recall["version"], recall["metric"], subset["metric"]) == ("rc2", "recall", "recall_subset")
    triplets = {str(t["pairid"]): t for t in json.loads((root / "captions" / "cap.rc2.val.json").read_text())}
    assert recall.keys() - {"version", "metric"} == subset.keys() - {"version", "metric"} == set(triplets)
    # Scored as the server does: the target's place among the 50 (here 5: six images less the reference).
    hits, subset_hits = {1: [], 5: []}, {1: [], 2: [], 3: []}
    for pair_id, t in triplets.items():
        assert len(recall[pair_id]) == 5 and t["reference"] not in recall[pair_id]
        members = set(t["img_set"]["members"]) - {t["reference"]}
        assert len(subset[pair_id]) == 3 and set(subset[pair_id]) <= members
        for k in hits:
            hits[k].append(t["target_hard"] in recall[pair_id][:k])
        for k in subset_hits:
            subset_hits[k].append(t["target_hard"] in subset[pair_id][:k])
    metrics = report_rows(out)["clip"]
    assert [metrics[f"R@{k}"] for k in hits] == [np.mean(v) for v in hits.values()]
    assert [metrics[f"Rsubset@{k}"] for k in subset_hits] == [np.mean(v) for v in subset_hits.values()]
    assert "Test-server files (in the format each server takes): `submission/cirr-val.clip.recall.json`" in \
        (out / "report.md").read_text()


def test_cirr_test1_without_ground_truth_writes_the_files_and_no_metrics(tmp_path, run_cli):
    root, out = make_cirr(tmp_path / "cirr"), tmp_path / "out"
    triplets = json.loads((root / "captions" / "cap.rc2.val.json").read_text())
    for t in triplets:
        del t["target_hard"], t["target_soft"]
    (root / "captions" / "cap.rc2.test1.json").write_text(json.dumps(triplets))
    (root / "image_splits" / "split.rc2.test1.json").write_text((root / "image_splits" / "split.rc2.val.json").read_text())
    result = run_eval(run_cli, "--dataset", "cirr", "--root", root, "--split", "test1", "--out", out)
    assert all(np.isnan(v) if isinstance(v, float) else v is None for v in report_rows(out)["clip"].values())
    assert "the test1 split has no public ground truth: no metrics here; submit the files in" in \
        " ".join(result.out.split())
    recall = json.loads((out / "submission" / "cirr-test1.clip.recall.json").read_text())
    assert set(recall) == {"version", "metric", "1", "2", "3"}
    check_cirr(recall, json.loads((out / "submission" / "cirr-test1.clip.recall_subset.json").read_text()),
               read_dataset("cirr", root, "test1"))


def test_circo_file_scores_the_reports_map(tmp_path, run_cli):
    root, out = make_circo(tmp_path / "circo"), tmp_path / "out"
    run_eval(run_cli, "--dataset", "circo", "--root", root, "--out", out)
    submission = json.loads((out / "submission" / "circo-val.clip.json").read_text())
    annotations = json.loads((root / "annotations" / "val.json").read_text())
    assert set(submission) == {"0", "1"}
    assert all(isinstance(i, int) for ids in submission.values() for i in ids)
    assert all(len(ids) == 6 for ids in submission.values())  # the whole gallery, the reference included
    ranks = [[n + 1 for n, i in enumerate(submission[str(a["id"])]) if i in a["gt_img_ids"]] for a in annotations]
    metrics = report_rows(out)["clip"]
    for k in (5, 10, 25, 50):
        assert metrics[f"mAP@{k}"] == pytest.approx(
            mean_average_precision_at_k(ranks, [len(a["gt_img_ids"]) for a in annotations], k))
    target_first = [submission[str(a["id"])][0] == a["target_img_id"] for a in annotations]
    assert metrics["R@1"] == np.mean(target_first)


def test_a_limited_run_writes_no_file_and_says_why(tmp_path, run_cli):
    out = tmp_path / "out"
    result = run_eval(run_cli, "--dataset", "circo", "--root", make_circo(tmp_path / "circo"), "--limit", 1,
                      "--out", out)
    assert not (out / "submission").exists()
    assert "no circo submission for clip: it ranked 1 of 2 queries" in " ".join(result.err.split())


@pytest.fixture(scope="module")
def cirr_dataset(tmp_path_factory):
    return read_dataset("cirr", make_cirr(tmp_path_factory.mktemp("cirr")))


def valid_cirr(dataset):
    recall = {"version": "rc2", "metric": "recall"}
    subset = {"version": "rc2", "metric": "recall_subset"}
    for q in dataset.queries:
        others = [item.id for n, item in enumerate(dataset.gallery) if n != q.reference]
        recall[q.id] = others[:5]
        subset[q.id] = [dataset.gallery[i].id for i in q.subset][:3]
    return recall, subset


@pytest.mark.parametrize("damage, message", [
    (lambda r, s: r.update(version="rc1"), 'needs "version": "rc2"'),
    (lambda r, s: s.update(metric="recall"), '"metric": "recall_subset"'),
    (lambda r, s: r.pop("2"), "1 missing"),
    (lambda r, s: r.update({"99": r["1"]}), "1 unknown"),
    (lambda r, s: r["1"].pop(), "pair 1: 4 images listed, the server takes 5"),
    (lambda r, s: r["1"].__setitem__(1, r["1"][0]), "pair 1: an image is listed twice"),
    (lambda r, s: r["1"].__setitem__(0, "dev-0-0-img0"), "lists its reference image dev-0-0-img0"),
    (lambda r, s: s["1"].__setitem__(0, "dev-5-0-img0"), "'dev-5-0-img0' is not one of the images it may list"),
])
def test_the_cirr_check_rejects_what_the_server_would(cirr_dataset, damage, message):
    recall, subset = valid_cirr(cirr_dataset)
    check_cirr(recall, subset, cirr_dataset)
    damage(recall, subset)
    with pytest.raises(SubmissionFormatError, match=message):
        check_cirr(recall, subset, cirr_dataset)


def test_the_circo_check_rejects_what_the_server_would(tmp_path):
    dataset = read_dataset("circo", make_circo(tmp_path))
    ids = [int(item.id) for item in dataset.gallery]
    valid = {"0": ids, "1": ids[::-1]}
    check_circo(valid, dataset)
    for damaged, message in [({"0": ids}, "1 missing"), ({**valid, "1": [str(i) for i in ids]}, "integers"),
                             ({**valid, "0": ids[:5]}, "5 images listed, the server takes 6"),
                             ({**valid, "0": [*ids[:5], 999]}, "999 is not one of")]:
        with pytest.raises(SubmissionFormatError, match=message):
            check_circo(copy.deepcopy(damaged), dataset)


def test_a_reranked_runs_file_lists_the_models_order(tmp_path, run_cli):
    from fake_chat_server import Reply, completion, start_server

    captions = [Reply(body=completion("a white cup of coffee"))] * 3  # SQAF's row runs every query first
    server = start_server(*captions, Reply(body=completion("C > B > A")))
    try:
        out = tmp_path / "out"
        run_eval(run_cli, "--dataset", "cirr", "--root", make_cirr(tmp_path / "cirr"), "--rerank", "grid",
                 "--reranker-url", server.base_url, "--reranker-model", "scripted", "--out", out)
    finally:
        server.shutdown()
        server.server_close()
    files = {m: json.loads((out / "submission" / f"cirr-val.{m}.recall.json").read_text())
             for m in ("clip", "clip+sqaf", "clip+sqaf+grid")}
    for pair_id in ("1", "2", "3"):
        first_stage, reranked = files["clip+sqaf"][pair_id], files["clip+sqaf+grid"][pair_id]
        assert reranked == first_stage[:3][::-1] + first_stage[3:]  # "C > B > A" over the top 3
