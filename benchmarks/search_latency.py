#!/usr/bin/env python
"""Search latency, memory and recall of the index gridrank chooses, on synthetic 512-d vectors.

For each collection size (default 10k, 100k, 1M) it builds the index that
`retrieval.store.index_choice.plan_index` picks under the default memory budget, exactly as an index
rebuild does (train on a sample, add every vector, tune nprobe / efSearch until recall@10 on 200
of the collection's own vectors reaches the target), and reports

  build      seconds to train + add, and to tune the search parameters
  memory     the resident memory a searching process needs for the index: the growth of this
             process's RSS while loading the written index (codes, ids, centroids and the id hash
             map), next to the file size (growth while building is higher: lists grow by doubling)
  latency    p50 / p95 of one top-100 query at a time (batch 1), FAISS on --threads threads; the
             best of --repeats runs (each after waiting for the other processes to calm down)
  recall     @10 and @100 of fresh queries against exact float32 search over the same vectors

plus, at 100k, exact float32 search ("Flat") and exhaustive search over float16 codes ("SQfp16"). Goals (this project's issue 5, on a 2-core
machine): at 1M, p50 < 10 ms with recall@10 >= 0.95 and index memory < 1.2 GB; at 100k, exact
p50 < 15 ms; at 10M (issue 17, `--n 10000000 --data clustered`, about 25 minutes), p50 < 10 ms,
recall@10 >= 0.95 and under 8 GB resident, with filters still giving K results.

Vectors are generated and added CHUNK at a time (10M float32 vectors would be 20 GB), with the
exact answers gathered on the way; the index is written with a synthetic catalog as a real index
folder (benchmarks/synthetic_collection.py), whose filtered searches go through Searcher.

Two kinds of data (--data):
  uniform    points uniformly distributed on the unit sphere. Every point is nearly orthogonal
             to every other (cosines ~ N(0, 1/512)), so the "nearest" neighbours are barely nearer
             than any other point: the worst case for any approximate index.
  clustered  closer to real CLIP embeddings of a media collection, which come in groups (the
             frames of one video, bursts of photos, one subject): a shared mean direction (CLIP
             embeddings are anisotropic), n/500 cluster centres, and per-point noise, mixed so
             that two random points have cosine ~0.45 and two points of a cluster ~0.7.

Queries are fresh points from the same distribution. Other processes' CPU use during each
measurement is printed ("others N cores"): the machine this runs on is shared.

    python benchmarks/search_latency.py                       # both kinds, 10k / 100k / 1M
    python benchmarks/search_latency.py --sizes 10000 --data uniform   # seconds
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cpu_load import LoadClock, wait_until_idle  # noqa: E402
from benchmarks.synthetic_collection import (FILTER_CASES, SYNTHETIC_ROOT, FilterCase, items_of, vector_ids,  # noqa: E402
                                             write_catalog)
from retrieval.query.search import Searcher  # noqa: E402
from retrieval.query.types import ResultShape  # noqa: E402
from retrieval.store.index_choice import IndexPlan, plan_index  # noqa: E402
from retrieval.store.index_meta import FrameIndexInfo  # noqa: E402
from retrieval.store.index_store import IndexStore  # noqa: E402
from retrieval.store.recall import RECALL_QUERIES, ExactTopK, exact_sample, recall_at_k, tune_and_measure  # noqa: E402
from retrieval.settings import Settings  # noqa: E402
from retrieval.store.vector_index import VectorIndex  # noqa: E402
from retrieval.query.hub_banks import HUB_POOL, compute, sample_gallery  # noqa: E402

GOAL_HUB_MS = 5.0  # issue 14: hub normalisation adds under 5 ms to a warm query at 100k items

DIM = 512
TOP = 100
FILTER_QUERIES = 50  # filtered searches per filter (through Searcher, after one cold query)
GOAL_1M_P50_MS, GOAL_1M_RECALL, GOAL_1M_MEMORY_GB, GOAL_100K_EXACT_P50_MS = 10.0, 0.95, 1.2, 15.0


@dataclass
class Figures:
    data: str
    n: int
    factory: str
    nprobe: int | None
    ef_search: int | None
    build_s: float
    tune_s: float
    tuned_recall_at_10: float  # on the collection's own vectors, what `gridrank status` shows
    index_bytes: int  # resident memory of the loaded index
    file_bytes: int
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    recall_at_100: float
    others_cores_build: float
    others_cores_search: float
    # --hub-norm: p50 ms of the same queries, side by side: plain top-100, and top-HUB_POOL reordered by each method
    hub_p50_ms: dict[str, float] | None = None
    stages: list[Stage] = field(default_factory=list)
    filters: list[FilterFigures] = field(default_factory=list)


@dataclass
class Stage:
    name: str
    seconds: float
    resident_gb: float  # this process's resident memory after the stage
    peak_gb: float  # its peak so far


@dataclass
class FilterFigures:
    name: str
    selected: int  # vectors the filter passes
    cold_ms: float  # the first query: the catalog's filter query and the id selector, then the search
    p50_ms: float  # the queries after it
    fewest_results: int  # of any query; TOP asked
    all_pass: bool  # every result met the filter
    recall_at_10: float  # against exact search over the vectors the filter passes


def unit(x: np.ndarray) -> np.ndarray:
    faiss.normalize_L2(x)
    return x


CHUNK = 100_000  # vectors generated (and added) at a time: 10M float32 vectors are 20 GB, never held at once


def generate_chunks(kind: str, count: int, seed: int, collection_size: int) -> Iterator[np.ndarray]:
    """count normalized float32 vectors, CHUNK at a time; clustered points come from the centres of a
    collection_size collection."""
    rng = np.random.default_rng(seed)
    if kind == "clustered":
        layout = np.random.default_rng(7)
        mean = unit(layout.standard_normal((1, DIM)).astype(np.float32))
        centres = unit(layout.standard_normal((max(10, collection_size // 500), DIM)).astype(np.float32))
    for lo in range(0, count, CHUNK):
        m = min(count, lo + CHUNK) - lo
        noise = unit(rng.standard_normal((m, DIM)).astype(np.float32))
        if kind == "uniform":
            yield noise
        else:
            # cosine of two random points ~ 0.45 (shared mean), of two points in one cluster ~ 0.7
            picks = centres[rng.integers(0, len(centres), m)]
            yield unit((np.sqrt(0.45) * mean + np.sqrt(0.25) * picks + np.sqrt(0.3) * noise).astype(np.float32))


def generate(kind: str, count: int, seed: int, collection_size: int) -> np.ndarray:
    return np.concatenate(list(generate_chunks(kind, count, seed, collection_size)))


# A fresh process reads the index: its RSS growth is what a searching process pays for it.
_LOAD_RSS = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from retrieval.store.vector_index import VectorIndex
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
before = rss()
index = VectorIndex.read(sys.argv[1])
print(rss() - before)
"""


