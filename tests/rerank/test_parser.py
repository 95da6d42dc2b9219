import json

import pytest
from hypothesis import given, settings, strategies as st

from retrieval.rerank.marks import LETTERS, letter_marks, number_marks
from retrieval.rerank.parser import parse_cot, parse_ranking


def order(text, n, marks=None):
    return parse_ranking(text, n, marks).order


@pytest.mark.parametrize(
    "text",
    [
        "3 > 1 > 2",
        "3>1>2",
        "[3] > [1] > [2]",
        "[3, 1, 2]",
        "The ranking is [3, 1, 2].",
        '{"ranking": [3, 1, 2]}',
        '{"ranking": ["3", "1", "2"]}',
        '{"ranking": ["Image 3", "Image 1", "Image 2"]}',
        'Sure!\n```json\n{"reasoning": "3 shows it best", "ranking": [3, 1, 2]}\n```\nDone.',
        "C > A > B",
        "[C, A, B]",
        "['c', 'a', 'b']",
        "Image 3 > Image 1 > Image 2",
        "Image-3, Image-1, Image-2",
        "1. Image 3\n2. Image 1\n3. Image 2",
        "The best match is Image 3, then Image 1 and finally Image 2.",
        "3, 1, 2",
        "Ranking: C, A, B",
    ],
)
def test_formats(text):
    result = parse_ranking(text, 3)
    assert result.order == [2, 0, 1]
    assert result.mentioned == 3
    assert result.complete


def test_letters_with_explicit_marks():
    marks = letter_marks(4)
    assert order("D > B", 4, marks) == [3, 1, 0, 2]
    assert order("[B, A]", 4, marks) == [1, 0, 2, 3]
    # With letter marks, numbers are not candidate ids.
    assert parse_ranking("2 > 1", 4, marks).mentioned == 0


def test_numbers_with_numeric_marks_ignore_letters():
    assert parse_ranking("C > A", 3, number_marks(3)).mentioned == 0
    assert order("Image 3 then image 1", 3, number_marks(3)) == [2, 0, 1]
    assert order("[03, 1]", 3, number_marks(3)) == [2, 0, 1]  # leading zeros


def test_single_letter_answer_for_first():
    result = parse_ranking("C", 5, letter_marks(5))
    assert result.order == [2, 0, 1, 3, 4]
    assert result.mentioned == 1
    assert not result.complete


def test_drops_out_of_range_and_repeated_ids_and_appends_missing_in_first_stage_order():
    result = parse_ranking("[5, 0, 9, 2, 5, 2, 7]", 6)
    assert result.order == [4, 1, 0, 2, 3, 5]
    assert result.mentioned == 2
    assert not result.complete


def test_no_ids_gives_first_stage_order():
    texts = ("", "I cannot tell.", "{}", "[]", "A dog is a good boy", '```json\n{"ranking": []}')
    for text in texts:
        result = parse_ranking(text, 4)
        assert result.order == [0, 1, 2, 3]
        assert result.mentioned == 0


def test_articles_and_pronouns_are_not_letter_ids():
    assert parse_ranking("A dog. I think so, I'd say.", 10).mentioned == 0
    assert order("I think C is best", 10) == [2, 0, 1, 3, 4, 5, 6, 7, 8, 9]
    assert order("A is best, then I", 10)[:2] == [0, 8]
    assert order("Image A shows the scene best", 3) == [0, 1, 2]
    assert parse_ranking("Image A shows the scene best", 3).mentioned == 1


def test_json_is_preferred_over_other_lists_in_the_text():
    text = 'Candidates [1, 2, 3] were shown. {"reasoning": "2 > 1 > 3", "ranking": [3, 2, 1]}'
    assert order(text, 3) == [2, 1, 0]


def test_last_json_answer_wins_and_nested_ranking_is_found():
    text = 'e.g. {"ranking": [1, 2, 3]}\nanswer: {"result": {"final_ranking": [2, 3, 1]}}'
    assert order(text, 3) == [1, 2, 0]


def test_broken_or_truncated_json_still_yields_its_ranking():
    assert order("{'ranking': [2, 3, 1],}", 3) == [1, 2, 0]
    assert order('{"ranking": [2, 3', 3) == [1, 2, 0]


def test_longest_list_wins_and_later_list_breaks_ties():
    assert order("[1] is decent, but overall [3, 2, 1]", 3) == [2, 1, 0]
    assert order("draft [1, 2]; final [2, 1]", 3) == [1, 0, 2]


def test_zero_candidates_and_bad_arguments():
    assert parse_ranking("3 > 1", 0).order == []
    assert parse_ranking("3 > 1", 0).complete
    with pytest.raises(ValueError):
        parse_ranking("1", -1)
    with pytest.raises(ValueError):
        parse_ranking("1", 3, ["A", "B"])


