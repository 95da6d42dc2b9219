"""Before a model load that would download: are the weights cached, and is the Hub there at all?

Offline, open_clip's download of a pretrained tag retries for about a minute before it fails. One
look in the Hugging Face cache and one short request to the Hub tell within seconds, and the error
can say what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import open_clip
from huggingface_hub import constants, is_offline_mode, try_to_load_from_cache
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

from retrieval.errors import ModelUnavailableError

PROBE_TIMEOUT_S = 3.0


def _weight_files(filename: str) -> list[str]:
    """The files open_clip tries for a tag, safetensors first (as open_clip.pretrained does)."""
    stem, ext = os.path.splitext(filename)
    safe = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else f"{stem}.safetensors"
    return [safe, filename] if ext in (".bin", ".pth") else [filename]


def hub_files(model: str, pretrained: str | None) -> tuple[str, list[str]] | None:
    """(repo id, candidate files) that loading `model` with `pretrained` fetches from the Hub; None if nothing."""
    if model.startswith("hf-hub:"):
        return model.removeprefix("hf-hub:"), ["open_clip_config.json"]
    if not pretrained or Path(pretrained).expanduser().is_file() or model.startswith("local-dir:"):
        return None
    hf_hub = (open_clip.get_pretrained_cfg(model, pretrained) or {}).get("hf_hub", "")
    if not hf_hub:
        return None  # an unknown tag (open_clip says so itself) or a plain URL
    repo, filename = os.path.split(hf_hub)
    return repo, _weight_files(filename or HF_WEIGHTS_NAME)


def check_weights_available(model: str, pretrained: str | None) -> None:
    """Return if the weights are cached or the Hub answers; else a ModelUnavailableError that says what to do."""
    files = hub_files(model, pretrained)
    if files is None:
        return
    repo, names = files
    if any(isinstance(try_to_load_from_cache(repo, name), str) for name in names):
        return
    fix = ("download it once on a connected machine (any `gridrank index` there fills the Hugging Face cache, "
           "~/.cache/huggingface) and copy the cache here, or pass a local checkpoint (--pretrained FILE) or "
           "folder (--model local-dir:PATH); --tiny runs offline with small random models")
    what = f"{model} ({pretrained})" if pretrained else model
    if is_offline_mode():
        raise ModelUnavailableError(f"{what} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: {fix}")
    try:
        httpx.head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as e:
        raise ModelUnavailableError(f"{what} is not in the Hugging Face cache and the Hub ({constants.ENDPOINT}) "
                                    f"cannot be reached ({e or type(e).__name__}): {fix}") from None
