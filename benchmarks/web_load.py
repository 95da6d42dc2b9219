"""Load on the web app's search API: N concurrent gradio_client clients against one `gridrank serve`.

Issue 18's benchmark. It starts `gridrank serve` on the bundled sample media, indexed with the tiny
profile (offline; the first stage runs the real code), in a process of its own. Then, in one session
so the numbers compare: one client alone (the single-client rate), then each --clients count, every
client sending --searches searches one after another. Each line prints p50 / p95 latency, searches
per second, errors, and the CPU each search cost the server and the clients. With --baseline-rev,
the same index is also served by the code of that git revision (a worktree), and the throughput
ratios are printed.

    python benchmarks/web_load.py                                   # 1, 8 and 32 clients, 20 searches each
    python benchmarks/web_load.py --clients 32 --baseline-rev c7da9fd

The clients run in this process and the server in another: on a small machine they share the cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.cpu_load import machine_busy_s  # noqa: E402

QUERIES = ["a cat on a sofa", "a red ball", "people at the beach", "a goal being scored", "mountains at dusk",
           "a dog running", "a city street at night", "coffee on a table", "a space rocket", "flowers in a vase"]


@dataclass(frozen=True)
class LoadResult:
    clients: int
    latencies: list[float]
    errors: list[str]
    seconds: float

    @property
    def p95(self) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self, label: str) -> str:
        p50 = statistics.median(self.latencies) if self.latencies else float("nan")
        return (f"{label}: {self.clients:>3} clients, {len(self.latencies) + len(self.errors)} searches: p50 "
                f"{p50 * 1000:,.0f} ms, p95 {self.p95 * 1000:,.0f} ms, {self.throughput:.1f} searches/s, "
                f"{len(self.errors)} errors"
                + (f" (first: {self.errors[0][:120]})" if self.errors else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_index(workdir: Path) -> Path:
    index_dir = workdir / "sample-index"
    env = dict(os.environ, GRIDRANK_CACHE_DIR=str(workdir / "cache"), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "app.cli", "index", str(REPO / "assets" / "sample"), "--tiny", "--index",
                    str(index_dir)], env=env, check=True, capture_output=True)
    return index_dir


def baseline_tree(rev: str, workdir: Path) -> Path:
    """A checkout of `rev` beside this one (git worktree), to serve the same index with that code."""
    tree = workdir / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
    return tree


def start_server(tree: Path, index_dir: Path, workdir: Path, port: int) -> subprocess.Popen:
    """`gridrank serve` run from the code in `tree` (this checkout, or a baseline's)."""
    env = dict(os.environ, GRIDRANK_CACHE_DIR=str(workdir / "cache"), HF_HUB_OFFLINE="1", PYTHONPATH=str(tree))
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--index", str(index_dir), "--tiny",
                             "--port", str(port)], cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()  # "gridrank web app on URL ..." once it listens
    if "gridrank web app on" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc


def run_load(url: str, clients: int, searches: int) -> LoadResult:
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        api = Client(url, verbose=False, download_files=False)
        ready.wait()
        for j in range(searches):
            started = time.perf_counter()
            try:
                api.predict(QUERIES[(i + j) % len(QUERIES)], 10, "any", api_name="/search")
            except Exception as e:  # a failed search is counted, not fatal
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()  # every client connected: start the clock
    started = time.perf_counter()
    for t in threads:
        t.join()
    return LoadResult(clients, latencies, errors, time.perf_counter() - started)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(label: str, url: str, server_pid: int, counts: list[int], searches: int) -> dict[int, LoadResult]:
    results = {}
    run_load(url, 1, 3)  # warm up: thumbnails cached, model paths hot
    for clients in [1, *counts]:
        busy, server, own = machine_busy_s(), process_cpu_s(server_pid), process_cpu_s(os.getpid())
        result = run_load(url, clients, searches)
        results[clients] = result
        n = max(len(result.latencies), 1)
        cores = (machine_busy_s() - busy) / result.seconds
        print(f"{result.line(label)}; CPU per search: server {(process_cpu_s(server_pid) - server) / n * 1000:.0f} ms, "
              f"clients {(process_cpu_s(os.getpid()) - own) / n * 1000:.0f} ms; machine {cores:.2f} of "
              f"{os.cpu_count()} cores busy", flush=True)
    one = results[1].throughput
    for clients in counts:
        print(f"{label}: {clients} clients give {results[clients].throughput / one:.2f}x the single-client rate",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8,32", help="comma-separated client counts (default 8,32)")
    parser.add_argument("--searches", type=int, default=20, help="searches per client (default 20)")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also serve the same index from this git revision (a worktree), and print the ratios")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gridrank-web-load")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    index_dir = build_index(args.workdir)
    servers = [("now", REPO)]
    if args.baseline_rev:
        servers.append((f"at {args.baseline_rev}", baseline_tree(args.baseline_rev, args.workdir)))
    measured = {}
    for label, tree in servers:
        proc = start_server(tree, index_dir, args.workdir, free_port())
        try:
            url = f"http://127.0.0.1:{proc.args[proc.args.index('--port') + 1]}/"
            measured[label] = measure(label, url, proc.pid, counts, args.searches)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if args.baseline_rev:
        base = f"at {args.baseline_rev}"
        for clients in counts:
            ratio = measured["now"][clients].throughput / measured[base][clients].throughput
            p95_s = measured["now"][clients].p95
            print(f"{clients} clients: throughput now / {base} {ratio:.2f}x (goal at 32 clients >= 1.5x: "
                  f"{'met' if ratio >= 1.5 else 'NOT met'}); p95 now {p95_s:.2f} s (goal < 2 s: "
                  f"{'met' if p95_s < 2 else 'NOT met'})", flush=True)


if __name__ == "__main__":
    main()
