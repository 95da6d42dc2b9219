"""After an index run: the hubness banks (retrieval/query/hub_banks.py) for every vector the index holds.

A query bank file given now replaces the stored one; otherwise the stored banks are recomputed for the
vectors this run added. An index whose hub_norm setting asks for a correction but that has no query bank
is an error here, at index time, not at the first search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.errors import SettingsError
from retrieval.models.encoder import ClipEncoder
from retrieval.query import hub_banks
from retrieval.query.hub_banks import read_query_bank
from retrieval.store.index_store import IndexStore


def check_bank(index_dir: Path, query_bank: Path | None, hub_norm: str) -> None:
    """Before an index run: a query bank file that can be read, or one stored, wherever hub_norm needs one."""
    if query_bank is not None:
        read_query_bank(query_bank)
    elif hub_norm != "none" and not (index_dir / hub_banks.HUB_FILE).is_file():
        raise SettingsError(f"hub_norm {hub_norm} needs a query bank, and this index has none: pass --query-bank "
                            "QUERIES.txt (one typical query per line, e.g. past searches or captions)")


def refresh_banks(index_dir: Path, encoder: ClipEncoder, query_bank: Path | None,
                  batch_size: int = 256) -> Path | None:
    """Write INDEX/hub_banks.npz for the index's vectors now; None when the index has no banks and needs none.
    (check_bank ran before the index run.)"""
    stored = hub_banks.load(index_dir)
    if query_bank is not None:
        texts = read_query_bank(query_bank)
        bank = np.concatenate([encoder.encode_texts(texts[i:i + batch_size])
                               for i in range(0, len(texts), batch_size)])
    elif stored is not None:
        bank = stored.query_bank
    else:
        return None
    store = IndexStore.open(index_dir)
    try:
        if query_bank is None and stored is not None and np.array_equal(stored.ids, np.sort(store.frames.ids())):
            return index_dir / hub_banks.HUB_FILE  # nothing added or removed: the stored sums still hold
        gallery = stored.gallery_bank if stored is not None else hub_banks.sample_gallery(store.frames)
        return hub_banks.save(index_dir, hub_banks.compute(bank, gallery, store.frames))
    finally:
        store.close()
