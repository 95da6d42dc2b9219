"""`gridrank eval` end to end on tiny benchmarks in each public layout, with the tiny models."""

import json

import pytest

from benchmark_layouts import make_circo, make_cirr, make_fashioniq, make_flickr30k, make_msrvtt

RATES = ("R@", "mAP@", "Rsubset@")


@pytest.fixture(autouse=True)
def small_inputs(monkeypatch):
    """Keep the tiny VLM's inputs small: the code paths are the same, the tests faster."""
    for key, value in {"RERANKER_MAX_PIXELS": 112 * 112, "GRID_CELL_SIZE": 64, "SGRID_SIZE": 96,
                       "FRAMES_PER_VIDEO": 4, "RERANK_K": 3}.items():
        monkeypatch.setenv(f"GRIDRANK_{key}", str(value))


def eval_run(run_cli, *args):
    result = run_cli("eval", "--tiny", *map(str, args))
    assert result.code == 0, result.err
    return result


def check_report(out, gallery: int) -> dict:
    """The report files exist and every metric is in range and consistent; returns rows by (direction, method)."""
    for name in ("report.md", "report.json", "recall_at_1.png", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "recall_at_1.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "report.json").read_text())
    rows = {}
    for row in report["results"]:
        m = row["metrics"]
        for name, value in m.items():
            if name.startswith(RATES):
                assert 0.0 <= value <= 1.0, (name, value)
        assert m["R@1"] <= m["R@5"] <= m["R@10"] <= m["R@50"]
        assert 1 <= m["MdR"]
        assert 1 <= m["MnR"]
        if "Rsubset@1" in m:
            assert m["Rsubset@1"] <= m["Rsubset@2"] <= m["Rsubset@3"]
        rows[(row["direction"], row["method"])] = row
    assert report["settings"]["clip_model"] == "gridrank-tiny-clip"
    return rows


def test_flickr30k_with_grid_reranking_records_latency_and_tokens(tmp_path, run_cli):
    root, out = make_flickr30k(tmp_path / "flickr"), tmp_path / "out"
    result = eval_run(run_cli, "--task", "t2i", "--dataset", "flickr30k", "--root", root, "--rerank", "none,grid",
                      "--limit", 2, "--out", out)
    rows = check_report(out, 4)
    assert set(rows) == {("t2i", "clip"), ("t2i", "clip+grid"), ("i2t", "clip")}
    assert all(r["queries"] == 2 for r in rows.values())
    cost = rows[("t2i", "clip+grid")]["cost"]
    assert cost["mean_calls"] == 1
    assert cost["mean_prompt_tokens"] > 0
    assert cost["mean_latency_s"] > 0
    settings = json.loads((out / "report.json").read_text())["settings"]
    assert settings["reranker_model"] == "tiny-qwen2-vl"
    assert settings["depths"]["t2i clip+grid"]["depth"] == 3  # GRIDRANK_RERANK_K: the user's, not the paper's 9
    assert settings["depths"]["t2i clip+grid"]["source"].startswith("--rerank-k 3 (paper: 9; SQUARE")
    assert "| t2i clip+grid | top 3 | 3 | - | --rerank-k 3 (paper: 9;" in result.out
    assert settings["dataset"] == "flickr30k"
    assert settings["split"] == "test"
    assert settings["limit"] == 2
    lines = (out / "results" / "t2i.clip+grid.jsonl").read_text().splitlines()
    assert [json.loads(line)["cost"]["calls"] for line in lines] == [1, 1]
    assert "| clip+grid | model order, then pessimistic | 2 |" in result.out
    # Reranked to depth 3: R@5, R@10 and R@50 lie beyond it and say so; R@1 and the first stage do not.
    assert rows[("t2i", "clip+grid")]["depth"] == 3 and rows[("t2i", "clip")]["depth"] is None
    reranked = next(line for line in result.out.splitlines() if line.startswith("| clip+grid | model order"))
    cells = [c.strip() for c in reranked.strip("|").split("|")]
    assert [c.endswith("†") for c in cells[3:7]] == [False, True, True, True]  # R@1, R@5, R@10, R@50
    assert not any("†" in line for line in result.out.splitlines() if line.startswith("| clip | pessimistic"))
    assert "clip+grid reordered the top 3" in result.out

    # Comparing another reranker in the same folder: no re-embedding, finished methods are not rerun.
    cached = sorted((out / "embeddings").rglob("*.npz"))
    assert [p.name for p in cached] == ["captions.npz", "images.npz"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    eval_run(run_cli, "--dataset", "flickr30k", "--root", root, "--rerank", "none,grid,first,pointwise", "--limit",
             2, "--out", out)
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert (out / "results" / "t2i.clip+grid.jsonl").read_text().splitlines() == lines
    rows = check_report(out, 4)
    assert rows[("t2i", "clip+first")]["cost"]["mean_calls"] == 1
    # The pointwise baseline: its 3 pairs in one batched forward, nothing decoded.
    assert rows[("t2i", "clip+pointwise")]["cost"]["mean_calls"] == 1
    assert rows[("t2i", "clip+pointwise")]["cost"]["mean_completion_tokens"] == 0
    report = (out / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("R@1 against the pointwise baseline (clip+pointwise"))
    assert "clip+grid " in line and "clip+first " in line and "clip+pointwise " not in line.split(":", 1)[1]


def test_a_limited_run_resumed_without_limit_equals_a_full_run(tmp_path, run_cli):
    root = make_flickr30k(tmp_path / "flickr")
    eval_run(run_cli, "--dataset", "flickr30k", "--root", root, "--out", tmp_path / "full")
    eval_run(run_cli, "--dataset", "flickr30k", "--root", root, "--out", tmp_path / "part", "--limit", 3)
    eval_run(run_cli, "--dataset", "flickr30k", "--root", root, "--out", tmp_path / "part")
    full, resumed = check_report(tmp_path / "full", 4), check_report(tmp_path / "part", 4)
    assert resumed == full
    assert full[("t2i", "clip")]["queries"] == 20
    assert full[("i2t", "clip")]["queries"] == 4


def test_cirr_reports_recall_subset_and_never_returns_the_reference(tmp_path, run_cli):
    out = tmp_path / "out"
    eval_run(run_cli, "--task", "cir", "--dataset", "cirr", "--root", make_cirr(tmp_path / "cirr"), "--out", out)
    rows = check_report(out, 6)
    assert {"Rsubset@1", "Rsubset@2", "Rsubset@3"} <= set(rows[("cir", "clip")]["metrics"])
    for line in (out / "results" / "cir.clip.jsonl").read_text().splitlines():
        outcome = json.loads(line)
        assert outcome["ranks"][0] <= 5  # 6 images less the reference
        assert outcome["subset_ranks"][0] <= 3  # the subset has 4 members less the reference


def test_circo_reports_map_over_several_ground_truths(tmp_path, run_cli):
    out = tmp_path / "out"
    eval_run(run_cli, "--dataset", "circo", "--root", make_circo(tmp_path / "circo"), "--out", out)
    metrics = check_report(out, 6)[("cir", "clip")]["metrics"]
    assert {"mAP@5", "mAP@10", "mAP@25", "mAP@50"} <= set(metrics)
    # 6 candidates (the reference is one), every ground truth among them: AP@50 >= AP@5 and both above 0.
    assert 0 < metrics["mAP@5"] <= metrics["mAP@50"]
    outcomes = [json.loads(line) for line in (out / "results" / "cir.clip.jsonl").read_text().splitlines()]
    assert all(o["target_rank"] in o["ranks"] for o in outcomes)  # Recall@K counts the target's rank


def test_fashioniq_runs(tmp_path, run_cli):
    out = tmp_path / "out"
    eval_run(run_cli, "--dataset", "fashioniq-dress", "--root", make_fashioniq(tmp_path / "fiq"), "--out", out)
    rows = check_report(out, 4)
    assert set(rows) == {("cir", "clip")}
    assert rows[("cir", "clip")]["queries"] == 2


def test_msrvtt_with_fusions_sgrid_and_vic(tmp_path, run_cli):
    out = tmp_path / "out"
    eval_run(run_cli, "--task", "t2v", "--dataset", "msrvtt", "--root", make_msrvtt(tmp_path / "msrvtt"),
             "--rerank", "none,sgrid", "--fuse", "combsum,rrf,vic", "--limit", 2, "--out", out)
    rows = check_report(out, 3)
    # ViC reports both directions: in v2t the model ranks captions for the query video.
    assert set(rows) == {(d, m) for d in ("t2v", "v2t")
                         for m in ("clip", "clip-mean", "combsum", "rrf", "clip+sgrid", "vic")}
    assert rows[("t2v", "vic")]["cost"]["mean_visual_tokens"] > 0
    assert rows[("v2t", "vic")]["cost"]["mean_calls"] == 1
    assert rows[("v2t", "clip+sgrid")]["depth"] == 3  # GRIDRANK_RERANK_K
    assert json.loads((out / "run.json").read_text())["frames_per_video"] == 4


def test_by_default_reranked_methods_run_at_their_papers_depth_never_capped_silently(tmp_path, run_cli,
                                                                                     monkeypatch):
    # ViC shows 14 S-Grids in one call; this benchmark has 3 videos: it says so on stderr and in the report.
    monkeypatch.delenv("GRIDRANK_RERANK_K")
    out = tmp_path / "out"
    result = run_cli("eval", "--tiny", "--task", "t2v", "--dataset", "msrvtt", "--root", make_msrvtt(tmp_path / "m"),
                     "--fuse", "vic", "--limit", 1, "--out", out)
    assert result.code == 0, result.err
    note = "t2v vic: the paper reranks 14, this benchmark has 3 items per query: reranks all 3"
    assert note in " ".join(result.err.split())
    run = json.loads((out / "run.json").read_text())
    assert run["depth_notes"] == [note, note.replace("t2v", "v2t").replace("14", "20")]
    assert run["depths"]["t2v vic"]["source"].startswith("ViC: num_images = 14")
    assert run["depths"]["v2t vic"]["source"].startswith("ViC: num_captions = 20")
    rows = {(r["direction"], r["method"]): r for r in json.loads((out / "report.json").read_text())["results"]}
    assert rows[("t2v", "vic")]["depth"] == 3
    report = (out / "report.md").read_text()
    assert "vic reordered the top 3" in report
    assert f"- Not as in the paper: {note}" in report


def test_a_depth_that_cannot_be_honoured_exits_2_before_any_model_loads(tmp_path, run_cli):
    result = run_cli("eval", "--tiny", "--dataset", "flickr30k", "--root", make_flickr30k(tmp_path / "f"),
                     "--rerank", "grid", "--rerank-k", 9, "--out", tmp_path / "out")
    assert result.code == 2
    assert "--rerank-k 9 is larger than the 4 items a query can rank" in result.err
    assert not (tmp_path / "out" / "embeddings").exists()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cirr", "--task", "t2v"], "--dataset cirr is a cir benchmark, not t2v"),
    (["--dataset", "flickr30k", "--rerank", "sgrid"], "--rerank sgrid ranks videos"),
    (["--dataset", "flickr30k", "--fuse", "rrf"], "several first-stage retrievers"),
    (["--dataset", "imagenet"], "unknown --dataset 'imagenet'"),
    (["--dataset", "flickr30k", "--split", "val"], "no images with split 'val'"),
    ([], "give either --dataset NAME --root DIR"),
])
def test_user_errors_exit_2_with_the_fix(tmp_path, run_cli, args, message):
    root = make_flickr30k(tmp_path / "flickr")
    result = run_cli("eval", "--tiny", *(["--root", root] if args else []), *args, "--out", tmp_path / "out")
    assert result.code == 2
    assert message in result.err


