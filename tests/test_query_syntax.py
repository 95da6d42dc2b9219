"""Pure parts of search: the query-mixing syntax, filters, video moments, duplicate groups (no models)."""

import datetime as dt
import functools

import numpy as np
import pytest

from retrieval.query.filters import media_condition, normalize_under, parse_date, parse_exts
from retrieval.query.types import MediaFilter
from retrieval.store.catalog import Catalog, FrameRecord, MediaRecord
from retrieval.query.grouping import group_duplicates, merge_segments, original_of
from retrieval.query.types import Segment
from retrieval.query.mix import MixTerm, mix, parse_query, parse_weights


# -- query mixing -------------------------------------------------------------------------------


def test_plain_words_are_one_unmixed_text_term():
    parsed = parse_query("a cat on a sofa")
    assert parsed.terms == (MixTerm(1.0, text="a cat on a sofa"),)
    assert not parsed.mixed


def test_weight_prefixes_plus_and_minus():
    parsed = parse_query("2:beach +dog -people")
    assert parsed.mixed
    assert parsed.terms == (MixTerm(2.0, text="beach"), MixTerm(1.0, text="dog"), MixTerm(-1.0, text="people"))


def test_a_term_runs_to_the_next_marker_and_inner_hyphens_are_text():
    parsed = parse_query("sunny t-shirt beach -crowds - of people 0.5:golden hour -0.25:rain")
    assert parsed.terms == (MixTerm(1.0, text="sunny t-shirt beach"), MixTerm(-1.0, text="crowds - of people"),
                            MixTerm(0.5, text="golden hour"), MixTerm(-0.25, text="rain"))


def test_image_terms_by_prefix_or_by_an_existing_path():
    parsed = parse_query("img:trips/a b.jpg -2:img:ref.png +dusk ref2.jpg", is_image_path=lambda s: s == "ref2.jpg")
    assert parsed.terms == (MixTerm(1.0, image_ref="trips/a b.jpg"), MixTerm(-2.0, image_ref="ref.png"),
                            MixTerm(1.0, text="dusk ref2.jpg"))
    alone = parse_query("ref2.jpg", is_image_path=lambda s: s == "ref2.jpg")
    assert alone.terms == (MixTerm(1.0, image_ref="ref2.jpg"),)
    assert not alone.mixed


@pytest.mark.parametrize("bad", ["", "   ", "2:", "+dog 2:", "img:"])
def test_empty_terms_are_errors(bad):
    with pytest.raises(ValueError):
        parse_query(bad)


def test_weights_flag():
    assert parse_weights("0.7, 0.3", 2) == [0.7, 0.3]
    assert parse_weights(None, 2) is None
    with pytest.raises(ValueError, match="one weight per term"):
        parse_weights("0.7", 2)
    with pytest.raises(ValueError, match="numbers separated by commas"):
        parse_weights("a,b", 2)


def test_mix_is_the_normalized_weighted_sum():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 8)).astype(np.float32)
    expected = 2 * vectors[0] + vectors[1] - vectors[2]
    np.testing.assert_allclose(mix(vectors, [2, 1, -1]), expected / np.linalg.norm(expected), rtol=1e-5)
    with pytest.raises(ValueError, match="cancel out"):
        mix(np.stack([vectors[0], vectors[0]]), [1, -1])


# -- filters ------------------------------------------------------------------------------------


def _passes(tmp_path, path, f, kind="image", date=(2024, 7, 1), taken_at=None, frames=1):
    """Whether the catalog's filter query passes one item (the filter runs in SQLite, as in a search)."""
    catalog = Catalog(tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}.sqlite")
    catalog.create_schema()
    catalog.begin()
    media_id = catalog.reserve_media_id(path, kind)
    mtime = int(dt.datetime(*date, 12).timestamp() * 1e9)
    catalog.put_media(MediaRecord(media_id, path, kind, 1, mtime, "h", None, None, None, frames, taken_at, None),
                      [FrameRecord((media_id << 12) + i, media_id, i, None) for i in range(frames)], [])
    catalog.commit()
    ids = catalog.media_ids_where(media_condition(f))
    vector_ids = catalog.vector_ids_where(media_condition(f))
    catalog.close()
    assert len(vector_ids) == frames * len(ids)
    return bool(len(ids))


