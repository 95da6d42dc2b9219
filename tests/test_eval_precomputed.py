"""`gridrank eval --sims ... --gt ...`: metrics on crafted similarity matrices, fusion, resuming."""

import json

import numpy as np
import pytest

from retrieval.evaluation.plan import plan_methods
from retrieval.evaluation.precomputed import precomputed_tasks
from retrieval.evaluation.runner import PlannedTask, run_tasks


def write_case(folder, matrices: dict, pairs):
    folder.mkdir(parents=True, exist_ok=True)
    for name, matrix in matrices.items():
        np.save(folder / f"{name}.npy", np.array(matrix, dtype=np.float32))
    (folder / "gt.csv").write_text("query,item\n" + "".join(f"{q},{i}\n" for q, i in pairs))
    return ",".join(str(folder / f"{n}.npy") for n in matrices), folder / "gt.csv"


def results(out):
    report = json.loads((out / "report.json").read_text())
    return {(r["direction"], r["method"]): r for r in report["results"]}, report["settings"]


# 3 composed queries x 4 items. Query 0: its target (3) ties item 0. Query 1: clean hit. Query 2: two ground
# truths (0, 2), every score equal: pessimistic ranks 3 and 4.
TIES = [[0.9, 0.1, 0.5, 0.9], [0.2, 0.8, 0.3, 0.1], [0.5, 0.5, 0.5, 0.5]]
TIES_GT = [(0, 3), (1, 1), (2, 0), (2, 2)]


def test_hand_computed_metrics_with_ties_and_several_ground_truths(tmp_path, run_cli):
    sims, gt = write_case(tmp_path, {"clip": TIES}, TIES_GT)
    result = run_cli("eval", "--task", "cir", "--sims", sims, "--gt", gt, "--out", tmp_path / "out")
    assert result.code == 0, result.err
    rows, settings = results(tmp_path / "out")
    m = rows[("cir", "clip")]["metrics"]
    assert m["R@1"] == pytest.approx(1 / 3)  # best ranks 2, 1, 3
    assert m["R@5"] == pytest.approx(1.0)
    assert (m["MdR"], m["MnR"]) == (2.0, 2.0)
    ap = [1 / 2, 1.0, (1 / 3 + 2 / 4) / 2]
    assert m["mAP@5"] == pytest.approx(sum(ap) / 3)
    assert settings["tie_rule"].startswith("per row")
    assert "| clip | pessimistic | 3 | 33.3 | 100.0 |" in (tmp_path / "out" / "report.md").read_text()


def test_a_fused_list_keeps_its_own_tie_rule_and_never_looks_at_the_ground_truth(tmp_path, run_cli):
    # Two retrievers that disagree: item 0 is the first's rank 1, item 1 the second's. RRF gives both
    # 1/61 + 1/62 and min-max CombSUM both 1 + 1/9: a tie, which the fusion breaks by round-robin order
    # (rank 1 of the first list comes first). So the fused list is 0, 1, 2 whichever item is the ground truth:
    # query 0 (truth: item 0) at rank 1, query 1 (truth: item 1) at rank 2. The pessimistic rule gave both rank 2.
    first = [[0.9, 0.1, 0.0], [0.9, 0.1, 0.0]]
    second = [[0.1, 0.9, 0.0], [0.1, 0.9, 0.0]]
    sims, gt = write_case(tmp_path, {"a": first, "b": second}, [(0, 0), (1, 1)])
    result = run_cli("eval", "--task", "cir", "--sims", sims, "--gt", gt, "--fuse", "combsum,rrf",
                     "--out", tmp_path / "out")
    assert result.code == 0, result.err
    rows, _ = results(tmp_path / "out")
    for fusion in ("combsum", "rrf"):
        assert rows[("cir", fusion)]["metrics"]["R@1"] == pytest.approx(0.5), fusion
        assert rows[("cir", fusion)]["metrics"]["MnR"] == pytest.approx(1.5), fusion
        assert rows[("cir", fusion)]["ties"] == "fused order"
    assert rows[("cir", "a")]["ties"] == "pessimistic"
    assert rows[("cir", "a")]["metrics"]["MnR"] == pytest.approx(1.5)  # query 1's truth scores 0.1 < 0.9
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| rrf | fused order | 2 | 50.0 |" in report


def test_t2i_also_reports_the_reverse_direction(tmp_path, run_cli):
    sims, gt = write_case(tmp_path, {"clip": TIES}, TIES_GT)
    assert run_cli("eval", "--task", "t2i", "--sims", sims, "--gt", gt, "--out", tmp_path / "out").code == 0
    rows, _ = results(tmp_path / "out")
    # i2t: item 0 -> query 2 (rank 2, below query 0's 0.9); item 1 -> query 1 (1); item 2 -> query 2, tied with
    # query 0 (2); item 3 -> query 0 (1).
    m = rows[("i2t", "clip")]["metrics"]
    assert m["R@1"] == pytest.approx(0.5)
    assert m["MdR"] == 1.5
    assert rows[("i2t", "clip")]["queries"] == 4
    assert "mAP@5" not in rows[("t2i", "clip")]["metrics"]  # mAP is CIRCO's metric, reported for cir


