#!/usr/bin/env python
"""What the MLLM reranking methods cost per query: visual tokens, prefill time, single-token vs list.

Issue 3's benchmark. A Qwen2-VL-2B-sized model with random weights (built once by
benchmarks/sized_models.py into --workdir and reused on later runs; the arithmetic, and so the
cost, is that of the real model) is loaded through the product's LocalBackend, and for K
candidates (default K = 9 and K = 16; real photos from assets/sample/photos, cycled) it measures,
per query:

  (a) grid       one marked grid (SQUARE: make_marked_grid, 224 px cells, letter marks) with the
                 grid ranking prompt: one call
  (b) separate   K separate candidate images, each letterboxed to 448 x 448 px (the size of a ViC
                 S-Grid; 256 visual tokens for Qwen2-VL), with the CoTRR listwise prompt
                 ("Image 1:" ... "Image K:"): one call
  (c) pointwise  the product's pointwise baseline (LocalBackend.pointwise_scores): K (query, 448 px
                 candidate) pairs scored by the "yes" against "no" logits, in batched forwards of
                 POINTWISE_BATCH pairs, no decoding; timed whole (preparation included)

and for each the visual tokens (image placeholder tokens in the prompt), the prompt tokens and the
prefill time. Then, on the marked grid:

  FIRST          single-token ranking: one forward pass over the FIRST prompt reading the logits of
                 the first answer token (what LocalBackend.first_token_logprobs runs)
  list           generating a ranking list of N = 4*K + 8 new tokens with greedy decoding
                 (model.generate as LocalBackend.generate calls it, plus min_new_tokens = N so that
                 all N tokens are produced even though random weights may emit an end token early)

What is timed: the inputs are prepared by LocalBackend's own preprocessing (qwen-vl-utils resize
within its max_pixels, then the Qwen2-VL processor); that preparation is timed on its own
("prep", JSON only). "prefill" and "FIRST" are the wall time of one model forward with
logits_to_keep=1; "list" is the wall time of model.generate, which a logits processor splits into
the time to the first token (its prefill) and the time per further token (decode). All are taken
after a warm-up through LocalBackend's public calls, repeats interleaved across the configurations
(so that a burst of load from other processes hits one sample of each, not every sample of one),
and the median is reported, with the CPU time other processes used during the samples. Every
configuration is measured at least once; further repeats only while the run stays within
--budget-s (a Qwen2-VL-2B-sized prefill of thousands of tokens takes minutes on a small CPU).

Prompt text is tokenized by the small BPE tokenizer the random model is built with, so text
token counts run higher than with Qwen's real tokenizer (about 1.5x); visual token counts are
exact, as they depend only on the image sizes.

    python benchmarks/rerank_cost.py                       # 2B-sized model, K = 9 and 16
    python benchmarks/rerank_cost.py --tiny --repeats 1    # smoke run of this script (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from retrieval.rerank.backends.local import POINTWISE_BATCH  # noqa: E402
from retrieval.rerank.chat import Prompt  # noqa: E402
from retrieval.rerank.grids import letterbox, make_marked_grid  # noqa: E402
from retrieval.rerank.marks import letter_marks, number_marks  # noqa: E402
from retrieval.rerank.prompts import cot_prompt, first_prompt, grid_ranking_prompt, pointwise_prompt  # noqa: E402

GRID_CELL = 224  # SQUARE: a 3x3 grid of 224 px cells is about 576 Qwen2-VL visual tokens
SEPARATE_SIZE = 448  # ViC S-Grid size; 448 x 448 px is 16 x 16 = 256 Qwen2-VL visual tokens
GOAL_TOKEN_RATIO = 0.33  # grid visual tokens / separate images at K = 9: at most 1/3
GOAL_SPEEDUP = 5.0  # single-token ranking vs generating the list: at least 5x
GOAL_K = 9
QUERY = "two kids skateboarding at dusk"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}

def list_tokens(k: int) -> int:
    """New tokens for a K-item ranking list: "A > C > B ..." is about 2 tokens per item; 4 per item
    plus 8 leaves room for JSON quoting and the end token."""
    return 4 * k + 8


# --------------------------------------------------------------------------------------------
# Machine and load
# --------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _proc_stat() -> float:
    """CPU seconds every process on the machine has used (user, nice, system, irq)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (values + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


@dataclass
class Sample:
    seconds: float
    foreign_cores: float  # CPU time other processes used during the sample / its wall time


def timed(work: Callable[[], Any], sync: Callable[[], None]) -> tuple[Sample, Any]:
    sync()
    busy0, own0 = _proc_stat(), _own_cpu()
    start = time.perf_counter()
    result = work()
    sync()
    wall = time.perf_counter() - start
    foreign = max(0.0, (_proc_stat() - busy0) - (_own_cpu() - own0))
    return Sample(wall, foreign / wall if wall > 0 else 0.0), result


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

@dataclass
class Case:
    key: str  # grid, separate, pointwise, first, list
    k: int
    label: str
    prompt: Prompt
    images: list[Image.Image]
    calls: int = 1  # model calls per query (pointwise: its batched forwards)
    new_tokens: int = 0  # 0: one forward (prefill); else generate this many tokens
    marks: list[str] = field(default_factory=list)
    # filled while measuring
    visual_tokens: int = 0
    prompt_tokens: int = 0
    image_sizes: list[str] = field(default_factory=list)  # as sent to the vision tower, W x H px
    prep: list[Sample] = field(default_factory=list)
    runs: list[Sample] = field(default_factory=list)
    generated_tokens: int | None = None
    unforced_stop: int | None = None  # step at which greedy decoding would have ended on its own
    first_token_s: list[float] = field(default_factory=list)  # generate: start to first token's logits
    decode_s_per_token: list[float] = field(default_factory=list)  # generate: each later token

    def median(self) -> float:
        return statistics.median(s.seconds for s in self.runs)


RAW_FIELDS = ("key", "k", "label", "calls", "new_tokens", "marks", "visual_tokens", "prompt_tokens",
              "image_sizes", "generated_tokens", "unforced_stop", "first_token_s", "decode_s_per_token")


def load_photos(folder: Path) -> list[Image.Image]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise SystemExit(f"no photos in {folder}")
    photos = []
    for p in paths:
        with Image.open(p) as im:
            photos.append(ImageOps.exif_transpose(im).convert("RGB"))
    return photos


def candidates(photos: Sequence[Image.Image], k: int) -> list[Image.Image]:
    return [photos[i % len(photos)] for i in range(k)]


def build_cases(photos: Sequence[Image.Image], k_values: Sequence[int]) -> list[Case]:
    cases: list[Case] = []
    for k in k_values:
        cands = candidates(photos, k)
        letters = letter_marks(k)
        grid = make_marked_grid(cands, cell_size=GRID_CELL)
        separate = [letterbox(c, SEPARATE_SIZE, SEPARATE_SIZE) for c in cands]
        cases += [
            Case("grid", k, f"(a) one marked grid, {grid.rows}x{grid.cols} of {GRID_CELL} px cells (SQUARE)",
                 grid_ranking_prompt(QUERY, letters), [grid.image]),
            Case("first", k, "FIRST single-token ranking on the grid (one forward)",
                 first_prompt(QUERY, letters), [grid.image], marks=letters),
            Case("list", k, f"ranking list generated on the grid ({list_tokens(k)} new tokens)",
                 grid_ranking_prompt(QUERY, letters), [grid.image], new_tokens=list_tokens(k)),
            # Separate images last, so that grid, FIRST and list run back to back under similar load.
            Case("separate", k, f"(b) {k} separate {SEPARATE_SIZE} px images (CoTRR/ViC)",
                 cot_prompt(QUERY, number_marks(k)), separate),
            Case("pointwise", k, f"(c) pointwise: {k} pairs, one {SEPARATE_SIZE} px image each, yes/no logits in "
                 f"batched forwards of {POINTWISE_BATCH}", pointwise_prompt(QUERY), separate),
        ]
    return cases


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, backend: Any, torch: Any) -> None:
        self.backend = backend
        self.torch = torch
        self.loaded = backend._load()  # noqa: SLF001 -- the benchmark times the model itself
        self.model = self.loaded.model
        gen = self.model.generation_config
        eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        self.eos_ids = {int(e) for e in eos if e is not None}
        self.image_token = self.model.config.image_token_id
        cuda = backend.device.type == "cuda"
        self.sync = torch.cuda.synchronize if cuda else (lambda: None)

    def inputs(self, prompt: Prompt, images: Sequence[Image.Image]) -> tuple[Sample, Any]:
        # The very preprocessing LocalBackend.generate / first_token_logprobs run.
        return timed(lambda: self.backend._inputs(self.loaded, prompt, images), self.sync)  # noqa: SLF001

    def forward(self, inputs: Any) -> Any:
        with self.torch.inference_mode():
            return self.model(**inputs, logits_to_keep=1).logits[0, -1]

    def generate(self, inputs: Any, n: int, clock: list[float]) -> Any:
        from transformers import LogitsProcessor, LogitsProcessorList

        sync = self.sync

        class Clock(LogitsProcessor):
            """Notes when each new token's logits are ready: the first after the prefill forward."""

            def __call__(self, input_ids: Any, scores: Any) -> Any:
                sync()
                clock.append(time.perf_counter())
                return scores

        with self.torch.inference_mode():
            return self.model.generate(
                **inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                return_dict_in_generate=True, output_logits=True,
                logits_processor=LogitsProcessorList([Clock()]),
            )

    def measure(self, case: Case, repeat: int) -> Sample:
        if case.key == "pointwise":  # the product's call, whole: its batching is what is measured
            sample, scores = timed(lambda: self.backend.pointwise_scores(QUERY, None, case.images), self.sync)
            case.calls, case.prompt_tokens, case.visual_tokens = scores.calls, scores.prompt_tokens, scores.visual_tokens
            case.image_sizes = [f"{SEPARATE_SIZE}x{SEPARATE_SIZE}"]
            case.prep.append(Sample(0.0, 0.0))
            case.runs.append(sample)
            return sample
        images = case.images
        prep, inputs = self.inputs(case.prompt, images)
        ids = inputs["input_ids"]
        case.prep.append(prep)
        case.prompt_tokens = int(ids.shape[1])
        case.visual_tokens = int((ids == self.image_token).sum())
        case.image_sizes = [f"{int(w) * 14}x{int(h) * 14}" for _, h, w in inputs["image_grid_thw"].tolist()]
        if case.new_tokens:
            clock: list[float] = []
            start = time.perf_counter()
            sample, out = timed(lambda: self.generate(inputs, case.new_tokens, clock), self.sync)
            case.first_token_s.append(clock[0] - start)
            case.decode_s_per_token.append((clock[-1] - clock[0]) / max(1, len(clock) - 1))
            case.generated_tokens = int(out.sequences.shape[1] - ids.shape[1])
            # Raw logits (before min_new_tokens masks the end tokens): where plain greedy would stop.
            stops = [i + 1 for i, logits in enumerate(out.logits) if int(logits[0].argmax()) in self.eos_ids]
            case.unforced_stop = stops[0] if stops else None
        else:
            sample, logits = timed(lambda: self.forward(inputs), self.sync)
            if not bool(self.torch.isfinite(logits).all()):
                raise RuntimeError(f"non-finite logits for {case.label}")
        case.runs.append(sample)
        return sample


