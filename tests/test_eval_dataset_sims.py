"""`gridrank eval --dataset X --sims A.npy,B.npy`: other retrievers' similarity matrices as the first stages over a
benchmark's queries and media, as ViC ships them, so ViC's fusion and the rerankers see the videos."""

import json

import numpy as np
import pytest

from benchmark_layouts import make_cirr, make_vic_layout


@pytest.fixture(autouse=True)
def small_inputs(monkeypatch):
    for key, value in {"RERANKER_MAX_PIXELS": 112 * 112, "SGRID_SIZE": 96, "FRAMES_PER_VIDEO": 4}.items():
        monkeypatch.setenv(f"GRIDRANK_{key}", str(value))


def matrices(tmp_path):
    """3 queries x 3 videos. A ranks each query's own video first; B ranks the next video first."""
    a = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.3], [0.1, 0.4, 0.7]], dtype=np.float32)
    b = np.array([[0.5, 0.9, 0.1], [0.1, 0.3, 0.8], [0.9, 0.2, 0.4]], dtype=np.float32)
    paths = [tmp_path / "InternVideo2_didemo.npy", tmp_path / "GRAM_didemo.npy"]
    np.save(paths[0], a)
    np.save(paths[1], b)
    return paths


def test_vic_fuses_the_given_retrievers_lists_and_sees_frames_and_subtitles(tmp_path, run_cli):
    from fake_chat_server import Reply, completion, start_server

    root, out = make_vic_layout(tmp_path / "didemo", "didemo"), tmp_path / "out"
    a, b = matrices(tmp_path)
    server = start_server(Reply(body=completion("[2, 1, 3]")))
    try:
        result = run_cli("eval", "--dataset", "didemo", "--root", str(root), "--sims", f"{a},{b}", "--fuse",
                         "rrf,vic", "--reranker-url", server.base_url, "--reranker-model", "scripted",
                         "--out", str(out))
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 0, result.err
    rows = {(r["direction"], r["method"]): r["metrics"] for r in json.loads((out / "report.json").read_text())["results"]}
    assert set(rows) == {(d, m) for d in ("t2v", "v2t") for m in ("InternVideo2_didemo", "GRAM_didemo", "rrf", "vic")}
    assert rows[("t2v", "InternVideo2_didemo")]["R@1"] == 1.0 and rows[("t2v", "GRAM_didemo")]["R@1"] == 0.0
    # Query 0: A lists videos 0,1,2 and B 1,0,2; ViC's round robin keeps duplicates: 0,1,1,0,2,2, of which it
    # shows 3 (the paper's 14, capped at the gallery). The model says [2, 1, 3]: video 1, then 0.
    prompt = json.dumps(server.requests[0]["json"])
    assert prompt.count('"type": "image_url"') == 3
    assert "Subtitle-1: bounce bounce" in prompt and "Subtitle-2" not in prompt  # vid_b has no subtitles
    ranks = [json.loads(line)["ranks"] for line in (out / "results" / "t2v.vic.jsonl").read_text().splitlines()]
    assert ranks[0] == [2]
    # Video-to-text, as ViC does it: video 0's S-Grid and subtitle, then the interleaved captions (A lists
    # captions 0,1,2 and B 2,0,1: shown 0,2,1), in ViC's words. [2, 1, 3] puts caption 2 first, 0 second.
    v2t = server.requests[3]["json"]
    text = json.dumps(v2t)
    assert text.count('"type": "image_url"') == 1
    assert "Subtitle-1: bounce bounce" in text
    assert ("Candidate-1: a red ball bounces a ball goes up and down\\nCandidate-2: the sun rises a yellow sun comes "
            "up\\nCandidate-3: a blue square slides") in text
    assert "Given the user query (above video and subtitle) and the 3 text candidates, rank these candidates" in text
    ranks = [json.loads(line)["ranks"] for line in (out / "results" / "v2t.vic.jsonl").read_text().splitlines()]
    assert ranks[0] == [2]
    run = json.loads((out / "run.json").read_text())
    assert run["sims"] == [str(a.resolve()), str(b.resolve())]
    assert "clip_model" not in run  # no CLIP: the matrices are the first stages


def test_matrices_that_do_not_fit_the_benchmark_are_named(tmp_path, run_cli):
    root = make_vic_layout(tmp_path / "didemo", "didemo")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 4), dtype=np.float32))
    result = run_cli("eval", "--dataset", "didemo", "--root", str(root), "--sims", str(wrong),
                     "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert "--sims wrong: shape (3, 4), but didemo test has 3 queries x 3 videos" in " ".join(result.err.split())


@pytest.mark.parametrize("args, message", [
    (["--gt", "gt.csv"], "--gt is for --sims without --dataset"),
    (["--dataset", "cirr"], "--sims with --dataset cirr: composed benchmarks rank with CLIP here"),
])
def test_dataset_and_sims_misuse_exits_2(tmp_path, run_cli, args, message):
    root = make_cirr(tmp_path / "cirr")
    (a, _) = matrices(tmp_path)
    extra = ["--dataset", "didemo"] if "--dataset" not in args else []
    result = run_cli("eval", "--root", str(root), "--sims", str(a), *extra, *args, "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert message in " ".join(result.err.split())
