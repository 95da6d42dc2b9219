import pytest

from retrieval.settings import SETTINGS_FILE, SettingsError, load_settings, record_model_settings


def test_precedence_flags_over_env_over_file(tmp_path, monkeypatch):
    (tmp_path / SETTINGS_FILE).write_text('batch_size = 8\nworkers = 3\nframes_per_video = 4\n')
    monkeypatch.setenv("GRIDRANK_WORKERS", "1")
    monkeypatch.setenv("GRIDRANK_FRAMES_PER_VIDEO", "5")
    settings = load_settings(tmp_path, frames_per_video=6, device=None)
    assert (settings.batch_size, settings.workers, settings.frames_per_video) == (8, 1, 6)


def test_invalid_value_names_the_setting(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("batch_size = 0\n")
    with pytest.raises(SettingsError, match="batch_size"):
        load_settings(tmp_path)


def test_broken_toml_names_the_file(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("batch_size = = 3\n")
    with pytest.raises(SettingsError, match=SETTINGS_FILE):
        load_settings(tmp_path)


def test_unknown_key_is_an_error(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("batch_sise = 3\n")
    with pytest.raises(SettingsError, match="batch_sise"):
        load_settings(tmp_path)


def test_recorded_model_is_what_later_loads_use_and_other_keys_survive(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text("# my comment\nworkers = 1\n")
    record_model_settings(tmp_path, load_settings(None, clip_model="RN50", clip_pretrained="openai"))
    text = (tmp_path / SETTINGS_FILE).read_text()
    assert "# my comment" in text
    later = load_settings(tmp_path)
    assert (later.profile, later.clip_model, later.workers) == ("default", "RN50", 1)
    assert later.model_identity == ("RN50", "openai")
    # Rebuilt with the tiny profile: the file names that profile, and no CLIP model it does not use.
    record_model_settings(tmp_path, load_settings(None, profile="tiny"))
    text = (tmp_path / SETTINGS_FILE).read_text()
    assert 'profile = "tiny"' in text and "RN50" not in text and "# my comment" in text
    assert load_settings(tmp_path).model_identity[0] == "gridrank-tiny-clip"
