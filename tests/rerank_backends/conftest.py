"""Fixtures for the backend tests: the tiny Qwen2-VL, built once per session, and small images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from retrieval.rerank.backends.local import LocalBackend
from retrieval.models.tiny_vlm import build_tiny_qwen2_vl

# 16 visual tokens per image keeps every forward pass of the tiny model in milliseconds.
TEST_MAX_PIXELS = 112 * 112


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("models") / "tiny-qwen2-vl")


@pytest.fixture(scope="session")
def tiny_backend(tiny_vlm_dir) -> LocalBackend:
    return LocalBackend(tiny_vlm_dir, device="cpu", max_pixels=TEST_MAX_PIXELS)


@pytest.fixture
def two_images() -> list[Image.Image]:
    return [Image.new("RGB", (120, 90), (200, 30, 30)), Image.new("RGB", (64, 128), (30, 30, 200))]
