"""Filters, more-like-this, query mixing, duplicates, score cutoff, moments and paging on the sample media
(tiny profile: random weights, so the tests assert structure and exact vector arithmetic)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import run_index
from retrieval.query.types import MediaFilter
from retrieval.query.build import build_query, like_query
from retrieval.query.types import Query
from retrieval.query.search import Searcher, UnknownItemError
from retrieval.query.request import SearchRequest
from retrieval.query.service import SearchService

from sample_media import SAMPLE

OLD = dt.datetime(2020, 3, 1, 12).timestamp()
NEW = dt.datetime(2024, 7, 1, 12).timestamp()


def _exif_photo(source, target, taken: str) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = taken  # DateTimeOriginal
    Image.open(source).convert("RGB").save(target, exif=exif)


@pytest.fixture(scope="module")
def media(tmp_path_factory, store_settings, tiny_encoder):
    """The sample media plus: one photo copied byte for byte into two folders, one photo with an EXIF
    date older than its file date; photos/ dated 2020, everything else 2024."""
    root = tmp_path_factory.mktemp("features") / "media"
    shutil.copytree(SAMPLE, root)
    for folder in ("copies/a", "copies/b"):
        (root / folder).mkdir(parents=True)
        shutil.copy(SAMPLE / "photos" / "coffee_cup.jpg", root / folder / "cup.jpg")
    _exif_photo(SAMPLE / "photos" / "grass_gray.jpg", root / "exif_2019.jpg", "2019:05:04 10:00:00")
    for path in root.rglob("*"):
        if path.is_file():
            stamp = OLD if path.parts[-2] in ("photos", "space") else NEW
            os.utime(path, (stamp, stamp))
    run_index(root, root / ".gridrank", store_settings, encoder=tiny_encoder)
    return root


@pytest.fixture(scope="module")
def service(media, tiny_settings, tiny_encoder):
    return SearchService(Searcher.open(media / ".gridrank", tiny_settings, encoder=tiny_encoder), tiny_settings)


def _rel(hits, root):
    return [h.path.relative_to(root).as_posix() for h in hits]


# -- filters ------------------------------------------------------------------------------------


def test_a_folder_filter_returns_only_that_folder_and_still_k(service, media):
    # photos/ holds 15 photos, but most of the index's nearest neighbours are elsewhere: still 6 come back
    request = SearchRequest(Query("a cat"), k=6, filter=MediaFilter(under="photos"), collapse=False)
    paths = _rel(service.run(request).hits, media)
    assert len(paths) == 6
    assert all(p.startswith("photos/") for p in paths)
    space = _rel(service.run(SearchRequest(Query("a cat"), k=6, filter=MediaFilter(under="photos/space"))).hits,
                 media)
    assert sorted(space) == ["photos/space/astronaut_eileen_collins.jpg", "photos/space/hubble_deep_field.jpg"]


def test_extension_and_kind_filters(service, media):
    hits = service.run(SearchRequest(Query("a cat"), k=3, filter=MediaFilter(exts=("png", "webp")),
                                     collapse=False)).hits
    # only two files of the index are PNG or WebP: k=3 finds both and nothing else
    assert sorted(_rel(hits, media)) == ["photos/cat_chelsea_copy.png", "photos/coffee_cup_copy.webp"]
    videos = service.run(SearchRequest(Query("a ball"), k=2, kind="video", filter=MediaFilter(exts=("mp4",)))).hits
    assert len(videos) == 2
    assert all(h.kind == "video" and h.path.suffix == ".mp4" for h in videos)


def test_date_filters_use_the_exif_date_then_the_file_date(service, media):
    old = service.run(SearchRequest(Query("grass"), k=50, filter=MediaFilter(before=dt.date(2021, 1, 1)),
                                    collapse=False)).hits
    paths = _rel(old, media)
    assert "exif_2019.jpg" in paths  # its file date is 2024; its EXIF date 2019
    assert all(p.startswith("photos/") or p == "exif_2019.jpg" for p in paths)
    assert len(paths) == 16
    new = service.run(SearchRequest(Query("grass"), k=4, filter=MediaFilter(after=dt.date(2024, 6, 1)),
                                    collapse=False)).hits
    assert len(new) == 4
    assert not any(p.startswith("photos/") or p == "exif_2019.jpg" for p in _rel(new, media))


# -- more like this -----------------------------------------------------------------------------


@pytest.mark.parametrize("item", ["photos/cat_chelsea.jpg", "videos/red_ball_bouncing.mp4"])
def test_more_like_this_puts_the_item_first_without_re_encoding(service, media, item):
    searcher = service.searcher
    query = like_query(searcher, item)
    calls = []
    searcher.encoder.encode_images = lambda images: calls.append(images)  # type: ignore[method-assign]
    try:
        hits = service.run(SearchRequest(query, k=5, collapse=False)).hits
    finally:
        del searcher.encoder.encode_images
    assert not calls
    assert _rel(hits, media)[0] == item
    assert len(hits) == 5
    media_id = searcher.find_item(item)
    frames = searcher.store.catalog.frames_of(media_id)
    mean = np.mean([searcher.store.frames.reconstruct(f.vector_id) for f in frames], axis=0)
    np.testing.assert_allclose(searcher.encode(query), mean / np.linalg.norm(mean), rtol=1e-5)


def test_more_like_this_takes_absolute_paths_and_names_an_unknown_one(service, media):
    assert like_query(service.searcher, str(media / "photos" / "cat_chelsea.jpg")).like is not None
    with pytest.raises(UnknownItemError, match="photos/no_such.jpg is not an indexed item"):
        like_query(service.searcher, "photos/no_such.jpg")


# -- query mixing -------------------------------------------------------------------------------


def test_a_mixed_query_is_the_hand_computed_normalized_sum(service, tiny_encoder):
    searcher = service.searcher
    query = build_query(searcher, "2:beach +dog -people -0.5:img:photos/cat_chelsea.jpg")
    beach, dog, people = tiny_encoder.encode_texts(["beach", "dog", "people"])
    cat = searcher.stored_vector(searcher.find_item("photos/cat_chelsea.jpg"))
    expected = 2 * beach + dog - people - 0.5 * cat
    np.testing.assert_allclose(searcher.encode(query), expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)


def test_text_and_image_with_weights_mix_and_without_them_compose(service, tiny_encoder, tiny_settings):
    searcher = service.searcher
    picture = Image.open(SAMPLE / "photos" / "coffee_cup.jpg").convert("RGB")
    text, image = tiny_encoder.encode_texts(["beach"])[0], tiny_encoder.encode_images([picture])[0]
    mixed = searcher.encode(build_query(searcher, "beach", picture, weights="0.7,0.3"))
    expected = 0.7 * text + 0.3 * image
    np.testing.assert_allclose(mixed, expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    composed = build_query(searcher, "beach", picture)
    assert composed == Query("beach", picture)  # SQAF's composed query, weight a = composed_text_weight
    a = tiny_settings.composed_text_weight
    blend = (1 - a) * image + a * text
    np.testing.assert_allclose(searcher.encode(composed), blend / np.linalg.norm(blend), rtol=1e-5, atol=1e-6)


def test_image_files_are_terms_only_where_files_are_allowed(service, tmp_path):
    outside = tmp_path / "ref.jpg"
    shutil.copy(SAMPLE / "photos" / "coffee_cup.jpg", outside)
    query = build_query(service.searcher, f"img:{outside} -dog", allow_files=True)
    assert query.terms[0].image is not None
    assert query.terms[1].text == "dog"
    with pytest.raises(UnknownItemError, match="not an indexed item"):
        build_query(service.searcher, f"img:{outside} -dog", allow_files=False)  # the web server


# -- duplicates, cutoff, moments, pages ---------------------------------------------------------


def test_copies_of_one_file_in_two_folders_collapse_into_one_result(service, media):
    hits = service.run(SearchRequest(Query("a cup"), k=50)).hits
    groups = {h.path.relative_to(media).as_posix(): [p.relative_to(media).as_posix() for p in h.duplicates]
              for h in hits}
    cups = [(leader, dups) for leader, dups in groups.items() if "copies/a/cup.jpg" in [leader, *dups]]
    assert len(cups) == 1
    leader, dups = cups[0]
    assert {"copies/a/cup.jpg", "copies/b/cup.jpg", "photos/coffee_cup.jpg"} <= {leader, *dups}
    assert "photos/coffee_cup_copy.webp" in {leader, *dups}  # re-encoded: a near-duplicate by its vector
    # --no-collapse: every copy is its own result
    loose = {h.path.relative_to(media).as_posix(): h.duplicates for h in
             service.run(SearchRequest(Query("a cup"), k=50, collapse=False)).hits}
    assert {"copies/a/cup.jpg", "copies/b/cup.jpg", "photos/coffee_cup.jpg", "photos/coffee_cup_copy.webp"} <= set(loose)
    assert not any(loose.values())
    assert len(loose) > len(hits)


def test_min_score_drops_weak_results(service):
    everything = service.run(SearchRequest(Query("a cat"), k=50, collapse=False)).hits
    cutoff = everything[4].score
    kept = service.run(SearchRequest(Query("a cat"), k=50, collapse=False, min_score=cutoff)).hits
    assert kept
    assert all(h.score >= cutoff for h in kept)
    assert len(kept) < len(everything)


def test_video_hits_carry_their_moment_as_a_segment(service, tiny_settings):
    hits = service.run(SearchRequest(Query("a ball"), k=3, kind="video")).hits
    for hit in hits:
        assert hit.segment is not None
        assert hit.segment.start <= hit.timestamp <= hit.segment.end
        assert hit.segment.best == hit.timestamp
    # frames are about 0.3 s apart in the sample videos: a 0.1 s gap leaves each frame its own moment
    narrow = SearchService(service.searcher, tiny_settings.model_copy(update={"segment_gap_s": 0.1}))
    for hit in narrow.run(SearchRequest(Query("a ball"), k=3, kind="video")).hits:
        assert hit.segment.start == hit.segment.end == hit.timestamp


def test_pages_are_stable_and_do_not_overlap(service):
    pages = [service.run(SearchRequest(Query("a cat"), k=4, page=p)).hits for p in (1, 2, 3)]
    ids = [h.media_id for page in pages for h in page]
    assert len(ids) == len(set(ids)) == 12
    assert [h.rank for page in pages for h in page] == list(range(1, 13))
    top12 = service.run(SearchRequest(Query("a cat"), k=12)).hits
    assert ids == [h.media_id for h in top12]
    assert [h.media_id for h in service.run(SearchRequest(Query("a cat"), k=4, page=2)).hits] == ids[4:8]


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_filters_mixing_like_and_pages(run_cli, media):
    index = media / ".gridrank"
    result = run_cli("search", "2:beach", "+dog", "-people", "--index", index, "--under", "photos/space", "--json")
    assert result.code == 0, result.err
    assert "loaded gridrank-tiny-clip in" in result.err  # the model load, timed, once per run
    hits = json.loads(result.out)["hits"]
    assert len(hits) == 2
    assert all("/photos/space/" in h["path"] for h in hits)

    result = run_cli("search", "--like", "videos/red_ball_bouncing.mp4", "--index", index, "--json", "--k", "3")
    hits = json.loads(result.out)["hits"]
    assert hits[0]["path"].endswith("videos/red_ball_bouncing.mp4")
    assert hits[0]["segment"]["end"] >= 0

    result = run_cli("search", "a cup", "--index", index, "--json", "--k", "50")
    cup = [h for h in json.loads(result.out)["hits"] if any("copies/" in p for p in [h["path"], *h["duplicates"]])]
    assert len(cup) == 1
    assert len(cup[0]["duplicates"]) >= 2

    page2 = json.loads(run_cli("search", "a cat", "--index", index, "--json", "--k", "3", "--page", "2").out)
    assert [h["rank"] for h in page2["hits"]] == [4, 5, 6]

    result = run_cli("search", "a cat", "--index", index, "--after", "2024-06-01", "--ext", "mp4,mov")
    assert result.code == 0
    assert "videos/" in result.out
    assert "photos/" not in result.out

    missing = run_cli("search", "--like", "photos/nope.jpg", "--index", index)
    assert missing.code == 2
    assert "photos/nope.jpg is not an indexed item" in missing.err
    bad_date = run_cli("search", "a cat", "--index", index, "--after", "June")
    assert bad_date.code == 2
    assert "--after must be a date" in bad_date.err
    weights = run_cli("search", "beach", "--index", index, "--weights", "0.7,0.3")
    assert weights.code == 2
    assert "one weight per term" in weights.err
