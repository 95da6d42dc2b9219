"""How each model family the local backend runs turns a prompt and its images into model inputs.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL share one path: qwen-vl-utils scales each image to the model's patch
grid within max_pixels (Qwen3-VL's patches are 16 px, the others' 14), then the processor tokenizes.
InternVL3.5's transformers-native ("-HF") checkpoints tile each image themselves (448 px tiles plus a
thumbnail); their processor takes the chat text and the images in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from qwen_vl_utils import process_vision_info

from retrieval.media.image_io import fit_pixels
from retrieval.rerank.backends.messages import qwen_messages
from retrieval.rerank.chat import ImageRef, Prompt


def _qwen_inputs(processor: Any, prompts: Sequence[Prompt], images: Sequence[Sequence[Image.Image]],
                 max_pixels: int) -> Any:
    conversations = [qwen_messages(prompt, shown, max_pixels) for prompt, shown in zip(prompts, images)]
    texts = [processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    # qwen-vl-utils already resized each image to the patch grid: the processor must not resize again.
    image_inputs, _ = process_vision_info(conversations, image_patch_size=processor.image_processor.patch_size)
    return processor(text=texts, images=image_inputs, do_resize=False, padding=True, return_tensors="pt")


def _internvl_inputs(processor: Any, prompts: Sequence[Prompt], images: Sequence[Sequence[Image.Image]],
                     max_pixels: int) -> Any:
    texts, shown = [], []
    for prompt, given in zip(prompts, images):
        texts.append(processor.apply_chat_template(qwen_messages(prompt, given, max_pixels), tokenize=False,
                                                   add_generation_prompt=True))
        shown += [fit_pixels(given[part.index], max_pixels) for part in prompt.user_parts if isinstance(part, ImageRef)]
    return processor(text=texts, images=shown or None, padding=True, return_tensors="pt")


@dataclass(frozen=True)
class ModelFamily:
    name: str  # as users know it
    model_types: tuple[str, ...]  # config.json's model_type values
    # (processor, prompts, each prompt's images, max_pixels) -> one batch of model inputs, padded on the left
    inputs: Callable[[Any, Sequence[Prompt], Sequence[Sequence[Image.Image]], int], Any]


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("Qwen2-VL", ("qwen2_vl",), _qwen_inputs),
    ModelFamily("Qwen2.5-VL", ("qwen2_5_vl",), _qwen_inputs),
    ModelFamily("Qwen3-VL", ("qwen3_vl", "qwen3_vl_moe"), _qwen_inputs),
    ModelFamily("InternVL3.5 (-HF)", ("internvl",), _internvl_inputs),
)


def family_of(model_type: str | None) -> ModelFamily | None:
    return next((f for f in FAMILIES if model_type in f.model_types), None)


def supported_families() -> str:
    return ", ".join(f.name for f in FAMILIES)