def test_cot_reasoning_from_json():
    payload = {
        "reasoning": "Elements: kids, skateboards, dusk. Image 2 fits all.",
        "ranking": [2, 1, 3],
    }
    text = "Here you go:\n```json\n" + json.dumps(payload) + "\n```"
    cot = parse_cot(text, 3)
    assert cot.reasoning == payload["reasoning"]
    assert cot.ranking.order == [1, 0, 2]
    assert cot.ranking.complete


def test_cot_structured_reasoning_is_kept_as_json_text():
    text = json.dumps({"analysis": {"A": "red dress", "B": "blue dress"}, "ranking": ["A", "B"]})
    cot = parse_cot(text, 2, letter_marks(2))
    assert json.loads(cot.reasoning) == {"A": "red dress", "B": "blue dress"}
    assert cot.ranking.order == [0, 1]


def test_cot_without_json_keeps_the_whole_text_as_reasoning():
    text = "  Image 2 is the only one at dusk, so 2 > 1 > 3.  "
    cot = parse_cot(text, 3)
    assert cot.reasoning == text.strip()
    assert cot.ranking.order == [1, 0, 2]


def render(permutation, style):
    ids = [str(i + 1) for i in permutation]
    letters = [LETTERS[i] for i in permutation]
    one_based = [i + 1 for i in permutation]
    return {
        "chain": " > ".join(ids),
        "brackets": "[" + ", ".join(ids) + "]",
        "rankgpt": " > ".join(f"[{i}]" for i in ids),
        "json": "```json\n" + json.dumps({"reasoning": "ok", "ranking": one_based}) + "\n```",
        "letters": " > ".join(letters),
        "letter_list": "[" + ", ".join(letters) + "]",
        "images": ", ".join(f"Image-{i}" for i in ids),
    }[style]


STYLES = ["chain", "brackets", "rankgpt", "json", "letters", "letter_list", "images"]


@given(st.permutations(range(20)), st.integers(1, 20), st.sampled_from(STYLES))
def test_any_rendered_permutation_round_trips(full, n, style):
    permutation = [i for i in full if i < n]
    result = parse_ranking("Answer: " + render(permutation, style), n)
    assert result.order == permutation
    assert result.complete


@given(st.text(max_size=300), st.integers(1, 20))
@settings(max_examples=300)
def test_arbitrary_text_always_gives_a_permutation(text, n):
    result = parse_ranking(text, n)
    assert sorted(result.order) == list(range(n))
    assert 0 <= result.mentioned <= n
    assert result.complete == (result.mentioned == n)
    # The unmentioned tail keeps first-stage order.
    tail = result.order[result.mentioned :]
    assert tail == sorted(tail)


ANSWERISH = st.text(alphabet="0123456789ABCabc[]{}>,: \"'-\nImageranking`json", max_size=200)


@given(ANSWERISH, st.integers(1, 20), st.booleans())
@settings(max_examples=300)
def test_answer_like_text_always_gives_a_permutation(text, n, with_marks):
    marks = letter_marks(n) if with_marks else None
    result = parse_ranking(text, n, marks)
    assert sorted(result.order) == list(range(n))
    cot = parse_cot(text, n, marks)
    assert cot.ranking == result
    assert isinstance(cot.reasoning, str)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "1",
        '{"ranking": ' + "[" * 3000 + "1" + "]" * 3000 + "}",
        '{"a": ' * 2000,
        "{" * 3000,
        "9" * 6000,
        '{"ranking": [' + "9" * 6000 + "]}",
    ],
)
def test_pathological_text_does_not_raise(text):
    assert sorted(parse_ranking(text, 5).order) == list(range(5))


@pytest.mark.parametrize("text, order", [
    ("C, followed by A and then B", [2, 0, 1]),
    ("The best is C, followed by A and then B.", [2, 0, 1]),
    ("B over A over C", [1, 0, 2]),
    ("C then A then B", [2, 0, 1]),
    ("A dog is shown in B, then C", [1, 2, 0]),  # "A dog": an article, so A comes where first-stage order puts it
])
def test_ranking_phrases_in_prose(text, order):
    assert parse_ranking(text, 3, letter_marks(3)).order == order


def test_cot_says_whether_its_ranking_came_from_the_json():
    whole = parse_cot('{"reasoning": "C fits best", "ranking": [3, 1, 2]}', 3)
    assert whole.from_json
    assert whole.ranking.order == [2, 0, 1]
    cut_in_list = parse_cot('{"reasoning": "C fits best", "ranking": [3, 1', 3)
    assert cut_in_list.from_json  # the ranking list was started: what it names is the model's ranking
    assert cut_in_list.ranking.order == [2, 0, 1]
    cut_in_reasoning = parse_cot('{"reasoning": "Elements: a cat. Image 2 shows a dog; Image 3 shows a cat', 3)
    assert not cut_in_reasoning.from_json  # only mentions: the order they happen to come in
    assert cut_in_reasoning.ranking.order == [1, 2, 0]
