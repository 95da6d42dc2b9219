"""The hubness corrections by name, as data: request validation and the CLI read them without numpy."""

from __future__ import annotations

from typing import Literal

HubNorm = Literal["none", "qbnorm", "dbnorm"]
HUB_NORMS: tuple[HubNorm, ...] = ("none", "qbnorm", "dbnorm")