def test_a_missing_annotation_file_is_named(tmp_path, run_cli):
    root = make_cirr(tmp_path / "cirr")
    (root / "captions" / "cap.rc2.val.json").unlink()
    result = run_cli("eval", "--tiny", "--dataset", "cirr", "--root", root, "--out", tmp_path / "out")
    assert result.code == 2
    assert "missing" in result.err
    assert "cap.rc2.val.json" in result.err


def test_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path, run_cli, monkeypatch):
    # Reranked methods run query by query and keep each finished query: a Ctrl-C on the third loses only it.
    from retrieval.evaluation.reranking import Reranking

    root, out = make_cirr(tmp_path / "cirr"), tmp_path / "out"
    real, calls = Reranking.rank, []

    def interrupted_on_the_third_query(self, *args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Reranking, "rank", interrupted_on_the_third_query)
    result = run_cli("eval", "--tiny", "--dataset", "cirr", "--root", root, "--out", out, "--rerank", "grid",
                     "--rerank-k", "2")
    assert result.code == 130
    assert "run the same command to resume" in result.err
    assert len((out / "results" / "cir.clip.jsonl").read_text().splitlines()) == 3  # the first stage: all at once
    assert len((out / "results" / "cir.clip+sqaf.jsonl").read_text().splitlines()) == 2  # SQAF's row came first
    assert not (out / "results" / "cir.clip+sqaf+grid.jsonl").exists()
    resumed = []
    monkeypatch.setattr(Reranking, "rank", lambda self, *args: resumed.append(args) or real(self, *args))
    eval_run(run_cli, "--dataset", "cirr", "--root", root, "--out", out, "--rerank", "grid", "--rerank-k", "2")
    rows = check_report(out, 6)
    assert rows[("cir", "clip")]["queries"] == rows[("cir", "clip+sqaf+grid")]["queries"] == 3
    assert len(resumed) == 1 + 3  # the query that was cut, then the reranker's three


