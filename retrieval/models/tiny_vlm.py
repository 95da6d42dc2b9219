"""Qwen2-VL models of the real architecture with random weights, saved like a Hub checkpoint.

Model hubs are unreachable where this project is built and tested, so tests build a tiny
Qwen2-VL (2 text layers, a 2-block vision tower, a byte-level BPE tokenizer trained on the fly
with Qwen's special tokens and chat template) and load it back through the very code that loads
real Qwen2-VL / Qwen2.5-VL weights. The benchmark builds a Qwen2-VL-2B-sized model the same way:
with random weights the arithmetic, and so the cost, is that of the real model. Rankings from
either mean nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    AutoModelForImageTextToText,
    GenerationConfig,
    Qwen2Tokenizer,
    Qwen2VLConfig,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

SEED = 0
# An upper bound: the trainer stops earlier (near 860) once the corpus has no pair left to merge.
VOCAB_LIMIT = 1000

# Qwen2's special tokens in Qwen's order; they follow the BPE vocabulary as in the real tokenizer.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The pre-tokenizer split of Qwen2's tokenizer: digits one by one, letters in runs.
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2-VL-Instruct's chat template, verbatim.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tokenizer is trained on: the chat roles and the words of the reranking prompts and
# answers, so that prompts tokenize into a realistic number of tokens rather than one per byte.
_CORPUS = """
system
user
assistant
You are a helpful assistant.
You are a careful visual search assistant. Rank the candidate images by how well each one
matches the query. The candidates are shown in one grid; each cell carries a large mark in its
corner: A B C D E F G H I J K L M N O P Q R S T. Answer with the marks of the candidates from
best to worst, for example: C > A > B > D, or [3, 1, 2], or {"ranking": ["B", "A", "C"]}.
Image 1: Image 2: Image-3: Image-4: Picture 5: Video 6: Subtitle-1: Subtitle-2: the frames of
each video are tiled in a square grid, sampled uniformly over its length, at 00:01:05.
Query: two kids skateboarding at dusk. Query: a goal being scored in a football match.
Reference image and modification: the same dress but in red, with long sleeves.
First deconstruct the query into elements: subject, action, key detail, environment, style.
Then judge each candidate against those elements with a short verdict, then synthesize a
final ranking. Reasoning: candidate A shows a dog on a beach; candidate B shows a red car in a
city street at night; candidate C shows people walking in a park in the rain.
Describe the target image in one sentence. A photo of a woman wearing a red dress.
The quick brown fox jumps over the lazy dog while children play football on green grass near
the river, mountains, snow, sunset, sky, clouds, trees, flowers, building, kitchen, table, cat.
Search your photos and videos by text, by an example image plus a change in words, or for a
moment in a video. An index finds candidates fast; a multimodal language model then looks at
the top candidates, serialized as marked image grids, and reorders them, explaining why.
Keep what must be kept from the reference and apply each requested change: color, shape,
material, pattern, background, lighting, season, weather, time of day, number of people.
Verdict: matches, partly matches, does not match. Which candidate fits best? Only the mark.
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 (1) (2) [A] [B] "A", "B" {} [] <> , . ; : ! ?
"""


def train_tokenizer(named_tokens: dict[str, str] | None = None,
                    chat_template: str = QWEN2_VL_CHAT_TEMPLATE) -> Qwen2Tokenizer:
    """A small byte-level BPE with Qwen2's pre-tokenizer, special tokens and chat template.

    `named_tokens` adds special tokens a processor reads by name (InternVL's `context_image_token`
    "<IMG_CONTEXT>" and the like), after Qwen's.
    """
    backend = Tokenizer(BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    # The full byte alphabet makes every character, each mark letter included, one token.
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_LIMIT - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([_CORPUS], trainer)
    vocab = backend.get_vocab()
    base = len(vocab)
    named = dict(named_tokens or {})
    vocab.update({token: base + i for i, token in enumerate([*SPECIAL_TOKENS, *named.values()])})
    merges = [tuple(pair) for pair in json.loads(backend.to_str())["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens=named or list(SPECIAL_TOKENS),
        chat_template=chat_template,
        model_max_length=32768,
    )
    if named:  # Qwen's own special tokens stay special too
        tokenizer.add_tokens(list(SPECIAL_TOKENS), special_tokens=True)
    return tokenizer


def special_token_ids(tokenizer: Qwen2Tokenizer) -> dict[str, int]:
    """The config fields that name special tokens, set to this tokenizer's ids."""
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))))
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def qwen2_vl_config(tokenizer: Qwen2Tokenizer, text: dict, vision: dict, **extra) -> Qwen2VLConfig:
    """A Qwen2-VL config of the given sizes, wired to the tokenizer's special tokens."""
    ids = special_token_ids(tokenizer)
    return Qwen2VLConfig(
        text_config={**text, "bos_token_id": ids["bos_token_id"], "eos_token_id": ids["eos_token_id"],
                     "pad_token_id": ids["pad_token_id"]},
        # Qwen2-VL's patching: 14 px patches, 2 x 2 merged into one token, 2 frames per temporal patch.
        vision_config={"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, **vision},
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
        **extra,
    )


def tiny_qwen2_vl_config(tokenizer: Qwen2Tokenizer) -> Qwen2VLConfig:
    """2 text layers of width 64 and a 2-block vision tower: fast enough for every test."""
    return qwen2_vl_config(
        tokenizer,
        text={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
              # M-RoPE splits head_dim / 2 = 8 rotary pairs over (time, height, width).
              "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}},
        vision={"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2,
                "hidden_size": 64},  # the merger projects into the text width
    )


def build_processor(tokenizer: Qwen2Tokenizer) -> Qwen2VLProcessor:
    """Qwen2-VL's processor with small pixel bounds (4 to 64 visual tokens per image)."""
    pixels = {"min_pixels": 4 * 28 * 28, "max_pixels": 64 * 28 * 28}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**pixels),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )


