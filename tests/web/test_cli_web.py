"""`gridrank serve` and `gridrank demo`: options, the loud warning, user errors (the server itself is stubbed)."""

from __future__ import annotations

import pytest


@pytest.fixture
def served(monkeypatch):
    """Replace the blocking server with a recorder of what it was asked to do."""
    import app.web.server as server

    calls = []
    monkeypatch.setattr(server, "serve", lambda index_dir, settings, options, encoder=None:
                        calls.append((index_dir, settings, options, encoder)))
    return calls


def test_serve_defaults_to_loopback(run_cli, web_index, served):
    _, index_dir = web_index
    result = run_cli("serve", "--index", index_dir)
    assert result.code == 0, result.err
    _, settings, options, _ = served[-1]
    assert (options.host, options.port, options.credentials) == ("127.0.0.1", 7860, [])
    assert settings.profile == "tiny"  # the index's own model
    assert "WARNING" not in result.err


def test_serve_warns_loudly_when_open_without_sign_in(run_cli, web_index, served, tmp_path):
    _, index_dir = web_index
    result = run_cli("serve", "--index", index_dir, "--host", "0.0.0.0", "--port", "8123")
    assert result.code == 0
    assert "WARNING" in result.err
    assert "no sign-in" in result.err
    assert served[-1][2].port == 8123

    result = run_cli("serve", "--index", index_dir, "--host", "0.0.0.0", "--auth", "ann:pw")
    assert "WARNING" not in result.err
    assert served[-1][2].credentials == [("ann", "pw")]

    auth_file = tmp_path / "users"
    auth_file.write_text("# team\nann:pw\nbob:pa:ss\n")
    result = run_cli("serve", "--index", index_dir, "--host", "0.0.0.0", "--auth-file", auth_file, "--read-only")
    assert "WARNING" not in result.err
    assert served[-1][2].credentials == [("ann", "pw"), ("bob", "pa:ss")]
    assert served[-1][2].read_only


@pytest.mark.parametrize("args, message", [
    (["--auth", "no-colon"], "user:password"),
    (["--auth-file", "/no/such/file"], "cannot read the auth file"),
])
def test_serve_user_errors_exit_2(run_cli, web_index, served, args, message):
    _, index_dir = web_index
    result = run_cli("serve", "--index", index_dir, *args)
    assert result.code == 2
    assert message in result.err
    assert not served


def test_demo_indexes_the_sample_media_then_serves(run_cli, served, tiny_settings):
    result = run_cli("demo", "--tiny")
    assert result.code == 0, result.err
    assert "indexed" in result.out
    index_dir, settings, options, encoder = served[-1]
    assert index_dir.parent == tiny_settings.cache_dir / "demo-index" and index_dir.name.startswith("tiny-")
    assert (index_dir / "catalog.sqlite").is_file()
    assert settings.profile == "tiny"
    assert encoder is not None
    assert options.host == "127.0.0.1"


def test_a_second_checkout_runs_its_own_demo(run_cli, served, tmp_path, monkeypatch):
    # Same user, same cache: the demo of another clone (another sample folder) must not meet this one's index.
    import shutil

    import app.cli

    for checkout in ("one", "two"):
        sample = shutil.copytree(app.cli.SAMPLE_MEDIA, tmp_path / checkout / "assets" / "sample")
        monkeypatch.setattr(app.cli, "SAMPLE_MEDIA", sample)
        result = run_cli("demo", "--tiny")
        assert result.code == 0, result.err
        assert "indexed" in result.out
    first, second = served[-2][0], served[-1][0]
    assert first != second
    assert (first / "catalog.sqlite").is_file() and (second / "catalog.sqlite").is_file()
