"""Every prompt the rerankers send, as readable templates and small builders.

A builder returns a Prompt whose ImageRef(i) points at the i-th image the caller sends with
it. Image order is fixed per builder and stated in its docstring: for composed queries the
reference image is always image 0, candidates follow.
"""

from __future__ import annotations

from collections.abc import Sequence

from .chat import ImageRef, Prompt, PromptPart

RANKER_SYSTEM = (
    "You are an expert visual search assistant. You compare candidate images with a search "
    "request and rank them by how well they match it. Follow the answer format exactly."
)
CAPTION_SYSTEM = "You write precise, concise descriptions of images."
CAPTION_RANKER_SYSTEM = (
    "You are an expert video search assistant. You rank candidate captions by how well they describe a "
    "video. Follow the answer format exactly."
)

TEXT_QUERY = 'Search query: "{query}"\n\n'
COMPOSED_QUERY = (
    "The user is looking for an image like this reference image, changed as follows: "
    '"{modification}"\nReference image:\n'
)

GRID_INTRO = (
    "The {position} image is a grid of {k} candidate images. Each candidate is marked with "
    "its label ({labels}) in a black box in the top-left corner of its cell.\n"
)
SEPARATE_INTRO = "The {k} candidate images follow, each after its label.\n"

TEXT_CRITERION = (
    "how well each candidate matches the search query, considering every detail it asks for"
)
COMPOSED_CRITERION = (
    "how well each candidate matches the reference image with the requested change applied: "
    "it must show every requested change and keep what the change does not touch"
)

GRID_RANKING_TASK = (
    "Rank all {k} candidates by {criterion}, best first.\n"
    "Answer with the labels only, separated by ' > ', for example: {example}"
)

COT_TASK = (
    "Rank all {k} candidates by {criterion}. Work in three steps:\n"
    "1. {deconstruct}\n"
    "2. Judge each candidate against those elements with one short verdict.\n"
    "3. Synthesize a ranking of all {k} candidates, best first.\n"
    "{worked_example}"
    "Now do the same for the request and the {k} candidates above. "
    "Reply with JSON only, in this form:\n"
    '{{"reasoning": "<the elements, then one verdict per candidate>", "ranking": {example}}}\n'
    "The ranking must list every candidate label exactly once."
)
# CoTRR's prompts carry one worked example each (freshfish15/CoTRR, models/prompts.py): the query taken apart
# into its elements, a verdict per image, a synthesis, then the JSON answer. These are gridrank's own examples
# in that structure, for another request and other images.
COT_TEXT_EXAMPLE = (
    "A worked example, for another query and other images:\n"
    'Query: "a brown dog catching a red frisbee on a beach at sunset"\n'
    "1. Elements: subject: a brown dog; action: catching a frisbee in the air; key detail: the frisbee is "
    "red; environment: a sandy beach; style: warm, low sunset light.\n"
    "2. Image 1: a black dog asleep on a sofa: wrong colour, action and place. Image 2: a brown dog leaping "
    "for a red frisbee over sand under an orange sky: every element. Image 3: a brown dog on a beach at "
    "sunset carrying a stick: subject and setting, but no frisbee and no catch. Image 4: a man throwing a "
    "red frisbee in a park at noon: the frisbee only.\n"
    "3. Image 2 has every element; Image 3 keeps the subject and the setting; Image 4 has the key object; "
    "Image 1 has almost nothing.\n"
    'Answer: {"reasoning": "Elements: brown dog, catching, red frisbee, beach, sunset. 1: wrong dog, asleep, '
    'indoors. 2: all elements. 3: right dog and beach, no frisbee. 4: frisbee only.", "ranking": [2, 3, 4, 1]}\n'
)
COT_COMPOSED_EXAMPLE = (
    "A worked example, for another request and other images:\n"
    "Reference: a white ceramic mug on a wooden desk. Change: \"make it a glass mug full of coffee, outside\"\n"
    "1. Keep: a mug, its shape and size, on a table. Changes: (a) glass instead of white ceramic; (b) full of "
    "coffee; (c) an outdoor setting.\n"
    "2. Image 1: a glass mug of coffee on a garden table: keeps the mug, makes all three changes. Image 2: the "
    "white ceramic mug outdoors: one change of three. Image 3: a glass of orange juice on a desk: glass, but "
    "not a mug, no coffee, indoors. Image 4: a glass mug of coffee on a kitchen counter: two changes, still "
    "indoors.\n"
    "3. Image 1 makes every change and keeps the mug; Image 4 misses only the setting; Image 2 makes one "
    "change; Image 3 loses the subject.\n"
    'Answer: {"reasoning": "Keep a mug on a table; change to glass, with coffee, outdoors. 1: all changes. 2: '
    'only outdoors. 3: not a mug. 4: glass and coffee, indoors.", "ranking": [1, 4, 2, 3]}\n'
)
TEXT_DECONSTRUCT = (
    "Deconstruct the query into its elements: subject, action, key detail, environment and "
    'style (write "none" for an element the query does not specify).'
)
COMPOSED_DECONSTRUCT = (
    "Deconstruct the request: what must be kept from the reference image, and each change "
    "that is requested."
)

