"""Turn the neutral Prompt into each backend's chat messages: Qwen's format and OpenAI's."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from retrieval.rerank.chat import ImageRef, Prompt

Message = dict[str, Any]


def _checked_images(prompt: Prompt, images: Sequence[Image.Image]) -> None:
    for index in prompt.image_indices:
        if not 0 <= index < len(images):
            raise ValueError(f"prompt refers to image {index} but {len(images)} images were given")


def _chat(prompt: Prompt, user_content: list[dict[str, Any]]) -> list[Message]:
    # An empty system text is left out so the model's own default system prompt applies.
    # System text as a plain string: every server and chat template accepts that form.
    system = [{"role": "system", "content": prompt.system}] if prompt.system else []
    return [*system, {"role": "user", "content": user_content}]


def qwen_messages(prompt: Prompt, images: Sequence[Image.Image], max_pixels: int) -> list[Message]:
    """Messages for a Qwen processor's chat template and qwen-vl-utils' process_vision_info.

    max_pixels rides on each image entry: qwen-vl-utils resizes the image to fit it.
    """
    _checked_images(prompt, images)
    content = [
        {"type": "image", "image": images[part.index], "max_pixels": max_pixels}
        if isinstance(part, ImageRef)
        else {"type": "text", "text": part}
        for part in prompt.user_parts
    ]
    return _chat(prompt, content)


def image_data_url(image: Image.Image, image_format: str = "JPEG") -> str:
    """The image as a base64 data URL. JPEG drops alpha; PNG keeps every pixel exact."""
    buffer = io.BytesIO()
    fmt = image_format.upper()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=92)
    elif fmt == "PNG":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(f"image format must be JPEG or PNG, got {image_format!r}")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/{fmt.lower()};base64,{data}"


def openai_messages(prompt: Prompt, images: Sequence[Image.Image], image_format: str = "JPEG") -> list[Message]:
    """Messages for an OpenAI-compatible chat-completions request, images inline as data URLs."""
    _checked_images(prompt, images)
    # Each image is encoded once even when the prompt shows it more than once.
    urls = {i: image_data_url(images[i], image_format) for i in set(prompt.image_indices)}
    content = [
        {"type": "image_url", "image_url": {"url": urls[part.index]}}
        if isinstance(part, ImageRef)
        else {"type": "text", "text": part}
        for part in prompt.user_parts
    ]
    return _chat(prompt, content)
