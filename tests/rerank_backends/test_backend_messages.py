"""Prompt -> chat messages for the local (Qwen) and server (OpenAI) backends."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from retrieval.rerank.backends.messages import image_data_url, openai_messages, qwen_messages
from retrieval.rerank.chat import ImageRef, Prompt

PROMPT = Prompt("Rank images.", ["Query: dusk", ImageRef(1), "then", ImageRef(0)])


def test_qwen_messages_keep_part_order_and_bound_pixels(two_images):
    system, user = qwen_messages(PROMPT, two_images, max_pixels=3136)
    assert system == {"role": "system", "content": "Rank images."}
    assert user["content"] == [
        {"type": "text", "text": "Query: dusk"},
        {"type": "image", "image": two_images[1], "max_pixels": 3136},
        {"type": "text", "text": "then"},
        {"type": "image", "image": two_images[0], "max_pixels": 3136},
    ]


def test_openai_messages_carry_images_as_data_urls(two_images):
    _, user = openai_messages(PROMPT, two_images)
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["text", "image_url", "text", "image_url"]
    url = user["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == two_images[1].size


def test_empty_system_is_left_to_the_models_default(two_images):
    messages = qwen_messages(Prompt("", ["hi"]), two_images, max_pixels=3136)
    assert [m["role"] for m in messages] == ["user"]


def test_png_data_url_is_lossless():
    image = Image.new("RGBA", (5, 3), (1, 2, 3, 128))
    url = image_data_url(image, "png")
    assert url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).tobytes() == image.tobytes()


def test_image_ref_out_of_range_is_an_error(two_images):
    with pytest.raises(ValueError, match="image 2 but 2 images"):
        openai_messages(Prompt("", [ImageRef(2)]), two_images)
