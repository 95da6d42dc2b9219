"""One L2 normalisation for every vector the project compares by inner product."""

from __future__ import annotations

import numpy as np

EPS = 1e-12  # a zero vector stays zero instead of dividing by zero


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit length along the last axis (one vector, or a batch of rows), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, EPS)).astype(np.float32)
