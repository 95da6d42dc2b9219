#!/usr/bin/env python
"""Indexing throughput of `gridrank index` against the model-forward ceiling and a naive baseline.

On a generated folder of camera-sized JPEGs (4000x3000, quality 90, about 3.5 MB each, cached in
--workdir between runs) with a full-size open_clip model (random weights by default: the
arithmetic is the same as with trained weights), it measures

  index     images/s of the real indexing path: `run_index` in this process, a fresh index folder
            each time, the model loaded beforehand (the whole run is timed: scan, hashing, decode
            workers, batched forward, FAISS + SQLite commit)
  ceiling   images/s of the model forward alone, on tensors decoded and preprocessed beforehand,
            same batch size, same torch threads
  naive     images/s of one process doing full-size PIL decode (no draft mode) + open_clip
            preprocess + the same batched forward

and prints them with the ratios index/ceiling (goal >= 0.8) and index/naive (goal >= 3). It also
times the `gridrank index` command end to end (start-up and model load included) and reports what
it takes to decode one image on the indexing path, to see what limits the run.

--batch-size and --workers take comma-separated lists to sweep several settings in one go:

    python benchmarks/index_throughput.py --workers 1,2 --batch-size 16,32,64 --repeats 2

--ray compares instead `run_index` in this process with `run_index(ray_address=...)` on a local Ray
instance (pip install 'gridrank[distributed]'), --workers CPU actors decoding and embedding:

    python benchmarks/index_throughput.py --ray --repeats 2 --no-cli

The machine should otherwise be idle; the script reports CPU time used by other processes during
each measurement so that a disturbed figure can be spotted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 4000, 3000
JPEG_QUALITY = 90
GENERATOR_VERSION = 1  # bump when the pictures change, so that caches are rebuilt
INDEX_GOAL_VS_CEILING = 0.8
INDEX_GOAL_VS_NAIVE = 3.0
RAY_GOAL_SLOWDOWN = 1.3  # on one machine, Ray's overhead is what shows, not a speedup


# --------------------------------------------------------------------------------------------
# Test pictures
# --------------------------------------------------------------------------------------------

_GRAIN: np.ndarray | None = None


def _grain() -> np.ndarray:
    """Sensor-like grain, shared by all pictures at random offsets (generating it per image is slow)."""
    global _GRAIN
    if _GRAIN is None:
        rng = np.random.default_rng(20240601)
        _GRAIN = np.rint(rng.normal(0.0, 4.5, (HEIGHT + 256, WIDTH + 256))).astype(np.int16)
    return _GRAIN


def make_photo(seed: int) -> bytes:
    """A deterministic photo-like JPEG: smooth colour fields, shapes, texture and grain, with EXIF.

    The scene is drawn at quarter size and upscaled (smooth like a lens-blurred photo); texture at
    quarter size and grain at full size give the high-frequency content that makes camera JPEGs
    3-5 MB at quality 90, so the entropy decoding costs what it costs on real photos.
    """
    rng = np.random.default_rng(seed)
    sw, sh = WIDTH // 4, HEIGHT // 4
    field_ = (rng.random((7, 9, 3)) * 255).astype(np.uint8)
    scene = Image.fromarray(field_).resize((sw, sh), Image.BICUBIC)
    draw = ImageDraw.Draw(scene)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = rng.uniform(-100, sw), rng.uniform(-100, sh)
        w = rng.uniform(30, 300)
        h = w * rng.uniform(0.5, 1.5)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    scene = scene.filter(ImageFilter.GaussianBlur(1.5))
    texture = (rng.random((sh, sw), dtype=np.float32) * 60 - 30).astype(np.int16)
    quarter = np.clip(np.asarray(scene, dtype=np.int16) + texture[..., None], 0, 255).astype(np.uint8)
    full = np.asarray(Image.fromarray(quarter).resize((WIDTH, HEIGHT), Image.BICUBIC), dtype=np.int16)
    ox, oy = (int(v) for v in rng.integers(0, 256, 2))
    full += _grain()[oy : oy + HEIGHT, ox : ox + WIDTH, None]
    pixels = np.clip(full, 0, 255).astype(np.uint8)

    exif = Image.Exif()
    exif[0x010F] = "gridrank-bench"  # Make
    exif[0x0110] = "synthetic 12MP"  # Model
    exif[0x0112] = 6 if seed % 7 == 3 else 1  # Orientation: some portrait shots, as phones write them
    exif.get_ifd(0x8769)[36867] = f"2024:06:{1 + seed % 28:02d} 12:{seed % 60:02d}:00"  # DateTimeOriginal
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
    return out.getvalue()


def _write_photo(args: tuple[int, str]) -> int:
    seed, path = args
    data = make_photo(seed)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # a cut-short run never leaves a truncated picture in the cache
    return len(data)


def prepare_photos(workdir: Path, n: int) -> Path:
    """Make sure the cache holds pictures 0..n-1 and return a folder with exactly those n."""
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / "manifest.json"
    expected = {"version": GENERATOR_VERSION, "width": WIDTH, "height": HEIGHT, "quality": JPEG_QUALITY}
    if not manifest.is_file() or json.loads(manifest.read_text()) != expected:
        for old in cache.glob("*.jpg"):
            old.unlink()
        manifest.write_text(json.dumps(expected))
    paths = [cache / f"photo_{i:05d}.jpg" for i in range(n)]
    missing = [(i, str(p)) for i, p in enumerate(paths) if not p.is_file()]
    if missing:
        print(f"generating {len(missing)} JPEGs of {WIDTH}x{HEIGHT} in {cache} (cached for later runs) ...",
              flush=True)
        started = time.perf_counter()
        processes = max(1, len(os.sched_getaffinity(0)))
        with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
            list(pool.map(_write_photo, missing, chunksize=4))
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    root = workdir / f"photos_{n}"
    present = sorted(p.name for p in root.glob("*.jpg")) if root.is_dir() else []
    if present != [p.name for p in paths]:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for p in paths:
            try:
                os.link(p, root / p.name)
            except OSError:
                shutil.copy2(p, root / p.name)
    return root


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

@dataclass
class Sample:
    wall_s: float
    images: int
    own_cores: float  # CPU time of this process and its finished children / wall time
    foreign_cores: float  # CPU time of everything else on the machine / wall time
    steal_cores: float

    @property
    def rate(self) -> float:
        return self.images / self.wall_s


def _proc_stat() -> tuple[float, float]:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _tree_cpu_by_pid() -> dict[int, float]:
    """utime + stime of this process and of each of its descendants (decode workers, Ray's processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid ... utime stime (11, 12)
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        tree[pid] = cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return tree


class OwnCpu:
    """CPU seconds this process tree uses over a `with` block.

    Each process is sampled every 0.2 s while it lives, so children that end inside the block count
    (a Ray actor is reaped by Ray's raylet, not by us: getrusage's children total misses it).
    """

    def __enter__(self) -> OwnCpu:
        self.first = _tree_cpu_by_pid()
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self.last.update(_tree_cpu_by_pid())

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._poller.join()
        self.last.update(_tree_cpu_by_pid())
        self.seconds = sum(max(0.0, cpu - self.first.get(pid, 0.0)) for pid, cpu in self.last.items())


def wait_until_idle(max_wait_s: float, threshold_cores: float = 0.15) -> float:
    """Wait (at most max_wait_s) until other processes use less than threshold_cores; return their load."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, _ = _proc_stat()
        with OwnCpu() as own:
            time.sleep(1.0)
        busy1, _ = _proc_stat()
        load = max(0.0, (busy1 - busy0) - own.seconds)
        if load < threshold_cores or time.monotonic() >= deadline:
            return load
        time.sleep(2.0)


def measure(images: int, work) -> tuple[Sample, object]:
    busy0, steal0 = _proc_stat()
    with OwnCpu() as own_cpu:
        started = time.perf_counter()
        result = work()
        wall = time.perf_counter() - started
    busy1, steal1 = _proc_stat()
    own = own_cpu.seconds
    return Sample(wall, images, own / wall, max(0.0, (busy1 - busy0) - own) / wall, (steal1 - steal0) / wall), result


@dataclass
class Figures:
    samples: list[Sample] = field(default_factory=list)

    def best(self) -> Sample:
        return max(self.samples, key=lambda s: s.rate)

    def describe(self) -> str:
        b = self.best()
        rates = " ".join(f"{s.rate:.2f}" for s in self.samples)
        extra = f"; runs: {rates}" if len(self.samples) > 1 else ""
        return (f"{b.wall_s:.1f} s for {b.images}, this process {b.own_cores:.2f} cores busy, "
                f"others {b.foreign_cores:.2f} cores{f', steal {b.steal_cores:.2f}' if b.steal_cores > 0.05 else ''}"
                f"{extra}")


def machine_lines(torch) -> list[str]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from PIL import features
        turbo = features.check_feature("libjpeg_turbo")
    except Exception:
        turbo = None
    return [
        f"machine: nproc {len(os.sched_getaffinity(0))}, CPU {model}, "
        f"memory {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        f"software: python {platform.python_version()}, torch {torch.__version__} "
        f"(threads {torch.get_num_threads()}, interop {torch.get_num_interop_threads()}), "
        f"Pillow {Image.__version__} (libjpeg-turbo {turbo}), numpy {np.__version__}",
        f"load average before start: {' '.join(open('/proc/loadavg').read().split()[:3])}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Images/s of `gridrank index` vs the model-forward ceiling and a naive baseline "
                    "(issue 2: goal index >= 0.8x ceiling and >= 3x naive).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=200, help="how many 4000x3000 JPEGs (the issue asks "
                        "for at least 200)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gridrank-bench",
                        help="where the generated JPEGs are cached between runs, and scratch indexes go")
    parser.add_argument("--batch-size", default="32", help="images per forward; a comma list sweeps (16,32,64)")
    parser.add_argument("--workers", default="2", help="decode worker processes; a comma list sweeps (1,2)")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--pretrained", default="none", help="open_clip pretrained tag; 'none' = random weights, "
                        "no download")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the main process; "
                        "default: torch's own choice, normally one per core")
    parser.add_argument("--repeats", type=int, default=1, help="measure each figure this many times, keep the "
                        "best (other load on the machine only ever slows a run down)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS", help="before each measurement, "
                        "wait up to this long for other processes to leave the CPUs idle (shared machines)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end `gridrank index` command")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline (slow)")
    parser.add_argument("--ray", action="store_true", help="instead: `run_index` locally vs on a local Ray instance "
                        "with as many CPUs as this machine has (--workers actors), goal Ray within "
                        f"{RAY_GOAL_SLOWDOWN}x of local (issue 5)")
    args = parser.parse_args(argv)
    batch_sizes = [int(v) for v in args.batch_size.split(",")]
    worker_counts = [int(v) for v in args.workers.split(",")]
    if args.images < 1 or min(batch_sizes) < 1 or min(worker_counts) < 0:
        parser.error("--images and --batch-size must be positive, --workers >= 0")

    workdir = args.workdir.absolute()
    root = prepare_photos(workdir, args.images)  # before torch is imported: forked generators stay light
    sizes = [p.stat().st_size for p in root.glob("*.jpg")]

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # works from a checkout, installed or not
    import torch

    from indexer.decode import DecodeOptions, WorkItem, decode_item
    from indexer.pipeline import run_index
    from indexer.scan import scan
    from retrieval.models.encoder import ClipEncoder, ModelSource
    from retrieval.settings import load_settings

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    pretrained = None if args.pretrained.lower() in ("", "none") else args.pretrained
    print("\n".join(machine_lines(torch)))
    print(f"data: {len(sizes)} JPEGs {WIDTH}x{HEIGHT} q{JPEG_QUALITY}, mean {statistics.mean(sizes) / 1e6:.2f} MB "
          f"(min {min(sizes) / 1e6:.2f}, max {max(sizes) / 1e6:.2f}) in {root}")
    encoder = ClipEncoder(ModelSource(args.model, pretrained), args.device)
    print(f"model: {args.model} pretrained={args.pretrained} on {encoder.device}, input {encoder.image_size} px, "
          f"dim {encoder.dim}, loaded in {encoder.load_seconds:.1f} s", flush=True)

    # Decode everything once the way the indexer does (draft mode, EXIF, preprocess), one thread, as
    # a decode worker runs: this gives the ceiling's inputs and the per-image decode cost.
    settings0 = load_settings(None, clip_model=args.model, clip_pretrained=args.pretrained, device=args.device)
    options = DecodeOptions(encoder.preprocess, encoder.image_size, settings0.max_image_pixels,
                            settings0.frames_per_video, settings0.seconds_per_frame)
    items = [WorkItem(entry, None) for entry in scan(root).files]
    torch.set_num_threads(1)
    if args.wait_idle:
        wait_until_idle(args.wait_idle)
    decode_sample, decoded = measure(len(items), lambda: [decode_item(item, options) for item in items])
    torch.set_num_threads(threads)
    bad = [d.entry.rel_path for d in decoded if d.skip_reason]
    if bad:
        print(f"error: the indexer could not decode {bad[:3]}", file=sys.stderr)
        return 1
    pixels = torch.cat([d.pixels for d in decoded])
    del decoded
    paths = sorted(root.glob("*.jpg"))

    def forward_all(batch: int) -> None:
        for i in range(0, len(pixels), batch):
            encoder.encode_pixels(pixels[i : i + batch])

    def naive(batch: int) -> None:
        for i in range(0, len(paths), batch):
            tensors = []
            for path in paths[i : i + batch]:
                with Image.open(path) as im:
                    tensors.append(encoder.preprocess(im.convert("RGB")))
            encoder.encode_pixels(torch.stack(tensors))

    first_item_s: dict[str | None, list[float]] = {}  # seconds to the first item written, by Ray address

    def index_once(batch: int, workers: int, ray_address: str | None = None) -> None:
        settings = load_settings(None, clip_model=args.model, clip_pretrained=args.pretrained, device=args.device,
                                 batch_size=batch, workers=workers)
        index_dir = workdir / "indexes" / f"run-{os.getpid()}"
        shutil.rmtree(index_dir, ignore_errors=True)
        try:
            started = time.perf_counter()
            first: list[float] = []

            def note_first_item(_) -> None:
                if not first:
                    first.append(time.perf_counter() - started)

            summary = run_index(root, index_dir, settings, encoder=encoder, ray_address=ray_address,
                                on_progress=note_first_item)
            first_item_s.setdefault(ray_address, []).extend(first)
        finally:
            shutil.rmtree(index_dir, ignore_errors=True)
        if summary.indexed != len(paths):
            raise RuntimeError(f"index run embedded {summary.indexed} of {len(paths)} images: {summary}")

    def cli_once(batch: int, workers: int) -> None:
        index_dir = workdir / "indexes" / f"cli-{os.getpid()}"
        shutil.rmtree(index_dir, ignore_errors=True)
        env = dict(os.environ, XDG_STATE_HOME=str(workdir / "state"))  # keep the user's "last index" as it is
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        gridrank = shutil.which("gridrank")
        command = [gridrank] if gridrank else [sys.executable, "-m", "app.cli"]
        command += ["index", str(root), "--index", str(index_dir), "--model", args.model, "--pretrained",
                    args.pretrained, "--device", args.device, "--workers", str(workers), "--batch-size", str(batch)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True)
        finally:
            shutil.rmtree(index_dir, ignore_errors=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")

    encoder.encode_pixels(pixels[: max(batch_sizes)])  # warm-up: first-call allocations, lazy init
    if args.ray:
        return compare_ray(args, len(paths), batch_sizes, worker_counts, index_once, first_item_s)
    ceiling = {b: Figures() for b in batch_sizes}
    naive_f = {b: Figures() for b in batch_sizes}
    index_f = {(b, w): Figures() for b in batch_sizes for w in worker_counts}
    cli_f = {(b, w): Figures() for b in batch_sizes for w in worker_counts}
    n = len(paths)
    def take(figures: Figures, work) -> None:
        if args.wait_idle:
            wait_until_idle(args.wait_idle)
        figures.samples.append(measure(n, work)[0])

    for repeat in range(args.repeats):
        for b in batch_sizes:  # interleaved, so that a burst of other load hits one sample, not one figure
            print(f"[round {repeat + 1}/{args.repeats}] batch {b}: ceiling", end="", flush=True)
            take(ceiling[b], lambda: forward_all(b))
            for w in worker_counts:
                print(f", index w{w}", end="", flush=True)
                take(index_f[b, w], lambda: index_once(b, w))
            if not args.no_naive:
                print(", naive", end="", flush=True)
                take(naive_f[b], lambda: naive(b))
            print(flush=True)
    if not args.no_cli:
        for (b, w), figures in cli_f.items():
            print(f"[cli] batch {b} workers {w}", flush=True)
            take(figures, lambda: cli_once(b, w))

    # CPU time, not wall time: one thread, so it is the work itself, and other load barely changes it.
    decode_ms = 1000 * decode_sample.own_cores * decode_sample.wall_s / n
    cores = len(os.sched_getaffinity(0))
    print()
    print(f"decode on the indexing path (hash + draft decode + EXIF + preprocess), 1 thread: "
          f"{decode_ms:.1f} ms CPU/image ({decode_sample.rate:.1f} images/s, others "
          f"{decode_sample.foreign_cores:.2f} cores meanwhile)")
    results = []
    for b in batch_sizes:
        for w in worker_counts:
            idx, ceil = index_f[b, w].best(), ceiling[b].best()
            print()
            print(f"== {args.model}, batch {b}, workers {w}, torch threads {threads}, {n} images ==")
            print(f"index: {idx.rate:.2f} images/s  ({index_f[b, w].describe()})")
            print(f"ceiling: {ceil.rate:.2f} images/s  ({ceiling[b].describe()})")
            if not args.no_naive:
                print(f"naive: {naive_f[b].best().rate:.2f} images/s  ({naive_f[b].describe()})")
            r_ceil = idx.rate / ceil.rate
            print(f"ratio index/ceiling: {r_ceil:.2f} (goal >= {INDEX_GOAL_VS_CEILING})"
                  f" {'met' if r_ceil >= INDEX_GOAL_VS_CEILING else 'NOT met'}")
            r_naive = None
            if not args.no_naive:
                r_naive = idx.rate / naive_f[b].best().rate
                print(f"ratio index/naive: {r_naive:.2f} (goal >= {INDEX_GOAL_VS_NAIVE})"
                      f" {'met' if r_naive >= INDEX_GOAL_VS_NAIVE else 'NOT met'}")
            if cli_f[b, w].samples:
                c = cli_f[b, w].best()
                print(f"index via the `gridrank index` command, start-up and model load included: {c.rate:.2f} "
                      f"images/s ({c.wall_s:.1f} s)")
            # If the forward kept all cores busy and decoding had to take its CPU time from it, this is the
            # best the overlap could do: forward time per image + decode time per image spread over the cores.
            bound = (1 / ceil.rate) / (1 / ceil.rate + decode_ms / 1000 / cores)
            print(f"bound index/ceiling when decoding shares the {cores} cores with the forward: {bound:.2f}")
            if threads < cores:
                print(f"note: the ceiling uses {threads} torch threads on {cores} cores; with all cores it is higher")
            results.append((idx.rate, b, w, r_ceil, r_naive))
    if len(results) > 1:
        rate, b, w, r_ceil, r_naive = max(results)
        print()
        print(f"best: batch {b}, workers {w}: index {rate:.2f} images/s, index/ceiling {r_ceil:.2f}"
              + (f", index/naive {r_naive:.2f}" if r_naive is not None else ""))
    print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


def compare_ray(args, n: int, batch_sizes: list[int], worker_counts: list[int], index_once,
                first_item_s: dict[str | None, list[float]]) -> int:
    """Images/s of run_index in this process vs with decode + embed on a local Ray instance."""
    import ray

    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"ray {ray.__version__}: local instance with {cores} CPUs started in {time.perf_counter() - started:.1f} s "
          "(not counted below; each Ray run does include starting its actors and loading the model in them)")
    local = {(b, w): Figures() for b in batch_sizes for w in worker_counts}
    on_ray = {(b, w): Figures() for b in batch_sizes for w in worker_counts}
    for repeat in range(args.repeats):
        for b in batch_sizes:
            for w in worker_counts:  # interleaved, so that a burst of other load hits one sample, not one figure
                print(f"[round {repeat + 1}/{args.repeats}] batch {b} workers {w}: local", end="", flush=True)
                if args.wait_idle:
                    wait_until_idle(args.wait_idle)
                local[b, w].samples.append(measure(n, lambda: index_once(b, w))[0])
                print(", ray", flush=True)
                if args.wait_idle:
                    wait_until_idle(args.wait_idle)
                on_ray[b, w].samples.append(measure(n, lambda: index_once(b, w, ray_address="local"))[0])
    for b in batch_sizes:
        for w in worker_counts:
            lo, ra = local[b, w].best(), on_ray[b, w].best()
            slowdown = lo.rate / ra.rate
            print()
            print(f"== {args.model}, batch {b}, workers {w} (local: decode processes; Ray: CPU actors), {n} images ==")
            print(f"local: {lo.rate:.2f} images/s  ({local[b, w].describe()})")
            print(f"ray:   {ra.rate:.2f} images/s  ({on_ray[b, w].describe()})")
            print(f"Ray slowdown (local images/s / Ray images/s): {slowdown:.2f} (goal <= {RAY_GOAL_SLOWDOWN})"
                  f" {'met' if slowdown <= RAY_GOAL_SLOWDOWN else 'NOT met'}")
    for address, label in ((None, "local"), ("local", "ray")):
        times = " ".join(f"{t:.1f}" for t in first_item_s.get(address, []))
        print(f"first item written after (s), {label}: {times}  (start-up: decode workers / Ray actors + model load)")
    print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
