"""Which FAISS index a collection gets, from its size and a memory budget (the autofaiss way).

- Under FLAT_MAX_VECTORS: exact search over float32 vectors ("Flat"); float16 ("SQfp16") or
  8-bit ("SQ8") flat codes only when float32 does not fit the budget.
- Above: an inverted file (IVF) with a k-means-trained quantizer of about sqrt(n)/4 lists holding
  4-bit fast-scan PQ codes of dim/2 sub-vectors, whose best candidates are rescored against the
  vectors stored as 8-bit codes ("IVF<n>,PQ<dim/2>x4fs,Refine(SQ8)"): the fast-scan codes are
  cheap enough to scan every list when the data has no cluster structure, where a float16 IVF
  must read 2*dim bytes per vector. Plain IVF (about 4*sqrt(n) lists) with SQ8 or PQ codes when
  the budget demands it.
  IVF rather than HNSW because an incremental index must remove the vectors of changed and
  deleted files, which FAISS's HNSW cannot do (a forced HNSW factory works, but a removal
  rebuilds the graph) and because HNSW's links cost 8*M bytes per vector on top.

Everything here is a pure function of numbers and strings, tested without an index.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from retrieval.errors import SettingsError

IndexFamily = Literal["flat", "ivf", "hnsw"]

FLAT_MAX_VECTORS = 100_000
MIN_NLIST, MAX_NLIST = 256, 65_536
# Fast-scan lists: 16x fewer. Scanning one costs a lookup-table pass of its own, so long lists scan
# all codes at nearly flat speed (one query over 300k vectors, 2 cores: 1.3 ms in 64 lists, 2.6 ms in 1024).
FAST_SCAN_LIST_DIVISOR, FAST_SCAN_MIN_NLIST = 16, 64
# From here on, scanning every code (what data without clusters needs) costs more than the 10 ms aimed at on
# 2 cores anyway (about 7 ms at 1M), and few long lists cost clustered data dearly: at 10M in 4096 lists, a query
# had to scan 256 of them (44 ms) for recall@10 0.96. So fast-scan lists follow the usual 4*sqrt(n) too: short
# enough that a query on clustered data, as CLIP embeddings are, finds its neighbours in a few (2M vectors in
# 4096 lists: 4 scanned for recall@10 0.96, 2.6 ms). benchmarks/search_latency.py --n 10000000 measures it.
LARGE_COLLECTION = 4_000_000
TRAIN_POINTS_PER_LIST = 40  # FAISS warns below 39 training points per list
PQ_TRAIN_POINTS = 65_536  # PQ codebooks want more samples than a few lists give
# recall@10 an approximate index's search parameters are tuned to reach on 200 of the collection's
# own vectors: above the 0.95 aimed at, as a margin for the sampling error of 200 queries and for
# picking the cheapest setting that passes (0.974 on own vectors gave 0.957 on fresh ones at 1M;
# 0.971 gave 0.947 at 10M, with a target of 0.97).
RECALL_TARGET = 0.975
DEFAULT_EF_SEARCH = 128
ID_BYTES = 8
# Reverse id maps (IndexIDMap2, IVF direct map) are C++ hash maps: about this much per vector.
ID_MAP_BYTES = 48


class IndexFactoryError(SettingsError):
    """A forced factory string that gridrank cannot use; the message says which forms work."""


@dataclass(frozen=True)
class IndexPlan:
    factory: str  # FAISS index_factory string, without the IDMap2 wrapper gridrank adds itself
    family: IndexFamily
    nlist: int | None = None  # IVF: number of inverted lists
    nprobe: int | None = None  # IVF: lists scanned per query (a starting point; tuned on recall)
    ef_search: int | None = None  # HNSW: candidate list size per query
    estimated_bytes: int = 0
    reason: str = ""
    forced: bool = False  # from the index_factory setting, not chosen by size

    @property
    def exact(self) -> bool:
        """Only float32 flat search is exact by construction (recall 1.0 without measuring)."""
        return self.factory == "Flat"

    @property
    def train_size(self) -> int:
        """How many vectors training needs (0: no training, or none worth sampling)."""
        if not self.nlist:
            return 0
        lists = self.nlist * TRAIN_POINTS_PER_LIST
        return max(lists, PQ_TRAIN_POINTS) if "PQ" in self.factory else lists


def code_bytes(codec: str, dim: int) -> int:
    """Bytes one vector's stored code takes: Flat, SQfp16, SQ8, PQ<m>[x<bits>][fs] or PQ<m>x4fs,Refine(<codec>)."""
    if refined := _REFINED_CODEC.fullmatch(codec):
        return code_bytes(refined["scan"], dim) + code_bytes(refined["store"], dim) + ID_BYTES
    if codec == "Flat":
        return 4 * dim
    if codec == "SQfp16":
        return 2 * dim
    if codec == "SQ8":
        return dim
    pq = re.fullmatch(r"PQ(\d+)(?:x(\d+))?(?:fs)?", codec)
    if pq:
        return math.ceil(int(pq[1]) * int(pq[2] or 8) / 8)
    raise IndexFactoryError(f"unknown vector codec {codec!r}")