def resident_bytes(path: Path) -> int:
    """What a fresh process's RSS grows by while it reads the index file at path."""
    return int(subprocess.run([sys.executable, "-c", _LOAD_RSS, str(path), str(Path(__file__).resolve().parents[1])],
                              check=True, capture_output=True, text=True).stdout)


class StageClock:
    """Seconds, resident memory after, and peak memory so far, of each build stage of this process."""

    def __init__(self):
        self.stages: list[Stage] = []
        self._t = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * resource.getpagesize()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.stages.append(Stage(name, now - self._t, rss / 1e9, peak / 1e9))
        print(f"  {name}: {now - self._t:.1f} s, resident {rss / 1e9:.2f} GB, peak {peak / 1e9:.2f} GB", flush=True)
        self._t = now


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.array(seconds) * 1000, q))


def latency(index: VectorIndex, queries: np.ndarray, max_wait_s: float, repeats: int) -> tuple[float, float, float]:
    """p50 and p95 ms of one query at a time, and others' load: the run with the lowest p50 of `repeats`
    (other jobs on the machine only ever slow a run down)."""
    runs = []
    for _ in range(repeats):
        wait_until_idle(max_wait_s)  # the machine is shared: give other jobs a chance to finish first
        for q in queries[:20]:  # warm-up
            index.search(q, TOP)
        clock = LoadClock().start()
        times = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, TOP)
            times.append(time.perf_counter() - t0)
        runs.append((percentile_ms(times, 50), percentile_ms(times, 95), clock.foreign_cores))
    return min(runs)


