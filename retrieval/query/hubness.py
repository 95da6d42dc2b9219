"""Hubness correction: a few gallery items are the nearest neighbour of far too many queries; renormalising each
item's similarities by how similar it is to a bank of queries (and, for DBNorm, to a bank of gallery items)
removes that bias without training. Pure numpy, shared by the search and eval.

- QB-Norm (Bogolin et al., CVPR 2022), as its code does it (ioanacroi/qb-norm, dynamic_inverted_softmax.py):
  the inverted softmax exp(beta * s(q, g)) / sum over bank queries b of exp(beta * s(b, g)), beta = 20, applied
  to a query only when its top-1 item is the top-1 of some bank query (the "dynamic" test, k = 1); other queries
  keep their raw scores.
- DBNorm (Wang et al., "Balance Act", EMNLP 2023; yimuwangcs/Better_Cross_Modal_Retrieval, DBNorm/dbnorm.py):
  the product of two inverted softmaxes of the query's scores, one over the query bank (beta1 = 1 / 1.99), one
  over the gallery bank (beta2 = 3), both applied to every query. (The released db_norm passes its gallery bank's
  matrix where the test matrix belongs; this follows the paper's formula, which normalises the test scores.)

Scores are kept in the log domain (beta * s - log of the bank sum): the same order as the ratios, with no overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.query.hub_names import HubNorm

QB_BETA = 20.0  # qb-norm's default --beta
QB_K = 1  # qb-norm's default --k: a bank query's top-1 marks its item as a hub
DB_BETA_QUERY = 1 / 1.99  # dbnorm.py's beta1
DB_BETA_GALLERY = 3.0  # dbnorm.py's beta2


@dataclass(frozen=True)
class HubBanks:
    """Per gallery item, what the normalisations divide by, from the banks (built once, stored with the index)."""

    qb_log_sums: np.ndarray  # (n,) log sum over bank queries of exp(QB_BETA * s(b, g))
    activated: np.ndarray  # (n,) bool: the top-QB_K item of some bank query
    db_query_log_sums: np.ndarray  # (n,) log sum over bank queries of exp(DB_BETA_QUERY * s(b, g))
    db_gallery_log_sums: np.ndarray | None  # (n,) the same over the gallery bank with DB_BETA_GALLERY; None: no bank

    def take(self, items: np.ndarray) -> HubBanks:
        """The banks' values for a subset of the items (a search's candidate pool)."""
        gallery = None if self.db_gallery_log_sums is None else self.db_gallery_log_sums[items]
        return HubBanks(self.qb_log_sums[items], self.activated[items], self.db_query_log_sums[items], gallery)


def log_sums(bank_scores: np.ndarray, beta: float) -> np.ndarray:
    """Per item (column), log of the sum over the bank (rows) of exp(beta * score): an inverted softmax's divisor."""
    scaled = beta * np.asarray(bank_scores, dtype=np.float64)
    top = scaled.max(axis=0)
    return top + np.log(np.exp(scaled - top).sum(axis=0))


def bank_sums(query_bank_scores: np.ndarray, gallery_bank_scores: np.ndarray | None = None) -> HubBanks:
    """From the banks' similarities to every item: `query_bank_scores` (bank queries x items) and, for DBNorm,
    `gallery_bank_scores` (bank items x items)."""
    bank = np.asarray(query_bank_scores, dtype=np.float64)
    if bank.ndim != 2 or bank.shape[0] == 0:
        raise ValueError(f"a query bank needs at least one query: got scores of shape {bank.shape}")
    activated = np.zeros(bank.shape[1], dtype=bool)
    activated[np.argsort(-bank, axis=1, kind="stable")[:, :QB_K].ravel()] = True
    gallery = None if gallery_bank_scores is None else log_sums(gallery_bank_scores, DB_BETA_GALLERY)
    return HubBanks(log_sums(bank, QB_BETA), activated, log_sums(bank, DB_BETA_QUERY), gallery)


def normalize(scores: np.ndarray, banks: HubBanks, method: HubNorm) -> np.ndarray:
    """Queries x items scores renormalised by `method` (log domain: rank by them, don't show them)."""
    scores = np.asarray(scores, dtype=np.float64)
    if method == "none":
        return scores
    if method == "qbnorm":
        normalized = QB_BETA * scores - banks.qb_log_sums
        # Dynamic inverted softmax: only queries whose top-1 item is a bank query's top-1 are renormalised.
        apply = banks.activated[np.argmax(scores, axis=-1)]
        return np.where(apply[..., None], normalized, scores)
    if banks.db_gallery_log_sums is None:
        raise ValueError("dbnorm needs a gallery bank as well as a query bank")
    return (DB_BETA_QUERY * scores - banks.db_query_log_sums) + (DB_BETA_GALLERY * scores - banks.db_gallery_log_sums)


def hub_share(scores: np.ndarray) -> float:
    """How many queries' top-1 the most frequent top-1 item takes: 1 / n_queries when no item is a hub."""
    top = np.argmax(scores, axis=-1)
    return float(np.bincount(top).max() / len(top))
