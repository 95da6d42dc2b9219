"""CLIP encoder: open_clip model + preprocess + tokenizer behind one small interface."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import open_clip
import torch
from PIL import Image

from retrieval.errors import ModelUnavailableError
from retrieval.models.batching import TextBatcher
from retrieval.models.devices import resolve_device
from retrieval.models.hub import check_weights_available
from retrieval.settings import Settings
from retrieval.vectors import l2_normalize


class ModelLoadError(ModelUnavailableError):
    """The model could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where open_clip loads a model from: a factory name (maybe `local-dir:`) and weights."""

    name: str
    pretrained: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelSource:
        build = settings.model_profile.build_clip
        if build is not None:
            return cls(f"local-dir:{build(settings.cache_dir)}", None)
        # 'none' (or empty) gives the architecture with random weights: for speed measurements.
        pretrained = settings.clip_pretrained
        return cls(settings.clip_model, None if pretrained.lower() in ("", "none") else pretrained)


class ClipEncoder:
    """Encodes images and texts into L2-normalized float32 vectors of one shared space."""

    def __init__(self, source: ModelSource, device: str = "auto", text_batch_max: int = 64):
        self.device = resolve_device(device)
        started = time.perf_counter()
        check_weights_available(source.name, source.pretrained)  # seconds, not a minute of download retries
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                source.name, pretrained=source.pretrained, device=self.device
            )
            self._tokenizer = open_clip.get_tokenizer(source.name)
        except Exception as e:  # open_clip raises many types (download, file, config errors)
            raise ModelLoadError(
                f"could not load open_clip model {source.name!r} (pretrained={source.pretrained!r}): {e}. "
                "Weights must already be in the Hugging Face cache (HF_HUB_OFFLINE=1 works) or be a local "
                "file (--pretrained /path/model.safetensors) or folder (--model local-dir:/path); "
                "for an offline smoke run use --tiny."
            ) from e
        self.load_seconds = time.perf_counter() - started
        self._model = model.eval()
        self.preprocess: Callable[[Image.Image], torch.Tensor] = preprocess
        size = model.visual.image_size
        self.image_size: int = max(size) if isinstance(size, Sequence) else int(size)
        with torch.inference_mode():
            self.dim: int = int(self._model.encode_text(self._tokenizer(["probe"]).to(self.device)).shape[-1])
        # Searches that arrive together (a web server) share text forwards.
        self._texts = TextBatcher(self._encode_texts_now, text_batch_max)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClipEncoder:
        if settings.model_profile.warning:
            logging.getLogger("gridrank").warning(settings.model_profile.warning)
        return cls(ModelSource.from_settings(settings), settings.device, settings.text_batch_max)

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a batch of already-preprocessed images (N, 3, H, W)."""
        with torch.inference_mode():
            features = self._model.encode_image(pixels.to(self.device))
        return _normalized(features)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_pixels(torch.stack([self.preprocess(im) for im in images]))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._texts.encode(texts)

    def _encode_texts_now(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            features = self._model.encode_text(self._tokenizer(list(texts)).to(self.device))
        return _normalized(features)


def _normalized(features: torch.Tensor) -> np.ndarray:
    return l2_normalize(features.float().cpu().numpy())
