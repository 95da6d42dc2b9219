"""How long `gridrank` commands take from the shell, beside the floors they are measured against.

Issue 15's benchmark. In one run (this machine is shared and noisy, so only side-by-side numbers
compare), each command runs --repeat times as a fresh process and its median wall time is printed:

- `gridrank --help`, `gridrank status` and `gridrank eval --sims` (small matrices): goal under 0.5 s;
- a cold `gridrank search` against its floor: a fresh Python that imports torch and open_clip, loads
  the same model and encodes one text (goal: within 1.2x);
- `gridrank search` answered by a running `gridrank serve` of the same index (goal: under 0.3 s),
  beside the floor of any typer command: a fresh Python importing typer, pydantic and rich.

The index is the bundled sample, indexed with the tiny profile (offline); the commands run through
the installed `gridrank` script next to this Python.

    python benchmarks/cli_latency.py               # 5 runs of each
    python benchmarks/cli_latency.py --repeat 11
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app import serve_link  # noqa: E402
from benchmarks.web_load import free_port  # noqa: E402

GRIDRANK = Path(sys.executable).with_name("gridrank")
CLI = [str(GRIDRANK)] if GRIDRANK.exists() else [sys.executable, "-m", "app.cli"]
MODEL_FLOOR = """
import torch, open_clip
from retrieval.models.encoder import ClipEncoder
from retrieval.settings import load_settings
ClipEncoder.from_settings(load_settings(None, profile="tiny")).encode_texts(["a red ball"])
"""
TYPER_FLOOR = "import typer, typer._adapters, pydantic, rich.console, rich.table"


def wall_s(argv: list[str], env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def median_s(argv: list[str], env: dict, cwd: Path, repeat: int) -> float:
    wall_s(argv, env, cwd)  # one warm-up: the page cache, not the process, is what it warms
    return statistics.median(wall_s(argv, env, cwd) for _ in range(repeat))


def small_sims(folder: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    a, b = (folder / "a.npy"), (folder / "b.npy")
    np.save(a, rng.standard_normal((100, 100)).astype(np.float32))
    np.save(b, rng.standard_normal((100, 100)).astype(np.float32))
    gt = folder / "gt.csv"
    with gt.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["query", "item"])
        writer.writerows([i, i] for i in range(100))
    return a, b, gt


def start_server(index_dir: Path, env: dict) -> subprocess.Popen:
    server = subprocess.Popen([*CLI, "serve", "--index", str(index_dir), "--port", str(free_port())], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while serve_link.find(index_dir) is None:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit("gridrank serve did not come up")
        time.sleep(0.2)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is printed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        env = os.environ | {"GRIDRANK_CACHE_DIR": str(work / "cache"), "XDG_STATE_HOME": str(work / "state"),
                            "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        media = work / "media"
        shutil.copytree(REPO / "assets" / "sample", media)
        index_dir = media / ".gridrank"
        wall_s([*CLI, "index", str(media), "--tiny"], env, work)
        a, b, gt = small_sims(work)
        search = [*CLI, "search", "a red ball", "--index", str(index_dir)]

        rows: list[tuple[str, float, str]] = []

        def measure(name: str, argv: list[str], goal: str) -> float:
            seconds = median_s(argv, env, work, args.repeat)
            rows.append((name, seconds, goal))
            print(f"  {name:<46} {seconds:6.3f} s   {goal}", flush=True)
            return seconds

        print(f"median of {args.repeat} runs each ({' '.join(CLI)}):")
        measure("gridrank --help", [*CLI, "--help"], "goal < 0.5 s")
        measure("gridrank status", [*CLI, "status", "--index", str(index_dir)], "goal < 0.5 s")
        measure("gridrank eval --sims (2 x 100 x 100)",
                [*CLI, "eval", "--sims", f"{a},{b}", "--gt", str(gt), "--task", "t2i", "--fuse", "combsum,rrf",
                 "--out", str(work / "eval")], "goal < 0.5 s")
        model_floor = measure("floor: import torch+open_clip, load, encode", [sys.executable, "-c", MODEL_FLOOR], "")
        cold = measure("gridrank search (cold, no server)", [*search, "--server", "never"], "goal <= 1.2 x floor")
        typer_floor = measure("floor: import typer+pydantic+rich", [sys.executable, "-c", TYPER_FLOOR], "")
        server = start_server(index_dir, env)
        try:
            served = measure("gridrank search (a gridrank serve answers)", search, "goal < 0.3 s")
        finally:
            server.terminate()
            server.wait(30)

    print("ratios:")
    print(f"  cold search / its floor            {cold / model_floor:5.2f}x  (goal <= 1.20)")
    print(f"  served search / typer floor        {served / typer_floor:5.2f}x")
    print(f"  cold search / served search        {cold / served:5.2f}x")


if __name__ == "__main__":
    main()
