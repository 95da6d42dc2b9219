"""The neutral form of one MLLM request: what prompts build and backends consume.

Prompts refer to images by position so a prompt stays plain, testable data; the backend
receives the images alongside and turns both into its own message format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class ImageRef:
    """Placeholder for the image at `index` in the request's image list."""

    index: int


PromptPart = Union[str, ImageRef]


@dataclass(frozen=True)
class Prompt:
    """A system instruction and the user's turn as an ordered mix of text and images."""

    system: str
    user_parts: list[PromptPart] = field(default_factory=list)

    @property
    def image_indices(self) -> list[int]:
        return [p.index for p in self.user_parts if isinstance(p, ImageRef)]

    @property
    def text(self) -> str:
        """The user's text alone, images left out (for logs and token estimates)."""
        return "".join(p for p in self.user_parts if isinstance(p, str))
