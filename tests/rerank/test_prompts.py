import pytest

from retrieval.rerank.chat import ImageRef
from retrieval.rerank.marks import letter_marks, number_marks
from retrieval.rerank.parser import parse_ranking
from retrieval.rerank.prompts import (
    cot_prompt,
    first_prompt,
    grid_ranking_prompt,
    sgrid_ranking_prompt,
    sqaf_caption_prompt,
)

QUERY = "two kids skateboarding at dusk"
CHANGE = "same dress but in red"


def text_before(prompt, image_index):
    """The text part right before ImageRef(image_index)."""
    parts = prompt.user_parts
    position = parts.index(ImageRef(image_index))
    assert position > 0
    assert isinstance(parts[position - 1], str)
    return parts[position - 1]


def test_grid_prompt_text_query_names_every_mark_and_one_grid_image():
    marks = letter_marks(9)
    prompt = grid_ranking_prompt(QUERY, marks)
    assert prompt.system
    assert prompt.image_indices == [0]
    assert f'"{QUERY}"' in prompt.text
    assert "A, B, C, D, E, F, G, H, I" in prompt.text
    assert "9 candidates" in prompt.text
    assert " > " in prompt.text


def test_grid_prompt_composed_query_sends_reference_then_grid():
    prompt = grid_ranking_prompt(CHANGE, letter_marks(4), composed=True)
    assert prompt.image_indices == [0, 1]
    assert "reference" in text_before(prompt, 0).lower()
    assert CHANGE in text_before(prompt, 0)
    assert "grid of 4 candidate" in text_before(prompt, 1)
    assert "keep" in prompt.text


@pytest.mark.parametrize("composed", [False, True])
def test_cot_prompt_separate_images_are_labelled(composed):
    marks = number_marks(5)
    prompt = cot_prompt(CHANGE if composed else QUERY, marks, composed=composed)
    offset = 1 if composed else 0
    assert prompt.image_indices == list(range(offset + 5))
    for i, mark in enumerate(marks):
        assert text_before(prompt, offset + i).endswith(f"Image {mark}:")
    assert '"reasoning"' in prompt.text
    assert '"ranking"' in prompt.text
    assert "[1, 3, 2]" in prompt.text  # numbers are asked for as JSON numbers


def test_cot_prompt_deconstructs_text_query_into_elements():
    text = cot_prompt(QUERY, number_marks(3)).text
    for element in ("subject", "action", "key detail", "environment", "style"):
        assert element in text
    assert "verdict" in text


def test_cot_prompt_composed_asks_what_to_keep_and_each_change():
    text = cot_prompt(CHANGE, number_marks(3), composed=True).text
    assert "kept from the reference" in text
    assert "each change" in text
    assert "subject, action" not in text


def test_cot_prompt_on_a_marked_grid():
    prompt = cot_prompt(QUERY, letter_marks(6), grid=True)
    assert prompt.image_indices == [0]
    assert "A, B, C, D, E, F" in prompt.text
    assert '["A", "C", "B"]' in prompt.text  # letters are asked for as JSON strings
    assert "Image A:" not in prompt.text


def test_cot_prompt_example_answer_parses_as_intended():
    """The format the prompt shows is one the parser reads."""
    text = cot_prompt(QUERY, letter_marks(6), grid=True).text
    example = text.split("in this form:\n", 1)[1].split("\n", 1)[0]
    assert parse_ranking(example, 6, letter_marks(6)).order[:3] == [0, 2, 1]


@pytest.mark.parametrize("composed", [False, True])
def test_first_prompt_asks_for_one_mark_only(composed):
    prompt = first_prompt(CHANGE if composed else QUERY, letter_marks(4), composed=composed)
    assert prompt.image_indices == ([0, 1] if composed else [0])
    assert "label only, one of A, B, C, D, and nothing else" in prompt.text


def test_sgrid_prompt_lists_every_video_image():
    prompt = sgrid_ranking_prompt(QUERY, 4)
    assert prompt.image_indices == [0, 1, 2, 3]
    for i in range(4):
        assert text_before(prompt, i).endswith(f"Image-{i + 1}:")
    assert "Subtitle-" not in prompt.text
    assert "[1, 3, 2]" in prompt.text
    assert f'"{QUERY}"' in prompt.text


