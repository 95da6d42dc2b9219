"""The one parser for every reranker answer: model text in, a full permutation out.

Model text is untrusted: whatever it says, the result is a permutation of the candidates.
Ids the text gives (valid, first mention wins) come first; the candidates it leaves out
follow in first-stage order.

Where the answer is looked for, most explicit form first:
1. a JSON object with a ranking key (also inside ``` fences or with text around it),
   or, when that JSON is broken or cut off, the list after a "ranking": key;
2. a chain "3 > 1 > 2" / "[C] > [A]" or a bracketed list "[3, 1, 2]": the one naming the
   most candidates wins, ties going to the later one (answers tend to come last);
3. labelled mentions in prose, "Image 3", "Image-2", "candidate C";
4. bare ids in prose.
Ids are 1-based numbers and/or letters: with `marks` given, exactly those marks;
without, "1".."n" and the first n letters A, B, ....
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import json
import re

from .marks import LETTERS, mark_key, validate_marks

_KEY = r"(?:final_)?(?:ranking|ranked|rank|order)(?:_list)?"
_RANKING_KEY = re.compile(_KEY, re.IGNORECASE)
_REASONING_KEYS = ("reasoning", "rationale", "analysis", "explanation", "thoughts", "thinking")
# The list after a ranking key, even in JSON that is malformed or cut off mid-list.
_KEYED_LIST = re.compile(rf"""["']?\b{_KEY}["']?\s*[:=]\s*\[([^\[\]]*)""", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9]+", re.ASCII)
# Written so that no two optional runs can match the same characters (whole tokens only,
# one place for each run of blanks): otherwise long words or runs of spaces in model text
# make the search quadratic.
_ITEM = (
    r"""(?:[\[("'`][ \t]*)?(?:(?:image|img|candidate|video)(?:[ \t]*[-_#])?[ \t]*)?"""
    r"""(?<![A-Za-z0-9])[A-Za-z0-9]+(?![A-Za-z0-9])(?:[ \t]*[\])"'`])?"""
)
_CHAIN = re.compile(rf"{_ITEM}(?:[ \t]*>[ \t]*{_ITEM})+", re.IGNORECASE | re.ASCII)
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_LABELLED = re.compile(
    r"\b(?:image|img|picture|photo|candidate|video|frame|option)s?(?:[ \t]*[-_#:])?[ \t]*"
    r"([A-Za-z0-9]+)\b",
    re.IGNORECASE | re.ASCII,
)
# "1. Image 3" / "2) C": list numbering is a position, not a candidate id.
_ENUMERATOR = re.compile(r"^[ \t]*[0-9]+[.)][ \t]+(?=\S)", re.MULTILINE)
# "A dog", "I think", "I'd" are words, not candidates; "A is", "I shows" name candidates, and so do "A and
# then B", "A, followed by" or "A over C": an article is never followed by a conjunction or a comparison.
_WORD_USE = re.compile(
    r"'[a-z]|[ \t]+(?!(?:is|was|has|shows|matches|fits|seems|looks|ranks|comes|depicts|contains"
    r"|appears|and|or|then|than|but|nor|followed|before|after|over|above|below|vs|versus)\b)[a-z]"
)


@dataclass(frozen=True)
class ParsedRanking:
    order: list[int]  # 0-based candidate indices, a permutation of range(n), best first
    mentioned: int  # how many of them the text gave; the rest are in first-stage order
    complete: bool  # the text ranked every candidate


@dataclass(frozen=True)
class CotOutput:
    reasoning: str
    ranking: ParsedRanking
    # The ranking came from the answer's JSON (whole, or its "ranking" list when cut off), not from candidates
    # the text happens to mention: an answer without it was likely cut off at the token budget.
    from_json: bool


def parse_ranking(text: str, n: int, marks: Sequence[str] | None = None) -> ParsedRanking:
    """Read a ranking of n candidates from model text. Never raises on the text."""
    table = _id_table(n, marks)
    return _complete(_ranked_ids(text, table, _ranking_object(text))[0], n)


def parse_cot(text: str, n: int, marks: Sequence[str] | None = None) -> CotOutput:
    """Chain-of-thought answer: the JSON's reasoning (else the whole text) and its ranking."""
    table = _id_table(n, marks)
    obj = _ranking_object(text)
    reasoning = _reasoning(obj) if obj is not None else None
    ids, from_json = _ranked_ids(text, table, obj)
    return CotOutput(text.strip() if reasoning is None else reasoning, _complete(ids, n), from_json)


def _id_table(n: int, marks: Sequence[str] | None) -> dict[str, int]:
    if n < 0:
        raise ValueError(f"number of candidates must be >= 0, got {n}")
    if marks is not None:
        return {mark_key(m): i for i, m in enumerate(validate_marks(marks, n))}
    table = {str(i + 1): i for i in range(n)}
    table.update({letter: i for i, letter in enumerate(LETTERS[:n])})
    return table


def _complete(ids: list[int], n: int) -> ParsedRanking:
    given = set(ids)
    rest = [i for i in range(n) if i not in given]
    return ParsedRanking(ids + rest, len(ids), len(ids) == n)


def _ranked_ids(text: str, table: dict[str, int], obj: dict | None) -> tuple[list[int], bool]:
    """The first reading that names a candidate, and whether it came from the answer's JSON."""
    for ids, from_json in _answers(text, table, obj):
        if ids:
            return ids, from_json
    return [], False


def _answers(text: str, table: dict[str, int], obj: dict | None) -> Iterator[tuple[list[int], bool]]:
    """Candidate readings of the text, most explicit first (lazy: later ones rarely run)."""
    if obj is not None:
        yield _json_ids(obj[_ranking_key(obj)], table), True
    for match in _KEYED_LIST.finditer(text):
        yield _lookup(_TOKEN.findall(match.group(1)), table), True
    spans = [*_CHAIN.finditer(text), *_BRACKETED.finditer(text)]
    readings = [(_lookup(_TOKEN.findall(m.group(0)), table), m.start()) for m in spans]
    if readings:
        yield max(readings, key=lambda r: (len(r[0]), r[1]))[0], False
    prose = _ENUMERATOR.sub("", text)
    # After a label ("Image A shows ...") a capital letter is an id even before a word.
    yield _lookup([m.group(1) for m in _LABELLED.finditer(prose) if _is_id(m.group(1))], table), False
    yield _lookup(_bare_ids(prose), table), False


def _bare_ids(prose: str) -> list[str]:
    tokens = []
    for m in _TOKEN.finditer(prose):
        token = m.group(0)
        if _is_id(token) and not (token in ("A", "I") and _WORD_USE.match(prose, m.end())):
            tokens.append(token)
    return tokens


def _is_id(token: str) -> bool:
    """In prose, an id is a number or a single capital letter (lowercase "a" is a word)."""
    return token.isdigit() or (len(token) == 1 and token.isupper())


def _lookup(tokens: list[str], table: dict[str, int]) -> list[int]:
    """Known ids in order of first mention; out-of-range and repeated ones dropped."""
    ids: list[int] = []
    for token in tokens:
        index = table.get(mark_key(token))
        if index is not None and index not in ids:
            ids.append(index)
    return ids


def _json_ids(value: object, table: dict[str, int]) -> list[int]:
    if isinstance(value, str):
        return _lookup(_TOKEN.findall(value), table)
    if not isinstance(value, list):
        return []
    tokens: list[str] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            tokens.append(str(item))
        elif isinstance(item, str):
            # "Image 3" -> "3": the first token that is a known id.
            tokens += [t for t in _TOKEN.findall(item) if mark_key(t) in table][:1]
    return _lookup(tokens, table)


def _ranking_object(text: str) -> dict | None:
    """The last JSON object in the text that carries a ranking key (searched into nesting)."""
    decoder = json.JSONDecoder()
    found = None
    pos = text.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        found = _find_ranking_dict(value) or found
        pos = text.find("{", end)
    return found


def _find_ranking_dict(value: object) -> dict | None:
    # Iterative: decoded JSON may nest deeper than Python's recursion limit allows.
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if _ranking_key(item) is not None:
                return item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


def _ranking_key(obj: dict) -> str | None:
    return next((k for k in obj if _RANKING_KEY.fullmatch(k)), None)


def _reasoning(obj: dict) -> str | None:
    lowered = {k.lower(): v for k, v in obj.items()}
    for key in _REASONING_KEYS:
        if key in lowered:
            value = lowered[key]
            if isinstance(value, str):
                return value.strip()
            # Models sometimes give the reasoning as a structure (one entry per candidate).
            return json.dumps(value, ensure_ascii=False)
    return None
