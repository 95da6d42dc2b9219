"""The tiny Qwen2-VL: real architecture, Qwen's tokens and template, loadable like Hub weights."""

from __future__ import annotations

import json

from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2VLForConditionalGeneration

from retrieval.rerank.marks import LETTERS
from benchmarks.sized_models import qwen2_vl_2b_sized_config
from retrieval.models.tiny_vlm import SPECIAL_TOKENS, build_tiny_qwen2_vl, train_tokenizer


def test_loads_through_the_same_auto_classes_as_real_qwen_vl(tiny_vlm_dir):
    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir)
    assert isinstance(model, Qwen2VLForConditionalGeneration)
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert model.config.text_config.num_hidden_layers == 2
    assert processor.image_processor.patch_size == 14
    assert processor.image_processor.merge_size == 2


def test_every_mark_letter_is_a_single_token(tiny_vlm_dir):
    tokenizer = AutoProcessor.from_pretrained(tiny_vlm_dir).tokenizer
    for letter in LETTERS:
        assert len(tokenizer.encode(letter, add_special_tokens=False)) == 1, letter
    # As in Qwen's tokenizer, numbers are split digit by digit, which is why marks are letters.
    assert len(tokenizer.encode("12", add_special_tokens=False)) == 2


def test_config_names_the_tokenizers_special_token_ids(tiny_vlm_dir):
    tokenizer = AutoProcessor.from_pretrained(tiny_vlm_dir).tokenizer
    config = json.loads((tiny_vlm_dir / "config.json").read_text())
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    assert config["image_token_id"] == ids["<|image_pad|>"]
    assert config["video_token_id"] == ids["<|video_pad|>"]
    assert config["vision_start_token_id"] == ids["<|vision_start|>"]
    assert config["vision_end_token_id"] == ids["<|vision_end|>"]
    # Special tokens follow the BPE vocabulary in Qwen's order, each one token.
    assert list(ids.values()) == list(range(ids["<|endoftext|>"], ids["<|endoftext|>"] + len(SPECIAL_TOKENS)))
    assert tokenizer.tokenize("<|im_start|>user\n") == ["<|im_start|>", "user", "Ċ"]
    assert tokenizer.eos_token == "<|im_end|>"


def test_chat_template_is_qwens(tiny_vlm_dir):
    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Rank."}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Rank.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_build_returns_the_cached_model_without_rebuilding(tiny_vlm_dir):
    weights = tiny_vlm_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_qwen2_vl(tiny_vlm_dir) == tiny_vlm_dir
    assert weights.stat().st_mtime_ns == before


def test_2b_sized_config_has_qwen2_vl_2b_shapes():
    config = qwen2_vl_2b_sized_config(train_tokenizer())
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (1536, 28, 12)
    assert text.vocab_size == 151936
    assert (vision.depth, vision.embed_dim, vision.hidden_size) == (32, 1280, 1536)
