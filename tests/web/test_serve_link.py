"""`gridrank search` answered by a running `gridrank serve` of the same index (app/serve_link.py)."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest

from app import serve_link
from sample_media import SAMPLE

from .support import free_port


@pytest.fixture
def announced(web_server):
    """INDEX/serve.json for the shared test server, as `gridrank serve` writes it; removed afterwards."""
    index_dir = web_server.backend.index_dir  # what it serves now (a browser test may have switched it)
    link = serve_link.announce(index_dir, web_server.url, web_server.token)
    assert link is not None
    yield index_dir, link
    serve_link.withdraw(index_dir, link)


def _json(result) -> dict:
    assert result.code == 0, result.err
    return json.loads(result.out)


def _hits(data: dict) -> list[tuple]:
    return [(h["rank"], h["path"], round(h["score"], 5), h["timestamp"]) for h in data["hits"]]


def test_a_running_server_answers_with_what_a_local_search_gives(run_cli, announced):
    index_dir, link = announced
    served = _json(run_cli("search", "a red ball", "--k", "5", "--index", index_dir, "--json"))
    assert served["index"]["served_by"] == link.url
    local = _json(run_cli("search", "a red ball", "--k", "5", "--index", index_dir, "--json",
                          "--server", "never"))
    assert "served_by" not in local["index"]
    assert _hits(served) == _hits(local)
    assert served["index"]["path"] == local["index"]["path"] == str(index_dir)

    table = run_cli("search", "a red ball", "--k", "3", "--kind", "video", "--index", index_dir)
    assert table.code == 0, table.err
    assert f"answered by the running server at {link.url}" in " ".join(table.out.split())
    assert "3 results" in table.out or "2 results" in table.out


def test_a_query_the_server_refuses_fails_as_a_local_one_does(run_cli, announced):
    index_dir, _ = announced
    served = run_cli("search", "x", "--after", "2024-13-45", "--index", index_dir)
    local = run_cli("search", "x", "--after", "2024-13-45", "--index", index_dir, "--server", "never")
    assert served.code == local.code == 2
    assert "--after" in served.err
    assert served.err.splitlines()[0] == local.err.splitlines()[0]


def test_server_always_answers_from_the_server_or_fails(run_cli, announced, tmp_path):
    index_dir, link = announced
    data = _json(run_cli("search", "a cat", "--index", index_dir, "--json", "--server", "always"))
    assert data["index"]["served_by"] == link.url
    serve_link.withdraw(index_dir, link)
    result = run_cli("search", "a cat", "--index", index_dir, "--server", "always")
    assert result.code == 2
    assert "no running `gridrank serve`" in result.err
    result = run_cli("search", "a cat", "--index", index_dir, "--server", "always", "--tiny")
    assert result.code == 2
    assert "cannot take --tiny" in result.err


def test_the_link_file_is_for_its_user_only(announced):
    index_dir, _ = announced
    mode = (index_dir / serve_link.LINK_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600  # it holds the token


@pytest.mark.parametrize("spoil", ["dead process", "wrong token", "another index", "no server there"])
def test_any_trouble_with_the_server_means_a_local_search(run_cli, web_server, announced, tmp_path, spoil):
    index_dir, link = announced
    if spoil == "dead process":
        gone = subprocess.Popen(["true"])
        gone.wait()
        link = serve_link.ServerLink(link.url, gone.pid, link.host, link.token, link.index)
    elif spoil == "wrong token":
        link = serve_link.ServerLink(link.url, link.pid, link.host, "not-the-token", link.index)
    elif spoil == "another index":
        link = serve_link.ServerLink(link.url, link.pid, link.host, link.token, str(tmp_path))
    else:
        link = serve_link.ServerLink("http://127.0.0.1:9", link.pid, link.host, link.token, link.index)
    (index_dir / serve_link.LINK_FILE).write_text(json.dumps(link.__dict__), encoding="utf-8")
    data = _json(run_cli("search", "a cat", "--k", "3", "--index", index_dir, "--json"))
    assert "served_by" not in data["index"]
    assert len(data["hits"]) == 3


@pytest.mark.parametrize("flags", [["--image", str(SAMPLE / "photos" / "cat_chelsea.jpg")], ["--tiny"],
                                   ["--server", "never"], ["--device", "cpu"]])
def test_a_local_image_or_model_flags_search_here(run_cli, announced, flags):
    index_dir, _ = announced
    data = _json(run_cli("search", "a cat", "--k", "2", "--index", index_dir, "--json", *flags))
    assert "served_by" not in data["index"]


def test_serve_announces_itself_while_it_runs_and_withdraws_on_exit(monkeypatch, web_index, web_settings,
                                                                     tiny_encoder):
    import gradio as gr

    from app.web import server

    _, index_dir = web_index
    seen = []

    def block_thread(self):  # instead of waiting for Ctrl-C: look at the link, then stop
        seen.append(serve_link.find(index_dir))

    monkeypatch.setattr(gr.Blocks, "block_thread", block_thread)
    server.serve(index_dir, web_settings, server.ServeOptions(port=free_port(), quiet=True), encoder=tiny_encoder)
    link = seen[0]
    assert link is not None and link.url.startswith("http://127.0.0.1:")
    assert link.index == str(index_dir.resolve())
    assert not (index_dir / serve_link.LINK_FILE).exists()


def test_local_url_reaches_a_wildcard_listener_over_loopback():
    assert serve_link.local_url("0.0.0.0", 7860) == "http://127.0.0.1:7860"
    assert serve_link.local_url("::1", 80) == "http://[::1]:80"
    assert serve_link.local_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"


def test_a_read_only_index_folder_announces_in_the_state_folder(run_cli, web_server, tmp_path):
    # A container may mount the media read-only: the link goes to the user's state folder instead.
    # (The tests run as root, which chmod cannot stop: a folder in the file's place blocks the write.)
    index_dir = web_server.backend.index_dir
    blocker = index_dir / serve_link.LINK_FILE
    blocker.mkdir()
    try:
        link = serve_link.announce(index_dir, web_server.url, web_server.token)
        assert link is not None and serve_link.find(index_dir) == link
        data = _json(run_cli("search", "a cat", "--k", "2", "--index", index_dir, "--json", "--server", "always"))
        assert data["index"]["served_by"] == link.url
        serve_link.withdraw(index_dir, link)
        assert serve_link.find(index_dir) is None
    finally:
        blocker.rmdir()
