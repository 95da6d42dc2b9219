"""What a search may return: photos, videos, or both. Its own module: the CLI's --kind choices need
nothing else."""

from __future__ import annotations

from typing import Literal, get_args

SearchKind = Literal["any", "image", "video"]
KINDS: tuple[str, ...] = get_args(SearchKind)
