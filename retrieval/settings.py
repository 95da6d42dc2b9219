"""One settings object for the whole app.

Precedence, highest first: explicit overrides (CLI flags), `GRIDRANK_*` environment variables,
`gridrank.toml` in the index folder, the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

import tomlkit
from platformdirs import user_cache_dir
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.errors import SettingsError
from retrieval.models.profiles import PROFILES, ModelProfile
from retrieval.rerank.marks import MAX_CANDIDATES
from retrieval.rerank.windows import MAX_RERANK_K, MIN_RERANK_K
from retrieval.store.index_choice import validate_factory
from retrieval.store.store_spec import parse_store

SETTINGS_FILE = "gridrank.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDRANK_", extra="forbid", validate_default=True)

    profile: str = Field(
        "default", description="Model profile: " + "; ".join(f"'{p.name}': {p.help}" for p in PROFILES.values())
    )
    clip_model: str = Field("ViT-B-32", description="open_clip model name, or 'local-dir:/path'.")
    clip_pretrained: str = Field(
        "laion2b_s34b_b79k", description="open_clip pretrained tag or a checkpoint file path."
    )
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1'.")
    batch_size: int = Field(32, ge=1, le=4096, description="Images or frames per model forward.")
    workers: int = Field(2, ge=0, le=64, description="Decode worker processes (0 = decode inline).")
    frames_per_video: int = Field(16, ge=1, le=4096, description="Frames sampled uniformly per video.")
    seconds_per_frame: float | None = Field(
        None, gt=0, description="If set, sample one frame every N seconds instead (capped at 4096)."
    )
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="Images with more pixels are skipped (decompression-bomb guard)."
    )
    commit_every_s: float = Field(
        30.0, gt=0, description="While indexing, commit finished work at least this often."
    )
    text_batch_max: int = Field(
        64, ge=1, le=4096, description="Query texts encoded in one forward when searches arrive together (the web "
        "server); 1: one query at a time."
    )
    composed_text_weight: float = Field(
        0.8, ge=0, le=1, description="Image + text query: weight a of the text in (1-a)*image + a*text."
    )
    reranker_model: str = Field(
        "Qwen/Qwen2.5-VL-3B-Instruct", description="Qwen-VL model for reranking: Hub name, local folder, or the "
        "served model's name with reranker_url."
    )
    reranker_url: str | None = Field(
        None, description="OpenAI-compatible server (vLLM, SGLang, Ollama...), e.g. http://127.0.0.1:8000/v1."
    )
    reranker_api_key: str | None = Field(None, description="API key for reranker_url, if it needs one.")
    reranker_timeout_s: float = Field(120.0, gt=0, description="Per-call timeout for reranker_url.")
    reranker_max_pixels: int = Field(
        1024 * 28 * 28, ge=4 * 28 * 28, description="Largest image (in pixels) the local reranker sees."
    )
    rerank_k: int = Field(9, ge=MIN_RERANK_K, le=MAX_RERANK_K, description="How many first-stage candidates are "
                          "reranked.")
    rerank_window: int = Field(9, ge=2, le=MAX_CANDIDATES, description="Candidates per model call (sliding window).")
    rerank_step: int = Field(4, ge=1, le=MAX_CANDIDATES - 1, description="Sliding-window step, smaller than the "
                             "window.")
    grid_cell_size: int = Field(224, ge=32, le=1024, description="Cell side of the marked grid, pixels.")
    # CoTRR's own model calls allow 8192 new tokens (freshfish15/CoTRR, models/mllm_reranker.py, the Qwen path):
    # its reasoning over each candidate runs long, and a cut-off answer loses its JSON ranking.
    cot_max_new_tokens: int = Field(8192, ge=16, le=65536, description="Chain-of-thought reranking (cot): most "
                                    "tokens the model may write, reasoning and JSON ranking together.")
    list_max_new_tokens: int = Field(96, ge=8, le=4096, description="Ranking answers of grid and sgrid (a list "
                                     "such as [3, 1, 2]): most tokens the model may write. ViC's code allows 256.")
    sgrid_frames_side: int = Field(3, ge=1, le=6, description="A video S-Grid shows g x g frames.")
    sgrid_size: int = Field(448, ge=64, le=2048, description="Side of a video S-Grid, pixels.")
    sqaf_caption_weight: float = Field(
        0.5, ge=0, le=1, description="Composed queries: weight b of the MLLM's target caption in the query."
    )
    index_factory: str | None = Field(
        None, description="Force a FAISS index (Flat, SQfp16, IVF4096,SQfp16, HNSW32,SQfp16...) instead of "
        "choosing one by collection size and index_memory_budget_mb."
    )
    vector_store: str = Field(
        "faiss", description="Where a new index keeps its vectors: faiss (files in the index folder), "
        "milvus-lite:PATH (an embedded Milvus database file, relative to the index folder) or milvus://HOST:PORT "
        "(a Milvus server or cluster). An existing index keeps its own; --rebuild moves it."
    )
    index_memory_budget_mb: int = Field(
        # 10M 512-d vectors take about 7 GB in the default codes (fast-scan PQ, rescored from 8-bit codes)
        8192, ge=16, description="Memory the frame index may take; above it, smaller codes (SQ8, PQ) are chosen."
    )
    near_duplicate_threshold: float = Field(
        0.96, ge=0, le=1, description="Search results whose vectors have at least this cosine similarity collapse "
        "into one result (--no-collapse turns it off; identical files always collapse)."
    )
    min_score: float | None = Field(
        None, ge=-1, le=1, description="Drop search results below this cosine similarity (--min-score)."
    )
    hub_norm: Literal["none", "qbnorm", "dbnorm"] = Field(
        "none", description="Hubness correction of the first stage: QB-Norm or DBNorm with the index's banks "
        "(built by `gridrank index --query-bank FILE`).")
    segment_gap_s: float = Field(
        5.0, ge=0, description="Matching video frames at most this many seconds apart merge into one moment."
    )
    cache_dir: Path = Field(
        Path(user_cache_dir("gridrank")), description="Where tiny models and thumbnails are cached."
    )

    @field_validator("vector_store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        return parse_store(value).text

    @field_validator("index_factory")
    @classmethod
    def _buildable_factory(cls, value: str | None) -> str | None:
        return validate_factory(value) if value else None

    @model_validator(mode="after")
    def _profile_builds_its_own_models(self) -> Settings:
        """A profile that builds its models (tiny) refuses a named one rather than silently ignore it."""
        profile = self.model_profile
        named = []
        if profile.clip_identity is not None:
            named += [key for key in ("clip_model", "clip_pretrained")
                      if key in self.model_fields_set and getattr(self, key) != type(self).model_fields[key].default]
        if profile.build_reranker is not None and not self.reranker_url and "reranker_model" in self.model_fields_set \
                and self.reranker_model != type(self).model_fields["reranker_model"].default:
            named.append("reranker_model")
        if named:
            given = ", ".join(f"{key} {getattr(self, key)!r}" for key in named)
            raise ValueError(f"the {profile.name} profile builds its own random models and would ignore {given}: "
                             f"drop --tiny (or GRIDRANK_PROFILE={profile.name}) to use them, or drop them to stay "
                             f"{profile.name}")
        return self

    @model_validator(mode="after")
    def _profile_defaults(self) -> Settings:
        for key, value in self.model_profile.setting_defaults.items():
            if key not in self.model_fields_set:
                # Through __dict__: a default, not a value the user set (load_settings layers only those).
                self.__dict__[key] = value
        return self

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown profile {value!r}: choose one of {', '.join(PROFILES)}")
        return value

    @property
    def model_profile(self) -> ModelProfile:
        return PROFILES[self.profile]

    @property
    def model_identity(self) -> tuple[str, str]:
        """The (model, pretrained) pair recorded in an index and checked at query time."""
        return self.model_profile.clip_identity or (self.clip_model, self.clip_pretrained)

    @property
    def reranker_name(self) -> str:
        """The reranker's model as reports name it: a served or named model, or the profile's built one."""
        profile = self.model_profile
        if profile.build_reranker is not None and not self.reranker_url:
            return profile.reranker_name or profile.name
        return self.reranker_model


def read_settings_file(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML ({e}). Fix or delete the file.") from e


MODEL_KEYS = ("profile", "clip_model", "clip_pretrained")


def record_model_settings(index_dir: Path, settings: Settings) -> None:
    """Write the model an index is built with into its settings file, keeping the user's other keys.

    Later queries read it back, so they use the same model without being told.
    """
    path = index_dir / SETTINGS_FILE
    document = tomlkit.parse(path.read_text()) if path.is_file() else tomlkit.document()
    # A profile that builds its own model (tiny) records only its name: a CLIP name here would name a
    # model the index was not built with.
    wanted = {key: getattr(settings, key) for key in MODEL_KEYS
              if key == "profile" or settings.model_profile.clip_identity is None}
    if {key: document.get(key) for key in MODEL_KEYS} == {key: wanted.get(key) for key in MODEL_KEYS}:
        return
    for key in MODEL_KEYS:
        if key in wanted:
            document[key] = wanted[key]
        elif key in document:
            del document[key]
    _write(path, document)


def record_setting(index_dir: Path, key: str, value: object) -> None:
    """Keep one setting in the index's settings file (a default its searches use), the user's other keys kept."""
    path = index_dir / SETTINGS_FILE
    document = tomlkit.parse(path.read_text()) if path.is_file() else tomlkit.document()
    document[key] = value
    _write(path, document)


def _write(path: Path, document: tomlkit.TOMLDocument) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomlkit.dumps(document))
    os.replace(tmp, path)


def load_settings(index_dir: Path | None = None, **overrides) -> Settings:
    """Settings for an index folder; `overrides` are the CLI flags that were given (None = not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    file_values = read_settings_file(index_dir / SETTINGS_FILE) if index_dir else {}
    try:
        env_and_flags = Settings(**given)
        explicit = env_and_flags.model_dump(include=env_and_flags.model_fields_set)
        return Settings(**{**file_values, **explicit})
    except ValidationError as e:
        where = f" (flags, GRIDRANK_* variables or {index_dir / SETTINGS_FILE})" if index_dir else ""
        problems = "; ".join(  # a check of several settings together has no location
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" if err["loc"] else err["msg"].removeprefix("Value error, ")
            for err in e.errors()
        )
        raise SettingsError(f"invalid settings{where}: {problems}") from e