FIRST_TEXT_QUESTION = "Which candidate matches the search query best?"
FIRST_COMPOSED_QUESTION = (
    "Which candidate best matches the reference image with the requested change applied?"
)
FIRST_TASK = "{question} Answer with its label only, one of {labels}, and nothing else."

SGRID_INTRO = (
    'Search query: "{query}"\n\n'
    "Each of the following {k} images shows one candidate video as a grid of frames sampled "
    "uniformly over its length, in reading order (left to right, top to bottom).\n"
)
SGRID_TASK = (
    "Rank the {k} videos by how well each one matches the search query, best first. Answer "
    "with the ranking only, as a list of image numbers, for example {example}."
)

# ViC's text-to-video prompt (Scripts/ensemble_retrieval.py, rerank_top_videos), word for word: "Image-i: <image>"
# lines, each with its "Subtitle-i: ..." line when the video has one, then this instruction; no system prompt.
VIC_VIDEOS_TASK = (
    'Given the user query: "{query}", rank these {k} images from most to least relevant to the user query and '
    "output a list like [1,3,2,5,4,...,{k}th_element] (just an example). Output only the {k}-ranked-elements list "
    "instantly."
)

# ViC's video-to-text prompt (mohammad2012191/ViC, Scripts/ensemble_retrieval.py, rerank_top_captions), word
# for word: the query video as "Image-1", its subtitle line if any, then "Candidate-i: <caption>".
CAPTIONS_TASK = (
    "Given the user query (above video{and_subtitle}) and the {k} text candidates, rank these candidates from "
    "most to least relevant to the video. Output a list like [1,3,2,...,{k}] (just an example). Output only the "
    "{k}-ranked-elements list instantly."
)

# Pointwise: one candidate per call, scored by the model's "yes" against "no" as the next token (what dedicated
# rerankers such as Qwen3-VL-Reranker do, under their own template).
POINTWISE_LABELS = ("yes", "no")
# How a chat model may begin either answer; a label's probability sums its spellings.
POINTWISE_SPELLINGS = {label: (label, label.capitalize()) for label in POINTWISE_LABELS}
POINTWISE_TEXT = 'Search query: "{query}"\nDoes this image match the search query?'
POINTWISE_COMPOSED = (
    'Does the second image show the first image changed as follows: "{modification}"?'
)
POINTWISE_ANSWER = " Answer yes or no."

SQAF_TASK = (
    "This is a reference image. The target image is the reference changed as follows: "
    '"{modification}"\n'
    "Write one sentence describing the target image: what it keeps from the reference and "
    "how it differs. Reply with the sentence only."
)


def grid_ranking_prompt(query: str, marks: Sequence[str], *, composed: bool = False) -> Prompt:
    """SQUARE single pass: rank the candidates of one marked grid.

    Images: [grid], or [reference, grid] when `composed` (then `query` is the modification).
    """
    task = GRID_RANKING_TASK.format(
        k=len(marks), criterion=_criterion(composed), example=" > ".join(_example(marks))
    )
    parts = [*_query_parts(query, composed), *_grid_parts(marks, composed), task]
    return Prompt(RANKER_SYSTEM, _merge(parts))


def cot_prompt(
    query: str, marks: Sequence[str], *, composed: bool = False, grid: bool = False
) -> Prompt:
    """CoTRR listwise chain of thought, answered as JSON {"reasoning", "ranking"}.

    Candidates are separate images labelled "Image <mark>:" (images [c1..cK], after the
    reference when `composed`), or one marked grid when `grid` (images as grid_ranking_prompt).
    """
    if grid:
        candidates = _grid_parts(marks, composed)
    else:
        offset = 1 if composed else 0
        candidates = [SEPARATE_INTRO.format(k=len(marks))]
        for i, mark in enumerate(marks):
            candidates += [f"Image {mark}:", ImageRef(offset + i), "\n"]
    task = COT_TASK.format(
        k=len(marks),
        criterion=_criterion(composed),
        deconstruct=COMPOSED_DECONSTRUCT if composed else TEXT_DECONSTRUCT,
        worked_example=COT_COMPOSED_EXAMPLE if composed else COT_TEXT_EXAMPLE,
        example=_json_list(_example(marks)),
    )
    return Prompt(RANKER_SYSTEM, _merge([*_query_parts(query, composed), *candidates, task]))


def first_prompt(query: str, marks: Sequence[str], *, composed: bool = False) -> Prompt:
    """FIRST single-token ranking: the answer's first token is the best candidate's mark.

    Images as grid_ranking_prompt. Marks must be single tokens (letters A..T).
    """
    question = FIRST_COMPOSED_QUESTION if composed else FIRST_TEXT_QUESTION
    task = FIRST_TASK.format(question=question, labels=", ".join(marks))
    parts = [*_query_parts(query, composed), *_grid_parts(marks, composed), task]
    return Prompt(RANKER_SYSTEM, _merge(parts))


