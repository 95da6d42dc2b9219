"""Remember the last index folder built, so `gridrank search` works without --index."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_state_dir

ENV_VAR = "GRIDRANK_INDEX"


def _state_file() -> Path:
    return Path(user_state_dir("gridrank")) / "last_index"


def remember(index_dir: Path) -> None:
    try:
        path = _state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(index_dir.resolve()))
    except OSError:
        pass  # a convenience only: never fail an indexing run over it


def resolve(explicit: Path | None) -> Path | None:
    """--index, else $GRIDRANK_INDEX, else the folder of the last `gridrank index` run."""
    if explicit is not None:
        return explicit
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    try:
        return Path(_state_file().read_text().strip())
    except OSError:
        return None
