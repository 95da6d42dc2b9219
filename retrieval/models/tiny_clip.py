"""A tiny open_clip model of the real ViT architecture, with random weights.

Model hubs are unreachable where this project is built and tested, so the `tiny` profile builds
this model once (fixed seed), saves it as an open_clip `local-dir:` folder and from then on loads
it through the same open_clip factory path as real local checkpoints. Its rankings mean nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file

TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    # vocab and context length match open_clip's own BPE tokenizer, which ships with the package.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
SEED = 0


def tiny_clip_dir(cache_dir: Path) -> Path:
    return cache_dir / "models" / "tiny-clip-v1"


def build_tiny_clip(cache_dir: Path) -> Path:
    """Return the folder of the tiny model, building it on first use. Safe across processes."""
    target = tiny_clip_dir(cache_dir)
    if (target / WEIGHTS_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-clip-", dir=target.parent))
    try:
        with torch.random.fork_rng():
            torch.manual_seed(SEED)
            model = open_clip.CLIP(**TINY_CLIP_CONFIG)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, staging / WEIGHTS_FILE)
        config = {
            "model_cfg": TINY_CLIP_CONFIG,
            "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)},
        }
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished first; its copy is identical (same seed).
            if not (target / WEIGHTS_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