def hub_cost(index: VectorIndex, queries: np.ndarray, bank: np.ndarray, max_wait_s: float) -> dict[str, float]:
    """p50 ms per query, interleaved so that load hits all alike: the plain top-TOP search, and the search a
    hub-normalised query makes (top-HUB_POOL, reordered by QB-Norm's or DBNorm's scores: Searcher does this)."""
    stored = compute(bank, sample_gallery(index), index)
    wait_until_idle(max_wait_s)
    times: dict[str, list[float]] = {"plain": [], "qbnorm": [], "dbnorm": []}
    for q in queries[:20]:  # warm-up
        stored.reorder(index.search(q, HUB_POOL), "dbnorm")
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, TOP)
        times["plain"].append(time.perf_counter() - t0)
        for method in ("qbnorm", "dbnorm"):
            t0 = time.perf_counter()
            stored.reorder(index.search(q, HUB_POOL), method)
            times[method].append(time.perf_counter() - t0)
    return {name: percentile_ms(values, 50) for name, values in times.items()}


def measure(kind: str, n: int, queries: np.ndarray, plan: IndexPlan, max_wait_s: float, repeats: int,
            hub_bank: np.ndarray | None = None, workdir: Path | None = None) -> Figures:
    """Build the index of plan over n generated vectors a chunk at a time (the exact answers to the queries
    and to the filtered queries are gathered on the way), write it with a synthetic catalog as an index
    folder, and measure a searching process's memory, latency, recall and filters."""
    stages, load = StageClock(), LoadClock().start()
    ids = vector_ids(np.arange(n))
    chunks = generate_chunks(kind, n, seed=n, collection_size=n)
    first: list[np.ndarray] = []  # generated vectors are i.i.d.: the first ones are a random training sample
    while sum(map(len, first)) < min(n, plan.train_size):
        first.append(next(chunks))
    train = np.concatenate(first)[: plan.train_size] if first else np.empty((0, DIM), np.float32)
    index = VectorIndex.build(plan.factory, DIM, train)
    index.set_search_effort(nprobe=plan.nprobe, ef_search=plan.ef_search)
    del train
    stages.done("generate + train")
    truth = ExactTopK(queries, TOP)
    filter_truth = [ExactTopK(queries[:FILTER_QUERIES], 10) for _ in FILTER_CASES]
    lo = 0
    for chunk in itertools.chain(first, chunks):
        items = np.arange(lo, lo + len(chunk))
        index.add(ids[items], chunk)
        truth.add(ids[items], chunk)
        for case, exact in zip(FILTER_CASES, filter_truth):
            keep = case.passes(items)
            exact.add(ids[items][keep], chunk[keep])
        lo += len(chunk)
    del first, chunk
    stages.done("generate + add (+ exact answers)")
    build_s, others_build = load.wall_s, load.foreign_cores
    tuned = None if plan.exact else tune_and_measure(index, exact_sample(ids, index.vectors))
    stages.done("tune nprobe (exact sample of 200 stored vectors)")
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        index_dir = Path(folder) / "index"
        write_catalog(index_dir, n, DIM)
        stages.done("write the catalog")
        store = IndexStore.open_for_writing(index_dir, SYNTHETIC_ROOT, "synthetic", "none", DIM)
        store.replace_frames(index, FrameIndexInfo(plan.factory, plan.reason, index.nprobe, index.ef_search,
                                                   tuned.recall_at_10 if tuned else 1.0, RECALL_QUERIES, n))
        store.close()
        del store, index
        stages.done("write the index file")
        path = max(index_dir.glob("frames-*.faiss"), key=lambda p: int(p.stem.split("-")[1]))  # the newest generation
        index_bytes, file_bytes = resident_bytes(path), path.stat().st_size
        store = IndexStore.open(index_dir)
        index = store.frames
        stages.done("load for searching")
        p50, p95, others_search = latency(index, queries, max_wait_s, repeats)
        _, found = index.search_batch(queries, TOP)
        hub = hub_cost(index, queries, hub_bank, max_wait_s) if hub_bank is not None else None
        filters = [filtered(Searcher(store, None), case, queries[:FILTER_QUERIES], exact, n)
                   for case, exact in zip(FILTER_CASES, filter_truth)]
        store.close()
    return Figures(kind, n, plan.factory, index.nprobe, index.ef_search, build_s,
                   stages.stages[2].seconds, tuned.recall_at_10 if tuned else 1.0, index_bytes, file_bytes, p50, p95,
                   recall_at_k(found, truth.ids, 10), recall_at_k(found, truth.ids, TOP), others_build,
                   others_search, hub, stages.stages, filters)


