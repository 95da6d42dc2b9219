"""Model profiles as data: which CLIP model and which reranker a profile runs, and its defaults.

`default` loads the models the settings name (Hub names or local folders). `tiny` builds small
random-weight models of the real architectures on first use, for offline smoke tests and demos of
the plumbing. Everything that differs between profiles is a field here, so no other module asks
"is this the tiny profile?".

Builders import lazily: reading settings must not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TINY_WARNING = (
    "TINY PROFILE: random-weight models are in use. Rankings are meaningless; "
    "this mode exists for offline smoke tests and demos of the plumbing only."
)


@dataclass(frozen=True)
class ModelProfile:
    name: str
    help: str
    # Built models: a function of the cache folder that returns the model's folder. None: the settings' model.
    build_clip: Callable[[Path], Path] | None = None
    clip_identity: tuple[str, str] | None = None  # (model, pretrained) recorded in the index for a built CLIP
    build_reranker: Callable[[Path], Path] | None = None
    reranker_name: str | None = None  # how reports name a built reranker
    # This profile's defaults of settings whose usual default does not fit it (a value the user set still wins).
    setting_defaults: Mapping[str, object] = field(default_factory=dict)
    warning: str | None = None  # logged at model load and shown as a banner in the web app


def _build_tiny_clip(cache_dir: Path) -> Path:
    from retrieval.models.tiny_clip import build_tiny_clip

    return build_tiny_clip(cache_dir)


def _build_tiny_reranker(cache_dir: Path) -> Path:
    from retrieval.models.tiny_vlm import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(cache_dir / "models" / "tiny-qwen2-vl-v1")


PROFILES: dict[str, ModelProfile] = {profile.name: profile for profile in (
    ModelProfile("default", "the models the settings name: clip_model / clip_pretrained and reranker_model"),
    ModelProfile(
        "tiny", "small random-weight models built offline on first use: meaningless rankings, smoke tests only",
        build_clip=_build_tiny_clip, clip_identity=("gridrank-tiny-clip", "random-init"),
        build_reranker=_build_tiny_reranker, reranker_name="tiny-qwen2-vl",
        setting_defaults={
            # The tiny model's random vectors are all alike (cosine 0.6-0.99 between unrelated photos): only
            # re-encoded copies of one picture (above 0.9999) are near-duplicates there.
            "near_duplicate_threshold": 0.9995,
            # A random model never ends its answer: CoTRR's 8192-token budget would take minutes per query.
            "cot_max_new_tokens": 64,
        },
        warning=TINY_WARNING,
    ),
)}