def test_fusion_methods_are_compared_without_a_model(tmp_path, run_cli):
    # One query, ground truth item 2: retriever a ranks it last, b first.
    sims, gt = write_case(tmp_path, {"a": [[3.0, 2.0, 1.0]], "b": [[1.0, 2.0, 3.0]]}, [(0, 2)])
    result = run_cli("eval", "--task", "t2v", "--sims", sims, "--gt", gt, "--fuse", "combsum,rrf",
                     "--out", tmp_path / "out")
    assert result.code == 0, result.err
    rows, _ = results(tmp_path / "out")
    assert rows[("t2v", "a")]["metrics"]["MnR"] == 3.0
    assert rows[("t2v", "b")]["metrics"]["MnR"] == 1.0
    # CombSUM: min-max normalized sums are 1, 1, 1: a three-way tie, broken by the fusion's round-robin order
    # (a's rank 1 = item 0, b's rank 1 = item 2, then item 1), never by the ground truth: item 2 ranks second.
    assert rows[("t2v", "combsum")]["metrics"]["MnR"] == 2.0
    # RRF: item 0 and item 2 both get 1/61 + 1/63 > item 1's 2/62; the tie puts item 0 first.
    assert rows[("t2v", "rrf")]["metrics"]["MnR"] == 2.0
    assert not (tmp_path / "out" / "recall_at_1.png").exists()  # --sims: no chart unless asked
    result = run_cli("eval", "--task", "t2v", "--sims", sims, "--gt", gt, "--fuse", "combsum,rrf",
                     "--out", tmp_path / "out", "--chart")
    assert result.code == 0, result.err
    assert (tmp_path / "out" / "recall_at_1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("flags, message", [
    (["--fuse", "vic"], "vic needs a model and the benchmark's media"),
    (["--rerank", "grid"], "grid needs a model"),
    (["--rerank", "bogus"], "--rerank: unknown bogus"),
])
def test_model_methods_are_refused_on_precomputed_scores(tmp_path, run_cli, flags, message):
    sims, gt = write_case(tmp_path, {"a": TIES, "b": TIES}, TIES_GT)
    result = run_cli("eval", "--task", "t2v", "--sims", sims, "--gt", gt, *flags, "--out", tmp_path / "out")
    assert result.code == 2
    assert message in result.err


@pytest.mark.parametrize("gt_text, message", [
    ("q,i\n0,1\n", "header `query,item`"),
    ("query,item\n0,9\n", "outside the 3 x 4 matrices"),
    ("query,item\nzero,1\n", "must be integers"),
])
def test_a_bad_ground_truth_file_is_explained(tmp_path, run_cli, gt_text, message):
    sims, gt = write_case(tmp_path, {"a": TIES}, TIES_GT)
    gt.write_text(gt_text)
    result = run_cli("eval", "--task", "cir", "--sims", sims, "--gt", gt, "--out", tmp_path / "out")
    assert result.code == 2
    assert message in result.err


def test_fuse_needs_several_matrices(tmp_path, run_cli):
    sims, gt = write_case(tmp_path, {"a": TIES}, TIES_GT)
    result = run_cli("eval", "--task", "cir", "--sims", sims, "--gt", gt, "--fuse", "rrf", "--out", tmp_path / "o")
    assert result.code == 2
    assert "several first-stage retrievers" in result.err


def random_case(tmp_path, n=40):
    rng = np.random.default_rng(7)
    truth = rng.normal(size=(n, n))
    matrices = {"a": truth + rng.normal(size=(n, n)), "b": np.round(truth + rng.normal(size=(n, n)), 1)}
    return write_case(tmp_path / "case", matrices, [(q, q) for q in range(n)] + [(q, (q + 1) % n) for q in range(0, n, 3)])


def test_an_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    sims, gt = random_case(tmp_path)
    from pathlib import Path
    from retrieval.evaluation.precomputed import load_similarities

    matrices = load_similarities([Path(p) for p in sims.split(",")])

    def planned():
        return [PlannedTask(t, plan_methods(list(t.retrievers), ["none"], ["combsum", "rrf"], forward=i == 0,
                                            has_media=False))
                for i, t in enumerate(precomputed_tasks("t2v", matrices, gt, None))]

    full = run_tasks(planned(), tmp_path / "full", {"case": 1}, None)

    class Stop(Exception):
        pass

    def stop_at_the_third_method(stage, done, total):
        if stage.endswith("combsum") and done == 0:  # each method's outcomes are written as it finishes
            raise Stop

    with pytest.raises(Stop):
        run_tasks(planned(), tmp_path / "resumed", {"case": 1}, None, stop_at_the_third_method)
    logs = sorted((tmp_path / "resumed" / "results").glob("*.jsonl"))
    assert [len(p.read_text().splitlines()) for p in logs] == [40, 40]
    # A log cut short (a run killed while writing it) keeps its lines; only the missing queries are added.
    cut = tmp_path / "resumed" / "results" / "t2v.a.jsonl"
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:25]))
    resumed = run_tasks(planned(), tmp_path / "resumed", {"case": 1}, None)
    assert resumed.scores == full.scores
    assert all(len(p.read_text().splitlines()) == 40 for p in (tmp_path / "resumed" / "results").glob("t2v.*"))
    assert [json.loads(line)["query"] for line in cut.read_text().splitlines()] == list(range(40))


