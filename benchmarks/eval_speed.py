"""`gridrank eval --sims` beside ranx on the same generated similarity matrices, in one run.

Issue 13's speed goal: 4 retrievers x 1000 queries x 1000 items, both directions (t2i and i2t), the
four first stages plus CombSUM (min-max) and RRF (k = 60), under 1 s wall for the whole command on
2 cores. ranx (pip install ranx) gets each retriever's top 1000 per query as a Run, fuses them with
comb_sum / rrf and scores hit_rate@K, which is gridrank's R@K (any ground truth in the top K); it
is timed cold (its numba compiles) and warm (pip install -e '.[bench]'). Scores are continuous random numbers, so no two items
tie and both tie rules agree: the script checks that every R@K matches.

    python benchmarks/eval_speed.py                  # 4 x 1000 x 1000
    python benchmarks/eval_speed.py --items 5000     # a larger gallery
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GRIDRANK = Path(sys.executable).with_name("gridrank")
CLI = [str(GRIDRANK)] if GRIDRANK.exists() else [sys.executable, "-m", "app.cli"]
KS = (1, 5, 10)
DEPTH = 1000  # each retriever's top list, as gridrank's FUSION_DEPTH


def make_case(folder: Path, retrievers: int, queries: int, items: int) -> tuple[list[Path], Path, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((queries, items)).astype(np.float32)
    truth[np.arange(queries), np.arange(queries) % items] += 3.0  # query q's ground truth: item q
    matrices = [truth + rng.standard_normal((queries, items)).astype(np.float32) * (1 + r) for r in range(retrievers)]
    paths = []
    for r, matrix in enumerate(matrices):
        paths.append(folder / f"r{r}.npy")
        np.save(paths[-1], matrix)
    gt = folder / "gt.csv"
    gt.write_text("query,item\n" + "".join(f"{q},{q % items}\n" for q in range(queries)))
    return paths, gt, matrices


def gridrank_eval(paths: list[Path], gt: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, "eval", "--task", "t2i", "--sims", ",".join(map(str, paths)), "--gt", str(gt),
                           "--fuse", "combsum,rrf", "--out", str(out)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gridrank eval failed: {done.stderr[-2000:]}")
    rows = json.loads((out / "report.json").read_text())["results"]
    return seconds, {(r["direction"], r["method"]): r["metrics"] for r in rows}


def ranx_eval(matrices: list[np.ndarray], queries: int, items: int) -> dict:
    from ranx import Qrels, Run, evaluate, fuse

    metrics = [f"hit_rate@{k}" for k in KS]
    results = {}
    for direction, scores, truth in (("t2i", matrices, {q: q % items for q in range(queries)}),
                                     ("i2t", [m.T for m in matrices], {i: i for i in range(min(items, queries))})):
        qrels = Qrels.from_dict({f"q{q}": {f"d{d}": 1} for q, d in truth.items()})
        runs = []
        for r, matrix in enumerate(scores):
            top = np.argsort(-matrix, axis=1)[:, :DEPTH]
            runs.append(Run.from_dict({f"q{q}": {f"d{d}": float(matrix[q, d]) for d in top[q]}
                                       for q in truth}, name=f"r{r}"))
        for r, run in enumerate(runs):
            results[(direction, f"r{r}")] = evaluate(qrels, run, metrics)
        results[(direction, "combsum")] = evaluate(qrels, fuse(runs, norm="min-max", method="sum"), metrics)
        results[(direction, "rrf")] = evaluate(qrels, fuse(runs, norm=None, method="rrf", params={"k": 60}), metrics)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrievers", type=int, default=4)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    try:
        import ranx  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark compares with ranx: pip install -e '.[bench]'") from None
    warnings.filterwarnings("ignore", message=".*unsafe cast.*")  # ranx's numba kernels, on every query

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        paths, gt, matrices = make_case(work, args.retrievers, args.queries, args.items)
        gridrank_s, ours = gridrank_eval(paths, gt, work / "out")
        gridrank_again_s, _ = gridrank_eval(paths, gt, work / "out2")

    started = time.perf_counter()
    theirs = ranx_eval(matrices, args.queries, args.items)
    ranx_cold_s = time.perf_counter() - started
    started = time.perf_counter()
    ranx_eval(matrices, args.queries, args.items)
    ranx_warm_s = time.perf_counter() - started

    size = f"{args.retrievers} x {args.queries} x {args.items}"
    print(f"{size}, both directions, {args.retrievers} first stages + CombSUM + RRF:")
    print(f"  gridrank eval --sims (whole command)   {gridrank_s:6.2f} s, again {gridrank_again_s:.2f} s   goal < 1 s")
    print(f"  ranx (Runs, fuse, evaluate) cold       {ranx_cold_s:6.2f} s")
    print(f"  ranx warm                              {ranx_warm_s:6.2f} s")
    print(f"  ratio ranx warm / gridrank             {ranx_warm_s / min(gridrank_s, gridrank_again_s):6.2f}x")
    mismatches = []
    for (direction, method), values in theirs.items():
        name = method
        mine = ours[(direction, name)]
        for k in KS:
            if abs(mine[f"R@{k}"] - values[f"hit_rate@{k}"]) > 1e-9:
                mismatches.append(f"{direction} {name} R@{k}: gridrank {mine[f'R@{k}']:.4f}, "
                                  f"ranx {values[f'hit_rate@{k}']:.4f}")
    print(f"  R@1/5/10 agree on all {len(theirs)} rows" if not mismatches else "  DISAGREE:\n    " + "\n    ".join(
        mismatches))


if __name__ == "__main__":
    main()
