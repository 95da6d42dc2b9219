"""Odd queries an unlucky user types: very long text, words that happen to name files, bad images and weights."""

from __future__ import annotations

import json

import pytest

from retrieval.errors import BadQueryError
from retrieval.query.mix import MixTerm, in_path_form, parse_query, parse_weights


@pytest.fixture
def indexed(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    return media_dir / ".gridrank"


def test_a_query_longer_than_a_file_name_is_searched_as_words(run_cli, indexed):
    words = "a very long description of a sunny beach with palm trees and children " * 6  # about 430 bytes
    result = run_cli("search", words, "--k", "2", "--json", "--index", indexed)
    assert result.code == 0, result.err
    assert len(json.loads(result.out)["hits"]) == 2
    with_slash = "a cat and/or a dog " * 30  # a path form too long for the filesystem: still words
    assert run_cli("search", with_slash, "--k", "1", "--index", indexed).code == 0


def test_a_word_that_names_a_file_in_the_current_folder_stays_a_word(run_cli, indexed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sunset").write_bytes((indexed.parent / "photos").iterdir().__next__().read_bytes())
    result = run_cli("search", "sunset", "--k", "1", "--json", "--index", indexed)
    assert result.code == 0, result.err
    assert json.loads(result.out)["hits"]  # searched as the word: a file named sunset was not read as an image
    assert not in_path_form("sunset")
    assert parse_query("sunset", is_image_path=lambda _: True).terms == (MixTerm(1.0, text="sunset"),)


@pytest.mark.parametrize("body", ["photos/cat.jpg", "./sunset", "~/cat.jpg", "cat.jpg"])
def test_path_forms_may_name_images(body):
    assert in_path_form(body)
    assert parse_query(body, is_image_path=lambda _: True).terms == (MixTerm(1.0, image_ref=body),)


@pytest.mark.parametrize("weights", ["nan,1", "1,inf", "-inf,1", ","])
def test_weights_must_be_finite_numbers(weights):
    with pytest.raises(BadQueryError, match="--weights must be numbers"):
        parse_weights(weights, 2)


def test_nan_weights_are_an_error_in_the_cli_not_zero_results(run_cli, indexed):
    result = run_cli("search", "beach", "+dog", "--weights", "nan,1", "--index", indexed)
    assert result.code == 2
    assert "--weights must be numbers" in result.err


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: _truncated_jpeg(tmp / "half.jpg"), "half.jpg"),
])
def test_an_image_term_that_cannot_be_used_is_exit_2(run_cli, indexed, tmp_path, make, message):
    path = make(tmp_path)
    for args in (("--image", path), (f"img:{path}", "+dusk")):
        result = run_cli("search", *args, "--index", indexed)
        assert result.code == 2, (args, result.err)
        assert message in result.err
        assert "Traceback" not in result.err


def _truncated_jpeg(path):
    from sample_media import SAMPLE

    data = next(SAMPLE.rglob("*.jpg")).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path