def filtered(searcher: Searcher, case: FilterCase, queries: np.ndarray, exact: ExactTopK, n: int) -> FilterFigures:
    """gridrank's own filtered search (Searcher, catalog and all) for top-TOP under one filter: the first query
    (which runs the catalog's filter query and builds the id selector) and the warm ones after it."""
    shape = ResultShape(filter=case.media_filter)
    t0 = time.perf_counter()
    searcher.search_vector(queries[0], TOP, case.kind, shape)
    cold_s = time.perf_counter() - t0
    times, fewest, all_pass, found = [], TOP, True, []
    for q in queries:
        t0 = time.perf_counter()
        hits = searcher.search_vector(q, TOP, case.kind, shape)
        times.append(time.perf_counter() - t0)
        items = np.array([h.media_id - 1 for h in hits])
        fewest, all_pass = min(fewest, len(hits)), all_pass and bool(case.passes(items).all())
        found.append(items[:10])
    truth = items_of(exact.ids)
    return FilterFigures(case.name, int(case.passes(np.arange(n)).sum()), cold_s * 1000, percentile_ms(times, 50),
                         fewest, all_pass, recall_at_k(np.array(found), truth, 10))


def describe(f: Figures) -> str:
    effort = f" nprobe={f.nprobe}" if f.nprobe else f" efSearch={f.ef_search}" if f.ef_search else ""
    tuned = f", recall@10 on own vectors {f.tuned_recall_at_10:.3f}" if f.nprobe or f.ef_search else ""
    return (f"{f.data} {f.n:>9,} {f.factory}{effort}: build {f.build_s:.1f} s (+{f.tune_s:.1f} s tuning{tuned}; "
            f"others {f.others_cores_build:.2f} cores), index {f.index_bytes / 1e9:.3f} GB in memory "
            f"({f.file_bytes / 1e9:.3f} GB file), top-{TOP} p50 {f.p50_ms:.2f} ms p95 {f.p95_ms:.2f} ms "
            f"(others {f.others_cores_search:.2f} cores), recall@10 {f.recall_at_10:.3f} @100 {f.recall_at_100:.3f}")


def hub_lines(f: Figures) -> list[str]:
    if f.hub_p50_ms is None:
        return []
    plain = f.hub_p50_ms["plain"]
    lines = []
    for method in ("qbnorm", "dbnorm"):
        added = f.hub_p50_ms[method] - plain
        goal = (f"; goal < {GOAL_HUB_MS:g} ms at 100k: {'met' if added < GOAL_HUB_MS else 'NOT met'}"
                if f.n == 100_000 else "")
        lines.append(f"{f.data} {f.n:,} {f.factory} --hub-norm {method}: p50 {f.hub_p50_ms[method]:.2f} ms (top-"
                     f"{HUB_POOL} reordered) vs {plain:.2f} ms plain top-{TOP}, side by side: +{added:.2f} ms{goal}")
    return lines


def filter_lines(f: Figures) -> list[str]:
    return [f"{f.data} {f.n:,} filter {c.name}: {c.selected:,} vectors pass; top-{TOP} through Searcher: first query "
            f"{c.cold_ms:.0f} ms, then p50 {c.p50_ms:.2f} ms; fewest results {c.fewest_results} of "
            f"{min(TOP, c.selected)} possible"
            f"{'' if c.all_pass else ' (SOME RESULTS FAIL THE FILTER)'}; recall@10 {c.recall_at_10:.3f} against "
            f"exact search over the vectors that pass" for c in f.filters]