def test_limit_then_a_full_run_in_the_same_folder_resumes(tmp_path, run_cli):
    sims, gt = random_case(tmp_path)
    args = ["eval", "--task", "t2v", "--sims", sims, "--gt", gt, "--fuse", "rrf"]
    assert run_cli(*args, "--out", tmp_path / "full").code == 0
    assert run_cli(*args, "--out", tmp_path / "part", "--limit", "5").code == 0
    assert len((tmp_path / "part" / "results" / "t2v.rrf.jsonl").read_text().splitlines()) == 5
    assert run_cli(*args, "--out", tmp_path / "part").code == 0
    assert len((tmp_path / "part" / "results" / "t2v.rrf.jsonl").read_text().splitlines()) == 40
    assert results(tmp_path / "part")[0] == results(tmp_path / "full")[0]


def test_other_settings_in_the_same_folder_are_refused(tmp_path, run_cli):
    sims, gt = random_case(tmp_path)
    assert run_cli("eval", "--task", "t2v", "--sims", sims, "--gt", gt, "--out", tmp_path / "o").code == 0
    result = run_cli("eval", "--task", "t2i", "--sims", sims, "--gt", gt, "--out", tmp_path / "o")
    assert result.code == 2
    assert "holds results of a run with other settings (task: 't2v' -> 't2i')" in result.err


def test_a_line_cut_short_by_a_kill_is_run_again(tmp_path, run_cli):
    sims, gt = random_case(tmp_path)
    args = ["eval", "--task", "cir", "--sims", sims, "--gt", gt]
    assert run_cli(*args, "--out", tmp_path / "full").code == 0
    assert run_cli(*args, "--out", tmp_path / "cut", "--limit", "4").code == 0
    log = tmp_path / "cut" / "results" / "cir.a.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # the 4th line half written
    assert run_cli(*args, "--out", tmp_path / "cut").code == 0
    assert results(tmp_path / "cut")[0] == results(tmp_path / "full")[0]
    assert [json.loads(line)["query"] for line in log.read_text().splitlines()] == list(range(40))


def test_recall_subset_ranks_within_the_query_set_without_the_reference(tmp_path):
    from retrieval.evaluation.methods import Method
    from retrieval.evaluation.tasks import RankingTask

    scores = np.array([[0.99, 0.9, 0.1, 0.5, 0.8, 0.7],  # reference 0 (excluded), target 3, subset 1-3
                       [0.5] * 6], dtype=np.float32)  # all tied: the target goes after the other members
    task = RankingTask("cir", {"clip": scores}, [(3,), (2,)], [(0,), (0,)], [(1, 2, 3), (1, 2, 3)])
    report = run_tasks([PlannedTask(task, [Method("clip", "retriever", "clip")])], tmp_path, {}, None)
    m = report.scores[0].metrics
    # Query 0: global order 1, 4, 5, 3, 2 (rank 4); in its subset 1, 3, 2 (rank 2). Query 1: ranks 5 and 3.
    assert (m["R@1"], m["R@5"], m["MnR"]) == (0.0, 1.0, 4.5)
    assert (m["Rsubset@1"], m["Rsubset@2"], m["Rsubset@3"]) == (0.0, 0.5, 1.0)


def test_circo_counts_the_target_for_recall_and_every_ground_truth_for_map(tmp_path):
    # CIRCO's official evaluation: the whole gallery is ranked (its reference, item 0, here ranks first),
    # Recall@K looks at target_img_id alone (item 2, third), mAP@K at every ground truth (items 1 and 2).
    from retrieval.evaluation.methods import Method
    from retrieval.evaluation.tasks import RankingTask

    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.2]], dtype=np.float32)
    circo = RankingTask("cir", {"clip": scores}, [(1, 2)], [()], targets=[2])
    m = run_tasks([PlannedTask(circo, [Method("clip", "retriever", "clip")])], tmp_path / "circo", {}, None
                  ).scores[0].metrics
    assert (m["R@1"], m["R@5"], m["MdR"]) == (0.0, 1.0, 3.0)  # the other ground truth at rank 2 does not count
    assert m["mAP@5"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # hits at ranks 2 and 3, over min(5, 2)
    # CIRR's protocol drops the reference: everything moves up one.
    cirr = RankingTask("cir", {"clip": scores}, [(1, 2)], [(0,)], targets=[2])
    m = run_tasks([PlannedTask(cirr, [Method("clip", "retriever", "clip")])], tmp_path / "cirr", {}, None
                  ).scores[0].metrics
    assert (m["R@1"], m["MdR"]) == (0.0, 2.0)
    assert m["mAP@5"] == pytest.approx((1 / 1 + 2 / 2) / 2)