def test_an_unreadable_image_is_named(tmp_path, run_cli):
    root = make_flickr30k(tmp_path / "flickr")
    (root / "flickr30k-images" / "coffee_cup.jpg").write_bytes(b"not a jpeg")
    result = run_cli("eval", "--tiny", "--dataset", "flickr30k", "--root", root, "--out", tmp_path / "out")
    assert result.code == 2
    assert "cannot read" in result.err
    assert "coffee_cup.jpg" in result.err


def test_reranked_composed_queries_use_sqaf_then_the_models_order(tmp_path, run_cli, tiny_encoder):
    """Scripted model: the target caption, then "C > B > A"; the ranks follow from the cached embeddings."""
    import numpy as np

    from fake_chat_server import Reply, completion, start_server
    from retrieval.evaluation.metrics import pessimistic_order, ranks_of
    from retrieval.query.search import blend

    caption = "a white cup of coffee on a saucer"
    server = start_server(Reply(body=completion(caption)),
                          Reply(body=completion("C > B > A", {"prompt_tokens": 700, "completion_tokens": 5})))
    try:
        out = tmp_path / "out"
        eval_run(run_cli, "--dataset", "cirr", "--root", make_cirr(tmp_path / "cirr"), "--rerank", "grid",
                 "--limit", 1, "--reranker-url", server.base_url, "--reranker-model", "scripted", "--out", out)
    finally:
        server.shutdown()
        server.server_close()
    outcome = json.loads((out / "results" / "cir.clip+sqaf+grid.jsonl").read_text())
    assert outcome["caption"] == caption
    assert len(server.requests) == 2
    assert outcome["cost"]["calls"] == 1
    assert outcome["cost"]["prompt_tokens"] == 700

    cache = next((out / "embeddings").iterdir()) / "cirr-val"
    images = np.load(cache / "images.npz")["vectors"]
    texts = np.load(cache / "captions.npz")["vectors"]
    query = blend(blend(images[0], texts[0], 0.8), tiny_encoder.encode_texts([caption])[0], 0.5)
    first_stage = pessimistic_order(query @ images.T, [1], exclude=[0])  # query 0: reference 0, target 1
    reranked = np.concatenate([first_stage[:3][::-1], first_stage[3:]])
    assert outcome["ranks"] == ranks_of(reranked, [1])
    # SQAF's own row: the first stage the reranker reranked, with the same caption (one model call for both).
    sqaf = json.loads((out / "results" / "cir.clip+sqaf.jsonl").read_text())
    assert sqaf["ranks"] == ranks_of(first_stage, [1])
    assert sqaf["caption"] == caption
    rows = check_report(out, 2)
    assert {("cir", "clip"), ("cir", "clip+sqaf"), ("cir", "clip+sqaf+grid")} <= set(rows)
    settings = json.loads((out / "report.json").read_text())["settings"]
    assert settings["reranker_model"] == "scripted"
    assert settings["sqaf_caption_weight"] == 0.5