def goal_lines(f: Figures) -> list[str]:
    if f.n == 100_000 and f.factory == "Flat":
        goals = [(f.p50_ms < GOAL_100K_EXACT_P50_MS, f"exact p50 {f.p50_ms:.2f} ms < {GOAL_100K_EXACT_P50_MS:.0f} ms")]
    elif f.n == 1_000_000:
        goals = [(f.p50_ms < GOAL_1M_P50_MS, f"p50 {f.p50_ms:.2f} ms < {GOAL_1M_P50_MS:.0f} ms"),
                 (f.recall_at_10 >= GOAL_1M_RECALL, f"recall@10 {f.recall_at_10:.3f} >= {GOAL_1M_RECALL}"),
                 (f.index_bytes / 1e9 < GOAL_1M_MEMORY_GB, f"memory {f.index_bytes / 1e9:.3f} GB < {GOAL_1M_MEMORY_GB} GB")]
    else:
        return []
    return [f"{f.data} {f.n:,} goal {text}: {'met' if ok else 'NOT met'}" for ok, text in goals]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated collection sizes")
    parser.add_argument("--n", type=int, default=None,
                        help="one collection size instead of --sizes, e.g. 10000000 (about 7 GB of index and "
                        "tens of minutes on 2 cores; vectors are generated and added a chunk at a time)")
    parser.add_argument("--data", default="uniform,clustered", help="uniform, clustered or both")
    parser.add_argument("--queries", type=int, default=500, help="latency / recall queries per size")
    parser.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads")
    parser.add_argument("--factory", default=None, help="force a factory string instead of the automatic choice")
    parser.add_argument("--repeats", type=int, default=3, help="latency runs per index; the best p50 is kept")
    parser.add_argument("--wait-idle", type=float, default=120.0,
                        help="before each latency measurement, wait up to this many seconds for other processes "
                        "to leave the CPUs idle (shared machines)")
    parser.add_argument("--hub-norm", action="store_true",
                        help="also time hub-normalised searches (QB-Norm, DBNorm) against plain ones, with a bank of "
                        "1000 queries from the same distribution (the automatic index choice only)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the index folder is written while it is measured (default: the system's temp "
                        "folder; 10M vectors need about 7 GB there)")
    parser.add_argument("--out", type=Path, default=Path("search_latency.json"), help="JSON results")
    args = parser.parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    budget = Settings.model_fields["index_memory_budget_mb"].default * 2**20
    print(f"machine: {platform.processor() or platform.machine()}, {faiss.omp_get_max_threads()} FAISS threads, "
          f"faiss {faiss.__version__}, memory budget {budget >> 20} MB, "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    results: list[Figures] = []
    sizes = [args.n] if args.n else [int(v) for v in args.sizes.split(",")]
    for kind in args.data.split(","):
        for n in sizes:
            queries = generate(kind, args.queries, seed=10**9 + n, collection_size=n)
            plans = [plan_index(n, DIM, budget, args.factory)]
            if n == 100_000:  # exact search, and exhaustive search over float16 codes, for comparison
                plans += [plan_index(n, DIM, budget, forced) for forced in ("Flat", "SQfp16")]
            bank = generate(kind, 1000, seed=2 * 10**9 + n, collection_size=n) if args.hub_norm else None
            for plan in plans:
                print(f"{kind} {n:,} {plan.factory}:", flush=True)
                results.append(measure(kind, n, queries, plan, args.wait_idle, args.repeats,
                                       bank if plan is plans[0] else None, args.workdir))
                for line in [describe(results[-1]), *goal_lines(results[-1]), *filter_lines(results[-1]),
                             *hub_lines(results[-1])]:
                    print(line, flush=True)
    args.out.write_text(json.dumps({"results": [asdict(r) for r in results],
                                    "threads": args.threads, "faiss": faiss.__version__}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
