"""The hubness banks of an index, built at index time and stored with it (INDEX/hub_banks.npz).

The query bank is the user's text queries (a caption file: one query per line), embedded by the index's
CLIP model; the gallery bank is a fixed sample of the index's own vectors. From them each stored vector
gets what QB-Norm and DBNorm divide its scores by (query/hubness.py); a later index run recomputes those
for the vectors it added, from the stored banks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from retrieval.errors import BadQueryError, SettingsError
from retrieval.query.hubness import DB_BETA_GALLERY, DB_BETA_QUERY, QB_BETA, HubBanks, log_sums, normalize
from retrieval.store.vector_index import Neighbours, VectorIndex

HUB_FILE = "hub_banks.npz"
GALLERY_BANK_SIZE = 5000  # vectors sampled from the index for DBNorm's gallery bank
SUMS_BLOCK = 8192  # stored vectors per bank product: bounds memory at millions of vectors
# How many first-stage neighbours a hub-normalised search reorders (one FAISS search either way; the full
# gallery in eval). A search that needs more widens as it does without hub normalisation.
HUB_POOL = 1000


@dataclass(frozen=True)
class StoredBanks:
    ids: np.ndarray  # (n,) sorted vector ids the sums belong to
    banks: HubBanks  # aligned with ids
    query_bank: np.ndarray  # (m, d) float32: the embedded bank queries
    gallery_bank: np.ndarray  # (g, d) float32: the sampled gallery vectors

    def reorder(self, neighbours: Neighbours, method: str) -> Neighbours:
        """The same neighbours, in the order of their hub-normalised scores; the scores shown stay the cosines."""
        if method == "none" or not len(neighbours.ids):
            return neighbours
        positions = np.clip(np.searchsorted(self.ids, neighbours.ids), 0, len(self.ids) - 1)
        known = self.ids[positions] == neighbours.ids
        banks = self.banks.take(positions)
        if not known.all():  # added since the banks were last computed: the typical item's normalisers
            qb, db_query, db_gallery = self._typical
            banks = HubBanks(np.where(known, banks.qb_log_sums, qb), banks.activated & known,
                             np.where(known, banks.db_query_log_sums, db_query),
                             None if db_gallery is None else np.where(known, banks.db_gallery_log_sums, db_gallery))
        order = np.argsort(-normalize(neighbours.scores, banks, method), kind="stable")
        return Neighbours(neighbours.ids[order], neighbours.scores[order])

    @cached_property
    def _typical(self) -> tuple[float, float, float | None]:
        """The median item's normalisers, once (a search must not take medians over millions of items)."""
        b = self.banks
        gallery = None if b.db_gallery_log_sums is None else float(np.median(b.db_gallery_log_sums))
        return float(np.median(b.qb_log_sums)), float(np.median(b.db_query_log_sums)), gallery


def compute(query_bank: np.ndarray, gallery_bank: np.ndarray, frames: VectorIndex) -> StoredBanks:
    """Every stored vector's normalisers from the two banks, a block of vectors at a time."""
    ids = np.sort(frames.ids())
    if not len(ids):
        raise BadQueryError("the index holds no vectors to build hubness banks for: index some media first")
    qb, db_query, db_gallery = [], [], []
    best_score = np.full(len(query_bank), -np.inf)
    best_at = np.zeros(len(query_bank), dtype=np.int64)
    for start in range(0, len(ids), SUMS_BLOCK):
        vectors = frames.vectors(ids[start:start + SUMS_BLOCK])
        scores = query_bank @ vectors.T
        qb.append(log_sums(scores, QB_BETA))
        db_query.append(log_sums(scores, DB_BETA_QUERY))
        db_gallery.append(log_sums(gallery_bank @ vectors.T, DB_BETA_GALLERY))
        # QB-Norm's activation: each bank query's top item over the whole index, not per block.
        block_best = scores.argmax(axis=1)
        top = scores[np.arange(len(scores)), block_best]
        better = top > best_score
        best_score[better] = top[better]
        best_at[better] = start + block_best[better]
    activated = np.zeros(len(ids), dtype=bool)
    activated[best_at] = True
    banks = HubBanks(np.concatenate(qb), activated, np.concatenate(db_query), np.concatenate(db_gallery))
    return StoredBanks(ids, banks, query_bank.astype(np.float32), gallery_bank.astype(np.float32))


def gallery_rows(count: int, size: int = GALLERY_BANK_SIZE, seed: int = 0) -> np.ndarray:
    """DBNorm's gallery bank: which of `count` gallery items, a fixed random sample of up to `size`, in order."""
    return np.sort(np.random.default_rng(seed).choice(count, min(size, count), replace=False))


def sample_gallery(frames: VectorIndex) -> np.ndarray:
    ids = np.sort(frames.ids())
    return frames.vectors(ids[gallery_rows(len(ids))])


def read_query_bank(path: Path) -> list[str]:
    """One query per line; blank lines are skipped."""
    try:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"cannot read the query bank {path}: {e}; give a UTF-8 text file, one query per line")
    if not texts:
        raise SettingsError(f"the query bank {path} holds no query: give a text file with one query per line")
    return texts


def save(index_dir: Path, stored: StoredBanks) -> Path:
    path = index_dir / HUB_FILE
    tmp = path.with_suffix(".tmp.npz")
    b = stored.banks
    np.savez(tmp, ids=stored.ids, qb_log_sums=b.qb_log_sums, activated=b.activated,
             db_query_log_sums=b.db_query_log_sums, db_gallery_log_sums=b.db_gallery_log_sums,
             query_bank=stored.query_bank, gallery_bank=stored.gallery_bank)
    tmp.replace(path)  # a crash leaves the old banks whole
    return path


def load(index_dir: Path) -> StoredBanks | None:
    path = index_dir / HUB_FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        banks = HubBanks(data["qb_log_sums"], data["activated"], data["db_query_log_sums"], data["db_gallery_log_sums"])
        return StoredBanks(data["ids"], banks, data["query_bank"], data["gallery_bank"])