def test_filter_by_folder_kind_extension_and_date(tmp_path):
    passes = functools.partial(_passes, tmp_path)
    assert passes("trips/2024/a.jpg", MediaFilter(under="trips/2024"))
    assert not passes("trips/2024b/a.jpg", MediaFilter(under="trips/2024"))  # a prefix of a name: no
    assert not passes("trips/20240/a.jpg", MediaFilter(under="trips/2024"))  # '0' sorts right after '/'
    assert not passes("trips/2024.jpg", MediaFilter(under="trips/2024"))
    assert passes("trips/2024/sub/a.jpg", MediaFilter(under="trips"))
    assert not passes("a.mp4", MediaFilter(kind="image"), kind="video", frames=3)
    assert passes("a.mp4", MediaFilter(kind="video", under=None, exts=("mp4",)), kind="video", frames=3)
    assert passes("a.JPG", MediaFilter(exts=("jpg", "png")))
    assert not passes("a.webp", MediaFilter(exts=("jpg",)))
    assert not passes("a_jpg", MediaFilter(exts=("jpg",)))  # '_' is not a LIKE wildcard here
    june, sept = dt.date(2024, 6, 1), dt.date(2024, 9, 1)
    assert passes("a.jpg", MediaFilter(after=june, before=sept), date=(2024, 6, 1))  # after: inclusive
    assert not passes("a.jpg", MediaFilter(after=june, before=sept), date=(2024, 9, 1))  # before: exclusive
    # the EXIF date wins over the file's modification date (local time, as the file browser shows it)
    assert passes("a.jpg", MediaFilter(before=june), date=(2024, 7, 1), taken_at="2019-05-04T10:00:00")
    # a nonsense EXIF date (or an impossible one) falls back to the file's date
    for nonsense in ("garbage", "2019-02-30T10:00:00", "0000:00:00 00:00:00"):
        assert passes("a.jpg", MediaFilter(after=june), date=(2024, 7, 1), taken_at=nonsense)
        assert not passes("a.jpg", MediaFilter(before=june), date=(2024, 7, 1), taken_at=nonsense)
    assert not passes("a.jpg", MediaFilter(under="trips"), frames=0)  # an item without vectors never passes


def test_filter_values_from_the_user():
    assert parse_exts(".JPG, png,,") == ("jpg", "png")
    assert parse_date("2024-06-01", "--after") == dt.date(2024, 6, 1)
    with pytest.raises(ValueError, match="--after must be a date like 2024-06-01"):
        parse_date("June", "--after")
    assert normalize_under("./trips/2024/") == "trips/2024"
    with pytest.raises(ValueError, match="inside the indexed root"):
        normalize_under("../elsewhere")


# -- video moments and duplicate groups --------------------------------------------------------


def test_frames_closer_than_the_gap_merge_and_farther_ones_split():
    frames = [(10.0, 0.2), (1.0, 0.3), (3.0, 0.5), (5.0, 0.4), (12.0, 0.1)]
    assert merge_segments(frames, gap_s=2.0) == [Segment(1.0, 5.0, 3.0, 0.5), Segment(10.0, 12.0, 10.0, 0.2)]
    # at exactly the gap they still merge; just past it they split
    assert len(merge_segments(frames, gap_s=5.0)) == 1
    assert len(merge_segments(frames, gap_s=1.99)) == 5


def test_duplicates_group_by_hash_always_and_by_similarity_above_the_threshold():
    v = np.eye(4, dtype=np.float32)
    near = (v[0] + 0.05 * v[1]) / np.linalg.norm(v[0] + 0.05 * v[1])
    vectors = np.stack([v[0], v[2], near, v[3], v[2]])
    hashes = ["a", "b", "c", "d", "a"]  # hit 4 is a byte copy of hit 0 though its vector differs
    assert group_duplicates(vectors, hashes, threshold=0.99) == [[0, 2, 4], [1], [3]]
    assert group_duplicates(vectors, hashes, threshold=None) == [[0, 4], [1], [2], [3]]


def test_a_duplicate_group_shows_its_original():
    second = 1_000_000_000
    paths = ["a/cat_copy.png", "a/cat.jpg", "b/cat (1).jpg", "old/dog.jpg"]
    same_second = [5 * second + 7, 5 * second + 3, 5 * second, 5 * second]
    assert original_of([0, 1, 2], paths, same_second) == 1  # same age: the shortest name
    copied_later = [9 * second, 9 * second, 4 * second, 0]
    assert original_of([0, 1, 2], paths, copied_later) == 2  # the oldest file, whatever its name
    assert original_of([0, 1, 2, 3], paths, copied_later) == 3
    assert original_of([0, 1, 2], paths, same_second, keep=0) == 0  # more like this keeps its item first
    assert original_of([1, 2], paths, same_second, keep=0) == 1  # `keep` elsewhere changes nothing here
