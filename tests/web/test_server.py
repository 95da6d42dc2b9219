"""The running app over HTTP: the file route's allow-list, the gradio_client API, uploads, concurrency, sign-in."""

from __future__ import annotations

import json
import os
import re
import shutil

import httpx
import pytest
from gradio_client import Client, handle_file

from retrieval.query.types import Query
from sample_media import SAMPLE

from .support import free_port


@pytest.fixture(scope="module")
def client(web_server):
    # download_files=False: hits stay server paths (by default the client downloads each hit's file).
    return Client(web_server.url, verbose=False, download_files=False)


def _file_status(server, path) -> int:
    return httpx.get(f"{server.url}gradio_api/file={path}", timeout=30).status_code


def test_file_route_serves_indexed_media_and_thumbnails(web_server, web_index):
    media, _ = web_index
    photo = next(media.rglob("*.jpg"))
    assert _file_status(web_server, photo) == 200
    assert _file_status(web_server, next(media.rglob("*.mp4"))) == 200
    thumbnail = web_server.backend.thumbnails.thumbnail(photo, "image")
    assert _file_status(web_server, thumbnail) == 200


def test_file_route_refuses_everything_else(web_server, web_index):
    media, index_dir = web_index
    secret = media.parent / "secret.jpg"  # next to the root, outside it
    shutil.copy(next(SAMPLE.rglob("*.jpg")), secret)
    link = media / "escape.jpg"
    notes = media / "notes.txt"
    link.symlink_to(secret)
    notes.write_text("private")
    try:
        for path in (
            secret,  # absolute, outside the root
            f"{media}/../secret.jpg",  # ../ out of the root
            f"{media}/photos/../../../../../../etc/passwd",
            "/etc/passwd",
            link,  # a symlink inside the root that leads out
            index_dir / "catalog.sqlite",  # the index folder
            index_dir / "gridrank.toml",
            notes,  # inside the root, not media
        ):
            assert _file_status(web_server, path) in (403, 404), path
    finally:
        for path in (link, notes, secret):
            path.unlink()


def test_api_search_returns_the_same_paths_as_the_cli(client, web_server, web_index, run_cli):
    _, index_dir = web_index
    api = client.predict("a red ball", 6, "any", api_name="/search")
    direct = web_server.backend.searcher.search(Query("a red ball"), 6, "any")
    assert [h["path"] for h in api["hits"]] == [str(h.path) for h in direct.hits]
    cli = run_cli("search", "a red ball", "--k", "6", "--json", "--index", index_dir)
    assert cli.code == 0, cli.err
    assert [h["path"] for h in json.loads(cli.out)["hits"]] == [h["path"] for h in api["hits"]]


def test_api_search_takes_an_optional_rerank(client, web_server):
    first = web_server.backend.searcher.search(Query("coffee"), 4, "image").hits
    api = client.predict("coffee", 4, "image", "first", 4, api_name="/search")
    assert api["rerank"]["method"] == "first"
    assert sorted(api["rerank"]["order"]) == [0, 1, 2, 3]
    assert sorted(h["first_stage_rank"] for h in api["hits"]) == [1, 2, 3, 4]
    assert {h["path"] for h in api["hits"]} == {str(h.path) for h in first}
    assert api["rerank"]["images_sent"]
    assert api["timings"]["rerank_s"] > 0
    by_name = client.predict("coffee", 4, "image", api_name="/search", rerank="grid")
    assert by_name["rerank"]["method"] == "grid"
    assert len(by_name["hits"]) == 4
    video = client.predict("a ball", 3, "video", "none", 4, "rrf", api_name="/search")
    assert video["fusion"] == "rrf"
    assert video["rerank"] is None
    with pytest.raises(Exception, match="unknown rerank method"):
        client.predict("coffee", 4, "image", "best", api_name="/search")


def test_api_search_takes_filters_mixing_and_more_like_this(client):
    space = client.predict("2:a cat -a dog", 5, "any", api_name="/search", under="photos/space", min_score=-1)
    assert len(space["hits"]) == 2
    assert all("/photos/space/" in h["path"] for h in space["hits"])
    like = client.predict("", 3, "any", api_name="/search", like="photos/cat_chelsea.jpg", collapse=False)
    assert like["hits"][0]["path"].endswith("photos/cat_chelsea.jpg")
    assert len(like["hits"]) == 3
    page2 = client.predict("a cat", 3, "any", api_name="/search", page=2)
    assert [h["rank"] for h in page2["hits"]] == [4, 5, 6]
    with pytest.raises(Exception, match="from date must be a date"):
        client.predict("a cat", 3, "any", api_name="/search", after="June")


