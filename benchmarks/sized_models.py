"""Full-size architectures with random weights, for cost benchmarks only: the arithmetic is the real
model's, so prefill and decode times are too. Built once into a work folder and reused.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Qwen2Tokenizer, Qwen2VLConfig

from retrieval.models.tiny_vlm import build_qwen2_vl, qwen2_vl_config


def qwen2_vl_2b_sized_config(tokenizer: Qwen2Tokenizer) -> Qwen2VLConfig:
    """The shapes of Qwen/Qwen2-VL-2B-Instruct (full vocabulary included), for cost benchmarks."""
    return qwen2_vl_config(
        tokenizer,
        text={"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
              "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 32768,
              "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}},
        vision={"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4, "hidden_size": 1536},
        tie_word_embeddings=True,
    )


def build_qwen2_vl_2b_sized(out_dir: Path) -> Path:
    """A Qwen2-VL-2B-sized model with random weights (bfloat16, about 4.4 GB on disk)."""
    return build_qwen2_vl(out_dir, qwen2_vl_2b_sized_config, torch.bfloat16)
