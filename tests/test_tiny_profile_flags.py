"""--tiny builds its own random models: a named model next to it is refused, never silently ignored."""

from __future__ import annotations

import pytest

from retrieval.errors import SettingsError
from retrieval.settings import SETTINGS_FILE, load_settings


@pytest.mark.parametrize("flags, named", [
    (["--model", "ViT-L-14"], "clip_model 'ViT-L-14'"),
    (["--pretrained", "openai"], "clip_pretrained 'openai'"),
])
def test_index_with_tiny_and_a_named_clip_model_is_refused_and_leaves_nothing(run_cli, media_dir, flags, named):
    result = run_cli("index", media_dir, "--tiny", *flags)
    assert result.code == 2
    assert named in result.err and "drop --tiny" in result.err
    assert "Value error" not in result.err and ": :" not in result.err
    assert not (media_dir / ".gridrank").exists()


def test_search_with_tiny_and_a_named_reranker_is_refused(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    result = run_cli("search", "a cat", "--tiny", "--rerank", "grid", "--reranker-model", "Qwen/Qwen2-VL-7B-Instruct",
                     "--index", media_dir / ".gridrank")
    assert result.code == 2
    assert "reranker_model 'Qwen/Qwen2-VL-7B-Instruct'" in result.err


def test_a_served_reranker_may_be_named_with_tiny():
    # With --reranker-url the name is the served model's, which the tiny profile does use.
    settings = load_settings(None, profile="tiny", reranker_url="http://127.0.0.1:9/v1", reranker_model="served")
    assert settings.reranker_name == "served"
    with pytest.raises(SettingsError, match="builds its own random models"):
        load_settings(None, profile="tiny", reranker_model="served")


def test_a_tiny_index_records_no_clip_model_it_did_not_use(run_cli, media_dir):
    assert run_cli("index", media_dir, "--tiny").code == 0
    recorded = (media_dir / ".gridrank" / SETTINGS_FILE).read_text()
    assert 'profile = "tiny"' in recorded
    assert "clip_model" not in recorded and "clip_pretrained" not in recorded
