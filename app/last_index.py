"""Which index a command uses when none is named, and why: said on every result, never silently.

Order: --index, else $GRIDRANK_INDEX, else the current folder's own index (./.gridrank), else the
folder of the last `gridrank index` run (remembered per user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_state_dir

ENV_VAR = "GRIDRANK_INDEX"
LOCAL_INDEX = ".gridrank"


@dataclass(frozen=True)
class ChosenIndex:
    path: Path
    chosen_by: str  # "--index", "GRIDRANK_INDEX", "the current folder", "the last `gridrank index` run"


def _state_file() -> Path:
    return Path(user_state_dir("gridrank")) / "last_index"


def remember(index_dir: Path) -> None:
    try:
        path = _state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(index_dir.resolve()))
    except OSError:
        pass  # a convenience only: never fail an indexing run over it


def resolve(explicit: Path | None) -> ChosenIndex | None:
    """The index to use and what chose it; None when nothing names one."""
    if explicit is not None:
        return ChosenIndex(explicit.absolute(), "--index")
    if os.environ.get(ENV_VAR):
        return ChosenIndex(Path(os.environ[ENV_VAR]).absolute(), ENV_VAR)
    local = Path.cwd() / LOCAL_INDEX
    if local.is_dir():  # searching from inside an indexed folder means that folder's index
        return ChosenIndex(local, "the current folder")
    try:
        return ChosenIndex(Path(_state_file().read_text().strip()), "the last `gridrank index` run")
    except OSError:
        return None