def estimate_bytes(family: IndexFamily, codec: str, n: int, dim: int, nlist: int = 0, hnsw_m: int = 0) -> int:
    per_vector = code_bytes(codec, dim) + ID_BYTES + ID_MAP_BYTES + 2 * hnsw_m * 4
    fixed = nlist * dim * 4  # IVF centroids
    if "PQ" in codec:
        fixed += 256 * dim * 4  # PQ codebooks
    return n * per_vector + fixed


def refined_codec(dim: int) -> str:
    """The automatic codec of a large index: fast-scan PQ over dim/2 sub-vectors, rescored from SQ8 codes.

    Two dimensions per 4-bit sub-quantizer keep the fast-scan estimate close enough that the true
    top 10 are among the RESCORE_CANDIDATES best estimates (recall@10 1.000 on 1M uniform
    512-d vectors in the prototype the README describes).
    """
    return f"PQ{dim // 2}x4fs,Refine(SQ8)"


def nlist_for(n: int, fast_scan: bool = False) -> int:
    """About 4*sqrt(n) lists, as a power of two, within [MIN_NLIST, MAX_NLIST]; 16x fewer for fast-scan codes
    below LARGE_COLLECTION."""
    target = 4 * math.sqrt(max(n, 1))
    lists = int(min(MAX_NLIST, max(MIN_NLIST, 2 ** round(math.log2(target)))))
    if fast_scan and n < LARGE_COLLECTION:
        return max(FAST_SCAN_MIN_NLIST, lists // FAST_SCAN_LIST_DIVISOR)
    return lists


def default_nprobe(nlist: int) -> int:
    return max(1, nlist // 64)


def pq_sizes(dim: int) -> list[int]:
    """PQ sub-quantizer counts that divide dim, largest (most accurate) first, at most dim/2 bytes."""
    return [m for m in (256, 128, 96, 64, 48, 32, 24, 16, 8, 4) if m <= dim // 2 and dim % m == 0]


def plan_index(n: int, dim: int, memory_budget_bytes: int, forced: str | None = None) -> IndexPlan:
    """The index for n vectors of dim dimensions that fits memory_budget_bytes, or the forced factory."""
    if forced:
        return _forced_plan(forced, n, dim)
    if n < FLAT_MAX_VECTORS:
        for codec in ("Flat", "SQfp16", "SQ8"):
            size = estimate_bytes("flat", codec, n, dim)
            if size <= memory_budget_bytes:
                why = "exact search" if codec == "Flat" else f"float32 does not fit {_mb(memory_budget_bytes)}"
                return IndexPlan(codec, "flat", estimated_bytes=size,
                                 reason=f"{n:,} vectors < {FLAT_MAX_VECTORS:,}: {why}")
    nlist = nlist_for(n)
    if n < nlist * TRAIN_POINTS_PER_LIST // 4:  # too few vectors even for a coarse quantizer
        return IndexPlan("SQ8", "flat", estimated_bytes=estimate_bytes("flat", "SQ8", n, dim),
                         reason=f"{n:,} vectors: too few to train {nlist} lists, smallest flat codes")
    codecs = [refined_codec(dim), "SQ8", *(f"PQ{m}" for m in pq_sizes(dim))]
    for codec in codecs:
        nlist = nlist_for(n, fast_scan="x4fs" in codec)
        size = estimate_bytes("ivf", codec, n, dim, nlist)
        if size <= memory_budget_bytes:
            break
    reason = f"{n:,} vectors >= {FLAT_MAX_VECTORS:,}: approximate search" if n >= FLAT_MAX_VECTORS else (
        f"{n:,} vectors but flat codes do not fit {_mb(memory_budget_bytes)}")
    if size > memory_budget_bytes:
        reason += f"; smallest codes still need {_mb(size)}, over the {_mb(memory_budget_bytes)} budget"
    elif codec != codecs[0]:
        reason += f"; {codec} codes to fit {_mb(memory_budget_bytes)}"
    return IndexPlan(f"IVF{nlist},{codec}", "ivf", nlist=nlist, nprobe=default_nprobe(nlist),
                     estimated_bytes=size, reason=reason)


_FLAT_FORM = re.compile(r"(?P<codec>Flat|SQfp16|SQ8)")
_REFINED_CODEC = re.compile(r"(?P<scan>PQ(?P<pq>\d+)x4fs),Refine\((?P<store>Flat|SQfp16|SQ8)\)")
_IVF_FORM = re.compile(
    r"IVF(?P<nlist>\d+),(?P<codec>Flat|SQfp16|SQ8|PQ(?P<pq>\d+)(?:x\d+)?|PQ(?P<fspq>\d+)x4fs,Refine\((?:Flat|SQfp16|SQ8)\))")
_HNSW_FORM = re.compile(r"HNSW(?P<m>\d+)(?:,(?P<codec>Flat|SQfp16|SQ8))?")


def _forced_plan(factory: str, n: int, dim: int) -> IndexPlan:
    """The plan for a forced factory string; dim 0 (not known yet) checks only its form."""
    forced = "forced by the index_factory setting"
    if form := _FLAT_FORM.fullmatch(factory):
        return IndexPlan(factory, "flat", estimated_bytes=estimate_bytes("flat", factory, n, dim), reason=forced,
                         forced=True)
    if form := _HNSW_FORM.fullmatch(factory):
        m, codec = int(form["m"]), form["codec"] or "Flat"
        return IndexPlan(factory, "hnsw", ef_search=DEFAULT_EF_SEARCH,
                         estimated_bytes=estimate_bytes("hnsw", codec, n, dim, hnsw_m=m), reason=forced, forced=True)
    form = _IVF_FORM.fullmatch(factory)
    if not form:
        raise IndexFactoryError(
            f"index_factory {factory!r} is not one gridrank can build: use Flat, SQfp16, SQ8, "
            "IVF<lists>,<Flat|SQfp16|SQ8|PQ<m>>, IVF<lists>,PQ<m>x4fs,Refine(<Flat|SQfp16|SQ8>) or "
            "HNSW<M>[,<Flat|SQfp16|SQ8>], e.g. IVF4096,SQfp16, IVF4096,PQ256x4fs,Refine(SQ8) or HNSW32,SQfp16; "
            "or leave index_factory unset to choose by collection size")
    pq = form["pq"] or form["fspq"]
    if pq and dim and dim % int(pq):
        raise IndexFactoryError(f"index_factory {factory!r}: the PQ sub-quantizer count must divide {dim}")
    nlist = int(form["nlist"])
    if n < nlist:
        return IndexPlan("Flat", "flat", estimated_bytes=estimate_bytes("flat", "Flat", n, dim),
                         reason=f"forced {factory}, but {n:,} vectors cannot train {nlist} lists yet: exact "
                         "search until there are as many vectors as lists", forced=True)
    return IndexPlan(factory, "ivf", nlist=nlist, nprobe=default_nprobe(nlist),
                     estimated_bytes=estimate_bytes("ivf", form["codec"], n, dim, nlist), reason=forced, forced=True)


def validate_factory(factory: str) -> str:
    """The factory string if it has a form gridrank can build, else IndexFactoryError saying which work."""
    _forced_plan(factory, 0, 0)
    return factory


def needs_rebuild(current_factory: str, plan: IndexPlan) -> bool:
    """Whether an index built as current_factory should be rebuilt to follow plan.

    An automatic IVF plan whose list count moved less than 4x keeps the trained index: the
    lists stay useful, and a collection growing past a power-of-two boundary does not retrain
    on every run.
    """
    if current_factory == plan.factory:
        return False
    current = _IVF_FORM.fullmatch(current_factory)
    if current and plan.family == "ivf" and not plan.forced:
        same_codec = plan.factory.endswith("," + current["codec"])
        ratio = plan.nlist / int(current["nlist"])
        return not (same_codec and 0.25 < ratio < 4)
    return True


def pending_rebuild(n_vectors: int, dim: int, current_factory: str, memory_budget_mb: float,
                    forced: str | None = None) -> IndexPlan | None:
    """The index type a frame index of `current_factory` should be rebuilt as, for its size and the
    settings' budget and forced factory; None if it already is one."""
    plan = plan_index(n_vectors, dim, int(memory_budget_mb * 2**20), forced)
    return plan if needs_rebuild(current_factory, plan) else None


def keeps_stored_codes(current_factory: str, new_factory: str) -> bool:
    """Whether a rebuild from current_factory to new_factory can keep the stored vector codes as they are.

    Both refined, with the same codec for the stored vectors: only the candidate lists change, and
    the vectors are not decoded and quantized a second time (four successive rebuilds that did so
    lowered recall@10 by about 0.01 each, measured on 300k vectors).
    """
    current, new = refined_parts(current_factory), refined_parts(new_factory)
    return bool(current and new and current[1] == new[1])


def refined_parts(factory: str) -> tuple[str, str] | None:
    """("IVF<n>,PQ<m>x4fs", stored codec) of a refined factory string; None for any other."""
    form = _IVF_FORM.fullmatch(factory)
    refined = _REFINED_CODEC.fullmatch(form["codec"]) if form else None
    return (f"IVF{form['nlist']},{refined['scan']}", refined["store"]) if refined else None


def faiss_uses_gpu(device: str, num_gpus: int) -> bool:
    """Train and measure on the GPU when FAISS sees one and the device setting allows it."""
    return num_gpus > 0 and not device.startswith("cpu")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MB"
