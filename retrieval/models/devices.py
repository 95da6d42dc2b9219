"""Where models run: one rule for the CLIP encoder and the local reranker."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """'auto' means the first CUDA GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
