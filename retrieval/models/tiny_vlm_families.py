"""Tiny random-weight models of every reranker family gridrank runs, built from their transformers configs.

Qwen2-VL (tiny_vlm.py, the tiny profile's), Qwen2.5-VL (the default reranker's architecture), Qwen3-VL
(the newest) and InternVL3.5 in its transformers-native "-HF" form (ViC's model). Each is saved with
its own processor class, so the tests load it through the same code as the real checkpoint. Rankings
from them mean nothing; the code paths are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import (
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLProcessor,
    InternVLVideoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from retrieval.models.tiny_vlm import (QWEN2_VL_CHAT_TEMPLATE, build_processor, build_vlm, special_token_ids,
                                       tiny_qwen2_vl_config, train_tokenizer)

# The tiny text model every family shares: 2 layers of width 64.
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 4096}
# M-RoPE splits head_dim / 2 = 8 rotary pairs over (time, height, width).
_MROPE = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
_PIXELS = {"min_pixels": 4 * 28 * 28, "max_pixels": 64 * 28 * 28}  # 4 to 64 visual tokens per image

# InternVL's tokens, read by its processor by name; its images sit where <IMG_CONTEXT> stands.
INTERNVL_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                   "video_token": "<video>"}
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
INTERNVL_TILE = 64  # px: one tile, 16 px patches, pixel shuffle by 0.5: 4 tokens per tile
INTERNVL_TILE_TOKENS = (INTERNVL_TILE // 16) ** 2 // 4


def _text_config(tokenizer: Qwen2Tokenizer, **extra) -> dict[str, Any]:
    ids = special_token_ids(tokenizer)
    return {**_TEXT, "vocab_size": len(tokenizer), "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"], "pad_token_id": ids["pad_token_id"], **extra}


def _vision_token_ids(tokenizer: Qwen2Tokenizer) -> dict[str, int]:
    ids = special_token_ids(tokenizer)
    return {key: ids[key] for key in ("image_token_id", "video_token_id", "vision_start_token_id",
                                      "vision_end_token_id")}


def qwen2_5_vl_config(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLConfig:
    """Qwen2.5-VL: window attention in the vision tower (one full-attention block), SwiGLU, a merger."""
    return Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer, rope_parameters=_MROPE),
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [1]},
        **_vision_token_ids(tokenizer))


def qwen2_5_vl_processor(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLProcessor:
    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**_PIXELS), tokenizer=tokenizer,
                               video_processor=Qwen2VLVideoProcessor(**_PIXELS), chat_template=QWEN2_VL_CHAT_TEMPLATE)


def qwen3_vl_config(tokenizer: Qwen2Tokenizer) -> Qwen3VLConfig:
    """Qwen3-VL: 16 px patches, learned position embeddings, DeepStack features, interleaved M-RoPE."""
    return Qwen3VLConfig(
        text_config=_text_config(tokenizer, head_dim=16, rope_parameters={**_MROPE, "mrope_interleaved": True}),
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
        **_vision_token_ids(tokenizer))


def qwen3_vl_processor(tokenizer: Qwen2Tokenizer) -> Qwen3VLProcessor:
    # 16 px patches merged 2 x 2: 32 px per visual token.
    pixels = {"patch_size": 16, "merge_size": 2, "min_pixels": 4 * 32 * 32, "max_pixels": 64 * 32 * 32}
    return Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tokenizer,
                            video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2),
                            chat_template=QWEN2_VL_CHAT_TEMPLATE)


def internvl_tokenizer() -> Qwen2Tokenizer:
    return train_tokenizer(INTERNVL_TOKENS, INTERNVL_CHAT_TEMPLATE)


def internvl_config(tokenizer: Qwen2Tokenizer) -> InternVLConfig:
    """InternVL3.5-HF: an InternViT tower, pixel shuffle by 0.5, an MLP projector into a Qwen3 language model."""
    return InternVLConfig(
        vision_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                       "image_size": [INTERNVL_TILE, INTERNVL_TILE], "patch_size": [16, 16]},
        text_config=_text_config(tokenizer, model_type="qwen3", head_dim=16),
        image_token_id=tokenizer.context_image_token_id, image_seq_length=INTERNVL_TILE_TOKENS)


def internvl_processor(tokenizer: Qwen2Tokenizer) -> InternVLProcessor:
    # Dynamic tiling as InternVL does it: up to 4 tiles plus a thumbnail per image.
    size = {"height": INTERNVL_TILE, "width": INTERNVL_TILE}
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=4),
        tokenizer=tokenizer, video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=INTERNVL_TILE_TOKENS, chat_template=INTERNVL_CHAT_TEMPLATE)


@dataclass(frozen=True)
class TinyFamily:
    name: str  # as the README's family x method table names it
    build: Callable[[Path], Path]


def _builder(make_tokenizer: Callable[[], Qwen2Tokenizer], make_config: Callable, make_processor: Callable
             ) -> Callable[[Path], Path]:
    return partial(build_vlm, make_tokenizer=make_tokenizer, make_config=make_config, make_processor=make_processor,
                   dtype=torch.float32)


TINY_FAMILIES: dict[str, TinyFamily] = {family.name: family for family in (
    TinyFamily("Qwen2-VL", _builder(train_tokenizer, tiny_qwen2_vl_config, build_processor)),
    TinyFamily("Qwen2.5-VL", _builder(train_tokenizer, qwen2_5_vl_config, qwen2_5_vl_processor)),
    TinyFamily("Qwen3-VL", _builder(train_tokenizer, qwen3_vl_config, qwen3_vl_processor)),
    TinyFamily("InternVL3.5-HF", _builder(internvl_tokenizer, internvl_config, internvl_processor)),
)}