def test_sgrid_prompt_subtitle_lines_only_where_given():
    subtitles = ["and it's a goal!", None, "", "what a   save\nby the keeper"]
    prompt = sgrid_ranking_prompt(QUERY, 4, subtitles)
    assert "Subtitle-1: and it's a goal!\n" in prompt.text
    assert "Subtitle-2" not in prompt.text
    assert "Subtitle-3" not in prompt.text
    assert "Subtitle-4: what a save by the keeper\n" in prompt.text  # whitespace folded
    # Each subtitle follows its own video's grid.
    assert prompt.user_parts[prompt.user_parts.index(ImageRef(0)) + 1].startswith("\nSubtitle-1:")


def test_sgrid_prompt_cuts_long_subtitles_and_checks_count():
    prompt = sgrid_ranking_prompt(QUERY, 1, ["word " * 500], max_subtitle_chars=50)
    line = next(l for l in prompt.text.splitlines() if l.startswith("Subtitle-1:"))
    assert len(line) <= len("Subtitle-1: ") + 51
    assert line.endswith("…")
    with pytest.raises(ValueError, match="subtitles"):
        sgrid_ranking_prompt(QUERY, 3, ["a"])


def test_sqaf_prompt_shows_reference_and_asks_for_one_sentence():
    prompt = sqaf_caption_prompt(CHANGE)
    assert prompt.image_indices == [0]
    assert prompt.user_parts[0] == ImageRef(0)
    assert f'"{CHANGE}"' in prompt.text
    assert "one sentence" in prompt.text
    assert "target image" in prompt.text


def test_text_parts_are_merged_between_images():
    for prompt in (
        grid_ranking_prompt(QUERY, letter_marks(3), composed=True),
        cot_prompt(QUERY, number_marks(3)),
        sgrid_ranking_prompt(QUERY, 3, ["x", None, "y"]),
    ):
        parts = prompt.user_parts
        assert not any(isinstance(a, str) and isinstance(b, str) for a, b in zip(parts, parts[1:]))


def test_the_caption_ranking_prompt_is_vics_video_to_text_prompt():
    from retrieval.rerank.prompts import caption_ranking_prompt

    with_subtitle = caption_ranking_prompt(["a dog  runs", "a cat sleeps"], "  hello\nthere ")
    assert with_subtitle.user_parts[0] == "Image-1:" and isinstance(with_subtitle.user_parts[1], ImageRef)
    assert with_subtitle.user_parts[2] == (
        "\nSubtitle-1: hello there\nCandidate-1: a dog runs\nCandidate-2: a cat sleeps\n"
        "Given the user query (above video and subtitle) and the 2 text candidates, rank these candidates from "
        "most to least relevant to the video. Output a list like [1,3,2,...,2] (just an example). Output only the "
        "2-ranked-elements list instantly.")
    without = caption_ranking_prompt(["a"], None).user_parts[2]
    assert "Subtitle-1" not in without and "(above video) and the 1 text candidates" in without


def test_the_sgrid_vic_prompt_is_vics_text_to_video_prompt():
    from retrieval.rerank.prompts import vic_sgrid_prompt

    prompt = vic_sgrid_prompt("a dog", 2, ["  woof  ", None])
    assert prompt.system == ""  # the model's own default, as ViC's model.chat
    assert prompt.user_parts[0] == "Image-1: " and prompt.user_parts[1] == ImageRef(0)
    assert prompt.user_parts[2] == "\nSubtitle-1: woof\nImage-2: "
    assert prompt.user_parts[4] == (
        '\nGiven the user query: "a dog", rank these 2 images from most to least relevant to the user query and '
        "output a list like [1,3,2,5,4,...,2th_element] (just an example). Output only the 2-ranked-elements list "
        "instantly.")


@pytest.mark.parametrize("composed", [False, True])
def test_the_cot_prompt_carries_a_worked_example_answered_in_the_asked_json(composed):
    import json

    from retrieval.rerank.prompts import cot_prompt

    text = cot_prompt("a red car", number_marks(5), composed=composed).user_parts[-1]
    assert "A worked example, for another" in text
    example = json.loads(text.split("Answer: ", 1)[1].split("\n", 1)[0])
    assert sorted(example["ranking"]) == [1, 2, 3, 4] and example["reasoning"]
    assert text.index("Answer: ") < text.index("Now do the same for the request and the 5 candidates above")