def sgrid_ranking_prompt(
    query: str,
    n_videos: int,
    subtitles: Sequence[str | None] | None = None,
    max_subtitle_chars: int = 400,
) -> Prompt:
    """ViC: rank videos shown as S-Grids "Image-1".."Image-K", each optionally with its subtitles.

    Images: one S-Grid per video, in candidate order. `subtitles` has one entry per video;
    None or "" leaves out that video's "Subtitle-i:" line. Long subtitles are cut to
    `max_subtitle_chars` so K videos' text cannot crowd out the frames.
    """
    if subtitles is not None and len(subtitles) != n_videos:
        raise ValueError(f"got {len(subtitles)} subtitles for {n_videos} videos")
    parts: list[PromptPart] = [SGRID_INTRO.format(query=query, k=n_videos)]
    for i in range(n_videos):
        parts += [f"Image-{i + 1}:", ImageRef(i), "\n"]
        text = " ".join((subtitles[i] or "").split()) if subtitles is not None else ""
        if text:
            if len(text) > max_subtitle_chars:
                text = text[:max_subtitle_chars].rstrip() + "…"
            parts.append(f"Subtitle-{i + 1}: {text}\n")
    example = "[" + ", ".join(_example([str(i + 1) for i in range(n_videos)])) + "]"
    parts.append(SGRID_TASK.format(k=n_videos, example=example))
    return Prompt(RANKER_SYSTEM, _merge(parts))


def vic_sgrid_prompt(query: str, n_videos: int, subtitles: Sequence[str | None] | None = None) -> Prompt:
    """ViC's own text-to-video prompt, for sgrid-vic. Images: one S-Grid per video, in candidate order.
    Subtitles go in whole, as ViC sends them; the model's default system prompt applies, as in ViC."""
    if subtitles is not None and len(subtitles) != n_videos:
        raise ValueError(f"got {len(subtitles)} subtitles for {n_videos} videos")
    parts: list[PromptPart] = []
    for i in range(n_videos):
        parts += [f"Image-{i + 1}: ", ImageRef(i), "\n"]
        text = (subtitles[i] or "").strip() if subtitles is not None else ""
        if text:
            parts.append(f"Subtitle-{i + 1}: {text}\n")
    parts.append(VIC_VIDEOS_TASK.format(query=query, k=n_videos))
    return Prompt("", _merge(parts))


def caption_ranking_prompt(captions: Sequence[str], subtitle: str | None = None) -> Prompt:
    """ViC video-to-text: rank captions for a query video. Images: [the query video's S-Grid]."""
    parts: list[PromptPart] = ["Image-1:", ImageRef(0), "\n"]
    text = " ".join((subtitle or "").split())
    if text:
        parts.append(f"Subtitle-1: {text}\n")
    parts += [f"Candidate-{i}: {' '.join(caption.split())}\n" for i, caption in enumerate(captions, start=1)]
    parts.append(CAPTIONS_TASK.format(k=len(captions), and_subtitle=" and subtitle" if text else ""))
    return Prompt(CAPTION_RANKER_SYSTEM, _merge(parts))


def pointwise_prompt(query: str, *, composed: bool = False) -> Prompt:
    """Pointwise relevance of one candidate, answered "yes" or "no".

    Images: [candidate], or [reference, candidate] when `composed` (then `query` is the modification).
    """
    if composed:
        parts: list[PromptPart] = [ImageRef(0), ImageRef(1), POINTWISE_COMPOSED.format(modification=query)]
    else:
        parts = [ImageRef(0), POINTWISE_TEXT.format(query=query)]
    return Prompt(RANKER_SYSTEM, _merge([*parts, POINTWISE_ANSWER]))


def sqaf_caption_prompt(modification: str) -> Prompt:
    """SQAF: describe the target image of a composed query in one sentence. Images: [reference]."""
    return Prompt(CAPTION_SYSTEM, [ImageRef(0), SQAF_TASK.format(modification=modification)])


def _query_parts(query: str, composed: bool) -> list[PromptPart]:
    if composed:
        return [COMPOSED_QUERY.format(modification=query), ImageRef(0), "\n"]
    return [TEXT_QUERY.format(query=query)]


def _grid_parts(marks: Sequence[str], composed: bool) -> list[PromptPart]:
    intro = GRID_INTRO.format(
        position="next" if composed else "following", k=len(marks), labels=", ".join(marks)
    )
    return [intro, ImageRef(1 if composed else 0), "\n"]


def _criterion(composed: bool) -> str:
    return COMPOSED_CRITERION if composed else TEXT_CRITERION


def _example(marks: Sequence[str]) -> list[str]:
    """A sample answer order over the real labels that is not simply the given order."""
    marks = list(marks)
    if len(marks) >= 3:
        return [marks[0], marks[2], marks[1]]
    return marks[::-1]


def _json_list(marks: Sequence[str]) -> str:
    # Numbers as JSON numbers, letters as JSON strings: the form the parser and models expect.
    return "[" + ", ".join(m if m.isdigit() else f'"{m}"' for m in marks) + "]"


def _merge(parts: list[PromptPart]) -> list[PromptPart]:
    """Join adjacent text pieces so backends get one text block between images."""
    merged: list[PromptPart] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged
