"""Presets: one published table row each, as data (presets.toml): the benchmark, the methods and settings of the
published run, and the numbers the paper reports, so that `gridrank eval --preset NAME` puts them side by side."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.errors import EvalInputError
from retrieval.evaluation.results import RATE_METRICS

PRESETS_FILE = Path(__file__).with_name("presets.toml")
# The settings a preset names the models with: the tiny profile builds its own and leaves these out.
MODEL_SETTINGS = ("clip_model", "clip_pretrained", "reranker_model")


@dataclass(frozen=True)
class Expected:
    """One published number: `metric` of the report's row `method` in `direction`, in % as published."""

    direction: str
    method: str
    metric: str
    value: float


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    dataset: str
    split: str
    source: str  # where the published numbers (and the settings) come from
    expected: tuple[Expected, ...]
    rerank: tuple[str, ...] = ()
    fuse: tuple[str, ...] = ()
    sims: tuple[str, ...] = ()  # similarity matrices, relative to --root
    settings: dict[str, Any] = field(default_factory=dict)  # gridrank settings of the published run
    note: str = ""  # what a user must supply, and what differs from the published run
    served: bool = False  # its reranker is reached through an OpenAI-compatible server (--reranker-url)


def load_presets(path: Path = PRESETS_FILE) -> dict[str, Preset]:
    from retrieval.settings import Settings  # the setting names a preset may use

    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EvalInputError(f"cannot read the presets in {path}: {e}") from e
    presets = {}
    for name, table in tables.items():
        try:
            expected = tuple(Expected(**e) for e in table.pop("expected"))
            preset = Preset(name=name, expected=expected, **{k: tuple(v) if isinstance(v, list) else v
                                                             for k, v in table.items()})
        except (KeyError, TypeError) as e:
            raise EvalInputError(f"{path}: preset {name!r} is malformed ({e}); it needs title, dataset, split, "
                                 "source and expected = [{direction, method, metric, value}]") from None
        unknown = sorted(set(preset.settings) - set(Settings.model_fields))
        if unknown:
            raise EvalInputError(f"{path}: preset {name!r} sets unknown settings {', '.join(unknown)}")
        presets[name] = preset
    return presets


def preset_named(name: str) -> Preset:
    presets = load_presets()
    if name not in presets:
        raise EvalInputError(f"unknown --preset {name!r}: choose one of {', '.join(presets)} (gridrank eval "
                             "--list-presets describes them)")
    return presets[name]


@dataclass(frozen=True)
class Comparison:
    expected: Expected
    measured: float | None  # as published (rates in %); None: no such row, or the split has no ground truth


def compare(expected: tuple[Expected, ...], measured: dict[tuple[str, str], dict[str, float]]) -> list[Comparison]:
    """Each published number beside the measured one, `measured` keyed by (direction, method) -> metrics."""
    rows = []
    for e in expected:
        value = measured.get((e.direction, e.method), {}).get(e.metric)
        if value is None or math.isnan(value):
            rows.append(Comparison(e, None))
        else:
            rows.append(Comparison(e, 100 * value if e.metric.startswith(RATE_METRICS) else value))
    return rows