def _is_complete(model_dir: Path) -> bool:
    # The folder appears by an atomic rename of a finished build, so these files mean "complete".
    return (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()


def build_qwen2_vl(
    out_dir: Path,
    make_config: Callable[[Qwen2Tokenizer], Qwen2VLConfig],
    dtype: torch.dtype,
) -> Path:
    """Build a random-weight Qwen2-VL into out_dir unless it is already there. Safe across processes."""
    return build_vlm(out_dir, train_tokenizer, make_config, build_processor, dtype)


def build_vlm(
    out_dir: Path,
    make_tokenizer: Callable[[], Qwen2Tokenizer],
    make_config: Callable[[Qwen2Tokenizer], Any],
    make_processor: Callable[[Qwen2Tokenizer], Any],
    dtype: torch.dtype,
) -> Path:
    """Build a random-weight vision-language model and its processor into out_dir unless it is already
    there, saved as a Hub checkpoint is. Safe across processes."""
    out_dir = Path(out_dir)
    if _is_complete(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        tokenizer = make_tokenizer()
        config = make_config(tokenizer)
        with torch.random.fork_rng():
            torch.manual_seed(SEED)
            # Created in its final dtype: a 2B model never exists in float32 first.
            model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
        model.generation_config = GenerationConfig(
            bos_token_id=config.text_config.bos_token_id,
            eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
            pad_token_id=config.text_config.pad_token_id,
            do_sample=False,
        )
        model.save_pretrained(staging)
        make_processor(tokenizer).save_pretrained(staging)
        try:
            os.rename(staging, out_dir)  # also replaces an empty out_dir the caller made
        except OSError:
            # Another process finished first; its copy is identical (same seed, same corpus).
            if not _is_complete(out_dir):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def build_tiny_qwen2_vl(out_dir: Path) -> Path:
    """The tiny test model (float32, about 1 MB), built on first use."""
    return build_qwen2_vl(out_dir, tiny_qwen2_vl_config, torch.float32)