def test_eight_concurrent_queries_are_all_answered(client):
    jobs = [client.submit(f"query number {i}", 5, "any", api_name="/search") for i in range(8)]
    results = [job.result(timeout=120) for job in jobs]
    assert [len(r["hits"]) for r in results] == [5] * 8


def _composed(client, image, text="but in red"):
    outputs = client.predict(handle_file(image), text, "image", 5, "none", api_name="/composed_search")
    return outputs[0], " ".join(str(o) for o in outputs[1:])  # gallery, the text outputs


def test_composed_search_with_an_uploaded_image(client):
    gallery, text = _composed(client, next(SAMPLE.rglob("cat_*.jpg")))
    assert len(gallery) == 5
    assert "5 results" in text


def test_a_reranked_composed_search_streams_its_status_first(client):
    job = client.submit(handle_file(SAMPLE / "photos" / "cat_chelsea.jpg"), "but asleep", "image", 4, "grid", 4,
                        0.7, 0.5, api_name="/composed_search")
    final = job.result(timeout=120)
    streamed = job.outputs()
    assert len(streamed) >= 2  # the first-stage results and a status, then the reranked results
    status_of = lambda outputs: outputs[2]  # noqa: E731  (gallery, summary, status, ...: no State in the API)
    assert status_of(streamed[0]).startswith("**Working…**")
    assert "reranking 4 candidates" in status_of(streamed[0])
    assert len(final[0]) == 4
    assert re.search(r"was #\d", final[0][0]["caption"])
    assert status_of(final).startswith(("✓ Reranked", "⚠"))
    assert "a = 0.7" in " ".join(str(o) for o in final)


def test_non_image_upload_is_rejected_with_a_reason(client, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("this is not a picture")
    gallery, text = _composed(client, fake)
    assert gallery == []
    assert "holiday.png was not used" in text
    assert "not an image" in text


def test_oversized_upload_is_refused_and_the_server_goes_on(web_server, client, tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(2 * 2**20))  # the test server allows 1 MB
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client reads the limit
        _composed(client, big)
    with big.open("rb") as f:  # and the server enforces it for any other client
        response = httpx.post(f"{web_server.url}gradio_api/upload", files={"files": f}, timeout=30)
    assert response.status_code == 413
    assert client.predict("still answering", 2, "any", api_name="/search")["hits"]


def test_sign_in_and_read_only(web_index, tiny_settings, tiny_encoder):
    from app.web.server import ServeOptions, open_backend, start

    media, index_dir = web_index
    backend = open_backend(index_dir, tiny_settings, tiny_encoder)
    server = start(backend, ServeOptions(port=free_port(), credentials=[("ann", "s3cret")], read_only=True,
                                         quiet=True))
    try:
        assert _file_status(server, next(media.rglob("*.jpg"))) in (401, 403)
        with pytest.raises(Exception):
            Client(server.url, verbose=False, download_files=False)
        signed_in = Client(server.url, auth=("ann", "s3cret"), verbose=False, download_files=False)
        assert len(signed_in.predict("x", 2, "any", api_name="/search")["hits"]) == 2
        assert "index-start" not in json.dumps(signed_in.config)  # no Index tab
    finally:
        server.close()


@pytest.mark.parametrize("args, kwargs, says", [
    ((["a", "cat"], 3, "any"), {}, "query: Input should be a valid string"),
    (("a cat", "many", "any"), {}, "k: Input should be a valid integer"),
    (("a cat", 3, "any"), {"page": 0}, "page must be at least 1"),
    (("a cat", 3, "any"), {"after": "June"}, "from date must be a date"),
    (("a cat", 3, "any", "best"), {}, "unknown rerank method 'best'"),
])
def test_a_bad_api_call_is_one_message_for_the_caller_and_no_traceback_in_the_log(client, capsys, args, kwargs,
                                                                                   says):
    capsys.readouterr()
    with pytest.raises(Exception, match=re.escape(says)):
        client.predict(*args, api_name="/search", **kwargs)
    log = capsys.readouterr()
    assert "Traceback" not in log.err + log.out
