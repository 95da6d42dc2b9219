"""Candidate marks: the labels drawn on grid cells, named in prompts and read back from answers."""

from __future__ import annotations

from collections.abc import Sequence

# Letters, not numbers: digits above 9 are two tokens in Qwen's tokenizer, and single-token
# ranking reads the logits of one answer token per candidate. T is the 20th letter.
LETTERS = tuple("ABCDEFGHIJKLMNOPQRST")
MAX_CANDIDATES = len(LETTERS)


def letter_marks(k: int) -> list[str]:
    """Marks A, B, ... for k candidates (at most MAX_CANDIDATES)."""
    check_candidate_count(k)
    return list(LETTERS[:k])


def number_marks(k: int) -> list[str]:
    """Marks "1".."k", the labels used for separate images and video grids ("Image 3")."""
    if k < 0:
        raise ValueError(f"number of candidates must be >= 0, got {k}")
    return [str(i) for i in range(1, k + 1)]


def check_candidate_count(k: int) -> None:
    if not 0 <= k <= MAX_CANDIDATES:
        raise ValueError(
            f"{k} candidates do not fit one ranking call: at most {MAX_CANDIDATES} "
            f"(marks A..{LETTERS[-1]} are single tokens); rank more with a sliding window"
        )


def mark_key(mark: str) -> str:
    """Canonical form for matching a mark: letters upper-cased, leading zeros dropped."""
    if mark.isdigit():
        return mark.lstrip("0") or "0"
    return mark.upper()


def validate_marks(marks: Sequence[str], k: int) -> list[str]:
    """Check that marks label k candidates unambiguously; returns them as a list."""
    marks = list(marks)
    if len(marks) != k:
        raise ValueError(f"got {len(marks)} marks for {k} candidates")
    for mark in marks:
        # The parser finds marks as ASCII word tokens, so a mark must be one.
        if not (isinstance(mark, str) and mark.isascii() and mark.isalnum()):
            raise ValueError(f"mark {mark!r} must be a non-empty ASCII letter/digit string")
    if len({mark_key(m) for m in marks}) != k:
        raise ValueError(f"marks must be distinct (ignoring case), got {marks}")
    return marks
