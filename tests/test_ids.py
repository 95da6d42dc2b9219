import pytest

from retrieval.store.ids import (MAX_FRAMES, frame_index_of, kind_id_range, kind_of, media_id_of, media_id_range,
                           vector_id)


@pytest.mark.parametrize("kind", ["image", "video"])
@pytest.mark.parametrize("media_id,frame", [(1, 0), (7, 15), (2**40 - 1, MAX_FRAMES - 1)])
def test_vector_id_round_trips(kind, media_id, frame):
    vid = vector_id(kind, media_id, frame)
    assert 0 <= vid < 2**63
    assert (kind_of(vid), media_id_of(vid), frame_index_of(vid)) == (kind, media_id, frame)
    lo, hi = kind_id_range(kind)
    assert lo <= vid < hi
    lo, hi = media_id_range(kind, media_id)
    assert lo <= vid < hi


def test_ranges_of_neighbouring_media_do_not_overlap():
    assert media_id_range("video", 3)[1] == media_id_range("video", 4)[0]
    assert kind_id_range("image")[1] == kind_id_range("video")[0]


@pytest.mark.parametrize("media_id,frame", [(0, 0), (2**40, 0), (1, MAX_FRAMES), (1, -1)])
def test_out_of_range_parts_are_refused(media_id, frame):
    with pytest.raises(ValueError):
        vector_id("image", media_id, frame)