def warm_up(runner: Runner, photos: Sequence[Image.Image]) -> list[str]:
    """One FIRST-style scoring and one short generation through LocalBackend's public calls."""
    backend, image = runner.backend, [letterbox(photos[0], SEPARATE_SIZE, SEPARATE_SIZE)]
    scores = backend.first_token_logprobs(pointwise_prompt(QUERY), image, ["A", "B"])
    gen = backend.generate(pointwise_prompt(QUERY), image, max_new_tokens=2)
    return [
        f"warm-up: LocalBackend.first_token_logprobs {scores.seconds:.2f} s "
        f"({scores.prompt_tokens} prompt / {scores.visual_tokens} visual tokens), "
        f"LocalBackend.generate(max_new_tokens=2) {gen.seconds:.2f} s ({gen.completion_tokens} tokens)"
    ]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 100 else f"{seconds:.1f}"


def foreign(case: Case) -> float:
    return statistics.mean(s.foreign_cores for s in case.runs)


def report(cases: list[Case], k_values: Sequence[int]) -> tuple[list[str], dict[str, Any]]:
    by = {(c.key, c.k): c for c in cases}
    cost_rows, speed_rows, lines = [], [], []
    lines += [
        "| K | method | calls | visual tokens | prompt tokens | images as sent (px) | prefill s / query | vs grid | others (cores) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in k_values:
        grid, sep, point = by[("grid", k)], by[("separate", k)], by[("pointwise", k)]
        rows = [
            (grid, 1, grid.visual_tokens, grid.prompt_tokens, grid.image_sizes[0], grid.median(),
             grid.label),
            (sep, 1, sep.visual_tokens, sep.prompt_tokens, f"{k} x {sep.image_sizes[0]}", sep.median(),
             sep.label),
            (point, point.calls, point.visual_tokens, point.prompt_tokens, f"{k} x {point.image_sizes[0]}",
             point.median(), point.label),
        ]
        for case, calls, vis, tok, sizes, secs, label in rows:
            lines.append(
                f"| {k} | {label} | {calls} | {vis} | {tok} | {sizes} | {fmt_s(secs)} | "
                f"{secs / grid.median():.2f}x | {foreign(case):.2f} |"
            )
            cost_rows.append({
                "k": k, "method": case.key, "label": label, "calls": calls, "visual_tokens": vis,
                "prompt_tokens": tok, "images_as_sent": sizes, "prefill_s_per_query": secs,
                "prefill_s_runs": [s.seconds for s in case.runs],
                "prep_s_median": statistics.median(s.seconds for s in case.prep),
                "foreign_cores_mean": foreign(case), "vs_grid": secs / grid.median(),
            })
    lines += [
        "",
        "| K | FIRST: one forward, s | list: generate N tokens, s | N (generated) | of which to 1st token, s "
        "| decode s/token | speedup | plain greedy would stop after | others (cores) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in k_values:
        first, lst = by[("first", k)], by[("list", k)]
        speedup = lst.median() / first.median()
        ttft = statistics.median(lst.first_token_s)
        decode = statistics.median(lst.decode_s_per_token)
        stop = "no early stop" if lst.unforced_stop is None else f"{lst.unforced_stop} tokens"
        lines.append(
            f"| {k} | {fmt_s(first.median())} | {fmt_s(lst.median())} | {lst.new_tokens} "
            f"({lst.generated_tokens}) | {fmt_s(ttft)} | {decode:.3f} | {speedup:.1f}x | {stop} | "
            f"{(foreign(first) + foreign(lst)) / 2:.2f} |"
        )
        speed_rows.append({
            "k": k, "first_s": first.median(), "first_s_runs": [s.seconds for s in first.runs],
            "first_prompt_tokens": first.prompt_tokens, "first_visual_tokens": first.visual_tokens,
            "list_s": lst.median(), "list_s_runs": [s.seconds for s in lst.runs],
            "list_new_tokens": lst.new_tokens, "list_generated_tokens": lst.generated_tokens,
            "list_prompt_tokens": lst.prompt_tokens, "unforced_stop_after": lst.unforced_stop,
            "list_first_token_s": ttft, "decode_s_per_token": decode,
            "speedup": speedup,
            # FIRST saves the decoding only: with prefill P and decode d per token, list / FIRST is
            # about (P + (N - 1) d) / P.
            "speedup_from_split": (ttft + (lst.new_tokens - 1) * decode) / ttft,
            "foreign_cores_mean": (foreign(first) + foreign(lst)) / 2,
        })
    goals: dict[str, Any] = {}
    lines.append("")
    if GOAL_K in k_values:
        ratio = by[("grid", GOAL_K)].visual_tokens / by[("separate", GOAL_K)].visual_tokens
        speedup = by[("list", GOAL_K)].median() / by[("first", GOAL_K)].median()
        goals = {
            "token_ratio_k9": ratio, "token_ratio_goal_max": GOAL_TOKEN_RATIO,
            "token_ratio_met": ratio <= GOAL_TOKEN_RATIO,
            "speedup_k9": speedup, "speedup_goal_min": GOAL_SPEEDUP, "speedup_met": speedup >= GOAL_SPEEDUP,
        }
        lines.append(f"grid visual tokens / separate at K={GOAL_K}: {ratio:.2f} (goal <= {GOAL_TOKEN_RATIO})")
        lines.append(f"single-token speedup vs list generation at K={GOAL_K}: {speedup:.1f}x (goal >= {GOAL_SPEEDUP:g}x)")
        row = next(r for r in speed_rows if r["k"] == GOAL_K)
        lines.append(
            f"(FIRST saves the decoding only: the list call at K={GOAL_K} is {fmt_s(row['list_first_token_s'])} s "
            f"to the first token + {row['list_new_tokens'] - 1} x {row['decode_s_per_token']:.3f} s, i.e. "
            f"{row['speedup_from_split']:.1f}x its own prefill; prefill (a) measured alone: "
            f"{fmt_s(by[('grid', GOAL_K)].median())} s)"
        )
    else:
        lines.append(f"goal checks need K={GOAL_K} in --k-values")
    return lines, {"cost": cost_rows, "single_token_vs_list": speed_rows, "goals": goals}


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Per-query cost of the reranking methods on a Qwen2-VL-2B-sized model with random "
                    "weights: visual tokens and prefill time of one marked grid vs K separate images vs K "
                    "pointwise calls, and single-token ranking (FIRST) vs generating the ranking list "
                    "(issue 3: goal grid <= 1/3 of the visual tokens at K = 9, FIRST >= 5x faster).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gridrank-bench" / "rerank",
                        help="where the built model is cached between runs and the JSON goes")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a Qwen-VL model folder to use instead of building the random 2B-sized one "
                             "(default: WORKDIR/qwen2-vl-2b-sized, or WORKDIR/tiny-qwen2-vl with --tiny)")
    parser.add_argument("--tiny", action="store_true",
                        help="use the tiny test model: a fast smoke run of this script, timings meaningless")
    parser.add_argument("--k-values", default="9,16", help="comma-separated candidate counts (at most 20)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of each configuration (after one warm-up); the median is reported")
    parser.add_argument("--budget-s", type=float, default=900,
                        help="time budget for the whole run: every configuration is measured once, repeats "
                             "after the first only while the run stays within it")
    parser.add_argument("--photos", type=Path, default=REPO / "assets" / "sample" / "photos",
                        help="candidate photos, cycled to make K")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (LocalBackend's device)")
    parser.add_argument("--dtype", default="auto",
                        help="LocalBackend's dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (default: "
                        "WORKDIR/rerank_cost.json, or rerank_cost_tiny.json with --tiny)")
    args = parser.parse_args(argv)
    try:
        k_values = [int(v) for v in args.k_values.split(",") if v.strip()]
    except ValueError:
        parser.error("--k-values must be comma-separated integers")
    if not k_values or min(k_values) < 1 or max(k_values) > 20 or args.repeats < 1:
        parser.error("--k-values must be within 1..20 and --repeats >= 1")
    k_values = sorted(set(k_values))

    import torch
    import transformers

    from retrieval.rerank.backends.local import LocalBackend
    from benchmarks.sized_models import build_qwen2_vl_2b_sized
    from retrieval.models.tiny_vlm import build_tiny_qwen2_vl

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    workdir = args.workdir.absolute()
    if args.model_dir is not None:
        model_dir, model_note = args.model_dir, f"{args.model_dir} (given)"
    else:
        name = "tiny-qwen2-vl" if args.tiny else "qwen2-vl-2b-sized"
        t0 = time.perf_counter()
        builder = build_tiny_qwen2_vl if args.tiny else build_qwen2_vl_2b_sized
        cached = (workdir / name / "model.safetensors").is_file()
        model_dir = builder(workdir / name)
        model_note = (f"{model_dir} ({'cached' if cached else f'built in {time.perf_counter() - t0:.0f} s'}; "
                      f"{'tiny test model' if args.tiny else 'Qwen2-VL-2B-sized config'}, random weights)")

    backend = LocalBackend(model_dir, device=args.device, dtype=args.dtype)
    t0 = time.perf_counter()
    runner = Runner(backend, torch)
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in runner.model.parameters())
    if backend.device.type == "cuda":
        device = f"GPU {torch.cuda.get_device_name(backend.device)}"
    else:
        device = f"CPU {cpu_model()}, {len(os.sched_getaffinity(0))} cores available"
    header = [
        f"device: {device}; torch {torch.__version__} threads {torch.get_num_threads()} "
        f"(interop {torch.get_num_interop_threads()}); transformers {transformers.__version__}",
        f"model: {model_note}; {params / 1e9:.2f} B parameters, {backend.dtype} on {backend.device}, "
        f"loaded in {load_s:.1f} s; attention {runner.model.config._attn_implementation}",
        f"load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}"
        if os.path.exists("/proc/loadavg") else "load average: n/a",
    ]
    print("\n".join(header), flush=True)

    photos = load_photos(args.photos)
    print(f"candidates: {len(photos)} photos from {args.photos}, cycled; query {QUERY!r}; "
          f"K = {', '.join(map(str, k_values))}; {args.repeats} timed repeats after a warm-up", flush=True)
    notes = warm_up(runner, photos)
    print("\n".join(notes), flush=True)

    cases = build_cases(photos, k_values)
    skipped = 0
    for repeat in range(args.repeats):
        for case in cases:
            # Every configuration is measured once; later repeats only while they fit the budget.
            if repeat and time.perf_counter() - started + case.runs[-1].seconds > args.budget_s:
                skipped += 1
                continue
            sample = runner.measure(case, repeat)
            what = f"generate {case.new_tokens} tokens" if case.new_tokens else "forward"
            print(f"  [{repeat + 1}/{args.repeats}] K={case.k or '-'} {case.key:9s} {what:18s} "
                  f"{sample.seconds:7.2f} s  ({case.prompt_tokens} prompt / {case.visual_tokens} visual "
                  f"tokens; others {sample.foreign_cores:.2f} cores)", flush=True)

    lines, results = report(cases, k_values)
    total_s = time.perf_counter() - started
    runs = sorted({len(c.runs) for c in cases})
    notes += [
        "prefill / FIRST = wall time of one model forward (logits_to_keep=1) on LocalBackend's prepared "
        "inputs; list = model.generate on the grid ranking prompt, greedy, min_new_tokens = "
        "max_new_tokens = N, split by a logits processor into time to the first token (the prefill) and "
        "decode s/token; image preprocessing excluded (it is in the JSON as prep_s_median).",
        f"{'medians of ' + '-'.join(map(str, (runs[0], runs[-1]))) + ' timed runs' if len(runs) > 1 else ('median of ' if runs[0] > 1 else '') + f'{runs[0]} timed run' + ('s' if runs[0] > 1 else '')} "
        f"per figure after a warm-up{f' ({skipped} repeats skipped to stay within --budget-s)' if skipped else ''}; "
        "text tokens come from the random model's small BPE tokenizer (more than Qwen's real one); "
        "visual tokens are exact.",
        f"others (cores) = CPU time used by other processes during the samples / wall time; "
        f"total run time {total_s:.0f} s.",
    ]
    print()
    print("\n".join(lines))
    print()
    print("\n".join(notes[1:]))

    json_path = args.json or workdir / ("rerank_cost_tiny.json" if args.tiny else "rerank_cost.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    results.update({
        "device": device, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__, "model": str(model_dir), "tiny": args.tiny,
        "dtype": str(backend.dtype), "parameters": params, "load_s": load_s, "repeats": args.repeats,
        "k_values": k_values, "query": QUERY, "grid_cell_px": GRID_CELL, "separate_px": SEPARATE_SIZE,
        "table_markdown": "\n".join(lines), "notes": notes, "total_s": total_s,
        "raw": [
            {**{name: getattr(c, name) for name in RAW_FIELDS},
             "runs_s": [s.seconds for s in c.runs], "runs_foreign_cores": [s.foreign_cores for s in c.runs],
             "prep_s": [s.seconds for s in c.prep]}
            for c in cases
        ],
    })
    json_path.write_text(json.dumps(results, indent=2))
    print(f"results: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
